//! What the two signature formats (CAdES in `cades/`, JAdES in `jades.rs`) share: their one
//! error type, the signer's certificate (parsed, hashed, its P-256 key) and ECDSA checks by ring.

use der::Decode as _;
use der::oid::ObjectIdentifier;
use x509_cert::Certificate;

use super::signer::{SignError, Signer};

/// id-ecPublicKey (RFC 5480).
const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / prime256v1 (RFC 5480).
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Why a signature could not be made, or a signature could not be read at all. Each text names
/// the problem so that it can be shown to the caller (a 422 answer); a signature that parses
/// but does not verify is not an error: the `inspect` results report each check instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// `sign` was given no certificates: the signer's certificate must come first.
    #[error("the certificate chain is empty: the signer's certificate must come first")]
    EmptyChain,
    /// A certificate (given to `sign`, or carried by a signature) is not DER X.509.
    #[error("certificate {index} is not a DER X.509 certificate: {reason}")]
    Certificate {
        /// Its position in the chain (0 = the signer's).
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// The signer's key is not the key its certificate certifies (a configuration mistake:
    /// the signature would name someone else).
    #[error("the key {key_id} is not the key in the signer's certificate")]
    KeyMismatch {
        /// The signer's key id.
        key_id: String,
    },
    /// The signing time is before 1970 (no NumericDate, no CMS time for it here).
    #[error("signing time {0} is before 1970")]
    SigningTime(String),
    /// A document name that cannot be put into a signature.
    #[error("document name {name:?} cannot be signed: {reason}")]
    DocumentName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The signer could not sign (an HSM unreachable, the random generator broken).
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The signer answered with something that is not a P-256 `r‖s` signature.
    #[error("the signer returned a malformed signature: {0}")]
    SignatureValue(String),
    /// DER encoding failed (a certificate field out of range; not expected in practice).
    #[error("DER encoding failed: {0}")]
    Encode(String),
    /// The input is not DER of the expected structure (garbage, truncated, trailing bytes).
    #[error("not a DER CMS signature: {0}")]
    Der(String),
    /// The CMS content is not SignedData (its content type is named).
    #[error("the CMS content type is {0}, not SignedData (1.2.840.113549.1.7.2)")]
    NotSignedData(String),
    /// The signature carries the signed content itself; civis signs and reads detached
    /// signatures only (the document never leaves the agency).
    #[error("the signature is not detached: it carries the signed content")]
    Attached,
    /// A CMS signature with no signer, or with more than one.
    #[error("the signature has {0} signers; exactly one is expected")]
    SignerCount(usize),
    /// The certificate of the signer is not in the signature.
    #[error("the signer's certificate is not in the signature")]
    MissingSignerCertificate,
    /// The CMS signer has no signed attributes (CAdES requires them).
    #[error("the signer has no signed attributes")]
    NoSignedAttributes,
    /// A signed attribute that civis reads is malformed or repeated.
    #[error("signed attribute {name} is malformed: {reason}")]
    Attribute {
        /// The attribute (e.g. `message-digest`).
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Not a JWS compact serialisation (wrong number of parts, bad base64url).
    #[error("not a JWS compact serialisation: {0}")]
    NotJws(String),
    /// The JWS protected header is not a JSON object, or a header civis needs to read
    /// (`x5c`) is malformed.
    #[error("the JWS protected header is malformed: {0}")]
    Header(String),
}

/// What a signature says about its signer's certificate (CAdES signing-certificate-v2,
/// JAdES `x5t#S256`), compared with the certificate it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateReference {
    /// The signature does not reference its certificate.
    Absent,
    /// The reference is the SHA-256 hash of the signer's certificate (and, where present,
    /// its issuer and serial number).
    Matches,
    /// The reference names another certificate.
    Mismatch,
    /// The reference uses a hash algorithm other than SHA-256, which civis does not check.
    UnsupportedHash,
}

/// Parses a chain handed to `sign` (signer first) and checks that `signer` holds the key of
/// its first certificate.
pub(crate) fn signer_chain(
    signer: &dyn Signer,
    chain: &[Vec<u8>],
) -> Result<Vec<Certificate>, FormatError> {
    if chain.is_empty() {
        return Err(FormatError::EmptyChain);
    }
    let certs = chain
        .iter()
        .enumerate()
        .map(|(index, der)| parse_certificate(index, der))
        .collect::<Result<Vec<_>, _>>()?;
    let point = certs.first().and_then(p256_point);
    if point != Some(signer.public_key().sec1_point()) {
        return Err(FormatError::KeyMismatch {
            key_id: signer.key_id().to_owned(),
        });
    }
    Ok(certs)
}

