//! The running service: start-up, TLS, background tasks and graceful shutdown.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::RustlsAcceptor;

use crate::config::Config;
use crate::crypto::note::{NoteSigner, NoteVerifier};
use crate::crypto::{KeyError, KeySet};
use crate::domain::transparency;
use crate::domain::{Clock, OffsetClock, SystemClock, SystemRng};
use crate::http::observe::Metrics;
use crate::http::state::{AppState, Services};
use crate::store::{Store, StoreError};

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long an HTTP/1 connection may take to send a request head, counted from the moment
/// the server waits for one (so it bounds idle keep-alive connections too). Bodies are
/// bounded by the per-request timeout, TLS handshakes by the acceptor's (10 s).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes a request head (request line with its URL, and headers) may have; a longer
/// one is answered 431 (`observe`).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// hyper's HTTP/1 read buffer, and the HTTP/2 header list: a head this large is not read
/// to the end, the connection is closed instead (what a client that ignores 431 gets).
pub const MAX_HEAD_BUFFER: usize = 64 * 1024;

/// Why the service could not start or stopped abnormally. Printed to stderr by the CLI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Storage could not be opened (e.g. the data dir is locked by another process).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Keys missing or malformed.
    #[error("key material: {0}")]
    Keys(#[from] KeyError),
    /// The data directory could not be created.
    #[error("cannot create data dir {dir}: {source}")]
    DataDir {
        /// Directory.
        dir: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The issuer cannot serve as a WebAuthn relying party.
    #[error("issuer {issuer} cannot be used for passkeys: {reason}")]
    Issuer {
        /// The issuer.
        issuer: String,
        /// Why.
        reason: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The service CA cannot issue certificates.
    #[error("{0}")]
    Pki(#[from] crate::crypto::pki::PkiError),
    /// The server failed while running.
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// The audit log's checkpoint key cannot be used.
    #[error("audit log: {0}")]
    Audit(String),
    /// The operating system refused a thread.
    #[error("cannot start worker threads: {0}")]
    Threads(std::io::Error),
    /// The back-channel logout sender's HTTP client cannot be built.
    #[error("back-channel logout: {0}")]
    Backchannel(String),
}

/// The issuer to use when none is configured: the bound address, with `localhost` for
/// loopback so that the default is `https://localhost:8443` and WebAuthn has a valid RP ID.
pub fn default_issuer(plain_http: bool, bound: SocketAddr) -> String {
    let scheme = if plain_http { "http" } else { "https" };
    let host = if bound.ip().is_loopback() {
        "localhost".to_owned()
    } else if bound.is_ipv6() {
        format!("[{}]", bound.ip())
    } else {
        bound.ip().to_string()
    };
    format!("{scheme}://{host}:{}", bound.port())
}

/// Opens the configured store: PostgreSQL when `--database-url` is given (nothing is then
/// written to the data dir), else sled in the data dir, created if absent.
async fn open_store(config: &Config) -> Result<Store, StartError> {
    if let Some(options) = config.database.clone() {
        // The synchronous client runs its own small runtime: never on an async thread.
        return crate::store::offload::run(move || Store::open_postgres(&options))
            .await
            .map_err(StartError::from);
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
        dir: config.data_dir.display().to_string(),
        source,
    })?;
    // Opening numbers what the audit journal still holds: storage I/O, off the async threads.
    let (dir, cache) = (config.data_dir.clone(), config.store_cache_bytes);
    let store =
        crate::store::offload::run(move || Store::open_sled_with_cache(&dir, cache)).await?;
    let started = std::time::Instant::now();
    let settling = store.clone();
    crate::store::offload::run(move || settling.settle()).await?;
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "store settled");
    Ok(store)
}

/// What [`assemble`] builds: everything the router needs, before any listener or background
/// task exists.
pub struct Assembled {
    /// The state every handler gets.
    pub state: AppState,
    /// The checkpoint signer, when `audit.key` exists; the integrator uses it.
    pub audit_signer: Option<Arc<NoteSigner>>,
    /// The TLS configuration, unless `--plain-http`.
    pub tls: Option<rustls::ServerConfig>,
}

/// Loads the keys and builds the application state on `store` for `issuer`, brings the
/// audit log's tree up to date, and starts the worker threads (sealing, audit appender,
/// back-channel logout). [`serve`] runs it; the fuzz targets run it to drive the router
/// in process, through exactly the handlers the server runs.
///
/// # Errors
/// [`StartError`] for missing or unusable keys, an issuer that cannot be a relying party,
/// or threads the system refuses.
pub async fn assemble(
    config: &Config,
    store: Store,
    issuer: String,
) -> Result<Assembled, StartError> {
    let keys = KeySet::load(&config.keys_dir, &config.admin_token_file)?
        .with_token_key_lead(config.token_key_lead)?;
    if keys.development {
        eprintln!(
            "WARNING: using the public development keys in {}; never use them outside development \
             (create real keys with `civis keys init --dir DIR`)",
            keys.dir.display()
        );
        tracing::warn!(dir = %keys.dir.display(), "development keys in use");
    }
    if keys.kek.is_none() {
        tracing::warn!(
            file = %keys.dir.join(crate::crypto::keys::KEK_KEY).display(),
            "no key-encryption key: officials' and seals' keys cannot be created or used"
        );
    }
    for path in keys.loose_permissions(&config.admin_token_file) {
        tracing::warn!(file = %path.display(), "private key file is readable by group or others");
    }
    crate::crypto::jwt::install_provider();
    let tls = if config.plain_http {
        None
    } else {
        Some(keys.tls.server_config()?)
    };
    let (webauthn, public_origin) = relying_party(&issuer)?;
    let ca = crate::crypto::pki::Ca::new(&keys.ca, &issuer)?;
    let (clock, test_clock) = clocks();
    let audit_signer = audit_signer(&store, &keys, &issuer).await?;
    let state = AppState::new(Services {
        config: Arc::new(config.clone()),
        issuer: issuer.into(),
        store: store.clone(),
        keys: Arc::new(keys),
        rng: Arc::new(SystemRng::default()),
        metrics: Arc::new(Metrics::default()),
        webauthn: Arc::new(webauthn),
        public_origin: public_origin.into(),
        throttle: Arc::new(
            crate::http::throttle::Throttle::new(config.throttle_burst, config.throttle_per_minute)
                .with_client_rate(config.client_rate_per_second),
        ),
        clock,
        test_clock,
        ca: Arc::new(ca),
        crl: Arc::default(),
        sealing: Arc::new(
            crate::store::offload::Workers::start(
                "civis-seal",
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            )
            .map_err(StartError::Threads)?,
        ),
        audit_appender: Arc::new(
            crate::domain::audit::Appender::start(store.clone()).map_err(StartError::Threads)?,
        ),
        audit_signer: audit_signer.clone(),
        logout_sender: crate::http::backchannel::LogoutSender::start()
            .map_err(StartError::Backchannel)?,
    });
    Ok(Assembled {
        state,
        audit_signer,
        tls,
    })
}

/// Runs the service until SIGTERM or SIGINT, then drains requests and flushes storage.
///
/// # Errors
/// [`StartError`] for anything that prevents start-up.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let store = open_store(&config).await?;
    let listener = TcpListener::bind(config.listen).map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let bound = listener.local_addr().map_err(StartError::Serve)?;
    let issuer = config
        .issuer
        .clone()
        .unwrap_or_else(|| default_issuer(config.plain_http, bound));
    let plain_http = config.plain_http;
    let Assembled {
        state,
        audit_signer,
        tls,
    } = assemble(&config, store.clone(), issuer).await?;
    let state_keys = state.keys.clone();
    let sweeper_clock = state.clock.clone();
    let metrics = match config.metrics_listen {
        Some(addr) => {
            let listener =
                TcpListener::bind(addr).map_err(|source| StartError::Bind { addr, source })?;
            Some((listener, crate::http::metrics_router(state.clone())))
        }
        None => None,
    };
    let app = crate::http::router(state).into_make_service_with_connect_info::<SocketAddr>();

    tokio::spawn(reload_token_keys(state_keys.clone()));
    tokio::spawn(sweep_expired(store.clone(), sweeper_clock));
    // Runs until `serve` returns.
    let _integrator = crate::domain::integrator::Integrator::start(store.clone(), audit_signer)
        .map_err(StartError::Threads)?;
    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));

    if let Some((listener, router)) = metrics {
        let addr = listener.local_addr().map_err(StartError::Serve)?;
        let server = axum_server::from_tcp(listener).map_err(StartError::Serve)?;
        tracing::info!(%addr, "metrics listening (plain HTTP)");
        // Ends with the process; scrapes need no draining.
        tokio::spawn(async move {
            if let Err(e) = server.serve(router.into_make_service()).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
    }

    let scheme = if plain_http { "http" } else { "https" };
    println!("listening on {scheme}://{bound}");
    tracing::info!(%bound, "listening");

    // TCP_NODELAY: a response written in more than one piece (HTTP/2 frames, pipelined
    // HTTP/1.1 answers) must not wait for the peer's delayed ACK (Nagle: up to 40 ms).
    let mut server = axum_server::from_tcp(listener).map_err(StartError::Serve)?;
    // Answers to pipelined requests leave in one write instead of one each. A client that
    // does not finish its request head in time, or keeps a connection idle between
    // requests that long, is disconnected (slowloris); a head larger than the limit is 431.
    server
        .http_builder()
        .http1()
        .pipeline_flush(true)
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BUFFER);
    server
        .http_builder()
        .http2()
        .max_header_list_size(u32::try_from(MAX_HEAD_BUFFER).unwrap_or(u32::MAX));
    // A connection that sends no complete first request in time is closed: hyper's head
    // timeout above starts only once bytes arrive.
    let server = server
        .first_request_timeout(HEADER_READ_TIMEOUT)
        .handle(handle);
    let served = match tls {
        None => server.acceptor(NoDelayAcceptor).serve(app).await,
        Some(tls) => {
            let tls = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(tls));
            server
                .acceptor(RustlsAcceptor::new(tls).acceptor(NoDelayAcceptor))
                .serve(app)
                .await
        }
    };
    // Flush even if serving failed: whatever was acknowledged must survive.
    let flushed = crate::store::offload::run(move || store.flush()).await;
    served.map_err(StartError::Serve)?;
    flushed?;
    tracing::info!("stopped; storage flushed");
    Ok(())
}

