//! Officials: a registered citizen's signing key for a title in an organisation.

use time::OffsetDateTime;

use super::{Holder, HolderRef, KeyInUse, Kind, MAX_NAME_CHARS, Pki, SigningKey, certified_text};
use crate::crypto::pki::Subject;
use crate::domain::{DomainError, FieldError, Result};

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
    pub fn create_official(&self, input: NewOfficial, now: OffsetDateTime) -> Result<SigningKey> {
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
        let subject = Subject::Official {
            given_name: citizen.given_name,
            family_name: citizen.family_name,
            title: title.clone(),
            organisation: organisation.clone(),
        };
        let holder = Holder::Official {
            citizen_id: citizen.id,
            title,
        };
        self.issue_key(holder, organisation, &subject, now)
    }

    /// One official by id.
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn official(&self, id: &str) -> Result<SigningKey> {
        self.key(Kind::Official, id)
    }

    /// Revokes an official's key from `now` ([`Pki::revoke`]).
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn revoke_official(&self, id: &str, now: OffsetDateTime) -> Result<()> {
        self.revoke(Kind::Official, id, now)
    }

    /// The citizen's live official key, unwrapped for one signing operation
    /// ([`Pki::key_in_use`]).
    ///
    /// # Errors
    /// As [`Pki::key_in_use`] (`NotFound("official")` without a usable key).
    pub fn official_key(&self, citizen_id: &str, now: OffsetDateTime) -> Result<KeyInUse> {
        self.key_in_use(
            HolderRef {
                kind: Kind::Official,
                id: citizen_id,
            },
            now,
        )
    }
}
