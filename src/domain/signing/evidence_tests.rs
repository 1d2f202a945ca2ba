//! The offline check names each failed WebAuthn check: bundles built here with a fresh
//! P-256 key (ring) standing in for the passkey, valid up to the one thing each test breaks.

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use time::OffsetDateTime;

use super::*;
use crate::domain::signing::{Document, SignatureFormat};

const RP: &str = "sign.example.gov";
const ORIGIN: &str = "https://sign.example.gov";

fn request() -> SignRequest {
    SignRequest {
        id: "r1".into(),
        citizen_id: "c".into(),
        official_id: "o".into(),
        certificate_sha256: [5; 32],
        format: SignatureFormat::Cades,
        documents: vec![Document {
            name: "a.pdf".into(),
            digest: [1; 32],
        }],
        created_at: OffsetDateTime::UNIX_EPOCH,
        expires_at: OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(900),
        approval: None,
        rejected_at: None,
    }
}

/// A bundle whose assertion is made by a fresh key over `client_data` and `flags`.
fn bundle(client_data: Value, flags: u8, rp_id: &str) -> Value {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let mut auth_data = sha256(rp_id.as_bytes()).to_vec();
    auth_data.push(flags);
    auth_data.extend_from_slice(&7u32.to_be_bytes());
    let client_data = client_data.to_string().into_bytes();
    let mut signed = auth_data.clone();
    signed.extend_from_slice(&sha256(&client_data));
    let signature = key.sign(&rng, &signed).unwrap();
    let mut spki = P256_SPKI_PREFIX.to_vec();
    spki.extend_from_slice(key.public_key().as_ref());
    let r = request();
    json!({
        "format": BUNDLE_FORMAT,
        "request": {
            "canonical": b64u(&r.canonical()), "id": "r1", "format": "cades",
            "expires_at": "1970-01-01T00:15:00Z", "signer_certificate_sha256": b64u(&[5; 32]),
            "documents": [{"name": "a.pdf", "digest": b64u(&[1; 32])}],
        },
        "nonce": b64u(&[9; 32]),
        "assertion": {"credential_id": "k", "authenticator_data": b64u(&auth_data),
            "client_data_json": b64u(&client_data), "signature": b64u(signature.as_ref())},
        "credential_public_key": spki_pem(&spki),
        "certificate": cert_pem(b"not a certificate"),
        "signatures": [],
        "rp_id": RP,
        "origin": ORIGIN,
    })
}

fn client_data() -> Value {
    let challenge = derived_challenge(&request().canonical(), &[9; 32]);
    json!({"type": "webauthn.get", "challenge": b64u(&challenge), "origin": ORIGIN,
        "crossOrigin": false, "other_keys_can_be_added_here": "x"})
}

fn failed_check(b: &Value) -> &'static str {
    match verify(b.to_string().as_bytes()) {
        Err(f) => f.check,
        Ok(lines) => panic!("verified: {lines:?}"),
    }
}

#[test]
fn a_valid_assertion_passes_every_webauthn_check() {
    // Everything up to the certificate holds; the made-up certificate is what fails.
    assert_eq!(
        failed_check(&bundle(client_data(), 0x05, RP)),
        "certificate"
    );
}

#[test]
fn each_broken_webauthn_property_is_named() {
    assert_eq!(
        failed_check(&bundle(client_data(), 0x04, RP)),
        "user presence"
    );
    assert_eq!(
        failed_check(&bundle(client_data(), 0x01, RP)),
        "user verification"
    );
    assert_eq!(
        failed_check(&bundle(client_data(), 0x05, "evil.example")),
        "rp id hash"
    );
    let mut cd = client_data();
    cd["type"] = "webauthn.create".into();
    assert_eq!(failed_check(&bundle(cd, 0x05, RP)), "type");
    let mut cd = client_data();
    cd["origin"] = "https://evil.example".into();
    assert_eq!(failed_check(&bundle(cd, 0x05, RP)), "origin");
    let mut cd = client_data();
    cd["crossOrigin"] = true.into();
    assert_eq!(failed_check(&bundle(cd, 0x05, RP)), "origin");
    let mut cd = client_data();
    cd["challenge"] = b64u(&[0; 32]).into();
    assert_eq!(failed_check(&bundle(cd, 0x05, RP)), "challenge");
    let mut b = bundle(client_data(), 0x05, RP);
    b["origin"] = "https://evil.example".into();
    assert_eq!(failed_check(&b), "origin");
    let mut b = bundle(client_data(), 0x05, RP);
    b["request"]["expires_at"] = "1970-01-01T00:16:00Z".into();
    assert_eq!(failed_check(&b), "request");
    assert_eq!(failed_check(&json!({"format": "other"})), "bundle");
}
