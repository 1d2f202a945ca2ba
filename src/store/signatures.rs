//! The record of every signature civis produced, one record per signed batch: who signed
//! (seal or official, the key record, its holder), when, in which format, and for each
//! document its name, digest and the SHA-256 of the signature's bytes (its fingerprint).
//! Never the signature value, a key or a document. Records are never deleted: verification
//! needs them for as long as the signatures are relied on.
//!
//! One batch is two writes, whatever its size, because sled's cost is per key written: a
//! record per signature made sealing three times slower and its memory grow with the
//! store (README, "Sealing and verification"). A batch is filed under
//! `{certificate serial}/{signing time}/{first fingerprint}` (hex, the time as 12 decimal
//! digits of Unix seconds), in two trees under the same key:
//! - [`SIGNATURE_BATCHES`]: the versioned record;
//! - [`SIGNATURE_FINGERPRINTS`]: an index, the batch's fingerprints concatenated (32 bytes
//!   each, in document order).
//!
//! A verifier reads the serial and the signing time from the signature itself, so finding
//! a signature scans only the batches one key signed in that second, comparing raw
//! fingerprints, and decodes the one record that holds it. Batches of one key in one
//! second are few in practice; at full sealing speed (≈ 300 batches of 100 a second on two
//! cores) the scan reads about 1 MB of index.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{self, printable_key, record_v1};
use super::{Result, Store, StoreError, Tx};
use crate::domain::signing::{Kind, ProducedSignature, SignatureFormat};

/// The batch records.
pub const SIGNATURE_BATCHES: &str = "signature_batches";
/// The fingerprints of each batch, under the same key.
pub const SIGNATURE_FINGERPRINTS: &str = "signature_fingerprints";

/// Index entries read per scan page.
const PAGE: usize = 64;

#[derive(Serialize, Deserialize)]
struct BatchV1 {
    kind: String,
    key_id: String,
    holder_id: String,
    format: String,
    #[serde(with = "time::serde::rfc3339")]
    signed_at: OffsetDateTime,
    request_id: Option<String>,
    /// In the order of the fingerprints in the index.
    documents: Vec<DocumentV1>,
}

#[derive(Serialize, Deserialize)]
struct DocumentV1 {
    name: String,
    digest: String,
}

record_v1!(StoredBatch, SIGNATURE_BATCHES, BatchV1);

/// What every signature of a batch shares: a run of [`ProducedSignature`]s with the same
/// header is stored as one batch.
fn same_batch(a: &ProducedSignature, b: &ProducedSignature) -> bool {
    a.serial == b.serial
        && a.signed_at == b.signed_at
        && a.kind == b.kind
        && a.key_id == b.key_id
        && a.holder_id == b.holder_id
        && a.format == b.format
        && a.request_id == b.request_id
}

/// The prefix of every batch `serial` signed at `signed_at`.
fn second_prefix(serial: &[u8], signed_at: OffsetDateTime) -> String {
    format!(
        "{}/{:012}/",
        hex::encode(serial),
        signed_at.unix_timestamp().max(0)
    )
}

fn corrupt(key: &[u8], tree: &'static str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        tree,
        key: printable_key(key),
        reason: reason.to_owned(),
    }
}

impl StoredBatch {
    fn from_run(run: &[ProducedSignature]) -> Option<Self> {
        let first = run.first()?;
        Some(Self::V1(BatchV1 {
            kind: first.kind.noun().to_owned(),
            key_id: first.key_id.clone(),
            holder_id: first.holder_id.clone(),
            format: first.format.as_str().to_owned(),
            signed_at: first.signed_at,
            request_id: first.request_id.clone(),
            documents: run
                .iter()
                .map(|p| DocumentV1 {
                    name: p.name.clone(),
                    digest: hex::encode(p.digest),
                })
                .collect(),
        }))
    }

