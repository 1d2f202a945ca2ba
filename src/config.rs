//! Configuration: command-line flags, `CIVIS_*` environment variables and a TOML file,
//! merged with precedence flag > environment > file > default into one validated [`Config`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::attestation::AttestationRoots;
use crate::store::postgres::PgOptions;

/// Options of `civis serve`. Every option is a flag and an environment variable (clap reads
/// both, flag first); `--config` adds a TOML file below them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file; its keys are the long flag names with `_` for `-`.
    #[arg(long, env = "CIVIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Socket address to listen on; port 0 picks a free port. [default: 127.0.0.1:8443]
    #[arg(long, env = "CIVIS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// sled data directory, created if absent. [default: ./data]
    #[arg(long, env = "CIVIS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// OIDC issuer and public base URL. [default: <scheme>://localhost:<bound port> on
    /// loopback, which is https://localhost:8443 for the default address]
    #[arg(long, env = "CIVIS_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Serve plain HTTP instead of HTTPS (loopback tests, behind a TLS proxy).
    #[arg(long, env = "CIVIS_PLAIN_HTTP", num_args = 0..=1, default_missing_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), value_name = "BOOL")]
    pub plain_http: Option<bool>,
    /// Directory with the CA, TLS and token keys. [default: keys-dev]
    #[arg(long, env = "CIVIS_KEYS_DIR", value_name = "DIR")]
    pub keys_dir: Option<PathBuf>,
    /// File holding the admin bearer token. [default: <keys-dir>/admin-token]
    #[arg(long, env = "CIVIS_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Lifetime of enrolment codes, in hours. [default: 72]
    #[arg(long, env = "CIVIS_ENROLMENT_TTL_HOURS", value_name = "HOURS")]
    pub enrolment_ttl_hours: Option<u32>,
    /// Per-request time limit, in seconds. [default: 30]
    #[arg(long, env = "CIVIS_REQUEST_TIMEOUT_SECONDS", value_name = "SECONDS")]
    pub request_timeout_seconds: Option<u64>,
    /// Largest accepted request body, in bytes. [default: 65536]
    #[arg(long, env = "CIVIS_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Per client network and purpose: failed attempts allowed in a burst (ceremony starts
    /// and authorization requests get 4 times as many). [default: 30]
    #[arg(long, env = "CIVIS_THROTTLE_BURST", value_name = "N")]
    pub throttle_burst: Option<u32>,
    /// Per client address: sustained rate of the same, per minute. [default: 30]
    #[arg(long, env = "CIVIS_THROTTLE_PER_MINUTE", value_name = "N")]
    pub throttle_per_minute: Option<u32>,
    /// Per authenticated agency client: requests per second at the token, PAR,
    /// introspection, revocation and sealing endpoints, also the burst; 0 turns the quota
    /// off. [default: 1000]
    #[arg(long, env = "CIVIS_CLIENT_RATE_PER_SECOND", value_name = "N")]
    pub client_rate_per_second: Option<u32>,
    /// Proxies (addresses or CIDR ranges, comma-separated) whose `Forwarded` /
    /// `X-Forwarded-For` header names the client address used for throttling. Headers from
    /// any other peer are ignored. [default: none]
    #[arg(
        long,
        env = "CIVIS_TRUSTED_PROXIES",
        value_name = "CIDR,...",
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<String>>,
    /// Serve `/metrics` on this address only (plain HTTP, its own listener); the main
    /// listener never serves it. [default: off, no metrics endpoint]
    #[arg(long, env = "CIVIS_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// A retry of an already used refresh token within this many seconds gets the same new
    /// tokens instead of revoking the grant. [default: 0]
    #[arg(long, env = "CIVIS_REFRESH_GRACE_SECONDS", value_name = "SECONDS")]
    pub refresh_grace_seconds: Option<u32>,
    /// A token key added by `civis keys rotate` is published at once but signs only this
    /// many seconds after its creation. [default: 3600]
    #[arg(
        long,
        env = "CIVIS_TOKEN_KEY_ACTIVATION_SECONDS",
        value_name = "SECONDS"
    )]
    pub token_key_activation_seconds: Option<u32>,
    /// PEM file of CA certificates trusted for authenticator attestation. Passkeys whose
    /// attestation chains to one of them (and that are device-bound) count as hardware keys
    /// and reach eIDAS LoA high; unset, no passkey does. [default: none]
    #[arg(long, env = "CIVIS_ATTESTATION_ROOTS", value_name = "FILE")]
    pub attestation_roots: Option<PathBuf>,
    /// Validity of officials' and seals' certificates, in days (never past the CA's own
    /// end). [default: 730]
    #[arg(long, env = "CIVIS_SIGNING_CERT_DAYS", value_name = "DAYS")]
    pub signing_cert_days: Option<u32>,
    /// sled's page cache, in MiB (approximate bound; reads that miss it go to the operating
    /// system's page cache). [default: 16]
    #[arg(long, env = "CIVIS_STORE_CACHE_MB", value_name = "MIB")]
    pub store_cache_mb: Option<u32>,
    /// Store everything in this PostgreSQL database instead of sled, so that several
    /// processes serve one deployment: `postgres://user:password@host:port/db[?sslmode=…]`
    /// (`verify-full`/`require` verify the server, `disable`; without it TLS is required
    /// unless the host is loopback). [default: none, sled in --data-dir]
    #[arg(long, env = "CIVIS_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// PEM roots for the database server's certificate. [default: the system's roots]
    #[arg(long, env = "CIVIS_DATABASE_CA", value_name = "FILE")]
    pub database_ca: Option<PathBuf>,
    /// Most database connections of this process. [default: 16]
    #[arg(long, env = "CIVIS_DATABASE_POOL_SIZE", value_name = "N")]
    pub database_pool_size: Option<u32>,
    /// Time allowed to connect to the database, or to wait for a free connection, before a
    /// request fails with 503. [default: 3000]
    #[arg(long, env = "CIVIS_DATABASE_CONNECT_TIMEOUT_MS", value_name = "MS")]
    pub database_connect_timeout_ms: Option<u64>,
    /// Time one database statement may run before the server cancels it. [default: 5000]
    #[arg(long, env = "CIVIS_DATABASE_STATEMENT_TIMEOUT_MS", value_name = "MS")]
    pub database_statement_timeout_ms: Option<u64>,
}

