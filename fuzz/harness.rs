//! The fuzz targets' bodies, shared by the cargo-fuzz binaries (`fuzz_targets/*.rs`) and by
//! the corpus replay test of the main test suite (`tests/it/fuzz_corpus.rs`), which includes
//! this file with `#[path]`. Requests go through the real router, assembled by
//! `civis::app::assemble` on an in-memory store with the development keys, so each target
//! runs exactly the extractors, handlers and error mapping the server runs. The oracle:
//! never a panic, never a 5xx, no refusal in plain text, and a body that says it is JSON
//! is JSON.
#![allow(dead_code)]

// The integration tests' software authenticator (1Password's passkey-rs): the setup enrols
// and signs in an official with it, so that the ceremony target reaches approvals.
// In the main test suite the file is also the `authenticator` module: a second copy there.
#[allow(clippy::duplicate_mod)]
#[path = "../tests/it/authenticator.rs"]
mod authenticator;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The issuer the in-process service believes it is.
pub const ISSUER: &str = "http://localhost:8080";
/// The document the setup seals, and whose digest the `/verify/v1` target sends.
pub const DOCUMENT: &[u8] = b"civis fuzz document";

/// A target's body: one input, a panic when the oracle is violated.
pub type Target = fn(&[u8]);

/// Every target, by the name of its directory under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("token_request", token_request),
    ("jws", jws),
    ("ceremony", ceremony),
    ("verify_document", verify_document),
    ("evidence_bundle", evidence_bundle),
    ("transparency_request", transparency_request),
    ("record_round_trip", record_round_trip),
    ("record_decode", record_decode),
    ("identity_fields", identity_fields),
];

/// The service, assembled once per process, and what the setup registered in it.
pub struct Service {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    store: civis::store::Store,
    admin_token: String,
    /// A confidential client (`client_secret_basic`) with the citizen scopes and
    /// `client_credentials`.
    pub client_id: String,
    client_secret: String,
    /// An enrolment code of a registered citizen (never used up: no passkey is created).
    enrolment_code: String,
    /// Signatures the setup's seal made over [`DOCUMENT`]: CAdES (DER) and JAdES.
    pub cades: Vec<u8>,
    pub jades: String,
    /// The session cookie of a signed-in official, and a sign request of theirs that waits
    /// for approval.
    official_cookie: String,
    sign_request: String,
    calls: AtomicU64,
}

/// An answer: status, content type, headers, body.
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn keys_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [here.join("keys-dev"), here.join("../keys-dev")]
        .into_iter()
        .find(|d| d.is_dir())
        .expect("the development keys (keys-dev/) are in the repository")
}

