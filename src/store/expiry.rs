//! The expiry index and its sweeper. Every short-lived record is filed here when written
//! ([`super::Tx::put_expiring`]), keyed by its expiry time, so that finding what has expired
//! costs a range scan of the index, not a scan of every tree.
//!
//! Index key: expiry as 8 big-endian bytes of Unix seconds (so keys sort by time), the
//! record's tree name, a 0 byte, the record's key; the value is empty. A record updated in
//! place (a grant revoked, a refresh token spent) keeps its entry. When the record itself
//! carries `data.expires_at` (every short-lived shape but the grant does), the sweeper
//! removes it only if that time has passed too: a key given a new, later-expiring record
//! is not swept by its old entry.

use time::OffsetDateTime;

use super::tx::Read;
use super::{Result, Store, TREES};

/// Tree of the expiry index.
pub const EXPIRY: &str = "expiry";

/// The index key and value for a record written now.
pub(super) fn entry(tree: &'static str, key: &[u8], expires_at: OffsetDateTime) -> Vec<u8> {
    let secs = u64::try_from(expires_at.unix_timestamp()).unwrap_or(0);
    let mut index_key = Vec::with_capacity(8 + tree.len() + 1 + key.len());
    index_key.extend_from_slice(&secs.to_be_bytes());
    index_key.extend_from_slice(tree.as_bytes());
    index_key.push(0);
    index_key.extend_from_slice(key);
    index_key
}

/// Whether a record may go at `now`: yes unless it names a later `data.expires_at` itself.
fn due(bytes: &[u8], now: OffsetDateTime) -> bool {
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(default, with = "time::serde::rfc3339::option")]
        expires_at: Option<OffsetDateTime>,
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        data: Data,
    }
    serde_json::from_slice::<Envelope>(bytes)
        .ok()
        .and_then(|e| e.data.expires_at)
        .is_none_or(|at| at <= now)
}

/// Splits an index key into expiry seconds, tree and record key.
fn parse(index_key: &[u8]) -> Option<(u64, &'static str, &[u8])> {
    let (secs, rest) = index_key.split_first_chunk::<8>()?;
    let zero = rest.iter().position(|b| *b == 0)?;
    let (name, key) = rest.split_at(zero);
    let tree = TREES.iter().find(|t| t.name.as_bytes() == name)?.name;
    Some((u64::from_be_bytes(*secs), tree, key.get(1..)?))
}

impl Store {
    /// Removes up to `max` records whose expiry is before `now`, with their index entries,
    /// in one transaction; returns how many index entries it processed. Call it again while
    /// it returns `max`. Index entries this build cannot parse are removed too (they name no
    /// record it knows).
    ///
    /// # Errors
    /// Backend failures.
    pub fn sweep_expired(&self, now: OffsetDateTime, max: usize) -> Result<usize> {
        let now_secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let entries: Vec<Vec<u8>> = self
            .io()?
            .scan(EXPIRY, b"", b"", max)?
            .into_iter()
            .map(|(k, _)| k)
            .take_while(|k| parse(k).is_none_or(|(secs, _, _)| secs < now_secs))
            .collect();
        if entries.is_empty() {
            return Ok(0);
        }
        self.transact(|tx| {
            for index_key in &entries {
                if let Some((_, tree, key)) = parse(index_key)
                    && tx.raw(tree, key)?.is_some_and(|bytes| due(&bytes, now))
                {
                    tx.delete(tree, key);
                }
                tx.delete(EXPIRY, index_key);
            }
            Ok::<_, super::StoreError>(())
        })?;
        Ok(entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_by_time_and_parse_back() {
        let early = time::macros::datetime!(2026-01-01 00:00 UTC);
        let late = time::macros::datetime!(2027-01-01 00:00 UTC);
        let a = entry(super::super::CEREMONIES, b"zzz", early);
        let b = entry(super::super::CEREMONIES, b"aaa", late);
        assert!(a < b);
        let (secs, tree, key) = parse(&a).unwrap();
        assert_eq!(secs, u64::try_from(early.unix_timestamp()).unwrap());
        assert_eq!(tree, super::super::CEREMONIES);
        assert_eq!(key, b"zzz");
        assert!(parse(b"short").is_none());
    }

    #[test]
    fn a_record_naming_a_later_expiry_is_not_due() {
        let now = time::macros::datetime!(2026-06-01 00:00 UTC);
        assert!(due(
            br#"{"v":"1","data":{"expires_at":"2026-05-01T00:00:00Z"}}"#,
            now
        ));
        assert!(!due(
            br#"{"v":"1","data":{"expires_at":"2026-07-01T00:00:00Z"}}"#,
            now
        ));
        assert!(
            due(br#"{"v":"1","data":{"id":"a grant"}}"#, now),
            "no own expiry"
        );
        assert!(due(b"not json", now));
    }
}
