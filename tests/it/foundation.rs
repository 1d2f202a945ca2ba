//! Issue 2: serving, TLS, configuration, storage durability, keys, operations endpoints.

use std::os::unix::fs::PermissionsExt;

use crate::driver::{Opts, Server, plain, start, tempdir, tls};
use crate::support::{civis, client_trusting, keys_init, root};

#[tokio::test]
async fn healthz_over_tls_with_a_client_trusting_only_the_dev_ca() {
    let data = tempdir();
    let server = tls(&data);
    assert!(
        server.url.starts_with("https://localhost:"),
        "{}",
        server.url
    );
    let resp = server.get("/healthz").send().await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["status"], "ok");
    assert!(
        server.stderr().contains("development keys"),
        "dev-key warning expected"
    );

    // A client that trusts some other CA must refuse the connection.
    let other = tempdir();
    assert!(keys_init(other.path()).status.success());
    let stranger = client_trusting(&other.path().join("ca.pem"));
    assert!(stranger.get(server.at("/healthz")).send().await.is_err());

    // The CA that verifiers trust is served.
    let ca = server.get("/pki/ca.pem").send().await;
    assert_eq!(ca.status, 200);
    let expected = std::fs::read_to_string(root().join("keys-dev/ca.pem")).unwrap();
    assert_eq!(ca.text, expected);
}

#[tokio::test]
async fn plain_http_serves_health_and_prometheus_metrics_on_their_own_listener() {
    let data = tempdir();
    let (opts, metrics_addr) = Opts::plain().with_metrics();
    let server = start(&data, opts);
    assert!(
        server.url.starts_with("http://localhost:"),
        "{}",
        server.url
    );
    assert_eq!(server.get("/healthz").send().await.status, 200);
    // Never on the public listener.
    let public = server.get("/metrics").send().await;
    assert_eq!(public.status, 404, "{}", public.text);
    assert!(!public.text.contains("civis_"), "{}", public.text);
    let metrics = format!("http://{metrics_addr}");
    assert_eq!(
        server
            .get(&format!("{metrics}/healthz"))
            .send()
            .await
            .status,
        404
    );
    let resp = server.get(&format!("{metrics}/metrics")).send().await;
    assert_eq!(resp.status, 200);
    let ctype = resp.header("content-type");
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    let text = &resp.text;
    assert!(
        text.contains("# TYPE civis_http_requests counter"),
        "{text}"
    );
    assert!(
        text.contains(r#"civis_http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("# TYPE civis_http_request_duration_seconds histogram"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "OpenMetrics terminator");
}

/// Without `--metrics-listen` there is no metrics endpoint at all (the default).
#[tokio::test]
async fn metrics_are_off_by_default() {
    let data = tempdir();
    let server = tls(&data);
    let resp = server.get("/metrics").send().await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("content-type"), "application/problem+json");
}

#[tokio::test]
async fn request_ids_are_echoed_and_logged() {
    request_ids_logged_with(Opts::plain()).await;
}

/// The same lines through tracing-appender, the writer the benchmark compares ours with.
#[tokio::test]
async fn the_appender_log_writer_writes_the_same_lines() {
    request_ids_logged_with(Opts::plain().with_env("CIVIS_LOG_WRITER", "appender")).await;
}

async fn request_ids_logged_with(opts: Opts) {
    let data = tempdir();
    let server = start(&data, opts);
    // A caller's id is never adopted: we answer with our own and log theirs beside it.
    let resp = server
        .get("/healthz")
        .header("x-request-id", "trace-abc-123")
        .send()
        .await;
    let ours = resp.header("x-request-id").to_owned();
    assert_eq!(ours.len(), 24, "{ours}");
    assert!(ours.bytes().all(|b| b.is_ascii_hexdigit()), "{ours}");
    // A hostile id (log injection: quotes, escapes, 500 characters) is not even logged.
    let hostile = format!("a\"b}}{{\\n\",\"status\":200,{}", "x".repeat(500));
    let resp = server
        .get("/nowhere")
        .header("x-request-id", &hostile)
        .send()
        .await;
    let hostile_ours = resp.header("x-request-id").to_owned();
    assert_eq!(hostile_ours.len(), 24);
    assert_eq!(resp.json()["request_id"], hostile_ours.as_str());
    let resp = server.get("/nowhere").send().await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.header("content-type"), "application/problem+json");
    let id = resp.header("x-request-id");
    assert_eq!(resp.json()["request_id"], id);
    let (status, log) = server.stop();
    assert!(status.success());
    let line = log
        .lines()
        .find(|l| l.contains(id))
        .expect("request line logged");
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["fields"]["status"], 404);
    let line = log
        .lines()
        .find(|l| l.contains(&ours) && l.contains("\"status\""))
        .expect("request line logged");
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["span"]["request_id"], ours.as_str());
    assert_eq!(line["span"]["client_request_id"], "trace-abc-123");
    let line = log
        .lines()
        .find(|l| l.contains(&hostile_ours) && l.contains("\"status\""))
        .expect("hostile request logged");
    assert!(!line.contains("client_request_id"), "{line}");
    assert!(!log.contains(&"x".repeat(500)), "hostile id never logged");
}