impl Service {
    /// The process's service, assembled on first use.
    pub fn get() -> &'static Service {
        static SERVICE: OnceLock<Service> = OnceLock::new();
        SERVICE.get_or_init(Service::assemble)
    }

    fn assemble() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let keys = keys_dir();
        let args = civis::config::ServeArgs {
            plain_http: Some(true),
            issuer: Some(ISSUER.into()),
            keys_dir: Some(keys.clone()),
            admin_token_file: Some(keys.join("admin-token")),
            // The targets send millions of requests from one address.
            throttle_burst: Some(1_000_000_000),
            throttle_per_minute: Some(1_000_000_000),
            client_rate_per_second: Some(0),
            ..Default::default()
        };
        let config = civis::config::Config::resolve(&args).expect("the fuzz configuration");
        let store = civis::store::Store::in_memory();
        let assembled = runtime
            .block_on(civis::app::assemble(&config, store.clone(), ISSUER.into()))
            .expect("the service assembles");
        let admin_token = std::fs::read_to_string(keys.join("admin-token"))
            .expect("the development admin token")
            .trim()
            .to_owned();
        let mut service = Service {
            runtime,
            router: civis::http::router(assembled.state.clone()),
            store,
            admin_token,
            client_id: String::new(),
            client_secret: String::new(),
            enrolment_code: String::new(),
            cades: Vec::new(),
            jades: String::new(),
            official_cookie: String::new(),
            sign_request: String::new(),
            calls: AtomicU64::new(0),
        };
        service.set_up();
        service.set_up_official(&assembled.state);
        if let Some(signer) = assembled.audit_signer {
            // The setup's actions are in the log; a checkpoint over them makes proofs of
            // every index up to its size answerable.
            civis::domain::transparency::integrate(&service.store, &signer)
                .expect("the setup's entries integrate");
        }
        service
    }

    /// Registers what the targets need through the admin API: a client, a citizen with an
    /// enrolment code, a sealing client with a seal and two signatures.
    fn set_up(&mut self) {
        let client = self.admin(
            "/admin/v1/clients",
            json!({
                "name": "Fuzz office", "redirect_uris": ["https://rp.example/cb"],
                "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                "scope": "openid profile email national_id",
            }),
        );
        self.client_id = client["client_id"].as_str().expect("client_id").into();
        self.client_secret = client["client_secret"].as_str().expect("secret").into();
        let citizen = self.admin(
            "/admin/v1/citizens",
            json!({"given_name": "Ana", "family_name": "Novak",
                   "birthdate": "1990-04-01", "national_id": "FUZZ-0001"}),
        );
        self.enrolment_code = citizen["enrolment_code"].as_str().expect("code").into();
        let sealer = self.admin(
            "/admin/v1/clients",
            json!({"name": "Fuzz sealing", "redirect_uris": [],
                   "grant_types": ["client_credentials"], "scope": "seal"}),
        );
        let (id, secret) = (
            sealer["client_id"].as_str().expect("id"),
            sealer["client_secret"].as_str().expect("secret"),
        );
        self.admin(
            "/admin/v1/seals",
            json!({"client_id": id, "organisation": "Fuzz Office"}),
        );
        let token = self.send(
            Request::post("/token")
                .header(header::AUTHORIZATION, basic(id, secret))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from("grant_type=client_credentials&scope=seal"))
                .expect("a request"),
        );
        let token = token.json()["access_token"]
            .as_str()
            .expect("token")
            .to_owned();
        for format in ["cades", "jades"] {
            let sealed = self.send(
                Request::post("/seal/v1/sign")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(
                        json!({"format": format, "documents": [
                            {"name": "fuzz.txt", "digest": digest_of(DOCUMENT)}]})
                        .to_string(),
                    ))
                    .expect("a request"),
            );
            let signature = sealed.json()["signatures"][0]["signature"]
                .as_str()
                .unwrap_or_else(|| panic!("a {format} signature: {}", text(&sealed.body)))
                .to_owned();
            match format {
                "cades" => self.cades = STANDARD.decode(signature).expect("base64 DER"),
                _ => self.jades = signature,
            }
        }
    }

    /// An official with a passkey on the software authenticator, signed in, with one sign
    /// request waiting for approval (made through the domain: a `sign` access token would
    /// need a whole authorization-code flow).
    fn set_up_official(&mut self, state: &civis::http::state::AppState) {
        let citizen = self.admin(
            "/admin/v1/citizens",
            json!({"given_name": "Ada", "family_name": "Official",
                   "birthdate": "1980-01-01", "national_id": "FUZZ-0002"}),
        );
        let citizen_id = citizen["id"].as_str().expect("id").to_owned();
        let code = citizen["enrolment_code"].as_str().expect("code");
        let mut device = authenticator::Device::new(ISSUER);
        let started = self.send(json_post("/enrol/start", json!({"code": code}).to_string()));
        let options = serde_json::from_slice::<Value>(&started.body).expect("options");
        let credential = self
            .runtime
            .block_on(device.create(&options["options"]))
            .expect("the device enrols");
        let body = json!({"ceremony": options["ceremony"], "credential": credential});
        let enrolled = self.send(json_post("/enrol/finish", body.to_string()));
        assert_eq!(enrolled.status, 201, "{}", text(&enrolled.body));
        let started = self.send(json_post("/login/start", String::new()));
        let options = serde_json::from_slice::<Value>(&started.body).expect("options");
        let assertion = self
            .runtime
            .block_on(device.get(&options["options"]))
            .expect("the device signs in");
        let body = json!({"ceremony": options["ceremony"], "credential": assertion});
        let signed_in = self.send(json_post("/login/finish", body.to_string()));
        assert_eq!(signed_in.status, 200, "{}", text(&signed_in.body));
        self.official_cookie = signed_in
            .headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| c.split(';').next())
            .expect("a session cookie")
            .to_owned();
        self.admin(
            "/admin/v1/officials",
            json!({"citizen_id": citizen_id, "title": "Fuzz officer", "organisation": "Fuzz Office"}),
        );
        let request = civis::domain::signing::requests::NewRequest {
            documents: vec![("fuzz.txt".into(), digest_of(DOCUMENT))],
            format: "cades".into(),
        };
        self.sign_request = state
            .pki()
            .create_request(&citizen_id, &request, state.now())
            .expect("a sign request")
            .id;
    }

    fn admin(&self, path: &str, body: Value) -> Value {
        let answer = self.send(
            Request::post(path)
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", self.admin_token),
                )
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .expect("a request"),
        );
        assert_eq!(answer.status, 201, "{path}: {}", text(&answer.body));
        answer.json()
    }

    /// Sends one request through the router, from a loopback peer.
    pub fn send(&self, mut request: Request<Body>) -> Answer {
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let router = self.router.clone();
        self.runtime.block_on(async move {
            let response = router
                .oneshot(request)
                .await
                .expect("the router is infallible");
            let status = response.status();
            let content_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let headers = response.headers().clone();
            let body = axum::body::to_bytes(response.into_body(), 16 << 20)
                .await
                .expect("the body is read")
                .to_vec();
            Answer {
                status,
                content_type,
                headers,
                body,
            }
        })
    }

    /// Sends `request` and applies the oracle; `what` and `input` name the case on failure.
    pub fn expect_handled(&self, request: Request<Body>, input: &[u8]) -> Answer {
        let what = format!("{} {}", request.method(), request.uri());
        let answer = self.send(request);
        assert!(
            !answer.status.is_server_error(),
            "{what} answered {} to input {:?}: {}",
            answer.status,
            String::from_utf8_lossy(input),
            text(&answer.body)
        );
        // Every refusal is RFC 9457 or RFC 6749 JSON, or a page: never the framework's
        // plain text (a missing or repeated parameter was, before the fuzzers looked).
        assert!(
            !(answer.status.is_client_error() && answer.content_type.starts_with("text/plain")),
            "{what} answered {} in plain text to input {:?}: {}",
            answer.status,
            String::from_utf8_lossy(input),
            text(&answer.body)
        );
        if answer.content_type.contains("json") {
            assert!(
                serde_json::from_slice::<Value>(&answer.body).is_ok(),
                "{what} answered {} as JSON that is not JSON",
                answer.content_type
            );
        }
        self.tidy();
        answer
    }

    /// Every few thousand calls, removes what the calls parked (ceremonies, pending
    /// requests): the expiry sweeper does it in the server, with the clock moved ahead.
    fn tidy(&self) {
        if self.calls.fetch_add(1, Ordering::Relaxed) % 4096 == 4095 {
            // Ceremonies and parked requests live 5 minutes; the official's session (hours)
            // and sign request (15 minutes, then kept) are not touched.
            let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(6);
            while self.store.sweep_expired(later, 10_000).unwrap_or(0) > 0 {}
        }
    }

    /// `Basic` credentials of the setup's client.
    pub fn client_basic(&self) -> String {
        basic(&self.client_id, &self.client_secret)
    }
}

