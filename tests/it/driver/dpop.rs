//! A client's keys as FAPI 2.0 tests need them: a DPoP key that makes RFC 9449 proofs, and a
//! `private_key_jwt` key that makes RFC 7523 assertions. Thumbprints are computed here from
//! RFC 7638, not with civis's own function.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use super::{Reply, Req};
use crate::support::Server;

/// A P-256 key pair on the client's side (with its PKCS#8 form, for outside programs).
pub struct ClientKey(EcdsaKeyPair, Vec<u8>);

impl ClientKey {
    pub fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Self(
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
            pkcs8.as_ref().to_vec(),
        )
    }

    /// The private key, PKCS#8 DER in standard base64 (for a Node relying party).
    pub fn pkcs8_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.1)
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        let p = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..])})
    }

    /// RFC 7638 thumbprint.
    pub fn thumbprint(&self) -> String {
        let j = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            j["x"].as_str().unwrap(),
            j["y"].as_str().unwrap()
        );
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ))
    }

    /// A compact ES256 JWS of `claims` with `header`.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()));
        let rng = ring::rand::SystemRandom::new();
        let sig = self.0.sign(&rng, out.as_bytes()).unwrap();
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
        out
    }

    /// A DPoP proof for `htm` `htu`, made `age` seconds before `now` (unix seconds), with an
    /// optional nonce and access token (its `ath`).
    pub fn proof(&self, p: Proof<'_>) -> String {
        let mut claims = json!({"jti": random_id(), "htm": p.htm, "htu": p.htu, "iat": p.iat});
        if let Some(n) = p.nonce {
            claims["nonce"] = n.into();
        }
        if let Some(t) = p.access_token {
            claims["ath"] = URL_SAFE_NO_PAD
                .encode(ring::digest::digest(&ring::digest::SHA256, t.as_bytes()))
                .into();
        }
        self.sign(
            &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()}),
            &claims,
        )
    }

    /// A `private_key_jwt` assertion of `client_id` for audience `aud`, issued at `iat`.
    pub fn assertion(&self, client_id: &str, aud: &str, iat: i64) -> String {
        self.sign(
            &json!({"alg": "ES256", "kid": "k1"}),
            &json!({"iss": client_id, "sub": client_id, "aud": aud, "jti": random_id(),
                "iat": iat, "exp": iat + 60}),
        )
    }
}

/// What a proof says.
#[derive(Clone, Copy)]
pub struct Proof<'a> {
    pub htm: &'a str,
    pub htu: &'a str,
    pub iat: i64,
    pub nonce: Option<&'a str>,
    pub access_token: Option<&'a str>,
}

fn random_id() -> String {
    let mut b = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    URL_SAFE_NO_PAD.encode(b)
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Req {
    /// Adds a DPoP proof header.
    pub fn dpop(self, proof: &str) -> Self {
        self.header("DPoP", proof)
    }
}

impl Server {
    /// The form fields of `private_key_jwt` client authentication with `assertion`.
    pub fn assertion_fields(assertion: &str) -> [(&'static str, &str); 2] {
        [
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ]
    }

    /// The server nonce: a token request with a proof without one is answered
    /// `use_dpop_nonce` and the nonce.
    pub async fn dpop_nonce(&self, key: &ClientKey) -> String {
        self.dpop_nonce_at(key, 0).await
    }

    /// [`Server::dpop_nonce`] for a server whose clock is `ahead` seconds ahead.
    pub async fn dpop_nonce_at(&self, key: &ClientKey, ahead: i64) -> String {
        let proof = key.proof(Proof {
            htm: "POST",
            htu: &self.at("/token"),
            iat: unix_now() + ahead,
            nonce: None,
            access_token: None,
        });
        let reply = self
            .post("/token")
            .dpop(&proof)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        let nonce = reply.header("dpop-nonce").to_owned();
        assert!(!nonce.is_empty(), "{} {}", reply.status, reply.text);
        nonce
    }

    /// A resource request with `token` under the DPoP scheme and `proof`.
    pub fn with_dpop(&self, req: Req, token: &str, proof: &str) -> Req {
        req.authorization(Some(&format!("DPoP {token}")))
            .dpop(proof)
    }

    /// `GET /userinfo` with a DPoP-bound token and a fresh proof by `key`.
    pub async fn userinfo_dpop(&self, key: &ClientKey, token: &str) -> Reply {
        let proof = key.proof(Proof {
            htm: "GET",
            htu: &self.at("/userinfo"),
            iat: unix_now(),
            nonce: None,
            access_token: Some(token),
        });
        self.with_dpop(self.get("/userinfo"), token, &proof)
            .send()
            .await
    }
}
