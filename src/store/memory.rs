//! In-memory [`Backend`] for unit tests: same semantics as sled, nothing on disk.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::backend::{Backend, BackendError, Decision, Entry, TxBody, TxRead};

type Trees = BTreeMap<&'static str, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A map of trees behind one lock; a transaction holds the lock from its first read to its
/// last write, so transactions are serial.
#[derive(Default)]
pub struct MemoryBackend {
    trees: Mutex<Trees>,
}

impl MemoryBackend {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Trees>, BackendError> {
        self.trees
            .lock()
            .map_err(|_| BackendError::Failed("memory store lock poisoned".into()))
    }
}

struct Locked<'a>(&'a Trees);

impl TxRead for Locked<'_> {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.0.get(tree).and_then(|t| t.get(key)).cloned())
    }
}

impl Backend for MemoryBackend {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let trees = self.lock()?;
        Locked(&trees).get(tree, key)
    }

    fn scan(
        &self,
        tree: &'static str,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, BackendError> {
        let from = start.max(prefix).to_vec();
        Ok(self
            .lock()?
            .get(tree)
            .map(|t| {
                t.range(from..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .take(limit)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn transact(&self, body: &mut TxBody<'_>) -> Result<(), BackendError> {
        let mut trees = self.lock()?;
        let Decision::Commit(writes) = body(&Locked(&trees))? else {
            return Ok(());
        };
        if let Some(w) = writes
            .iter()
            .find(|w| w.new && trees.get(w.tree).is_some_and(|t| t.contains_key(&w.key)))
        {
            return Err(BackendError::Exists {
                tree: w.tree,
                key: w.key.clone(),
            });
        }
        for w in writes {
            let t = trees.entry(w.tree).or_default();
            match w.value {
                Some(v) => t.insert(w.key, v),
                None => t.remove(&w.key),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn is_empty(&self) -> Result<bool, BackendError> {
        Ok(self.lock()?.values().all(BTreeMap::is_empty))
    }
}