#[tokio::test]
async fn config_precedence_flag_over_env_over_file_over_default() {
    let data = tempdir();
    let dir = tempdir();
    let file = dir.path().join("civis.toml");
    // The file's listen address is unusable, so the server can only start if env or flag wins.
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:notaport\"\nplain_http = true\nissuer = \"https://file.example\"\n",
    )
    .unwrap();

    // `civis serve` with that file and a data directory.
    let serve = || {
        let mut cmd = civis();
        cmd.arg("serve")
            .arg("--config")
            .arg(&file)
            .arg("--data-dir")
            .arg(data.path());
        cmd
    };

    // env beats file (listen), file beats default (plain_http).
    let mut cmd = serve();
    cmd.env("CIVIS_LISTEN", "127.0.0.1:0");
    let server = Server::spawn(cmd).map_err(|(_, e)| e).unwrap();
    assert!(
        server.url.starts_with("http://"),
        "file's plain_http applies: {}",
        server.url
    );
    drop(server);

    // flag beats env: a broken env value is ignored when the flag is given; env beats file
    // for plain_http (CIVIS_PLAIN_HTTP=0 turns TLS back on).
    let mut cmd = serve();
    cmd.args(["--listen", "127.0.0.1:0"]);
    cmd.env("CIVIS_LISTEN", "garbage");
    cmd.env("CIVIS_PLAIN_HTTP", "0");
    let server = Server::spawn(cmd).map_err(|(_, e)| e).unwrap();
    assert!(
        server.url.starts_with("https://"),
        "env beats file: {}",
        server.url
    );
    drop(server);

    // Without env or flag the file's broken listen value is used and named.
    let out = serve().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid listen"), "{err}");
}

#[test]
fn unknown_config_key_is_rejected_by_name() {
    let dir = tempdir();
    let file = dir.path().join("civis.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nadmin_tokn_file = \"x\"\n").unwrap();
    let out = civis()
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin_tokn_file"), "{err}");
    assert!(out.stdout.is_empty(), "no ready line");
}

#[tokio::test]
async fn second_serve_on_the_same_data_dir_fails_naming_it() {
    let data = tempdir();
    let first = plain(&data);
    let started = std::time::Instant::now();
    let Err((status, err)) = Server::try_start(data.path(), Opts::plain()) else {
        panic!("second server must not start");
    };
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "fails at once, not a hang"
    );
    let status = status.expect("second server exited");
    assert!(!status.success());
    assert!(err.contains(&data.path().display().to_string()), "{err}");
    assert!(err.contains("in use"), "{err}");
    // The first one is unharmed.
    assert_eq!(first.get("/healthz").send().await.status, 200);
}

#[tokio::test]
async fn acknowledged_write_survives_sigterm_and_restart() {
    let data = tempdir();
    let server = tls(&data);
    let id = server.register_citizen("DUR-0001").await.id;
    // SIGTERM right after the acknowledgement.
    let (status, log) = server.stop();
    assert!(status.success(), "exit 0 on SIGTERM: {log}");
    assert!(log.contains("storage flushed"));

    let server = tls(&data);
    assert_eq!(server.citizen(&id).await["national_id"], "DUR-0001");
}

#[tokio::test]
async fn a_record_of_unknown_version_is_reported_not_panicked_on() {
    let data = tempdir();
    let server = plain(&data);
    let id = server.register_citizen("VER-0001").await.id;
    assert!(server.stop().0.success());

    // Plant a record from a "future" version, as a newer civis might have written it.
    crate::support::outside_runtime(|| {
        let store = civis::store::Store::open_sled(data.path()).unwrap();
        store
            .plant_raw(
                civis::store::CITIZENS,
                id.as_bytes(),
                br#"{"v":"99","data":{"x":1}}"#,
            )
            .unwrap();
    });

    let server = plain(&data);
    let resp = server.admin_get(&format!("/admin/v1/citizens/{id}")).await;
    assert_eq!(resp.status, 500);
    let rid = resp.header("x-request-id");
    let body = &resp.text;
    assert!(
        !body.contains("version") && !body.contains("citizens/") && !body.contains(&id),
        "no internals: {body}"
    );
    // The server is still alive, and the log names tree, key and version with the request id.
    assert_eq!(server.get("/healthz").send().await.status, 200);
    let (status, log) = server.stop();
    assert!(status.success());
    let line = log
        .lines()
        .find(|l| l.contains(&format!("record citizens/{id} has unknown version 99")))
        .unwrap_or_else(|| panic!("not reported: {log}"));
    assert!(line.contains(rid), "{line}");
    assert!(!log.contains("panicked"));
}

