//! Signing keys and the service PKI: officials (a citizen who signs for an organisation)
//! and seals (an organisation's key, used by one agency client), each a fresh P-256 key
//! certified by the service CA and stored only wrapped under the key-encryption key;
//! revocation, and the CA's CRL.
//!
//! One live key per holder: creating an official for a citizen who already has a live one
//! (or a seal for a client that has one) replaces it, and the old certificate is revoked in
//! the same transaction with reason `superseded`. That makes renewal (a new title, an
//! expiring certificate) one call without a gap, and "the key an official or client signs
//! with" is never ambiguous.

pub mod approval;
pub mod canonical;
pub mod crl;
pub mod documents;
pub mod evidence;
mod keys;
mod officials;
pub mod produce;
pub mod requests;
mod sealing;
mod seals;
pub mod verify;

use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::{DomainError, Result, Rng, random_bytes};
use crate::crypto::EcdsaFileKey;
use crate::crypto::kek::Kek;
use crate::crypto::pki::{self, Ca, Issued, Subject};
use crate::store::Store;

pub use crl::CrlCache;
pub use officials::NewOfficial;
pub use produce::{
    Document, ProducedSignature, Producer, SignatureFormat, Signed, record_produced, sign_batch,
};
pub use sealing::{MAX_SEAL_DOCUMENTS, NO_LIVE_SEAL};
pub use seals::NewSeal;
pub use verify::{Check, Verification, VerifyInput};

/// Longest title, organisation or commonName accepted: the X.520 upper bound (RFC 5280
/// Appendix A, `ub-title`, `ub-organization-name`, `ub-common-name`), since the values go
/// into certificates verbatim.
pub const MAX_NAME_CHARS: usize = 64;

/// Who holds a signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A citizen who signs with a title for an organisation.
    Official {
        /// The citizen.
        citizen_id: String,
        /// Their title, as certified.
        title: String,
    },
    /// An organisation's e-seal, used by one agency client.
    Seal {
        /// The client that seals with it.
        client_id: String,
    },
}

/// A holder as keys are looked up by: the kind and the citizen or client id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HolderRef<'a> {
    /// Official or seal.
    pub kind: Kind,
    /// The citizen id (officials) or client id (seals).
    pub id: &'a str,
}

impl Holder {
    /// Official or seal.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Official { .. } => Kind::Official,
            Self::Seal { .. } => Kind::Seal,
        }
    }

    /// The kind and the citizen or client id.
    pub fn as_ref(&self) -> HolderRef<'_> {
        let id = match self {
            Self::Official { citizen_id, .. } => citizen_id,
            Self::Seal { client_id } => client_id,
        };
        HolderRef {
            kind: self.kind(),
            id,
        }
    }
}

/// A signing key: an official's or a seal's, certified by the service CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Random id (UUID form).
    pub id: String,
    /// Who signs with it.
    pub holder: Holder,
    /// The organisation, as certified.
    pub organisation: String,
    /// The certificate, DER.
    pub certificate: Vec<u8>,
    /// Its serial number.
    pub serial: Vec<u8>,
    /// The certificate's end.
    pub not_after: OffsetDateTime,
    /// The private key (PKCS#8) wrapped under the KEK, bound to this record.
    pub wrapped_key: Vec<u8>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was revoked (replaced or deleted); it signs nothing from then on.
    pub revoked_at: Option<OffsetDateTime>,
}

impl SigningKey {
    /// Its CRL entry, revoked at `now`.
    fn revocation(&self, now: OffsetDateTime, superseded: bool) -> Revocation {
        Revocation {
            serial: self.serial.clone(),
            revoked_at: now,
            not_after: self.not_after,
            superseded,
        }
    }
}

/// A revoked certificate, as the CRL needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Serial number.
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// The certificate's end: after it the CRL may drop the entry (RFC 5280 §3.3).
    pub not_after: OffsetDateTime,
    /// Replaced by the holder's next key rather than revoked on its own.
    pub superseded: bool,
}

