//! A software passkey device for the tests: 1Password's passkey-rs (client + CTAP2
//! authenticator), an implementation independent of webauthn-rs. It keeps one discoverable
//! credential, verifies the user, and counts signatures so clones can be simulated.
//!
//! passkey-rs always answers with `none` attestation and marks every credential
//! backup-eligible (it models a syncing password manager). To play a security key, a
//! [`Device`] can rewrite what passkey-rs produced, as the authenticator would have sent it:
//! a `packed` attestation signed by an attestation key with its `x5c` chain
//! ([`Device::attesting`]), device-bound flags (BE and BS cleared, [`Device::device_bound`]),
//! or altered client data ([`Device::get_with`]) — re-signing with the credential's own key
//! whatever the authenticator signs, so the server sees a valid response.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
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

/// An attestation identity: the certificate chain (attestation certificate first, DER) and
/// the PKCS#8 of the key that signs attestations.
#[derive(Clone)]
pub struct Attestor {
    pub x5c: Vec<Vec<u8>>,
    pub key_pkcs8: Vec<u8>,
}

/// A device holding at most one passkey, used from `origin`.
pub struct Device {
    client: Client<Option<Passkey>, Verified, public_suffix::PublicSuffixList, ()>,
    origin: url::Url,
    attestor: Option<Attestor>,
    device_bound: bool,
}

