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
