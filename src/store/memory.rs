//! In-memory [`Backend`] for unit tests: same semantics as sled, nothing on disk.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::backend::{Backend, BackendError, Entry, Write, WriteKind};

type Trees = BTreeMap<&'static str, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A map of trees behind one lock; batches are atomic because they hold the lock throughout.
#[derive(Default)]
pub struct MemoryBackend {
    trees: Mutex<Trees>,
}

impl MemoryBackend {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Trees>, BackendError> {
        self.trees
            .lock()
            .map_err(|_| BackendError("memory store lock poisoned".into()))
    }
}

impl Backend for MemoryBackend {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.lock()?.get(tree).and_then(|t| t.get(key)).cloned())
    }

    fn commit(&self, writes: Vec<Write>) -> Result<Option<(&'static str, Vec<u8>)>, BackendError> {
        let mut trees = self.lock()?;
        for w in &writes {
            let current = trees.get(w.tree).and_then(|t| t.get(&w.key));
            let failed = match &w.kind {
                WriteKind::PutNew(_) => current.is_some(),
                WriteKind::Swap { expected, .. } => current != Some(expected),
                WriteKind::Put(_) | WriteKind::Delete => false,
            };
            if failed {
                return Ok(Some((w.tree, w.key.clone())));
            }
        }
        for w in writes {
            let t = trees.entry(w.tree).or_default();
            match w.kind {
                WriteKind::Put(v) | WriteKind::PutNew(v) | WriteKind::Swap { value: v, .. } => {
                    t.insert(w.key, v);
                }
                WriteKind::Delete => {
                    t.remove(&w.key);
                }
            }
        }
        Ok(None)
    }

    fn take(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.lock()?.get_mut(tree).and_then(|t| t.remove(key)))
    }

    fn scan_prefix(&self, tree: &'static str, prefix: &[u8]) -> Result<Vec<Entry>, BackendError> {
        Ok(self
            .lock()?
            .get(tree)
            .map(|t| {
                t.range(prefix.to_vec()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    fn flush(&self) -> Result<(), BackendError> {
        Ok(())
    }
}
