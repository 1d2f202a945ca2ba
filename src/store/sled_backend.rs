//! The sled [`Backend`]: the only file in civis that knows sled.
//!
//! Every tree the store uses is opened once, at start. Transactions are serial under our
//! own lock (`writer`): the body reads the committed trees directly (no
//! other writer can change them while the lock is held, since every write of civis is a
//! transaction), and its writes are then applied in one sled transaction over only the
//! trees they touch (or one atomic batch, when they touch one tree), so they reach the
//! disk all together or not at all. This is what sled's own transactions over every tree
//! gave, without their cost: sled 0.34 serialises transactions under a global lock anyway,
//! and one spanning every tree of the store costs per tree (registrations from one client
//! went from 0.79× to 0.95× of the previous design's rate with this; README, Performance).
//! Bodies are kept short: no signing or hashing of documents inside.

use std::path::Path;
use std::sync::Mutex;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::StoreError;
use super::backend::{Backend, BackendError, Decision, Entry, TxBody, TxRead, Write};

/// A sled database opened on one directory (sled holds an exclusive file lock on it).
pub struct SledBackend {
    db: sled::Db,
    /// The trees of [`super::TREES`], in that order.
    trees: Vec<(&'static str, sled::Tree)>,
    /// Held by a transaction from its first read to its last write: transactions are
    /// serial, and a body's reads see exactly the state its writes are applied to.
    writer: Mutex<()>,
}

/// sled's page cache unless configured (`--store-cache-mb`). sled's own default (1 GiB) let
/// the cache grow with everything written: a server sealing at full speed reached 184 MiB.
/// Reads that miss it go to the OS page cache.
pub const DEFAULT_CACHE_BYTES: u64 = 16 << 20;

fn backend_err(e: sled::Error) -> BackendError {
    BackendError::Failed(e.to_string())
}

fn unknown_tree(tree: &str) -> BackendError {
    BackendError::Failed(format!("tree {tree} is not one of the store's trees"))
}

impl SledBackend {
    /// Opens or creates the database in `dir` with every tree of [`super::TREES`] and a page
    /// cache of about `cache_bytes` (sled's bound is approximate).
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds sled's lock on `dir`.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let config = sled::Config::new().path(dir).cache_capacity(cache_bytes);
        let db = match config.open() {
            Ok(db) => db,
            // sled reports its lock failure only as text; match it so the operator gets a
            // precise message instead of an I/O error string.
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                return Err(StoreError::Locked {
                    dir: dir.display().to_string(),
                });
            }
            Err(e) => {
                return Err(StoreError::Backend(BackendError::Failed(format!(
                    "cannot open data dir {}: {e}",
                    dir.display()
                ))));
            }
        };
        let trees = super::TREES
            .iter()
            .map(|t| Ok((t.name, db.open_tree(t.name).map_err(backend_err)?)))
            .collect::<Result<Vec<_>, BackendError>>()?;
        Ok(Self {
            db,
            trees,
            writer: Mutex::new(()),
        })
    }

    fn tree(&self, name: &str) -> Result<&sled::Tree, BackendError> {
        self.trees
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| unknown_tree(name))
    }

    fn index(&self, name: &str) -> Result<usize, BackendError> {
        self.trees
            .iter()
            .position(|(n, _)| *n == name)
            .ok_or_else(|| unknown_tree(name))
    }
}

/// A transaction's reads: the committed trees, unchanged while the writer lock is held.
struct Committed<'a>(&'a SledBackend);

impl TxRead for Committed<'_> {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        self.0.get(tree, key)
    }
}

