//! CAdES-B-B (ETSI EN 319 122-1): a detached DER CMS SignedData (RFC 5652) over a document's
//! SHA-256 digest, ECDSA P-256, with the signed attributes content-type, message-digest,
//! signing-time and signing-certificate-v2 (RFC 5035). `build` makes one, `inspect` reads one
//! and reports each check; spec/signature-formats.md describes the bytes.

mod build;
mod inspect;

pub use build::{BatchSigner, sign};
pub use inspect::{CadesSignature, inspect};

/// Test hooks, not an API: they make signatures that conforming validators must refuse.
#[doc(hidden)]
pub mod testing {
    /// **Makes a non-conforming signature, for tests only**: [`super::sign`], with the
    /// signing-certificate-v2 hash taken over `referenced` (another certificate's DER) instead
    /// of the signer's certificate, while the issuer and serial number still name the signer
    /// and the signature itself verifies. tests/it/interop.rs shows that pyHanko and the EU
    /// DSS validator refuse it (`openssl cms -verify` does not look).
    pub use super::build::sign_referencing as sign_with_wrong_signing_certificate_hash;
}

use der::Sequence;
use der::asn1::OctetString;
use der::oid::ObjectIdentifier;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// id-data: the content is opaque bytes (the document).
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData.
const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-contentType (RFC 5652 §11.1).
const ID_CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest (RFC 5652 §11.2).
const ID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime (RFC 5652 §11.3).
const ID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
/// id-aa-signingCertificateV2 (RFC 5035).
const ID_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
/// id-sha256.
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// ecdsa-with-SHA256 (RFC 5758: no parameters).
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// An algorithm identifier without parameters (SHA-256 and ecdsa-with-SHA256 carry none).
fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

/// RFC 5035 §3:
/// `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies SEQUENCE OF
/// PolicyInformation OPTIONAL }`. civis writes no policies and ignores any it reads.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<der::Any>,
}

/// RFC 5035 §4: `ESSCertIDv2 ::= SEQUENCE { hashAlgorithm AlgorithmIdentifier DEFAULT
/// {algorithm id-sha256}, certHash OCTET STRING, issuerSerial IssuerSerial OPTIONAL }`.
/// DER leaves a DEFAULT value out, so SHA-256 is written as an absent `hash_algorithm`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<IssuerSerial>,
}

/// RFC 5035 §4: `IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber
/// CertificateSerialNumber }`: the issuer's name as a directoryName, and the serial number.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

#[cfg(test)]
mod tests;
