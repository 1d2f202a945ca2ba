//! DPoP proofs (RFC 9449 §4): parsing and verifying the `DPoP` header's JWT on its own (the
//! `dpop+jwt` type, ES256 only, a public P-256 `jwk` in the header, the signature by that
//! key) and the key's RFC 7638 thumbprint. What the claims must say for a given request, the
//! replay check and server nonces are the domain's (`domain::oidc::dpop`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::jwt::{self, Expect, Rejected, Typ};

/// Longest proof accepted, in bytes: a P-256 proof with every claim is under 1 KiB.
pub const MAX_PROOF_LEN: usize = 4096;

/// A verified proof: the key's thumbprint and the claims as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 thumbprint of the proof's key (`cnf.jkt` of tokens bound to it).
    pub jkt: String,
    /// Unique id of the proof.
    pub jti: String,
    /// HTTP method the proof is for.
    pub htm: String,
    /// HTTP URI the proof is for.
    pub htu: String,
    /// When it was made (seconds since the epoch).
    pub iat: i64,
    /// base64url SHA-256 of the access token it goes with.
    pub ath: Option<String>,
    /// The server nonce it carries.
    pub nonce: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    jwk: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Claims {
    jti: String,
    htm: String,
    htu: String,
    iat: serde_json::Number,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Verifies a proof's form and signature (not what its claims must say).
///
/// # Errors
/// A reason for the log when the proof is malformed, not `dpop+jwt`, not ES256, has no
/// usable public `jwk`, or its signature does not verify.
pub fn verify(proof: &str) -> Result<Proof, String> {
    if proof.len() > MAX_PROOF_LEN {
        return Err("proof too long".into());
    }
    let header = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Header>(&h).ok())
        .ok_or("header is not base64url JSON")?;
    let key = header
        .jwk
        .as_ref()
        .and_then(jwt::jwk_public_key)
        .ok_or("header jwk must be a public EC P-256 key")?;
    let jkt = jwt::thumbprint(key.sec1_point());
    let expect = Expect {
        typ: Typ::Is("dpop+jwt"),
        issuer: None,
        audience: None,
        required: &[],
    };
    let claims: Claims = jwt::verify(proof, |_| vec![key], &expect).map_err(|e| match e {
        Rejected::Typ => "typ must be dpop+jwt".to_owned(),
        other => other.to_string(),
    })?;
    let iat = claims
        .iat
        .as_i64()
        .or_else(|| claims.iat.as_f64().map(f64_seconds))
        .ok_or("iat is not a number")?;
    Ok(Proof {
        jkt,
        jti: claims.jti,
        htm: claims.htm,
        htu: claims.htu,
        iat,
        ath: claims.ath,
        nonce: claims.nonce,
    })
}

fn f64_seconds(v: f64) -> i64 {
    if !v.is_finite() {
        return i64::MIN;
    }
    // NumericDate may carry fractions (RFC 7519 §2); whole seconds are precise enough, and
    // an absurd value saturates and is refused as stale or in the future.
    #[allow(clippy::cast_possible_truncation)]
    let secs = v.floor() as i64;
    secs
}

/// The `ath` an access token's proofs carry: base64url SHA-256 of the token.
pub fn ath(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(super::digest::sha256(access_token.as_bytes()))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A client-side DPoP key for tests.
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

    /// A P-256 key that makes proofs.
    pub struct DpopKey(EcdsaKeyPair);

    impl DpopKey {
        pub fn new() -> Self {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            Self(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap(),
            )
        }

        pub fn jwk(&self) -> serde_json::Value {
            let p = self.0.public_key().as_ref();
            serde_json::json!({"kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..])})
        }

        pub fn thumbprint(&self) -> String {
            crate::crypto::jwt::thumbprint(self.0.public_key().as_ref())
        }

        /// A proof with `header` merged over the usual one and these claims.
        pub fn proof_with(&self, header: serde_json::Value, claims: &serde_json::Value) -> String {
            let mut h = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk()});
            if let (Some(h), Some(extra)) = (h.as_object_mut(), header.as_object()) {
                for (k, v) in extra {
                    h.insert(k.clone(), v.clone());
                }
            }
            let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).unwrap());
            out.push('.');
            out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()));
            let rng = ring::rand::SystemRandom::new();
            let sig = self.0.sign(&rng, out.as_bytes()).unwrap();
            out.push('.');
            out.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::DpopKey;
    use super::*;
    use serde_json::json;

    fn claims() -> serde_json::Value {
        json!({"jti": "j1", "htm": "POST", "htu": "https://id.example/token", "iat": 1_700_000_000})
    }

    #[test]
    fn a_good_proof_verifies_with_its_thumbprint() {
        let key = DpopKey::new();
        let p = verify(&key.proof_with(json!({}), &claims())).unwrap();
        assert_eq!(p.jkt, key.thumbprint());
        assert_eq!((p.htm.as_str(), p.iat), ("POST", 1_700_000_000));
        assert_eq!(p.ath, None);
    }

    #[test]
    fn bad_proofs_are_refused() {
        let key = DpopKey::new();
        let other = DpopKey::new();
        let mut with_private = key.jwk();
        with_private["d"] = json!("AAAA");
        for (why, header) in [
            ("typ", json!({"typ": "JWT"})),
            ("no typ", json!({"typ": null})),
            ("alg", json!({"alg": "HS256"})),
            ("alg none", json!({"alg": "none"})),
            ("no jwk", json!({"jwk": null})),
            ("private jwk", json!({"jwk": with_private})),
            (
                "RSA jwk",
                json!({"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
            ),
            ("another key", json!({"jwk": other.jwk()})),
        ] {
            assert!(verify(&key.proof_with(header, &claims())).is_err(), "{why}");
        }
        let good = key.proof_with(json!({}), &claims());
        let mut parts: Vec<&str> = good.split('.').collect();
        let tampered = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"jti": "j2", "htm": "POST", "htu": "x", "iat": 1})).unwrap(),
        );
        parts[1] = &tampered;
        assert!(verify(&parts.join(".")).is_err(), "changed claims");
        let mut missing = claims();
        missing.as_object_mut().unwrap().remove("htu");
        assert!(verify(&key.proof_with(json!({}), &missing)).is_err());
        assert!(verify(&"a".repeat(MAX_PROOF_LEN + 1)).is_err());
        assert!(verify("").is_err() && verify("...").is_err());
    }

    #[test]
    fn ath_is_the_base64url_sha256_of_the_token() {
        // RFC 9449 §7.1 example: the token and its ath.
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }
}