/// The TOML file: the same options, unknown keys rejected by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    issuer: Option<String>,
    plain_http: Option<bool>,
    keys_dir: Option<PathBuf>,
    admin_token_file: Option<PathBuf>,
    enrolment_ttl_hours: Option<u32>,
    request_timeout_seconds: Option<u64>,
    max_body_bytes: Option<usize>,
    throttle_burst: Option<u32>,
    throttle_per_minute: Option<u32>,
    client_rate_per_second: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
    metrics_listen: Option<String>,
    refresh_grace_seconds: Option<u32>,
    token_key_activation_seconds: Option<u32>,
    attestation_roots: Option<PathBuf>,
    signing_cert_days: Option<u32>,
    store_cache_mb: Option<u32>,
    database_url: Option<String>,
    database_ca: Option<PathBuf>,
    database_pool_size: Option<u32>,
    database_connect_timeout_ms: Option<u64>,
    database_statement_timeout_ms: Option<u64>,
}

/// Validated configuration of a running service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// sled directory.
    pub data_dir: PathBuf,
    /// Issuer URL without trailing slash; `None` means derive it from the bound address.
    pub issuer: Option<String>,
    /// Serve HTTP rather than HTTPS.
    pub plain_http: bool,
    /// Key directory.
    pub keys_dir: PathBuf,
    /// Admin token file.
    pub admin_token_file: PathBuf,
    /// Lifetime of enrolment codes.
    pub enrolment_ttl: time::Duration,
    /// Per-request time limit.
    pub request_timeout: Duration,
    /// Request body limit.
    pub max_body_bytes: usize,
    /// Throttle burst per client address.
    pub throttle_burst: u32,
    /// Throttle refill per minute per client address.
    pub throttle_per_minute: u32,
    /// Requests per second (and burst) of each authenticated client; 0: no quota.
    pub client_rate_per_second: u32,
    /// Peers whose forwarding headers give the client address (empty: none).
    pub trusted_proxies: Vec<IpRange>,
    /// Where `/metrics` is served, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Refresh-token retry grace.
    pub refresh_grace: time::Duration,
    /// Lead between a rotated token key's creation and its first signature.
    pub token_key_lead: time::Duration,
    /// Roots trusted for authenticator attestation, read at start-up (`None`: no passkey
    /// counts as a verified hardware key).
    pub attestation_roots: Option<AttestationRoots>,
    /// Validity of officials' and seals' certificates.
    pub signing_cert_validity: time::Duration,
    /// sled's page cache, in bytes.
    pub store_cache_bytes: u64,
    /// The shared PostgreSQL database, when one replaces sled.
    pub database: Option<PgOptions>,
}

/// Why the configuration was refused; each names the offending option.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for us (this includes unknown keys, named by serde).
    #[error("config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// The parser's message, naming the key.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid {option}: {reason}")]
    Invalid {
        /// Option name.
        option: &'static str,
        /// Why.
        reason: String,
    },
}

