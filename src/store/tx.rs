//! The transaction every write goes through, and [`Read`], the reads that both a
//! transaction and the committed store offer (so each aggregate's getters serve both).

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::backend::{TxRead, Write};
use super::record::{self, Record, printable_key};
use super::{Result, Store, StoreError, expiry};

/// Reads of versioned records: committed ones through [`Store`], or the state a transaction
/// sees (its own staged writes included) through [`Tx`].
pub trait Read {
    /// The raw bytes under `key` in `tree`.
    ///
    /// # Errors
    /// Backend failures; [`StoreError::WouldBlock`] on an async worker thread.
    fn raw(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// One record, decoded.
    ///
    /// # Errors
    /// As [`Read::raw`], and decoding errors.
    fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>> {
        match self.raw(R::TREE, key)? {
            None => Ok(None),
            Some(bytes) => record::decode::<R>(key, &bytes).map(Some),
        }
    }
}

impl Read for Store {
    fn raw(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.io()?.get(tree, key)?)
    }
}

impl<T: Read + ?Sized> Read for &T {
    fn raw(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).raw(tree, key)
    }
}

impl<T: Read + ?Sized> Read for &mut T {
    fn raw(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).raw(tree, key)
    }
}

/// An open transaction: reads see the committed state plus this transaction's own writes;
/// writes are staged and applied when the body returns `Ok`.
pub struct Tx<'a> {
    reads: &'a dyn TxRead,
    /// Staged writes by tree, then key (`None`: removal); looked up by borrowed key.
    staged: BTreeMap<&'static str, BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// Staged keys that must not exist when the transaction commits ([`Write::new`]).
    fresh: BTreeSet<(&'static str, Vec<u8>)>,
    /// Unique to this attempt of this transaction among every transaction of every process
    /// on the store: keys made from it are new without reading (see `Store::transact`).
    tag: [u8; 16],
    /// The backend runs one transaction at a time ([`super::Backend::serial`]).
    serial: bool,
}

impl Read for Tx<'_> {
    fn raw(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(staged) = self.staged.get(tree).and_then(|t| t.get(key)) {
            return Ok(staged.clone());
        }
        Ok(self.reads.get(tree, key)?)
    }
}

impl<'a> Tx<'a> {
    /// Several raw values of one tree, in the order of `keys`: this transaction's staged
    /// writes where it has them, the rest read together ([`TxRead::get_many`]).
    ///
    /// # Errors
    /// Backend failures.
    pub(super) fn raw_many(
        &self,
        tree: &'static str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let staged = self.staged.get(tree);
        let unstaged: Vec<Vec<u8>> = keys
            .iter()
            .filter(|k| staged.is_none_or(|t| !t.contains_key(k.as_slice())))
            .cloned()
            .collect();
        let mut read = self.reads.get_many(tree, &unstaged)?.into_iter();
        Ok(keys
            .iter()
            .map(|k| match staged.and_then(|t| t.get(k.as_slice())) {
                Some(value) => value.clone(),
                None => read.next().flatten(),
            })
            .collect())
    }

    pub(super) fn new(reads: &'a dyn TxRead, tag: [u8; 16], serial: bool) -> Self {
        Self {
            reads,
            staged: BTreeMap::new(),
            fresh: BTreeSet::new(),
            tag,
            serial,
        }
    }

    /// See the field.
    pub(super) fn serial(&self) -> bool {
        self.serial
    }

    /// See the field.
    pub(super) fn tag(&self) -> [u8; 16] {
        self.tag
    }

    pub(super) fn into_writes(self) -> Vec<Write> {
        let fresh = self.fresh;
        self.staged
            .into_iter()
            .flat_map(|(tree, keys)| keys.into_iter().map(move |(key, value)| (tree, key, value)))
            .map(|(tree, key, value)| Write {
                new: value.is_some() && fresh.contains(&(tree, key.clone())),
                tree,
                key,
                value,
            })
            .collect()
    }

    /// How many keys of `tree` this transaction has staged so far.
    pub(super) fn staged_len(&self, tree: &'static str) -> usize {
        self.staged.get(tree).map_or(0, BTreeMap::len)
    }

    /// Stages raw bytes (tools and tests that plant records; domain code uses the typed
    /// writes).
    pub fn put_raw(&mut self, tree: &'static str, key: &[u8], value: Vec<u8>) {
        self.staged
            .entry(tree)
            .or_default()
            .insert(key.to_vec(), Some(value));
    }

    /// Stages a record, replacing whatever is there.
    pub fn put<R: Record>(&mut self, key: &[u8], value: &R) {
        self.put_raw(R::TREE, key, record::encode(value));
    }

    /// Stages a record under a key that must be new.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when this transaction staged the key already; a committed
    /// record under the key makes [`Store::transact`] fail with the same error, having
    /// written nothing.
    pub fn insert_new<R: Record>(&mut self, key: &[u8], value: &R) -> Result<()> {
        self.claim(R::TREE, key)?;
        self.put(key, value);
        Ok(())
    }

    /// Marks `key` as one that must be new. Only this transaction's own staging is looked
    /// at here; whether a committed record holds the key is checked by the backend as it
    /// commits ([`Write::new`]), and a taken key then fails the whole transaction with
    /// [`StoreError::Conflict`] from [`Store::transact`].
    fn claim(&mut self, tree: &'static str, key: &[u8]) -> Result<()> {
        match self.staged.get(tree).and_then(|t| t.get(key)) {
            Some(Some(_)) => Err(StoreError::Conflict {
                tree,
                key: printable_key(key),
            }),
            // Removed earlier in this transaction: replacing it is no longer a new key.
            Some(None) => Ok(()),
            None => {
                self.fresh.insert((tree, key.to_vec()));
                Ok(())
            }
        }
    }

    /// Stages a short-lived record and files it in the expiry index, so that
    /// [`Store::sweep_expired`] removes it after `expires_at`.
    pub fn put_expiring<R: Record>(&mut self, key: &[u8], value: &R, expires_at: OffsetDateTime) {
        let index_key = expiry::entry(R::TREE, key, expires_at);
        self.put_raw(expiry::EXPIRY, &index_key, Vec::new());
        self.put(key, value);
    }

    /// Like [`Tx::put_expiring`] for a key that must be new.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the key exists.
    pub fn insert_new_expiring<R: Record>(
        &mut self,
        key: &[u8],
        value: &R,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        self.claim(R::TREE, key)?;
        self.put_expiring(key, value, expires_at);
        Ok(())
    }

    /// Stages the removal of a key (absent keys are fine).
    pub fn delete(&mut self, tree: &'static str, key: &[u8]) {
        self.staged
            .entry(tree)
            .or_default()
            .insert(key.to_vec(), None);
    }

    /// Reads a record and stages its removal: single use. Of two transactions taking the
    /// same key, exactly one gets it.
    ///
    /// # Errors
    /// Backend and decoding errors (the record stays).
    pub fn take<R: Record>(&mut self, key: &[u8]) -> Result<Option<R>> {
        let found = self.get::<R>(key)?;
        if found.is_some() {
            self.delete(R::TREE, key);
        }
        Ok(found)
    }
}
