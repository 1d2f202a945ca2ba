//! Verification (`POST /verify/v1`): anyone sends a digest, a signature and its format;
//! civis reports every check with its reason and whether the signature is valid.
//!
//! Input that cannot be read (bad base64, truncated DER, not a JWS, an unknown format, a
//! digest that is not 32 bytes) is refused naming the problem. Everything that can be read
//! is reported, never refused: a foreign or broken signature is `valid: false` with the
//! failing checks named.
//!
//! `valid` means every check passed, `produced` included: certificates of the service CA
//! certify only keys that civis holds and uses after recording each signature (durably,
//! before handing it out), so a signature under a civis certificate that civis has no
//! record of was made outside civis (a leaked key) or its record was lost (a database
//! restored from an older backup) — in neither case does civis vouch for it. The record is
//! also what makes the signing time trustworthy: the revocation and validity checks
//! compare the time written in the signature, which a leaked key could backdate, but a
//! recorded signature carries the time civis wrote.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

use super::documents::{digest as parse_digest, parse_format};
use super::{Kind, Pki, ProducedSignature, Revocation, SignatureFormat};
use crate::crypto::certificate::{self, SignerCertificate};
use crate::crypto::digest::sha256;
use crate::crypto::{CertificateReference, cades, jades};
use crate::domain::{DomainError, FieldError, Result, rfc3339};

/// What a verifier sends.
#[derive(Debug, Clone)]
pub struct VerifyInput {
    /// base64url (no padding) of the document's SHA-256.
    pub digest: String,
    /// Standard base64 of the DER (`cades`), or the JWS itself (`jades`).
    pub signature: String,
    /// `cades` or `jades`.
    pub format: String,
}

/// One check and why it passed or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Its name (see [`CHECKS`]).
    pub name: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// Why, in plain language.
    pub detail: String,
}

/// The names the signer's certificate certifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerName {
    /// commonName (a person, or the organisation for a seal); the whole subject when the
    /// certificate has no commonName.
    pub name: String,
    /// An official's title.
    pub title: Option<String>,
    /// organizationName; empty when the certificate names none.
    pub organisation: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Every check passed.
    pub valid: bool,
    /// Whom the signer's certificate names.
    pub signer: SignerName,
    /// The signing time the signature states, if it states one.
    pub signed_at: Option<OffsetDateTime>,
    /// The certificates the signature carries (DER), the signer's first.
    pub certificate_chain: Vec<Vec<u8>>,
    /// Every check of [`CHECKS`], in that order.
    pub checks: Vec<Check>,
}

/// The checks, in the order they are reported; all are required for `valid`.
pub const CHECKS: [&str; 9] = [
    "format",
    "signature",
    "digest",
    "signing_certificate",
    "chain",
    "validity",
    "key_usage",
    "revocation",
    "produced",
];

/// A signature of either format, reduced to what the checks need.
struct Parsed {
    format: SignatureFormat,
    /// The bytes the record of produced signatures is keyed by.
    bytes: Vec<u8>,
    signer_certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
    signing_time: Option<OffsetDateTime>,
    signature_verifies: bool,
    covers: bool,
    reference: CertificateReference,
    problems: Vec<String>,
}

impl Pki<'_> {
    /// Verifies a signature over `input.digest` (see the module docs).
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming each field that cannot be read; storage errors.
    pub fn verify(&self, input: &VerifyInput) -> Result<Verification> {
        let read = parse(input)?;
        let digest_ok = read.covers;
        let cert = certificate::read(&read.signer_certificate).map_err(|e| {
            DomainError::invalid("signature", format!("the signer's certificate: {e}"))
        })?;
        let chain = chain_check(&read, self.ca.cert_der());
        let ours = chain.passed;
        let revocation = if ours {
            revocation_check(
                self.store.revocations().get(&cert.serial)?.as_ref(),
                read.signing_time,
            )
        } else {
            check(
                "revocation",
                false,
                "not checked: civis knows the revocations of its own CA's certificates only",
            )
        };
        let record = match read.signing_time {
            Some(at) if ours => {
                self.store
                    .signatures()
                    .find(&cert.serial, at, &sha256(&read.bytes))?
            }
            // civis writes a signing time into every signature it makes.
            _ => None,
        };
        let produced = produced_check(record.as_ref(), ours);
        let checks = vec![
            format_check(&read),
            signature_check(&read),
            digest_check(read.format, digest_ok),
            reference_check(read.format, read.reference),
            chain,
            validity_check(&cert, read.signing_time),
            key_usage_check(&cert),
            revocation,
            produced,
        ];
        Ok(Verification {
            valid: checks.iter().all(|c| c.passed),
            signer: SignerName {
                name: cert.common_name.clone().unwrap_or(cert.subject.clone()),
                title: cert.title.clone(),
                organisation: cert.organisation.clone().unwrap_or_default(),
            },
            signed_at: read.signing_time,
            certificate_chain: read.chain,
            checks,
        })
    }
}

