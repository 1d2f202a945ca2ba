//! The PostgreSQL [`Backend`] (`--database-url`): the only code in civis that knows SQL.
//!
//! # Layout
//! One table, `civis_kv (tree, key, value)`, holds every tree of the store with the same
//! bytes sled holds (each value a versioned record envelope, audit entries exactly as
//! hashed), so the domain, the record versions and the conformance suite are the same for
//! every backend, and `civis store copy` is a byte-for-byte copy. `bytea` compares
//! bytewise, as sled's keys do, so scans come back in the same order. The schema is
//! created and upgraded on start by [`schema::migrate`].
//!
//! # What each operation relies on
//! - A transaction ([`Backend::transact`]) runs its body in one `SERIALIZABLE` PostgreSQL
//!   transaction; every read the body makes is a query in it, and its writes are applied
//!   by two statements just before `COMMIT`. PostgreSQL's serializable snapshot isolation
//!   aborts one of two transactions whose reads and writes overlap (SQLSTATE 40001) and
//!   the body runs again from the start on a fresh snapshot: this is what makes `take`'s
//!   single use, read-modify-write counters (the audit log's `next`) and compare-and-swap
//!   checks hold across any number of processes.
//! - Keys that must be new (`insert_new`, [`Write::new`]) are not read first: they are
//!   inserted with `ON CONFLICT DO NOTHING … RETURNING`, and a key that did not come back
//!   was taken, so the transaction rolls back with [`BackendError::Exists`]. The primary
//!   key decides between two racing inserts: the second waits for the first to commit and
//!   then gets a serialization failure (retried, it finds the key). Reading the absent key
//!   instead would take a predicate lock on its index page, and every concurrent insert
//!   near it (consecutive national ids, time-ordered keys) would abort one of the two.
//! - Commits are durable when `COMMIT` returns (PostgreSQL's `synchronous_commit`, on by
//!   default), so [`Backend::flush`] has nothing to do.
//! - Plain reads outside a transaction ([`Backend::get`], [`Backend::scan`]) see the latest
//!   committed state, like sled's.
//! - [`Backend::lead`] holds a session advisory lock on a connection of its own: one
//!   process at a time runs the audit integrator, and when that process or its connection
//!   dies PostgreSQL releases the lock and another takes over (the integrator also checks
//!   the tree size inside its own transaction, so two leaders at once would still not
//!   corrupt the tree).
//!
//! # Failures
//! Connection failures, timeouts and a server shutting down are
//! [`BackendError::Unavailable`] (the http layer answers 503); the pool reconnects by
//! itself when the database is back. A commit whose answer was lost is reported as a
//! failure although it may have committed: nothing is acknowledged that is not durable,
//! but an unacknowledged write may exist (the client retries, as after any 503).

mod connect;
mod schema;
#[cfg(test)]
pub(crate) mod testdb;

use std::cell::{Cell, RefCell};
use std::sync::Mutex;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{IsolationLevel, Statement};

pub use connect::{PgOptions, Target};

use super::backend::{Backend, BackendError, Decision, Entry, TxBody, TxRead, Write};

/// How often a transaction body runs again after serialization conflicts before the
/// transaction fails (a hot key under heavy contention; each retry backs off a little).
const MAX_ATTEMPTS: u32 = 64;

/// The advisory lock key of the audit integrator (any constant unique to civis).
const LEADER_LOCK: i64 = 0x6369_7669_735f_6c6f; // "civis_lo"

/// A database of one deployment, shared by all its processes.
pub struct PgBackend {
    /// Taken only by `Drop`.
    pool: Option<r2d2::Pool<Manager>>,
    target: Target,
    /// The connection that holds the integrator's advisory lock, and whether it holds it.
    leader: Mutex<Option<(postgres::Client, bool)>>,
}

impl Drop for PgBackend {
    /// A `postgres::Client` runs a runtime of its own, and closing one on an async thread
    /// panics inside tokio (and then aborts the process, as it happens in a destructor).
    /// The last handle on the store may well go on one at shutdown, so the connections
    /// are closed on a thread of their own.
    fn drop(&mut self) {
        let pool = self.pool.take();
        let leader = self.leader.get_mut().ok().and_then(Option::take);
        let closed = std::thread::Builder::new()
            .name("civis-pg-close".into())
            .spawn(move || drop((pool, leader)));
        match closed {
            Ok(handle) => {
                let _ = handle.join();
            }
            Err(e) => tracing::warn!(error = %e, "PostgreSQL connections left open"),
        }
    }
}

