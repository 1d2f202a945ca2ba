//! JWTs with ES256 on ring: we sign directly with the cached ring key (fast, no re-parsing
//! per token) and verify through `jsonwebtoken`, whose crypto backend is this module's
//! ring-backed [`CryptoProvider`] (so neither aws-lc-rs nor the `rsa` crate is linked).

use std::sync::Once;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use serde::Serialize;

use super::TokenKey;

/// RFC 7638 thumbprint of a P-256 public key given as an uncompressed SEC1 point.
pub fn thumbprint(point: &[u8]) -> String {
    let (x, y) = xy(point);
    // Members in lexicographic order, no whitespace, as RFC 7638 §3.2 requires.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

fn xy(point: &[u8]) -> (String, String) {
    let coords = point.get(1..).unwrap_or_default();
    let (x, y) = coords.split_at(coords.len() / 2);
    (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
}

impl TokenKey {
    /// The public key as a JWK for `jwks_uri`.
    pub fn public_jwk(&self) -> serde_json::Value {
        let (x, y) = xy(self.public_point());
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": self.kid(), "use": "sig", "alg": "ES256",
        })
    }

    /// A `jsonwebtoken` verification key for this key's public half.
    ///
    /// # Errors
    /// Never for a well-formed key; propagated from `jsonwebtoken`.
    pub fn decoding_key(&self) -> Result<DecodingKey, JwtError> {
        let (x, y) = xy(self.public_point());
        DecodingKey::from_ec_components(&x, &y)
    }

    /// Signs `claims` as a compact JWS with header `{"alg":"ES256","typ":typ,"kid":…}`.
    ///
    /// # Errors
    /// When the claims cannot be serialised or the random generator fails.
    pub fn sign_jwt<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, JwtError> {
        let header = serde_json::json!({"alg": "ES256", "typ": typ, "kid": self.kid()});
        let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
        let sig = self
            .sign(out.as_bytes())
            .map_err(|_| JwtError::from(ErrorKind::InvalidEcdsaKey))?;
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(out)
    }
}

/// Installs the ring provider as jsonwebtoken's process default (idempotent). Call before
/// any `jsonwebtoken::decode`.
pub fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // An Err means another provider is installed already; ours is then not used, which
        // only happens if some other crate installed one first — nothing to do about it.
        let _ = RING_PROVIDER.install_default();
    });
}

/// ES256-only provider on ring. Other algorithms are refused, which also shuts the door on
/// `alg` confusion (HS256 with a public key, `none`).
static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

fn new_signer(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::ES256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let rng = ring::rand::SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.as_bytes(), &rng)
        .map_err(|_| JwtError::from(ErrorKind::InvalidEcdsaKey))?;
    Ok(Box::new(RingSigner { pair, rng }))
}

fn new_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::ES256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let point = key.try_get_as_bytes()?;
    if point.len() != 65 || point.first() != Some(&4) {
        return Err(ErrorKind::InvalidEcdsaKey.into());
    }
    Ok(Box::new(RingVerifier(point.to_vec())))
}

struct RingSigner {
    pair: EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        self.pair
            .sign(&self.rng, msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

struct RingVerifier(Vec<u8>);

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.0)
            .verify(msg, sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::ES256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Validation, decode};

    fn key() -> TokenKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        TokenKey::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    fn claims() -> Claims {
        Claims {
            sub: "c1".into(),
            exp: 4_000_000_000,
        }
    }

    #[test]
    fn sign_then_verify_with_jsonwebtoken() {
        install_provider();
        let k = key();
        let jwt = k.sign_jwt("JWT", &claims()).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.kid.as_deref(), Some(k.kid()));
        let data = decode::<Claims>(
            &jwt,
            &k.decoding_key().unwrap(),
            &Validation::new(Algorithm::ES256),
        )
        .unwrap();
        assert_eq!(data.claims, claims());
    }

    #[test]
    fn jsonwebtoken_encode_goes_through_ring_provider() {
        install_provider();
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let k = TokenKey::from_pkcs8(pkcs8.as_ref()).unwrap();
        let enc = EncodingKey::from_ec_der(pkcs8.as_ref());
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::ES256),
            &claims(),
            &enc,
        )
        .unwrap();
        decode::<Claims>(
            &jwt,
            &k.decoding_key().unwrap(),
            &Validation::new(Algorithm::ES256),
        )
        .unwrap();
    }

    #[test]
    fn tampered_wrong_key_and_alg_confusion_fail() {
        install_provider();
        let k = key();
        let v = Validation::new(Algorithm::ES256);
        let dk = k.decoding_key().unwrap();
        let jwt = k.sign_jwt("JWT", &claims()).unwrap();
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":4000000000}"#);
        assert!(
            decode::<Claims>(&parts.join("."), &dk, &v).is_err(),
            "tampered"
        );
        assert!(
            decode::<Claims>(&jwt, &key().decoding_key().unwrap(), &v).is_err(),
            "other key"
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert!(decode::<Claims>(&none, &dk, &v).is_err(), "alg none");
        let hs = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            parts[1]
        );
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.public_point()),
            hs.as_bytes(),
        );
        let hs = format!("{hs}.{}", URL_SAFE_NO_PAD.encode(mac));
        assert!(
            decode::<Claims>(&hs, &dk, &v).is_err(),
            "HS256 with public key"
        );
    }

    #[test]
    fn thumbprint_matches_rfc7638_example_shape() {
        let k = key();
        assert_eq!(k.kid().len(), 43);
        assert_eq!(k.public_jwk()["kid"], k.kid());
    }
}
