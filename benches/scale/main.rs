//! `cargo bench --bench scale`: civis at national scale, in one command and one table.
//!
//! For each N (`SCALE_BENCH_N`, default `10000,1000000`):
//! 1. the real server (`serve --plain-http`, loopback, default log level) starts on an
//!    empty sled data dir (its time to the ready line), one citizen enrols a passkey on the
//!    integration tests' software device, and the server stops;
//! 2. the loader (`loader.rs`) adds N citizens with a copy of that passkey each, and their
//!    2N audit entries, straight through the store, then integrates the entries into the
//!    Merkle tree (entries integrated per second); on PostgreSQL, `VACUUM (ANALYZE)` and a
//!    `CHECKPOINT` follow, which autovacuum would otherwise run during the series;
//! 3. point lookups in process (`lookup.rs`): by citizen id, national id, credential id;
//! 4. the server starts again on the full data dir (time to ready) and is driven over
//!    loopback by K keep-alive connections (`SCALE_BENCH_K`, default 16) for
//!    `SCALE_BENCH_SECONDS` (default 3) per series after 1 s of warm-up: `/token`
//!    client_credentials, authorization-code redemptions, complete passkey logins of random
//!    loaded citizens, seal batches of 100 digests (CAdES, JAdES), `/verify/v1`, and
//!    inclusion proofs in the loaded tree. The server's peak resident memory is reset
//!    before each series (`/proc/PID/clear_refs`) and read after it.
//!
//! Baselines, in this process on one core, before and after everything (ratios use the
//! higher): ring's ECDSA P-256 signing and verification. The table (markdown) prints every
//! figure with p50 and p99, its ratio to the baseline it needs and to the smallest N.
//!
//! Environment:
//! - `SCALE_BENCH_N=10000,1000000,10000000`: the sizes (10⁷ takes about 50 GB of sled and
//!   an hour to load on the 2-core VM); `0` measures PostgreSQL only;
//! - `SCALE_BENCH_DATABASE_URL=postgres://…/postgres`: every size on PostgreSQL too (a fresh
//!   database on that cluster per size), after sled; `SCALE_BENCH_PG_N` gives PostgreSQL
//!   its own sizes;
//! - `SCALE_BENCH_DIR`: where the sled data dirs go (default: the temporary directory);
//!   `SCALE_BENCH_KEEP=1` leaves them there;
//! - `SCALE_BENCH_PERF=DIR`: `perf record` of the server during each series, with its CPU
//!   time, major page faults, bytes read from the disk and the machine's I/O stall time,
//!   summarised by `python3 benches/scale/profile.py DIR`.

#[allow(dead_code)]
#[path = "../token/audit.rs"]
mod audit;
#[allow(dead_code)]
#[path = "../../tests/it/authenticator.rs"]
mod authenticator;
#[allow(dead_code)]
#[path = "../token/codes.rs"]
mod codes;
#[allow(dead_code)]
#[path = "../token/durable.rs"]
mod durable;
#[allow(dead_code)]
#[path = "../token/load.rs"]
mod load;
mod loader;
mod login;
mod lookup;
mod report;
#[allow(dead_code)]
#[path = "../token/seal.rs"]
mod seal;
#[allow(dead_code)]
#[path = "../token/server.rs"]
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use load::{Driver, Point};
use report::{Baselines, Figure, Step};
use server::Server;

pub const HTTP_WARMUP: Duration = Duration::from_secs(1);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env_list(name: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|s| s.trim().replace('_', "").parse().ok())
                .collect::<Vec<u64>>()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_vec())
}

/// Calls `op` for 0.5 s, then counts calls for 3 s; calls per second.
fn rate(mut op: impl FnMut()) -> f64 {
    let run = |op: &mut dyn FnMut(), d: Duration| {
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            for _ in 0..16 {
                op();
            }
            n += 16;
            if start.elapsed() >= d {
                return n as f64 / start.elapsed().as_secs_f64();
            }
        }
    };
    run(&mut op, Duration::from_millis(500));
    run(&mut op, Duration::from_secs(3))
}

