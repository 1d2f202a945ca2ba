//! Seals: an organisation's e-seal key, used by one agency client.

use time::OffsetDateTime;

use super::{KeyInUse, Kind, Pki, Revocation, Seal, certified_text};
use crate::crypto::pki::Subject;
use crate::domain::{DomainError, Result, new_id};

/// A seal to create, as the admin sends it.
#[derive(Debug, Clone)]
pub struct NewSeal {
    /// The agency client that will seal with it.
    pub client_id: String,
    /// The organisation the seal names.
    pub organisation: String,
}

impl Pki<'_> {
    /// Creates a seal key and certificate for a registered client. A live seal of the same
    /// client is revoked (superseded) in the same transaction.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] for a bad organisation; [`DomainError::NotFound`] for an
    /// unknown client; [`DomainError::Unavailable`] without `kek.key`; storage errors.
    pub fn create_seal(&self, input: NewSeal, now: OffsetDateTime) -> Result<Seal> {
        let organisation = certified_text(&input.organisation)
            .map_err(|detail| DomainError::invalid("organisation", detail))?;
        self.kek()?;
        let client = self
            .store
            .clients()
            .get(&input.client_id)?
            .ok_or(DomainError::NotFound("client"))?;
        let id = new_id(self.rng)?;
        let subject = Subject::Seal {
            organisation: organisation.clone(),
        };
        let (issued, wrapped_key) = self.new_key(Kind::Seal, &id, &subject, now)?;
        let seal = Seal {
            id,
            client_id: client.id,
            organisation,
            certificate: issued.der,
            serial: issued.serial,
            not_after: issued.not_after,
            wrapped_key,
            created_at: now,
            revoked_at: None,
        };
        let replaced = self.store.transact(|tx| {
            let old = tx.seals().current(&seal.client_id)?;
            if let Some(mut old) = old.clone() {
                old.revoked_at = Some(now);
                tx.seals().update(&old);
                tx.revocations().add(&revocation(&old, now, true));
            }
            tx.seals().insert(&seal)?;
            Ok::<_, DomainError>(old.is_some())
        })?;
        if replaced {
            self.crl.invalidate();
        }
        Ok(seal)
    }

    /// One seal by id.
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn seal(&self, id: &str) -> Result<Seal> {
        self.store
            .seals()
            .get(id)?
            .ok_or(DomainError::NotFound("seal"))
    }

    /// Revokes a seal from `now`; revoking it again changes nothing.
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn revoke_seal(&self, id: &str, now: OffsetDateTime) -> Result<()> {
        let changed = self.store.transact(|tx| {
            let mut seal = tx.seals().get(id)?.ok_or(DomainError::NotFound("seal"))?;
            if seal.revoked_at.is_some() {
                return Ok(false);
            }
            seal.revoked_at = Some(now);
            tx.seals().update(&seal);
            tx.revocations().add(&revocation(&seal, now, false));
            Ok::<_, DomainError>(true)
        })?;
        if changed {
            self.crl.invalidate();
        }
        Ok(())
    }

    /// The client's live seal key, unwrapped for one sealing operation: only while it is
    /// not revoked and its certificate is valid at `now`.
    ///
    /// # Errors
    /// [`DomainError::NotFound`] (`seal`) when the client has no usable seal;
    /// [`DomainError::Unavailable`] without `kek.key`; [`DomainError::Internal`] when the
    /// stored key does not unwrap; storage errors.
    pub fn seal_key(&self, client_id: &str, now: OffsetDateTime) -> Result<KeyInUse> {
        let seal = self
            .store
            .seals()
            .current(client_id)?
            .filter(|s| s.revoked_at.is_none() && now <= s.not_after)
            .ok_or(DomainError::NotFound("seal"))?;
        self.unwrap_key(Kind::Seal, &seal.id, &seal.wrapped_key, &seal.certificate)
    }
}

/// The CRL entry of a revoked seal.
fn revocation(s: &Seal, now: OffsetDateTime, superseded: bool) -> Revocation {
    Revocation {
        serial: s.serial.clone(),
        revoked_at: now,
        not_after: s.not_after,
        superseded,
    }
}
