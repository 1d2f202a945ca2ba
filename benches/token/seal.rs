//! The signing series (issue 10): `POST /seal/v1/sign` with batches of 100 digests, CAdES
//! and JAdES (a point's rate counts digests sealed per second, comparable with the raw
//! signing rate), and `POST /verify/v1` of one sealed signature (verifications per second).
//! The sealing client is a machine client with scope `seal` and a seal from the admin API.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::HTTP_WARMUP;
use crate::load::{Point, Worker, run_point};
use crate::server::{Server, admin_token, client, register};

/// Digests per sealing request.
pub const BATCH: usize = 100;

/// A client with scope `seal`, its seal, and an access token.
pub struct Sealer {
    token: Arc<str>,
}

impl Sealer {
    /// Registers the machine client, asks the admin for its seal and takes a token.
    pub async fn set_up(server: &Server) -> Self {
        let (id, secret) = register(server).await;
        let http = client();
        let seal = http
            .post(format!("{}/admin/v1/seals", server.url))
            .bearer_auth(admin_token())
            .json(&json!({"client_id": id, "organisation": "Bench Agency"}))
            .send()
            .await
            .expect("POST /admin/v1/seals");
        assert_eq!(
            seal.status(),
            201,
            "seal: {}",
            seal.text().await.unwrap_or_default()
        );
        let token: Value = http
            .post(format!("{}/token", server.url))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "seal")])
            .send()
            .await
            .expect("POST /token")
            .json()
            .await
            .expect("token JSON");
        let token = token["access_token"].as_str().expect("access_token");
        Self {
            token: token.into(),
        }
    }
}

/// The body of one sealing request: `BATCH` distinct digests.
fn batch_body(format: &str) -> Value {
    let documents: Vec<Value> = (0..BATCH)
        .map(|i| {
            let digest = ring::digest::digest(&ring::digest::SHA256, format!("doc {i}").as_bytes());
            json!({"name": format!("letter-{i}.pdf"), "digest": URL_SAFE_NO_PAD.encode(digest)})
        })
        .collect();
    json!({"format": format, "documents": documents})
}

struct Sealing {
    client: reqwest::Client,
    url: String,
    token: Arc<str>,
    body: Arc<Value>,
}

impl Worker for Sealing {
    async fn request(&mut self) -> Option<Result<usize, String>> {
        let sent = self
            .client
            .post(self.url.as_str())
            .bearer_auth(&*self.token)
            .json(&*self.body)
            .send()
            .await;
        Some(match sent {
            Ok(r) => {
                let status = r.status();
                let body: Value = r.json().await.unwrap_or_default();
                let n = body["signatures"].as_array().map_or(0, Vec::len);
                if status == 200 && n == BATCH {
                    Ok(BATCH)
                } else {
                    Err(format!("{status}: {n} signatures"))
                }
            }
            Err(e) => Err(e.to_string()),
        })
    }
}

struct Verifying {
    client: reqwest::Client,
    url: String,
    body: Arc<Value>,
}

impl Worker for Verifying {
    async fn request(&mut self) -> Option<Result<usize, String>> {
        let sent = self
            .client
            .post(self.url.as_str())
            .json(&*self.body)
            .send()
            .await;
        Some(match sent {
            Ok(r) => {
                let status = r.status();
                let body: Value = r.json().await.unwrap_or_default();
                if status == 200 && body["valid"] == true {
                    Ok(1)
                } else {
                    Err(format!("{status}: valid {}", body["valid"]))
                }
            }
            Err(e) => Err(e.to_string()),
        })
    }
}

/// One sealing point: K connections each sealing batches of `BATCH` digests in `format`.
pub async fn sealing_point(
    server: &Server,
    sealer: &Sealer,
    format: &str,
    k: usize,
    measure: std::time::Duration,
) -> Point {
    let body = Arc::new(batch_body(format));
    let workers = (0..k)
        .map(|_| Sealing {
            client: client(),
            url: format!("{}/seal/v1/sign", server.url),
            token: sealer.token.clone(),
            body: body.clone(),
        })
        .collect();
    run_point(server, workers, HTTP_WARMUP, measure).await
}

/// One verification point: K connections verifying one sealed CAdES signature.
pub async fn verification_point(
    server: &Server,
    sealer: &Sealer,
    k: usize,
    measure: std::time::Duration,
) -> Point {
    let sealed: Value = client()
        .post(format!("{}/seal/v1/sign", server.url))
        .bearer_auth(&*sealer.token)
        .json(&batch_body("cades"))
        .send()
        .await
        .expect("seal one batch")
        .json()
        .await
        .expect("sealing JSON");
    let digest = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, b"doc 0"));
    let body = Arc::new(json!({
        "format": "cades",
        "digest": digest,
        "signature": sealed["signatures"][0]["signature"],
    }));
    let workers = (0..k)
        .map(|_| Verifying {
            client: client(),
            url: format!("{}/verify/v1", server.url),
            body: body.clone(),
        })
        .collect();
    run_point(server, workers, HTTP_WARMUP, measure).await
}
