//! Keeping storage I/O off tokio's async worker threads (see the [`super`] docs): the check
//! every backend access passes, and [`run`], the one helper handlers call the domain through.

use std::cell::Cell;

use super::StoreError;

thread_local! {
    /// Set on a blocking-pool thread while [`run`] executes a call there.
    static IO_ALLOWED: Cell<bool> = const { Cell::new(false) };
    /// Set when the store refused I/O during the in-place attempt of [`run`].
    static REFUSED: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread may touch the backend: yes outside any tokio runtime (command-line
/// tools, unit tests) and inside [`run`] on the blocking pool; no on an async worker.
///
/// # Errors
/// [`StoreError::WouldBlock`], noted for [`run`] to retry elsewhere.
pub(super) fn check() -> Result<(), StoreError> {
    if IO_ALLOWED.get() || tokio::runtime::Handle::try_current().is_err() {
        return Ok(());
    }
    REFUSED.set(true);
    Err(StoreError::WouldBlock)
}

/// Resets the flag for the duration of one blocking call.
struct Allowed;

impl Allowed {
    fn enter() -> Self {
        IO_ALLOWED.set(true);
        Self
    }
}

impl Drop for Allowed {
    fn drop(&mut self) {
        IO_ALLOWED.set(false);
    }
}

/// Runs a synchronous call that may touch storage on tokio's blocking pool and returns its
/// answer: the one way handlers reach the domain. A panic inside `call` is resumed here, as
/// if it had happened in the handler.
pub async fn run<T, F>(call: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let joined = tokio::task::spawn_blocking(move || {
        let _allowed = Allowed::enter();
        call()
    })
    .await;
    match joined {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down before the task ran; nobody awaits the answer.
        Err(_) => std::panic::resume_unwind(Box::new("blocking task cancelled at shutdown")),
    }
}

/// For a call that usually needs no storage (a `client_credentials` token for a cached
/// client is a signature, nothing else): runs it here, and only if the store refused I/O
/// runs it again on the blocking pool, saving the thread hop on the fast path. `call` must
/// have no effect outside the store before its first storage access, since that part may
/// run twice; keep logging and metrics with the caller.
pub async fn run_inline_first<T, F>(call: F) -> T
where
    T: Send + 'static,
    F: Fn() -> T + Send + 'static,
{
    match attempt_in_place(&call) {
        Some(answer) => answer,
        None => run(call).await,
    }
}

/// Runs `call` here and returns its answer, or `None` if the store refused I/O during it
/// (the answer is then discarded: the caller runs the call again on the blocking pool).
pub fn attempt_in_place<T>(call: impl FnOnce() -> T) -> Option<T> {
    REFUSED.set(false);
    let answer = call();
    (!REFUSED.replace(false)).then_some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn io_is_allowed_outside_a_runtime() {
        assert!(Store::in_memory().probe().is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_worker_thread_is_refused_and_run_moves_the_call() {
        let store = Store::in_memory();
        assert!(matches!(store.probe(), Err(StoreError::WouldBlock)));
        let s = store.clone();
        let on_pool = run(move || s.probe()).await;
        assert!(on_pool.is_ok(), "{on_pool:?}");
        let s = store.clone();
        assert!(run_inline_first(move || s.probe()).await.is_ok());
        // A call that needs no storage stays where it is.
        let here = std::thread::current().id();
        assert!(run_inline_first(move || std::thread::current().id() == here).await);
        let here = std::thread::current().id();
        assert!(!run(move || std::thread::current().id() == here).await);
    }
}
