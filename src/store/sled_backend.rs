//! The sled [`Backend`]: the only file in civis that knows sled.

use std::path::Path;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::StoreError;
use super::backend::{Backend, BackendError, Entry, Write, WriteKind};

/// A sled database opened on one directory (sled holds an exclusive file lock on it).
pub struct SledBackend {
    db: sled::Db,
}

fn backend_err(e: sled::Error) -> BackendError {
    BackendError(e.to_string())
}

impl SledBackend {
    /// Opens or creates the database in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds sled's lock on `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        match sled::Config::new().path(dir).open() {
            Ok(db) => Ok(Self { db }),
            // sled reports its lock failure only as text; match it so the operator gets a
            // precise message instead of an I/O error string.
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                Err(StoreError::Locked {
                    dir: dir.display().to_string(),
                })
            }
            Err(e) => Err(StoreError::Backend(BackendError(format!(
                "cannot open data dir {}: {e}",
                dir.display()
            )))),
        }
    }

    fn tree(&self, name: &str) -> Result<sled::Tree, BackendError> {
        self.db.open_tree(name).map_err(backend_err)
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

    fn commit(&self, writes: Vec<Write>) -> Result<Option<(&'static str, Vec<u8>)>, BackendError> {
        let mut names: Vec<&'static str> = writes.iter().map(|w| w.tree).collect();
        names.sort_unstable();
        names.dedup();
        let trees = names
            .iter()
            .map(|n| self.tree(n))
            .collect::<Result<Vec<_>, _>>()?;
        let outcome = trees.as_slice().transaction(|views| {
            for w in &writes {
                // `names` is sorted and holds every tree of the batch, so the search succeeds.
                let Ok(i) = names.binary_search(&w.tree) else {
                    continue;
                };
                let Some(view) = views.get(i) else { continue };
                match &w.kind {
                    WriteKind::Put(v) => {
                        view.insert(w.key.as_slice(), v.as_slice())?;
                    }
                    WriteKind::PutNew(v) => {
                        if view.get(w.key.as_slice())?.is_some() {
                            return Err(ConflictableTransactionError::Abort((
                                w.tree,
                                w.key.clone(),
                            )));
                        }
                        view.insert(w.key.as_slice(), v.as_slice())?;
                    }
                    WriteKind::Swap { expected, value } => {
                        if view.get(w.key.as_slice())?.as_deref() != Some(expected.as_slice()) {
                            return Err(ConflictableTransactionError::Abort((
                                w.tree,
                                w.key.clone(),
                            )));
                        }
                        view.insert(w.key.as_slice(), value.as_slice())?;
                    }
                    WriteKind::Delete => {
                        view.remove(w.key.as_slice())?;
                    }
                }
            }
            Ok(())
        });
        match outcome {
            Ok(()) => Ok(None),
            Err(TransactionError::Abort(taken)) => Ok(Some(taken)),
            Err(TransactionError::Storage(e)) => Err(backend_err(e)),
        }
    }

    fn take(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self
            .tree(tree)?
            .remove(key)
            .map_err(backend_err)?
            .map(|v| v.to_vec()))
    }

    fn scan_prefix(&self, tree: &'static str, prefix: &[u8]) -> Result<Vec<Entry>, BackendError> {
        self.tree(tree)?
            .scan_prefix(prefix)
            .map(|r| {
                r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .map_err(backend_err)
            })
            .collect()
    }

    fn flush(&self) -> Result<(), BackendError> {
        self.db.flush().map(|_| ()).map_err(backend_err)
    }
}
