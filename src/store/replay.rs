//! Spent DPoP proofs. On a shared database they are records (`dpop_proofs`), so every
//! process refuses a replay; an embedded store has exactly one process (its lock), which
//! keeps them in memory instead: no write, no log I/O per request. What memory forgets at a
//! restart is covered by refusing proofs made before the process started.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::{Result, Store, StoreError};

/// Shards of the in-memory set (fewer threads wait on one lock).
const SHARDS: usize = 16;
/// Proofs remembered per shard at most; beyond it (after dropping the expired) the proof is
/// spent in the store instead.
const PER_SHARD: usize = 16_384;

/// The in-memory set: hash of (thumbprint, jti) → until when it is kept.
pub(super) struct Spent {
    shards: Vec<Mutex<HashMap<[u8; 32], i64>>>,
    /// Proofs made earlier than this (unix seconds) may have been spent before a restart.
    since: i64,
}

impl Default for Spent {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            since: OffsetDateTime::now_utc().unix_timestamp(),
        }
    }
}

/// What spending a proof found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// First use.
    Spent,
    /// Used before: a replay.
    Replayed,
    /// Made before this process started: it may have been used before the restart.
    TooOld,
}

impl Store {
    /// Spends a DPoP proof (`key`: hash of its key's thumbprint and `jti`, made at
    /// `made_at`, acceptable until `keep_until`), as of `now`.
    ///
    /// # Errors
    /// Backend failures (a shared database, or a full memory set).
    pub fn spend_dpop_proof(
        &self,
        key: &[u8; 32],
        made_at: i64,
        keep_until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Spend> {
        if !self.backend.shared() {
            if made_at < self.spent.since {
                return Ok(Spend::TooOld);
            }
            let shard = &self.spent.shards[usize::from(key[0]) % SHARDS];
            if let Ok(mut set) = shard.lock() {
                if set.len() >= PER_SHARD {
                    let now = now.unix_timestamp();
                    set.retain(|_, until| *until >= now);
                }
                if set.len() < PER_SHARD {
                    return Ok(match set.insert(*key, keep_until.unix_timestamp()) {
                        None => Spend::Spent,
                        Some(_) => Spend::Replayed,
                    });
                }
            }
        }
        match self.transact(|tx| tx.grants().spend_dpop_proof(key, keep_until)) {
            Ok(()) => Ok(Spend::Spent),
            Err(StoreError::Conflict { .. }) => Ok(Spend::Replayed),
            Err(e) => Err(e),
        }
    }
}