/// Statements every pooled connection prepares once.
struct Statements {
    get: Statement,
    get_many: Statement,
    scan: Statement,
    scan_to: Statement,
    upsert: Statement,
    insert_new: Statement,
    delete: Statement,
}

impl Statements {
    fn prepare(c: &mut postgres::Client) -> Result<Self, postgres::Error> {
        Ok(Self {
            get: c.prepare("SELECT value FROM civis_kv WHERE tree = $1 AND key = $2")?,
            get_many: c
                .prepare("SELECT key, value FROM civis_kv WHERE tree = $1 AND key = ANY($2)")?,
            scan: c.prepare(
                "SELECT key, value FROM civis_kv WHERE tree = $1 AND key >= $2 \
                 ORDER BY key LIMIT $3",
            )?,
            scan_to: c.prepare(
                "SELECT key, value FROM civis_kv WHERE tree = $1 AND key >= $2 AND key < $4 \
                 ORDER BY key LIMIT $3",
            )?,
            upsert: c.prepare(
                "INSERT INTO civis_kv (tree, key, value) \
                 SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[]) \
                 ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value",
            )?,
            insert_new: c.prepare(
                "INSERT INTO civis_kv (tree, key, value) \
                 SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[]) \
                 ON CONFLICT (tree, key) DO NOTHING RETURNING tree, key",
            )?,
            delete: c.prepare(
                "DELETE FROM civis_kv WHERE (tree, key) IN \
                 (SELECT * FROM unnest($1::text[], $2::bytea[]))",
            )?,
        })
    }
}

/// A pooled connection with its prepared statements.
struct Conn {
    client: postgres::Client,
    statements: Statements,
}

/// r2d2's view of how to open and check a connection.
struct Manager {
    target: Target,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        let mut client = self.target.connect()?;
        let statements = Statements::prepare(&mut client)?;
        Ok(Conn { client, statements })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// Logs the pool's connection failures through `tracing` (r2d2's default uses `log`).
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<postgres::Error> for LogErrors {
    fn handle_error(&self, error: postgres::Error) {
        tracing::warn!(%error, "PostgreSQL connection failed");
    }
}

/// Why one attempt of a transaction did not commit.
enum Attempt {
    /// A serialization conflict: run the body again.
    Retry,
    /// Give up with this error.
    Fail(BackendError),
}

/// SQLSTATEs after which the database, not the request, is the problem.
fn unavailable_state(code: &SqlState) -> bool {
    [
        SqlState::QUERY_CANCELED, // statement_timeout
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::READ_ONLY_SQL_TRANSACTION, // a standby after failover
    ]
    .contains(code)
}

fn classify(e: &postgres::Error) -> Attempt {
    match e.code() {
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE => Attempt::Retry,
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED => Attempt::Retry,
        _ => Attempt::Fail(error(e)),
    }
}

/// Maps a client error to the store's: no answer from the server is `Unavailable`.
fn error(e: &postgres::Error) -> BackendError {
    let text = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            // The cause (a refused certificate, a reset connection) is in the source chain.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            text
        }
    };
    match e.code() {
        Some(code) if !unavailable_state(code) => BackendError::Failed(text),
        _ => BackendError::Unavailable(text),
    }
}

