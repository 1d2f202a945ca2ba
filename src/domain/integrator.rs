//! The audit log's integrator: a thread that, every [`EVERY`], numbers new entries into the
//! log and extends the tree with a signed checkpoint ([`transparency::integrate`]); without
//! a checkpoint key it only numbers them.
//!
//! A thread of its own rather than a tick on tokio's blocking pool: each tick ran on
//! whichever pool thread was idle, and each of those threads kept a glibc arena of its own
//! with the freed pages of numbering in it. Under an audited `client_credentials` load the
//! server's peak memory was 91–223 MiB that way and 69–73 MiB on one thread (README,
//! Performance).

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use super::transparency::{self, IntegrateError};
use crate::crypto::note::NoteSigner;
use crate::store::Store;

/// How long the integrator sleeps between rounds: a checkpoint follows new entries within
/// about this (the contract asks for at least one a second while entries arrive), and on a
/// shared database another process takes over within it when the leader stops.
pub const EVERY: Duration = Duration::from_millis(250);

/// The running integrator; its thread ends after its current round once this is dropped.
#[derive(Debug)]
pub struct Integrator {
    _stop: mpsc::Sender<()>,
}

impl Integrator {
    /// Starts the integrator's thread.
    ///
    /// # Errors
    /// When the operating system refuses a thread.
    pub fn start(store: Store, signer: Option<Arc<NoteSigner>>) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("civis-integrator".into())
            .spawn(move || {
                // Nothing is ever sent: the channel only closes when the handle is dropped.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    match round(&store, signer.as_deref()) {
                        Ok(Some(size)) => tracing::debug!(size, "audit checkpoint published"),
                        Ok(None) => {}
                        Err(e) => tracing::error!(error = %e, "audit log integration failed"),
                    }
                }
            })?;
        Ok(Self { _stop: stop })
    }
}

/// One wake-up: works off a backlog, one checkpoint per [`transparency::ROUND`] entries.
/// Returns the last checkpoint's size, if it published one.
fn round(store: &Store, signer: Option<&NoteSigner>) -> Result<Option<u64>, IntegrateError> {
    // With a shared database, one process at a time integrates.
    if !store.lead()? {
        return Ok(None);
    }
    let Some(signer) = signer else {
        super::audit::settle(store)?;
        return Ok(None);
    };
    let mut last = None;
    while let Some(size) = transparency::integrate(store, signer)? {
        last = Some(size);
        if size % transparency::ROUND != 0 {
            break;
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewEntry;

    fn appended_within(store: &Store, wanted: u64, wait: Duration) -> u64 {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let numbered = store.audit().appended().unwrap();
            if numbered == wanted || std::time::Instant::now() > deadline {
                return numbered;
            }
            std::thread::sleep(EVERY / 4);
        }
    }

    /// A fresh sled store; the `TempDir` keeps its directory alive.
    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sled(dir.path()).unwrap();
        (dir, store)
    }

    fn journal(store: &Store, count: usize) {
        let entry = NewEntry {
            bytes: b"{}",
            subject: None,
            at: 0,
        };
        store.append_audit(&vec![entry; count]).unwrap();
    }

    #[test]
    fn without_a_checkpoint_key_journaled_entries_are_still_numbered() {
        let (_dir, store) = store();
        journal(&store, 3);
        let _integrator = Integrator::start(store.clone(), None).unwrap();
        assert_eq!(
            appended_within(&store, 3, EVERY * 40),
            3,
            "the journal was not numbered without a checkpoint key"
        );
    }

    #[test]
    fn a_dropped_integrator_numbers_nothing_more() {
        let (_dir, store) = store();
        drop(Integrator::start(store.clone(), None).unwrap());
        journal(&store, 2);
        assert_eq!(
            appended_within(&store, 2, EVERY * 4),
            0,
            "a stopped integrator went on numbering"
        );
    }
}
