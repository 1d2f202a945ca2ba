//! Pins the challenge injection to webauthn-rs's behaviour with an independent software
//! authenticator (1Password's passkey-rs): if a webauthn-rs update kept its own random
//! challenge anywhere, or stopped checking the challenge, these fail.

use webauthn_rs::prelude::{Passkey, PublicKeyCredential, Uuid, Webauthn};

use super::*;

// The integration tests' software passkey (1Password's passkey-rs), shared rather than copied.
#[allow(dead_code)]
#[path = "../../../tests/it/authenticator.rs"]
mod authenticator;
use authenticator::Device;

const ORIGIN: &str = "http://localhost:8443";

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// A relying party, a device and the passkey it enrolled.
fn enrolled() -> (Webauthn, Device, Passkey) {
    let url = url::Url::parse(ORIGIN).unwrap();
    let webauthn = webauthn_rs::prelude::WebauthnBuilder::new("localhost", &url)
        .unwrap()
        .build()
        .unwrap();
    let mut device = Device::new(ORIGIN);
    let (options, reg) = webauthn
        .start_passkey_registration(Uuid::new_v4(), "ana", "Ana", None)
        .unwrap();
    let cred = block_on(device.create(&serde_json::to_value(&options).unwrap())).unwrap();
    let cred = serde_json::from_value(cred).unwrap();
    let passkey = webauthn.finish_passkey_registration(&cred, &reg).unwrap();
    (webauthn, device, passkey)
}

fn assert_over(device: &mut Device, options: &RequestChallengeResponse) -> PublicKeyCredential {
    let cred = block_on(device.get(&serde_json::to_value(options).unwrap())).unwrap();
    serde_json::from_value(cred).unwrap()
}

#[test]
fn an_assertion_over_the_derived_challenge_verifies() {
    let (webauthn, mut device, passkey) = enrolled();
    let (mut options, state) = webauthn
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let challenge = derived_challenge(b"request", &[9; 32]);
    let state = inject_challenge(&mut options, &state, &challenge).unwrap();
    assert_eq!(options.public_key.challenge.as_slice(), &challenge[..]);
    let assertion = assert_over(&mut device, &options);
    let result = webauthn.finish_passkey_authentication(&assertion, &state);
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn an_assertion_over_the_libraries_own_random_challenge_is_refused_after_the_swap() {
    let (webauthn, mut device, passkey) = enrolled();
    let (original, state) = webauthn
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let mut options = original.clone();
    let state = inject_challenge(&mut options, &state, &derived_challenge(b"r", &[1; 32])).unwrap();
    let assertion = assert_over(&mut device, &original);
    let result = webauthn.finish_passkey_authentication(&assertion, &state);
    assert!(
        matches!(result, Err(WebauthnError::MismatchedChallenge)),
        "{result:?}"
    );
}

#[test]
fn an_assertion_for_another_derived_challenge_is_refused() {
    let (webauthn, mut device, passkey) = enrolled();
    let (mut options, state) = webauthn
        .start_passkey_authentication(std::slice::from_ref(&passkey))
        .unwrap();
    let state = inject_challenge(&mut options, &state, &derived_challenge(b"A", &[1; 32])).unwrap();
    let mut other = options.clone();
    other.public_key.challenge = derived_challenge(b"B", &[1; 32]).to_vec();
    let assertion = assert_over(&mut device, &other);
    assert!(
        webauthn
            .finish_passkey_authentication(&assertion, &state)
            .is_err()
    );
}

#[test]
fn the_challenge_binds_request_and_nonce() {
    assert_ne!(
        derived_challenge(b"a", &[0; 32]),
        derived_challenge(b"b", &[0; 32])
    );
    assert_ne!(
        derived_challenge(b"a", &[0; 32]),
        derived_challenge(b"a", &[1; 32])
    );
}