impl PgBackend {
    /// Connects, creates or upgrades the schema, and fills the pool.
    ///
    /// # Errors
    /// An unusable URL or TLS setting, an unreachable database, a schema newer than this
    /// build.
    pub fn open(options: &PgOptions) -> Result<Self, BackendError> {
        let target = Target::new(options)?;
        let mut first = target.connect().map_err(|e| error(&e))?;
        schema::migrate(&mut first)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            .test_on_check_out(false)
            .error_handler(Box::new(LogErrors))
            .build(Manager {
                target: target.clone(),
            })
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        Ok(Self {
            pool: Some(pool),
            target,
            leader: Mutex::new(None),
        })
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<Manager>, BackendError> {
        self.pool
            .as_ref()
            .ok_or_else(|| BackendError::Failed("the store is closing".into()))?
            .get()
            .map_err(|e| BackendError::Unavailable(format!("no database connection: {e}")))
    }

    fn attempt(&self, body: &mut TxBody<'_>) -> Result<(), Attempt> {
        let mut conn = self.conn().map_err(Attempt::Fail)?;
        let Conn { client, statements } = &mut *conn;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::Serializable)
            .start()
            .map_err(|e| classify(&e))?;
        let reads = Reads {
            tx: RefCell::new(tx),
            statements,
            conflict: Cell::new(false),
        };
        let decision = body(&reads);
        if reads.conflict.get() {
            return Err(Attempt::Retry);
        }
        let decision = decision.map_err(Attempt::Fail)?;
        let mut tx = reads.tx.into_inner();
        match decision {
            Decision::Commit(writes) => match apply(&mut tx, statements, &writes) {
                Ok(()) => tx.commit().map_err(|e| classify(&e)),
                Err(Refused::Db(e)) => Err(classify(&e)),
                Err(Refused::Exists(w)) => {
                    // Dropping the transaction would roll back too; this says so.
                    let _ = tx.rollback();
                    Err(Attempt::Fail(BackendError::Exists {
                        tree: w.tree,
                        key: w.key.clone(),
                    }))
                }
            },
            Decision::Abort => tx.rollback().map_err(|e| classify(&e)),
        }
    }
}

/// Why a transaction's writes were not applied.
enum Refused<'w> {
    Db(postgres::Error),
    /// This write's key must be new and was not.
    Exists(&'w Write),
}

impl From<postgres::Error> for Refused<'_> {
    fn from(e: postgres::Error) -> Self {
        Self::Db(e)
    }
}

/// Applies a transaction's writes: one statement each for new keys, other puts and
/// removals, whatever their number (arrays of trees, keys and values).
fn apply<'w>(
    tx: &mut postgres::Transaction<'_>,
    statements: &Statements,
    writes: &'w [Write],
) -> Result<(), Refused<'w>> {
    let arrays = |ws: &[&'w Write]| -> (Vec<&'w str>, Vec<&'w [u8]>, Vec<&'w [u8]>) {
        (
            ws.iter().map(|w| w.tree).collect(),
            ws.iter().map(|w| w.key.as_slice()).collect(),
            ws.iter()
                .map(|w| w.value.as_deref().unwrap_or_default())
                .collect(),
        )
    };
    let (puts, removals): (Vec<&Write>, Vec<&Write>) =
        writes.iter().partition(|w| w.value.is_some());
    let (new, puts): (Vec<&Write>, Vec<&Write>) = puts.into_iter().partition(|w| w.new);
    if !new.is_empty() {
        let (trees, keys, values) = arrays(&new);
        let inserted = tx.query(&statements.insert_new, &[&trees, &keys, &values])?;
        if inserted.len() < new.len() {
            let inserted: std::collections::HashSet<(String, Vec<u8>)> = inserted
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, Vec<u8>>(1)))
                .collect();
            if let Some(taken) = new
                .iter()
                .find(|w| !inserted.contains(&(w.tree.to_owned(), w.key.clone())))
            {
                return Err(Refused::Exists(taken));
            }
        }
    }
    if !puts.is_empty() {
        let (trees, keys, values) = arrays(&puts);
        tx.execute(&statements.upsert, &[&trees, &keys, &values])?;
    }
    if !removals.is_empty() {
        let trees: Vec<&str> = removals.iter().map(|w| w.tree).collect();
        let keys: Vec<&[u8]> = removals.iter().map(|w| w.key.as_slice()).collect();
        tx.execute(&statements.delete, &[&trees, &keys])?;
    }
    Ok(())
}

/// A transaction body's reads: queries in the open serializable transaction. A conflict
/// seen while reading is remembered, so the attempt is retried whatever the body made of
/// the error.
struct Reads<'c, 't> {
    tx: RefCell<postgres::Transaction<'t>>,
    statements: &'c Statements,
    conflict: Cell<bool>,
}

