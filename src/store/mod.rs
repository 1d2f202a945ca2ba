//! Persistence: the only layer that knows how bytes are laid out on disk.
//!
//! # Shape
//! [`Store`] is a cheap-to-clone handle over a [`Backend`] (sled on disk, memory for unit
//! tests; PostgreSQL next). Everything written goes through [`record`], which wraps each
//! value in an explicit version tag and decodes it through one function, so an old or
//! foreign record is reported with its tree and key instead of being misread. Each
//! aggregate has its own file and its own handle, named after it: [`Tx::citizens`],
//! [`Tx::passkeys`], [`Tx::grants`], [`Tx::signing_keys`], [`Tx::signatures`] and so on.
//!
//! # Transactions
//! Every write is a transaction ([`Store::transact`]): a closure that reads through a
//! [`Tx`] and stages writes; the backend runs it isolated from every other transaction and
//! applies its writes all together, or none if the closure returns an error. There is no
//! compare-and-swap and no retry loop in the domain: a read inside the closure is the state
//! the writes are applied to. A backend may run the closure again after a conflict
//! (PostgreSQL's serializable retries), so it acts only through the `Tx`.
//!
//! # Durability
//! The store, not the caller, decides what must reach the disk before `transact` returns:
//! a transaction that wrote to a [`TreeSpec::durable`] tree is flushed; ceremonies and
//! pending authorization requests are not (a lost one is started again). Concurrent
//! transactions share one flush (group commit, [`Store::transact`]): each waits until a
//! flush that began after its own commit has finished, so none is acknowledged early.
//! One exception on sled: the audit entries of actions that write nothing else go to the
//! audit journal ([`journal`]; [`Store::append_audit`]), durable by an `fdatasync` of
//! their own, and are numbered into the log from there.
//!
//! # No I/O on the async worker threads
//! The domain is synchronous, and handlers call it through one helper, [`offload::run`],
//! which runs the call on tokio's blocking pool. The store enforces this: touched from an
//! async worker thread, it refuses with [`StoreError::WouldBlock`] before doing anything
//! (a handler that skipped the helper fails its tests instead of stalling a worker). The
//! one hot call that usually needs no storage, authenticating a cached client and checking
//! a `client_credentials` request, goes through [`offload::run_inline_first`]: it runs in
//! place and moves to the pool only if the store refused, so the fast path costs no thread
//! hop; the token's audit entry then waits in `domain::audit::Appender`'s queue, which
//! appends many entries per transaction on its own thread. Sealing batches run on a fixed
//! set of threads of their own ([`offload::Workers`]).
//!
//! Why not an async store end to end: every transaction body would become an async closure
//! holding a transaction across awaits, for no gain with sled, whose calls block anyway. A
//! networked database fits the same seam: its client waits on the blocking pool (up to
//! tokio's 512 threads), never on a worker; the PostgreSQL backend runs its async client
//! to completion there.
//!
//! # Expiry
//! Short-lived records are written with [`Tx::put_expiring`], which also files them in an
//! expiry index; [`Store::sweep_expired`] removes what has expired, a bounded batch per call.

mod audit;
mod backend;
mod bytes;
mod citizens;
mod clients;
#[cfg(test)]
mod conformance;
pub mod copy;
mod expiry;
mod journal;
mod memory;
pub mod offload;
pub mod oidc;
mod passkeys;
pub mod postgres;
pub mod record;
pub mod replay;
mod revocations;
mod sign_requests;
mod signatures;
mod signing_keys;
mod sled_backend;
mod tx;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use audit::{
    AUDIT_CHECKPOINTS, AUDIT_ENTRIES, AUDIT_HASHES, AUDIT_QUEUE, AUDIT_STATE, AUDIT_SUBJECTS,
    Audit, MAX_PAGE as MAX_AUDIT_PAGE, NewEntry,
};
pub use backend::{Backend, BackendError, Decision, Entry, TxRead, Write};
pub use citizens::{CITIZENS, Citizens, ENROLMENTS, NATIONAL_IDS};
pub use clients::{CLIENT_ASSERTION_JTIS, CLIENT_CACHE_TTL, CLIENTS, Clients};
pub use expiry::EXPIRY;
pub use memory::MemoryBackend;
pub use passkeys::{CEREMONIES, CREDENTIALS, Passkeys, SESSIONS};
pub use revocations::{REVOCATIONS, Revocations};
pub use sign_requests::{SIGN_APPROVALS, SIGN_REQUESTS, SIGN_REQUESTS_PENDING, SignRequests};
pub use signatures::{SIGNATURE_BATCHES, SIGNATURE_FINGERPRINTS, Signatures};
pub use signing_keys::{SIGNING_KEYS, SIGNING_KEYS_BY_HOLDER, SigningKeys};
pub use sled_backend::SledBackend;
pub use tx::{Read, Tx};

