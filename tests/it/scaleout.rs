//! Issue 12 through the real binary: several `civis serve` processes on one PostgreSQL
//! database behave as one deployment, `civis store copy` moves a sled deployment into an
//! empty database, and a database that goes away gives quick 503s and no lost write.
//!
//! Each test gets a fresh database on the cluster of `CIVIS_TEST_DATABASE_URL`
//! (`tests/pg/cluster.sh`); without one the tests are skipped, except under CI.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::authenticator::Device;
use crate::driver::{VERIFIER, plain, tempdir};
use crate::support::{Server, civis, free_addr, outside_runtime};

/// A fresh database, dropped at the end of the test.
struct TestDb {
    admin: String,
    name: String,
    url: String,
}

impl TestDb {
    fn create() -> Option<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let Some(admin) = std::env::var("CIVIS_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL tests: set CIVIS_TEST_DATABASE_URL"
            );
            eprintln!("skipped: CIVIS_TEST_DATABASE_URL is not set");
            return None;
        };
        let name = format!(
            "civis_it_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        // The synchronous client runs a runtime of its own: not on the test's.
        outside_runtime(|| {
            let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        });
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&format!("/{name}"));
        Some(Self {
            admin,
            name,
            url: url.to_string(),
        })
    }

    /// The URL through another host and port (a proxy in front of the database).
    fn via(&self, addr: &str) -> String {
        let mut url = url::Url::parse(&self.url).unwrap();
        let (host, port) = addr.rsplit_once(':').unwrap();
        url.set_host(Some(host)).unwrap();
        url.set_port(Some(port.parse().unwrap())).unwrap();
        url.to_string()
    }

    fn addr(&self) -> String {
        let url = url::Url::parse(&self.url).unwrap();
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        outside_runtime(|| {
            if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        });
    }
}

/// The `civis serve` command on `database` at `listen`, with `issuer` (shared by every
/// process of a deployment) and a data dir that must stay empty.
fn serve_command(database: &str, listen: &str, issuer: &str, unused: &std::path::Path) -> Command {
    let mut cmd = civis();
    cmd.args([
        "serve",
        "--plain-http",
        "--listen",
        listen,
        "--issuer",
        issuer,
    ])
    .arg("--data-dir")
    .arg(unused)
    .args(["--database-url", database]);
    cmd
}