/// ring's ECDSA P-256 / SHA-256 signing and verification of a 430-byte message, one core.
fn raw_ecdsa() -> (f64, f64) {
    use ring::signature::{
        ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
        UnparsedPublicKey,
    };
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
        .expect("key");
    let message = [7u8; 430];
    let sign = rate(|| {
        std::hint::black_box(
            key.sign(&rng, std::hint::black_box(&message))
                .expect("sign"),
        );
    });
    let signature = key.sign(&rng, &message).expect("sign");
    let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.public_key().as_ref());
    let verify = rate(|| {
        public
            .verify(std::hint::black_box(&message), signature.as_ref())
            .expect("verify");
    });
    (sign, verify)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The tree size of the server's latest checkpoint.
async fn checkpoint_size(server: &Server) -> u64 {
    let text = server::client()
        .get(format!("{}/transparency/v1/checkpoint", server.url))
        .send()
        .await
        .expect("checkpoint")
        .text()
        .await
        .unwrap_or_default();
    text.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("a checkpoint")
}

/// What the server has used so far, from /proc: user and system CPU seconds, major page
/// faults and bytes read from disk; and, for the whole machine, the seconds in which some
/// task was stalled on I/O (`/proc/pressure/io`; the per-thread block I/O delay of
/// `kernel.task_delayacct` gave impossible sums when switched on at run time).
#[derive(Clone, Copy, Default)]
struct Usage {
    user: f64,
    system: f64,
    major_faults: f64,
    read_bytes: f64,
    io_stalled: f64,
}