/// The system clock; in a debug build started with `CIVIS_TEST_CLOCK=1`, a clock the
/// integration tests can move forward (release builds cannot: the code is not there).
fn clocks() -> (Arc<dyn Clock>, Option<Arc<OffsetClock>>) {
    #[cfg(debug_assertions)]
    if std::env::var("CIVIS_TEST_CLOCK").as_deref() == Ok("1") {
        tracing::warn!("test clock enabled: time can be moved through the admin API");
        let clock = Arc::new(OffsetClock::default());
        return (clock.clone(), Some(clock));
    }
    (Arc::new(SystemClock), None)
}

/// The WebAuthn relying party for an issuer: RP ID is its host, the origin its origin.
///
/// # Errors
/// [`StartError::Issuer`] when the issuer has no host or webauthn-rs refuses it.
pub fn relying_party(issuer: &str) -> Result<(webauthn_rs::prelude::Webauthn, String), StartError> {
    let err = |reason: String| StartError::Issuer {
        issuer: issuer.to_owned(),
        reason,
    };
    let url = url::Url::parse(issuer).map_err(|e| err(e.to_string()))?;
    let host = url
        .host_str()
        .ok_or_else(|| err("no host".into()))?
        .to_owned();
    let origin = url.origin().ascii_serialization();
    let webauthn = webauthn_rs::prelude::WebauthnBuilder::new(&host, &url)
        .and_then(|b| b.rp_name("civis").build())
        .map_err(|e| err(e.to_string()))?;
    Ok((webauthn, origin))
}

