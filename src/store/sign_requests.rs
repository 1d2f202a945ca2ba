//! Sign requests (with, once approved, their signatures and approval evidence) and the
//! approval ceremonies that wait for an official's passkey, as versioned records.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use webauthn_rs::prelude::PasskeyAuthentication;

use super::bytes::{b64, unb64};
use super::record::{printable_key, record_v1};
use super::tx::Read;
use super::{Result, Store, StoreError, Tx};
use crate::domain::signing::approval::ApprovalCeremony;
use crate::domain::signing::requests::{Approval, ProducedSignature, SignRequest};
use crate::domain::signing::{Document, SignatureFormat};

/// Tree of sign requests by id (durable: the evidence lives here).
pub const SIGN_REQUESTS: &str = "sign_requests";
/// Tree of pending approval ceremonies by ceremony id (single use, short-lived).
pub const SIGN_APPROVALS: &str = "sign_approvals";
/// Tree of each official's pending requests by citizen id: `(id, expires_at)` pairs, so
/// that a new request can be refused when too many wait, in the transaction that would
/// add it.
pub const SIGN_REQUESTS_PENDING: &str = "sign_requests_pending";

#[derive(Serialize, Deserialize, Default)]
struct PendingV1 {
    /// `(request id, approval deadline)`.
    requests: Vec<(String, i64)>,
}
record_v1!(StoredPending, SIGN_REQUESTS_PENDING, PendingV1);

#[derive(Serialize, Deserialize)]
struct DocumentV1 {
    name: String,
    /// Standard base64.
    digest: String,
}

#[derive(Serialize, Deserialize)]
struct SignatureV1 {
    name: String,
    format: String,
    signature: String,
}

#[derive(Serialize, Deserialize)]
struct ApprovalV1 {
    nonce: String,
    credential_id: String,
    authenticator_data: String,
    client_data_json: String,
    signature: String,
    credential_public_key: String,
    certificate: String,
    rp_id: String,
    origin: String,
    #[serde(with = "time::serde::rfc3339")]
    approved_at: OffsetDateTime,
    signatures: Vec<SignatureV1>,
}

#[derive(Serialize, Deserialize)]
struct SignRequestV1 {
    id: String,
    citizen_id: String,
    official_id: String,
    certificate_sha256: String,
    format: String,
    documents: Vec<DocumentV1>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// The approval deadline.
    #[serde(with = "time::serde::rfc3339")]
    approve_by: OffsetDateTime,
    /// When the sweeper may remove the record (the name the expiry index reads).
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    approval: Option<ApprovalV1>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    rejected_at: Option<OffsetDateTime>,
}

record_v1!(StoredSignRequest, SIGN_REQUESTS, SignRequestV1);