impl Usage {
    fn of(pid: &str) -> Self {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields = server::stat_fields(&stat);
        // Field k of proc_pid_stat(5) sits at k - 3 after the command name: majflt (12),
        // utime (14), stime (15); USER_HZ = 100.
        let at = |k: usize| {
            fields
                .get(k - 3)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let read_bytes = std::fs::read_to_string(format!("/proc/{pid}/io"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("read_bytes:")?.trim().parse().ok())
            .unwrap_or(0.0);
        let io_stalled = std::fs::read_to_string("/proc/pressure/io")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("some"))
            .and_then(|l| l.split_once("total=")?.1.trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        Self {
            user: at(14) / 100.0,
            system: at(15) / 100.0,
            major_faults: at(12),
            read_bytes,
            io_stalled: io_stalled / 1e6,
        }
    }

    fn since(self, from: Self) -> Self {
        Self {
            user: self.user - from.user,
            system: self.system - from.system,
            major_faults: self.major_faults - from.major_faults,
            read_bytes: self.read_bytes - from.read_bytes,
            io_stalled: self.io_stalled - from.io_stalled,
        }
    }
}

/// With `SCALE_BENCH_PERF=DIR`: `perf record` (self time by symbol, kernel included where
/// perf may see it) of the server for one series, and what it used (`Usage`), for
/// `profile.py`.
struct Profile {
    perf: std::process::Child,
    cpu_file: PathBuf,
    pid: String,
    from: Usage,
}

impl Profile {
    fn start(server: &Server, n: u64, series: &str) -> Option<Self> {
        let dir = PathBuf::from(std::env::var_os("SCALE_BENCH_PERF")?);
        std::fs::create_dir_all(&dir).ok()?;
        let slug: String = series
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let base = dir.join(format!("{n}-{slug}"));
        let pid = server.pid();
        let perf = std::process::Command::new("perf")
            .args(["record", "-q", "-F", "1999", "-p", &pid, "-o"])
            .arg(base.with_extension("data"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        Some(Self {
            perf,
            cpu_file: base.with_extension("cpu"),
            from: Usage::of(&pid),
            pid,
        })
    }

    fn finish(mut self) {
        let u = Usage::of(&self.pid).since(self.from);
        let _ = std::fs::write(
            &self.cpu_file,
            format!(
                "{:.2} {:.2} {:.0} {:.0} {:.2}\n",
                u.user, u.system, u.major_faults, u.read_bytes, u.io_stalled
            ),
        );
        let _ = std::process::Command::new("kill")
            .args(["-INT", &self.perf.id().to_string()])
            .status();
        let _ = self.perf.wait();
    }
}

/// Runs one load series with the server's peak memory reset before it (and profiled with
/// `SCALE_BENCH_PERF`).
async fn measured<F: Future<Output = Point>>(
    server: &Server,
    (n, name): (u64, &'static str),
    series: F,
) -> Figure {
    server.reset_peak_rss();
    let profile = Profile::start(server, n, name);
    let point = series.await;
    if let Some(p) = profile {
        p.finish();
    }
    let figure = Figure::new(name, point, server.peak_rss_kib());
    // Each figure is in the log as soon as it is measured, so a run that fails later (an
    // hour into a load of 10⁷) still leaves what it measured.
    let p = &figure.point;
    eprintln!(
        "N = {n}: {name}: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, server CPU {} µs per op, peak RSS {} MiB, {} errors",
        p.per_second,
        p.p50_ms,
        p.p99_ms,
        p.server_cpu_us.map_or("?".into(), |c| format!("{c:.0}")),
        report::mib(figure.peak_kib),
        p.errors
    );
    // Nothing answered in the whole window: the server stopped. Fail here, while it still
    // runs, so that its threads are shown (`Server`'s drop) instead of a later connection
    // error.
    assert!(
        p.ok > 0 || p.errors > 0,
        "N = {n}: {name}: no request completed in {:?}: the server stopped answering",
        p.window
    );
    figure
}

/// Where one step's data lives: a sled data dir, or a fresh PostgreSQL database.
enum Target {
    Sled {
        dir: PathBuf,
        /// Removed at the end of the step unless `SCALE_BENCH_KEEP=1`.
        _holder: Option<tempfile::TempDir>,
    },
    Postgres(String),
}

/// The server's default sled cache (`--store-cache-mb`).
const SERVER_CACHE_BYTES: u64 = 16 << 20;

/// sled's page cache while loading.
const LOAD_CACHE_BYTES: u64 = 256 << 20;

/// Whether `SCALE_BENCH_DATABASE_URL` names a PostgreSQL cluster to measure as well.
fn postgres_given() -> bool {
    std::env::var_os("SCALE_BENCH_DATABASE_URL").is_some_and(|v| !v.is_empty())
}

impl Drop for Target {
    /// Drops a step's PostgreSQL database (10⁷ citizens fill about 32 GB), unless
    /// `SCALE_BENCH_KEEP=1`; a sled data dir goes with its holder.
    fn drop(&mut self) {
        let Self::Postgres(url) = self else { return };
        if std::env::var("SCALE_BENCH_KEEP").as_deref() == Ok("1") {
            eprintln!("the database {url} stays");
            return;
        }
        let (Ok(admin), Ok(parsed)) = (
            std::env::var("SCALE_BENCH_DATABASE_URL"),
            url::Url::parse(url),
        ) else {
            return;
        };
        let name = parsed.path().trim_start_matches('/').to_owned();
        let dropped = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls)?;
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the bench database {url}: {dropped:?}");
        }
    }
}

impl Target {
    fn new(n: u64, postgres: bool) -> Self {
        if postgres {
            return Self::Postgres(server::fresh_database());
        }
        let base =
            std::env::var_os("SCALE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let holder = tempfile::tempdir_in(base).expect("data dir");
        let dir = holder.path().join("store");
        let keep = std::env::var("SCALE_BENCH_KEEP").as_deref() == Ok("1");
        if keep {
            eprintln!("N = {n}: the data dir stays at {}", dir.display());
        }
        Self::Sled {
            dir,
            _holder: (!keep).then_some(holder),
        }
    }

    fn backend(&self) -> &'static str {
        match self {
            Self::Sled { .. } => "sled",
            Self::Postgres(_) => "PostgreSQL",
        }
    }

    fn start(&self, bin: &std::path::Path) -> Server {
        match self {
            Self::Sled { dir, .. } => Server::start_on(bin, "info", &[], dir),
            Self::Postgres(url) => Server::start_on_database(bin, "info", &[], url),
        }
    }

    /// Opens the store outside any async runtime; also returns how long that took.
    fn open(&self, sled_cache: u64) -> (civis::store::Store, Duration) {
        let start = Instant::now();
        let store = match self {
            Self::Sled { dir, .. } => civis::store::Store::open_sled_with_cache(dir, sled_cache),
            Self::Postgres(url) => {
                civis::store::Store::open_postgres(&civis::store::postgres::PgOptions::new(url))
            }
        }
        .expect("open the store");
        (store, start.elapsed())
    }

    /// On PostgreSQL, what autovacuum would do after a bulk load (and would otherwise do
    /// during the series, on the same two cores): vacuum and analyse the table, then a
    /// checkpoint. Returns how long it took (none on sled).
    fn settle(&self) -> Option<Duration> {
        let Self::Postgres(url) = self else {
            return None;
        };
        let url = url.clone();
        let start = Instant::now();
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            c.batch_execute("VACUUM (ANALYZE) civis_kv")
                .expect("vacuum");
            c.batch_execute("CHECKPOINT").expect("checkpoint");
        })
        .join()
        .expect("vacuum thread");
        Some(start.elapsed())
    }

    /// Bytes on disk: the data dir, or the database.
    fn size(&self) -> u64 {
        match self {
            Self::Sled { dir, .. } => loader::dir_size(dir),
            Self::Postgres(url) => {
                let url = url.clone();
                std::thread::spawn(move || {
                    let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
                    let row = c
                        .query_one("SELECT pg_database_size(current_database())", &[])
                        .expect("database size");
                    u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)
                })
                .join()
                .expect("size thread")
            }
        }
    }
}

