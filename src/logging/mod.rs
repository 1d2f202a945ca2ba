//! The service's logs: JSON lines on stderr ([`json`]), written in batches by a background
//! thread ([`sink`]) so a request never waits on the terminal or pipe.

pub mod json;
pub mod sink;

/// Keeps the log writer running; dropping it writes what is still buffered.
pub enum Guard {
    /// Our batching sink.
    Sink(sink::Guard),
    /// tracing-appender's worker (`CIVIS_LOG_WRITER=appender`).
    Appender(tracing_appender::non_blocking::WorkerGuard),
}

/// Installs the global subscriber: `CIVIS_LOG` filter (default `info`), JSON lines with the
/// current span's fields. Keep the guard until the service has stopped.
///
/// `CIVIS_LOG_WRITER=appender` writes through tracing-appender's non-blocking worker into a
/// `BufWriter` on stderr (flushed once per drained batch) instead of [`sink`]: a switch for
/// the benchmark that compares the two (README, Performance), not a tuning knob.
///
/// # Errors
/// If the writer thread cannot be started.
pub fn init() -> std::io::Result<Guard> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CIVIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .fmt_fields(json::JsonFields)
        .event_format(json::JsonLines)
        .with_env_filter(filter);
    if std::env::var("CIVIS_LOG_WRITER").as_deref() == Ok("appender") {
        // Lossless: a full channel makes loggers wait, as our sink does.
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::BufWriter::new(std::io::stderr()));
        subscriber.with_writer(writer).init();
        return Ok(Guard::Appender(guard));
    }
    let (writer, guard) = sink::start(std::io::stderr())?;
    subscriber.with_writer(writer).init();
    Ok(Guard::Sink(guard))
}

/// An in-memory `Write` for the tests of this module's parts.
#[cfg(test)]
#[derive(Clone, Default)]
struct Collect(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl std::io::Write for Collect {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