/// [`serve_command`], started.
fn serve(database: &str, listen: &str, issuer: &str, unused: &std::path::Path) -> Server {
    Server::spawn(serve_command(database, listen, issuer, unused))
        .unwrap_or_else(|(status, err)| panic!("not started ({status:?}):\n{err}"))
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = civis().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Awaits every future, polling them together (the requests overlap on the wire).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut results: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *result = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// The first line of the checkpoint's body after the origin: its size.
async fn checkpoint_size(server: &Server) -> u64 {
    let resp = server.get("/transparency/v1/checkpoint").send().await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    resp.text.lines().nth(1).unwrap().parse().unwrap()
}

async fn audit_size(server: &Server) -> u64 {
    let mut from = 0u64;
    loop {
        let page = server
            .admin_get(&format!("/admin/v1/audit?from={from}&limit=1000"))
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        match page["next"].as_u64() {
            Some(n) => from = n,
            None => {
                return from + page["entries"].as_array().unwrap().len() as u64;
            }
        }
    }
}

#[tokio::test]
async fn two_processes_on_one_database_are_one_deployment() {
    let Some(db) = TestDb::create() else { return };
    let unused = tempdir();
    let (addr_a, addr_b) = (free_addr(), free_addr());
    let issuer = format!("http://localhost:{}", addr_a.rsplit_once(':').unwrap().1);
    let a = serve(&db.url, &addr_a, &issuer, unused.path());
    let b = serve(&db.url, &addr_b, &issuer, unused.path());

    // Registered on A; an enrolment ceremony started on A finishes on B.
    let citizen = a.register_citizen("PG-0001").await;
    let started = a.start_enrolment(&citizen.enrolment_code).await;
    assert_eq!(started.status, 200, "{}", started.text);
    let mut device = Device::new(&a.url);
    let credential = device.create(&started.json()["options"]).await.unwrap();
    let enrolled = b
        .finish_enrolment(&started.json()["ceremony"], &credential)
        .await;
    assert_eq!(enrolled.status, 201, "{}", enrolled.text);
    // The code was used up for both processes.
    let again = a.start_enrolment(&citizen.enrolment_code).await;
    assert_ne!(again.status, 200, "{}", again.text);

    // A login started on B finishes on A, and its session works on B.
    let (ceremony, assertion) = b.assertion(&mut device).await;
    let login = a.finish_login(&ceremony, &assertion).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let cookie = login.cookie().expect("a session cookie");
    assert_eq!(b.session(&cookie).await.status, 200);

    // A code issued by A is redeemed on B; its refresh token rotates once across both.
    let client = a.web_client().await;
    let secret = client.secret.clone().unwrap();
    let auth = (client.id.as_str(), secret.as_str());
    let (code, _) = a.code_for(&client.id, &mut device, Some(cookie)).await;
    let tokens = b.redeem(auth, &code, VERIFIER).await.tokens();
    let rotated = a.refresh(auth, tokens.refresh_token()).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let access = rotated.tokens().access;
    assert_eq!(b.userinfo(&access).await.status, 200);
    let reused = b.refresh(auth, tokens.refresh_token()).await;
    assert_eq!(reused.status, 400, "{}", reused.text);
    // The code is spent everywhere, and its replay revokes what it gave (on both).
    let replay = a.redeem(auth, &code, VERIFIER).await;
    assert_eq!(replay.status, 400, "{}", replay.text);
    assert_eq!(replay.error(), Some("invalid_grant"));
    assert_eq!(b.userinfo(&access).await.status, 401, "grant revoked");

    // 50 concurrent redemptions of one fresh code, spread over both: exactly one wins.
    let login = b.login(&mut device).await;
    let (code, _) = b.code_for(&client.id, &mut device, login.cookie()).await;
    let racing = (0..50).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        server.redeem(auth, &code, VERIFIER)
    });
    let answers = join_all(racing.collect()).await;
    let won = answers.iter().filter(|r| r.status == 200).count();
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(won, 1, "{statuses:?}");
    assert!(
        answers
            .iter()
            .all(|r| r.status == 200 || r.error() == Some("invalid_grant")),
        "{statuses:?}"
    );

    // A machine client registered on B gets tokens from A at once (not cached yet).
    let machine = b.machine_client("Statistics office", "seal").await;
    let cc = a
        .client_credentials((&machine.id, machine.secret.as_deref().unwrap()))
        .await;
    assert_eq!(cc.status, 200, "{}", cc.text);

    // Both wrote to one audit log with one sequence; the service may run while it is
    // verified.
    let entries = audit_size(&a).await;
    assert_eq!(entries, audit_size(&b).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    while checkpoint_size(&a).await < entries || checkpoint_size(&b).await < entries {
        assert!(Instant::now() < deadline, "checkpoints did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, out, err) = run(&["audit", "verify", "--database-url", &db.url]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("{entries} entries")), "{out}");

    // Nothing went to the data dir.
    assert_eq!(
        std::fs::read_dir(unused.path()).map_or(0, Iterator::count),
        0
    );

    // Both shut down cleanly on SIGTERM (their connections closed off the async threads).
    for server in [a, b] {
        let (status, err) = server.stop();
        assert!(status.success(), "{status}: {err}");
        assert!(err.contains("stopped; storage flushed"), "{err}");
    }
}

#[tokio::test]
async fn signing_spreads_over_two_processes() {
    use crate::approval::{
        DOC_A, DOC_B, assertion, digest, finish, new_request, signed_in, status,
    };
    use crate::driver::seal::{digest_of, document, failed_checks};

    let Some(db) = TestDb::create() else { return };
    let unused = tempdir();
    let (addr_a, addr_b) = (free_addr(), free_addr());
    let issuer = format!("http://localhost:{}", addr_a.rsplit_once(':').unwrap().1);
    let a = serve(&db.url, &addr_a, &issuer, unused.path());
    let b = serve(&db.url, &addr_b, &issuer, unused.path());

    // An agency's seal and token made on A seal on B; A verifies the seal.
    let sealer = a.sealer().await;
    let decision = b"Decision 2026/88: granted.\n";
    let sealed = b
        .seal(&sealer, &[document("decision.txt", decision)], "cades")
        .await;
    let signature = sealed[0]["signature"].as_str().unwrap();
    let verified = a.verify(&digest_of(decision), signature, "cades").await;
    assert_eq!(verified["valid"], true, "{verified}");
    assert!(failed_checks(&verified).is_empty(), "{verified}");

    // An official signed in on A makes a sign request on B, starts the approval on A and
    // finishes it on B; A reports it signed once, and B verifies both signatures.
    let mut official = signed_in(&a, "PG-SIGN-1", true).await;
    let id = new_request(&b, &official, "cades").await;
    let (ceremony, credential) = assertion(&a, &official.cookie, &id, &mut official.device).await;
    let approved = finish(&b, &official.cookie, &id, &ceremony, &credential).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let again = finish(&a, &official.cookie, &id, &ceremony, &credential).await;
    assert_ne!(again.status, 200, "{}", again.text);
    let done = status(&a, &official, &id).await;
    assert_eq!(done["status"], "signed", "{done}");
    for (i, doc) in [DOC_A, DOC_B].iter().enumerate() {
        let signature = done["signatures"][i]["signature"].as_str().unwrap();
        let v = b.verify(&digest(doc), signature, "cades").await;
        assert_eq!(v["valid"], true, "{v}");
        assert!(failed_checks(&v).is_empty(), "{v}");
    }
}

#[tokio::test]
async fn store_copy_moves_a_sled_deployment_into_an_empty_database() {
    let Some(db) = TestDb::create() else { return };
    let data = tempdir();
    let server = plain(&data);
    let (citizen_id, mut device) = server.citizen_with_passkey("COPY-0001").await;
    let machine = server.machine_client("Registry", "seal").await;
    let secret = machine.secret.clone().unwrap();
    let cc = server.client_credentials((&machine.id, &secret)).await;
    assert_eq!(cc.status, 200, "{}", cc.text);
    let entries = audit_size(&server).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while checkpoint_size(&server).await < entries {
        assert!(Instant::now() < deadline, "checkpoint did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let old_url = server.url.clone();
    let (status, _) = server.stop();
    assert!(status.success());
    let dir = data.path().to_str().unwrap();

    let copy = || {
        run(&[
            "store",
            "copy",
            "--data-dir",
            dir,
            "--database-url",
            &db.url,
        ])
    };
    let (code, out, err) = copy();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("copied"), "{out}");
    assert!(out.contains("audit_entries: "), "{out}");
    // A second copy finds the database in use and writes nothing.
    let (code, out, err) = copy();
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not empty"), "{err}");

    // The same log, byte for byte: both checks print the same size and root.
    let (code, sled_out, err) = run(&["audit", "verify", "--data-dir", dir]);
    assert_eq!(code, 0, "{sled_out}{err}");
    let (code, pg_out, err) = run(&["audit", "verify", "--database-url", &db.url]);
    assert_eq!(code, 0, "{pg_out}{err}");
    assert_eq!(sled_out, pg_out);

    // The copy serves, at the same address and issuer: the citizen, their passkey and the
    // client are all there.
    let unused = tempdir();
    let port = old_url.rsplit_once(':').unwrap().1.to_owned();
    let moved = serve(
        &db.url,
        &format!("127.0.0.1:{port}"),
        &old_url,
        unused.path(),
    );
    let record: Value = moved.citizen(&citizen_id).await;
    assert_eq!(record["national_id"], "COPY-0001");
    let login = moved.login(&mut device).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let cc = moved.client_credentials((&machine.id, &secret)).await;
    assert_eq!(cc.status, 200, "{}", cc.text);
}

/// Registers citizens one after another until `stop`, through 503s; returns the ids of
/// those acknowledged.
fn registrations(
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let created = server
                .admin_post(
                    "/admin/v1/citizens",
                    &serde_json::json!({"given_name": "Load", "family_name": "Test",
                        "birthdate": "1990-01-01", "national_id": format!("LOAD-{n:05}")}),
                )
                .await;
            match created.status {
                201 => acknowledged.push(created.json()["id"].as_str().unwrap().to_owned()),
                503 => tokio::time::sleep(Duration::from_millis(20)).await,
                other => panic!("{other}: {}", created.text),
            }
        }
        acknowledged
    })
}

