//! A software passkey device for the tests: 1Password's passkey-rs (client + CTAP2
//! authenticator), an implementation independent of webauthn-rs. It keeps one discoverable
//! credential, verifies the user, and counts signatures so clones can be simulated.

use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use serde_json::Value;

/// Always present and verified (fingerprint accepted).
struct Verified;

#[async_trait::async_trait]
impl UserValidationMethod for Verified {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// A device holding at most one passkey, used from `origin`.
pub struct Device {
    client: Client<Option<Passkey>, Verified, public_suffix::PublicSuffixList, ()>,
    origin: url::Url,
}

impl Device {
    /// A fresh device that acts for pages of `origin` (e.g. `http://localhost:PORT`).
    pub fn new(origin: &str) -> Self {
        let mut authenticator = Authenticator::new(Aaguid::new_empty(), None, Verified);
        authenticator.set_make_credentials_with_signature_counter(true);
        Self {
            client: Client::new(authenticator).allows_insecure_localhost(true),
            origin: url::Url::parse(origin).unwrap(),
        }
    }

    /// The same device seen from another origin (a phishing page, a wrong port).
    pub fn at(mut self, origin: &str) -> Self {
        self.origin = url::Url::parse(origin).unwrap();
        self
    }

    /// The stored credential (clone it to simulate a cloned authenticator).
    pub fn passkey(&self) -> Option<Passkey> {
        self.client.authenticator().store().clone()
    }

    /// Replaces the stored credential.
    pub fn set_passkey(&mut self, p: Option<Passkey>) {
        *self.client.authenticator_mut().store_mut() = p;
    }

    /// `navigator.credentials.create` with the server's options (`{"publicKey": …}`),
    /// returning the credential JSON as a browser page would post it.
    pub async fn create(&mut self, options: &Value) -> Result<Value, String> {
        let request: CredentialCreationOptions =
            serde_json::from_value(options.clone()).map_err(|e| format!("options: {e}"))?;
        let cred = self
            .client
            .register(&self.origin, request, DefaultClientData)
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(as_page_json(serde_json::to_value(cred).unwrap()))
    }

    /// `navigator.credentials.get` with the server's options.
    pub async fn get(&mut self, options: &Value) -> Result<Value, String> {
        let mut options = options.clone();
        // A browser consumes `mediation` itself; it is not part of the request dictionary.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        let request: CredentialRequestOptions =
            serde_json::from_value(options).map_err(|e| format!("options: {e}"))?;
        let cred = self
            .client
            .authenticate(&self.origin, request, DefaultClientData)
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(as_page_json(serde_json::to_value(cred).unwrap()))
    }
}

/// passkey-rs serialises some byte fields as arrays; a page posts every `ArrayBuffer` as
/// base64url (as civis.js does), so convert byte arrays to base64url strings.
fn as_page_json(v: Value) -> Value {
    use base64::Engine;
    match v {
        Value::Array(items)
            if !items.is_empty() && items.iter().all(|i| i.as_u64().is_some_and(|n| n <= 255)) =>
        {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(Value::as_u64)
                .map(|n| n as u8)
                .collect();
            Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(as_page_json).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, as_page_json(v))).collect())
        }
        other => other,
    }
}
