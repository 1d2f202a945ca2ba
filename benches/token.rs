//! `cargo bench --bench token`: how close `POST /token` (client_credentials) gets to the raw
//! ES256 signing rate of ring on one core.
//!
//! 1. Baseline, in this process on one thread: `TokenKey::sign` of a ~430-byte JWS signing
//!    input, and `TokenKey::sign_jwt` (JSON + base64 + signature) of access-token-shaped
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

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const SIGN_WARMUP: Duration = Duration::from_millis(500);
const SIGN_MEASURE: Duration = Duration::from_secs(3);
const HTTP_WARMUP: Duration = Duration::from_secs(1);
const CONCURRENCY: [usize; 4] = [1, 4, 16, 32];
const TARGET_RATIO: f64 = 0.5;

fn root() -> PathBuf {
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
        // TOKEN_BENCH_SERVER runs another build (e.g. one with frame pointers, for `perf`).
        let bin = std::env::var_os("TOKEN_BENCH_SERVER")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_civis")), PathBuf::from);
        let mut child = Command::new(bin)
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

/// Concurrent requests sharing one HTTP/2 connection in the `h2` series.
const H2_STREAMS: usize = 16;

/// Requests in flight per connection in the pipelined series.
const PIPELINE_DEPTH: usize = 4;

/// A client that speaks HTTP/2 without TLS (prior knowledge) over one connection.
fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest HTTP/2 client")
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

/// How the load generator speaks HTTP.
#[derive(Clone, Copy, PartialEq)]
enum Driver {
    /// One `reqwest::Client` (keep-alive, HTTP/1.1 only) per connection.
    Reqwest,
    /// A hand-written keep-alive HTTP/1.1 loop on a tokio `TcpStream`: the cheapest possible
    /// client, to show how much of the shared CPU the load generator itself takes.
    Raw,
    /// The raw client with HTTP/1.1 pipelining: `PIPELINE_DEPTH` requests written at once,
    /// then their answers read in order. Not what OIDC clients do; it shows what the server
    /// does when the per-request system calls and wake-ups are shared.
    Pipelined,
    /// One HTTP/2 connection (h2c, prior knowledge) per 16 concurrent requests, multiplexed:
    /// what a stock client (reqwest, Go, Java) negotiates over TLS with civis (ALPN `h2`).
    H2,
}

impl Driver {
    fn key(self) -> &'static str {
        match self {
            Self::Reqwest => "reqwest",
            Self::Raw => "raw",
            Self::Pipelined => "pipelined",
            Self::H2 => "h2",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Reqwest => "reqwest",
            Self::Raw => "raw TCP",
            Self::Pipelined => "raw TCP pipelined",
            Self::H2 => "reqwest HTTP/2",
        }
    }
}

/// Snapshot of CPU seconds: the server, this process, and the whole machine (busy, steal).
#[derive(Clone, Copy, Default)]
struct Cpu {
    server: Option<f64>,
    me: Option<f64>,
    machine: Option<f64>,
}

fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    let busy = f.get(..8)?.iter().sum::<f64>() - f.get(3)? - f.get(4)?;
    Some(busy / 100.0)
}

impl Cpu {
    fn now(server_pid: Option<&str>) -> Self {
        Self {
            server: server_pid.and_then(cpu_seconds),
            me: cpu_seconds("self"),
            machine: machine_busy_seconds(),
        }
    }

    /// CPU used by everything else on the machine between `self` and `later`, in cores.
    fn others(&self, later: &Self, wall: Duration) -> Option<f64> {
        let d = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let mine = d(self.me, later.me)? + d(self.server, later.server).unwrap_or(0.0);
        Some((d(self.machine, later.machine)? - mine).max(0.0) / wall.as_secs_f64())
    }
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
    others: Option<f64>,
}

/// One keep-alive connection of either driver.
enum Conn {
    Reqwest {
        client: reqwest::Client,
        url: String,
        id: String,
        secret: String,
    },
    Raw {
        addr: String,
        /// `depth` requests back to back.
        request: Arc<Vec<u8>>,
        depth: usize,
        stream: Option<tokio::net::TcpStream>,
        buf: Vec<u8>,
    },
}

impl Conn {
    /// One `POST /token` (or a pipelined batch); `Ok(n)` only when all `n` answers are a
    /// 200 with an access token.
    async fn request(&mut self) -> Result<usize, String> {
        match self {
            Self::Reqwest {
                client,
                url,
                id,
                secret,
            } => {
                let r = client
                    .post(url.as_str())
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = r.status();
                // Read the whole body so the connection is reused.
                let b = r
                    .bytes()
                    .await
                    .map_err(|e| format!("{status}: body: {e}"))?;
                if status == 200 && b.starts_with(b"{\"access_token\":\"ey") {
                    Ok(1)
                } else {
                    Err(format!("{status}: {}", String::from_utf8_lossy(&b)))
                }
            }
            Self::Raw {
                addr,
                request,
                depth,
                stream,
                buf,
            } => {
                if stream.is_none() {
                    let s = tokio::net::TcpStream::connect(addr.as_str())
                        .await
                        .map_err(|e| format!("connect: {e}"))?;
                    s.set_nodelay(true).map_err(|e| e.to_string())?;
                    *stream = Some(s);
                }
                buf.clear();
                let result =
                    raw_exchange(stream.as_ref().expect("connected"), request, *depth, buf).await;
                if result.is_err() {
                    // Start afresh on the next request.
                    *stream = None;
                }
                result.map(|()| *depth)
            }
        }
    }
}

