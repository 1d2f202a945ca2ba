//! Reading a CAdES signature: parse the CMS strictly (DER), find the signer and its
//! certificate, read the signed attributes, and keep what is needed to report each check
//! separately (signature, digest binding, certificate reference, conformance).

use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use der::asn1::OctetString;
use der::oid::ObjectIdentifier;
use der::{Decode, Encode as _};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::SubjectKeyIdentifier;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::time::Time;

use super::{
    ECDSA_WITH_SHA256, ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SHA256, ID_SIGNED_DATA,
    ID_SIGNING_CERTIFICATE_V2, ID_SIGNING_TIME, SigningCertificateV2,
};
use crate::crypto::digest::sha256;
use crate::crypto::format::{CertificateReference, FormatError, p256_point, verify_p256};

/// A parsed CAdES signature: what it claims, with each check available on its own.
#[derive(Debug, Clone)]
pub struct CadesSignature {
    /// The signer's certificate (DER), found by the SignerInfo's `sid`.
    pub signer_certificate: Vec<u8>,
    /// Every certificate the signature carries (DER), the signer's first.
    pub chain: Vec<Vec<u8>>,
    /// The encapsulated content type (dotted OID); id-data for CAdES over a document.
    pub encapsulated_content_type: String,
    /// The content-type signed attribute (dotted OID), if present.
    pub content_type: Option<String>,
    /// The message-digest signed attribute: the digest of the document, if present.
    pub message_digest: Option<Vec<u8>>,
    /// The signing-time signed attribute, if present.
    pub signing_time: Option<OffsetDateTime>,
    /// What signing-certificate-v2 says about the signer's certificate.
    pub signing_certificate_v2: CertificateReference,
    /// The SignerInfo's digest algorithm (dotted OID).
    pub digest_algorithm: String,
    /// The SignedData's list of digest algorithms (dotted OIDs), which should name the
    /// signer's.
    pub digest_algorithms: Vec<String>,
    /// The SignerInfo's signature algorithm (dotted OID).
    pub signature_algorithm: String,
    /// The DER of the signed attributes as a SET OF: what the signature covers.
    signed_attributes: Vec<u8>,
    /// The signature value (DER ECDSA for ecdsa-with-SHA256).
    signature: Vec<u8>,
}

impl CadesSignature {
    /// Whether the signature over the signed attributes verifies (ring) with the key of the
    /// signer's certificate. False for anything but ecdsa-with-SHA256 and a P-256 key.
    pub fn verify_signature(&self) -> bool {
        if self.signature_algorithm != ECDSA_WITH_SHA256.to_string() {
            return false;
        }
        let Ok(cert) = Certificate::from_der(&self.signer_certificate) else {
            return false;
        };
        p256_point(&cert).is_some_and(|point| {
            verify_p256(point, &self.signed_attributes, &self.signature, false)
        })
    }

    /// Whether the signed message-digest is `digest` (the SHA-256 of the document).
    pub fn covers(&self, digest: &[u8]) -> bool {
        self.message_digest.as_deref() == Some(digest)
    }

