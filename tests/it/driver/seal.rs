//! Sealing and verification as an agency and a verifier use them: a sealing client with
//! its token and seal, `POST /seal/v1/sign`, `POST /verify/v1`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::Reply;
use super::admin::{Client, SigningKey};
use crate::support::Server;

/// An agency client that may seal, with its access token and its seal.
pub struct Sealer {
    pub client: Client,
    pub token: String,
    pub seal: SigningKey,
}

/// A document's digest as the API takes it: base64url of SHA-256, no padding.
pub fn digest_of(document: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(civis::crypto::digest::sha256(document))
}

/// `{name, digest}` of a document.
pub fn document(name: &str, bytes: &[u8]) -> Value {
    json!({"name": name, "digest": digest_of(bytes)})
}

impl Server {
    /// A `client_credentials` access token of a machine client.
    pub async fn client_token(&self, client: &Client) -> String {
        self.client_credentials(client.auth()).await.tokens().access
    }

    /// A machine client with scope `seal`, a seal for "Tax Office" and a token.
    pub async fn sealer(&self) -> Sealer {
        let client = self.machine_client("Tax office sealing", "seal").await;
        let seal = self.create_seal(&client.id, "Tax Office").await;
        let token = self.client_token(&client).await;
        Sealer {
            client,
            token,
            seal,
        }
    }

    /// `POST /seal/v1/sign` with `authorization` (a whole header value, or none).
    pub async fn post_seal_sign(&self, authorization: Option<&str>, body: &Value) -> Reply {
        self.post("/seal/v1/sign")
            .authorization(authorization)
            .json(body)
            .send()
            .await
    }

    /// Seals `documents` in `format` with the sealer's token; must be accepted. Returns
    /// the signatures as answered.
    pub async fn seal(&self, sealer: &Sealer, documents: &[Value], format: &str) -> Vec<Value> {
        let resp = self
            .post_seal_sign(
                Some(&format!("Bearer {}", sealer.token)),
                &json!({"documents": documents, "format": format}),
            )
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json()["signatures"].as_array().unwrap().clone()
    }

    /// `POST /verify/v1`, whatever the answer.
    pub async fn post_verify(&self, digest: &str, signature: &str, format: &str) -> Reply {
        self.post("/verify/v1")
            .json(&json!({"digest": digest, "signature": signature, "format": format}))
            .send()
            .await
    }

    /// Verifies a signature that must be readable (200); returns the answer.
    pub async fn verify(&self, digest: &str, signature: &str, format: &str) -> Value {
        let resp = self.post_verify(digest, signature, format).await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        resp.json().clone()
    }
}

/// The names of the checks that failed in a `/verify/v1` answer.
pub fn failed_checks(verification: &Value) -> Vec<String> {
    verification["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] != true)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The detail of one check.
pub fn check_detail<'a>(verification: &'a Value, name: &str) -> &'a str {
    verification["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .and_then(|c| c["detail"].as_str())
        .unwrap_or_else(|| panic!("no check {name}: {verification}"))
}