/// Writes `request` (`count` requests back to back) and reads `count` responses.
async fn raw_exchange(
    s: &tokio::net::TcpStream,
    request: &[u8],
    count: usize,
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let mut off = 0;
    while off < request.len() {
        s.writable().await.map_err(io)?;
        match s.try_write(&request[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    for _ in 0..count {
        read_response(s, buf).await?;
    }
    Ok(())
}

/// Reads one HTTP/1.1 response (Content-Length framed) from `s`; `buf` keeps any bytes of
/// the next one.
async fn read_response(s: &tokio::net::TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let mut need: Option<usize> = None;
    loop {
        if let Some(n) = need {
            if buf.len() >= n {
                break;
            }
        } else if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|_| "non-UTF-8 head".to_owned())?;
            let len = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
            need = Some(end + 4 + len);
            continue;
        }
        s.readable().await.map_err(io)?;
        let at = buf.len();
        buf.resize(at + 4096, 0);
        match s.try_read(&mut buf[at..]) {
            Ok(0) => {
                buf.truncate(at);
                return Err("connection closed".into());
            }
            Ok(n) => buf.truncate(at + n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => buf.truncate(at),
            Err(e) => return Err(e.to_string()),
        }
    }
    let n = need.unwrap_or_default();
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_default();
    let ok =
        buf.starts_with(b"HTTP/1.1 200 ") && buf[end + 4..n].starts_with(b"{\"access_token\":\"ey");
    let result = if ok {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&buf[..n]).into_owned())
    };
    buf.drain(..n);
    result
}

/// K connections, each a sequential keep-alive loop, for warm-up + `measure`.
async fn drive(
    server: &Server,
    driver: Driver,
    (id, secret): (&str, &str),
    k: usize,
    measure: Duration,
) -> Point {
    let addr = server
        .url
        .strip_prefix("http://")
        .expect("plain-http URL")
        .to_owned();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let body = "grant_type=client_credentials";
    let raw_request = Arc::new(
        format!(
            "POST /token HTTP/1.1\r\nhost: {addr}\r\nauthorization: Basic {basic}\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );
    let start = Instant::now();
    let from = start + HTTP_WARMUP;
    let until = from + measure;
    let mut tasks = Vec::new();
    let h2_clients: Vec<reqwest::Client> =
        (0..k.div_ceil(H2_STREAMS)).map(|_| h2_client()).collect();
    for _ in 0..k {
        let mut conn = match driver {
            Driver::Reqwest => Conn::Reqwest {
                client: client(),
                url: format!("{}/token", server.url),
                id: id.to_owned(),
                secret: secret.to_owned(),
            },
            Driver::H2 => Conn::Reqwest {
                client: h2_clients[(tasks.len() / H2_STREAMS) % h2_clients.len()].clone(),
                url: format!("{}/token", server.url),
                id: id.to_owned(),
                secret: secret.to_owned(),
            },
            Driver::Raw => Conn::Raw {
                addr: addr.clone(),
                request: raw_request.clone(),
                depth: 1,
                stream: None,
                buf: Vec::with_capacity(4096),
            },
            Driver::Pipelined => Conn::Raw {
                addr: addr.clone(),
                request: Arc::new(raw_request.repeat(PIPELINE_DEPTH)),
                depth: PIPELINE_DEPTH,
                stream: None,
                buf: Vec::with_capacity(4096),
            },
        };
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let sent = Instant::now();
                if sent >= until {
                    break;
                }
                let outcome = tokio::time::timeout(Duration::from_secs(10), conn.request())
                    .await
                    .unwrap_or_else(|_| Err("no answer within 10 s".into()));
                let done = Instant::now();
                if sent < from || done > until {
                    continue;
                }
                match outcome {
                    Ok(n) => latencies.extend(std::iter::repeat_n(done - sent, n)),
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    // CPU time over the measured window only.
    let pid = server.pid();
    tokio::time::sleep_until(from.into()).await;
    let cpu_from = Cpu::now(Some(&pid));
    tokio::time::sleep_until(until.into()).await;
    let cpu_until = Cpu::now(Some(&pid));
    let mut all = Vec::new();
    let mut point = Point {
        k,
        ..Point::default()
    };
    for t in tasks {
        let (lat, errors, err) = t.await.expect("load task");
        all.extend(lat);
        point.errors += errors;
        if point.first_error.is_none() {
            point.first_error = err;
        }
    }
    all.sort();
    point.ok = all.len() as u64;
    point.per_second = point.ok as f64 / measure.as_secs_f64();
    if !all.is_empty() {
        point.mean_ms = all.iter().sum::<Duration>().as_secs_f64() * 1000.0 / all.len() as f64;
        point.p99_ms = all[(all.len() * 99 / 100).min(all.len() - 1)].as_secs_f64() * 1000.0;
    }
    let per_token = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if point.ok > 0 => Some((b - a) * 1e6 / point.ok as f64),
        _ => None,
    };
    point.server_cpu_us = per_token(cpu_from.server, cpu_until.server);
    point.client_cpu_us = per_token(cpu_from.me, cpu_until.me);
    point.others = cpu_from.others(&cpu_until, measure);
    point
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
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": key.kid()});
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
            key.sign_jwt("at+jwt", std::hint::black_box(&claims))
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
