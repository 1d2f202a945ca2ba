//! The citizen registry: identities recorded by a registration officer, and the one-time
//! enrolment codes that let a citizen create their first (or a replacement) passkey.

use time::{Date, Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::audit::{Actor, Entry, event};
use super::{DomainError, FieldError, Result, Rng, new_id, random_bytes, rfc3339, validate};
use crate::store::{Store, StoreError};
use serde_json::json;

/// A registered person. Identity fields are normalised by [`validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citizen {
    /// Stable random identifier (UUID form); never derived from the national id.
    pub id: String,
    /// Given name(s).
    pub given_name: String,
    /// Family name(s).
    pub family_name: String,
    /// Date of birth.
    pub birthdate: Date,
    /// Normalised national identifier; unique across the registry.
    pub national_id: String,
    /// Optional contact address.
    pub email: Option<String>,
    /// When the registration officer recorded the identity.
    pub created_at: OffsetDateTime,
    /// Who recorded it (the admin credential's fingerprint), for the audit trail.
    pub registered_by: String,
    /// Ids of the citizen's passkeys (the credentials live in their own records).
    pub passkey_ids: Vec<String>,
    /// Hash of the one enrolment code currently valid, so issuing a new one voids the old.
    pub enrolment_hash: Option<[u8; 32]>,
}

/// What the registry shows about a passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySummary {
    /// Credential identifier (base64url).
    pub id: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// Last successful login with it.
    pub last_used_at: Option<OffsetDateTime>,
    /// The authenticator said the credential may be synced to other devices.
    pub backup_eligible: bool,
    /// The authenticator said the credential is currently synced.
    pub backed_up: bool,
    /// When a registration officer revoked it; a revoked passkey never logs in.
    pub revoked_at: Option<OffsetDateTime>,
}

/// Identity data as a registration officer sends it, before validation.
#[derive(Debug, Clone)]
pub struct NewCitizen {
    /// Given name(s).
    pub given_name: String,
    /// Family name(s).
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub birthdate: String,
    /// National identifier as typed.
    pub national_id: String,
    /// Optional e-mail.
    pub email: Option<String>,
}

/// A freshly issued enrolment code. The clear code exists only here and in the answer to
/// the registration officer; the store keeps its SHA-256.
pub struct EnrolmentCode {
    /// The code to hand to the citizen (base64url of 32 random bytes).
    pub code: Zeroizing<String>,
    /// After this instant the code is refused.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for EnrolmentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentCode")
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The stored side of an enrolment code, found by the code's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentTicket {
    /// Whose code it is.
    pub citizen_id: String,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// Registry operations; borrows the store and the injected randomness.
pub struct Registry<'a> {
    /// Where citizens live.
    pub store: &'a Store,
    /// Source of ids and codes.
    pub rng: &'a dyn Rng,
    /// How long an enrolment code stays valid.
    pub enrolment_ttl: Duration,
}

/// SHA-256 of an enrolment code: the only form in which codes are stored.
pub fn enrolment_hash(code: &str) -> [u8; 32] {
    crate::crypto::digest::sha256(code.as_bytes())
}

