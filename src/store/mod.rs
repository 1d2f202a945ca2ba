//! Persistence: the only layer that knows how bytes are laid out on disk.
//!
//! [`Store`] is a cheap-to-clone handle over a [`Backend`] (sled on disk, or memory for unit
//! tests). Everything written goes through [`record`], which wraps each value in an explicit
//! version tag and decodes it through one function, so an old or foreign record is reported
//! with its tree and key instead of being misread.

mod backend;
mod citizens;
mod clients;
mod memory;
pub mod oidc;
mod passkeys;
pub mod record;
mod sled_backend;

use std::sync::Arc;

pub use backend::{Backend, BackendError, Write, WriteKind};
pub use citizens::{CITIZENS, ENROLMENTS, NATIONAL_IDS};
pub use clients::{CLIENT_ASSERTION_JTIS, CLIENTS};
pub use memory::MemoryBackend;
pub use passkeys::{CEREMONIES, CREDENTIALS, SESSIONS};
pub use sled_backend::SledBackend;

/// Result type of the storage layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong below the domain. Every variant names where it happened; none of this
/// text is meant for a client, the http layer logs it with the request id.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The data directory is locked by another process (sled's file lock).
    #[error("data dir {dir} is already in use by another civis process")]
    Locked {
        /// The directory that could not be opened.
        dir: String,
    },
    /// The backend failed (I/O, sled internals).
    #[error("storage backend error: {0}")]
    Backend(#[from] BackendError),
    /// A record carries a version tag this build does not know.
    #[error("record {tree}/{key} has unknown version {version}")]
    UnknownVersion {
        /// Tree (table) name.
        tree: &'static str,
        /// Printable key.
        key: String,
        /// The tag found on disk.
        version: String,
    },
    /// A record could not be decoded at all.
    #[error("record {tree}/{key} is corrupt: {reason}")]
    Corrupt {
        /// Tree (table) name.
        tree: &'static str,
        /// Printable key.
        key: String,
        /// What the decoder said.
        reason: String,
    },
    /// A batch's precondition failed: a key that must be new exists (uniqueness), or a
    /// record changed since it was read (concurrent update).
    #[error("key {tree}/{key} exists or changed concurrently")]
    Conflict {
        /// Tree (table) name.
        tree: &'static str,
        /// Printable key.
        key: String,
    },
}

/// A value read for update, with the exact bytes it was decoded from; writing it back uses
/// those bytes as the compare-and-swap expectation, so a concurrent change is detected even
/// when the record was stored by an older version.
#[derive(Debug, Clone)]
pub struct Snapshot<T> {
    /// The decoded value.
    pub value: T,
    raw: Vec<u8>,
}

impl<T> Snapshot<T> {
    /// Converts the value, keeping the bytes it was read from.
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Snapshot<U> {
        Snapshot {
            value: f(self.value),
            raw: self.raw,
        }
    }

    fn replace(&self, tree: &'static str, key: &[u8], value: Vec<u8>) -> Write {
        Write {
            tree,
            key: key.to_vec(),
            kind: WriteKind::Swap {
                expected: self.raw.clone(),
                value,
            },
        }
    }
}

/// Handle to the storage; clone it freely.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    /// Decoded client registrations, read on every token request. Registrations are never
    /// changed after creation and only this process writes (sled's lock), so entries stay
    /// valid; `insert_client` fills the cache.
    clients:
        Arc<std::sync::RwLock<std::collections::HashMap<String, crate::domain::clients::Client>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if absent) the sled database in `dir`.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds the directory, otherwise
    /// [`StoreError::Backend`].
    pub fn open_sled(dir: &std::path::Path) -> Result<Self> {
        Ok(Self::new(SledBackend::open(dir)?))
    }

    /// A store that lives in memory only (unit tests).
    pub fn in_memory() -> Self {
        Self::new(MemoryBackend::default())
    }

    /// Wraps any backend.
    pub fn new(backend: impl Backend) -> Self {
        Self {
            backend: Arc::new(backend),
            clients: Arc::default(),
        }
    }

    /// Writes everything to durable storage. Call before acknowledging a write a person
    /// relies on.
    ///
    /// # Errors
    /// The backend's I/O error.
    pub fn flush(&self) -> Result<()> {
        Ok(self.backend.flush()?)
    }

    /// Cheap liveness probe for `/healthz`: a read of the metadata tree.
    ///
    /// # Errors
    /// The backend's error.
    pub fn probe(&self) -> Result<()> {
        self.backend.get("meta", b"probe")?;
        Ok(())
    }

    /// Raw access for tools and tests that must plant or inspect bytes (e.g. a record from a
    /// future version). Domain code never uses this.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Reads and decodes one record.
    fn read<R: record::Record>(&self, key: &[u8]) -> Result<Option<R>> {
        match self.backend.get(R::TREE, key)? {
            None => Ok(None),
            Some(bytes) => record::decode::<R>(key, &bytes).map(Some),
        }
    }

    /// Reads one record keeping its raw bytes for a later compare-and-swap.
    fn read_for_update<R: record::Record>(&self, key: &[u8]) -> Result<Option<Snapshot<R>>> {
        match self.backend.get(R::TREE, key)? {
            None => Ok(None),
            Some(raw) => Ok(Some(Snapshot {
                value: record::decode::<R>(key, &raw)?,
                raw,
            })),
        }
    }

    /// Applies writes atomically, mapping a failed precondition to [`StoreError::Conflict`],
    /// then flushes so the caller may acknowledge.
    fn commit(&self, writes: Vec<Write>) -> Result<()> {
        match self.backend.commit(writes)? {
            None => {}
            Some((tree, key)) => {
                return Err(StoreError::Conflict {
                    tree,
                    key: record::printable_key(&key),
                });
            }
        }
        self.flush()
    }
}