/// A same-origin JSON POST, as the pages' script sends it.
fn json_post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ORIGIN, ISSUER)
        .body(body.into())
        .expect("a request")
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn digest_of(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(civis::crypto::digest::sha256(bytes))
}

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(500).collect()
}

/// Splits `data` at its first `n - 1` newlines.
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |b| *b == b'\n').collect()
}

/// A header value from fuzz bytes, with the setup's secrets put in for placeholders; `None`
/// for an empty part or bytes no HTTP header can carry.
fn header_value(raw: &[u8], service: &Service) -> Option<header::HeaderValue> {
    if raw.is_empty() {
        return None;
    }
    let raw = String::from_utf8_lossy(raw).replace("BASIC", &service.client_basic());
    header::HeaderValue::from_str(&raw).ok()
}

/// `POST /token`: `authorization \n dpop \n form body`. In the body, `CLIENT_ID` and
/// `CLIENT_SECRET` stand for the setup client's; in the authorization part, `BASIC` for its
/// `Basic` credentials; so inputs reach past client authentication.
pub fn token_request(data: &[u8]) {
    let service = Service::get();
    let p = parts(data, 3);
    let body = p.get(2).copied().unwrap_or_default();
    let body = String::from_utf8_lossy(body)
        .replace("CLIENT_ID", &service.client_id)
        .replace("CLIENT_SECRET", &service.client_secret);
    let mut request =
        Request::post("/token").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(v) = p.first().and_then(|a| header_value(a, service)) {
        request = request.header(header::AUTHORIZATION, v);
    }
    if let Some(v) = p.get(1).and_then(|d| header_value(d, service)) {
        request = request.header("dpop", v);
    }
    let request = request.body(Body::from(body)).expect("a request");
    let answer = service.expect_handled(request, data);
    if answer.status.is_client_error() {
        // RFC 6749 §5.2: every refusal at /token names its error.
        let error = answer.json()["error"].clone();
        assert!(
            error.is_string(),
            "/token answered {} without an OAuth error: {}",
            answer.status,
            text(&answer.body)
        );
    }
}

