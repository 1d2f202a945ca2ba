//! Citizen records, the national-id index and enrolment tickets, as versioned records.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::record::Record;
use super::tx::Read;
use super::{Result, Store, Tx};
use crate::crypto::digest::{hex, unhex32};
use crate::domain::citizens::{Citizen, EnrolmentTicket};

/// Tree of citizens by id.
pub const CITIZENS: &str = "citizens";
/// Tree mapping a normalised national id to a citizen id (uniqueness index).
pub const NATIONAL_IDS: &str = "national_ids";
/// Tree of enrolment tickets by SHA-256 of the code (hex).
pub const ENROLMENTS: &str = "enrolments";

#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredCitizen {
    #[serde(rename = "1")]
    V1(CitizenV1),
}

#[derive(Serialize, Deserialize)]
struct CitizenV1 {
    id: String,
    given_name: String,
    family_name: String,
    birthdate: Date,
    national_id: String,
    email: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    registered_by: String,
    passkey_ids: Vec<String>,
    enrolment_hash: Option<String>,
}

impl Record for StoredCitizen {
    const TREE: &'static str = CITIZENS;
    const VERSIONS: &'static [&'static str] = &["1"];
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredNationalId {
    #[serde(rename = "1")]
    V1 { citizen_id: String },
}

impl Record for StoredNationalId {
    const TREE: &'static str = NATIONAL_IDS;
    const VERSIONS: &'static [&'static str] = &["1"];
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredEnrolment {
    #[serde(rename = "1")]
    V1 {
        citizen_id: String,
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
}

impl Record for StoredEnrolment {
    const TREE: &'static str = ENROLMENTS;
    const VERSIONS: &'static [&'static str] = &["1"];
}

impl From<&Citizen> for StoredCitizen {
    fn from(c: &Citizen) -> Self {
        Self::V1(CitizenV1 {
            id: c.id.clone(),
            given_name: c.given_name.clone(),
            family_name: c.family_name.clone(),
            birthdate: c.birthdate,
            national_id: c.national_id.clone(),
            email: c.email.clone(),
            created_at: c.created_at,
            registered_by: c.registered_by.clone(),
            passkey_ids: c.passkey_ids.clone(),
            enrolment_hash: c.enrolment_hash.map(|h| hex(&h)),
        })
    }
}

impl StoredCitizen {
    fn into_domain(self) -> Citizen {
        let Self::V1(c) = self;
        Citizen {
            id: c.id,
            given_name: c.given_name,
            family_name: c.family_name,
            birthdate: c.birthdate,
            national_id: c.national_id,
            email: c.email,
            created_at: c.created_at,
            registered_by: c.registered_by,
            passkey_ids: c.passkey_ids,
            enrolment_hash: c.enrolment_hash.as_deref().and_then(unhex32),
        }
    }
}

/// The citizen registry's storage: citizens, the national-id index and enrolment tickets.
/// Reads work on the committed store and in a transaction; writes only in a transaction.
pub struct Citizens<S>(pub(super) S);

impl Store {
    /// Committed citizens.
    pub fn citizens(&self) -> Citizens<&Self> {
        Citizens(self)
    }
}

impl<'a> Tx<'a> {
    /// Citizens in this transaction.
    pub fn citizens(&mut self) -> Citizens<&mut Tx<'a>> {
        Citizens(self)
    }
}

fn ticket_record(t: &EnrolmentTicket) -> StoredEnrolment {
    StoredEnrolment::V1 {
        citizen_id: t.citizen_id.clone(),
        created_at: t.created_at,
        expires_at: t.expires_at,
    }
}

impl<S: Read> Citizens<S> {
    /// A citizen by id.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, id: &str) -> Result<Option<Citizen>> {
        Ok(self
            .0
            .get::<StoredCitizen>(id.as_bytes())?
            .map(StoredCitizen::into_domain))
    }

    /// Whether a citizen's record exists (without decoding it).
    ///
    /// # Errors
    /// Backend errors.
    pub fn exists(&self, id: &str) -> Result<bool> {
        Ok(self.0.raw(CITIZENS, id.as_bytes())?.is_some())
    }

    /// The id of the citizen holding a (normalised) national id: the uniqueness index that
    /// every registration consults.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn by_national_id(&self, national_id: &str) -> Result<Option<String>> {
        Ok(self
            .0
            .get::<StoredNationalId>(national_id.as_bytes())?
            .map(|StoredNationalId::V1 { citizen_id }| citizen_id))
    }

    /// An enrolment ticket by the hash of its code.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn enrolment_ticket(&self, hash: &[u8; 32]) -> Result<Option<EnrolmentTicket>> {
        Ok(self.0.get::<StoredEnrolment>(&enrolment_key(hash))?.map(
            |StoredEnrolment::V1 {
                 citizen_id,
                 created_at,
                 expires_at,
             }| EnrolmentTicket {
                citizen_id,
                created_at,
                expires_at,
            },
        ))
    }
}

