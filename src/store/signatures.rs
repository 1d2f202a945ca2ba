//! The record of every signature civis produced, keyed by the SHA-256 of the signature's
//! bytes (hex): who signed (seal or official, the key record, its holder), which document
//! (name, digest), the format and the signing time. Never the signature value, a key or a
//! document. Records are never deleted: verification needs them for as long as the
//! signatures are relied on.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{printable_key, record_v1};
use super::tx::Read;
use super::{Result, Store, StoreError, Tx};
use crate::domain::signing::{Kind, ProducedSignature, SignatureFormat};

/// Tree of produced signatures by the hex SHA-256 of their bytes.
pub const SIGNATURES: &str = "signatures";

#[derive(Serialize, Deserialize)]
struct ProducedV1 {
    /// `seal` or `official`.
    kind: String,
    /// The seal's or official's id.
    key_id: String,
    /// The client id (seal) or citizen id (official) that used the key.
    holder_id: String,
    name: String,
    /// Hex of the 32-byte digest.
    digest: String,
    /// `cades` or `jades`.
    format: String,
    #[serde(with = "time::serde::rfc3339")]
    signed_at: OffsetDateTime,
    request_id: Option<String>,
}

record_v1!(StoredProduced, SIGNATURES, ProducedV1);

impl From<&ProducedSignature> for StoredProduced {
    fn from(p: &ProducedSignature) -> Self {
        Self::V1(ProducedV1 {
            kind: p.kind.noun().to_owned(),
            key_id: p.key_id.clone(),
            holder_id: p.holder_id.clone(),
            name: p.name.clone(),
            digest: hex::encode(p.digest),
            format: p.format.as_str().to_owned(),
            signed_at: p.signed_at,
            request_id: p.request_id.clone(),
        })
    }
}

impl StoredProduced {
    fn into_domain(self, fingerprint: [u8; 32], key: &[u8]) -> Result<ProducedSignature> {
        let Self::V1(p) = self;
        let corrupt = |reason: &str| StoreError::Corrupt {
            tree: SIGNATURES,
            key: printable_key(key),
            reason: reason.to_owned(),
        };
        let kind = match p.kind.as_str() {
            "seal" => Kind::Seal,
            "official" => Kind::Official,
            _ => return Err(corrupt("unknown kind")),
        };
        Ok(ProducedSignature {
            fingerprint,
            kind,
            digest: crate::crypto::digest::unhex32(&p.digest)
                .ok_or_else(|| corrupt("digest is not 32 bytes of hex"))?,
            format: SignatureFormat::parse(&p.format).ok_or_else(|| corrupt("unknown format"))?,
            key_id: p.key_id,
            holder_id: p.holder_id,
            name: p.name,
            signed_at: p.signed_at,
            request_id: p.request_id,
        })
    }
}

/// Produced signatures. Read on the committed store or in a transaction; recorded only in
/// a transaction.
pub struct Signatures<S>(S);

impl Store {
    /// Committed records of produced signatures.
    pub fn signatures(&self) -> Signatures<&Self> {
        Signatures(self)
    }
}

impl<'a> Tx<'a> {
    /// Produced signatures in this transaction.
    pub fn signatures(&mut self) -> Signatures<&mut Tx<'a>> {
        Signatures(self)
    }
}

impl<S: Read> Signatures<S> {
    /// The record of the signature whose bytes hash to `fingerprint`.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, fingerprint: &[u8; 32]) -> Result<Option<ProducedSignature>> {
        let key = hex::encode(fingerprint);
        self.0
            .get::<StoredProduced>(key.as_bytes())?
            .map(|p| p.into_domain(*fingerprint, key.as_bytes()))
            .transpose()
    }
}

impl Signatures<&mut Tx<'_>> {
    /// Records a produced signature. Two signatures with the same bytes are the same
    /// signature (ECDSA draws a fresh nonce each time), so a repeat replaces its record.
    pub fn record(&mut self, p: &ProducedSignature) {
        self.0.put(
            hex::encode(p.fingerprint).as_bytes(),
            &StoredProduced::from(p),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produced(n: u8) -> ProducedSignature {
        ProducedSignature {
            fingerprint: [n; 32],
            kind: Kind::Seal,
            key_id: "seal-1".into(),
            holder_id: "client-1".into(),
            name: format!("doc-{n}.pdf"),
            digest: [n.wrapping_add(1); 32],
            format: SignatureFormat::Jades,
            signed_at: time::macros::datetime!(2027-03-01 9:00 UTC),
            request_id: None,
        }
    }

    #[test]
    fn a_recorded_batch_reads_back_and_holds_no_signature_bytes() {
        let store = Store::in_memory();
        let batch: Vec<_> = (1..=3).map(produced).collect();
        store
            .transact(|tx| {
                for p in &batch {
                    tx.signatures().record(p);
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        for p in &batch {
            assert_eq!(
                store.signatures().get(&p.fingerprint).unwrap().as_ref(),
                Some(p)
            );
        }
        assert_eq!(store.signatures().get(&[9; 32]).unwrap(), None);
        let raw = store
            .backend()
            .unwrap()
            .get(SIGNATURES, hex::encode([1u8; 32]).as_bytes())
            .unwrap()
            .unwrap();
        let text = String::from_utf8(raw).unwrap();
        assert_eq!(
            text,
            format!(
                r#"{{"v":"1","data":{{"kind":"seal","key_id":"seal-1","holder_id":"client-1","name":"doc-1.pdf","digest":"{}","format":"jades","signed_at":"2027-03-01T09:00:00Z","request_id":null}}}}"#,
                hex::encode([2u8; 32])
            ),
            "the frozen V1 shape"
        );
    }

    #[test]
    fn a_record_of_an_unknown_kind_is_corrupt_not_misread() {
        let store = Store::in_memory();
        let key = hex::encode([7u8; 32]);
        let bytes = br#"{"v":"1","data":{"kind":"robot","key_id":"k","holder_id":"h","name":"n","digest":"00","format":"cades","signed_at":"2027-03-01T09:00:00Z","request_id":null}}"#;
        store.plant_raw(SIGNATURES, key.as_bytes(), bytes).unwrap();
        assert!(matches!(
            store.signatures().get(&[7; 32]),
            Err(StoreError::Corrupt {
                tree: SIGNATURES,
                ..
            })
        ));
    }
}
