//! The lifecycle every signing key shares, officials' and seals' alike: issuing one (which
//! replaces the holder's live key), reading it, revoking it, and unwrapping it for one
//! signing operation.

use time::OffsetDateTime;

use super::{Holder, HolderRef, KeyInUse, Kind, Pki, SigningKey};
use crate::crypto::pki::Subject;
use crate::domain::audit::{Actor, Entry, Salt, event};
use crate::domain::{DomainError, Result, Rng, new_id, rfc3339};

impl Pki<'_> {
    /// Issues a key for `holder`, certified for `subject`, and makes it the holder's
    /// current key. The holder's live key, if any, is revoked (superseded) in the same
    /// transaction.
    pub(super) fn issue_key(
        &self,
        holder: Holder,
        organisation: String,
        subject: &Subject,
        now: OffsetDateTime,
    ) -> Result<SigningKey> {
        let id = new_id(self.rng)?;
        let (issued, wrapped_key) = self.new_key(holder.kind(), &id, subject, now)?;
        let key = SigningKey {
            id,
            holder,
            organisation,
            certificate: issued.der,
            serial: issued.serial,
            not_after: issued.not_after,
            wrapped_key,
            created_at: now,
            revoked_at: None,
        };
        let entry = key_entry(&key, Change::Created, now, self.rng)?;
        let replaced = self.store.transact(|tx| {
            let live = tx
                .signing_keys()
                .current(key.holder.as_ref())?
                .filter(|old| old.revoked_at.is_none());
            if let Some(mut old) = live.clone() {
                old.revoked_at = Some(now);
                tx.signing_keys().update(&old);
                tx.revocations().add(&old.revocation(now, true));
            }
            tx.signing_keys().insert(&key)?;
            entry.append(tx)?;
            Ok::<_, DomainError>(live.is_some())
        })?;
        if replaced {
            self.crl.invalidate();
        }
        Ok(key)
    }

    /// One key of `kind` by id.
    ///
    /// # Errors
    /// [`DomainError::NotFound`] (named after the kind) when there is no such key of that
    /// kind; storage errors.
    pub fn key(&self, kind: Kind, id: &str) -> Result<SigningKey> {
        self.store
            .signing_keys()
            .get(id)?
            .filter(|k| k.holder.kind() == kind)
            .ok_or(DomainError::NotFound(kind.noun()))
    }

    /// Revokes a key of `kind` from `now`. Revoking a revoked key changes nothing (the first
    /// revocation time stays).
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn revoke(&self, kind: Kind, id: &str, now: OffsetDateTime) -> Result<()> {
        let salt = Salt::new(self.rng)?;
        let changed = self.store.transact(|tx| {
            let mut key = tx
                .signing_keys()
                .get(id)?
                .filter(|k| k.holder.kind() == kind)
                .ok_or(DomainError::NotFound(kind.noun()))?;
            if key.revoked_at.is_some() {
                return Ok(false);
            }
            key.revoked_at = Some(now);
            tx.signing_keys().update(&key);
            tx.revocations().add(&key.revocation(now, false));
            key_entry_salted(&key, Change::Revoked, now, &salt).append(tx)?;
            Ok::<_, DomainError>(true)
        })?;
        if changed {
            self.crl.invalidate();
        }
        Ok(())
    }

    /// The holder's live key, unwrapped for one signing operation: only while it is not
    /// revoked and its certificate is valid at `now`.
    ///
    /// # Errors
    /// [`DomainError::NotFound`] (named after the kind) when the holder has no usable key;
    /// [`DomainError::Unavailable`] without `kek.key`; [`DomainError::Internal`] when the
    /// stored key does not unwrap; storage errors.
    pub fn key_in_use(&self, holder: HolderRef<'_>, now: OffsetDateTime) -> Result<KeyInUse> {
        let key = self
            .store
            .signing_keys()
            .current(holder)?
            .filter(|k| k.revoked_at.is_none() && now <= k.not_after)
            .ok_or(DomainError::NotFound(holder.kind.noun()))?;
        self.unwrap_key(
            holder.kind,
            &key.id,
            &key.wrapped_key,
            &key.certificate,
            &key.serial,
        )
    }
}

/// What happened to a key, for its audit entry.
#[derive(Clone, Copy)]
enum Change {
    Created,
    Revoked,
}

fn key_entry(
    key: &SigningKey,
    change: Change,
    now: OffsetDateTime,
    rng: &dyn Rng,
) -> Result<Entry> {
    Ok(key_entry_salted(key, change, now, &Salt::new(rng)?))
}

/// `official.created`, `seal.revoked`…: the officer's action, about the official (a
/// citizen) or about no citizen (a seal, which belongs to a client).
fn key_entry_salted(key: &SigningKey, change: Change, now: OffsetDateTime, salt: &Salt) -> Entry {
    let (event, subject, holder) = match (&key.holder, change) {
        (Holder::Official { citizen_id, .. }, Change::Created) => (
            event::OFFICIAL_CREATED,
            Some(citizen_id.as_str()),
            serde_json::json!({"citizen_id": citizen_id}),
        ),
        (Holder::Official { citizen_id, .. }, Change::Revoked) => (
            event::OFFICIAL_REVOKED,
            Some(citizen_id.as_str()),
            serde_json::json!({"citizen_id": citizen_id}),
        ),
        (Holder::Seal { client_id }, Change::Created) => (
            event::SEAL_CREATED,
            None,
            serde_json::json!({"client_id": client_id}),
        ),
        (Holder::Seal { client_id }, Change::Revoked) => (
            event::SEAL_REVOKED,
            None,
            serde_json::json!({"client_id": client_id}),
        ),
    };
    let details = serde_json::json!({
        "key_id": key.id,
        "holder": holder,
        "organisation": key.organisation,
        "certificate_serial": hex::encode(&key.serial),
        "not_after": rfc3339(key.not_after),
    });
    Entry::salted(event, Actor::Admin, subject, &details, now, salt)
}