/// Picks up keys added by `civis keys rotate` while running (they are published at once and
/// sign only after their activation lead).
async fn reload_token_keys(keys: Arc<KeySet>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        let on_disk = keys.clone();
        // Reading key files is I/O: off the async threads like storage.
        match crate::store::offload::run(move || on_disk.token_keys.reload()).await {
            Ok(true) => tracing::info!(kids = ?keys.tokens().kids(), "token keys reloaded"),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "token keys could not be reloaded; keeping the old set")
            }
        }
    }
}

/// How often the expiry sweeper looks for expired records.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Records removed per sweeper transaction, and transactions per pass: the bound on the
/// work one pass does (and on how long it holds sled's transaction lock).
const SWEEP_BATCH: usize = 500;
const SWEEP_BATCHES_PER_PASS: usize = 20;

/// Removes expired ceremonies, codes, sessions, tokens and markers, a bounded amount per pass.
async fn sweep_expired(store: Store, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    loop {
        tick.tick().await;
        let s = store.clone();
        let now = clock.now();
        let swept = crate::store::offload::run(move || {
            let mut total = 0;
            for _ in 0..SWEEP_BATCHES_PER_PASS {
                let n = s.sweep_expired(now, SWEEP_BATCH)?;
                total += n;
                if n < SWEEP_BATCH {
                    break;
                }
            }
            Ok::<_, StoreError>(total)
        })
        .await;
        match swept {
            Ok(0) => {}
            Ok(n) => tracing::info!(records = n, "expired records swept"),
            Err(e) => tracing::error!(error = %e, "expiry sweep failed"),
        }
    }
}

