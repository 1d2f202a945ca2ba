//! Starting and stopping the real server, and HTTP clients that trust only the dev CA.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Repository root (where keys-dev/ lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The development admin token.
pub fn admin_token() -> String {
    std::fs::read_to_string(root().join("keys-dev/admin-token"))
        .unwrap()
        .trim()
        .to_owned()
}

/// A running `civis serve`.
pub struct Server {
    child: Child,
    /// Base URL from the ready line, with `localhost` for the host (TLS name).
    pub url: String,
    /// Everything the server wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
}

/// How to start the server.
#[derive(Clone, Default)]
pub struct Opts {
    pub plain_http: bool,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Opts {
    /// Plain HTTP (`--plain-http`), nothing else changed.
    pub fn plain() -> Self {
        Self {
            plain_http: true,
            ..Self::default()
        }
    }

    /// With these command-line arguments added.
    pub fn with_args<S: ToString>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args.extend(args.into_iter().map(|a| a.to_string()));
        self
    }

    /// With `/metrics` served on its own listener (`--metrics-listen`) at the address
    /// returned, a free loopback port.
    pub fn with_metrics(self) -> (Self, String) {
        let addr = free_addr();
        let opts = self.with_args(["--metrics-listen", addr.as_str()]);
        (opts, addr)
    }

    /// With this environment variable set.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// A loopback address with a port that was free a moment ago (bound, read and released;
/// another process taking it in between is unlikely enough for tests).
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `civis keys init --dir dir`: a fresh, private key set.
pub fn keys_init(dir: &Path) -> std::process::Output {
    civis()
        .args(["keys", "init", "--dir"])
        .arg(dir)
        .output()
        .unwrap()
}

/// The `civis` command with the repository root as working directory.
pub fn civis() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_civis"));
    cmd.current_dir(root())
        .env_remove("CIVIS_LISTEN")
        .env_remove("CIVIS_DATA_DIR")
        .env_remove("CIVIS_ISSUER")
        .env_remove("CIVIS_PLAIN_HTTP")
        .env_remove("CIVIS_CONFIG")
        .env("CIVIS_LOG", "info");
    cmd
}

impl Server {
    /// Starts on a free port with `data_dir`, waiting for the ready line.
    pub fn start(data_dir: &Path, opts: Opts) -> Self {
        Self::try_start(data_dir, opts)
            .unwrap_or_else(|(status, err)| panic!("server did not start ({status:?}):\n{err}"))
    }

    /// Like [`Server::start`] but returns the exit status and stderr if it does not start.
    pub fn try_start(data_dir: &Path, opts: Opts) -> Result<Self, (Option<ExitStatus>, String)> {
        let mut cmd = civis();
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir);
        if opts.plain_http {
            cmd.arg("--plain-http");
        }
        cmd.args(&opts.args);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    /// Spawns a prepared command and waits for its ready line.
    pub fn spawn(mut cmd: Command) -> Result<Self, (Option<ExitStatus>, String)> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let url = line
                    .strip_prefix("listening on ")
                    .unwrap_or_else(|| panic!("unexpected ready line {line:?}"))
                    .replace("127.0.0.1", "localhost");
                Ok(Self { child, url, stderr })
            }
            Err(_) => {
                let status = wait_timeout(&mut child, Duration::from_secs(10));
                if status.is_none() {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(100));
                let err = stderr.lock().unwrap().clone();
                Err((status, err))
            }
        }
    }

    /// What the server logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let status = wait_timeout(&mut self.child, Duration::from_secs(30))
            .expect("server did not exit within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
        let err = self.stderr();
        (status, err)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTPS client whose only trust anchor is the CA certificate in `ca_pem` (ring provider).
pub fn client_trusting(ca_pem: &Path) -> reqwest::Client {
    client_with_tls(tls_trusting(ca_pem))
}

/// A rustls client configuration (ring) trusting only the CAs in `ca_pem`; no ALPN.
pub fn tls_trusting(ca_pem: &Path) -> rustls::ClientConfig {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

pub fn client_with_tls(tls: rustls::ClientConfig) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A client for plain-HTTP servers (rustls still needs a process provider: ring).
pub fn http() -> reqwest::Client {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Like [`http`] but never follows redirects (to see `Location`).
pub fn http_no_redirect() -> reqwest::Client {
    let _ = http();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Runs `f` on a fresh thread, outside the test's tokio runtime: the store refuses I/O on
/// a runtime's threads (it belongs on the blocking pool), and test helpers are no exception.
pub fn outside_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// The `host:port` of a plain server's URL.
pub fn authority(url: &str) -> String {
    url.trim_start_matches("http://")
        .replace("localhost", "127.0.0.1")
}

/// Sends `head` on a fresh connection and returns the answer's status line; `None` when the
/// server reset the connection before the client could read one.
pub fn status_line(addr: &str, head: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head).ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    text.lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}