/// Read-only aggregate handles over any [`Read`]: the committed store (`&Store`) or an
/// open transaction (`&*tx`), for domain rules that must read the same way in both.
pub struct View<R>(pub R);

impl<R: Read> View<R> {
    /// Passkeys and sessions.
    pub fn passkeys(&self) -> Passkeys<&R> {
        Passkeys(&self.0)
    }

    /// Grants and refresh tokens.
    pub fn grants(&self) -> oidc::Grants<&R> {
        oidc::Grants(&self.0)
    }

    /// Consents.
    pub fn consents(&self) -> oidc::Consents<&R> {
        oidc::Consents(&self.0)
    }

    /// Citizens.
    pub fn citizens(&self) -> Citizens<&R> {
        Citizens(&self.0)
    }
}

/// Result type of the storage layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A tree (table) of the store and whether writes to it must be durable before they are
/// acknowledged.
#[derive(Debug, Clone, Copy)]
pub struct TreeSpec {
    /// Its name.
    pub name: &'static str,
    /// A transaction that writes here is flushed before it returns.
    pub durable: bool,
}

/// The trees whose values are versioned records ([`record`]), each with its record type's
/// round trip in [`record_round_trip`].
pub const RECORD_TREES: &[&str] = &[
    CITIZENS,
    NATIONAL_IDS,
    ENROLMENTS,
    CEREMONIES,
    CREDENTIALS,
    SESSIONS,
    CLIENTS,
    CLIENT_ASSERTION_JTIS,
    oidc::AUTHZ_REQUESTS,
    oidc::CODES,
    oidc::REFRESH_TOKENS,
    oidc::USED_CODES,
    oidc::GRANTS,
    oidc::CONSENTS,
    oidc::REVOKED_JTIS,
    oidc::DPOP_PROOFS,
    oidc::SESSION_CLIENTS,
    oidc::PUSHED_REQUESTS,
    sign_requests::SIGN_REQUESTS,
    sign_requests::SIGN_APPROVALS,
    sign_requests::SIGN_REQUESTS_PENDING,
    signatures::SIGNATURE_BATCHES,
    revocations::REVOCATIONS,
    signing_keys::SIGNING_KEYS,
    signing_keys::SIGNING_KEYS_BY_HOLDER,
];

/// Decodes `bytes` as the record stored in `tree` and checks that it survives being written
/// back and read again ([`record::round_trip`]); `None` when `tree` holds no records. The
/// fuzz target `record_round_trip` runs it on arbitrary bytes.
pub fn record_round_trip(tree: &str, bytes: &[u8]) -> Option<std::result::Result<(), String>> {
    citizens::round_trip(tree, bytes)
        .or_else(|| passkeys::round_trip(tree, bytes))
        .or_else(|| clients::round_trip(tree, bytes))
        .or_else(|| oidc::round_trip(tree, bytes))
        .or_else(|| sign_requests::round_trip(tree, bytes))
        .or_else(|| signatures::round_trip(tree, bytes))
        .or_else(|| revocations::round_trip(tree, bytes))
        .or_else(|| signing_keys::round_trip(tree, bytes))
}

