//! Authenticator attestation and the assurance it allows: which passkeys count as verified
//! hardware keys (`amr` `hwk`, and with user verification eIDAS LoA high).
//!
//! An authenticator's attestation is its maker's signed statement of what model created the
//! key. It proves something only if its certificate chain ends at a root the operator trusts
//! (`--attestation-roots`); `none` and self attestation (signed with the new key itself)
//! prove nothing. Enrolment never refuses a passkey for its attestation — a citizen with an
//! ordinary phone must still be able to sign in — so trust is judged separately, at every
//! login, from the chain webauthn-rs stored with the credential:
//!
//! - the chain must lead to one of the roots configured *now* (removing a root downgrades
//!   every passkey it vouched for, without touching stored data);
//! - it is checked as of the passkey's enrolment, when the authenticator presented it
//!   (attestation certificates may expire later without the key becoming any weaker);
//! - the key must be device-bound: a backup-eligible credential may be copied to other
//!   devices (synced passkeys), so it is not a hardware key whatever its attestation says.
//!   webauthn-rs's own attested-passkey flow refuses such credentials for the same reason.

use std::time::SystemTime;

use time::OffsetDateTime;
use webauthn_rs::prelude::{AttestationCaList, AttestationMetadata, Credential};
use webauthn_rs_core::attestation::verify_attestation_ca_chain;

use super::{DomainError, Result};

/// The CA certificates an operator trusts for authenticator attestation (every model a root
/// attests is accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationRoots {
    list: AttestationCaList,
}

impl AttestationRoots {
    /// Reads every `CERTIFICATE` block of a PEM file.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] for `attestation_roots` when the text holds no certificate or
    /// one that does not parse.
    pub fn from_pem(text: &str) -> Result<Self> {
        const END: &str = "-----END CERTIFICATE-----";
        let mut list = AttestationCaList::default();
        let mut rest = text;
        let mut n = 0;
        // One block at a time: webauthn-rs reads a single certificate from PEM.
        while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
            let Some(len) = rest[start..].find(END) else {
                return Err(DomainError::invalid(
                    "attestation_roots",
                    format!("certificate {} has no END line", n + 1),
                ));
            };
            let block = &rest[start..start + len + END.len()];
            n += 1;
            let one = AttestationCaList::try_from(block.as_bytes()).map_err(|e| {
                DomainError::invalid(
                    "attestation_roots",
                    format!("certificate {n} is not a valid certificate: {e:?}"),
                )
            })?;
            list.union(&one);
            rest = &rest[start + len + END.len()..];
        }
        if list.is_empty() {
            return Err(DomainError::invalid(
                "attestation_roots",
                "no PEM CERTIFICATE block found",
            ));
        }
        Ok(Self { list })
    }

    /// How many distinct roots are trusted.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Never true for a value built by [`AttestationRoots::from_pem`].
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Whether a credential is a hardware key vouched for by `roots`: its attestation chain
/// leads to one of them (as of `enrolled_at`) and it is not backup-eligible. Without roots,
/// nothing is.
pub fn hardware_attested(
    credential: &Credential,
    roots: Option<&AttestationRoots>,
    enrolled_at: OffsetDateTime,
) -> bool {
    let Some(roots) = roots else {
        return false;
    };
    if credential.backup_eligible {
        return false;
    }
    // `None` and self attestation give Ok(None); an untrusted chain an error. Either way
    // the passkey still works, it just does not count as a verified hardware key.
    match verify_attestation_ca_chain(
        &credential.attestation.data,
        &roots.list,
        SystemTime::from(enrolled_at),
    ) {
        Ok(Some(ca)) if ca.blanket_allow() => true,
        Ok(Some(ca)) => match &credential.attestation.metadata {
            AttestationMetadata::Packed { aaguid } | AttestationMetadata::Tpm { aaguid, .. } => {
                ca.aaguids().contains_key(aaguid)
            }
            _ => false,
        },
        Ok(None) => false,
        Err(e) => {
            tracing::debug!(error = %e, "attestation not trusted");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_need_at_least_one_certificate() {
        assert!(AttestationRoots::from_pem("").is_err());
        assert!(AttestationRoots::from_pem("not pem at all").is_err());
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(AttestationRoots::from_pem(bad).is_err());
        let open = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(AttestationRoots::from_pem(open).is_err());
    }

    #[test]
    fn every_block_of_a_bundle_is_read() {
        let pem = |cn: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::new(vec![]).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, cn);
            p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            p.self_signed(&key).unwrap().pem()
        };
        let bundle = format!("# vendor A\n{}\n# vendor B\n{}", pem("A"), pem("B"));
        let roots = AttestationRoots::from_pem(&bundle).unwrap();
        assert_eq!(roots.len(), 2);
    }
}
