//! private_key_jwt (RFC 7523) at the real token endpoint: a replayed assertion is refused.

use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::driver::new_client;
use crate::support::{http, tempdir};

#[tokio::test]
async fn a_replayed_client_assertion_is_refused() {
    let data = tempdir();
    let server = crate::driver::plain(&data);
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..]), "kid": "k1"});
    let (id, secret) = new_client(
        &server,
        json!({"name": "Signer", "redirect_uris": [], "grant_types": ["client_credentials"], "scope": "seal",
               "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}}),
    )
    .await;
    assert!(secret.is_none());

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
    let send = |a: String| {
        let url = server.at("/token");
        async move {
            let resp = http()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", a.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = send(assertion.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(assertion).await;
    assert_eq!(
        (status, body["error"].as_str()),
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
    assert_eq!(send(other).await.0, 401);
}
