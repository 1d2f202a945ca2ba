//! Seals: an organisation's e-seal key, used by one agency client.

use time::OffsetDateTime;

use super::{Holder, HolderRef, KeyInUse, Kind, Pki, SigningKey, certified_text};
use crate::crypto::pki::Subject;
use crate::domain::{DomainError, Result};

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
    pub fn create_seal(&self, input: NewSeal, now: OffsetDateTime) -> Result<SigningKey> {
        let organisation = certified_text(&input.organisation)
            .map_err(|detail| DomainError::invalid("organisation", detail))?;
        self.kek()?;
        let client = self
            .store
            .clients()
            .get(&input.client_id)?
            .ok_or(DomainError::NotFound("client"))?;
        let subject = Subject::Seal {
            organisation: organisation.clone(),
        };
        let holder = Holder::Seal {
            client_id: client.id,
        };
        self.issue_key(holder, organisation, &subject, now)
    }

    /// One seal by id.
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn seal(&self, id: &str) -> Result<SigningKey> {
        self.key(Kind::Seal, id)
    }

    /// Revokes a seal from `now` ([`Pki::revoke`]).
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn revoke_seal(&self, id: &str, now: OffsetDateTime) -> Result<()> {
        self.revoke(Kind::Seal, id, now)
    }

    /// The client's live seal key, unwrapped for one sealing operation
    /// ([`Pki::key_in_use`]).
    ///
    /// # Errors
    /// As [`Pki::key_in_use`] (`NotFound("seal")` without a usable seal).
    pub fn seal_key(&self, client_id: &str, now: OffsetDateTime) -> Result<KeyInUse> {
        self.key_in_use(
            HolderRef {
                kind: Kind::Seal,
                id: client_id,
            },
            now,
        )
    }
}