    /// The signature at `index` of the batch filed under `key`.
    fn signature(
        self,
        key: &[u8],
        serial: &[u8],
        index: usize,
        fingerprint: [u8; 32],
    ) -> Result<ProducedSignature> {
        let Self::V1(b) = self;
        let bad = |reason: &str| corrupt(key, SIGNATURE_BATCHES, reason);
        let kind = match b.kind.as_str() {
            "seal" => Kind::Seal,
            "official" => Kind::Official,
            _ => return Err(bad("unknown kind")),
        };
        let document = b
            .documents
            .into_iter()
            .nth(index)
            .ok_or_else(|| bad("fewer documents than fingerprints"))?;
        Ok(ProducedSignature {
            fingerprint,
            kind,
            serial: serial.to_vec(),
            digest: crate::crypto::digest::unhex32(&document.digest)
                .ok_or_else(|| bad("digest is not 32 bytes of hex"))?,
            format: SignatureFormat::parse(&b.format).ok_or_else(|| bad("unknown format"))?,
            key_id: b.key_id,
            holder_id: b.holder_id,
            name: document.name,
            signed_at: b.signed_at,
            request_id: b.request_id,
        })
    }
}

/// Produced signatures, in the store or in a transaction.
pub struct Signatures<S>(S);

impl Store {
    /// The produced signatures, as committed.
    pub fn signatures(&self) -> Signatures<&Self> {
        Signatures(self)
    }
}

impl<'a> Tx<'a> {
    /// The produced signatures, in this transaction.
    pub fn signatures(&mut self) -> Signatures<&mut Tx<'a>> {
        Signatures(self)
    }
}

impl Signatures<&Store> {
    /// The record of the signature with SHA-256 `fingerprint`, made by the key whose
    /// certificate has `serial` with signing time `signed_at` (both as the signature states
    /// them), if civis produced it.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a batch that does not decode; backend errors.
    pub fn find(
        &self,
        serial: &[u8],
        signed_at: OffsetDateTime,
        fingerprint: &[u8; 32],
    ) -> Result<Option<ProducedSignature>> {
        let backend = self.0.backend()?;
        let prefix = second_prefix(serial, signed_at);
        let mut start = prefix.clone().into_bytes();
        loop {
            let page = backend.scan(SIGNATURE_FINGERPRINTS, prefix.as_bytes(), &start, PAGE)?;
            let full = page.len() == PAGE;
            for (key, fingerprints) in page {
                if fingerprints.len() % 32 != 0 {
                    return Err(corrupt(
                        &key,
                        SIGNATURE_FINGERPRINTS,
                        "not a list of 32-byte fingerprints",
                    ));
                }
                if let Some(index) = fingerprints
                    .chunks_exact(32)
                    .position(|f| f == fingerprint.as_slice())
                {
                    let bytes = backend
                        .get(SIGNATURE_BATCHES, &key)?
                        .ok_or_else(|| corrupt(&key, SIGNATURE_BATCHES, "index without record"))?;
                    let batch = record::decode::<StoredBatch>(&key, &bytes)?;
                    return batch.signature(&key, serial, index, *fingerprint).map(Some);
                }
                start = key;
            }
            if !full {
                return Ok(None);
            }
            // Past the last key read: the smallest key greater than it.
            start.push(0);
        }
    }
}

impl Signatures<&mut Tx<'_>> {
    /// Records produced signatures: each run that shares key, signing time, holder, format
    /// and request is one batch (two writes).
    pub fn record(&mut self, produced: &[ProducedSignature]) {
        for run in produced.chunk_by(same_batch) {
            let (Some(first), Some(batch)) = (run.first(), StoredBatch::from_run(run)) else {
                continue;
            };
            let key = format!(
                "{}{}",
                second_prefix(&first.serial, first.signed_at),
                hex::encode(first.fingerprint)
            );
            self.0.put(key.as_bytes(), &batch);
            let fingerprints = run.iter().flat_map(|p| p.fingerprint).collect();
            self.0
                .put_raw(SIGNATURE_FINGERPRINTS, key.as_bytes(), fingerprints);
        }
    }
}

