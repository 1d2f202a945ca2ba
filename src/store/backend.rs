//! The byte-level storage interface every backend implements: point reads, prefix and range
//! scans, and transactions whose body reads a consistent state and stages writes that are
//! applied all together or not at all.

/// A backend failure, with the backend's own words (logged, never shown to clients).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// A key and its value, as a scan returns them.
pub type Entry = (Vec<u8>, Vec<u8>);

/// One staged change of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Tree (table) the key lives in.
    pub tree: &'static str,
    /// The key.
    pub key: Vec<u8>,
    /// The new value, or `None` to remove the key.
    pub value: Option<Vec<u8>>,
}

/// Reads inside a transaction: they see the state the transaction started from, and no
/// other transaction commits in between (the backend's isolation).
pub trait TxRead {
    /// Reads one value as committed before this transaction.
    ///
    /// # Errors
    /// Backend I/O failure, or a tree the backend does not know.
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError>;
}

/// What a transaction body decided.
#[derive(Debug)]
pub enum Decision {
    /// Apply these writes atomically.
    Commit(Vec<Write>),
    /// Apply nothing.
    Abort,
}

/// A transaction body: may run more than once when a backend retries after a conflict, so
/// it must act only through the reads it is given and the decision it returns.
pub type TxBody<'a> = dyn FnMut(&dyn TxRead) -> Result<Decision, BackendError> + 'a;

/// Byte-level key-value storage with named trees and serialisable transactions.
pub trait Backend: Send + Sync + 'static {
    /// Reads one committed value.
    ///
    /// # Errors
    /// Backend I/O failure.
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError>;

    /// Up to `limit` entries with `key >= start` whose key starts with `prefix`, in key order.
    ///
    /// # Errors
    /// Backend I/O failure.
    fn scan(
        &self,
        tree: &'static str,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, BackendError>;

    /// Runs `body` in isolation from every other transaction and applies its writes
    /// atomically when it decides to commit. Does not make them durable: see
    /// [`Backend::flush`].
    ///
    /// # Errors
    /// The body's error (nothing is written), or a backend failure.
    fn transact(&self, body: &mut TxBody<'_>) -> Result<(), BackendError>;

    /// Makes every committed transaction durable.
    ///
    /// # Errors
    /// Backend I/O failure.
    fn flush(&self) -> Result<(), BackendError>;
}
