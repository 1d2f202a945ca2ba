//! The byte-level storage interface every backend implements: point reads, prefix and range
//! scans, and transactions whose body reads a consistent state and stages writes that are
//! applied all together or not at all.

/// A backend failure, with the backend's own words (logged, never shown to clients).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The operation failed (I/O, a corrupt page, a bug).
    #[error("{0}")]
    Failed(String),
    /// The database cannot be reached or did not answer in time; nothing was written, and
    /// the same call may succeed once it is back (answered 503, not 500).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A write staged as new ([`Write::new`]) found its key taken when it was applied;
    /// nothing of the transaction was written.
    #[error("key exists in {tree}")]
    Exists {
        /// The tree.
        tree: &'static str,
        /// The key.
        key: Vec<u8>,
    },
}

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
    /// The key must not exist when the transaction commits: the backend checks this as it
    /// applies the writes and fails the whole transaction with [`BackendError::Exists`].
    /// Checked there rather than read in the body, so that a shared database need not lock
    /// the absent key's neighbourhood against every concurrent insert (see the PostgreSQL
    /// backend).
    pub new: bool,
}

/// Reads inside a transaction: they see the state the transaction started from, and no
/// other transaction commits in between (the backend's isolation).
pub trait TxRead {
    /// Reads one value as committed before this transaction.
    ///
    /// # Errors
    /// Backend I/O failure, or a tree the backend does not know.
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError>;

    /// Reads several values of one tree, in the order of `keys`. A shared database answers
    /// them in one round trip instead of one each.
    ///
    /// # Errors
    /// As [`TxRead::get`].
    fn get_many(
        &self,
        tree: &'static str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        keys.iter().map(|k| self.get(tree, k)).collect()
    }
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

    /// Reads several committed values of one tree, in the order of `keys`. A shared
    /// database answers them in one round trip instead of one each.
    ///
    /// # Errors
    /// Backend I/O failure.
    fn get_many(
        &self,
        tree: &'static str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        keys.iter().map(|k| self.get(tree, k)).collect()
    }

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
    /// atomically when it decides to commit, unless a [`Write::new`] key exists by then.
    /// Does not make them durable: see [`Backend::flush`].
    ///
    /// # Errors
    /// The body's error (nothing is written), [`BackendError::Exists`] (nothing is
    /// written), or a backend failure.
    fn transact(&self, body: &mut TxBody<'_>) -> Result<(), BackendError>;

    /// Makes every committed transaction durable.
    ///
    /// # Errors
    /// Backend I/O failure.
    fn flush(&self) -> Result<(), BackendError>;

    /// Does, before the server says it is ready, whatever work the backend would otherwise
    /// do on the first durable write after opening (and make the first requests wait for).
    ///
    /// # Errors
    /// Backend I/O failure.
    fn settle(&self) -> Result<(), BackendError> {
        Ok(())
    }

    /// Whether this process may now run the store's single background writer (the audit
    /// integrator). An embedded store has one process, which always may; a shared database
    /// lets one process at a time hold it, and another take over when that one is gone.
    ///
    /// # Errors
    /// Backend failure (the caller tries again later).
    fn lead(&self) -> Result<bool, BackendError> {
        Ok(true)
    }

    /// Whether other processes may use the same data (a shared database). An embedded store
    /// is locked by its one process, so what that process remembers is all there is.
    fn shared(&self) -> bool {
        false
    }

    /// Whether this backend runs one transaction at a time (an embedded store under its
    /// writer lock). There, a transaction that reads and writes a shared counter never
    /// conflicts with another, so the audit log numbers entries in the action's own
    /// transaction instead of queueing them (see `store::audit`).
    fn serial(&self) -> bool {
        false
    }

    /// Whether the store holds no record at all (`civis store copy` refuses anything else).
    ///
    /// # Errors
    /// Backend failure.
    fn is_empty(&self) -> Result<bool, BackendError>;
}
