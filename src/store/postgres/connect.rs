//! From `--database-url` and its options to a connection: the URL's `sslmode`, TLS through
//! rustls (ring) against the system's roots or `--database-ca`, and the timeouts.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::BackendError;

/// How to reach the database: `--database-url` and the options beside it.
#[derive(Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/db[?sslmode=…]`.
    pub url: String,
    /// PEM roots for the server's certificate instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Most connections this process opens.
    pub pool_size: u32,
    /// How long opening a connection, or waiting for a free one, may take.
    pub connect_timeout: Duration,
    /// How long one statement may run before the server cancels it.
    pub statement_timeout: Duration,
}

impl std::fmt::Debug for PgOptions {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &"[redacted]")
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

impl PgOptions {
    /// The defaults for `url`: 16 connections, 3 s to connect, 5 s per statement.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ca_file: None,
            pool_size: 16,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// A resolved connection target: the client configuration and the TLS connector.
#[derive(Clone)]
pub struct Target {
    config: postgres::Config,
    tls: MakeRustlsConnect,
}

fn invalid(why: impl std::fmt::Display) -> BackendError {
    BackendError::Failed(format!("--database-url: {why}"))
}

/// Whether every host of the URL is this machine (or a Unix socket).
fn local_only(config: &postgres::Config) -> bool {
    config.get_hosts().iter().all(|h| match h {
        postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        postgres::config::Host::Unix(_) => true,
    })
}

impl Target {
    /// Parses the URL and prepares TLS.
    ///
    /// `sslmode=require` and `verify-full` both verify the server's certificate and host
    /// name (there is no mode that encrypts without checking who answers); `disable`
    /// turns TLS off; without `sslmode`, TLS is required unless every host is loopback or
    /// a Unix socket. Other modes (`prefer`, `allow`, `verify-ca`) are refused: each would
    /// silently weaken what the operator asked for.
    ///
    /// # Errors
    /// A URL that is not a PostgreSQL URL, a refused `sslmode`, unreadable roots.
    pub fn new(options: &PgOptions) -> Result<Self, BackendError> {
        let mut url = url::Url::parse(&options.url).map_err(|_| invalid("not a URL"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(invalid("the scheme must be postgres:// or postgresql://"));
        }
        let mut sslmode = None;
        let rest: Vec<(String, String)> = url
            .query_pairs()
            .filter_map(|(k, v)| {
                if k == "sslmode" {
                    sslmode = Some(v.into_owned());
                    None
                } else {
                    Some((k.into_owned(), v.into_owned()))
                }
            })
            .collect();
        if rest.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(rest);
        }
        let mut config = postgres::Config::from_str(url.as_str()).map_err(invalid)?;
        let tls_on = match sslmode.as_deref() {
            Some("require" | "verify-full") => true,
            Some("disable") => false,
            None => !local_only(&config),
            Some(other) => {
                return Err(invalid(format!(
                    "sslmode={other} is not supported: use verify-full (or require, which \
                     verifies the server as well) or disable"
                )));
            }
        };
        config
            .ssl_mode(if tls_on {
                SslMode::Require
            } else {
                SslMode::Disable
            })
            .connect_timeout(options.connect_timeout)
            // A server that stops answering mid-statement is given up on, not waited for.
            .tcp_user_timeout(options.statement_timeout + options.connect_timeout)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("civis")
            .options(&format!(
                "-c statement_timeout={} -c idle_in_transaction_session_timeout={}",
                options.statement_timeout.as_millis(),
                options.statement_timeout.as_millis() * 2
            ));
        let tls = MakeRustlsConnect::new(client_config(options.ca_file.as_deref())?);
        Ok(Self { config, tls })
    }

    /// Opens one connection.
    ///
    /// # Errors
    /// The client's error (unreachable, refused, TLS, authentication).
    pub fn connect(&self) -> Result<postgres::Client, postgres::Error> {
        self.config.connect(self.tls.clone())
    }
}

/// rustls with ring, trusting `ca_file`'s certificates or else the system's roots.
fn client_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, BackendError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect)
                .map_err(|e| {
                    BackendError::Failed(format!("--database-ca {}: {e}", path.display()))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(BackendError::Failed(format!(
                    "--database-ca {}: no certificate in it",
                    path.display()
                )));
            }
        }
        None => {
            // Unreadable system roots only matter to a TLS connection, which then fails
            // with the server's certificate unverified; load what can be loaded.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BackendError::Failed(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Result<Target, String> {
        Target::new(&PgOptions::new(url)).map_err(|e| e.to_string())
    }

    #[test]
    fn sslmodes_that_weaken_tls_are_refused() {
        for mode in ["prefer", "allow", "verify-ca", "bogus"] {
            let err = target(&format!("postgres://u@db.example/civis?sslmode={mode}"))
                .err()
                .unwrap();
            assert!(err.contains(&format!("sslmode={mode}")), "{err}");
        }
        for mode in ["require", "verify-full", "disable"] {
            target(&format!("postgres://u@db.example/civis?sslmode={mode}")).unwrap();
        }
    }

    #[test]
    fn tls_is_required_by_default_except_on_loopback() {
        let remote = target("postgres://u:p@db.example:5432/civis").unwrap();
        assert_eq!(remote.config.get_ssl_mode(), SslMode::Require);
        let local = target("postgres://u:p@127.0.0.1:5432/civis?connect_timeout=2").unwrap();
        assert_eq!(local.config.get_ssl_mode(), SslMode::Disable);
        assert_eq!(local.config.get_dbname(), Some("civis"));
        assert!(target("mysql://u@h/db").is_err());
        assert!(target("not a url").is_err());
    }

    #[test]
    fn options_do_not_print_the_password() {
        let o = PgOptions::new("postgres://u:hunter2@h/db");
        assert!(!format!("{o:?}").contains("hunter2"));
    }
}
