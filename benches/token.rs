//! `cargo bench --bench token`: how close `POST /token` (client_credentials) gets to the raw
//! ES256 signing rate of ring on one core.
//!
//! 1. Baseline, in this process on one thread: `TokenKey::sign` of a ~350-byte JWS signing
//!    input, and `TokenKey::sign_jwt` (JSON + base64 + signature) of realistic access-token
//!    claims.
//! 2. The real server binary (`serve --plain-http` on 127.0.0.1:0, its own temporary data
//!    directory) driven over loopback by K concurrent keep-alive HTTP/1.1 connections, each
//!    a sequential loop of `grant_type=client_credentials` requests, for a fixed time after
//!    a warm-up. Only 200 answers count; anything else is reported as an error. The server
//!    runs twice: with its default logging (`CIVIS_LOG=info`, one JSON line per request on
//!    stderr, written to a file here) and with `CIVIS_LOG=warn`.
//! 3. A table and the ratio best `/token` throughput ÷ raw signing rate (target ≥ 0.5).
//!
//! Server and load generator share the machine's cores; the table shows how many, and the
//! CPU time each process spent per token (from /proc) to show where the time goes.
//!
//! `TOKEN_BENCH_SECONDS` overrides the measured duration per point (default 5; the signing
//! baseline uses 3).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const SIGN_WARMUP: Duration = Duration::from_millis(500);
const SIGN_MEASURE: Duration = Duration::from_secs(3);
const HTTP_WARMUP: Duration = Duration::from_secs(1);
const CONCURRENCY: [usize; 3] = [1, 4, 16];
const TARGET_RATIO: f64 = 0.5;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn http_measure() -> Duration {
    let secs = std::env::var("TOKEN_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(5.0);
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
fn rate(mut op: impl FnMut()) -> f64 {
    let run = |op: &mut dyn FnMut(), d: Duration| {
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            for _ in 0..32 {
                op();
            }
            n += 32;
            let el = start.elapsed();
            if el >= d {
                return n as f64 / el.as_secs_f64();
            }
        }
    };
    run(&mut op, SIGN_WARMUP);
    run(&mut op, SIGN_MEASURE)
}

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

struct Server {
    child: Child,
    url: String,
    log: PathBuf,
    _data: tempfile::TempDir,
}

impl Server {
    fn start(log_level: &str) -> Self {
        let data = tempfile::tempdir().expect("temporary directory");
        let log = data.path().join("server.stderr");
        let log_file = std::fs::File::create(&log).expect("server log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_civis"))
            .current_dir(root())
            .env_remove("CIVIS_LISTEN")
            .env_remove("CIVIS_DATA_DIR")
            .env_remove("CIVIS_ISSUER")
            .env_remove("CIVIS_PLAIN_HTTP")
            .env_remove("CIVIS_CONFIG")
            .env("CIVIS_LOG", log_level)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--plain-http",
                "--data-dir",
            ])
            .arg(data.path().join("store"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // A file never fills up, so the server never blocks on its log.
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("start civis");
        let out = child.stdout.take().expect("stdout pipe");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let mut server = Self {
            child,
            url: String::new(),
            log,
            _data: data,
        };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                server.url = line
                    .strip_prefix("listening on ")
                    .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
                    .to_owned();
            }
            Err(_) => {
                let err = std::fs::read_to_string(&server.log).unwrap_or_default();
                panic!("civis did not start within 30 s:\n{err}");
            }
        }
        server
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn log_stats(&self) -> (usize, u64) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        (text.lines().count(), text.len() as u64)
    }

    /// SIGTERM, then wait up to 30 s (SIGKILL after that).
    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.pid()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("warning: civis exited with {status}");
                    }
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    eprintln!("warning: civis ignored SIGTERM for 30 s; killing it");
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