/// One DER X.509 certificate, strictly (no trailing bytes).
pub(crate) fn parse_certificate(index: usize, der: &[u8]) -> Result<Certificate, FormatError> {
    Certificate::from_der(der).map_err(|e| FormatError::Certificate {
        index,
        reason: e.to_string(),
    })
}

/// The uncompressed point of the certificate's key, if it is a P-256 key.
pub(crate) fn p256_point(cert: &Certificate) -> Option<&[u8]> {
    let spki = cert.tbs_certificate().subject_public_key_info();
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    (spki.algorithm.oid == ID_EC_PUBLIC_KEY && curve == Some(SECP256R1))
        .then(|| spki.subject_public_key.raw_bytes())
}

/// Checks an ECDSA P-256 / SHA-256 signature by ring: `fixed` selects `r‖s` (JWS) over DER
/// (CMS). False for anything that is not a valid signature, including a malformed key.
pub(crate) fn verify_p256(point: &[u8], message: &[u8], signature: &[u8], fixed: bool) -> bool {
    let alg = if fixed {
        &ring::signature::ECDSA_P256_SHA256_FIXED
    } else {
        &ring::signature::ECDSA_P256_SHA256_ASN1
    };
    ring::signature::UnparsedPublicKey::new(alg, point)
        .verify(message, signature)
        .is_ok()
}

/// Seconds since 1970 of a signing time, refusing earlier times.
pub(crate) fn unix_seconds(t: time::OffsetDateTime) -> Result<u64, FormatError> {
    u64::try_from(t.unix_timestamp()).map_err(|_| FormatError::SigningTime(t.to_string()))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A CA and a signer's certificate made at test time by rcgen (ring), with the signer's
    //! key behind the `Signer` trait.

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        PKCS_ECDSA_P256_SHA256,
    };

    use crate::crypto::EcdsaFileKey;

    /// A signer and its chain (signer first, then the CA).
    pub(crate) struct Fixture {
        pub signer: EcdsaFileKey,
        pub chain: Vec<Vec<u8>>,
    }

    pub(crate) fn fixture(common_name: &str) -> Fixture {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "civis test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, common_name);
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        let leaf_cert = leaf.signed_by(&key, &issuer).unwrap();
        Fixture {
            signer: EcdsaFileKey::from_pkcs8(&key.serialize_der()).unwrap(),
            chain: vec![leaf_cert.der().to_vec(), ca_cert.der().to_vec()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::fixture;
    use super::*;

    #[test]
    fn a_chain_must_start_with_the_signers_own_certificate() {
        let ana = fixture("Ana");
        let bob = fixture("Bob");
        assert_eq!(signer_chain(&ana.signer, &ana.chain).unwrap().len(), 2);
        assert_eq!(
            signer_chain(&ana.signer, &[]).unwrap_err(),
            FormatError::EmptyChain
        );
        assert!(matches!(
            signer_chain(&ana.signer, &bob.chain),
            Err(FormatError::KeyMismatch { .. })
        ));
        let reversed = vec![ana.chain[1].clone(), ana.chain[0].clone()];
        assert!(matches!(
            signer_chain(&ana.signer, &reversed),
            Err(FormatError::KeyMismatch { .. })
        ));
        let garbage = vec![ana.chain[0].clone(), b"not a certificate".to_vec()];
        assert!(matches!(
            signer_chain(&ana.signer, &garbage),
            Err(FormatError::Certificate { index: 1, .. })
        ));
    }

    #[test]
    fn only_a_p256_key_is_read_from_a_certificate() {
        let ana = fixture("Ana");
        let cert = parse_certificate(0, &ana.chain[0]).unwrap();
        assert_eq!(
            p256_point(&cert),
            Some(ana.signer.public_key().sec1_point())
        );
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let der = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&p384)
            .unwrap()
            .der()
            .to_vec();
        assert_eq!(p256_point(&parse_certificate(0, &der).unwrap()), None);
    }

    #[test]
    fn signing_times_before_1970_are_refused() {
        assert_eq!(
            unix_seconds(time::macros::datetime!(1970-01-01 0:00 UTC)),
            Ok(0)
        );
        assert!(unix_seconds(time::macros::datetime!(1969-12-31 23:59:59 UTC)).is_err());
    }
}
