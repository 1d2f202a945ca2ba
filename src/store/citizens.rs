//! Citizen records, the national-id index and enrolment tickets, as versioned records.

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::record::{Record, encode, hex, unhex32};
use super::{Result, Snapshot, Store, Write, WriteKind};
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

/// The compare-and-swap write that replaces a citizen read as `current` by `updated`.
pub(super) fn citizen_update(current: &Snapshot<Citizen>, updated: &Citizen) -> Write {
    current.replace(
        CITIZENS,
        current.value.id.as_bytes(),
        encode(&StoredCitizen::from(updated)),
    )
}

/// Key of an enrolment ticket.
pub(super) fn enrolment_key(hash: &[u8; 32]) -> Vec<u8> {
    hex(hash).into_bytes()
}

fn enrolment_write(hash: &[u8; 32], t: &EnrolmentTicket) -> Write {
    Write {
        tree: ENROLMENTS,
        key: enrolment_key(hash),
        kind: WriteKind::PutNew(encode(&StoredEnrolment::V1 {
            citizen_id: t.citizen_id.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
        })),
    }
}

impl Store {
    /// Creates a citizen, claims its national id and stores its first enrolment ticket, all
    /// or nothing, flushed.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] naming [`NATIONAL_IDS`] when the id is taken.
    pub fn insert_citizen(
        &self,
        citizen: &Citizen,
        hash: &[u8; 32],
        ticket: &EnrolmentTicket,
    ) -> Result<()> {
        self.commit(vec![
            Write {
                tree: NATIONAL_IDS,
                key: citizen.national_id.as_bytes().to_vec(),
                kind: WriteKind::PutNew(encode(&StoredNationalId::V1 {
                    citizen_id: citizen.id.clone(),
                })),
            },
            Write {
                tree: CITIZENS,
                key: citizen.id.as_bytes().to_vec(),
                kind: WriteKind::PutNew(encode(&StoredCitizen::from(citizen))),
            },
            enrolment_write(hash, ticket),
        ])
    }

    /// Reads a citizen by id.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn citizen(&self, id: &str) -> Result<Option<Citizen>> {
        Ok(self
            .read::<StoredCitizen>(id.as_bytes())?
            .map(StoredCitizen::into_domain))
    }

    /// Reads a citizen for a later compare-and-swap update.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn citizen_for_update(&self, id: &str) -> Result<Option<Snapshot<Citizen>>> {
        Ok(self
            .read_for_update::<StoredCitizen>(id.as_bytes())?
            .map(|s| s.map(StoredCitizen::into_domain)))
    }

    /// Replaces the snapshot's citizen by `updated` (which carries the new enrolment hash),
    /// voids the old enrolment ticket and stores the new one, flushed.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] when the citizen changed since the snapshot was read.
    pub fn replace_enrolment(
        &self,
        current: &Snapshot<Citizen>,
        updated: &Citizen,
        hash: &[u8; 32],
        ticket: &EnrolmentTicket,
    ) -> Result<()> {
        let mut writes = vec![citizen_update(current, updated)];
        if let Some(old) = current.value.enrolment_hash {
            writes.push(Write {
                tree: ENROLMENTS,
                key: hex(&old).into_bytes(),
                kind: WriteKind::Delete,
            });
        }
        writes.push(enrolment_write(hash, ticket));
        self.commit(writes)
    }

    /// Looks up an enrolment ticket by code hash.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn enrolment_ticket(&self, hash: &[u8; 32]) -> Result<Option<EnrolmentTicket>> {
        let key = hex(hash);
        Ok(self.read::<StoredEnrolment>(key.as_bytes())?.map(
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
