//! Officials: a registered citizen's signing key for a title in an organisation.

use time::OffsetDateTime;

use super::{KeyInUse, Kind, MAX_NAME_CHARS, Official, Pki, Revocation, certified_text};
use crate::crypto::pki::Subject;
use crate::domain::{DomainError, FieldError, Result, new_id};

/// An official to create, as the admin sends it.
#[derive(Debug, Clone)]
pub struct NewOfficial {
    /// The registered citizen who will sign.
    pub citizen_id: String,
    /// Their title.
    pub title: String,
    /// The organisation they sign for.
    pub organisation: String,
}

impl Pki<'_> {
    /// Creates a key and certificate for a registered citizen. A live official key of the
    /// same citizen is revoked (superseded) in the same transaction.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming every bad field; [`DomainError::NotFound`] for an
    /// unknown citizen; [`DomainError::Unavailable`] without `kek.key`; storage errors.
    pub fn create_official(&self, input: NewOfficial, now: OffsetDateTime) -> Result<Official> {
        let mut errors = Vec::new();
        let mut check = |field: &'static str, r: std::result::Result<String, String>| {
            r.map_err(|detail| {
                errors.push(FieldError {
                    field: field.into(),
                    detail,
                })
            })
            .ok()
        };
        let title = check("title", certified_text(&input.title));
        let organisation = check("organisation", certified_text(&input.organisation));
        let (Some(title), Some(organisation)) = (title, organisation) else {
            return Err(DomainError::Invalid(errors));
        };
        self.kek()?;
        let citizen = self
            .store
            .citizens()
            .get(&input.citizen_id)?
            .ok_or(DomainError::NotFound("citizen"))?;
        let common_name_len =
            citizen.given_name.chars().count() + 1 + citizen.family_name.chars().count();
        if common_name_len > MAX_NAME_CHARS {
            return Err(DomainError::invalid(
                "citizen_id",
                format!(
                    "the citizen's name is longer than {MAX_NAME_CHARS} characters, the most a \
                     certificate's commonName holds"
                ),
            ));
        }
        let id = new_id(self.rng)?;
        let subject = Subject::Official {
            given_name: citizen.given_name,
            family_name: citizen.family_name,
            title: title.clone(),
            organisation: organisation.clone(),
        };
        let (issued, wrapped_key) = self.new_key(Kind::Official, &id, &subject, now)?;
        let official = Official {
            id,
            citizen_id: citizen.id,
            title,
            organisation,
            certificate: issued.der,
            serial: issued.serial,
            not_after: issued.not_after,
            wrapped_key,
            created_at: now,
            revoked_at: None,
        };
        let replaced = self.store.transact(|tx| {
            let old = tx.officials().current(&official.citizen_id)?;
            if let Some(mut old) = old.clone() {
                old.revoked_at = Some(now);
                tx.officials().update(&old);
                tx.revocations().add(&revocation(&old, now, true));
            }
            tx.officials().insert(&official)?;
            Ok::<_, DomainError>(old.is_some())
        })?;
        if replaced {
            self.crl.invalidate();
        }
        Ok(official)
    }

    /// One official by id.
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn official(&self, id: &str) -> Result<Official> {
        self.store
            .officials()
            .get(id)?
            .ok_or(DomainError::NotFound("official"))
    }

    /// Revokes an official's key from `now`. Revoking a revoked key changes nothing (the
    /// first revocation time stays).
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn revoke_official(&self, id: &str, now: OffsetDateTime) -> Result<()> {
        let changed = self.store.transact(|tx| {
            let mut official = tx
                .officials()
                .get(id)?
                .ok_or(DomainError::NotFound("official"))?;
            if official.revoked_at.is_some() {
                return Ok(false);
            }
            official.revoked_at = Some(now);
            tx.officials().update(&official);
            tx.revocations().add(&revocation(&official, now, false));
            Ok::<_, DomainError>(true)
        })?;
        if changed {
            self.crl.invalidate();
        }
        Ok(())
    }

    /// The citizen's live official key, unwrapped for one signing operation: only while it
    /// is not revoked and its certificate is valid at `now`.
    ///
    /// # Errors
    /// [`DomainError::NotFound`] (`official`) when the citizen has no usable key;
    /// [`DomainError::Unavailable`] without `kek.key`; [`DomainError::Internal`] when the
    /// stored key does not unwrap; storage errors.
    pub fn official_key(&self, citizen_id: &str, now: OffsetDateTime) -> Result<KeyInUse> {
        let official = self
            .store
            .officials()
            .current(citizen_id)?
            .filter(|o| o.revoked_at.is_none() && now <= o.not_after)
            .ok_or(DomainError::NotFound("official"))?;
        self.unwrap_key(
            Kind::Official,
            &official.id,
            &official.wrapped_key,
            &official.certificate,
        )
    }
}

/// The CRL entry of a revoked official.
fn revocation(o: &Official, now: OffsetDateTime, superseded: bool) -> Revocation {
    Revocation {
        serial: o.serial.clone(),
        revoked_at: now,
        not_after: o.not_after,
        superseded,
    }
}