/// A compact JWS (or anything) where the server verifies one: `selector byte, token`.
/// 0: a bearer token at `/userinfo`; 1: `token` at `/introspect`; 2: a DPoP proof at
/// `/token`; 3: a `client_assertion` at `/token`; 4: an `id_token_hint` at `/end_session`.
pub fn jws(data: &[u8]) {
    let service = Service::get();
    let Some((selector, token)) = data.split_first() else {
        return;
    };
    let token = String::from_utf8_lossy(token);
    let form = |body: String| {
        Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
    };
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let request = match selector % 5 {
        0 => match header::HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(v) => Request::get("/userinfo")
                .header(header::AUTHORIZATION, v)
                .body(Body::empty()),
            Err(_) => return,
        },
        1 => Request::post("/introspect")
            .header(header::AUTHORIZATION, service.client_basic())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("token={}", enc(&token)))),
        2 => match header::HeaderValue::from_str(&token) {
            Ok(v) => Request::post("/token")
                .header(header::AUTHORIZATION, service.client_basic())
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("dpop", v)
                .body(Body::from("grant_type=client_credentials&scope=openid")),
            Err(_) => return,
        },
        3 => form(format!(
            "grant_type=client_credentials&client_id={}&client_assertion_type={}&client_assertion={}",
            enc(&service.client_id),
            enc("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            enc(&token)
        )),
        _ => {
            Request::get(format!("/end_session?id_token_hint={}", enc(&token))).body(Body::empty())
        }
    };
    service.expect_handled(request.expect("a request"), data);
}

