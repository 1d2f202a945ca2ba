//! The byte-level storage interface the sled and memory backends implement.

/// A backend failure, with the backend's own words (logged, never shown to clients).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// A key and its value, as a scan returns them.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One write of an atomic batch.
#[derive(Debug, Clone)]
pub struct Write {
    /// Tree (table) the key lives in.
    pub tree: &'static str,
    /// The key.
    pub key: Vec<u8>,
    /// What to do with it.
    pub kind: WriteKind,
}

/// The kinds of write a batch can hold.
#[derive(Debug, Clone)]
pub enum WriteKind {
    /// Set the value, whatever was there.
    Put(Vec<u8>),
    /// Set the value only if the key is absent; otherwise the whole batch is abandoned.
    PutNew(Vec<u8>),
    /// Set the value only if the key currently holds exactly `expected` (optimistic
    /// concurrency: a concurrent change abandons the batch and the caller retries).
    Swap {
        /// The bytes read before the change.
        expected: Vec<u8>,
        /// The bytes to write.
        value: Vec<u8>,
    },
    /// Remove the key if present.
    Delete,
}

/// Byte-level key-value storage with named trees and atomic multi-tree batches.
pub trait Backend: Send + Sync + 'static {
    /// Reads one value.
    ///
    /// # Errors
    /// Backend I/O failure.
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError>;

    /// Applies every write or none. Returns `Some((tree, key))` naming the first
    /// [`WriteKind::PutNew`] or [`WriteKind::Swap`] whose precondition failed (and then
    /// nothing was written).
    ///
    /// # Errors
    /// Backend I/O failure.
    fn commit(&self, writes: Vec<Write>) -> Result<Option<(&'static str, Vec<u8>)>, BackendError>;

    /// Atomically removes a key and returns what it held: the primitive behind single-use
    /// codes and ceremonies (two concurrent takers cannot both get the value).
    ///
    /// # Errors
    /// Backend I/O failure.
    fn take(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError>;

    /// All entries whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// Backend I/O failure.
    fn scan_prefix(&self, tree: &'static str, prefix: &[u8]) -> Result<Vec<Entry>, BackendError>;

    /// Makes every completed write durable.
    ///
    /// # Errors
    /// Backend I/O failure.
    fn flush(&self) -> Result<(), BackendError>;
}
