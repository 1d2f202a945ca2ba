//! Officials' signing keys, as versioned records, and the index of each citizen's current
//! one. The private key is stored only as the KEK-wrapped bytes the domain hands over.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{printable_key, record_v1};
use super::tx::Read;
use super::{Result, Store, StoreError, Tx};
use crate::domain::signing::Official;

/// Tree of officials by id.
pub const OFFICIALS: &str = "officials";
/// Tree mapping a citizen id to the id of their current (most recent) official key.
pub const OFFICIALS_BY_CITIZEN: &str = "officials_by_citizen";

#[derive(Serialize, Deserialize)]
struct OfficialV1 {
    id: String,
    citizen_id: String,
    title: String,
    organisation: String,
    /// Standard base64 of the certificate's DER.
    certificate: String,
    /// Hex.
    serial: String,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    /// Standard base64 of the KEK-wrapped PKCS#8 (never the key in clear).
    wrapped_key: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
}

record_v1!(StoredOfficial, OFFICIALS, OfficialV1);

#[derive(Serialize, Deserialize)]
struct CurrentV1 {
    official_id: String,
}

record_v1!(StoredCurrent, OFFICIALS_BY_CITIZEN, CurrentV1);

impl From<&Official> for StoredOfficial {
    fn from(o: &Official) -> Self {
        Self::V1(OfficialV1 {
            id: o.id.clone(),
            citizen_id: o.citizen_id.clone(),
            title: o.title.clone(),
            organisation: o.organisation.clone(),
            certificate: super::bytes::b64(&o.certificate),
            serial: hex::encode(&o.serial),
            not_after: o.not_after,
            wrapped_key: super::bytes::b64(&o.wrapped_key),
            created_at: o.created_at,
            revoked_at: o.revoked_at,
        })
    }
}

impl StoredOfficial {
    fn into_domain(self, key: &[u8]) -> Result<Official> {
        let Self::V1(o) = self;
        let corrupt = |reason: &str| StoreError::Corrupt {
            tree: OFFICIALS,
            key: printable_key(key),
            reason: reason.to_owned(),
        };
        Ok(Official {
            certificate: super::bytes::unb64(&o.certificate)
                .ok_or_else(|| corrupt("certificate is not base64"))?,
            serial: hex::decode(&o.serial).map_err(|_| corrupt("serial is not hex"))?,
            wrapped_key: super::bytes::unb64(&o.wrapped_key)
                .ok_or_else(|| corrupt("wrapped key is not base64"))?,
            id: o.id,
            citizen_id: o.citizen_id,
            title: o.title,
            organisation: o.organisation,
            not_after: o.not_after,
            created_at: o.created_at,
            revoked_at: o.revoked_at,
        })
    }
}

/// Officials' storage. Reads work on the committed store and in a transaction; writes only
/// in a transaction.
pub struct Officials<S>(S);

impl Store {
    /// Committed officials.
    pub fn officials(&self) -> Officials<&Self> {
        Officials(self)
    }
}

impl<'a> Tx<'a> {
    /// Officials in this transaction.
    pub fn officials(&mut self) -> Officials<&mut Tx<'a>> {
        Officials(self)
    }
}

impl<S: Read> Officials<S> {
    /// An official by id.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, id: &str) -> Result<Option<Official>> {
        self.0
            .get::<StoredOfficial>(id.as_bytes())?
            .map(|o| o.into_domain(id.as_bytes()))
            .transpose()
    }

    /// The citizen's most recent official key, revoked or not (the caller checks).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn current(&self, citizen_id: &str) -> Result<Option<Official>> {
        match self.0.get::<StoredCurrent>(citizen_id.as_bytes())? {
            Some(StoredCurrent::V1(c)) => self.get(&c.official_id),
            None => Ok(None),
        }
    }
}

impl Officials<&mut Tx<'_>> {
    /// Records a new official and makes it the citizen's current key.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the id exists.
    pub fn insert(&mut self, o: &Official) -> Result<()> {
        self.0
            .insert_new(o.id.as_bytes(), &StoredOfficial::from(o))?;
        self.0.put(
            o.citizen_id.as_bytes(),
            &StoredCurrent::V1(CurrentV1 {
                official_id: o.id.clone(),
            }),
        );
        Ok(())
    }

    /// Replaces an official's record (revocation).
    pub fn update(&mut self, o: &Official) {
        self.0.put(o.id.as_bytes(), &StoredOfficial::from(o));
    }
}