/// A live key unwrapped for one signing operation: the private key lives only inside
/// `signer` (ring), the PKCS#8 it came from was zeroed once parsed.
#[derive(Debug)]
pub struct KeyInUse {
    /// The official's or seal's id.
    pub id: String,
    /// Its certificate, DER.
    pub certificate: Vec<u8>,
    /// The certificate's serial number.
    pub serial: Vec<u8>,
    /// The key, behind the signer seam.
    pub signer: EcdsaFileKey,
}

/// The kind of a signing key, bound into its wrapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An official's key.
    Official,
    /// An organisation's seal.
    Seal,
}

impl Kind {
    /// `official` or `seal`: in ids of the index, wrapping data and "not found" answers.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Official => "official",
            Self::Seal => "seal",
        }
    }
}

/// Associated data of a wrapped key: its kind and record id, so that a wrapped key copied
/// into another record, or from a seal into an official, does not unwrap.
fn key_aad(kind: Kind, id: &str) -> Vec<u8> {
    format!("civis signing key v1\0{}\0{id}", kind.noun()).into_bytes()
}

/// Officials, seals and the CRL; borrows what it needs from the service state.
pub struct Pki<'a> {
    /// Where the records live.
    pub store: &'a Store,
    /// Ids and serial numbers.
    pub rng: &'a dyn Rng,
    /// The service CA.
    pub ca: &'a Ca,
    /// The key-encryption key (`None` when `kek.key` is missing).
    pub kek: Option<&'a Kek>,
    /// Validity of new certificates.
    pub validity: Duration,
    /// The CRL, rebuilt after revocations.
    pub crl: &'a CrlCache,
}

impl Pki<'_> {
    /// The KEK, or 503 naming the missing file.
    fn kek(&self) -> Result<&Kek> {
        self.kek.ok_or(DomainError::Unavailable(
            "no key-encryption key: kek.key is missing from the keys directory, so signing \
             keys cannot be created or used (see README, \"Signing keys and the service PKI\")",
        ))
    }

    /// A fresh key for record `id` of `kind`: certified for `subject`, wrapped for storage.
    fn new_key(
        &self,
        kind: Kind,
        id: &str,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<(Issued, Vec<u8>)> {
        use crate::crypto::Signer as _;
        let kek = self.kek()?;
        let internal = |e: &dyn std::fmt::Display| DomainError::Internal(e.to_string());
        let (pkcs8, key) = pki::new_signing_key().map_err(|e| internal(&e))?;
        let wrapped = kek
            .wrap(&key_aad(kind, id), &pkcs8)
            .map_err(|e| internal(&e))?;
        let issued = self
            .ca
            .issue(
                subject,
                key.public_key(),
                random_bytes(self.rng)?,
                now,
                self.validity,
            )
            .map_err(|e| internal(&e))?;
        Ok((issued, wrapped))
    }

    /// Unwraps a stored key for one signing operation.
    fn unwrap_key(
        &self,
        kind: Kind,
        id: &str,
        wrapped: &[u8],
        certificate: &[u8],
        serial: &[u8],
    ) -> Result<KeyInUse> {
        let pkcs8: Zeroizing<Vec<u8>> = self
            .kek()?
            .unwrap(&key_aad(kind, id), wrapped)
            .map_err(|e| DomainError::Internal(format!("signing key {id}: {e}")))?;
        let signer = EcdsaFileKey::from_pkcs8(&pkcs8)
            .map_err(|e| DomainError::Internal(format!("signing key {id}: {e}")))?;
        Ok(KeyInUse {
            id: id.to_owned(),
            certificate: certificate.to_vec(),
            serial: serial.to_vec(),
            signer,
        })
    }
}

/// Checks a title or organisation: trimmed, 1–[`MAX_NAME_CHARS`] characters, at least one
/// letter, no control characters (digits and punctuation are fine: "Unit 3, Permits").
fn certified_text(raw: &str) -> std::result::Result<String, String> {
    let text = raw.trim();
    let len = text.chars().count();
    if len == 0 {
        return Err("must not be empty".into());
    }
    if len > MAX_NAME_CHARS {
        return Err(format!(
            "must be at most {MAX_NAME_CHARS} characters (the X.520 limit in certificates)"
        ));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if !text.chars().any(char::is_alphabetic) {
        return Err("must contain a letter".into());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests;
