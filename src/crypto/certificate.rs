//! Reading a signer's certificate for verification (`/verify/v1`): whether the service CA
//! issued it (its issuer name and its signature, checked by ring with the CA's P-256 key),
//! its validity, key usage and the names it certifies. The formats' own checks (signature,
//! digest, certificate reference) are in `cades/` and `jades/`.

use std::fmt::Write as _;

use time::OffsetDateTime;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ECDSA_WITH_SHA256,
};
use x509_parser::prelude::{FromDer as _, X509Certificate, X509Name};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::format::verify_p256;

/// OID of the X.520 `title` attribute.
const TITLE: &[u64] = &[2, 5, 4, 12];

/// What verification reads from a signer's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerCertificate {
    /// Its serial number (big-endian bytes, as the CRL and the revocation records hold it).
    pub serial: Vec<u8>,
    /// Its first valid instant.
    pub not_before: OffsetDateTime,
    /// Its last valid instant.
    pub not_after: OffsetDateTime,
    /// The subject's commonName, if it has one as text.
    pub common_name: Option<String>,
    /// The subject's title (officials), if any.
    pub title: Option<String>,
    /// The subject's organizationName, if any.
    pub organisation: Option<String>,
    /// The whole subject, as text (RFC 4514 style), for certificates without a commonName.
    pub subject: String,
    /// The keyUsage extension: `(digitalSignature, nonRepudiation)`, or `None` without one.
    pub key_usage: Option<(bool, bool)>,
    /// basicConstraints says it is a CA.
    pub is_ca: bool,
}

/// Reads a DER certificate.
///
/// # Errors
/// What the parser said, when it is not a DER X.509 certificate.
pub fn read(der: &[u8]) -> Result<SignerCertificate, String> {
    let cert = parse(der)?;
    let validity = cert.validity();
    let key_usage = cert
        .key_usage()
        .map_err(|e| format!("keyUsage is malformed ({e})"))?
        .map(|ku| (ku.value.digital_signature(), ku.value.non_repudiation()));
    let subject = cert.subject();
    Ok(SignerCertificate {
        serial: cert.raw_serial().to_vec(),
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
        common_name: first_text(subject.iter_common_name()),
        title: x509_parser::der_parser::oid::Oid::from(TITLE)
            .ok()
            .and_then(|oid| first_text(subject.iter_by_oid(&oid))),
        organisation: first_text(subject.iter_organization()),
        subject: subject.to_string(),
        key_usage,
        is_ca: cert.is_ca(),
    })
}

/// Whether `ca_der` issued `der`: the certificate names the CA's subject as its issuer and
/// its ecdsa-with-SHA256 signature verifies with the CA's P-256 key.
///
/// # Errors
/// Why not, in plain language.
pub fn issued_by(der: &[u8], ca_der: &[u8]) -> Result<(), String> {
    let cert = parse(der)?;
    let ca = parse(ca_der).map_err(|e| format!("the service CA certificate: {e}"))?;
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return Err(format!(
            "it was issued by \"{}\", not by the service CA \"{}\"",
            name(cert.issuer()),
            name(ca.subject())
        ));
    }
    if cert.signature_algorithm.algorithm != OID_SIG_ECDSA_WITH_SHA256 {
        return Err(format!(
            "its signature algorithm {} is not ecdsa-with-SHA256, which the service CA uses",
            cert.signature_algorithm.algorithm
        ));
    }
    let point = p256_point(ca.public_key()).ok_or("the service CA's key is not P-256")?;
    if verify_p256(
        point,
        cert.tbs_certificate.as_ref(),
        &cert.signature_value.data,
        false,
    ) {
        Ok(())
    } else {
        Err(
            "its signature does not verify with the service CA's key: another CA with the \
             same name issued it, or it was altered"
                .to_owned(),
        )
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("not a DER certificate: trailing bytes".to_owned()),
        Err(e) => Err(format!("not a DER certificate ({e})")),
    }
}

/// The uncompressed point of a P-256 key.
fn p256_point<'a>(spki: &'a SubjectPublicKeyInfo<'_>) -> Option<&'a [u8]> {
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok());
    (spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY && curve == Some(OID_EC_P256))
        .then_some(spki.subject_public_key.data.as_ref())
}

fn first_text<'a, 'b: 'a>(
    mut attrs: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'b>>,
) -> Option<String> {
    attrs.find_map(|a| a.as_str().ok().map(str::to_owned))
}

/// A name for messages: its text, or its hex when it cannot be shown.
fn name(n: &X509Name<'_>) -> String {
    let text = n.to_string();
    if text.is_empty() {
        let mut hex = String::new();
        for b in n.as_raw() {
            let _ = write!(hex, "{b:02x}");
        }
        hex
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev_ca() -> Vec<u8> {
        let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/keys-dev/ca.pem"))
            .unwrap();
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn a_certificate_of_another_ca_is_not_the_service_cas() {
        let other = crate::crypto::format::testing::fixture("Ana Novak");
        let why = issued_by(&other.chain[0], &dev_ca()).unwrap_err();
        assert!(why.contains("not by the service CA"), "{why}");
        assert_eq!(issued_by(&other.chain[0], &other.chain[1]), Ok(()));
        let leaf = read(&other.chain[0]).unwrap();
        assert_eq!(leaf.common_name.as_deref(), Some("Ana Novak"));
        assert_eq!(leaf.key_usage, Some((true, true)));
        assert!(!leaf.is_ca);
        assert!(read(&other.chain[1]).unwrap().is_ca);
        assert!(read(b"garbage").is_err());
    }

    #[test]
    fn a_certificate_altered_after_issue_does_not_verify() {
        let who = crate::crypto::format::testing::fixture("Ana Novak");
        let mut der = who.chain[0].clone();
        let at = der.windows(9).position(|w| w == b"Ana Novak").unwrap();
        der[at] = b'E';
        let why = issued_by(&der, &who.chain[1]).unwrap_err();
        assert!(why.contains("does not verify"), "{why}");
    }

    #[test]
    fn a_ca_with_the_same_name_but_another_key_is_not_the_issuer() {
        // rcgen fixtures share the CA's name, "civis test CA", but not its key.
        let a = crate::crypto::format::testing::fixture("Ana");
        let b = crate::crypto::format::testing::fixture("Bob");
        let why = issued_by(&a.chain[0], &b.chain[1]).unwrap_err();
        assert!(why.contains("does not verify"), "{why}");
    }
}