/// Waits for `/healthz` to report the database again (the service recovers by itself),
/// lets the load run a little longer, stops it, and checks that every acknowledged
/// registration (and `before`) is there.
async fn await_recovery(
    server: &Server,
    loader: tokio::task::JoinHandle<Vec<String>>,
    stop: Arc<AtomicBool>,
    before: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health = server.get("/healthz").send().await;
        if health.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {}", health.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let acknowledged = loader.await.unwrap();
    assert!(acknowledged.len() > 2, "the load went on before and after");
    // Every registration that was acknowledged is there; what was refused was not
    // half-written (its national id is free again, below).
    for id in acknowledged.iter().map(String::as_str).chain([before]) {
        let lookup = server.admin_get(&format!("/admin/v1/citizens/{id}")).await;
        assert_eq!(lookup.status, 200, "{id}: {}", lookup.text);
    }
}

/// A TCP relay in front of the database that the test can cut and restore: cut, it closes
/// every relayed connection and refuses new ones.
struct Relay {
    addr: String,
    up: Arc<AtomicBool>,
}

impl Relay {
    async fn start(to: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let flag = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed at once
                }
                let (to, flag) = (to.clone(), flag.clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await else {
                        return;
                    };
                    let relay = tokio::io::copy_bidirectional(&mut inbound, &mut outbound);
                    tokio::pin!(relay);
                    loop {
                        tokio::select! {
                            _ = &mut relay => return,
                            () = tokio::time::sleep(Duration::from_millis(50)) => {
                                if !flag.load(Ordering::SeqCst) {
                                    return; // both ends dropped
                                }
                            }
                        }
                    }
                });
            }
        });
        Self { addr, up }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

