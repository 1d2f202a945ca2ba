//! The sled [`Backend`]: the only file in civis that knows sled.
//!
//! Every tree the store uses is opened once, at start; a transaction spans all of them.
//! sled 0.34 runs each transaction under its global write lock, so transactions are serial
//! (and never retried); bodies are kept short: no signing or hashing of documents inside.
//! sled's transactional trees cannot iterate, so scans happen outside transactions.

use std::cell::RefCell;
use std::path::Path;

use sled::Transactional;
use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionalTree, UnabortableTransactionError,
};

use super::StoreError;
use super::backend::{Backend, BackendError, Decision, Entry, TxBody, TxRead};

/// A sled database opened on one directory (sled holds an exclusive file lock on it).
pub struct SledBackend {
    db: sled::Db,
    /// The trees of [`super::TREES`], in that order.
    trees: Vec<(&'static str, sled::Tree)>,
}

fn backend_err(e: sled::Error) -> BackendError {
    BackendError(e.to_string())
}

fn unknown_tree(tree: &str) -> BackendError {
    BackendError(format!("tree {tree} is not one of the store's trees"))
}

impl SledBackend {
    /// Opens or creates the database in `dir` with every tree of [`super::TREES`].
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds sled's lock on `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = match sled::Config::new().path(dir).open() {
            Ok(db) => db,
            // sled reports its lock failure only as text; match it so the operator gets a
            // precise message instead of an I/O error string.
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                return Err(StoreError::Locked {
                    dir: dir.display().to_string(),
                });
            }
            Err(e) => {
                return Err(StoreError::Backend(BackendError(format!(
                    "cannot open data dir {}: {e}",
                    dir.display()
                ))));
            }
        };
        let trees = super::TREES
            .iter()
            .map(|t| Ok((t.name, db.open_tree(t.name).map_err(backend_err)?)))
            .collect::<Result<Vec<_>, BackendError>>()?;
        Ok(Self { db, trees })
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

/// Reads through sled's transactional views (which also remember what was read).
struct Views<'a> {
    backend: &'a SledBackend,
    views: &'a [TransactionalTree],
}

impl TxRead for Views<'_> {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let view = self
            .views
            .get(self.backend.index(tree)?)
            .ok_or_else(|| unknown_tree(tree))?;
        match view.get(key) {
            Ok(v) => Ok(v.map(|v| v.to_vec())),
            Err(UnabortableTransactionError::Storage(e)) => Err(backend_err(e)),
            Err(UnabortableTransactionError::Conflict) => {
                Err(BackendError("sled transaction conflict".into()))
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
        // sled wants an `Fn` closure (it may retry); ours is `FnMut`, so borrow it mutably
        // inside. sled 0.34 never actually retries: its transactions hold a global lock.
        let body = RefCell::new(body);
        let failure: RefCell<Option<BackendError>> = RefCell::new(None);
        let trees: Vec<&sled::Tree> = self.trees.iter().map(|(_, t)| t).collect();
        let outcome = trees.as_slice().transaction(|views| {
            let mut body = body.borrow_mut();
            let decision = body(&Views {
                backend: self,
                views,
            });
            let writes = match decision {
                Ok(Decision::Commit(writes)) => writes,
                Ok(Decision::Abort) => return Err(ConflictableTransactionError::Abort(())),
                Err(e) => {
                    *failure.borrow_mut() = Some(e);
                    return Err(ConflictableTransactionError::Abort(()));
                }
            };
            for w in writes {
                let Some(view) = self.index(w.tree).ok().and_then(|i| views.get(i)) else {
                    *failure.borrow_mut() = Some(unknown_tree(w.tree));
                    return Err(ConflictableTransactionError::Abort(()));
                };
                match w.value {
                    Some(v) => view.insert(w.key, v)?,
                    None => view.remove(w.key)?,
                };
            }
            Ok(())
        });
        match outcome {
            Ok(()) => Ok(()),
            Err(TransactionError::Abort(())) => match failure.into_inner() {
                Some(e) => Err(e),
                None => Ok(()),
            },
            Err(TransactionError::Storage(e)) => Err(backend_err(e)),
        }
    }

    fn flush(&self) -> Result<(), BackendError> {
        self.db.flush().map(|_| ()).map_err(backend_err)
    }
}