/// Every tree the store uses (sled opens exactly these).
pub const TREES: &[TreeSpec] = &[
    TreeSpec {
        name: "meta",
        durable: true,
    },
    TreeSpec {
        name: CITIZENS,
        durable: true,
    },
    TreeSpec {
        name: NATIONAL_IDS,
        durable: true,
    },
    TreeSpec {
        name: ENROLMENTS,
        durable: true,
    },
    TreeSpec {
        name: CREDENTIALS,
        durable: true,
    },
    TreeSpec {
        name: SESSIONS,
        durable: true,
    },
    // A ceremony lost in a crash is simply started again.
    TreeSpec {
        name: CEREMONIES,
        durable: false,
    },
    TreeSpec {
        name: CLIENTS,
        durable: true,
    },
    TreeSpec {
        name: CLIENT_ASSERTION_JTIS,
        durable: true,
    },
    // A pending authorization request lost in a crash is simply sent again.
    TreeSpec {
        name: oidc::AUTHZ_REQUESTS,
        durable: false,
    },
    TreeSpec {
        name: oidc::CODES,
        durable: true,
    },
    TreeSpec {
        name: oidc::USED_CODES,
        durable: true,
    },
    TreeSpec {
        name: oidc::GRANTS,
        durable: true,
    },
    TreeSpec {
        name: oidc::REFRESH_TOKENS,
        durable: true,
    },
    TreeSpec {
        name: oidc::CONSENTS,
        durable: true,
    },
    TreeSpec {
        name: oidc::REVOKED_JTIS,
        durable: true,
    },
    // A proof forgotten in a crash could be replayed within its minute after the restart;
    // the token it could get is bound to a key the replayer does not hold.
    TreeSpec {
        name: oidc::DPOP_PROOFS,
        durable: false,
    },
    TreeSpec {
        name: oidc::SESSION_CLIENTS,
        durable: true,
    },
    // A pushed request lost in a crash is simply pushed again.
    TreeSpec {
        name: oidc::PUSHED_REQUESTS,
        durable: false,
    },
    TreeSpec {
        name: SIGNING_KEYS,
        durable: true,
    },
    TreeSpec {
        name: SIGNING_KEYS_BY_HOLDER,
        durable: true,
    },
    TreeSpec {
        name: REVOCATIONS,
        durable: true,
    },
    // Every signature civis produced, by batch, and the batches' fingerprints: recorded
    // before the signatures are handed out.
    TreeSpec {
        name: SIGNATURE_BATCHES,
        durable: true,
    },
    TreeSpec {
        name: SIGNATURE_FINGERPRINTS,
        durable: true,
    },
    // Signed requests carry the signatures and their evidence.
    TreeSpec {
        name: SIGN_REQUESTS,
        durable: true,
    },
    // An approval ceremony lost in a crash is simply started again.
    TreeSpec {
        name: SIGN_APPROVALS,
        durable: false,
    },
    TreeSpec {
        name: SIGN_REQUESTS_PENDING,
        durable: true,
    },
    // The audit log: an acknowledged action's entry is on disk with it.
    TreeSpec {
        name: AUDIT_QUEUE,
        durable: true,
    },
    TreeSpec {
        name: AUDIT_ENTRIES,
        durable: true,
    },
    TreeSpec {
        name: AUDIT_SUBJECTS,
        durable: true,
    },
    TreeSpec {
        name: AUDIT_HASHES,
        durable: true,
    },
    TreeSpec {
        name: AUDIT_CHECKPOINTS,
        durable: true,
    },
    TreeSpec {
        name: AUDIT_STATE,
        durable: true,
    },
    // Index entries ride on the flush of the record they index.
    TreeSpec {
        name: EXPIRY,
        durable: false,
    },
];

fn is_durable(tree: &str) -> bool {
    TREES.iter().any(|t| t.name == tree && t.durable)
}

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
    /// A key that must be new exists (a uniqueness rule); the transaction wrote nothing.
    #[error("key {tree}/{key} exists")]
    Conflict {
        /// Tree (table) name.
        tree: &'static str,
        /// Printable key.
        key: String,
    },
    /// Storage was touched on an async worker thread; [`offload::run`] retries the call on
    /// the blocking pool. Seen outside `run`, it is a bug (a handler that skipped `run`).
    #[error("storage I/O attempted on an async worker thread")]
    WouldBlock,
}