// webauthn-rs's own state serialisation (feature `danger-allow-state-serialisation`), with the
// challenge already replaced by the derived one; server-side only, for minutes.
#[derive(Serialize, Deserialize)]
struct ApprovalCeremonyV1 {
    request_id: String,
    citizen_id: String,
    nonce: String,
    state: PasskeyAuthentication,
    rp_id: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

record_v1!(StoredApprovalCeremony, SIGN_APPROVALS, ApprovalCeremonyV1);

fn signature_v1(s: &ProducedSignature) -> SignatureV1 {
    SignatureV1 {
        name: s.name.clone(),
        format: s.format.as_str().to_owned(),
        signature: s.signature.clone(),
    }
}

impl From<&SignRequest> for StoredSignRequest {
    fn from(r: &SignRequest) -> Self {
        Self::V1(SignRequestV1 {
            id: r.id.clone(),
            citizen_id: r.citizen_id.clone(),
            official_id: r.official_id.clone(),
            certificate_sha256: b64(&r.certificate_sha256),
            format: r.format.as_str().to_owned(),
            documents: r
                .documents
                .iter()
                .map(|d| DocumentV1 {
                    name: d.name.clone(),
                    digest: b64(&d.digest),
                })
                .collect(),
            created_at: r.created_at,
            approve_by: r.expires_at,
            expires_at: r.keep_until(),
            rejected_at: r.rejected_at,
            approval: r.approval.as_ref().map(|(sigs, a)| ApprovalV1 {
                nonce: b64(&a.nonce),
                credential_id: a.credential_id.clone(),
                authenticator_data: b64(&a.authenticator_data),
                client_data_json: b64(&a.client_data_json),
                signature: b64(&a.signature),
                credential_public_key: b64(&a.credential_public_key),
                certificate: b64(&a.certificate),
                rp_id: a.rp_id.clone(),
                origin: a.origin.clone(),
                approved_at: a.approved_at,
                signatures: sigs.iter().map(signature_v1).collect(),
            }),
        })
    }
}

impl StoredSignRequest {
    fn into_domain(self, key: &[u8]) -> Result<SignRequest> {
        let Self::V1(r) = self;
        let corrupt = |reason: &str| StoreError::Corrupt {
            tree: SIGN_REQUESTS,
            key: printable_key(key),
            reason: reason.to_owned(),
        };
        let bytes = |s: &str, what: &str| unb64(s).ok_or_else(|| corrupt(what));
        let b32 = |s: &str, what: &str| -> Result<[u8; 32]> {
            bytes(s, what)?.try_into().map_err(|_| corrupt(what))
        };
        let format = |s: &str| SignatureFormat::parse(s).ok_or_else(|| corrupt("unknown format"));
        let documents = r
            .documents
            .iter()
            .map(|d| {
                Ok(Document {
                    name: d.name.clone(),
                    digest: b32(&d.digest, "digest")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let approval = match r.approval {
            None => None,
            Some(a) => {
                let sigs = a
                    .signatures
                    .iter()
                    .map(|s| {
                        Ok(ProducedSignature {
                            name: s.name.clone(),
                            format: format(&s.format)?,
                            signature: s.signature.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some((
                    sigs,
                    Approval {
                        nonce: b32(&a.nonce, "nonce")?,
                        credential_id: a.credential_id,
                        authenticator_data: bytes(&a.authenticator_data, "authenticator data")?,
                        client_data_json: bytes(&a.client_data_json, "client data")?,
                        signature: bytes(&a.signature, "assertion signature")?,
                        credential_public_key: bytes(&a.credential_public_key, "public key")?,
                        certificate: bytes(&a.certificate, "certificate")?,
                        rp_id: a.rp_id,
                        origin: a.origin,
                        approved_at: a.approved_at,
                    },
                ))
            }
        };
        Ok(SignRequest {
            certificate_sha256: b32(&r.certificate_sha256, "certificate hash")?,
            format: format(&r.format)?,
            id: r.id,
            citizen_id: r.citizen_id,
            official_id: r.official_id,
            documents,
            created_at: r.created_at,
            expires_at: r.approve_by,
            approval,
            rejected_at: r.rejected_at,
        })
    }
}

/// Sign request storage. Reads work on the committed store and in a transaction; writes
/// only in a transaction.
pub struct SignRequests<S>(S);

impl Store {
    /// Committed sign requests and approval ceremonies.
    pub fn sign_requests(&self) -> SignRequests<&Self> {
        SignRequests(self)
    }
}

impl<'a> Tx<'a> {
    /// Sign requests and approval ceremonies in this transaction.
    pub fn sign_requests(&mut self) -> SignRequests<&mut Tx<'a>> {
        SignRequests(self)
    }
}

impl<S: Read> SignRequests<S> {
    /// A request by id.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, id: &str) -> Result<Option<SignRequest>> {
        self.0
            .get::<StoredSignRequest>(id.as_bytes())?
            .map(|r| r.into_domain(id.as_bytes()))
            .transpose()
    }

    /// An approval ceremony by id, left in place.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn ceremony(&self, id: &str) -> Result<Option<ApprovalCeremony>> {
        self.0
            .get::<StoredApprovalCeremony>(id.as_bytes())?
            .map(|c| ceremony_domain(c, id.as_bytes()))
            .transpose()
    }
}

fn ceremony_domain(c: StoredApprovalCeremony, key: &[u8]) -> Result<ApprovalCeremony> {
    let StoredApprovalCeremony::V1(c) = c;
    let nonce = unb64(&c.nonce)
        .and_then(|n| <[u8; 32]>::try_from(n).ok())
        .ok_or_else(|| StoreError::Corrupt {
            tree: SIGN_APPROVALS,
            key: printable_key(key),
            reason: "malformed nonce".into(),
        })?;
    Ok(ApprovalCeremony {
        request_id: c.request_id,
        citizen_id: c.citizen_id,
        nonce,
        state: c.state,
        rp_id: c.rp_id,
        expires_at: c.expires_at,
    })
}

impl SignRequests<&mut Tx<'_>> {
    /// Stores a new request, filed for expiry at its retention end, and counts it among its
    /// official's pending ones.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the id exists.
    pub fn insert(&mut self, r: &SignRequest) -> Result<()> {
        self.0
            .insert_new_expiring(r.id.as_bytes(), &StoredSignRequest::from(r), r.keep_until())?;
        let mut pending = self.pending_list(&r.citizen_id, r.created_at)?;
        pending
            .requests
            .push((r.id.clone(), r.expires_at.unix_timestamp()));
        self.put_pending(&r.citizen_id, pending, r.expires_at);
        Ok(())
    }

    /// Replaces a request (approval, rejection), filed again for its new retention end; a
    /// request that was approved or rejected no longer counts as pending.
    ///
    /// # Errors
    /// Decoding and backend errors of the pending list.
    pub fn update(&mut self, r: &SignRequest) -> Result<()> {
        self.0
            .put_expiring(r.id.as_bytes(), &StoredSignRequest::from(r), r.keep_until());
        if r.approval.is_some() || r.rejected_at.is_some() {
            let mut pending = self.pending_list(&r.citizen_id, r.created_at)?;
            pending.requests.retain(|(id, _)| *id != r.id);
            let last = pending.requests.iter().map(|(_, e)| *e).max();
            let until = last
                .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok())
                .unwrap_or(r.created_at);
            self.put_pending(&r.citizen_id, pending, until);
        }
        Ok(())
    }

    /// How many of `citizen_id`'s requests are still waiting for a decision at `now`.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn pending(&mut self, citizen_id: &str, now: OffsetDateTime) -> Result<usize> {
        Ok(self.pending_list(citizen_id, now)?.requests.len())
    }

    /// The official's pending list without the requests whose deadline passed.
    fn pending_list(&mut self, citizen_id: &str, now: OffsetDateTime) -> Result<PendingV1> {
        let StoredPending::V1(mut list) = self
            .0
            .get::<StoredPending>(citizen_id.as_bytes())?
            .unwrap_or(StoredPending::V1(PendingV1::default()));
        let now = now.unix_timestamp();
        list.requests.retain(|(_, expires)| *expires > now);
        Ok(list)
    }

    /// Writes the list, filed for expiry with its last deadline (an empty one at once).
    fn put_pending(&mut self, citizen_id: &str, list: PendingV1, until: OffsetDateTime) {
        self.0
            .put_expiring(citizen_id.as_bytes(), &StoredPending::V1(list), until);
    }

    /// Stores a new approval ceremony, filed for expiry.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the id is taken.
    pub fn insert_ceremony(&mut self, id: &str, c: &ApprovalCeremony) -> Result<()> {
        let v1 = ApprovalCeremonyV1 {
            request_id: c.request_id.clone(),
            citizen_id: c.citizen_id.clone(),
            nonce: b64(&c.nonce),
            state: c.state.clone(),
            rp_id: c.rp_id.clone(),
            expires_at: c.expires_at,
        };
        self.0
            .insert_new_expiring(id.as_bytes(), &StoredApprovalCeremony::V1(v1), c.expires_at)
    }

    /// Removes and returns an approval ceremony: whoever takes it first owns it.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn take_ceremony(&mut self, id: &str) -> Result<Option<ApprovalCeremony>> {
        self.0
            .take::<StoredApprovalCeremony>(id.as_bytes())?
            .map(|c| ceremony_domain(c, id.as_bytes()))
            .transpose()
    }
}

/// [`super::record::round_trip`] for the record stored in `tree`, if it is one of this
/// module's.
pub(super) fn round_trip(tree: &str, bytes: &[u8]) -> Option<std::result::Result<(), String>> {
    use super::record::round_trip as check;
    Some(match tree {
        SIGN_REQUESTS => check::<StoredSignRequest>(bytes),
        SIGN_APPROVALS => check::<StoredApprovalCeremony>(bytes),
        SIGN_REQUESTS_PENDING => check::<StoredPending>(bytes),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::store::record::{decode, encode};

    fn signed() -> SignRequest {
        let at = datetime!(2026-12-02 17:00 UTC);
        SignRequest {
            id: "r".into(),
            citizen_id: "c".into(),
            official_id: "o".into(),
            certificate_sha256: [3; 32],
            format: SignatureFormat::Jades,
            documents: vec![Document {
                name: "a.pdf".into(),
                digest: [1; 32],
            }],
            created_at: at,
            expires_at: at + time::Duration::minutes(15),
            approval: Some((
                vec![ProducedSignature {
                    name: "a.pdf".into(),
                    format: SignatureFormat::Jades,
                    signature: "h..s".into(),
                }],
                Approval {
                    nonce: [9; 32],
                    credential_id: "cred".into(),
                    authenticator_data: vec![1, 2],
                    client_data_json: b"{}".to_vec(),
                    signature: vec![3],
                    credential_public_key: vec![4],
                    certificate: vec![5],
                    rp_id: "localhost".into(),
                    origin: "http://localhost:1".into(),
                    approved_at: at + time::Duration::minutes(1),
                },
            )),
            rejected_at: None,
        }
    }

    #[test]
    fn a_signed_request_round_trips_and_names_its_retention_as_expires_at() {
        let bytes = encode(&StoredSignRequest::from(&signed()));
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["v"], "1");
        // The sweeper reads `data.expires_at`: for a signed request, ten years on.
        assert_eq!(value["data"]["expires_at"], "2036-12-02T17:01:00Z");
        assert_eq!(value["data"]["approve_by"], "2026-12-02T17:15:00Z");
        let back = decode::<StoredSignRequest>(b"r", &bytes)
            .unwrap()
            .into_domain(b"r")
            .unwrap();
        assert_eq!(back, signed());
    }

    #[test]
    fn a_corrupt_digest_is_reported_not_misread() {
        let mut value: serde_json::Value =
            serde_json::from_slice(&encode(&StoredSignRequest::from(&signed()))).unwrap();
        value["data"]["documents"][0]["digest"] = "AAAA".into();
        let bytes = serde_json::to_vec(&value).unwrap();
        let err = decode::<StoredSignRequest>(b"r", &bytes)
            .unwrap()
            .into_domain(b"r");
        assert!(matches!(err, Err(StoreError::Corrupt { .. })), "{err:?}");
    }
}