impl Registry<'_> {
    /// Validates and records a new citizen with a first enrolment code.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] listing every bad field; [`DomainError::Conflict`] when the
    /// national id is already registered; storage errors.
    pub fn register(
        &self,
        input: NewCitizen,
        registered_by: &str,
        now: OffsetDateTime,
    ) -> Result<(Citizen, EnrolmentCode)> {
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
        let given_name = check("given_name", validate::name(&input.given_name));
        let family_name = check("family_name", validate::name(&input.family_name));
        let national_id = check("national_id", validate::national_id(&input.national_id));
        let email = match input.email.as_deref() {
            None => Some(None),
            Some(e) => check("email", validate::email(e)).map(Some),
        };
        let birthdate = validate::birthdate(&input.birthdate, now)
            .map_err(|detail| {
                errors.push(FieldError {
                    field: "birthdate".into(),
                    detail,
                })
            })
            .ok();
        let (Some(given_name), Some(family_name), Some(national_id), Some(email), Some(birthdate)) =
            (given_name, family_name, national_id, email, birthdate)
        else {
            return Err(DomainError::Invalid(errors));
        };
        let (code, hash, ticket) = self.issue_code(String::new(), now)?;
        let citizen = Citizen {
            id: new_id(self.rng)?,
            given_name,
            family_name,
            birthdate,
            national_id,
            email,
            created_at: now,
            registered_by: registered_by.to_owned(),
            passkey_ids: Vec::new(),
            enrolment_hash: Some(hash),
        };
        let ticket = EnrolmentTicket {
            citizen_id: citizen.id.clone(),
            ..ticket
        };
        let entry = Entry::new(
            event::CITIZEN_REGISTERED,
            Actor::Admin,
            Some(&citizen.id),
            json!({"registered_by": registered_by, "enrolment_code_expires_at": rfc3339(code.expires_at)}),
            now,
            self.rng,
        )?;
        match self.store.transact(|tx| {
            tx.citizens().insert(&citizen, &hash, &ticket)?;
            entry.append(tx).map(drop)
        }) {
            Ok(()) => Ok((citizen, code)),
            Err(StoreError::Conflict { tree, .. }) if tree == crate::store::NATIONAL_IDS => Err(
                DomainError::Conflict("a citizen with this national_id is already registered"),
            ),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one citizen.
    ///
    /// # Errors
    /// [`DomainError::NotFound`] when there is no such id; storage errors.
    pub fn get(&self, id: &str) -> Result<Citizen> {
        self.store
            .citizens()
            .get(id)?
            .ok_or(DomainError::NotFound("citizen"))
    }

    /// Issues a new enrolment code for an existing citizen; the previous code stops working.
    ///
    /// # Errors
    /// [`DomainError::NotFound`]; storage errors.
    pub fn new_enrolment(&self, id: &str, now: OffsetDateTime) -> Result<EnrolmentCode> {
        let (code, hash, ticket) = self.issue_code(id.to_owned(), now)?;
        let entry = Entry::new(
            event::ENROLMENT_CODE_ISSUED,
            Actor::Admin,
            Some(id),
            json!({"expires_at": rfc3339(code.expires_at)}),
            now,
            self.rng,
        )?;
        self.store.transact(|tx| {
            let mut citizen = tx
                .citizens()
                .get(id)?
                .ok_or(DomainError::NotFound("citizen"))?;
            if let Some(old) = citizen.enrolment_hash {
                tx.citizens().delete_enrolment(&old);
            }
            citizen.enrolment_hash = Some(hash);
            tx.citizens().update(&citizen);
            tx.citizens().put_enrolment(&hash, &ticket)?;
            entry.append(tx)?;
            Ok::<_, DomainError>(())
        })?;
        Ok(code)
    }

    fn issue_code(
        &self,
        citizen_id: String,
        now: OffsetDateTime,
    ) -> Result<(EnrolmentCode, [u8; 32], EnrolmentTicket)> {
        use base64::Engine;
        let raw = Zeroizing::new(random_bytes::<32>(self.rng)?);
        let code = Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*raw));
        let hash = enrolment_hash(&code);
        let expires_at = now + self.enrolment_ttl;
        let ticket = EnrolmentTicket {
            citizen_id,
            created_at: now,
            expires_at,
        };
        Ok((EnrolmentCode { code, expires_at }, hash, ticket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn input(nid: &str) -> NewCitizen {
        NewCitizen {
            given_name: "Ana".into(),
            family_name: "Novak".into(),
            birthdate: "1990-04-01".into(),
            national_id: nid.into(),
            email: Some("ana@example.org".into()),
        }
    }

    fn registry(store: &Store) -> Registry<'_> {
        static RNG: std::sync::LazyLock<crate::domain::SystemRng> =
            std::sync::LazyLock::new(crate::domain::SystemRng::new);
        Registry {
            store,
            rng: &*RNG,
            enrolment_ttl: Duration::hours(72),
        }
    }

    #[test]
    fn register_then_read_back() {
        let store = Store::in_memory();
        let now = datetime!(2026-11-26 10:00 UTC);
        let (c, code) = registry(&store)
            .register(input("ab 1234"), "officer", now)
            .unwrap();
        assert_eq!(c.national_id, "AB1234");
        assert_eq!(code.expires_at, now + Duration::hours(72));
        assert_eq!(code.code.len(), 43, "32 bytes base64url");
        let again = registry(&store).get(&c.id).unwrap();
        assert_eq!(again, c);
        let ticket = store
            .citizens()
            .enrolment_ticket(&enrolment_hash(&code.code))
            .unwrap()
            .unwrap();
        assert_eq!(ticket.citizen_id, c.id);
    }

    #[test]
    fn duplicate_national_id_conflicts_and_writes_nothing() {
        let store = Store::in_memory();
        let now = datetime!(2026-11-26 10:00 UTC);
        registry(&store)
            .register(input("AB1234"), "o", now)
            .unwrap();
        let err = registry(&store).register(input("ab-1234".replace('-', "").as_str()), "o", now);
        assert!(matches!(err, Err(DomainError::Conflict(_))));
        assert_eq!(
            store
                .backend()
                .unwrap()
                .scan("citizens", b"", b"", 10)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            store
                .backend()
                .unwrap()
                .scan("enrolments", b"", b"", 10)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn all_bad_fields_reported_at_once() {
        let store = Store::in_memory();
        let bad = NewCitizen {
            given_name: "".into(),
            family_name: "X1".into(),
            birthdate: "2099-01-01".into(),
            national_id: "a".into(),
            email: Some("nope".into()),
        };
        let Err(DomainError::Invalid(errs)) =
            registry(&store).register(bad, "o", datetime!(2026-11-26 10:00 UTC))
        else {
            panic!("expected Invalid")
        };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_ref()).collect();
        assert_eq!(
            fields,
            [
                "given_name",
                "family_name",
                "national_id",
                "email",
                "birthdate"
            ]
        );
    }

    #[test]
    fn new_enrolment_voids_the_previous_code() {
        let store = Store::in_memory();
        let now = datetime!(2026-11-26 10:00 UTC);
        let reg = registry(&store);
        let (c, first) = reg.register(input("AB1234"), "o", now).unwrap();
        let second = reg.new_enrolment(&c.id, now).unwrap();
        assert!(
            store
                .citizens()
                .enrolment_ticket(&enrolment_hash(&first.code))
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .citizens()
                .enrolment_ticket(&enrolment_hash(&second.code))
                .unwrap()
                .is_some()
        );
        assert!(matches!(
            reg.new_enrolment("nobody", now),
            Err(DomainError::NotFound(_))
        ));
    }
}
