//! Complete passkey logins over HTTP (`POST /login/start`, then `POST /login/finish` with
//! an assertion) for loaded citizens chosen at random over all N, and the one real
//! enrolment whose passkey the loader copies.
//!
//! The assertion is what an authenticator sends (authenticator data, client data, an
//! ECDSA P-256 signature by ring over both, the user handle); the key is the software
//! device's from the enrolment. Each worker owns the citizens `i ≡ w (mod K)` and the
//! counters rise with every login, so no login looks like a cloned authenticator.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::EcdsaKeyPair;
use serde_json::{Value, json};

use crate::HTTP_WARMUP;
use crate::authenticator::Device;
use crate::load::{Point, Worker, run_point};
use crate::loader::{citizen_uuid, credential_id};
use crate::server::{Server, admin_token, client};

/// The enrolled passkey the loader copies and the key that signs for every copy.
pub struct Template {
    pub credential_id: String,
    pub key: Arc<EcdsaKeyPair>,
}

async fn post(http: &reqwest::Client, url: String, body: &Value, bearer: Option<&str>) -> Value {
    let mut req = http.post(&url).json(body);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or_default();
    assert!(status.is_success(), "POST {url}: {status} {body}");
    body
}

/// Registers a citizen and enrols a passkey on the software device through the server.
pub async fn enrol_template(server: &Server) -> Template {
    let http = client();
    let citizen = post(
        &http,
        format!("{}/admin/v1/citizens", server.url),
        &json!({"given_name": "Ana", "family_name": "Novak",
                "birthdate": "1990-04-01", "national_id": "BENCH-TEMPLATE"}),
        Some(&admin_token()),
    )
    .await;
    let mut device = Device::new(&server.origin());
    let started = post(
        &http,
        format!("{}/enrol/start", server.url),
        &json!({"code": citizen["enrolment_code"]}),
        None,
    )
    .await;
    let credential = device.create(&started["options"]).await.expect("device");
    post(
        &http,
        format!("{}/enrol/finish", server.url),
        &json!({"ceremony": started["ceremony"], "credential": credential}),
        None,
    )
    .await;
    let passkey = device.passkey().expect("the device's passkey");
    Template {
        credential_id: URL_SAFE_NO_PAD.encode(passkey.credential_id.as_slice()),
        key: Arc::new(device.credential_key()),
    }
}

/// Signature counters, rising over the whole run.
static COUNTER: AtomicU32 = AtomicU32::new(1);

struct Login {
    http: reqwest::Client,
    base: String,
    origin: String,
    rp_id_hash: Vec<u8>,
    flags: u8,
    key: Arc<EcdsaKeyPair>,
    rng: ring::rand::SystemRandom,
    /// This worker's citizens: `i ≡ first (mod step)`, walked at random.
    first: u64,
    step: u64,
    n: u64,
    state: u64,
}

impl Login {
    fn next_citizen(&mut self) -> u64 {
        // xorshift64: a random walk over this worker's share of the N citizens.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let share = self.n.div_ceil(self.step);
        let i = self.first + (self.state % share) * self.step;
        if i < self.n { i } else { self.first }
    }

    fn assertion(&mut self, challenge: &str) -> Value {
        let i = self.next_citizen();
        let client_data = serde_json::to_vec(&json!({
            "type": "webauthn.get",
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .expect("client data");
        let mut auth_data = self.rp_id_hash.clone();
        auth_data.push(self.flags);
        auth_data.extend(COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        let mut signed = auth_data.clone();
        signed.extend(ring::digest::digest(&ring::digest::SHA256, &client_data).as_ref());
        let signature = self.key.sign(&self.rng, &signed).expect("sign");
        let id = URL_SAFE_NO_PAD.encode(credential_id(i));
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": URL_SAFE_NO_PAD.encode(&auth_data),
                "clientDataJSON": URL_SAFE_NO_PAD.encode(&client_data),
                "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
                "userHandle": URL_SAFE_NO_PAD.encode(citizen_uuid(i).as_bytes()),
            },
            "extensions": {},
        })
    }

    async fn login(&mut self) -> Result<(), String> {
        let started: Value = self
            .http
            .post(format!("{}/login/start", self.base))
            .json(&json!({}))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let challenge = started["options"]["publicKey"]["challenge"]
            .as_str()
            .ok_or_else(|| format!("no challenge in {started}"))?
            .to_owned();
        let credential = self.assertion(&challenge);
        let resp = self
            .http
            .post(format!("{}/login/finish", self.base))
            .json(&json!({"ceremony": started["ceremony"], "credential": credential}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        if status == 200 && resp.headers().contains_key("set-cookie") {
            Ok(())
        } else {
            Err(format!(
                "{status}: {}",
                resp.text().await.unwrap_or_default()
            ))
        }
    }
}

impl Worker for Login {
    async fn request(&mut self) -> Option<Result<usize, String>> {
        Some(self.login().await.map(|()| 1))
    }
}

/// Authenticator flags of the template's enrolment: user present and verified, and the
/// backup flags it was registered with (the server holds a login to them).
pub fn flags(store_passkey: &civis::domain::passkeys::StoredPasskey) -> u8 {
    let c: webauthn_rs::prelude::Credential = store_passkey.passkey.clone().into();
    0x01 | 0x04 | if c.backup_eligible { 0x08 } else { 0 } | if c.backup_state { 0x10 } else { 0 }
}

/// K connections logging in citizens of the `n` loaded ones.
pub async fn login_point(
    server: &Server,
    key: &Arc<EcdsaKeyPair>,
    flags: u8,
    n: u64,
    k: usize,
    measure: Duration,
) -> Point {
    let rp_id_hash = ring::digest::digest(&ring::digest::SHA256, b"localhost")
        .as_ref()
        .to_vec();
    let workers = (0..k as u64)
        .map(|w| Login {
            http: client(),
            base: server.url.clone(),
            origin: server.origin(),
            rp_id_hash: rp_id_hash.clone(),
            flags,
            key: key.clone(),
            rng: ring::rand::SystemRandom::new(),
            first: w,
            step: k as u64,
            n,
            state: 0x2545_F491_4F6C_DD1D ^ (w + 1).wrapping_mul(0x9E37_79B9),
        })
        .collect();
    run_point(server, workers, HTTP_WARMUP, measure).await
}
