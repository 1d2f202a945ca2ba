//! Throwaway databases for tests: one fresh database per test on the cluster named by
//! `CIVIS_TEST_DATABASE_URL` (`.ci/run` starts one with `scripts/pg-test-cluster`).
//! Without it the PostgreSQL tests are skipped with a message, except under CI, where a
//! missing cluster fails them.

use std::sync::atomic::{AtomicU32, Ordering};

/// A database that is dropped when this is.
pub struct TestDb {
    admin: String,
    name: String,
    /// The URL of the fresh database.
    pub url: String,
}

fn admin_url() -> Option<String> {
    match std::env::var("CIVIS_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL tests: set CIVIS_TEST_DATABASE_URL \
                 (scripts/pg-test-cluster starts a cluster)"
            );
            eprintln!("skipped: CIVIS_TEST_DATABASE_URL is not set");
            None
        }
    }
}

fn with_db(url: &str, db: &str) -> String {
    let mut u = url::Url::parse(url).expect("CIVIS_TEST_DATABASE_URL is a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

impl TestDb {
    /// A fresh, empty database, or `None` when no test cluster is configured.
    #[must_use]
    pub fn create() -> Option<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = admin_url()?;
        let name = format!(
            "civis_t_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("test cluster");
        // One statement per call: several in one string would run as one transaction.
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .expect("drop a leftover test database");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create test database");
        let url = with_db(&admin, &name);
        Some(Self { admin, name, url })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
