//! Sign requests: an official asks civis (through an agency app holding a `sign` token) to
//! sign 1–100 document digests; the request waits until the official approves it with a
//! passkey ([`super::approval`]) or it expires. Its canonical encoding ([`super::canonical`]) is
//! what the approval's WebAuthn challenge commits to (spec/flows/signing-approval.md).

use time::{Duration, OffsetDateTime};

use super::documents::{self, DocumentInput};
use super::{Document, HolderRef, Kind, Pki, SignatureFormat};
use crate::crypto::digest::sha256;
use crate::domain::audit::{Actor, Entry, event};
use crate::domain::{DomainError, Result, new_id};
use serde_json::json;

/// How long an official has to approve a request.
pub const APPROVAL_WINDOW: Duration = Duration::minutes(15);
/// How long an expired or rejected request stays readable (as such) before the sweeper
/// removes it.
pub const EXPIRED_RETENTION: Duration = Duration::days(1);
/// How long a signed request, with its signatures and evidence, is kept.
pub const SIGNED_RETENTION: Duration = Duration::days(3653);
/// Most documents in one request.
pub const MAX_DOCUMENTS: usize = 100;
/// Most requests of one official that may wait for a decision at once: each is a durable
/// record and an audit entry, so a leaked `sign` token cannot fill the store.
pub const MAX_PENDING: usize = 100;
/// A signature produced for one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedSignature {
    /// The document's name.
    pub name: String,
    /// The format.
    pub format: SignatureFormat,
    /// Standard base64 of the DER (`cades`) or the JWS (`jades`).
    pub signature: String,
}

/// The approval as evidence: everything needed to re-check it offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The random half of the challenge.
    pub nonce: [u8; 32],
    /// The passkey's credential id (base64url).
    pub credential_id: String,
    /// The assertion's authenticator data.
    pub authenticator_data: Vec<u8>,
    /// The assertion's client data, as the browser sent it.
    pub client_data_json: Vec<u8>,
    /// The assertion signature (DER ECDSA).
    pub signature: Vec<u8>,
    /// The passkey's public key at approval time (SPKI DER).
    pub credential_public_key: Vec<u8>,
    /// The official's certificate that signed (DER).
    pub certificate: Vec<u8>,
    /// The WebAuthn RP ID.
    pub rp_id: String,
    /// The origin the assertion was made for.
    pub origin: String,
    /// When it was approved and signed.
    pub approved_at: OffsetDateTime,
}

/// A sign request and, once approved, its signatures and evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// Random id (UUID form).
    pub id: String,
    /// The official (citizen) who asked and alone may approve.
    pub citizen_id: String,
    /// The official key that will sign (the one live when the request was made).
    pub official_id: String,
    /// SHA-256 of that key's certificate (DER): the approval commits to the signer.
    pub certificate_sha256: [u8; 32],
    /// The format of every signature.
    pub format: SignatureFormat,
    /// The documents, in the order given.
    pub documents: Vec<Document>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// The approval deadline.
    pub expires_at: OffsetDateTime,
    /// The signatures and evidence once approved.
    pub approval: Option<(Vec<ProducedSignature>, Approval)>,
    /// When the official declined it instead.
    pub rejected_at: Option<OffsetDateTime>,
}

/// What a request is, at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Waiting for approval.
    Pending,
    /// Approved and signed.
    Signed,
    /// Declined by the official; nothing was signed.
    Rejected,
    /// Not approved in time; it never will be.
    Expired,
}

impl Status {
    /// The name in answers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Signed => "signed",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }
}

impl SignRequest {
    /// The status at `now`: signed once approved, expired from the deadline on.
    pub fn status(&self, now: OffsetDateTime) -> Status {
        if self.approval.is_some() {
            Status::Signed
        } else if self.rejected_at.is_some() {
            Status::Rejected
        } else if now >= self.expires_at {
            Status::Expired
        } else {
            Status::Pending
        }
    }

    /// When the store may forget the record.
    pub fn keep_until(&self) -> OffsetDateTime {
        match &self.approval {
            Some((_, a)) => a.approved_at + SIGNED_RETENTION,
            None => self.rejected_at.unwrap_or(self.expires_at) + EXPIRED_RETENTION,
        }
    }
}