fn b64d(v: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(v.as_str().expect("base64url string"))
        .expect("base64url")
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// ECDSA P-256 / SHA-256 (DER), as authenticators sign, over `authData ‖ SHA-256(clientData)`.
fn sign(key: &EcdsaKeyPair, auth_data: &[u8], client_data: &[u8]) -> Vec<u8> {
    let mut msg = auth_data.to_vec();
    msg.extend(sha256(client_data));
    key.sign(&SystemRandom::new(), &msg)
        .unwrap()
        .as_ref()
        .to_vec()
}

/// Clears the backup-eligible and backed-up flags of authenticator data.
fn clear_backup_flags(auth_data: &mut [u8]) {
    auth_data[32] &= !(0x08 | 0x10);
}

impl Device {
    /// A fresh device that acts for pages of `origin` (e.g. `http://localhost:PORT`).
    pub fn new(origin: &str) -> Self {
        let mut authenticator = Authenticator::new(Aaguid::new_empty(), None, Verified);
        authenticator.set_make_credentials_with_signature_counter(true);
        Self {
            client: Client::new(authenticator).allows_insecure_localhost(true),
            origin: url::Url::parse(origin).unwrap(),
            attestor: None,
            device_bound: false,
        }
    }

    /// A device that attests new credentials (`packed`, with `x5c`) with `attestor`.
    pub fn attesting(mut self, attestor: Attestor) -> Self {
        self.attestor = Some(attestor);
        self
    }

    /// A device whose credentials never leave it: not backup-eligible (a security key).
    pub fn device_bound(mut self) -> Self {
        self.device_bound = true;
        self
    }

    /// The credential's own signing key (passkey-rs keeps it as a COSE key).
    pub fn credential_key(&self) -> EcdsaKeyPair {
        let key = self.passkey().expect("a passkey").key;
        let param = |label: i64| {
            key.params
                .iter()
                .find(|(l, _)| *l == coset::Label::Int(label))
                .and_then(|(_, v)| v.as_bytes().cloned())
                .expect("EC2 key parameter")
        };
        let mut public = vec![4u8];
        public.extend(param(-2));
        public.extend(param(-3));
        EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &param(-4),
            &public,
            &SystemRandom::new(),
        )
        .unwrap()
    }

    /// Rewrites a registration as this device would have produced it (attestation, flags).
    fn rewrite_registration(&self, mut cred: Value) -> Value {
        if self.attestor.is_none() && !self.device_bound {
            return cred;
        }
        let object: Cbor =
            ciborium::from_reader(&b64d(&cred["response"]["attestationObject"])[..]).unwrap();
        let mut auth_data = object
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("authData")))
            .and_then(|(_, v)| v.as_bytes().cloned())
            .expect("authData");
        if self.device_bound {
            clear_backup_flags(&mut auth_data);
        }
        let client_data = b64d(&cred["response"]["clientDataJSON"]);
        let (fmt, statement) = match &self.attestor {
            Some(a) => {
                let key = EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_ASN1_SIGNING,
                    &a.key_pkcs8,
                    &SystemRandom::new(),
                )
                .unwrap();
                let sig = sign(&key, &auth_data, &client_data);
                let x5c = a.x5c.iter().cloned().map(Cbor::Bytes).collect();
                let statement = vec![
                    (Cbor::Text("alg".into()), Cbor::Integer((-7).into())),
                    (Cbor::Text("sig".into()), Cbor::Bytes(sig)),
                    (Cbor::Text("x5c".into()), Cbor::Array(x5c)),
                ];
                ("packed", statement)
            }
            None => ("none", vec![]),
        };
        let object = Cbor::Map(vec![
            (Cbor::Text("fmt".into()), Cbor::Text(fmt.into())),
            (Cbor::Text("attStmt".into()), Cbor::Map(statement)),
            (
                Cbor::Text("authData".into()),
                Cbor::Bytes(auth_data.clone()),
            ),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&object, &mut bytes).unwrap();
        cred["response"]["attestationObject"] = URL_SAFE_NO_PAD.encode(bytes).into();
        if cred["response"].get("authenticatorData").is_some() {
            cred["response"]["authenticatorData"] = URL_SAFE_NO_PAD.encode(&auth_data).into();
        }
        cred
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
        Ok(self.rewrite_registration(as_page_json(serde_json::to_value(cred).unwrap())))
    }

    /// `navigator.credentials.get`, then `tweak` applied to the client data (e.g. to claim
    /// a cross-origin frame), re-signed with the credential's key so only the content differs.
    pub async fn get_with(
        &mut self,
        options: &Value,
        tweak: impl FnOnce(&mut Value),
    ) -> Result<Value, String> {
        let mut cred = self.get(options).await?;
        let mut client_data: Value =
            serde_json::from_slice(&b64d(&cred["response"]["clientDataJSON"])).unwrap();
        tweak(&mut client_data);
        let client_data = serde_json::to_vec(&client_data).unwrap();
        let auth_data = b64d(&cred["response"]["authenticatorData"]);
        let sig = sign(&self.credential_key(), &auth_data, &client_data);
        cred["response"]["clientDataJSON"] = URL_SAFE_NO_PAD.encode(&client_data).into();
        cred["response"]["signature"] = URL_SAFE_NO_PAD.encode(sig).into();
        Ok(cred)
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
        let mut cred = as_page_json(serde_json::to_value(cred).unwrap());
        if self.device_bound {
            // The flags must match the registration's; the signature covers them.
            let mut auth_data = b64d(&cred["response"]["authenticatorData"]);
            clear_backup_flags(&mut auth_data);
            let client_data = b64d(&cred["response"]["clientDataJSON"]);
            let sig = sign(&self.credential_key(), &auth_data, &client_data);
            cred["response"]["authenticatorData"] = URL_SAFE_NO_PAD.encode(&auth_data).into();
            cred["response"]["signature"] = URL_SAFE_NO_PAD.encode(sig).into();
        }
        Ok(cred)
    }
}

/// passkey-rs serialises some byte fields as arrays; a page posts every `ArrayBuffer` as
/// base64url (as civis.js does), so convert byte arrays to base64url strings.
fn as_page_json(v: Value) -> Value {
    match v {
        Value::Array(items)
            if !items.is_empty() && items.iter().all(|i| i.as_u64().is_some_and(|n| n <= 255)) =>
        {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(Value::as_u64)
                .map(|n| n as u8)
                .collect();
            Value::String(URL_SAFE_NO_PAD.encode(bytes))
        }
        Value::Array(items) => Value::Array(items.into_iter().map(as_page_json).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, as_page_json(v))).collect())
        }
        other => other,
    }
}
