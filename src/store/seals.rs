//! Seals (organisations' e-seal keys), as versioned records, and the index of each agency
//! client's current one. The private key is stored only as the KEK-wrapped bytes the domain hands over.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{printable_key, record_v1};
use super::tx::Read;
use super::{Result, Store, StoreError, Tx};
use crate::domain::signing::Seal;

/// Tree of seals by id.
pub const SEALS: &str = "seals";
/// Tree mapping a client id to the id of its current (most recent) seal.
pub const SEALS_BY_CLIENT: &str = "seals_by_client";

#[derive(Serialize, Deserialize)]
struct SealV1 {
    id: String,
    client_id: String,
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

record_v1!(StoredSeal, SEALS, SealV1);

#[derive(Serialize, Deserialize)]
struct CurrentV1 {
    seal_id: String,
}

record_v1!(StoredCurrent, SEALS_BY_CLIENT, CurrentV1);

impl From<&Seal> for StoredSeal {
    fn from(o: &Seal) -> Self {
        Self::V1(SealV1 {
            id: o.id.clone(),
            client_id: o.client_id.clone(),
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

impl StoredSeal {
    fn into_domain(self, key: &[u8]) -> Result<Seal> {
        let Self::V1(o) = self;
        let corrupt = |reason: &str| StoreError::Corrupt {
            tree: SEALS,
            key: printable_key(key),
            reason: reason.to_owned(),
        };
        Ok(Seal {
            certificate: super::bytes::unb64(&o.certificate)
                .ok_or_else(|| corrupt("certificate is not base64"))?,
            serial: hex::decode(&o.serial).map_err(|_| corrupt("serial is not hex"))?,
            wrapped_key: super::bytes::unb64(&o.wrapped_key)
                .ok_or_else(|| corrupt("wrapped key is not base64"))?,
            id: o.id,
            client_id: o.client_id,
            organisation: o.organisation,
            not_after: o.not_after,
            created_at: o.created_at,
            revoked_at: o.revoked_at,
        })
    }
}

/// Seals' storage. Reads work on the committed store and in a transaction; writes only
/// in a transaction.
pub struct Seals<S>(S);

impl Store {
    /// Committed seals.
    pub fn seals(&self) -> Seals<&Self> {
        Seals(self)
    }
}

impl<'a> Tx<'a> {
    /// Seals in this transaction.
    pub fn seals(&mut self) -> Seals<&mut Tx<'a>> {
        Seals(self)
    }
}

impl<S: Read> Seals<S> {
    /// A seal by id.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, id: &str) -> Result<Option<Seal>> {
        self.0
            .get::<StoredSeal>(id.as_bytes())?
            .map(|o| o.into_domain(id.as_bytes()))
            .transpose()
    }

    /// The client's most recent seal, revoked or not (the caller checks).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn current(&self, client_id: &str) -> Result<Option<Seal>> {
        match self.0.get::<StoredCurrent>(client_id.as_bytes())? {
            Some(StoredCurrent::V1(c)) => self.get(&c.seal_id),
            None => Ok(None),
        }
    }
}

impl Seals<&mut Tx<'_>> {
    /// Records a new seal and makes it the client's current one.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the id exists.
    pub fn insert(&mut self, o: &Seal) -> Result<()> {
        self.0.insert_new(o.id.as_bytes(), &StoredSeal::from(o))?;
        self.0.put(
            o.client_id.as_bytes(),
            &StoredCurrent::V1(CurrentV1 {
                seal_id: o.id.clone(),
            }),
        );
        Ok(())
    }

    /// Replaces a seal's record (revocation).
    pub fn update(&mut self, o: &Seal) {
        self.0.put(o.id.as_bytes(), &StoredSeal::from(o));
    }
}