/// Registers the confidential client_credentials client; returns (id, secret).
async fn register(server: &Server) -> (String, String) {
    let admin =
        std::fs::read_to_string(root().join("keys-dev/admin-token")).expect("keys-dev/admin-token");
    let resp = client()
        .post(format!("{}/admin/v1/clients", server.url))
        .bearer_auth(admin.trim())
        .json(&json!({"name": "bench", "redirect_uris": [], "grant_types": ["client_credentials"], "scope": "seal"}))
        .send()
        .await
        .expect("POST /admin/v1/clients");
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or_default();
    assert_eq!(status, 201, "client registration failed: {body}");
    let id = body["client_id"].as_str().expect("client_id").to_owned();
    let secret = body["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();
    (id, secret)
}

#[derive(Default)]
struct Point {
    k: usize,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    per_second: f64,
    mean_ms: f64,
    p99_ms: f64,
    server_cpu_us: Option<f64>,
    client_cpu_us: Option<f64>,
}

/// K connections, each a sequential keep-alive loop, for warm-up + `measure`.
async fn drive(server: &Server, id: &str, secret: &str, k: usize, measure: Duration) -> Point {
    let url = format!("{}/token", server.url);
    let start = Instant::now();
    let from = start + HTTP_WARMUP;
    let until = from + measure;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..k {
        let (client, url, id, secret) = (client(), url.clone(), id.to_owned(), secret.to_owned());
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut first_error = None;
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let resp = client
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let outcome = match resp {
                    Ok(r) => {
                        let status = r.status();
                        // Read the whole body so the connection is reused.
                        match r.bytes().await {
                            Ok(b) if status == 200 && b.starts_with(b"{\"access_token\":\"ey") => {
                                Ok(())
                            }
                            Ok(b) => Err(format!("{status}: {}", String::from_utf8_lossy(&b))),
                            Err(e) => Err(format!("{status}: body: {e}")),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                let done = Instant::now();
                if sent < from || done > until {
                    continue;
                }
                match outcome {
                    Ok(()) => latencies.push(done - sent),
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, first_error)
        }));
    }
    // CPU time of both processes over the measured window only.
    let pid = server.pid();
    tokio::time::sleep_until(from.into()).await;
    let cpu_from = (cpu_seconds(&pid), cpu_seconds("self"));
    tokio::time::sleep_until(until.into()).await;
    let cpu_until = (cpu_seconds(&pid), cpu_seconds("self"));
    let mut all = Vec::new();
    let mut point = Point {
        k,
        ..Point::default()
    };
    for t in tasks {
        let (lat, err) = t.await.expect("load task");
        all.extend(lat);
        if point.first_error.is_none() {
            point.first_error = err;
        }
    }
    all.sort();
    point.ok = all.len() as u64;
    point.errors = errors.load(Ordering::Relaxed);
    point.per_second = point.ok as f64 / measure.as_secs_f64();
    if !all.is_empty() {
        point.mean_ms = all.iter().sum::<Duration>().as_secs_f64() * 1000.0 / all.len() as f64;
        point.p99_ms = all[(all.len() * 99 / 100).min(all.len() - 1)].as_secs_f64() * 1000.0;
    }
    let per_token = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if point.ok > 0 => Some((b - a) * 1e6 / point.ok as f64),
        _ => None,
    };
    point.server_cpu_us = per_token(cpu_from.0, cpu_until.0);
    point.client_cpu_us = per_token(cpu_from.1, cpu_until.1);
    point
}

