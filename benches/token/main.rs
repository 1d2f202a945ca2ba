//! `cargo bench --bench token`: how close `POST /token` (client_credentials) gets to the raw
//! ES256 signing rate of ring on one core.
//!
//! 1. Baseline, in this process on one thread: `Signer::sign` of the token key on a ~430-byte JWS signing
//!    input, and `jwt::sign` (JSON + base64 + signature) of access-token-shaped
//!    claims. The raw rate is measured again after the HTTP runs, and the ratios use the
//!    higher of the two (the VM's speed drifts; the higher baseline is the stricter one).
//! 2. The real server binary (`serve --plain-http` on 127.0.0.1:0, its own temporary data
//!    directory, stderr to a file) driven over loopback by K = 1, 4, 16, 32 concurrent
//!    keep-alive connections for a fixed time after a warm-up. Only 200 answers with an
//!    access token count; anything else is reported as an error. Four clients, each against
//!    the default logging (`CIVIS_LOG=info`: one JSON line per request) and `CIVIS_LOG=warn`:
//!    - `reqwest`: a stock HTTP/1.1 client, one request at a time per connection;
//!    - `raw TCP`: a minimal hand-written HTTP/1.1 client, one request at a time (the load
//!      generator's own CPU share is smallest);
//!    - `raw TCP pipelined`: the same client writing 4 requests at once per connection
//!      (HTTP/1.1 pipelining), so the per-request system calls and cross-CPU wake-ups of
//!      loopback TCP are shared by 4 tokens on both sides;
//!    - `reqwest HTTP/2`: up to 16 concurrent requests multiplexed on one h2c connection.
//! 3. A table, and per client the ratio of its best `/token` rate to the raw signing rate
//!    (target ≥ 0.5).
//!
//! Server and load generator share the machine's cores. The table shows the CPU time each
//! process spent per token (from /proc) and how busy other processes kept the machine
//! meanwhile (a noisy neighbour makes a run worthless).
//!
//! Environment: `TOKEN_BENCH_SECONDS` (measured time per point, default 4; the signing
//! baseline always uses 3 s after 0.5 s of warm-up), `TOKEN_BENCH_K=16,32` (connection
//! counts), `TOKEN_BENCH_ONLY=raw-warn,pipelined-info` (series: `reqwest`, `raw`,
//! `pipelined`, `h2`, each `-info` or `-warn`), `TOKEN_BENCH_LOAD_THREADS` (load generator
//! threads), `TOKEN_BENCH_SERVER` (another civis binary, e.g. one built with frame pointers
//! for `perf`).

