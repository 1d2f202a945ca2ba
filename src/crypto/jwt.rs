//! JWTs with ES256 on ring: signing through the [`Signer`] seam (a cached ring key signs
//! directly: fast, no re-parsing per token), and [`verify`], the one verifier every JWT
//! civis accepts goes through (our access tokens, logout hints, clients' assertions). It
//! uses `jsonwebtoken`, whose crypto backend is this module's ring-backed
//! [`CryptoProvider`] (so neither aws-lc-rs nor the `rsa` crate is linked).

use std::collections::HashSet;
use std::sync::Once;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, UnparsedPublicKey,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::signer::{PublicKey, SignError, Signer};

/// RFC 7638 thumbprint of a P-256 public key given as an uncompressed SEC1 point.
pub fn thumbprint(point: &[u8]) -> String {
    let (x, y) = xy(point);
    // Members in lexicographic order, no whitespace, as RFC 7638 §3.2 requires.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(super::digest::sha256(canonical.as_bytes()))
}

/// A public P-256 JWK as a key; `None` for anything else (private members included).
pub fn jwk_public_key(jwk: &serde_json::Value) -> Option<PublicKey> {
    if jwk.get("kty")?.as_str()? != "EC" || jwk.get("crv")?.as_str()? != "P-256" {
        return None;
    }
    if jwk.get("d").is_some() {
        return None;
    }
    let coord = |n: &str| URL_SAFE_NO_PAD.decode(jwk.get(n)?.as_str()?).ok();
    let (x, y) = (coord("x")?, coord("y")?);
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut point = vec![4u8];
    point.extend(x);
    point.extend(y);
    PublicKey::p256(&point).ok()
}

/// The JWK coordinates of an uncompressed SEC1 point.
pub(super) fn xy(point: &[u8]) -> (String, String) {
    let coords = point.get(1..).unwrap_or_default();
    let (x, y) = coords.split_at(coords.len() / 2);
    (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
}

/// Why a JWT could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignJwtError {
    /// The claims are not serialisable.
    #[error("claims cannot be serialised: {0}")]
    Claims(#[from] serde_json::Error),
    /// The key did not sign.
    #[error(transparent)]
    Signer(#[from] SignError),
}

/// Signs `claims` as a compact JWS with header `{"alg":…,"typ":typ,"kid":…}`.
///
/// # Errors
/// [`SignJwtError`].
pub fn sign<T: Serialize>(
    signer: &dyn Signer,
    typ: &str,
    claims: &T,
) -> Result<String, SignJwtError> {
    let header =
        serde_json::json!({"alg": signer.algorithm().jose(), "typ": typ, "kid": signer.key_id()});
    let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
    let sig = signer.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    Ok(out)
}

/// A `jsonwebtoken` verification key for a public key.
///
/// # Errors
/// Never for a well-formed key; propagated from `jsonwebtoken`.
pub fn decoding_key(key: &PublicKey) -> Result<DecodingKey, JwtError> {
    let (x, y) = xy(key.sec1_point());
    DecodingKey::from_ec_components(&x, &y)
}

/// What the `typ` header must be.
#[derive(Debug, Clone, Copy)]
pub enum Typ<'a> {
    /// Anything or nothing.
    Any,
    /// Exactly this (compared case-insensitively, RFC 7515 §4.1.9).
    Is(&'a str),
    /// Anything but this (an access token must not pass as an ID token).
    Not(&'a str),
}

/// What a JWT must show besides a good ES256 signature. Time claims are the caller's to
/// check, against its injected `now`.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The `typ` header.
    pub typ: Typ<'a>,
    /// `iss` must equal this.
    pub issuer: Option<&'a str>,
    /// `aud` must contain this.
    pub audience: Option<&'a str>,
    /// Claims that must be present.
    pub required: &'a [&'a str],
}

/// Why a JWT was not accepted; the caller words it for its log.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    /// Not a JWS, or its header is not JSON.
    #[error("malformed ({0})")]
    Malformed(String),
    /// Another `alg` than ES256 (`none` and HS256 included).
    #[error("algorithm {0} refused, only ES256")]
    Algorithm(String),
    /// The `typ` header is wrong.
    #[error("wrong typ")]
    Typ,
    /// No candidate key (unknown or missing `kid`).
    #[error("no key matches the kid")]
    NoKey,
    /// The signature or a claim check failed under every candidate key.
    #[error("signature or claims not valid ({0})")]
    Invalid(String),
}

