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

/// For a call that usually needs no storage (authenticating a cached client and checking a
/// `client_credentials` request): runs it here, and only if the store refused I/O runs it
/// again on the blocking pool, saving the thread hop on the fast path. `call` must
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

/// A fixed set of threads for CPU-heavy calls that may touch storage (sealing batches).
/// Unlike the blocking pool, whose threads come and go with load, the large buffers such a
/// call allocates stay in as many allocator arenas as there are threads here, which bounds
/// the memory they keep; calls beyond the threads wait in line.
#[derive(Debug)]
pub struct Workers {
    queue: std::sync::mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

impl Workers {
    /// Starts `threads` (at least one) threads named `{name}-{i}`; they end when this value
    /// is dropped and the queue is empty.
    ///
    /// # Errors
    /// When the operating system refuses a thread.
    pub fn start(name: &str, threads: usize) -> std::io::Result<Self> {
        let (queue, jobs) = std::sync::mpsc::channel::<Job>();
        let jobs = std::sync::Arc::new(std::sync::Mutex::new(jobs));
        for i in 0..threads.max(1) {
            let jobs = std::sync::Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting: no job runs under it, so it
                        // is never poisoned by one.
                        let next = jobs
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        match next {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self { queue })
    }

    /// Runs `call` on one of the threads, with storage I/O allowed, and returns its answer.
    /// A panic inside `call` is resumed here, as with [`run`].
    pub async fn run<T, F>(&self, call: F) -> T
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _allowed = Allowed::enter();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
            // The caller may have gone (its request was cancelled); the work is done anyway.
            let _ = answer.send(result);
        });
        // Fails only once every thread has ended, which happens only when `self` is dropped.
        let _ = self.queue.send(job);
        match answered.await {
            Ok(Ok(value)) => value,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => std::panic::resume_unwind(Box::new("worker threads ended")),
        }
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn workers_run_calls_on_their_own_threads_with_io_allowed() {
        let workers = Workers::start("test-worker", 2).unwrap();
        let store = Store::in_memory();
        let s = store.clone();
        assert!(workers.run(move || s.probe()).await.is_ok());
        let names: Vec<String> = thread_names(&workers).await;
        assert!(
            names.iter().all(|n| n.starts_with("test-worker-")),
            "{names:?}"
        );
        let panicked =
            tokio::spawn(async move { workers.run(|| -> u8 { panic!("inside") }).await });
        assert!(panicked.await.unwrap_err().is_panic());
    }

    async fn thread_names(workers: &Workers) -> Vec<String> {
        let mut names = Vec::new();
        for _ in 0..4 {
            let name = workers
                .run(|| std::thread::current().name().unwrap_or_default().to_owned())
                .await;
            names.push(name);
        }
        names
    }
}