impl Citizens<&mut Tx<'_>> {
    /// Creates a citizen, claims its national id and stores its first enrolment ticket.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] naming [`NATIONAL_IDS`] when the id is taken (or
    /// [`CITIZENS`] for a reused citizen id).
    pub fn insert(
        &mut self,
        citizen: &Citizen,
        hash: &[u8; 32],
        ticket: &EnrolmentTicket,
    ) -> Result<()> {
        self.insert_enrolled(citizen)?;
        self.put_enrolment(hash, ticket)
    }

    /// Creates a citizen that needs no enrolment ticket (enrolled elsewhere, e.g. brought
    /// in by a bulk load, whose passkeys are inserted in the same transaction).
    ///
    /// # Errors
    /// As [`Citizens::insert`].
    pub fn insert_enrolled(&mut self, citizen: &Citizen) -> Result<()> {
        self.0.insert_new(
            citizen.national_id.as_bytes(),
            &StoredNationalId::V1 {
                citizen_id: citizen.id.clone(),
            },
        )?;
        self.0
            .insert_new(citizen.id.as_bytes(), &StoredCitizen::from(citizen))
    }

    /// Replaces a citizen record.
    pub fn update(&mut self, citizen: &Citizen) {
        self.0
            .put(citizen.id.as_bytes(), &StoredCitizen::from(citizen));
    }

    /// Stores a new enrolment ticket, filed for expiry.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] if a ticket with that hash exists.
    pub fn put_enrolment(&mut self, hash: &[u8; 32], ticket: &EnrolmentTicket) -> Result<()> {
        self.0.insert_new_expiring(
            &enrolment_key(hash),
            &ticket_record(ticket),
            ticket.expires_at,
        )
    }

    /// Removes an enrolment ticket (used, or replaced by a new code).
    pub fn delete_enrolment(&mut self, hash: &[u8; 32]) {
        self.0.delete(ENROLMENTS, &enrolment_key(hash));
    }
}

/// Key of an enrolment ticket.
fn enrolment_key(hash: &[u8; 32]) -> Vec<u8> {
    hex(hash).into_bytes()
}

/// [`super::record::round_trip`] for the record stored in `tree`, if it is one of this
/// module's.
pub(super) fn round_trip(tree: &str, bytes: &[u8]) -> Option<std::result::Result<(), String>> {
    use super::record::round_trip as check;
    Some(match tree {
        CITIZENS => check::<StoredCitizen>(bytes),
        NATIONAL_IDS => check::<StoredNationalId>(bytes),
        ENROLMENTS => check::<StoredEnrolment>(bytes),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;
    use crate::store::StoreError;

    fn citizen(id: &str, national_id: &str) -> Citizen {
        Citizen {
            id: id.into(),
            given_name: "Ana".into(),
            family_name: "Novak".into(),
            birthdate: date!(1990 - 04 - 01),
            national_id: national_id.into(),
            email: None,
            created_at: datetime!(2026-12-01 0:00 UTC),
            registered_by: "load".into(),
            passkey_ids: vec!["cred".into()],
            enrolment_hash: None,
        }
    }

    #[test]
    fn an_enrolled_citizen_is_found_by_national_id_and_keeps_it_unique() {
        let store = Store::in_memory();
        let ana = citizen("c-1", "NID0001");
        store
            .transact(|tx| tx.citizens().insert_enrolled(&ana))
            .unwrap();
        let citizens = store.citizens();
        assert_eq!(
            citizens.by_national_id("NID0001").unwrap().as_deref(),
            Some("c-1")
        );
        assert_eq!(citizens.by_national_id("NID0002").unwrap(), None);
        assert_eq!(citizens.get("c-1").unwrap().unwrap().passkey_ids, ["cred"]);
        let twin = store.transact(|tx| tx.citizens().insert_enrolled(&citizen("c-2", "NID0001")));
        assert!(
            matches!(
                twin,
                Err(StoreError::Conflict {
                    tree: NATIONAL_IDS,
                    ..
                })
            ),
            "{twin:?}"
        );
        assert!(store.citizens().get("c-2").unwrap().is_none());
    }
}
