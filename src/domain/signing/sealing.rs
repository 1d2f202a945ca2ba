//! Sealing (`POST /seal/v1/sign`): an agency client signs a batch of digests at once with
//! its organisation's e-seal key.
//!
//! The key is unwrapped once per batch; the signatures are made outside any store
//! transaction (no signing under the store's lock), then recorded in one durable
//! transaction that also checks that the seal is still live, so a revocation that lands
//! while a batch is being signed wins: nothing is recorded and nothing handed out.

use time::OffsetDateTime;

use super::produce::{Producer, record_produced, sign_batch};
use super::{Document, Kind, Pki, ProducedSignature, SignatureFormat, Signed};
use crate::domain::audit::{Actor, Entry, event};
use crate::domain::{DomainError, Result, rfc3339};
use serde_json::json;

/// Most documents in one sealing call (CONTRACT.md §5, issue 10 item 4).
pub const MAX_SEAL_DOCUMENTS: usize = 1000;

/// Why a client cannot seal now (→ 409: the client is authorised, its seal is not usable).
pub const NO_LIVE_SEAL: &str = "this client has no live seal: none was created for it, it was \
     revoked, or its certificate has expired; an administrator creates one with \
     POST /admin/v1/seals";

impl Pki<'_> {
    /// Seals `documents` with the live seal of `client_id`, at `now` (whole seconds), and
    /// records every signature before returning them, in the documents' order.
    ///
    /// # Errors
    /// [`DomainError::Conflict`] ([`NO_LIVE_SEAL`]) when the client has no live seal, or it
    /// was revoked while the batch was signed; [`DomainError::Unavailable`] without
    /// `kek.key`; [`DomainError::Internal`] when the key does not unwrap or sign; storage
    /// errors.
    pub fn seal_documents(
        &self,
        client_id: &str,
        documents: &[Document],
        format: SignatureFormat,
        now: OffsetDateTime,
    ) -> Result<Vec<Signed>> {
        let signing_time = now.replace_nanosecond(0).unwrap_or(now);
        let key = self
            .seal_key(client_id, signing_time)
            .map_err(|e| match e {
                DomainError::NotFound(_) => DomainError::Conflict(NO_LIVE_SEAL),
                other => other,
            })?;
        let signed = sign_batch(&key, self.ca.cert_der(), documents, format, signing_time)?;
        let producer = Producer {
            kind: Kind::Seal,
            key_id: &key.id,
            serial: &key.serial,
            holder_id: client_id,
            signed_at: signing_time,
            request_id: None,
        };
        let records = ProducedSignature::batch(&producer, documents, &signed);
        let entry = Entry::new(
            event::SEAL_USED,
            Actor::Client(client_id),
            None,
            json!({
                "key_id": key.id,
                "format": format.as_str(),
                "signed_at": rfc3339(signing_time),
                "documents": documents.len(),
            }),
            now,
            self.rng,
        )?;
        self.record_sealed(&key.id, &records, &entry)?;
        Ok(signed)
    }

    /// Records a sealed batch in one durable transaction, if the seal is still live then:
    /// a revocation that committed while the batch was being signed wins.
    ///
    /// # Errors
    /// [`DomainError::Conflict`] ([`NO_LIVE_SEAL`]) when the seal was revoked (nothing is
    /// recorded); storage errors.
    pub(super) fn record_sealed(
        &self,
        seal_id: &str,
        records: &[ProducedSignature],
        entry: &Entry,
    ) -> Result<()> {
        self.store.transact(|tx| {
            let live = tx
                .signing_keys()
                .get(seal_id)?
                .is_some_and(|s| s.revoked_at.is_none());
            if !live {
                return Err(DomainError::Conflict(NO_LIVE_SEAL));
            }
            record_produced(tx, records)?;
            entry.append(tx)?;
            Ok(())
        })
    }
}