mod load;
mod server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use load::{Driver, Point, drive};
use server::{Cpu, Server, register};

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
        let cpu = Cpu::now(None);
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            for _ in 0..32 {
                op();
            }
            n += 32;
            let el = start.elapsed();
            if el >= d {
                return (n as f64 / el.as_secs_f64(), cpu.others(&Cpu::now(None), el));
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

struct Run {
    log_level: &'static str,
    driver: Driver,
    points: Vec<Point>,
    log_lines: usize,
    log_bytes: u64,
}

fn run_server(log_level: &'static str, drivers: &[Driver], measure: Duration) -> Vec<Run> {
    let server = Server::start(log_level);
    let rt = load_runtime();
    let mut runs = rt.block_on(async {
        let (id, secret) = register(&server).await;
        let mut runs = Vec::new();
        for &driver in drivers {
            let mut points = Vec::new();
            for k in concurrency() {
                let p = drive(&server, driver, (&id, &secret), k, measure).await;
                println!(
                    "  {} CIVIS_LOG={log_level} K={k:>2}: {:.0}/s ok={} errors={}",
                    driver.name(),
                    p.per_second,
                    p.ok,
                    p.errors
                );
                points.push(p);
            }
            runs.push(Run {
                log_level,
                driver,
                points,
                log_lines: 0,
                log_bytes: 0,
            });
        }
        runs
    });
    drop(rt);
    let (lines, bytes) = server.log_stats();
    for r in &mut runs {
        (r.log_lines, r.log_bytes) = (lines, bytes);
    }
    server.stop();
    runs
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

fn main() {
    // reqwest's rustls needs a process provider even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let measure = http_measure();

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
        "civis /token benchmark: {cores} cores, JWS signing input {} bytes, {:.0} s per HTTP point after {:.0} s warm-up",
        message.len(),
        measure.as_secs_f64(),
        HTTP_WARMUP.as_secs_f64()
    );

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

    let only = std::env::var("TOKEN_BENCH_ONLY").unwrap_or_default();
    let mut runs = Vec::new();
    for level in ["info", "warn"] {
        let drivers: Vec<Driver> = [Driver::Reqwest, Driver::Raw, Driver::Pipelined, Driver::H2]
            .into_iter()
            .filter(|d| {
                only.is_empty() || only.split(',').any(|o| o == format!("{}-{level}", d.key()))
            })
            .collect();
        if !drivers.is_empty() {
            runs.extend(run_server(level, &drivers, measure));
        }
    }

    // The VM's speed drifts: measure the baseline again and hold /token to the faster one.
    let (sign_after, _) = raw_sign();
    let sign = sign_before.max(sign_after);
    println!(
        "  raw sign again after the HTTP runs: {sign_after:.0}/s; ratios use the higher, {sign:.0}/s"
    );
    println!();
    println!(
        "| measurement ({cores} cores, shared by server and load) | rate /s | ÷ raw sign | mean ms | p99 ms | CPU µs/op: server | CPU µs/op: load | other procs (cores) | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| ring ES256 `sign`, 1 thread, {} B input | {sign:.0} | 1.00 | {:.3} | | {:.1} | | {} | |",
        message.len(),
        1000.0 / sign,
        1e6 / sign,
        opt(sign_others, 2)
    );
    println!(
        "| `sign_jwt` (JSON + base64 + sign), 1 thread | {sign_jwt:.0} | {:.2} | {:.3} | | {:.1} | | {} | |",
        sign_jwt / sign,
        1000.0 / sign_jwt,
        1e6 / sign_jwt,
        opt(jwt_others, 2)
    );
    for r in &runs {
        for p in &r.points {
            println!(
                "| POST /token, {}, CIVIS_LOG={}, K={} | {:.0} | {:.2} | {:.3} | {:.3} | {} | {} | {} | {} |",
                r.driver.name(),
                r.log_level,
                p.k,
                p.per_second,
                p.per_second / sign,
                p.mean_ms,
                p.p99_ms,
                opt(p.server_cpu_us, 0),
                opt(p.client_cpu_us, 0),
                opt(p.others, 2),
                p.errors
            );
        }
    }
    println!();
    let mut seen_log = Vec::new();
    for r in &runs {
        if !seen_log.contains(&r.log_level) {
            seen_log.push(r.log_level);
            println!(
                "server stderr with CIVIS_LOG={}: {} lines, {} bytes",
                r.log_level, r.log_lines, r.log_bytes
            );
        }
        for p in r.points.iter().filter(|p| p.errors > 0) {
            println!(
                "  {} CIVIS_LOG={} K={}: {} failed requests; first: {}",
                r.driver.name(),
                r.log_level,
                p.k,
                p.errors,
                p.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    println!();
    println!("cores: {cores}");
    println!(
        "raw ring ES256 signing rate (1 core):  {sign:.0}/s (before the HTTP runs {sign_before:.0}/s, after {sign_after:.0}/s)"
    );
    println!("sign_jwt rate (1 core):                {sign_jwt:.0}/s");
    println!(
        "/token ÷ raw signing at the best K, per client and log level (target ≥ {TARGET_RATIO}):"
    );
    for r in &runs {
        let Some(p) = r
            .points
            .iter()
            .max_by(|a, b| a.per_second.total_cmp(&b.per_second))
        else {
            continue;
        };
        let ratio = p.per_second / sign;
        println!(
            "  {:<18} CIVIS_LOG={:<4} K={:>2}: {:>6.0}/s  ratio {ratio:.2} {:<7}  CPU per token: server {} µs + load generator {} µs",
            r.driver.name(),
            r.log_level,
            p.k,
            p.per_second,
            if ratio >= TARGET_RATIO {
                "met"
            } else {
                "not met"
            },
            opt(p.server_cpu_us, 0),
            opt(p.client_cpu_us, 0),
        );
    }
    println!(
        "the target allows {:.0} µs of CPU per token, server and load generator together ({cores} cores ÷ ({TARGET_RATIO} × {sign:.0}/s)); one signature is {:.0} µs",
        cores as f64 * 1e6 / (TARGET_RATIO * sign),
        1e6 / sign
    );
    if runs.iter().any(|r| r.points.iter().any(|p| p.errors > 0)) {
        println!("some requests failed: see above");
    }
}
