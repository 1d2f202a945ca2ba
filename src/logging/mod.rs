//! The service's logs: JSON lines on stderr ([`json`]), written in batches by a background
//! thread ([`sink`]) so a request never waits on the terminal or pipe.

pub mod json;
pub mod sink;

/// Installs the global subscriber: `CIVIS_LOG` filter (default `info`), JSON lines with the
/// current span's fields. Keep the guard until the service has stopped; dropping it writes
/// what is still buffered.
///
/// # Errors
/// If the writer thread cannot be started.
pub fn init() -> std::io::Result<sink::Guard> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CIVIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = sink::start(std::io::stderr())?;
    tracing_subscriber::fmt()
        .fmt_fields(json::JsonFields)
        .event_format(json::JsonLines)
        .with_env_filter(filter)
        .with_writer(writer)
        .init();
    Ok(guard)
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
