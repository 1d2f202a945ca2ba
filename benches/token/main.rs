//! `cargo bench --bench token`: how close `POST /token` (client_credentials) gets to the raw
//! ES256 signing rate of ring on one core, and how fast the durable writes are (code
//! redemptions and citizen registrations), optionally against an earlier server binary.
//!
//! 1. Baseline, in this process on one thread: `Signer::sign` of the token key on a ~430-byte JWS signing
//!    input, and `jwt::sign` (JSON + base64 + signature) of access-token-shaped
//!    claims. The raw rate is measured again after the HTTP runs, and the ratios use the
//!    higher of the two (the VM's speed drifts; the higher baseline is the stricter one).
//! 2. The real server binary (`serve --plain-http` on 127.0.0.1:0, a fresh temporary data
//!    directory per run, stderr to a file) driven over loopback by K = 1, 4, 16, 32
//!    concurrent keep-alive connections for a fixed time after a warm-up. Only the right
//!    answers count; anything else is reported as an error. Each series runs against the
//!    default logging (`CIVIS_LOG=info`: one JSON line per request) and `CIVIS_LOG=warn`:
//!    - `POST /token` client_credentials with four clients:
//!      - `reqwest`: a stock HTTP/1.1 client, one request at a time per connection;
//!      - `raw`: a minimal hand-written HTTP/1.1 client, one request at a time (the load
//!        generator's own CPU share is smallest);
//!      - `pipelined`: the same client writing 4 requests at once per connection (HTTP/1.1
//!        pipelining), so the per-request system calls and cross-CPU wake-ups of loopback
//!        TCP are shared by 4 tokens on both sides;
//!      - `h2`: up to 16 concurrent requests multiplexed on one h2c connection (reqwest).
//!    - `redeem`: `POST /token` authorization_code with PKCE S256 (reqwest, HTTP/1.1); a 200
//!      with an access token counts. The codes come from a citizen logged in once with the
//!      integration tests' software passkey; before each point a batch sized from a short
//!      pilot is issued (codes live 60 s) and each code is redeemed once.
//!    - `register`: `POST /admin/v1/citizens` with the admin token and a new national_id
//!      each time (reqwest, HTTP/1.1); a 201 counts.
//!
//!    Redemptions and registrations are acknowledged only once flushed to disk: their rate
//!    as K grows shows whether concurrent requests share flushes (group commit).
//! 3. A table, per client_credentials client the ratio of its best `/token` rate to the raw
//!    signing rate (target ≥ 0.5), and with `TOKEN_BENCH_BEFORE` after ÷ before per series.
//!
//! Server and load generator share the machine's cores. The table shows the CPU time each
//! process spent per operation (from /proc) and how busy other processes kept the machine
//! meanwhile (a noisy neighbour makes a run worthless).
//!
//! Environment:
//! - `TOKEN_BENCH_SECONDS`: measured time per point (default 4; the signing baseline always
//!   uses 3 s after 0.5 s of warm-up);
//! - `TOKEN_BENCH_K=16,32`: connection counts;
//! - `TOKEN_BENCH_ONLY=raw-warn,redeem-info`: series `reqwest`, `raw`, `pipelined`, `h2`,
//!   `dpop` (client_credentials with a DPoP proof per request, compared with `reqwest`),
//!   `redeem`, `register`, `seal-cades`, `seal-jades`, `verify`, `proof`, each `-info` or
//!   `-warn` (default: all twenty-two); the signing series are in `seal.rs` (digests sealed per
//!   second in batches of 100, verifications per second, the server's peak memory);
//! - `TOKEN_BENCH_BEFORE=/path/to/civis`: an earlier build, measured too; each series
//!   alternates the two binaries in rounds (before, after, then after, before: a drift that
//!   is linear in time favours neither) and the report prints after ÷ before (issue 11's
//!   goal compares with this tree built after `git apply benches/token/audit-off.patch`);
//! - `TOKEN_BENCH_DATABASE_URL=postgres://…/postgres`: instead, this build on sled and on
//!   PostgreSQL (a fresh database on that cluster for every run), and as two processes on
//!   one fresh database (connections alternate between them); each ÷ each per series;
//! - `TOKEN_BENCH_LOG_WRITERS=1`: instead, this build twice, writing its log through
//!   tracing-appender (`CIVIS_LOG_WRITER=appender`, "before") and through our batching sink
//!   ("after"), so the report's after ÷ before is sink ÷ appender;
//! - `TOKEN_BENCH_ROUNDS`: runs per series and binary (default 2 with `TOKEN_BENCH_BEFORE`,
//!   else 1); rates are means over the rounds, each round's rate is shown;
//! - `TOKEN_BENCH_LOAD_THREADS`: load generator threads;
//! - `TOKEN_BENCH_SERVER`: another civis binary as "this build" (e.g. one built with frame
//!   pointers for `perf`).

