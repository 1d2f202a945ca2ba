//! Where log lines go: a buffer in memory, written to stderr in batches by one background
//! thread, so a request never waits on the terminal or pipe and no thread is woken per line.
//!
//! Nothing is dropped: when the buffer holds [`MAX_PENDING`] bytes, loggers wait for the
//! writer. Warnings and errors wake the writer at once; other lines are written within
//! [`FLUSH_EVERY`] or as soon as [`FLUSH_AT`] bytes are waiting. Dropping the [`Guard`]
//! writes everything still buffered.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in memory before it is written.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Bytes waiting that wake the writer before [`FLUSH_EVERY`] has passed.
pub const FLUSH_AT: usize = 64 * 1024;
/// Bytes waiting at which loggers block until the writer has caught up.
pub const MAX_PENDING: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    urgent: bool,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when the writer should look at `pending` now.
    wake: Condvar,
    /// Signalled when the writer has taken the pending bytes.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock cannot leave `Pending` half-updated in a way that
        // matters for log bytes; keep logging.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, line: &[u8], urgent: bool) {
        let mut p = self.lock();
        while p.bytes.len() >= MAX_PENDING && !p.closed {
            p = self.room.wait(p).unwrap_or_else(PoisonError::into_inner);
        }
        let before = p.bytes.len();
        p.bytes.extend_from_slice(line);
        let crossed = before < FLUSH_AT && p.bytes.len() >= FLUSH_AT;
        if (urgent && !p.urgent) || crossed {
            self.wake.notify_one();
        }
        p.urgent |= urgent;
    }
}

/// Writes batches to `out` until closed; returns after the last bytes are written. Lines
/// that are not urgent wait up to `flush_every`.
fn run_writer(shared: &Shared, mut out: impl Write, flush_every: Duration) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut p = shared.lock();
            let mut deadline = Instant::now() + flush_every;
            while !p.closed && !p.urgent && p.bytes.len() < FLUSH_AT {
                let now = Instant::now();
                if now >= deadline {
                    if !p.bytes.is_empty() {
                        break;
                    }
                    deadline = now + flush_every;
                }
                p = shared
                    .wake
                    .wait_timeout(p, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut batch, &mut p.bytes);
            p.urgent = false;
            p.closed
        };
        shared.room.notify_all();
        // stderr failing leaves nowhere to report it; those bytes are dropped, not retried.
        let _ = out.write_all(&batch);
        let _ = out.flush();
        if closed {
            // The guard is dropped after the runtime, so nothing logs after this point.
            return;
        }
        batch.clear();
        if batch.capacity() > MAX_PENDING {
            batch = Vec::new();
        }
    }
}

/// The `MakeWriter` handed to `tracing_subscriber`.
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

/// Flushes and stops the writer thread when dropped.
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        self.shared.room.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the writer thread for `out`.
///
/// # Errors
/// If the thread cannot be started.
pub fn start(out: impl Write + Send + 'static) -> std::io::Result<(Sink, Guard)> {
    start_with(out, FLUSH_EVERY)
}

fn start_with(
    out: impl Write + Send + 'static,
    flush_every: Duration,
) -> std::io::Result<(Sink, Guard)> {
    let shared = Arc::new(Shared::default());
    let for_thread = shared.clone();
    let thread = std::thread::Builder::new()
        .name("log writer".into())
        .spawn(move || run_writer(&for_thread, out, flush_every))?;
    Ok((
        Sink {
            shared: shared.clone(),
        },
        Guard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// One event's writer: `tracing_subscriber` formats a whole line, then writes it once.
/// Borrows the sink, so logging a line touches no shared reference count.
pub struct LineWriter<'a> {
    shared: &'a Shared,
    urgent: bool,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.shared.push(buf, self.urgent);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            urgent: true,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter<'a> {
        LineWriter {
            shared: &self.shared,
            urgent: *meta.level() <= tracing::Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::Collect;

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let out = Collect::default();
        let (sink, guard) = start(out.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        let mut w = sink.make_writer();
                        w.urgent = i % 1000 == 0;
                        w.write_all(format!("{t} {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let mut next = [0u32; 4];
        for line in text.lines() {
            let (t, i) = line.split_once(' ').unwrap();
            let t: usize = t.parse().unwrap();
            assert_eq!(
                i.parse::<u32>().unwrap(),
                next[t],
                "line order of thread {t}"
            );
            next[t] += 1;
        }
        assert_eq!(next, [20_000; 4]);
    }

    #[test]
    fn a_warning_is_written_without_waiting_for_the_batch() {
        let out = Collect::default();
        // Ordinary lines would wait an hour.
        let (sink, guard) = start_with(out.clone(), Duration::from_secs(3600)).unwrap();
        let info = tracing::Metadata::new(
            "i",
            "t",
            tracing::Level::INFO,
            None,
            None,
            None,
            tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CALLSITE)),
            tracing::metadata::Kind::EVENT,
        );
        sink.make_writer_for(&info).write_all(b"info\n").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(out.0.lock().unwrap().is_empty(), "info lines are batched");
        let warn = tracing::Metadata::new(
            "w",
            "t",
            tracing::Level::WARN,
            None,
            None,
            None,
            tracing::field::FieldSet::new(&[], tracing::callsite::Identifier(&CALLSITE)),
            tracing::metadata::Kind::EVENT,
        );
        sink.make_writer_for(&warn).write_all(b"warn\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while out.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            &*out.0.lock().unwrap(),
            b"info\nwarn\n",
            "the batch goes with it"
        );
        drop(guard);
    }

    struct Callsite;
    static CALLSITE: Callsite = Callsite;
    impl tracing::callsite::Callsite for Callsite {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unreachable!("not registered")
        }
    }
}