#[test]
fn keys_init_creates_a_private_set_and_refuses_to_overwrite() {
    let dir = tempdir();
    let keys = dir.path().join("prod");
    let out = keys_init(&keys);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in [
        "ca.key",
        "tls.key",
        "token.key",
        "admin-token",
        "hmac.key",
        "kek.key",
    ] {
        let mode = std::fs::metadata(keys.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let token_before = std::fs::read(keys.join("token.key")).unwrap();
    let out = keys_init(&keys);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    assert_eq!(std::fs::read(keys.join("token.key")).unwrap(), token_before);
}

#[tokio::test]
async fn fresh_keys_serve_without_the_dev_warning() {
    let dir = tempdir();
    let keys = dir.path().join("k");
    assert!(keys_init(&keys).status.success());
    let data = tempdir();
    let server = start(
        &data,
        Opts::default().with_args(["--keys-dir".into(), keys.display().to_string()]),
    );
    let resp = client_trusting(&keys.join("ca.pem"))
        .get(server.at("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!server.stderr().contains("development keys"));
}

#[test]
fn token_key_from_keys_dev_signs_jwts_that_jsonwebtoken_verifies() {
    civis::crypto::jwt::install_provider();
    let keys = civis::crypto::KeySet::load(
        &root().join("keys-dev"),
        &root().join("keys-dev/admin-token"),
    )
    .unwrap();
    let claims = serde_json::json!({"sub": "x", "exp": 4_000_000_000u64, "aud": "a"});
    let tokens = keys.tokens();
    let key = tokens.signing(time::OffsetDateTime::now_utc());
    let jwt = civis::crypto::jwt::sign(key, "at+jwt", &claims).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["a"]);
    let data = jsonwebtoken::decode::<serde_json::Value>(
        &jwt,
        &civis::crypto::jwt::decoding_key(key.public_key()).unwrap(),
        &v,
    )
    .unwrap();
    assert_eq!(data.claims["sub"], "x");
    assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
}

#[tokio::test]
async fn pipelined_requests_on_one_connection_are_answered_in_order() {
    use std::io::{Read as _, Write as _};
    let data = tempdir();
    let server = plain(&data);
    let addr = server.url.strip_prefix("http://").unwrap().to_owned();
    let answers = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr.replace("localhost", "127.0.0.1")).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut batch = Vec::new();
        for (i, path) in ["/healthz", "/nope", "/jwks"].iter().enumerate() {
            let close = if i == 2 { "connection: close\r\n" } else { "" };
            write!(batch, "GET {path} HTTP/1.1\r\nhost: {addr}\r\n{close}\r\n").unwrap();
        }
        s.write_all(&batch).unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).unwrap();
        all
    })
    .await
    .unwrap();
    let heads: Vec<&str> = answers
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|r| &r[..3])
        .collect();
    assert_eq!(heads, ["200", "404", "200"], "{answers}");
    // Each answer's own body, in the order of the requests.
    let at: Vec<usize> = [r#""status":"ok""#, "HTTP/1.1 404", r#""keys""#]
        .iter()
        .map(|marker| answers.find(marker).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in order: {answers}");
}

#[tokio::test]
async fn tls_clients_that_offer_http2_get_it() {
    let data = tempdir();
    let server = tls(&data);
    let mut tls = crate::support::tls_trusting(&root().join("keys-dev/ca.pem"));
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let client = crate::support::client_with_tls(tls);
    let resp = client.get(server.at("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2, "ALPN h2");
    // A client that offers nothing gets HTTP/1.1.
    let plain = client_trusting(&root().join("keys-dev/ca.pem"));
    let resp = plain.get(server.at("/healthz")).send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_11);
}

/// One layer marks every answer `no-store` unless its handler chose a cache policy: tokens,
/// codes, personal data and problem documents are never cached; only the JWKS and the
/// static assets are.
#[tokio::test]
async fn answers_are_not_cached_unless_they_are_public() {
    let data = tempdir();
    let server = plain(&data);
    for path in [
        "/healthz",
        "/no-such-page",
        "/.well-known/openid-configuration",
        "/admin/v1/citizens/unknown",
        "/login",
    ] {
        let resp = server.get(path).send().await;
        assert_eq!(resp.header("cache-control"), "no-store", "{path}");
        assert_eq!(resp.header("pragma"), "no-cache", "{path}");
    }
    let created = server.register_citizen("CACHE-001").await;
    assert!(!created.enrolment_code.is_empty());
    let jwks = server.get("/jwks").send().await;
    assert!(
        jwks.header("cache-control").starts_with("public"),
        "the JWKS may be cached"
    );
}