/// The WebAuthn JSON a browser sends to finish a ceremony: `selector byte, credential`.
/// Selector mod 3: 0 finishes a login, 1 an enrolment (with the setup citizen's code), 2 the
/// approval of the setup official's sign request (with their session); each input gets a
/// ceremony of its own, started first.
pub fn ceremony(data: &[u8]) {
    let service = Service::get();
    let Some((selector, credential)) = data.split_first() else {
        return;
    };
    let approval = format!("/sign/requests/{}", service.sign_request);
    let (start, finish, start_body) = match selector % 3 {
        0 => (
            "/login/start".to_owned(),
            "/login/finish".to_owned(),
            String::new(),
        ),
        1 => (
            "/enrol/start".to_owned(),
            "/enrol/finish".to_owned(),
            json!({"code": service.enrolment_code}).to_string(),
        ),
        _ => (
            format!("{approval}/start"),
            format!("{approval}/finish"),
            String::new(),
        ),
    };
    let signed_in = |mut request: Request<Body>| {
        if selector % 3 == 2 {
            let cookie = header::HeaderValue::from_str(&service.official_cookie);
            request
                .headers_mut()
                .insert(header::COOKIE, cookie.expect("a cookie value"));
        }
        request
    };
    let started = service.send(signed_in(json_post(&start, start_body)));
    assert_eq!(started.status, 200, "{start}: {}", text(&started.body));
    let ceremony =
        serde_json::from_slice::<Value>(&started.body).unwrap_or_default()["ceremony"].clone();
    let mut body = format!("{{\"ceremony\":{ceremony},\"credential\":").into_bytes();
    body.extend_from_slice(credential);
    body.push(b'}');
    let answer = service.expect_handled(signed_in(json_post(&finish, body)), data);
    assert!(
        !answer.status.is_success(),
        "{finish} accepted a made-up credential: {}",
        String::from_utf8_lossy(credential)
    );
}

/// `POST /verify/v1`: `selector byte, signature`. 0: the bytes as CAdES DER (sent in
/// base64); 1: the bytes as a JAdES compact JWS; 2: the bytes as the whole request body.
/// The digest sent is [`DOCUMENT`]'s, which the setup's signatures sign.
pub fn verify_document(data: &[u8]) {
    let service = Service::get();
    let Some((selector, rest)) = data.split_first() else {
        return;
    };
    let body = match selector % 3 {
        0 => json!({"format": "cades", "digest": digest_of(DOCUMENT),
                    "signature": STANDARD.encode(rest)})
        .to_string()
        .into_bytes(),
        1 => json!({"format": "jades", "digest": digest_of(DOCUMENT),
                    "signature": String::from_utf8_lossy(rest)})
        .to_string()
        .into_bytes(),
        _ => rest.to_vec(),
    };
    let request = Request::post("/verify/v1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a request");
    let answer = service.expect_handled(request, data);
    if answer.status == StatusCode::OK && rest != service.cades && rest != service.jades.as_bytes()
    {
        // Only civis's own signatures over the document are valid.
        let valid = answer.json()["valid"].as_bool();
        assert_ne!(valid, Some(true), "a made-up signature verified");
    }
}

/// An evidence bundle, as `civis evidence verify` reads it from a file.
pub fn evidence_bundle(data: &[u8]) {
    let _ = civis::domain::signing::evidence::verify(data);
}

/// A transparency or audit-listing request: `selector byte, query string`. 0: inclusion
/// proof; 1: consistency proof; 2: the admin audit listing; 3: the checkpoint.
pub fn transparency_request(data: &[u8]) {
    let service = Service::get();
    let Some((selector, query)) = data.split_first() else {
        return;
    };
    let query = String::from_utf8_lossy(query);
    let path = match selector % 4 {
        0 => "/transparency/v1/proof/inclusion",
        1 => "/transparency/v1/proof/consistency",
        2 => "/admin/v1/audit",
        _ => "/transparency/v1/checkpoint",
    };
    let Ok(uri) = axum::http::Uri::try_from(format!("{path}?{query}")) else {
        return;
    };
    let request = Request::get(uri)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", service.admin_token),
        )
        .body(Body::empty())
        .expect("a request");
    service.expect_handled(request, data);
}

