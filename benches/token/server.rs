//! The civis server under test (a child process), CPU time from /proc, and registering the
//! bench's client.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::root;

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f = stat_fields(&stat);
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

/// The fields of a /proc `stat` line after the parenthesised command name: state is the
/// first (field 3 of proc(5)), utime the twelfth (field 14), stime the thirteenth.
pub fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect())
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub log: PathBuf,
    pub _data: tempfile::TempDir,
    /// A second process of the same deployment (same database and issuer), with
    /// [`TWO_PROCESSES`]: the load's connections alternate between the two.
    pub peer: Option<Box<Server>>,
    /// From spawning the process to its ready line.
    pub ready: Duration,
}

/// The binary under test: `TOKEN_BENCH_SERVER` (another build, e.g. one with frame pointers
/// for `perf`) or this package's `civis`, built by `cargo bench` in the bench profile.
pub fn this_build() -> PathBuf {
    std::env::var_os("TOKEN_BENCH_SERVER")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_civis")), PathBuf::from)
}

/// A server environment marker: start it on a fresh PostgreSQL database of the cluster at
/// `TOKEN_BENCH_DATABASE_URL` instead of a sled data dir.
pub const FRESH_DATABASE: &str = "TOKEN_BENCH_FRESH_DATABASE";

/// Creates an empty database on the bench's cluster; returns its URL. On a thread of its
/// own: the synchronous client may not run inside the load generator's runtime.
pub fn fresh_database() -> String {
    std::thread::spawn(create_database)
        .join()
        .expect("creating the bench database")
}

/// A server environment marker (with [`FRESH_DATABASE`]): start a second process on the
/// same database, as a deployment of two behind a load balancer.
pub const TWO_PROCESSES: &str = "TOKEN_BENCH_TWO_PROCESSES";