/// The checkpoint signer: `audit.key` under the name the log already has (its first
/// checkpoint fixed it), or for a new log `{issuer host}/audit`. A key other than the one
/// that signed the log refuses start.
async fn audit_signer(
    store: &Store,
    keys: &KeySet,
    issuer: &str,
) -> Result<Option<Arc<NoteSigner>>, StartError> {
    let Some(key) = &keys.audit else {
        tracing::warn!(
            file = %keys.dir.join(crate::crypto::keys::AUDIT_KEY).display(),
            "no audit.key: audit entries are written but no checkpoint is published"
        );
        return Ok(None);
    };
    let s = store.clone();
    let recorded = crate::store::offload::run(move || s.audit().verifier()).await?;
    let name = match recorded.as_deref().map(NoteVerifier::parse) {
        Some(Ok(v)) => v.name().to_owned(),
        _ => format!(
            "{}/audit",
            issuer.split_once("://").map_or(issuer, |(_, rest)| rest)
        ),
    };
    let signer = Arc::new(
        NoteSigner::new(&name, key.expose()).map_err(|e| StartError::Audit(e.to_string()))?,
    );
    let (s, check) = (store.clone(), signer.clone());
    // The key is checked, and the tree brought up to date, before the first request: a
    // new log has its first (empty) checkpoint as soon as the server listens.
    crate::store::offload::run(move || {
        transparency::check_key(&s, &check)?;
        while let Some(size) = transparency::integrate(&s, &check)? {
            if size % transparency::ROUND != 0 {
                break;
            }
        }
        Ok::<_, transparency::IntegrateError>(())
    })
    .await
    .map_err(|e| StartError::Audit(e.to_string()))?;
    Ok(Some(signer))
}

async fn shutdown_on_signal<A: axum_server::Address>(handle: axum_server::Handle<A>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL only");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    handle.graceful_shutdown(Some(SHUTDOWN_GRACE));
}