    /// What keeps this signature from being CAdES-B-B as civis makes it (ETSI EN 319 122-1
    /// §5.2 and §6): every missing or wrong attribute or algorithm, named. Empty when it
    /// conforms.
    pub fn conformance_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let data = ID_DATA.to_string();
        match &self.content_type {
            None => problems.push("content-type attribute missing".to_owned()),
            Some(ct) if *ct != self.encapsulated_content_type => problems.push(format!(
                "content-type attribute {ct} differs from the encapsulated content type {}",
                self.encapsulated_content_type
            )),
            Some(_) => {}
        }
        if self.encapsulated_content_type != data {
            problems.push(format!(
                "encapsulated content type is {}, not id-data",
                self.encapsulated_content_type
            ));
        }
        match &self.message_digest {
            None => problems.push("message-digest attribute missing".to_owned()),
            Some(d) if d.len() != 32 => problems.push(format!(
                "message-digest is {} bytes, not a SHA-256 digest",
                d.len()
            )),
            Some(_) => {}
        }
        if self.signing_time.is_none() {
            problems.push("signing-time attribute missing".to_owned());
        }
        match self.signing_certificate_v2 {
            CertificateReference::Matches => {}
            CertificateReference::Absent => {
                problems.push("signing-certificate-v2 attribute missing".to_owned());
            }
            CertificateReference::Mismatch => problems.push(
                "signing-certificate-v2 does not reference the signer's certificate".to_owned(),
            ),
            CertificateReference::UnsupportedHash => {
                problems.push("signing-certificate-v2 uses a hash other than SHA-256".to_owned())
            }
        }
        if self.digest_algorithm != ID_SHA256.to_string() {
            problems.push(format!(
                "digest algorithm {} is not SHA-256",
                self.digest_algorithm
            ));
        }
        if !self.digest_algorithms.contains(&self.digest_algorithm) {
            problems.push("SignedData digestAlgorithms does not list the signer's".to_owned());
        }
        if self.signature_algorithm != ECDSA_WITH_SHA256.to_string() {
            problems.push(format!(
                "signature algorithm {} is not ecdsa-with-SHA256",
                self.signature_algorithm
            ));
        }
        problems
    }
}

/// Reads a detached CAdES signature (DER `ContentInfo` with `SignedData`, one signer).
///
/// # Errors
/// [`FormatError::Der`] for bytes that are not DER CMS (garbage, truncated, trailing bytes),
/// [`FormatError::NotSignedData`], [`FormatError::Attached`] when it carries its content,
/// [`FormatError::SignerCount`], [`FormatError::MissingSignerCertificate`],
/// [`FormatError::NoSignedAttributes`], [`FormatError::Attribute`] for a malformed or
/// repeated content-type, message-digest, signing-time or signing-certificate-v2.
pub fn inspect(der: &[u8]) -> Result<CadesSignature, FormatError> {
    let bad_der = |e: der::Error| FormatError::Der(e.to_string());
    let info = ContentInfo::from_der(der).map_err(bad_der)?;
    if info.content_type != ID_SIGNED_DATA {
        return Err(FormatError::NotSignedData(info.content_type.to_string()));
    }
    let signed: SignedData = info.content.decode_as().map_err(bad_der)?;
    if signed.encap_content_info.econtent.is_some() {
        return Err(FormatError::Attached);
    }
    let signer = match signed.signer_infos.0.as_slice() {
        [one] => one,
        more => return Err(FormatError::SignerCount(more.len())),
    };
    let certs: Vec<&Certificate> = signed
        .certificates
        .iter()
        .flat_map(|set| set.0.iter())
        .filter_map(|choice| match choice {
            CertificateChoices::Certificate(c) => Some(c),
            CertificateChoices::Other(_) => None,
        })
        .collect();
    let signer_cert = certs
        .iter()
        .copied()
        .find(|c| identifies(&signer.sid, c))
        .ok_or(FormatError::MissingSignerCertificate)?;
    let signer_der = signer_cert.to_der().map_err(bad_der)?;
    let mut chain = vec![signer_der.clone()];
    for c in certs.iter().filter(|c| **c != signer_cert) {
        chain.push(c.to_der().map_err(bad_der)?);
    }

    let attrs = Attributes::read(signer, signer_cert, &signer_der)?;
    Ok(CadesSignature {
        signer_certificate: signer_der,
        chain,
        encapsulated_content_type: signed.encap_content_info.econtent_type.to_string(),
        content_type: attrs.content_type.map(|o| o.to_string()),
        message_digest: attrs.message_digest,
        signing_time: attrs.signing_time,
        signing_certificate_v2: attrs.certificate_reference,
        digest_algorithm: signer.digest_alg.oid.to_string(),
        digest_algorithms: signed
            .digest_algorithms
            .iter()
            .map(|a| a.oid.to_string())
            .collect(),
        signature_algorithm: signer.signature_algorithm.oid.to_string(),
        signed_attributes: attrs.der,
        signature: signer.signature.as_bytes().to_vec(),
    })
}

