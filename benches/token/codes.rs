//! Authorization codes for the redemption series: a citizen with a passkey on the software
//! device of the integration tests, logged in once; a confidential web client the citizen
//! has consented to; then each `GET /authorize` with the session cookie is answered by a
//! redirect carrying a fresh code.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::authenticator::Device;
use crate::server::{Server, admin_token, client};

/// Registered for the client and never contacted: the bench reads the redirect itself.
pub const REDIRECT: &str = "http://127.0.0.1:9/cb";

/// A code and the PKCE verifier whose S256 challenge it was issued for.
pub struct Code {
    pub code: String,
    pub verifier: String,
}

/// The bench's relying party: a logged-in browser (its session cookie) and the client.
pub struct RelyingParty {
    pub client_id: String,
    pub secret: String,
    cookie: String,
    base: String,
    /// Does not follow redirects: the code is in the `Location` of the answer.
    browser: reqwest::Client,
}

async fn post_json(server: &Server, path: &str, body: &Value) -> (u16, Value, Option<String>) {
    let resp = client()
        .post(format!("{}{path}", server.url))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    (status, resp.json().await.unwrap_or(Value::Null), cookie)
}

async fn admin_post(server: &Server, path: &str, body: &Value) -> Value {
    let resp = client()
        .post(format!("{}{path}", server.url))
        .bearer_auth(admin_token())
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or_default();
    assert_eq!(status, 201, "POST {path}: {body}");
    body
}

/// A random PKCE verifier (43 characters) and its S256 challenge.
fn pkce(rng: &ring::rand::SystemRandom) -> (String, String) {
    let bytes: [u8; 32] = ring::rand::generate(rng).expect("random").expose();
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(challenge))
}

fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    html[start..].split('"').next().map(str::to_owned)
}

impl RelyingParty {
    /// Registers a citizen, enrols a passkey, logs in, registers the client and answers its
    /// consent page once. Panics with the server's answer when a step fails.
    pub async fn set_up(server: &Server) -> Self {
        let citizen = admin_post(
            server,
            "/admin/v1/citizens",
            &json!({"given_name": "Ana", "family_name": "Novak",
                    "birthdate": "1990-04-01", "national_id": "BENCH-RP-0001"}),
        )
        .await;
        let mut device = Device::new(&server.origin());
        let code = citizen["enrolment_code"].as_str().expect("enrolment_code");
        let (status, started, _) = post_json(server, "/enrol/start", &json!({"code": code})).await;
        assert_eq!(status, 200, "/enrol/start: {started}");
        let credential = device.create(&started["options"]).await.expect("device");
        let (status, body, _) = post_json(
            server,
            "/enrol/finish",
            &json!({"ceremony": started["ceremony"], "credential": credential}),
        )
        .await;
        assert_eq!(status, 201, "/enrol/finish: {body}");
        let (status, started, _) = post_json(server, "/login/start", &json!({})).await;
        assert_eq!(status, 200, "/login/start: {started}");
        let credential = device.get(&started["options"]).await.expect("device");
        let (status, body, cookie) = post_json(
            server,
            "/login/finish",
            &json!({"ceremony": started["ceremony"], "credential": credential}),
        )
        .await;
        assert_eq!(status, 200, "/login/finish: {body}");
        let registered = admin_post(
            server,
            "/admin/v1/clients",
            &json!({"name": "bench web client", "redirect_uris": [REDIRECT],
                    "scope": "openid profile"}),
        )
        .await;
        let rp = Self {
            client_id: registered["client_id"].as_str().expect("client_id").into(),
            secret: registered["client_secret"]
                .as_str()
                .expect("client_secret")
                .into(),
            cookie: cookie.expect("session cookie from /login/finish"),
            base: server.url.clone(),
            browser: reqwest::Client::builder()
                .http1_only()
                .tcp_nodelay(true)
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .expect("reqwest client"),
        };
        rp.consent().await;
        rp
    }

    fn authorize_url(&self, challenge: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid profile")
            .append_pair("state", "bench")
            .append_pair("nonce", "bench")
            .append_pair("code_challenge", challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}/authorize?{query}", self.base)
    }

    /// The first authorization shows the consent page; allowing it lets later ones
    /// redirect straight back with a code.
    async fn consent(&self) {
        let (_, challenge) = pkce(&ring::rand::SystemRandom::new());
        let resp = self
            .browser
            .get(self.authorize_url(&challenge))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("GET /authorize");
        let status = resp.status();
        let html = resp.text().await.unwrap_or_default();
        assert_eq!(status, 200, "consent page expected: {html}");
        let field = |name| hidden_field(&html, name).unwrap_or_else(|| panic!("{name} in {html}"));
        let resp = self
            .browser
            .post(format!("{}/authorize/consent", self.base))
            .header("cookie", &self.cookie)
            .form(&[
                ("request", field("request")),
                ("csrf", field("csrf")),
                ("decision", "allow".into()),
            ])
            .send()
            .await
            .expect("POST /authorize/consent");
        assert!(resp.status().is_redirection(), "consent: {}", resp.status());
    }

    /// One code: a redirect to the client whose `Location` carries `code=`.
    async fn issue(&self, rng: &ring::rand::SystemRandom) -> Result<Code, String> {
        let (verifier, challenge) = pkce(rng);
        let resp = self
            .browser
            .get(self.authorize_url(&challenge))
            .header("cookie", &self.cookie)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !status.is_redirection() || !location.starts_with(REDIRECT) {
            let body = resp.text().await.unwrap_or_default();
            return Err(format!("{status} {location}: {body}"));
        }
        url::Url::parse(&location)
            .ok()
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
            })
            .map(|code| Code { code, verifier })
            .ok_or_else(|| format!("no code in {location}"))
    }

    /// Up to `n` codes from `concurrency` browsers at once, stopping at `deadline`. Returns
    /// them in issue order (oldest first), the issue rate, and the failures.
    pub async fn issue_batch(
        self: &Arc<Self>,
        n: usize,
        concurrency: usize,
        deadline: Duration,
    ) -> Batch {
        let start = Instant::now();
        let stop = start + deadline;
        let next = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                let (rp, next) = (self.clone(), next.clone());
                tokio::spawn(async move {
                    let rng = ring::rand::SystemRandom::new();
                    let mut mine = Vec::new();
                    let (mut errors, mut first_error) = (0u64, None);
                    while Instant::now() < stop {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        if seq >= n {
                            break;
                        }
                        match rp.issue(&rng).await {
                            Ok(c) => mine.push((seq, c)),
                            Err(e) => {
                                errors += 1;
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                    (mine, errors, first_error)
                })
            })
            .collect();
        let mut batch = Batch::default();
        let mut all = Vec::new();
        for t in tasks {
            let (mine, errors, err) = t.await.expect("issuing task");
            all.extend(mine);
            batch.errors += errors;
            if batch.first_error.is_none() {
                batch.first_error = err;
            }
        }
        // Oldest first, so the redemption meets each code as young as possible.
        all.sort_by_key(|(seq, _)| *seq);
        batch.codes = all.into_iter().map(|(_, c)| c).collect();
        batch.per_second = batch.codes.len() as f64 / start.elapsed().as_secs_f64();
        batch
    }
}

#[derive(Default)]
pub struct Batch {
    pub codes: Vec<Code>,
    pub per_second: f64,
    pub errors: u64,
    pub first_error: Option<String>,
}
