//! The load generator: K workers (keep-alive connections) driven for a fixed time, and the
//! client_credentials connections of four kinds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::server::{Cpu, Server, client};

/// A request without an answer after this long counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent requests sharing one HTTP/2 connection in the `h2` series.
const H2_STREAMS: usize = 16;

/// Requests in flight per connection in the pipelined series.
const PIPELINE_DEPTH: usize = 4;

/// A client that speaks HTTP/2 without TLS (prior knowledge) over one connection.
fn h2_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("reqwest HTTP/2 client")
}

/// How the load generator speaks HTTP.
#[derive(Clone, Copy, PartialEq)]
pub enum Driver {
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
    pub fn key(self) -> &'static str {
        match self {
            Self::Reqwest => "reqwest",
            Self::Raw => "raw",
            Self::Pipelined => "pipelined",
            Self::H2 => "h2",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Reqwest => "reqwest",
            Self::Raw => "raw TCP",
            Self::Pipelined => "raw TCP pipelined",
            Self::H2 => "reqwest HTTP/2",
        }
    }
}

#[derive(Clone, Default)]
pub struct Point {
    pub k: usize,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub per_second: f64,
    /// The measured time: shorter than asked when every worker ran out of work (codes).
    pub window: Duration,
    /// Authorization codes issued per second for this point (redemption series only).
    pub issued_per_second: Option<f64>,
    /// Anything that makes the point less than a full measurement.
    pub notes: Vec<String>,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub server_cpu_us: Option<f64>,
    pub client_cpu_us: Option<f64>,
    pub others: Option<f64>,
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

/// One worker of a measured point: it sends one request (or one pipelined batch) at a time.
pub trait Worker: Send + 'static {
    /// `Some(Ok(n))` when all `n` answers were right; `None` when there is nothing left to
    /// send (its authorization codes are used up).
    fn request(&mut self) -> impl Future<Output = Option<Result<usize, String>>> + Send;
}

impl Worker for Conn {
    async fn request(&mut self) -> Option<Result<usize, String>> {
        Some(self.token().await)
    }
}

impl Conn {
    /// One `POST /token` (or a pipelined batch); `Ok(n)` only when all `n` answers are a
    /// 200 with an access token.
    async fn token(&mut self) -> Result<usize, String> {
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

/// K client_credentials connections of one kind, for warm-up + `measure`.
pub async fn drive(
    server: &Server,
    driver: Driver,
    (id, secret): (&str, &str),
    k: usize,
    measure: Duration,
) -> Point {
    let addr = |i: usize| {
        server
            .url_for(i)
            .strip_prefix("http://")
            .expect("plain-http URL")
            .to_owned()
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let body = "grant_type=client_credentials";
    // The host header names the first process: both accept any.
    let raw_request = Arc::new(
        format!(
            "POST /token HTTP/1.1\r\nhost: {}\r\nauthorization: Basic {basic}\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
            addr(0),
            body.len()
        )
        .into_bytes(),
    );
    let h2_clients: Vec<reqwest::Client> =
        (0..k.div_ceil(H2_STREAMS)).map(|_| h2_client()).collect();
    let conns = (0..k)
        .map(|i| match driver {
            Driver::Reqwest => Conn::Reqwest {
                client: client(),
                url: format!("{}/token", server.url_for(i)),
                id: id.to_owned(),
                secret: secret.to_owned(),
            },
            Driver::H2 => Conn::Reqwest {
                client: h2_clients[(i / H2_STREAMS) % h2_clients.len()].clone(),
                url: format!("{}/token", server.url_for(i)),
                id: id.to_owned(),
                secret: secret.to_owned(),
            },
            Driver::Raw => Conn::Raw {
                addr: addr(i),
                request: raw_request.clone(),
                depth: 1,
                stream: None,
                buf: Vec::with_capacity(4096),
            },
            Driver::Pipelined => Conn::Raw {
                addr: addr(i),
                request: Arc::new(raw_request.repeat(PIPELINE_DEPTH)),
                depth: PIPELINE_DEPTH,
                stream: None,
                buf: Vec::with_capacity(4096),
            },
        })
        .collect();
    run_point(server, conns, crate::HTTP_WARMUP, measure).await
}

/// Runs each worker in a sequential loop for `warmup` + `measure` and counts what the
/// measured window saw. The window ends early when every worker has run out of work.
pub async fn run_point<W: Worker>(
    server: &Server,
    workers: Vec<W>,
    warmup: Duration,
    measure: Duration,
) -> Point {
    let k = workers.len();
    let from = Instant::now() + warmup;
    let until = from + measure;
    // Each worker holds a sender; when all are dropped, every worker has stopped.
    let (running, mut all_stopped) = tokio::sync::mpsc::channel::<()>(1);
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let running = running.clone();
            tokio::spawn(async move {
                let _running = running;
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut first_error = None;
                loop {
                    let sent = Instant::now();
                    if sent >= until {
                        break;
                    }
                    let outcome = match tokio::time::timeout(REQUEST_TIMEOUT, w.request()).await {
                        Ok(Some(outcome)) => outcome,
                        Ok(None) => break,
                        Err(_) => Err(format!("no answer within {REQUEST_TIMEOUT:?}")),
                    };
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
            })
        })
        .collect();
    drop(running);
    // CPU time over the measured window only.
    let pids = server.pids();
    tokio::time::sleep_until(from.into()).await;
    let cpu_from = Cpu::now(&pids);
    let _ = tokio::time::timeout_at(until.into(), all_stopped.recv()).await;
    let end = Instant::now().clamp(from, until);
    let cpu_until = Cpu::now(&pids);
    let window = end - from;
    let mut all = Vec::new();
    let mut point = Point {
        k,
        window,
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
    if window >= Duration::from_millis(10) {
        point.per_second = point.ok as f64 / window.as_secs_f64();
    }
    if !all.is_empty() {
        point.mean_ms = all.iter().sum::<Duration>().as_secs_f64() * 1000.0 / all.len() as f64;
        point.p50_ms = all[all.len() / 2].as_secs_f64() * 1000.0;
        point.p99_ms = all[(all.len() * 99 / 100).min(all.len() - 1)].as_secs_f64() * 1000.0;
    }
    let per_op = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if point.ok > 0 => Some((b - a) * 1e6 / point.ok as f64),
        _ => None,
    };
    point.server_cpu_us = per_op(cpu_from.server, cpu_until.server);
    point.client_cpu_us = per_op(cpu_from.me, cpu_until.me);
    point.others = cpu_from.others(&cpu_until, window.max(Duration::from_millis(1)));
    point
}