/// Whether `cert` is the one the SignerInfo's `sid` names.
fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    let tbs = cert.tbs_certificate();
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => {
            isn.issuer == *tbs.issuer() && isn.serial_number == *tbs.serial_number()
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            matches!(tbs.get_extension::<SubjectKeyIdentifier>(), Ok(Some((_, own))) if own == *ski)
        }
    }
}

/// The signed attributes civis reads, and their DER as the signature covers it.
struct Attributes {
    der: Vec<u8>,
    content_type: Option<ObjectIdentifier>,
    message_digest: Option<Vec<u8>>,
    signing_time: Option<OffsetDateTime>,
    certificate_reference: CertificateReference,
}

impl Attributes {
    fn read(signer: &SignerInfo, cert: &Certificate, cert_der: &[u8]) -> Result<Self, FormatError> {
        let attrs = signer
            .signed_attrs
            .as_ref()
            .filter(|a| !a.is_empty())
            .ok_or(FormatError::NoSignedAttributes)?;
        let list = attrs.as_slice();
        let der = attrs
            .to_der()
            .map_err(|e| FormatError::Der(e.to_string()))?;
        let content_type = single::<ObjectIdentifier>(list, ID_CONTENT_TYPE, "content-type")?;
        let message_digest = single::<OctetString>(list, ID_MESSAGE_DIGEST, "message-digest")?
            .map(|d| d.as_bytes().to_vec());
        let signing_time = single::<Time>(list, ID_SIGNING_TIME, "signing-time")?
            .map(|t| {
                i64::try_from(t.to_unix_duration().as_secs())
                    .ok()
                    .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                    .ok_or(FormatError::Attribute {
                        name: "signing-time",
                        reason: format!("{t} is out of range"),
                    })
            })
            .transpose()?;
        let certificate_reference = match single::<SigningCertificateV2>(
            list,
            ID_SIGNING_CERTIFICATE_V2,
            "signing-certificate-v2",
        )? {
            None => CertificateReference::Absent,
            Some(ess) => reference(&ess, cert, cert_der),
        };
        Ok(Self {
            der,
            content_type,
            message_digest,
            signing_time,
            certificate_reference,
        })
    }
}

/// The one value of the attribute `oid`, if present. RFC 5652 §11 allows each of these
/// attributes once, with exactly one value.
fn single<T: for<'a> Decode<'a>>(
    attrs: &[Attribute],
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<Option<T>, FormatError> {
    let malformed = |reason: String| FormatError::Attribute { name, reason };
    let mut found = attrs.iter().filter(|a| a.oid == oid);
    let Some(attr) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(malformed("it appears more than once".to_owned()));
    }
    let [value] = attr.values.as_slice() else {
        return Err(malformed(format!(
            "it has {} values, not one",
            attr.values.len()
        )));
    };
    let der = value.to_der().map_err(|e| malformed(e.to_string()))?;
    T::from_der(&der)
        .map(Some)
        .map_err(|e| malformed(e.to_string()))
}

/// RFC 5035 §3: the first ESSCertIDv2 identifies the signer's certificate, by its hash and,
/// where given, its issuer and serial number.
fn reference(
    ess: &SigningCertificateV2,
    cert: &Certificate,
    cert_der: &[u8],
) -> CertificateReference {
    let Some(id) = ess.certs.first() else {
        return CertificateReference::Mismatch;
    };
    if id
        .hash_algorithm
        .as_ref()
        .is_some_and(|a| a.oid != ID_SHA256)
    {
        return CertificateReference::UnsupportedHash;
    }
    if id.cert_hash.as_bytes() != sha256(cert_der) {
        return CertificateReference::Mismatch;
    }
    let tbs = cert.tbs_certificate();
    let names_cert = id.issuer_serial.as_ref().is_none_or(|is| {
        is.serial_number == *tbs.serial_number()
            && is
                .issuer
                .iter()
                .any(|n| matches!(n, GeneralName::DirectoryName(name) if name == tbs.issuer()))
    });
    if names_cert {
        CertificateReference::Matches
    } else {
        CertificateReference::Mismatch
    }
}