fn step(
    (n, postgres): (u64, bool),
    k: usize,
    measure: Duration,
    keys: &civis::crypto::KeySet,
    rt: &tokio::runtime::Runtime,
) -> Step {
    let bin = server::this_build();
    let target = Target::new(n, postgres);

    let server = target.start(&bin);
    let ready_empty = server.ready;
    let template = rt.block_on(login::enrol_template(&server));
    server.stop();
    let (store, _) = target.open(LOAD_CACHE_BYTES);
    let stored = store
        .passkeys()
        .credential(&template.credential_id)
        .expect("read")
        .expect("the enrolled passkey");
    let flags = login::flags(&stored);
    eprintln!("N = {n}: loading");
    let loaded = loader::load(&store, &stored, keys, n);
    drop(store);
    let vacuum = target.settle();
    let bytes = target.size();
    eprintln!(
        "N = {n}: loaded in {:.1} s, integrated in {:.1} s,{} {:.0} MB; lookups",
        loaded.load_seconds,
        loaded.integrate_seconds,
        vacuum.map_or_else(String::new, |d| format!(
            " vacuumed and checkpointed in {:.1} s,",
            d.as_secs_f64()
        )),
        bytes as f64 / 1e6
    );
    let (store, open) = target.open(SERVER_CACHE_BYTES);
    let lookups = lookup::measure(&store, n);
    drop(store);
    let l = &lookups;
    eprintln!(
        "N = {n}: store opened in {} ms; lookup p50 / p99 µs: citizen id {:.1} / {:.1}, national id {:.1} / {:.1}, credential id {:.1} / {:.1}",
        open.as_millis(),
        l.by_citizen_id.p50_us,
        l.by_citizen_id.p99_us,
        l.by_national_id.p50_us,
        l.by_national_id.p99_us,
        l.by_credential_id.p50_us,
        l.by_credential_id.p99_us
    );

    let server = target.start(&bin);
    let ready_full = server.ready;
    let idle_kib = server.peak_rss_kib();
    eprintln!(
        "N = {n}: ready in {} ms on an empty store, {} ms on the full one; idle RSS {} MiB",
        ready_empty.as_millis(),
        ready_full.as_millis(),
        report::mib(idle_kib)
    );
    let mut figures = Vec::new();
    rt.block_on(async {
        let tree = checkpoint_size(&server).await;
        let (id, secret) = server::register(&server).await;
        let series = |name| {
            eprintln!("N = {n}: {name}");
            (n, name)
        };
        let s = &server;
        figures.push(
            measured(
                s,
                series("/token client_credentials"),
                load::drive(s, Driver::Reqwest, (&id, &secret), k, measure),
            )
            .await,
        );
        let rp = Arc::new(codes::RelyingParty::set_up(s).await);
        figures.push(
            measured(
                s,
                series("/token authorization_code"),
                durable::redemption_point(s, &rp, k, measure, None),
            )
            .await,
        );
        figures.push(
            measured(
                s,
                series("passkey login (start + finish)"),
                login::login_point(s, &template.key, flags, n, k, measure),
            )
            .await,
        );
        let sealer = seal::Sealer::set_up(s).await;
        // A sealing point counts digests (each request seals a batch of them).
        figures.push(
            measured(
                s,
                series("seal digests, CAdES (batches of 100)"),
                seal::sealing_point(s, &sealer, "cades", k, measure),
            )
            .await,
        );
        figures.push(
            measured(
                s,
                series("seal digests, JAdES (batches of 100)"),
                seal::sealing_point(s, &sealer, "jades", k, measure),
            )
            .await,
        );
        figures.push(
            measured(
                s,
                series("/verify/v1 (CAdES)"),
                seal::verification_point(s, &sealer, k, measure),
            )
            .await,
        );
        figures.push(
            measured(
                s,
                series("inclusion proofs"),
                audit::proof_point(s, tree, k, measure),
            )
            .await,
        );
    });
    server.stop();
    Step {
        n,
        backend: target.backend(),
        open,
        loaded,
        bytes,
        lookups,
        ready_empty,
        ready_full,
        idle_kib,
        figures,
    }
}

