//! private_key_jwt (RFC 7523) at the real token endpoint: a replayed assertion is refused.

use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::json;

use crate::driver::{plain, tempdir};

#[tokio::test]
async fn a_replayed_client_assertion_is_refused() {
    let data = tempdir();
    let server = plain(&data);
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]), "kid": "k1"});
    let signer = server
        .register_client(json!({"name": "Signer", "redirect_uris": [], "grant_types": ["client_credentials"], "scope": "seal",
               "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}}))
        .await;
    assert!(signer.secret.is_none());
    let id = signer.id;

    civis::crypto::jwt::install_provider();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({"iss": id, "sub": id, "aud": server.at("/token"), "jti": "once-only", "iat": now, "exp": now + 60});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let assertion = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap();
    let first = server.client_credentials_by_assertion(&assertion).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let replay = server.client_credentials_by_assertion(&assertion).await;
    assert_eq!(
        (replay.status, replay.error()),
        (401, Some("invalid_client")),
        "replay"
    );

    // An assertion for another audience is refused too.
    let claims = json!({"iss": id, "sub": id, "aud": "https://elsewhere.example/token", "jti": "j2", "iat": now, "exp": now + 60});
    let other = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap();
    assert_eq!(
        server.client_credentials_by_assertion(&other).await.status,
        401
    );
}