// The relay runs on the test's runtime while the test blocks waiting for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_gives_quick_503s_and_the_service_recovers() {
    let Some(db) = TestDb::create() else { return };
    let relay = Relay::start(db.addr()).await;
    let unused = tempdir();
    let listen = free_addr();
    let issuer = format!("http://localhost:{}", listen.rsplit_once(':').unwrap().1);
    let server = serve(&db.via(&relay.addr), &listen, &issuer, unused.path());
    let before = server.register_citizen("LOST-0001").await;
    let machine = server.machine_client("Archive", "seal").await;
    let secret = machine.secret.clone().unwrap();

    // Registrations keep arriving while the database goes away and comes back.
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = registrations(server.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    relay.set(false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let lookup = server
        .admin_get(&format!("/admin/v1/citizens/{}", before.id))
        .await;
    assert_eq!(lookup.status, 503, "{}", lookup.text);
    assert_eq!(lookup.header("content-type"), "application/problem+json");
    let created = server
        .admin_post(
            "/admin/v1/citizens",
            &serde_json::json!({"given_name": "Ana", "family_name": "Lost",
                "birthdate": "1990-01-01", "national_id": "LOST-0002"}),
        )
        .await;
    assert_eq!(created.status, 503, "{}", created.text);
    let health = server.get("/healthz").send().await;
    assert_eq!(health.status, 503, "{}", health.text);
    let cc = server.client_credentials((&machine.id, &secret)).await;
    assert_eq!(cc.status, 503, "{}", cc.text);
    assert_eq!(cc.error(), Some("temporarily_unavailable"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "four requests took {:?}",
        started.elapsed()
    );

    relay.set(true);
    await_recovery(&server, loader, stop, &before.id).await;
    let retried = server.register_citizen("LOST-0002").await;
    assert!(!retried.id.is_empty());
    let cc = server.client_credentials((&machine.id, &secret)).await;
    assert_eq!(cc.status, 200, "{}", cc.text);
}

/// A PostgreSQL cluster of the test's own (`tests/pg/cluster.sh`), for tests that crash it
/// or speak TLS to it; stopped and removed at the end of the test.
struct Cluster {
    dir: tempfile::TempDir,
    url: String,
}

impl Cluster {
    const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pg/cluster.sh");

    /// Only where the shared cluster exists: that is where PostgreSQL is installed.
    fn start() -> Option<Self> {
        TestDb::create()?;
        let dir = tempdir();
        let out = Command::new(Self::SCRIPT)
            .arg("start")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        Some(Self { dir, url })
    }

    /// Kills the server (no shutdown: crash recovery follows) and starts it again.
    fn crash(&self) {
        let status = Command::new(Self::SCRIPT)
            .arg("crash")
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The URL over TLS, checking the server's certificate and name against [`Self::ca`].
    fn tls_url(&self) -> String {
        let mut url = url::Url::parse(&self.url).unwrap();
        url.set_host(Some("localhost")).unwrap();
        url.set_query(Some("sslmode=verify-full"));
        url.to_string()
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca.crt").display().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(Self::SCRIPT)
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_verified_tls_a_database_crashed_under_load_loses_no_acknowledged_write() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let unused = tempdir();
    let issuer = |listen: &str| format!("http://localhost:{}", listen.rsplit_once(':').unwrap().1);

    // A certificate from another CA is refused before anything is served.
    let stranger = tempdir();
    let other_ca = stranger.path().join("ca.pem");
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&other_ca, ca.cert.pem()).unwrap();
    let listen = free_addr();
    let mut cmd = serve_command(&cluster.tls_url(), &listen, &issuer(&listen), unused.path());
    cmd.arg("--database-ca").arg(&other_ca);
    match Server::spawn(cmd) {
        Ok(_) => panic!("served on a database whose certificate it cannot verify"),
        Err((status, err)) => {
            assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
            assert!(err.contains("UnknownIssuer"), "{err}");
        }
    }

    // With the cluster's own CA it serves over TLS.
    let listen = free_addr();
    let mut cmd = serve_command(&cluster.tls_url(), &listen, &issuer(&listen), unused.path());
    cmd.args(["--database-ca", &cluster.ca()]);
    let server = Server::spawn(cmd).unwrap_or_else(|(s, err)| panic!("{s:?}: {err}"));
    let before = server.register_citizen("CRASH-0001").await;

    // The database server is killed and restarted while registrations arrive.
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let loader = registrations(server.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| cluster.crash());
    await_recovery(&server, loader, stop, &before.id).await;

    // The integrator took the lead again: the log is checkpointed to its end, and the
    // whole log verifies (over TLS too).
    let deadline = Instant::now() + Duration::from_secs(20);
    let size = audit_size(&server).await;
    while checkpoint_size(&server).await < size {
        assert!(Instant::now() < deadline, "no checkpoint of {size} entries");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (code, out, err) = run(&[
        "audit",
        "verify",
        "--database-url",
        &cluster.tls_url(),
        "--database-ca",
        &cluster.ca(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
}