fn main() {
    // reqwest's rustls needs a process provider even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sizes = env_list("SCALE_BENCH_N", &[10_000, 1_000_000]);
    let k = env_list("SCALE_BENCH_K", &[16])[0].max(1) as usize;
    let measure = std::env::var("SCALE_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(3), Duration::from_secs_f64);
    let keys = civis::crypto::KeySet::load(
        &root().join("keys-dev"),
        &root().join("keys-dev/admin-token"),
    )
    .expect("load keys-dev");
    let started = Instant::now();
    let before = raw_ecdsa();
    eprintln!(
        "raw ECDSA P-256: sign {:.0}/s, verify {:.0}/s",
        before.0, before.1
    );
    let rt = runtime();
    // PostgreSQL numbers and integrates entries more slowly (its queue, and a statement per
    // read): SCALE_BENCH_PG_N may give it smaller sizes.
    let pg_sizes: Vec<u64> = env_list("SCALE_BENCH_PG_N", &sizes)
        .into_iter()
        .filter(|&n| n > 0)
        .collect();
    // SCALE_BENCH_N=0 measures PostgreSQL only (at SCALE_BENCH_PG_N).
    let targets = sizes.iter().filter(|&&n| n > 0).map(|&n| (n, false)).chain(
        pg_sizes
            .iter()
            .filter(|_| postgres_given())
            .map(|&n| (n, true)),
    );
    let steps: Vec<Step> = targets
        .map(|target| step(target, k, measure, &keys, &rt))
        .collect();
    drop(rt);
    let after = raw_ecdsa();
    let baselines = Baselines {
        sign: before.0.max(after.0),
        verify: before.1.max(after.1),
        before,
        after,
    };
    report::print(&steps, &baselines, k, measure, started.elapsed());
}