/// An address range, `ADDR/LEN` (a bare address is the range of itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                mask(u128::from(a.to_bits()), 32, self.prefix) == u128::from(n.to_bits())
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => mask(a.to_bits(), 128, self.prefix) == n.to_bits(),
            _ => false,
        }
    }
}

/// `bits` (an address `width` bits wide) with everything past `prefix` cleared.
fn mask(bits: u128, width: u8, prefix: u8) -> u128 {
    let host = width.saturating_sub(prefix);
    if host >= 128 {
        0
    } else {
        (bits >> host) << host
    }
}

impl std::str::FromStr for IpRange {
    type Err = String;

    /// `192.0.2.0/24`, `2001:db8::/32`, or a single address; host bits must be zero so a
    /// typo such as `10.0.0.1/8` is refused instead of silently trusting a whole network.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or ADDR/LEN range"))?;
        let width = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= width => p,
                _ => return Err(format!("{s:?}: the prefix length must be 0 to {width}")),
            },
        };
        let bits = match network {
            IpAddr::V4(a) => u128::from(a.to_bits()),
            IpAddr::V6(a) => a.to_bits(),
        };
        if mask(bits, width, prefix) != bits {
            return Err(format!(
                "{s:?} has bits set past its /{prefix} prefix (write the network address)"
            ));
        }
        Ok(Self { network, prefix })
    }
}