/// Parses the input, naming every field that cannot be read.
fn parse(input: &VerifyInput) -> Result<Parsed> {
    let mut errors = Vec::new();
    let format = parse_format(&input.format)
        .map_err(|detail| {
            errors.push(FieldError {
                field: "format".into(),
                detail,
            })
        })
        .ok();
    let digest = parse_digest(&input.digest)
        .map_err(|detail| {
            errors.push(FieldError {
                field: "digest".into(),
                detail: detail.into(),
            });
        })
        .ok();
    let parsed = format.and_then(|format| {
        parse_signature(format, &input.signature, digest.unwrap_or_default())
            .map_err(|detail| {
                errors.push(FieldError {
                    field: "signature".into(),
                    detail,
                });
            })
            .ok()
    });
    match parsed {
        Some(read) if errors.is_empty() => Ok(read),
        _ => Err(DomainError::Invalid(errors)),
    }
}

fn parse_signature(
    format: SignatureFormat,
    signature: &str,
    digest: [u8; 32],
) -> std::result::Result<Parsed, String> {
    match format {
        SignatureFormat::Cades => {
            let der = STANDARD.decode(signature.trim()).map_err(|e| {
                format!("must be standard base64 (with padding) of a DER CAdES signature ({e})")
            })?;
            let sig = cades::inspect(&der).map_err(|e| e.to_string())?;
            Ok(Parsed {
                format,
                signature_verifies: sig.verify_signature(),
                covers: sig.covers(&digest),
                reference: sig.signing_certificate_v2,
                problems: sig.conformance_problems(),
                bytes: der,
                signer_certificate: sig.signer_certificate,
                chain: sig.chain,
                signing_time: sig.signing_time,
            })
        }
        SignatureFormat::Jades => {
            let sig = jades::inspect(signature).map_err(|e| e.to_string())?;
            Ok(Parsed {
                format,
                signature_verifies: sig.verify_signature(),
                covers: sig.covers(&digest),
                reference: sig.signing_certificate,
                problems: sig.conformance_problems(),
                bytes: signature.as_bytes().to_vec(),
                signer_certificate: sig.signer_certificate,
                chain: sig.chain,
                signing_time: sig.signing_time,
            })
        }
    }
}

fn check(name: &'static str, passed: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        passed,
        detail: detail.into(),
    }
}

fn format_check(read: &Parsed) -> Check {
    let profile = match read.format {
        SignatureFormat::Cades => "CAdES-B-B",
        SignatureFormat::Jades => "JAdES-B-B",
    };
    if read.problems.is_empty() {
        check(
            "format",
            true,
            format!("{profile}: every required attribute and header is present"),
        )
    } else {
        check(
            "format",
            false,
            format!("not {profile}: {}", read.problems.join("; ")),
        )
    }
}

fn signature_check(read: &Parsed) -> Check {
    if read.signature_verifies {
        check(
            "signature",
            true,
            "the ECDSA P-256 signature verifies with the key of the signer's certificate",
        )
    } else {
        check(
            "signature",
            false,
            "the signature does not verify with the key of the signer's certificate: the \
             signed data was altered or another key signed",
        )
    }
}

fn digest_check(format: SignatureFormat, covers: bool) -> Check {
    let (yes, no) = match format {
        SignatureFormat::Cades => (
            "the signed message-digest is this digest",
            "the signed message-digest is not this digest: the signature is over another document",
        ),
        SignatureFormat::Jades => (
            "sigD hashV lists this digest",
            "sigD hashV does not list this digest: the signature is over another document",
        ),
    };
    if covers {
        check("digest", true, yes)
    } else {
        check("digest", false, no)
    }
}

fn reference_check(format: SignatureFormat, reference: CertificateReference) -> Check {
    let what = match format {
        SignatureFormat::Cades => "signing-certificate-v2",
        SignatureFormat::Jades => "x5t#S256",
    };
    match reference {
        CertificateReference::Matches => check(
            "signing_certificate",
            true,
            format!("{what} names the signer's certificate"),
        ),
        CertificateReference::Absent => {
            check("signing_certificate", false, format!("{what} is missing"))
        }
        CertificateReference::Mismatch => check(
            "signing_certificate",
            false,
            format!("{what} names another certificate than the signer's"),
        ),
        CertificateReference::UnsupportedHash => check(
            "signing_certificate",
            false,
            format!("{what} uses a hash other than SHA-256"),
        ),
    }
}