/// [`super::record::round_trip`] for the record stored in `tree`, if it is one of this
/// module's.
pub(super) fn round_trip(tree: &str, bytes: &[u8]) -> Option<std::result::Result<(), String>> {
    use super::record::round_trip as check;
    Some(match tree {
        SIGNATURE_BATCHES => check::<StoredBatch>(bytes),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn produced(n: u8) -> ProducedSignature {
        ProducedSignature {
            fingerprint: [n; 32],
            kind: Kind::Seal,
            serial: vec![0x0a, 0xbc],
            key_id: "seal-1".into(),
            holder_id: "client-1".into(),
            name: format!("doc-{n}.pdf"),
            digest: [n.wrapping_add(1); 32],
            format: SignatureFormat::Jades,
            signed_at: datetime!(2027-03-01 9:00 UTC),
            request_id: None,
        }
    }

    fn record(store: &Store, batch: &[ProducedSignature]) {
        store
            .transact(|tx| {
                tx.signatures().record(batch);
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }

    fn find(store: &Store, p: &ProducedSignature) -> Option<ProducedSignature> {
        store
            .signatures()
            .find(&p.serial, p.signed_at, &p.fingerprint)
            .unwrap()
    }

    #[test]
    fn every_signature_of_a_batch_reads_back_and_no_signature_bytes_are_kept() {
        let store = Store::in_memory();
        let batch: Vec<_> = (1..=3).map(produced).collect();
        record(&store, &batch);
        for p in &batch {
            assert_eq!(find(&store, p).as_ref(), Some(p));
        }
        assert_eq!(
            store
                .signatures()
                .find(&[0x0a, 0xbc], batch[0].signed_at, &[9; 32])
                .unwrap(),
            None
        );
        let key = format!("0abc/001803891600/{}", hex::encode([1u8; 32]));
        let backend = store.backend().unwrap();
        let raw = backend
            .get(SIGNATURE_BATCHES, key.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(raw).unwrap(),
            format!(
                r#"{{"v":"1","data":{{"kind":"seal","key_id":"seal-1","holder_id":"client-1","format":"jades","signed_at":"2027-03-01T09:00:00Z","request_id":null,"documents":[{{"name":"doc-1.pdf","digest":"{}"}},{{"name":"doc-2.pdf","digest":"{}"}},{{"name":"doc-3.pdf","digest":"{}"}}]}}}}"#,
                hex::encode([2u8; 32]),
                hex::encode([3u8; 32]),
                hex::encode([4u8; 32])
            ),
            "the frozen V1 shape: one record for the batch"
        );
        let index = backend
            .get(SIGNATURE_FINGERPRINTS, key.as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(index, [[1u8; 32], [2; 32], [3; 32]].concat());
    }

    #[test]
    fn a_signature_is_found_only_under_its_own_serial_and_second() {
        let store = Store::in_memory();
        let p = produced(1);
        record(&store, std::slice::from_ref(&p));
        let signatures = store.signatures();
        let later = p.signed_at + time::Duration::seconds(1);
        assert_eq!(
            signatures.find(&p.serial, later, &p.fingerprint).unwrap(),
            None
        );
        assert_eq!(
            signatures
                .find(&[0x0a], p.signed_at, &p.fingerprint)
                .unwrap(),
            None
        );
    }

    #[test]
    fn many_batches_in_one_second_are_all_searched() {
        let store = Store::in_memory();
        // More batches than one scan page, each of two signatures.
        let all: Vec<_> = (0..=(2 * PAGE as u8)).map(produced).collect();
        for pair in all.chunks(2) {
            record(&store, pair);
        }
        for p in &all {
            assert_eq!(find(&store, p).as_ref(), Some(p), "signature {:?}", p.name);
        }
    }

    #[test]
    fn a_run_with_another_header_starts_another_batch() {
        let store = Store::in_memory();
        let mut second = produced(2);
        second.request_id = Some("request-1".into());
        let batch = vec![produced(1), second.clone()];
        record(&store, &batch);
        assert_eq!(
            find(&store, &second).unwrap().request_id.as_deref(),
            Some("request-1")
        );
        assert_eq!(find(&store, &batch[0]).unwrap().request_id, None);
    }

    #[test]
    fn a_batch_of_an_unknown_kind_is_corrupt_not_misread() {
        let store = Store::in_memory();
        let key = format!("0abc/001803891600/{}", hex::encode([7u8; 32]));
        let bytes = br#"{"v":"1","data":{"kind":"robot","key_id":"k","holder_id":"h","format":"cades","signed_at":"2027-03-01T09:00:00Z","request_id":null,"documents":[{"name":"n","digest":"00"}]}}"#;
        store
            .plant_raw(SIGNATURE_BATCHES, key.as_bytes(), bytes)
            .unwrap();
        store
            .plant_raw(SIGNATURE_FINGERPRINTS, key.as_bytes(), &[7; 32])
            .unwrap();
        assert!(matches!(
            store
                .signatures()
                .find(&[0x0a, 0xbc], datetime!(2027-03-01 9:00 UTC), &[7; 32]),
            Err(StoreError::Corrupt {
                tree: SIGNATURE_BATCHES,
                ..
            })
        ));
    }
}
