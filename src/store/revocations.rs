//! Revoked officials' and seals' certificates by serial number: what the CA's CRL lists.
//! Written in the same transaction as the revocation itself.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{self, printable_key, record_v1};
use super::tx::Read;
use super::{Result, Store, StoreError, Tx};
use crate::domain::signing::Revocation;

/// Tree of revocations, keyed by the certificate's serial number (hex).
pub const REVOCATIONS: &str = "pki_revocations";

/// Entries read per scan call while listing revocations.
const PAGE: usize = 1000;

#[derive(Serialize, Deserialize)]
struct RevocationV1 {
    #[serde(with = "time::serde::rfc3339")]
    revoked_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    superseded: bool,
}

record_v1!(StoredRevocation, REVOCATIONS, RevocationV1);

/// Revocations. Listed from the committed store; added in a transaction.
pub struct Revocations<S>(S);

impl Store {
    /// Committed revocations.
    pub fn revocations(&self) -> Revocations<&Self> {
        Revocations(self)
    }
}

impl<'a> Tx<'a> {
    /// Revocations in this transaction.
    pub fn revocations(&mut self) -> Revocations<&mut Tx<'a>> {
        Revocations(self)
    }
}

impl<S: Read> Revocations<S> {
    /// The revocation of the certificate with this serial number, if it was revoked.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, serial: &[u8]) -> Result<Option<Revocation>> {
        let key = hex::encode(serial);
        Ok(self
            .0
            .get::<StoredRevocation>(key.as_bytes())?
            .map(|StoredRevocation::V1(r)| Revocation {
                serial: serial.to_vec(),
                revoked_at: r.revoked_at,
                not_after: r.not_after,
                superseded: r.superseded,
            }))
    }
}

impl Revocations<&Store> {
    /// Every revocation, in serial order. The CRL must list them all, so this reads the
    /// whole tree (in pages of 1000): its size is the number of certificates ever revoked,
    /// one small record each (expired ones are skipped by the CRL, not yet deleted).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn all(&self) -> Result<Vec<Revocation>> {
        let backend = self.0.backend()?;
        let mut out = Vec::new();
        let mut start = Vec::new();
        loop {
            let page = backend.scan(REVOCATIONS, b"", &start, PAGE)?;
            let full = page.len() == PAGE;
            for (key, value) in page {
                let StoredRevocation::V1(r) = record::decode::<StoredRevocation>(&key, &value)?;
                let serial = std::str::from_utf8(&key)
                    .ok()
                    .and_then(|k| hex::decode(k).ok())
                    .ok_or_else(|| StoreError::Corrupt {
                        tree: REVOCATIONS,
                        key: printable_key(&key),
                        reason: "key is not a hex serial number".into(),
                    })?;
                out.push(Revocation {
                    serial,
                    revoked_at: r.revoked_at,
                    not_after: r.not_after,
                    superseded: r.superseded,
                });
                start = key;
            }
            if !full {
                return Ok(out);
            }
            // Past the last key read: the smallest key greater than it.
            start.push(0);
        }
    }
}

impl Revocations<&mut Tx<'_>> {
    /// Records a revocation. The domain revokes only live keys, so each serial is written
    /// once.
    pub fn add(&mut self, r: &Revocation) {
        self.0.put(
            hex::encode(&r.serial).as_bytes(),
            &StoredRevocation::V1(RevocationV1 {
                revoked_at: r.revoked_at,
                not_after: r.not_after,
                superseded: r.superseded,
            }),
        );
    }
}

/// [`super::record::round_trip`] for the record stored in `tree`, if it is one of this
/// module's.
pub(super) fn round_trip(tree: &str, bytes: &[u8]) -> Option<std::result::Result<(), String>> {
    use super::record::round_trip as check;
    Some(match tree {
        REVOCATIONS => check::<StoredRevocation>(bytes),
        _ => return None,
    })
}