// The integration tests' software authenticator; the bench uses only part of it.
mod audit;
#[allow(dead_code)]
#[path = "../../tests/it/authenticator.rs"]
mod authenticator;
mod codes;
mod dpop;
mod durable;
mod load;
mod report;
mod seal;
mod series;
mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use report::Baseline;
use series::{Bin, Series};
use server::Cpu;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const SIGN_WARMUP: Duration = Duration::from_millis(500);
const SIGN_MEASURE: Duration = Duration::from_secs(3);
pub const HTTP_WARMUP: Duration = Duration::from_secs(1);
const CONCURRENCY: [usize; 4] = [1, 4, 16, 32];
const TARGET_RATIO: f64 = 0.5;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `TOKEN_BENCH_K=16,64` overrides the connection counts.
fn concurrency() -> Vec<usize> {
    std::env::var("TOKEN_BENCH_K")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|k| k.trim().parse().ok())
                .collect::<Vec<usize>>()
        })
        .filter(|ks| !ks.is_empty())
        .unwrap_or_else(|| CONCURRENCY.to_vec())
}

fn http_measure() -> Duration {
    let secs = std::env::var("TOKEN_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(4.0);
    Duration::from_secs_f64(secs)
}

/// [before, after] with `TOKEN_BENCH_BEFORE`; with `TOKEN_BENCH_LOG_WRITERS=1` this build
/// twice, tracing-appender's writer as "before" and our batching sink as "after"; else
/// [this build].
fn binaries() -> Vec<Bin> {
    let this = server::this_build();
    if std::env::var("TOKEN_BENCH_LOG_WRITERS").as_deref() == Ok("1") {
        return vec![
            Bin {
                label: "appender",
                path: this.clone(),
                env: vec![("CIVIS_LOG_WRITER", "appender")],
            },
            Bin {
                label: "sink",
                path: this,
                env: Vec::new(),
            },
        ];
    }
    if std::env::var_os("TOKEN_BENCH_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        // The same build on sled, on PostgreSQL, and as two processes on PostgreSQL, each
        // run on a fresh database (server.rs).
        return vec![
            Bin {
                label: "sled",
                path: this.clone(),
                env: Vec::new(),
            },
            Bin {
                label: "postgres",
                path: this.clone(),
                env: vec![(server::FRESH_DATABASE, "1")],
            },
            Bin {
                label: "pg ×2",
                path: this,
                env: vec![(server::FRESH_DATABASE, "1"), (server::TWO_PROCESSES, "1")],
            },
        ];
    }
    match std::env::var_os("TOKEN_BENCH_BEFORE").filter(|v| !v.is_empty()) {
        Some(before) => vec![
            Bin {
                label: "before",
                path: PathBuf::from(before)
                    .canonicalize()
                    .unwrap_or_else(|e| panic!("TOKEN_BENCH_BEFORE: {e}")),
                env: Vec::new(),
            },
            Bin {
                label: "after",
                path: this,
                env: Vec::new(),
            },
        ],
        None => vec![Bin {
            label: "this build",
            path: this,
            env: Vec::new(),
        }],
    }
}

fn rounds(bins: &[Bin]) -> usize {
    std::env::var("TOKEN_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(if bins.len() > 1 { 2 } else { 1 })
}

/// Claims shaped like the server's client_credentials access token.
fn claims() -> Value {
    json!({
        "iss": "http://localhost:8443",
        "sub": "c_5f2b8e0a9d4c4e1f8a7b6c5d4e3f2a1b",
        "aud": "http://localhost:8443",
        "exp": 1_767_225_900_i64,
        "iat": 1_767_225_600_i64,
        "jti": "Jm4yQ0x3b1pXc2VQdGhYaFJ2bU5rQQ",
        "client_id": "c_5f2b8e0a9d4c4e1f8a7b6c5d4e3f2a1b",
        "scope": "seal",
    })
}

/// Calls `op` on this thread for `SIGN_WARMUP`, then counts calls for `SIGN_MEASURE`.
/// Returns calls per second and the CPU (in cores) other processes used meanwhile.
fn rate(mut op: impl FnMut()) -> (f64, Option<f64>) {
    let run = |op: &mut dyn FnMut(), d: Duration| {
        let cpu = Cpu::now(&[]);
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            for _ in 0..32 {
                op();
            }
            n += 32;
            let el = start.elapsed();
            if el >= d {
                return (n as f64 / el.as_secs_f64(), cpu.others(&Cpu::now(&[]), el));
            }
        }
    };
    run(&mut op, SIGN_WARMUP);
    run(&mut op, SIGN_MEASURE)
}

/// The load generator's runtime: `TOKEN_BENCH_LOAD_THREADS` worker threads (default: one per
/// core; 1 means a single-threaded runtime).
fn load_runtime() -> tokio::runtime::Runtime {
    let threads = std::env::var("TOKEN_BENCH_LOAD_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0);
    let mut b = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    b.enable_all().build().expect("tokio runtime")
}

fn main() {
    // reqwest's rustls needs a process provider even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let measure = http_measure();
    let bins = binaries();
    let rounds = rounds(&bins);
    let only = std::env::var("TOKEN_BENCH_ONLY").unwrap_or_default();
    let selected: Vec<Series> = Series::all()
        .into_iter()
        .filter(|s| only.is_empty() || only.split(',').any(|o| o.trim() == s.key()))
        .collect();
    if selected.is_empty() {
        let names: Vec<String> = Series::all().into_iter().map(Series::key).collect();
        eprintln!(
            "TOKEN_BENCH_ONLY={only:?} selects no series; known: {}",
            names.join(", ")
        );
        std::process::exit(2);
    }

    let keys = civis::crypto::KeySet::load(
        &root().join("keys-dev"),
        &root().join("keys-dev/admin-token"),
    )
    .expect("load keys-dev");
    // The key that signs now (token.key unless a rotated key has become active).
    let tokens = keys.tokens();
    let key = tokens.signing(time::OffsetDateTime::now_utc());
    let claims = claims();
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.key_id()});
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header")),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims"))
    );
    println!(
        "civis /token benchmark: {cores} cores, JWS signing input {} bytes, {:.0} s per HTTP point after {:.0} s warm-up, {rounds} round(s) per series and binary",
        message.len(),
        measure.as_secs_f64(),
        HTTP_WARMUP.as_secs_f64()
    );
    for b in &bins {
        println!("  server [{}]: {}", b.label, b.path.display());
    }

    let raw_sign = || {
        rate(|| {
            std::hint::black_box(
                key.sign(std::hint::black_box(message.as_bytes()))
                    .expect("sign"),
            );
        })
    };
    let (sign_before, sign_others) = raw_sign();
    let (sign_jwt, jwt_others) = rate(|| {
        std::hint::black_box(
            civis::crypto::jwt::sign(key, "at+jwt", std::hint::black_box(&claims))
                .expect("sign_jwt"),
        );
    });
    println!("  raw sign {sign_before:.0}/s, sign_jwt {sign_jwt:.0}/s");

    let mut runs = Vec::new();
    for &s in &selected {
        for round in 0..rounds {
            // Before, after; then after, before: alternate which binary goes first.
            let mut order: Vec<usize> = (0..bins.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for bin in order {
                runs.push(series::run(s, &bins, bin, round, measure));
            }
        }
    }

    // The VM's speed drifts: measure the baseline again and hold /token to the faster one.
    let (sign_after, _) = raw_sign();
    let sign = sign_before.max(sign_after);
    println!(
        "  raw sign again after the HTTP runs: {sign_after:.0}/s; ratios use the higher, {sign:.0}/s"
    );
    let baseline = Baseline {
        cores,
        input_len: message.len(),
        sign,
        sign_before,
        sign_after,
        sign_jwt,
        sign_others,
        jwt_others,
    };
    report::print(&runs, &bins, &selected, &baseline);
}