fn create_database() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    // The scale bench names its cluster in its own variable.
    let admin = std::env::var("TOKEN_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("SCALE_BENCH_DATABASE_URL"))
        .expect("TOKEN_BENCH_DATABASE_URL or SCALE_BENCH_DATABASE_URL");
    let name = format!(
        "civis_bench_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let mut c = postgres::Client::connect(&admin, postgres::NoTls).expect("bench cluster");
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create bench database");
    let mut url = url::Url::parse(&admin).expect("a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

impl Server {
    /// Starts `bin` with a fresh data directory, so every measured run begins from an empty
    /// store.
    pub fn start(bin: &Path, log_level: &str, env: &[(&str, &str)]) -> Self {
        let has = |marker: &str| env.iter().any(|(k, _)| *k == marker);
        let database = has(FRESH_DATABASE).then(fresh_database);
        let mut server = Self::spawn(bin, log_level, env, database.as_deref(), None, None);
        if has(TWO_PROCESSES) {
            let origin = server.origin();
            let peer = Self::spawn(
                bin,
                log_level,
                env,
                database.as_deref(),
                Some(&origin),
                None,
            );
            server.peer = Some(Box::new(peer));
        }
        server
    }

    /// Starts `bin` on the sled data directory `store` (kept when the server stops).
    #[allow(dead_code)] // used by the scale bench, which shares this file
    pub fn start_on(bin: &Path, log_level: &str, env: &[(&str, &str)], store: &Path) -> Self {
        Self::spawn(bin, log_level, env, None, None, Some(store))
    }

    /// Starts `bin` on the PostgreSQL database at `url`.
    #[allow(dead_code)] // used by the scale bench, which shares this file
    pub fn start_on_database(bin: &Path, log_level: &str, env: &[(&str, &str)], url: &str) -> Self {
        Self::spawn(bin, log_level, env, Some(url), None, None)
    }

    fn spawn(
        bin: &Path,
        log_level: &str,
        env: &[(&str, &str)],
        database: Option<&str>,
        issuer: Option<&str>,
        store: Option<&Path>,
    ) -> Self {
        let data = tempfile::tempdir().expect("temporary directory");
        let store = store.map_or_else(|| data.path().join("store"), Path::to_path_buf);
        let log = data.path().join("server.stderr");
        let log_file = std::fs::File::create(&log).expect("server log file");
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .current_dir(root())
            .env_remove("CIVIS_LISTEN")
            .env_remove("CIVIS_DATA_DIR")
            .env_remove("CIVIS_ISSUER")
            .env_remove("CIVIS_PLAIN_HTTP")
            .env_remove("CIVIS_CONFIG")
            .env("CIVIS_LOG", log_level)
            .envs(env.iter().copied())
            .envs(database.map(|url| ("CIVIS_DATABASE_URL", url)))
            .envs(issuer.map(|url| ("CIVIS_ISSUER", url)))
            // One client makes all the tokens: no per-client quota (an environment
            // variable, which builds from before the quota ignore).
            .env("CIVIS_CLIENT_RATE_PER_SECOND", "0")
            // All load comes from one loopback address: lift the per-network throttles
            // (authorization requests are limited per address since issue 8).
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--plain-http",
                "--throttle-burst",
                "1000000000",
                "--throttle-per-minute",
                "1000000000",
                "--data-dir",
            ])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // A file never fills up, so the server never blocks on its log.
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
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
            peer: None,
            ready: Duration::ZERO,
        };
        // sled rebuilds its page table at open: about 1 s per 10⁶ citizens.
        match rx.recv_timeout(Duration::from_secs(300)) {
            Ok(line) => {
                server.ready = spawned.elapsed();
                server.url = line
                    .strip_prefix("listening on ")
                    .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
                    .to_owned();
            }
            Err(_) => {
                let err = std::fs::read_to_string(&server.log).unwrap_or_default();
                panic!("civis did not start within 300 s:\n{err}");
            }
        }
        server
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// The process ids of the deployment (with its peer).
    pub fn pids(&self) -> Vec<String> {
        std::iter::once(self.pid())
            .chain(self.peer.as_ref().map(|p| p.pid()))
            .collect()
    }

    /// The base URL the `i`th connection of a point uses: with a peer, every other one
    /// goes to it.
    pub fn url_for(&self, i: usize) -> &str {
        match &self.peer {
            Some(peer) if i % 2 == 1 => &peer.url,
            _ => &self.url,
        }
    }

    /// The server's public origin, its default issuer (`http://localhost:PORT`): WebAuthn
    /// ceremonies are bound to it, while requests still go to 127.0.0.1.
    pub fn origin(&self) -> String {
        self.url.replacen("127.0.0.1", "localhost", 1)
    }

    pub fn log_stats(&self) -> (usize, u64) {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        (text.lines().count(), text.len() as u64)
    }

    /// The server's peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Starts a new peak: the kernel resets `VmHWM` to the current resident size.
    #[allow(dead_code)] // used by the scale bench, which shares this file
    pub fn reset_peak_rss(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5");
    }

    /// SIGTERM, then wait up to 30 s (SIGKILL after that).
    pub fn stop(mut self) {
        if let Some(peer) = self.peer.take() {
            peer.stop();
        }
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

    /// For a bench that fails while the server still runs (it stopped answering): each
    /// thread's name, state and kernel wait channel on stderr, and every thread's backtrace
    /// (`gdb`, when installed) in a file that outlives the server's temporary directory.
    fn dump_threads(&self) {
        let pid = self.pid();
        let mut summary = String::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let dir = task.path();
                let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
                let stat = read("stat");
                summary.push_str(&format!(
                    "  {} {:<16} state {} wchan {}\n",
                    task.file_name().to_string_lossy(),
                    read("comm").trim(),
                    stat_fields(&stat).first().unwrap_or(&"?"),
                    read("wchan").trim(),
                ));
            }
        }
        eprintln!("server still running; its threads:\n{summary}");
        let out = std::env::temp_dir().join(format!("civis-threads-{pid}.txt"));
        let dumped = Command::new("gdb")
            .args(["-p", &pid, "-batch", "-ex", "thread apply all bt"])
            .stdin(Stdio::null())
            .output();
        match dumped {
            Ok(o) if std::fs::write(&out, &o.stdout).is_ok() => {
                eprintln!("every thread's backtrace (gdb): {}", out.display());
            }
            _ => eprintln!("no backtraces (gdb not installed or refused)"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let exited = self.child.try_wait();
        let failing = std::thread::panicking();
        if let Ok(None) = exited {
            if failing {
                self.dump_threads();
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // A bench that fails (a panic unwinds through here) shows how the server ended and
        // the end of its log, which goes with its temporary directory.
        if failing {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            eprintln!("server {exited:?} (None: still running); the end of its log:\n{tail}");
        }
    }
}

/// The development admin token.
pub fn admin_token() -> String {
    std::fs::read_to_string(root().join("keys-dev/admin-token"))
        .expect("keys-dev/admin-token")
        .trim()
        .to_owned()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

/// Registers the confidential client_credentials client; returns (id, secret).
pub async fn register(server: &Server) -> (String, String) {
    let resp = client()
        .post(format!("{}/admin/v1/clients", server.url))
        .bearer_auth(admin_token())
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

/// Snapshot of CPU seconds: the server (its processes together), this process, and the
/// whole machine (busy, steal).
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    pub server: Option<f64>,
    pub me: Option<f64>,
    pub machine: Option<f64>,
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
    pub fn now(server_pids: &[String]) -> Self {
        let server = (!server_pids.is_empty())
            .then(|| {
                server_pids
                    .iter()
                    .map(|p| cpu_seconds(p))
                    .sum::<Option<f64>>()
            })
            .flatten();
        Self {
            server,
            me: cpu_seconds("self"),
            machine: machine_busy_seconds(),
        }
    }

    /// CPU used by everything else on the machine between `self` and `later`, in cores.
    pub fn others(&self, later: &Self, wall: Duration) -> Option<f64> {
        let d = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let mine = d(self.me, later.me)? + d(self.server, later.server).unwrap_or(0.0);
        Some((d(self.machine, later.machine)? - mine).max(0.0) / wall.as_secs_f64())
    }
}