fn run_server(log_level: &str, measure: Duration) -> (Vec<Point>, (usize, u64)) {
    let server = Server::start(log_level);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let points = rt.block_on(async {
        let (id, secret) = register(&server).await;
        let mut points = Vec::new();
        for k in CONCURRENCY {
            points.push(drive(&server, &id, &secret, k, measure).await);
        }
        points
    });
    drop(rt);
    let logs = server.log_stats();
    server.stop();
    (points, logs)
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.0}"))
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
    let tokens = keys.tokens();
    let key = tokens.signing(time::OffsetDateTime::now_utc());
    let claims = claims();
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid()});
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header")),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims"))
    );
    println!(
        "civis /token benchmark: {cores} cores, signing input {} bytes, {:.0} s per HTTP point after {:.0} s warm-up",
        message.len(),
        measure.as_secs_f64(),
        HTTP_WARMUP.as_secs_f64()
    );

    let sign = rate(|| {
        std::hint::black_box(
            key.sign(std::hint::black_box(message.as_bytes()))
                .expect("sign"),
        );
    });
    let sign_jwt = rate(|| {
        std::hint::black_box(
            key.sign_jwt("at+jwt", std::hint::black_box(&claims))
                .expect("sign_jwt"),
        );
    });
    println!("raw sign: {sign:.0}/s, sign_jwt: {sign_jwt:.0}/s");

    let mut runs = Vec::new();
    for level in ["info", "warn"] {
        let (points, logs) = run_server(level, measure);
        for p in &points {
            println!(
                "CIVIS_LOG={level} K={:>2}: {:.0}/s ok={} errors={}",
                p.k, p.per_second, p.ok, p.errors
            );
        }
        runs.push((level, points, logs));
    }

    println!();
    println!(
        "| measurement ({cores} cores shared by server and load) | rate /s | ÷ raw sign | mean ms | p99 ms | server CPU µs/token | client CPU µs/token | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| ring ES256 sign, 1 thread ({} B input) | {sign:.0} | 1.00 | {:.3} | | | | |",
        message.len(),
        1000.0 / sign
    );
    println!(
        "| sign_jwt (JSON + base64 + sign), 1 thread | {sign_jwt:.0} | {:.2} | {:.3} | | | | |",
        sign_jwt / sign,
        1000.0 / sign_jwt
    );
    let mut best: Option<(f64, String)> = None;
    let mut failed = false;
    for (level, points, _) in &runs {
        for p in points {
            println!(
                "| POST /token client_credentials, CIVIS_LOG={level}, K={} | {:.0} | {:.2} | {:.3} | {:.3} | {} | {} | {} |",
                p.k,
                p.per_second,
                p.per_second / sign,
                p.mean_ms,
                p.p99_ms,
                opt(p.server_cpu_us),
                opt(p.client_cpu_us),
                p.errors
            );
            if p.errors > 0 {
                failed = true;
            }
            if best.as_ref().is_none_or(|(b, _)| p.per_second > *b) {
                best = Some((p.per_second, format!("CIVIS_LOG={level}, K={}", p.k)));
            }
        }
    }
    println!();
    for (level, points, (lines, bytes)) in &runs {
        let total: u64 = points.iter().map(|p| p.ok + p.errors).sum();
        println!(
            "server stderr with CIVIS_LOG={level}: {lines} lines, {bytes} bytes (≥ {total} requests measured)"
        );
        for p in points.iter().filter(|p| p.errors > 0) {
            println!(
                "  K={}: {} non-200 answers; first: {}",
                p.k,
                p.errors,
                p.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    let default_best = runs
        .first()
        .map(|(_, ps, _)| ps.iter().map(|p| p.per_second).fold(0.0, f64::max))
        .unwrap_or(0.0);
    let (best_rate, best_at) = best.unwrap_or((0.0, "none".into()));
    let ratio = best_rate / sign;
    println!();
    println!("cores: {cores}");
    println!("raw ring ES256 signing rate (1 core): {sign:.0}/s");
    println!("sign_jwt rate (1 core): {sign_jwt:.0}/s");
    println!(
        "best /token throughput: {best_rate:.0}/s ({best_at}); with default logging: {default_best:.0}/s (ratio {:.2})",
        default_best / sign
    );
    println!(
        "ratio best /token ÷ raw signing: {ratio:.2} (target ≥ {TARGET_RATIO}) → {}",
        if ratio >= TARGET_RATIO {
            "MET"
        } else {
            "NOT MET"
        }
    );
    if failed {
        println!("non-200 answers were seen: see above");
    }
}