fn invalid(option: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        option,
        reason: reason.into(),
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

/// Reads the attestation roots file; a file that cannot be read or holds no valid
/// certificate is refused at start-up rather than silently trusting nothing.
fn read_attestation_roots(path: &Path) -> Result<AttestationRoots, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid("attestation_roots", format!("{}: {e}", path.display())))?;
    AttestationRoots::from_pem(&text).map_err(|e| match e {
        crate::domain::DomainError::Invalid(fields) => invalid(
            "attestation_roots",
            format!(
                "{}: {}",
                path.display(),
                fields
                    .into_iter()
                    .map(|f| f.detail)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        other => invalid("attestation_roots", other.to_string()),
    })
}

/// Checks an issuer URL: https (http only for loopback hosts), no query or fragment, no
/// trailing slash in the result.
///
/// # Errors
/// [`ConfigError::Invalid`] for `issuer`.
pub fn validate_issuer(raw: &str) -> Result<String, ConfigError> {
    let url = url::Url::parse(raw).map_err(|e| invalid("issuer", format!("{raw}: {e}")))?;
    let loopback = matches!(
        url.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(invalid(
                "issuer",
                "must be an https URL (http only for loopback hosts)",
            ));
        }
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(
            "issuer",
            "must not have credentials, a query or a fragment",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl Config {
    /// Merges flags/env (`args`), the optional TOML file and the defaults.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, key or option at fault.
    pub fn resolve(args: &ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8443".into());
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| invalid("listen", format!("{listen:?} is not an IP:port address")))?;
        let keys_dir = args
            .keys_dir
            .clone()
            .or(file.keys_dir)
            .unwrap_or_else(|| "keys-dev".into());
        let admin_token_file = args
            .admin_token_file
            .clone()
            .or(file.admin_token_file)
            .unwrap_or_else(|| keys_dir.join(crate::crypto::keys::ADMIN_TOKEN));
        let issuer = args
            .issuer
            .clone()
            .or(file.issuer)
            .map(|i| validate_issuer(&i))
            .transpose()?;
        let ttl = args
            .enrolment_ttl_hours
            .or(file.enrolment_ttl_hours)
            .unwrap_or(72);
        if !(1..=24 * 90).contains(&ttl) {
            return Err(invalid("enrolment_ttl_hours", "must be between 1 and 2160"));
        }
        let timeout = args
            .request_timeout_seconds
            .or(file.request_timeout_seconds)
            .unwrap_or(30);
        if !(1..=600).contains(&timeout) {
            return Err(invalid(
                "request_timeout_seconds",
                "must be between 1 and 600",
            ));
        }
        let max_body = args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(64 * 1024);
        if !(1024..=16 * 1024 * 1024).contains(&max_body) {
            return Err(invalid(
                "max_body_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        let throttle_burst = args.throttle_burst.or(file.throttle_burst).unwrap_or(30);
        let throttle_per_minute = args
            .throttle_per_minute
            .or(file.throttle_per_minute)
            .unwrap_or(30);
        if throttle_burst == 0 || throttle_per_minute == 0 {
            return Err(invalid("throttle", "burst and rate must be at least 1"));
        }
        let client_rate_per_second = args
            .client_rate_per_second
            .or(file.client_rate_per_second)
            .unwrap_or(1000);
        let signing_cert_days = args
            .signing_cert_days
            .or(file.signing_cert_days)
            .unwrap_or(730);
        if !(1..=3650).contains(&signing_cert_days) {
            return Err(invalid("signing_cert_days", "must be between 1 and 3650"));
        }
        let store_cache_mb = args.store_cache_mb.or(file.store_cache_mb).unwrap_or(16);
        if !(1..=65_536).contains(&store_cache_mb) {
            return Err(invalid("store_cache_mb", "must be between 1 and 65536"));
        }
        let database = args
            .database_url
            .clone()
            .or(file.database_url)
            .map(|url| -> Result<PgOptions, ConfigError> {
                let mut o = PgOptions::new(url);
                o.ca_file = args.database_ca.clone().or(file.database_ca);
                o.pool_size = args
                    .database_pool_size
                    .or(file.database_pool_size)
                    .unwrap_or(o.pool_size);
                if !(1..=1000).contains(&o.pool_size) {
                    return Err(invalid("database_pool_size", "must be between 1 and 1000"));
                }
                let ms = |v: Option<u64>, name: &'static str, default: Duration| {
                    let v = v.map_or(default, Duration::from_millis);
                    if (Duration::from_millis(100)..=Duration::from_secs(600)).contains(&v) {
                        Ok(v)
                    } else {
                        Err(invalid(name, "must be between 100 and 600000 milliseconds"))
                    }
                };
                o.connect_timeout = ms(
                    args.database_connect_timeout_ms
                        .or(file.database_connect_timeout_ms),
                    "database_connect_timeout_ms",
                    o.connect_timeout,
                )?;
                o.statement_timeout = ms(
                    args.database_statement_timeout_ms
                        .or(file.database_statement_timeout_ms),
                    "database_statement_timeout_ms",
                    o.statement_timeout,
                )?;
                Ok(o)
            })
            .transpose()?;
        let attestation_roots = args
            .attestation_roots
            .clone()
            .or(file.attestation_roots)
            .map(|path| read_attestation_roots(&path))
            .transpose()?;
        let trusted_proxies = args
            .trusted_proxies
            .clone()
            .or(file.trusted_proxies)
            .unwrap_or_default()
            .iter()
            .filter(|r| !r.trim().is_empty())
            .map(|r| r.parse().map_err(|e| invalid("trusted_proxies", e)))
            .collect::<Result<Vec<IpRange>, _>>()?;
        let metrics_listen = args
            .metrics_listen
            .clone()
            .or(file.metrics_listen)
            .map(|m| {
                m.parse::<SocketAddr>().map_err(|_| {
                    invalid("metrics_listen", format!("{m:?} is not an IP:port address"))
                })
            })
            .transpose()?;
        Ok(Self {
            listen,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| "data".into()),
            issuer,
            plain_http: args.plain_http.or(file.plain_http).unwrap_or(false),
            keys_dir,
            admin_token_file,
            enrolment_ttl: time::Duration::hours(i64::from(ttl)),
            request_timeout: Duration::from_secs(timeout),
            max_body_bytes: max_body,
            throttle_burst,
            throttle_per_minute,
            client_rate_per_second,
            trusted_proxies,
            metrics_listen,
            refresh_grace: time::Duration::seconds(i64::from(
                args.refresh_grace_seconds
                    .or(file.refresh_grace_seconds)
                    .unwrap_or(0)
                    .min(300),
            )),
            token_key_lead: time::Duration::seconds(i64::from(
                args.token_key_activation_seconds
                    .or(file.token_key_activation_seconds)
                    .unwrap_or(3600),
            )),
            attestation_roots,
            signing_cert_validity: time::Duration::days(i64::from(signing_cert_days)),
            store_cache_bytes: u64::from(store_cache_mb) << 20,
            database,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.keys_dir, PathBuf::from("keys-dev"));
        assert_eq!(c.admin_token_file, PathBuf::from("keys-dev/admin-token"));
        assert!(!c.plain_http);
        assert_eq!(c.enrolment_ttl, time::Duration::hours(72));
        assert_eq!(
            c.attestation_roots, None,
            "no passkey is attested by default"
        );
        assert!(
            c.trusted_proxies.is_empty(),
            "no proxy is trusted by default"
        );
        assert_eq!(c.metrics_listen, None, "no metrics endpoint by default");
        assert_eq!(c.signing_cert_validity, time::Duration::days(730));
    }

    #[test]
    fn store_cache_from_every_source_and_bounded() {
        let c = Config::resolve(&ServeArgs::default()).unwrap();
        assert_eq!(c.store_cache_bytes, 16 << 20);
        let f = write("store_cache_mb = 8\n");
        let args = ServeArgs {
            config: Some(f.path().into()),
            ..ServeArgs::default()
        };
        assert_eq!(Config::resolve(&args).unwrap().store_cache_bytes, 8 << 20);
        let args = ServeArgs {
            store_cache_mb: Some(64),
            ..args
        };
        assert_eq!(Config::resolve(&args).unwrap().store_cache_bytes, 64 << 20);
        for bad in [0, 65_537] {
            let args = ServeArgs {
                store_cache_mb: Some(bad),
                ..ServeArgs::default()
            };
            let err = Config::resolve(&args).unwrap_err().to_string();
            assert!(err.starts_with("invalid store_cache_mb"), "{err}");
        }
    }

    #[test]
    fn signing_cert_days_from_every_source_and_bounded() {
        let f = write("signing_cert_days = 365\n");
        let args = ServeArgs {
            config: Some(f.path().into()),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.signing_cert_validity, time::Duration::days(365));
        for bad in [0, 3651] {
            let args = ServeArgs {
                signing_cert_days: Some(bad),
                ..Default::default()
            };
            let err = Config::resolve(&args).unwrap_err().to_string();
            assert!(err.starts_with("invalid signing_cert_days"), "{err}");
        }
    }

    #[test]
    fn attestation_roots_must_hold_a_certificate() {
        let f = write("not a certificate\n");
        let args = ServeArgs {
            attestation_roots: Some(f.path().into()),
            ..Default::default()
        };
        let err = Config::resolve(&args).unwrap_err().to_string();
        assert!(err.starts_with("invalid attestation_roots:"), "{err}");
        let args = ServeArgs {
            attestation_roots: Some("/nonexistent/roots.pem".into()),
            ..Default::default()
        };
        let err = Config::resolve(&args).unwrap_err().to_string();
        assert!(err.contains("attestation_roots"), "{err}");
    }

    #[test]
    fn trusted_proxies_are_ranges_with_precise_errors() {
        let r: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains("10.200.3.4".parse().unwrap()));
        assert!(
            r.contains("::ffff:10.1.1.1".parse().unwrap()),
            "IPv4-mapped"
        );
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        assert!(!r.contains("::1".parse().unwrap()));
        let one: IpRange = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: IpRange = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        for (bad, says) in [
            ("10.0.0.1/8", "bits set past its /8"),
            ("10.0.0.0/33", "0 to 32"),
            ("proxy.example", "not an IP address"),
            ("::/129", "0 to 128"),
        ] {
            let e = bad.parse::<IpRange>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let args = ServeArgs {
            trusted_proxies: Some(vec!["127.0.0.1/32".into(), "10.0.0.1/8".into()]),
            ..Default::default()
        };
        let err = Config::resolve(&args).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid trusted_proxies: \"10.0.0.1/8\""),
            "{err}"
        );
        let args = ServeArgs {
            metrics_listen: Some("localhost:9100".into()),
            ..Default::default()
        };
        let err = Config::resolve(&args).unwrap_err().to_string();
        assert!(err.starts_with("invalid metrics_listen"), "{err}");
        let f = write("trusted_proxies = [\"192.0.2.0/24\", \"2001:db8::1\"]\n");
        let args = ServeArgs {
            config: Some(f.path().into()),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let f = write("listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/f\"\nplain_http = true\n");
        let args = ServeArgs {
            config: Some(f.path().into()),
            listen: Some("127.0.0.1:9001".into()),
            ..Default::default()
        };
        let c = Config::resolve(&args).unwrap();
        assert_eq!(c.listen.port(), 9001, "flag wins");
        assert_eq!(c.data_dir, PathBuf::from("/tmp/f"), "file beats default");
        assert!(c.plain_http);
    }

    #[test]
    fn unknown_key_is_named() {
        let f = write("listen = \"127.0.0.1:9000\"\ndata_dri = \"x\"\n");
        let args = ServeArgs {
            config: Some(f.path().into()),
            ..Default::default()
        };
        let err = Config::resolve(&args).unwrap_err().to_string();
        assert!(err.contains("data_dri"), "{err}");
    }

    #[test]
    fn issuer_rules() {
        assert_eq!(
            validate_issuer("https://id.example.gov/").unwrap(),
            "https://id.example.gov"
        );
        assert_eq!(
            validate_issuer("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(validate_issuer("http://id.example.gov").is_err());
        assert!(validate_issuer("https://id.example.gov/?x=1").is_err());
        assert!(validate_issuer("not a url").is_err());
    }
}
