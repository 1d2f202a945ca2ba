//! Signing keys (officials' and seals'), as versioned records, and the index of each
//! holder's current one. The private key is stored only as the KEK-wrapped bytes the domain
//! hands over.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{printable_key, record_v1};
use super::tx::Read;
use super::{Result, Store, StoreError, Tx};
use crate::domain::signing::{Holder, HolderRef, SigningKey};

/// Tree of signing keys by id.
pub const SIGNING_KEYS: &str = "signing_keys";
/// Tree mapping a holder (`official/<citizen id>`, `seal/<client id>`) to the id of its
/// current (most recent) key.
pub const SIGNING_KEYS_BY_HOLDER: &str = "signing_keys_by_holder";

/// On disk: who holds the key.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum HolderV1 {
    Official { citizen_id: String, title: String },
    Seal { client_id: String },
}

#[derive(Serialize, Deserialize)]
struct SigningKeyV1 {
    id: String,
    holder: HolderV1,
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

record_v1!(StoredKey, SIGNING_KEYS, SigningKeyV1);

#[derive(Serialize, Deserialize)]
struct CurrentV1 {
    key_id: String,
}

record_v1!(StoredCurrent, SIGNING_KEYS_BY_HOLDER, CurrentV1);

/// The index key of a holder.
fn holder_key(holder: HolderRef<'_>) -> Vec<u8> {
    format!("{}/{}", holder.kind.noun(), holder.id).into_bytes()
}

impl From<&SigningKey> for StoredKey {
    fn from(k: &SigningKey) -> Self {
        let holder = match &k.holder {
            Holder::Official { citizen_id, title } => HolderV1::Official {
                citizen_id: citizen_id.clone(),
                title: title.clone(),
            },
            Holder::Seal { client_id } => HolderV1::Seal {
                client_id: client_id.clone(),
            },
        };
        Self::V1(SigningKeyV1 {
            id: k.id.clone(),
            holder,
            organisation: k.organisation.clone(),
            certificate: super::bytes::b64(&k.certificate),
            serial: hex::encode(&k.serial),
            not_after: k.not_after,
            wrapped_key: super::bytes::b64(&k.wrapped_key),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        })
    }
}

impl StoredKey {
    fn into_domain(self, key: &[u8]) -> Result<SigningKey> {
        let Self::V1(k) = self;
        let corrupt = |reason: &str| StoreError::Corrupt {
            tree: SIGNING_KEYS,
            key: printable_key(key),
            reason: reason.to_owned(),
        };
        let holder = match k.holder {
            HolderV1::Official { citizen_id, title } => Holder::Official { citizen_id, title },
            HolderV1::Seal { client_id } => Holder::Seal { client_id },
        };
        Ok(SigningKey {
            certificate: super::bytes::unb64(&k.certificate)
                .ok_or_else(|| corrupt("certificate is not base64"))?,
            serial: hex::decode(&k.serial).map_err(|_| corrupt("serial is not hex"))?,
            wrapped_key: super::bytes::unb64(&k.wrapped_key)
                .ok_or_else(|| corrupt("wrapped key is not base64"))?,
            id: k.id,
            holder,
            organisation: k.organisation,
            not_after: k.not_after,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        })
    }
}

/// Signing-key storage. Reads work on the committed store and in a transaction; writes only
/// in a transaction.
pub struct SigningKeys<S>(S);

impl Store {
    /// Committed signing keys.
    pub fn signing_keys(&self) -> SigningKeys<&Self> {
        SigningKeys(self)
    }
}

impl<'a> Tx<'a> {
    /// Signing keys in this transaction.
    pub fn signing_keys(&mut self) -> SigningKeys<&mut Tx<'a>> {
        SigningKeys(self)
    }
}

impl<S: Read> SigningKeys<S> {
    /// A key by id.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, id: &str) -> Result<Option<SigningKey>> {
        self.0
            .get::<StoredKey>(id.as_bytes())?
            .map(|k| k.into_domain(id.as_bytes()))
            .transpose()
    }

    /// The holder's most recent key, revoked or not (the caller checks).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn current(&self, holder: HolderRef<'_>) -> Result<Option<SigningKey>> {
        match self.0.get::<StoredCurrent>(&holder_key(holder))? {
            Some(StoredCurrent::V1(c)) => self.get(&c.key_id),
            None => Ok(None),
        }
    }
}

impl SigningKeys<&mut Tx<'_>> {
    /// Records a new key and makes it its holder's current one.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the id exists.
    pub fn insert(&mut self, k: &SigningKey) -> Result<()> {
        self.0.insert_new(k.id.as_bytes(), &StoredKey::from(k))?;
        self.0.put(
            &holder_key(k.holder.as_ref()),
            &StoredCurrent::V1(CurrentV1 {
                key_id: k.id.clone(),
            }),
        );
        Ok(())
    }

    /// Replaces a key's record (revocation).
    pub fn update(&mut self, k: &SigningKey) {
        self.0.put(k.id.as_bytes(), &StoredKey::from(k));
    }
}

/// [`super::record::round_trip`] for the record stored in `tree`, if it is one of this
/// module's.
pub(super) fn round_trip(tree: &str, bytes: &[u8]) -> Option<std::result::Result<(), String>> {
    use super::record::round_trip as check;
    Some(match tree {
        SIGNING_KEYS => check::<StoredKey>(bytes),
        SIGNING_KEYS_BY_HOLDER => check::<StoredCurrent>(bytes),
        _ => return None,
    })
}