/// A request as the caller sends it, unchecked.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// `(name, base64url digest)` pairs.
    pub documents: Vec<(String, String)>,
    /// Format name.
    pub format: String,
}

/// Checks every field, reporting all problems at once (the batch rules sealing shares,
/// [`super::documents::batch`], with at most [`MAX_DOCUMENTS`]).
///
/// # Errors
/// [`DomainError::Invalid`] listing every bad field.
pub fn validate(input: &NewRequest) -> Result<(SignatureFormat, Vec<Document>)> {
    let documents: Vec<DocumentInput> = input
        .documents
        .iter()
        .map(|(name, digest)| DocumentInput {
            name: name.clone(),
            digest: digest.clone(),
        })
        .collect();
    documents::batch(&input.format, &documents, MAX_DOCUMENTS)
}

impl Pki<'_> {
    /// Creates a pending request for `citizen_id`, who must hold a live official key.
    ///
    /// # Errors
    /// [`DomainError::Forbidden`] when the citizen is not an official (now);
    /// [`DomainError::Invalid`] naming every bad field; storage errors.
    pub fn create_request(
        &self,
        citizen_id: &str,
        input: &NewRequest,
        now: OffsetDateTime,
    ) -> Result<SignRequest> {
        let official = self
            .store
            .signing_keys()
            .current(HolderRef {
                kind: Kind::Official,
                id: citizen_id,
            })?
            .filter(|o| o.revoked_at.is_none() && now <= o.not_after)
            .ok_or(DomainError::Forbidden("not an official"))?;
        let (format, documents) = validate(input)?;
        let request = SignRequest {
            id: new_id(self.rng)?,
            citizen_id: citizen_id.to_owned(),
            official_id: official.id,
            certificate_sha256: sha256(&official.certificate),
            format,
            documents,
            created_at: now,
            // Whole seconds: the deadline is exactly what the canonical encoding commits to.
            expires_at: (now + APPROVAL_WINDOW)
                .replace_nanosecond(0)
                .unwrap_or(now + APPROVAL_WINDOW),
            approval: None,
            rejected_at: None,
        };
        let entry = Entry::new(
            event::SIGN_REQUESTED,
            Actor::Citizen(citizen_id),
            Some(citizen_id),
            json!({
                "request_id": request.id,
                "key_id": request.official_id,
                "format": request.format.as_str(),
                "documents": super::produce::documents_json(&request.documents),
            }),
            now,
            self.rng,
        )?;
        self.store.transact(|tx| {
            // Read and written in this transaction: concurrent requests cannot both take
            // the last place.
            if tx.sign_requests().pending(citizen_id, now)? >= MAX_PENDING {
                return Err(DomainError::Conflict(
                    "too many requests wait for a decision: approve, reject or let some expire first",
                ));
            }
            tx.sign_requests().insert(&request)?;
            entry.append(tx)?;
            Ok(())
        })?;
        Ok(request)
    }

    /// The request `id` of `citizen_id`; another official's request is "not found".
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn request_of(&self, citizen_id: &str, id: &str) -> Result<SignRequest> {
        self.store
            .sign_requests()
            .get(id)?
            .filter(|r| r.citizen_id == citizen_id)
            .ok_or(DomainError::NotFound("sign request"))
    }

    /// The request `id`, whoever made it (the admin reads evidence).
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn request(&self, id: &str) -> Result<SignRequest> {
        self.store
            .sign_requests()
            .get(id)?
            .ok_or(DomainError::NotFound("sign request"))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let input = NewRequest {
            documents: vec![
                ("".into(), "AAAA".into()),
                ("ok".into(), URL_SAFE_NO_PAD.encode([0u8; 32])),
                ("bad\u{7}".into(), "!!".into()),
            ],
            format: "pdf".into(),
        };
        let Err(DomainError::Invalid(errors)) = validate(&input) else {
            panic!("invalid");
        };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_ref()).collect();
        assert_eq!(
            fields,
            [
                "format",
                "documents[0].name",
                "documents[0].digest",
                "documents[2].name",
                "documents[2].digest"
            ]
        );
        let empty = NewRequest {
            documents: vec![],
            format: "cades".into(),
        };
        assert!(validate(&empty).is_err());
    }
}