/// Verifies a compact JWS: ES256 only, the `typ`, `iss`, `aud` and required claims of
/// `expect`, and a signature by one of the keys `candidates` returns for the header's
/// `kid` (they are tried in order).
///
/// # Errors
/// [`Rejected`].
pub fn verify<C: DeserializeOwned>(
    token: &str,
    candidates: impl FnOnce(Option<&str>) -> Vec<PublicKey>,
    expect: &Expect<'_>,
) -> Result<C, Rejected> {
    install_provider();
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| Rejected::Malformed(e.to_string()))?;
    if header.alg != Algorithm::ES256 {
        return Err(Rejected::Algorithm(format!("{:?}", header.alg)));
    }
    let typ = header.typ.as_deref();
    let typ_ok = match expect.typ {
        Typ::Any => true,
        Typ::Is(want) => typ.is_some_and(|t| t.eq_ignore_ascii_case(want)),
        Typ::Not(banned) => !typ.is_some_and(|t| t.eq_ignore_ascii_case(banned)),
    };
    if !typ_ok {
        return Err(Rejected::Typ);
    }
    let keys = candidates(header.kid.as_deref());
    if keys.is_empty() {
        return Err(Rejected::NoKey);
    }
    let mut v = Validation::new(Algorithm::ES256);
    v.required_spec_claims = expect
        .required
        .iter()
        .map(|c| (*c).to_owned())
        .collect::<HashSet<_>>();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    match expect.issuer {
        Some(iss) => v.set_issuer(&[iss]),
        None => v.iss = None,
    }
    match expect.audience {
        Some(aud) => v.set_audience(&[aud]),
        None => v.validate_aud = false,
    }
    let mut last = String::from("no usable key");
    for key in keys {
        let Ok(dk) = decoding_key(&key) else {
            continue;
        };
        match jsonwebtoken::decode::<C>(token, &dk, &v) {
            Ok(data) => return Ok(data.claims),
            Err(e) => last = e.to_string(),
        }
    }
    Err(Rejected::Invalid(last))
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
    use crate::crypto::signer::generated_key;
    use jsonwebtoken::decode;

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

    const ANY: Expect<'static> = Expect {
        typ: Typ::Any,
        issuer: None,
        audience: None,
        required: &[],
    };

    #[test]
    fn sign_then_verify_with_jsonwebtoken() {
        install_provider();
        let k = generated_key();
        let jwt = sign(&k, "JWT", &claims()).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.kid.as_deref(), Some(k.key_id()));
        let dk = decoding_key(k.public_key()).unwrap();
        let data = decode::<Claims>(&jwt, &dk, &Validation::new(Algorithm::ES256)).unwrap();
        assert_eq!(data.claims, claims());
        let ours: Claims = verify(&jwt, |_| vec![k.public_key().clone()], &ANY).unwrap();
        assert_eq!(ours, claims());
    }

    #[test]
    fn jsonwebtoken_encode_goes_through_ring_provider() {
        install_provider();
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let k = crate::crypto::signer::EcdsaFileKey::from_pkcs8(pkcs8.as_ref()).unwrap();
        let enc = EncodingKey::from_ec_der(pkcs8.as_ref());
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::ES256),
            &claims(),
            &enc,
        )
        .unwrap();
        let ours: Claims = verify(&jwt, |_| vec![k.public_key().clone()], &ANY).unwrap();
        assert_eq!(ours, claims());
    }

    #[test]
    fn tampered_wrong_key_and_alg_confusion_fail() {
        let k = generated_key();
        let mine = || vec![k.public_key().clone()];
        let jwt = sign(&k, "JWT", &claims()).unwrap();
        let mut parts: Vec<String> = jwt.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":4000000000}"#);
        let check = |t: &str, keys: Vec<PublicKey>| verify::<Claims>(t, |_| keys, &ANY);
        assert!(
            matches!(check(&parts.join("."), mine()), Err(Rejected::Invalid(_))),
            "tampered"
        );
        let other = generated_key();
        assert!(
            matches!(
                check(&jwt, vec![other.public_key().clone()]),
                Err(Rejected::Invalid(_))
            ),
            "other key"
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            parts[1]
        );
        assert!(check(&none, mine()).is_err(), "alg none");
        let hs = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            parts[1]
        );
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, k.public_key().sec1_point()),
            hs.as_bytes(),
        );
        let hs = format!("{hs}.{}", URL_SAFE_NO_PAD.encode(mac));
        assert!(
            matches!(check(&hs, mine()), Err(Rejected::Algorithm(_))),
            "HS256 with public key"
        );
        assert!(matches!(check(&jwt, vec![]), Err(Rejected::NoKey)));
    }

    #[test]
    fn typ_issuer_audience_and_required_claims_are_checked() {
        let k = generated_key();
        let mine = || vec![k.public_key().clone()];
        let body = serde_json::json!({"iss": "https://us", "aud": ["a", "b"], "sub": "s"});
        let at = sign(&k, "at+jwt", &body).unwrap();
        let id = sign(&k, "JWT", &body).unwrap();
        let expect = |typ, issuer, audience, required| Expect {
            typ,
            issuer,
            audience,
            required,
        };
        let ok = |t: &str, e: Expect<'_>| verify::<serde_json::Value>(t, |_| mine(), &e).is_ok();
        assert!(ok(
            &at,
            expect(Typ::Is("AT+JWT"), Some("https://us"), Some("b"), &["sub"])
        ));
        assert!(
            !ok(&id, expect(Typ::Is("at+jwt"), None, None, &[])),
            "typ required"
        );
        assert!(
            !ok(&at, expect(Typ::Not("at+jwt"), None, None, &[])),
            "typ banned"
        );
        assert!(ok(&id, expect(Typ::Not("at+jwt"), None, None, &[])));
        assert!(
            !ok(&at, expect(Typ::Any, Some("https://them"), None, &[])),
            "issuer"
        );
        assert!(!ok(&at, expect(Typ::Any, None, Some("c"), &[])), "audience");
        assert!(
            !ok(&at, expect(Typ::Any, None, None, &["exp"])),
            "required claim"
        );
    }

    #[test]
    fn thumbprint_is_a_sha256_in_base64url() {
        let k = generated_key();
        assert_eq!(k.key_id().len(), 43);
        assert_eq!(k.public_jwk()["kid"], k.key_id());
    }
}