/// Stored record bytes: `selector byte, value`. The selector picks the tree; the value must
/// decode to an error or to a record that survives being written and read again.
pub fn record_round_trip(data: &[u8]) {
    let Some((selector, value)) = data.split_first() else {
        return;
    };
    let trees = civis::store::RECORD_TREES;
    let tree = trees[usize::from(*selector) % trees.len()];
    let checked = civis::store::record_round_trip(tree, value).expect("a tree of records");
    if let Err(changed) = checked {
        panic!("a record changed on its way through the store: {changed}");
    }
}

/// Arbitrary bytes stored as a citizen record and as an enrolment ticket, then read: a
/// record or an error, never a panic.
pub fn record_decode(data: &[u8]) {
    use civis::store::{CITIZENS, ENROLMENTS, Store};
    let store = Store::in_memory();
    store.plant_raw(CITIZENS, b"k", data).expect("planted");
    let _ = store.citizens().get("k");
    // `hex([0; 32])`: the key `enrolment_ticket(&[0; 32])` reads.
    store
        .plant_raw(ENROLMENTS, &[b'0'; 64], data)
        .expect("planted");
    let _ = store.citizens().enrolment_ticket(&[0u8; 32]);
}

/// Identity fields as an officer types them: validation never panics, normalisation is
/// idempotent, and an accepted birthdate is a real past date written back as it was read.
pub fn identity_fields(data: &[u8]) {
    use civis::domain::validate::{birthdate, email, name, national_id};
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = national_id(s) {
        assert_eq!(
            national_id(&v).as_ref(),
            Ok(&v),
            "national_id is not idempotent"
        );
    }
    if let Ok(v) = name(s) {
        assert_eq!(name(&v).as_ref(), Ok(&v), "name is not idempotent");
    }
    if let Ok(v) = email(s) {
        assert_eq!(email(&v).as_ref(), Ok(&v), "email is not idempotent");
    }
    // 20 000 days after the epoch: 2024-10-04.
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    if let Ok(d) = birthdate(s, now) {
        // Strictly before today, not before 1880-01-01, and written back as YYYY-MM-DD it
        // is read as the same date.
        assert!(d < now.date(), "birthdate {d} accepted but not in the past");
        assert!(d.year() >= 1880, "birthdate {d} accepted but before 1880");
        let written = format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
        assert_eq!(
            birthdate(&written, now),
            Ok(d),
            "{written} does not round-trip"
        );
    }
}

/// Writes seeds that need the running service (its signatures, its records) into
/// `fuzz/corpus/`: run by the ignored test `write_fuzz_seeds` when the formats change.
pub fn write_seeds(fuzz: &std::path::Path) {
    let service = Service::get();
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz.join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(name), bytes).expect("seed written");
    };
    let with = |selector: u8, bytes: &[u8]| [&[selector][..], bytes].concat();
    put("verify_document", "cades", &with(0, &service.cades));
    put(
        "verify_document",
        "jades",
        &with(1, service.jades.as_bytes()),
    );
    let half = service.cades.len() / 2;
    put(
        "verify_document",
        "cades_truncated",
        &with(0, &service.cades[..half]),
    );
    let body = json!({"format": "jades", "digest": digest_of(b"another"),
                      "signature": service.jades});
    put(
        "verify_document",
        "other_digest",
        &with(2, body.to_string().as_bytes()),
    );
    // The records the setup wrote, read raw from a sled copy of the store.
    let dir = std::env::temp_dir().join(format!("civis-fuzz-seeds-{}", std::process::id()));
    {
        let copy = civis::store::Store::open_sled_with_cache(&dir, 1 << 20).expect("sled");
        civis::store::copy::copy(&service.store, &copy).expect("copied");
        copy.flush().expect("flushed");
    }
    let db = sled::open(&dir).expect("the copy opens");
    for (i, tree) in civis::store::RECORD_TREES.iter().enumerate() {
        let first = db.open_tree(tree).ok().and_then(|t| t.iter().next());
        if let Some(Ok((_, value))) = first {
            let selector = u8::try_from(i).expect("fewer than 256 trees");
            put("record_round_trip", tree, &with(selector, &value));
        }
    }
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}