impl TxRead for Reads<'_, '_> {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let mut tx = self.tx.borrow_mut();
        match tx.query_opt(&self.statements.get, &[&tree, &key]) {
            Ok(row) => Ok(row.map(|r| r.get::<_, Vec<u8>>(0))),
            Err(e) => {
                if matches!(classify(&e), Attempt::Retry) {
                    self.conflict.set(true);
                }
                Err(error(&e))
            }
        }
    }

    fn get_many(
        &self,
        tree: &'static str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.tx.borrow_mut();
        match tx.query(&self.statements.get_many, &[&tree, &keys]) {
            Ok(rows) => Ok(in_key_order(rows, keys)),
            Err(e) => {
                if matches!(classify(&e), Attempt::Retry) {
                    self.conflict.set(true);
                }
                Err(error(&e))
            }
        }
    }
}

/// The values of `rows` (key, value) in the order of `keys`; `None` where a key has no row.
fn in_key_order(rows: Vec<postgres::Row>, keys: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
    let found: std::collections::HashMap<Vec<u8>, Vec<u8>> = rows
        .into_iter()
        .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
        .collect();
    // `get`, not `remove`: a key asked twice is answered twice.
    keys.iter().map(|k| found.get(k).cloned()).collect()
}

/// The first key after every key that starts with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Backend for PgBackend {
    fn get(&self, tree: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let mut conn = self.conn()?;
        let Conn { client, statements } = &mut *conn;
        let row = client
            .query_opt(&statements.get, &[&tree, &key])
            .map_err(|e| error(&e))?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    }

    fn get_many(
        &self,
        tree: &'static str,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn()?;
        let Conn { client, statements } = &mut *conn;
        let rows = client
            .query(&statements.get_many, &[&tree, &keys])
            .map_err(|e| error(&e))?;
        Ok(in_key_order(rows, keys))
    }

    fn scan(
        &self,
        tree: &'static str,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, BackendError> {
        let from = start.max(prefix);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut conn = self.conn()?;
        let Conn { client, statements } = &mut *conn;
        let rows = match prefix_end(prefix) {
            Some(end) => client.query(
                &statements.scan_to,
                &[&tree, &from, &limit, &end.as_slice()],
            ),
            None => client.query(&statements.scan, &[&tree, &from, &limit]),
        }
        .map_err(|e| error(&e))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
            .collect())
    }

    fn transact(&self, body: &mut TxBody<'_>) -> Result<(), BackendError> {
        for attempt in 1..=MAX_ATTEMPTS {
            match self.attempt(body) {
                Ok(()) => return Ok(()),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry) => {
                    // Back off a little more each time, so that two hot transactions stop
                    // colliding; a random part breaks the lockstep of identical retries.
                    use std::hash::{BuildHasher, Hasher};
                    let jitter = std::collections::hash_map::RandomState::new()
                        .build_hasher()
                        .finish()
                        % 500;
                    std::thread::sleep(Duration::from_micros(
                        u64::from(attempt.min(20)) * 200 + jitter,
                    ));
                }
            }
        }
        Err(BackendError::Failed(format!(
            "transaction gave up after {MAX_ATTEMPTS} serialization conflicts"
        )))
    }

    fn flush(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn shared(&self) -> bool {
        true
    }

    fn lead(&self) -> Result<bool, BackendError> {
        let mut leader = self
            .leader
            .lock()
            .map_err(|_| BackendError::Failed("leader lock poisoned".into()))?;
        if let Some((client, held)) = leader.as_mut() {
            let alive = client.simple_query("").is_ok();
            if alive && *held {
                return Ok(true);
            }
            if !alive {
                *leader = None;
            }
        }
        if leader.is_none() {
            *leader = Some((self.target.connect().map_err(|e| error(&e))?, false));
        }
        let Some((client, held)) = leader.as_mut() else {
            return Ok(false);
        };
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
            .map_err(|e| error(&e))?;
        *held = row.get::<_, bool>(0);
        Ok(*held)
    }

    fn is_empty(&self) -> Result<bool, BackendError> {
        let mut conn = self.conn()?;
        let row = conn
            .client
            .query_one("SELECT NOT EXISTS (SELECT 1 FROM civis_kv)", &[])
            .map_err(|e| error(&e))?;
        Ok(row.get::<_, bool>(0))
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }
}
