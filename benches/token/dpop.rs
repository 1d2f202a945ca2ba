//! `POST /token` client_credentials with a DPoP proof per request (RFC 9449), against the
//! same request as a bearer client in the same run. Each connection has its own P-256 key,
//! signs a fresh proof for every request (as a DPoP client must, on this machine's shared
//! cores) and keeps the server nonce the answers carry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use std::time::Duration;

use crate::load::{Point, Worker, run_point};
use crate::server::{Server, client};

/// One keep-alive connection of a DPoP client.
struct DpopConn {
    client: reqwest::Client,
    url: String,
    /// The token endpoint as the issuer names it (the proofs' `htu`).
    htu: String,
    id: String,
    secret: String,
    key: EcdsaKeyPair,
    /// base64url of the proof header (with the public JWK), made once.
    header: String,
    nonce: Option<String>,
    sent: u64,
    rng: ring::rand::SystemRandom,
}

impl DpopConn {
    fn new(url: String, htu: String, id: &str, secret: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("key generation");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key");
        let p = key.public_key().as_ref();
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..])}});
        Self {
            client: client(),
            url,
            htu,
            id: id.to_owned(),
            secret: secret.to_owned(),
            key,
            header: URL_SAFE_NO_PAD.encode(header.to_string()),
            nonce: None,
            sent: 0,
            rng,
        }
    }

    fn proof(&mut self) -> String {
        self.sent += 1;
        let iat = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = serde_json::json!({"jti": format!("{:p}-{}", &self.key, self.sent),
            "htm": "POST", "htu": self.htu, "iat": iat, "nonce": self.nonce});
        let mut out = format!(
            "{}.{}",
            self.header,
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.key.sign(&self.rng, out.as_bytes()).expect("sign");
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        out
    }
}

impl Worker for DpopConn {
    async fn request(&mut self) -> Option<Result<usize, String>> {
        // The first request of a connection learns the nonce (use_dpop_nonce) and retries.
        for _ in 0..2 {
            let proof = self.proof();
            let r = match self
                .client
                .post(self.url.as_str())
                .basic_auth(&self.id, Some(&self.secret))
                .header("dpop", proof)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => return Some(Err(e.to_string())),
            };
            let status = r.status();
            if let Some(n) = r.headers().get("dpop-nonce").and_then(|v| v.to_str().ok()) {
                self.nonce = Some(n.to_owned());
            }
            let b = match r.bytes().await {
                Ok(b) => b,
                Err(e) => return Some(Err(format!("{status}: body: {e}"))),
            };
            if status == 200 && b.starts_with(b"{\"access_token\":\"ey") {
                return Some(Ok(1));
            }
            if !(status == 400 && b.windows(14).any(|w| w == b"use_dpop_nonce")) {
                return Some(Err(format!("{status}: {}", String::from_utf8_lossy(&b))));
            }
        }
        Some(Err("use_dpop_nonce twice".into()))
    }
}

/// K DPoP client_credentials connections for warm-up + `measure`.
pub async fn dpop_point(
    server: &Server,
    (id, secret): (&str, &str),
    k: usize,
    measure: Duration,
) -> Point {
    let conns = (0..k)
        .map(|i| {
            DpopConn::new(
                format!("{}/token", server.url_for(i)),
                format!("{}/token", server.origin()),
                id,
                secret,
            )
        })
        .collect();
    run_point(server, conns, crate::HTTP_WARMUP, measure).await
}