/// Handle to the storage; clone it freely.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    /// Group commit: how many durable transactions have committed, and how many of those a
    /// finished flush covers.
    committed: Arc<AtomicU64>,
    flushed: Arc<std::sync::Mutex<u64>>,
    /// Decoded client registrations, read on every token request; see [`CLIENT_CACHE_TTL`].
    clients: Arc<clients::Cache>,
    /// Spent DPoP proofs, in memory when this process is the store's only one.
    spent: Arc<replay::Spent>,
    /// Random at open, and a count of transaction attempts: each attempt's [`Tx`] tag.
    /// Keys built from it (queued audit entries) are unique without a read, which on
    /// PostgreSQL would lock the index page the key falls in and make concurrent
    /// transactions that insert there conflict.
    nonce: [u8; 8],
    attempts: Arc<AtomicU64>,
    /// Where the next scan of the audit queue starts; see [`audit::QueueCursor`].
    queue_cursor: Arc<std::sync::Mutex<audit::QueueCursor>>,
    /// On sled, where [`Store::append_audit`] makes its entries durable ([`journal`]).
    journal: Option<Arc<journal::Journal>>,
    /// Held while the journal is numbered into the log.
    journal_reader: Arc<std::sync::Mutex<()>>,
}

impl StoreError {
    /// Whether the database could not be reached or answered too late: the request may
    /// succeed later (503, not 500).
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Backend(BackendError::Unavailable(_)))
    }
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
        Self::open_sled_with_cache(dir, sled_backend::DEFAULT_CACHE_BYTES)
    }

    /// [`Self::open_sled`] with sled's page cache bounded at about `cache_bytes`.
    ///
    /// # Errors
    /// As [`Self::open_sled`].
    pub fn open_sled_with_cache(dir: &std::path::Path, cache_bytes: u64) -> Result<Self> {
        let mut store = Self::new(SledBackend::open(dir, cache_bytes)?);
        let journal = journal::Journal::open(dir).map_err(|e| {
            StoreError::Backend(BackendError::Failed(format!(
                "cannot open the audit journal in {}: {e}",
                dir.display()
            )))
        })?;
        store.journal = Some(Arc::new(journal));
        // What the last run journaled and did not number yet (after a crash, too).
        while store.number_journal()? >= (audit::JOURNAL_PAGES * audit::MAX_PAGE) as u64 {}
        Ok(store)
    }

    /// Opens the PostgreSQL database of `options` (creating or upgrading its schema), for a
    /// deployment of several processes.
    ///
    /// # Errors
    /// An unusable URL, an unreachable database, a schema newer than this build.
    pub fn open_postgres(options: &postgres::PgOptions) -> Result<Self> {
        Ok(Self::new(postgres::PgBackend::open(options)?))
    }

    /// A store that lives in memory only (unit tests).
    pub fn in_memory() -> Self {
        Self::new(MemoryBackend::default())
    }

    /// Wraps any backend.
    pub fn new(backend: impl Backend) -> Self {
        use ring::rand::SecureRandom as _;
        let mut nonce = [0; 8];
        if ring::rand::SystemRandom::new().fill(&mut nonce).is_err() {
            // No randomness: the time still tells processes apart in practice.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            nonce = (now as u64 ^ u64::from(std::process::id())).to_be_bytes();
        }
        Self {
            backend: Arc::new(backend),
            committed: Arc::default(),
            flushed: Arc::default(),
            clients: Arc::default(),
            spent: Arc::default(),
            queue_cursor: Arc::default(),
            journal: None,
            journal_reader: Arc::default(),
            nonce,
            attempts: Arc::default(),
        }
    }

    /// The backend, once [`offload`] agrees that this thread may do I/O.
    fn io(&self) -> Result<&dyn Backend> {
        offload::check()?;
        Ok(self.backend.as_ref())
    }

    /// Writes everything to durable storage (shutdown).
    ///
    /// # Errors
    /// The backend's I/O error.
    pub fn flush(&self) -> Result<()> {
        Ok(self.io()?.flush()?)
    }

    /// Does the backend's first-write work now (see [`Backend::settle`]): the server calls
    /// it before it says it is ready.
    ///
    /// # Errors
    /// The backend's I/O error.
    pub fn settle(&self) -> Result<()> {
        Ok(self.io()?.settle()?)
    }

    /// Whether this process may now run the single background writer (see
    /// [`Backend::lead`]).
    ///
    /// # Errors
    /// The backend's error.
    pub fn lead(&self) -> Result<bool> {
        Ok(self.io()?.lead()?)
    }

    /// Cheap liveness probe for `/healthz`: a read of the metadata tree.
    ///
    /// # Errors
    /// The backend's error.
    pub fn probe(&self) -> Result<()> {
        self.io()?.get("meta", b"probe")?;
        Ok(())
    }

    /// Stores raw bytes under a key, durably (tools and tests that plant a record, e.g. one
    /// from a future version). Domain code never uses this.
    ///
    /// # Errors
    /// Backend failures; [`StoreError::WouldBlock`] on an async worker thread.
    pub fn plant_raw(&self, tree: &'static str, key: &[u8], bytes: &[u8]) -> Result<()> {
        self.transact(|tx| {
            tx.put_raw(tree, key, bytes.to_vec());
            Ok::<_, StoreError>(())
        })?;
        self.flush()
    }

    /// Raw access for tools and tests that must plant or inspect bytes (e.g. a record from a
    /// future version). Domain code never uses this.
    ///
    /// # Errors
    /// [`StoreError::WouldBlock`] on an async worker thread.
    pub fn backend(&self) -> Result<&dyn Backend> {
        self.io()
    }

    /// Runs `body` as one transaction (see the module docs): its reads see a state no other
    /// transaction changes until it ends; its writes are applied together if it returns
    /// `Ok`, and not at all if it returns `Err`. When it wrote to a durable tree, the
    /// writes are on disk before this returns.
    ///
    /// # Errors
    /// The body's error, or a storage failure converted into `E`.
    pub fn transact<T, E>(&self, mut body: impl FnMut(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let backend = self.io()?;
        let serial = backend.serial();
        let mut outcome: Option<Result<T, E>> = None;
        let mut durable = false;
        backend
            .transact(&mut |reads| {
                let mut tag = [0; 16];
                tag[..8].copy_from_slice(&self.nonce);
                tag[8..]
                    .copy_from_slice(&self.attempts.fetch_add(1, Ordering::Relaxed).to_be_bytes());
                let mut tx = Tx::new(reads, tag, serial);
                let result = body(&mut tx);
                let decision = if result.is_ok() {
                    let writes = tx.into_writes();
                    durable = writes.iter().any(|w| is_durable(w.tree));
                    Decision::Commit(writes)
                } else {
                    Decision::Abort
                };
                outcome = Some(result);
                Ok(decision)
            })
            .map_err(|e| match e {
                BackendError::Exists { tree, key } => StoreError::Conflict {
                    tree,
                    key: record::printable_key(&key),
                },
                other => StoreError::from(other),
            })?;
        let result = outcome.ok_or_else(|| {
            StoreError::Backend(BackendError::Failed("transaction body did not run".into()))
        })?;
        if result.is_ok() && durable {
            self.make_durable()?;
        }
        result
    }

    /// Group commit: returns once a flush that started after this transaction committed
    /// has completed. Of the transactions waiting meanwhile, one flushes for all.
    fn make_durable(&self) -> Result<()> {
        let mine = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self
            .flushed
            .lock()
            .map_err(|_| StoreError::Backend(BackendError::Failed("flush lock poisoned".into())))?;
        if *flushed >= mine {
            return Ok(());
        }
        // Every transaction counted up to here committed before it counted itself.
        let covered = self.committed.load(Ordering::SeqCst);
        self.backend.flush()?;
        *flushed = covered;
        Ok(())
    }
}
