//! The database schema and its versioned migrations, applied on start.
//!
//! Every process runs [`migrate`] when it opens the database; a transaction-scoped advisory
//! lock makes processes started together apply each migration once, and the applied
//! versions are recorded in `civis_schema`. A database whose schema is newer than this
//! build is refused (an older binary must not write records it cannot read).

use super::BackendError;
use super::error;

/// The advisory lock key migrations hold ("civis_mi").
const MIGRATION_LOCK: i64 = 0x6369_7669_735f_6d69;

/// Migrations by version, applied in order; never edit one that has shipped.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    // `tree` is compared with the C collation: byte order, whatever the database's locale.
    "CREATE TABLE civis_kv (
         tree  text COLLATE \"C\" NOT NULL,
         key   bytea NOT NULL,
         value bytea NOT NULL,
         PRIMARY KEY (tree, key)
     )",
)];

/// The newest schema version this build knows.
#[must_use]
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Creates or upgrades the schema; returns the version the database is now at.
///
/// # Errors
/// The database's error, or a schema newer than this build.
pub fn migrate(client: &mut postgres::Client) -> Result<i32, BackendError> {
    let mut tx = client.transaction().map_err(|e| error(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| error(&e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS civis_schema (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(|e| error(&e))?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM civis_schema", &[])
        .map_err(|e| error(&e))?
        .get(0);
    if current > latest() {
        return Err(BackendError::Failed(format!(
            "the database's schema is version {current}, newer than this build of civis \
             knows ({}); run the newer civis",
            latest()
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).map_err(|e| error(&e))?;
        tx.execute("INSERT INTO civis_schema (version) VALUES ($1)", &[version])
            .map_err(|e| error(&e))?;
    }
    tx.commit().map_err(|e| error(&e))?;
    Ok(latest())
}