/// The signer's certificate is issued by the service CA, and every other certificate the
/// signature carries is the service CA's own: the chain ends at it.
fn chain_check(read: &Parsed, ca_der: &[u8]) -> Check {
    if let Err(why) = certificate::issued_by(&read.signer_certificate, ca_der) {
        return check(
            "chain",
            false,
            format!("the signer's certificate is not from the service CA: {why}"),
        );
    }
    let others: Vec<&Vec<u8>> = read.chain.iter().skip(1).collect();
    if others.is_empty() {
        return check(
            "chain",
            false,
            "the signature does not carry the service CA's certificate",
        );
    }
    if others.iter().any(|c| c.as_slice() != ca_der) {
        return check(
            "chain",
            false,
            "the signature carries certificates other than the signer's and the service CA's",
        );
    }
    check(
        "chain",
        true,
        "the signer's certificate is issued by the service CA (GET /pki/ca.pem), which ends \
         the chain",
    )
}

fn validity_check(cert: &SignerCertificate, signing_time: Option<OffsetDateTime>) -> Check {
    let Some(at) = signing_time else {
        return check("validity", false, "the signature states no signing time");
    };
    let span = format!(
        "{} to {}",
        rfc3339(cert.not_before),
        rfc3339(cert.not_after)
    );
    if at < cert.not_before {
        check(
            "validity",
            false,
            format!(
                "signed at {}, before the certificate was valid ({span})",
                rfc3339(at)
            ),
        )
    } else if at > cert.not_after {
        check(
            "validity",
            false,
            format!(
                "signed at {}, after the certificate expired ({span})",
                rfc3339(at)
            ),
        )
    } else {
        check(
            "validity",
            true,
            format!(
                "signed at {}, while the certificate was valid ({span})",
                rfc3339(at)
            ),
        )
    }
}

fn key_usage_check(cert: &SignerCertificate) -> Check {
    match cert.key_usage {
        _ if cert.is_ca => check(
            "key_usage",
            false,
            "the signer's certificate is a CA certificate, which signs no documents",
        ),
        Some((true, true)) => check(
            "key_usage",
            true,
            "keyUsage allows digitalSignature and nonRepudiation",
        ),
        Some(_) => check(
            "key_usage",
            false,
            "keyUsage does not allow both digitalSignature and nonRepudiation",
        ),
        None => check("key_usage", false, "the certificate has no keyUsage"),
    }
}

/// Revocation at the signing time: a certificate revoked after the signature was made
/// leaves it valid (the key signed nothing more from then on); one revoked at or before
/// the signing time does not.
pub fn revocation_check(
    revocation: Option<&Revocation>,
    signing_time: Option<OffsetDateTime>,
) -> Check {
    let Some(r) = revocation else {
        return check("revocation", true, "the certificate is not revoked");
    };
    let why = if r.superseded {
        "replaced by a newer key"
    } else {
        "revoked"
    };
    match signing_time {
        Some(at) if at < r.revoked_at => check(
            "revocation",
            true,
            format!(
                "{why} at {}, after the signing time {}: signatures made before stay valid",
                rfc3339(r.revoked_at),
                rfc3339(at)
            ),
        ),
        Some(at) => check(
            "revocation",
            false,
            format!(
                "{why} at {}, at or before the signing time {}",
                rfc3339(r.revoked_at),
                rfc3339(at)
            ),
        ),
        None => check(
            "revocation",
            false,
            format!(
                "{why} at {}, and the signature states no signing time",
                rfc3339(r.revoked_at)
            ),
        ),
    }
}

/// Whether civis recorded producing this signature (keyed by the hash of its bytes).
fn produced_check(record: Option<&ProducedSignature>, ours: bool) -> Check {
    match record {
        Some(p) => {
            let by = match p.kind {
                Kind::Seal => "an e-seal",
                Kind::Official => "an official's approval",
            };
            check(
                "produced",
                true,
                format!(
                    "civis produced this signature ({by}) at {}",
                    rfc3339(p.signed_at)
                ),
            )
        }
        None if ours => check(
            "produced",
            false,
            "civis has no record of producing this signature although the service CA \
             certified its key: it was made outside civis, or the record is lost",
        ),
        None => check("produced", false, "civis did not produce this signature"),
    }
}