impl SledBackend {
    /// Applies a transaction's writes atomically: one batch when they touch one tree, a
    /// sled transaction over exactly the touched trees otherwise.
    fn apply(&self, writes: Vec<Write>) -> Result<(), BackendError> {
        let mut touched: Vec<usize> = Vec::new();
        for w in &writes {
            let i = self.index(w.tree)?;
            if !touched.contains(&i) {
                touched.push(i);
            }
        }
        match touched.as_slice() {
            [] => Ok(()),
            [only] => {
                let mut batch = sled::Batch::default();
                for w in writes {
                    match w.value {
                        Some(v) => batch.insert(w.key, v),
                        None => batch.remove(w.key),
                    }
                }
                let tree = &self.trees[*only].1;
                tree.apply_batch(batch).map_err(backend_err)
            }
            many => {
                let trees: Vec<&sled::Tree> = many.iter().map(|i| &self.trees[*i].1).collect();
                let outcome = trees.as_slice().transaction(|views| {
                    for w in &writes {
                        // Every tree of `writes` is in `many`, in that order.
                        let Some(at) = many.iter().position(|i| self.trees[*i].0 == w.tree) else {
                            return Err(ConflictableTransactionError::Abort(()));
                        };
                        match &w.value {
                            Some(v) => views[at].insert(w.key.as_slice(), v.as_slice())?,
                            None => views[at].remove(w.key.as_slice())?,
                        };
                    }
                    Ok(())
                });
                match outcome {
                    Ok(()) => Ok(()),
                    Err(TransactionError::Abort(())) => Err(BackendError::Failed(
                        "a write names a tree of no view".into(),
                    )),
                    Err(TransactionError::Storage(e)) => Err(backend_err(e)),
                }
            }
        }
    }
}

impl Backend for SledBackend {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self
            .tree(tree)?
            .get(key)
            .map_err(backend_err)?
            .map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        tree: &'static str,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, BackendError> {
        let from = start.max(prefix).to_vec();
        self.tree(tree)?
            .range(from..)
            .take_while(|r| r.as_ref().map_or(true, |(k, _)| k.starts_with(prefix)))
            .take(limit)
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(backend_err)
            })
            .collect()
    }

    fn transact(&self, body: &mut TxBody<'_>) -> Result<(), BackendError> {
        let _serial = self
            .writer
            .lock()
            .map_err(|_| BackendError::Failed("sled writer lock poisoned".into()))?;
        match body(&Committed(self))? {
            Decision::Commit(writes) => {
                // Under the writer lock no commit comes between this check and the apply.
                for w in writes.iter().filter(|w| w.new) {
                    if self
                        .tree(w.tree)?
                        .contains_key(&w.key)
                        .map_err(backend_err)?
                    {
                        return Err(BackendError::Exists {
                            tree: w.tree,
                            key: w.key.clone(),
                        });
                    }
                }
                self.apply(writes)
            }
            Decision::Abort => Ok(()),
        }
    }

    fn serial(&self) -> bool {
        true
    }

    fn flush(&self) -> Result<(), BackendError> {
        self.db.flush().map(|_| ()).map_err(backend_err)
    }

    /// After a restart sled 0.34 knows no segment as stable, so its first write to the disk
    /// deactivates every segment of the file under the lock every flush needs, and counts
    /// all segments for each one (`SegmentAccountant::stabilize`): work that grows with the
    /// square of the file, about a minute at 10⁷ citizens. sled does it on an I/O thread
    /// after the write is on disk, so a flush returns at once and later writes wait for it:
    /// the first tokens after the ready line did. Here writes of a key no tree of civis
    /// reads (removed again) fill more than a segment of the log, and taking the next
    /// segment needs that lock, so this returns only when the walk is over.
    fn settle(&self) -> Result<(), BackendError> {
        const ROUNDS: usize = 24;
        // Under sled's inline limit (a quarter of a 512 KiB segment), so each lands in the log.
        let filler = vec![0u8; 64 << 10];
        for round in 0..ROUNDS {
            let key = format!("civis.settle.{round}");
            self.db
                .insert(&key, filler.as_slice())
                .map_err(backend_err)?;
            self.db.remove(&key).map_err(backend_err)?;
            self.flush()?;
        }
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, BackendError> {
        Ok(self.trees.iter().all(|(_, t)| t.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_leaves_no_key_and_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SledBackend::open(dir.path(), DEFAULT_CACHE_BYTES).unwrap();
        let written = Write {
            tree: "meta",
            key: b"k".to_vec(),
            value: Some(b"v".to_vec()),
            new: true,
        };
        backend.apply(vec![written]).unwrap();
        backend.settle().unwrap();
        drop(backend);

        let reopened = SledBackend::open(dir.path(), DEFAULT_CACHE_BYTES).unwrap();
        reopened.settle().unwrap();
        assert_eq!(reopened.db.len(), 0, "the settling key is removed again");
        assert_eq!(reopened.get("meta", b"k").unwrap(), Some(b"v".to_vec()));
    }
}
