//! Approving a sign request with a passkey over a derived challenge, then signing.
//!
//! The WebAuthn challenge is `SHA-256(canonical request ‖ nonce)` (a fresh random 32-byte
//! nonce per ceremony), so the assertion itself says what was approved. webauthn-rs 0.6.2
//! picks its challenges itself and lets no caller supply one; it does serialise its
//! authentication state (feature `danger-allow-state-serialisation`) and the challenge it
//! sends is a public field of the options. So [`inject_challenge`] replaces the random
//! challenge in both, and `finish_passkey_authentication` then checks type, challenge,
//! origin, rpIdHash, UP/UV, counter and signature exactly as for a login (SECURITY.md says
//! why this route rather than a verifier of our own). The unit tests pin that an assertion
//! over the library's original challenge is refused once swapped.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};
use webauthn_rs::prelude::{
    COSEAlgorithm, COSEKeyType, Credential, PasskeyAuthentication, PublicKeyCredential,
    RequestChallengeResponse, Webauthn, WebauthnError,
};

use super::requests::{Approval, ProducedSignature, SignRequest, Status};
use super::{Kind, Pki, produce};
use crate::crypto::digest::sha256;
use crate::crypto::signer::PublicKey;
use crate::domain::audit::{Actor, Entry, event};
use crate::domain::passkeys::{StoredPasskey, same_origin_only};
use crate::domain::{DomainError, Refusal, Result, random_bytes};
use serde_json::json;

/// How long an approval ceremony may take.
pub const APPROVAL_CEREMONY_TTL: Duration = Duration::minutes(5);

/// A started approval, kept server-side only.
#[derive(Debug, Clone)]
pub struct ApprovalCeremony {
    /// The request being approved.
    pub request_id: String,
    /// The official who started it (the session's citizen).
    pub citizen_id: String,
    /// The random half of the challenge.
    pub nonce: [u8; 32],
    /// webauthn-rs's state, its challenge replaced by the derived one.
    pub state: PasskeyAuthentication,
    /// The RP ID the options named.
    pub rp_id: String,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// The challenge an approval of `request` with `nonce` must be signed over.
pub fn derived_challenge(canonical: &[u8], nonce: &[u8; 32]) -> [u8; 32] {
    let mut input = canonical.to_vec();
    input.extend_from_slice(nonce);
    sha256(&input)
}

/// Replaces webauthn-rs's random challenge by `challenge` in the options for the browser
/// and in the serialised state that `finish_passkey_authentication` checks against. Fails
/// (rather than silently keeping the random challenge) if the state's layout is not the
/// one this was written for.
///
/// # Errors
/// [`DomainError::Internal`] when the state has no challenge where 0.6.2 keeps it.
pub fn inject_challenge(
    options: &mut RequestChallengeResponse,
    state: &PasskeyAuthentication,
    challenge: &[u8; 32],
) -> Result<PasskeyAuthentication> {
    let internal = |why: String| DomainError::Internal(format!("challenge injection: {why}"));
    let encoded = URL_SAFE_NO_PAD.encode(challenge);
    let mut value = serde_json::to_value(state).map_err(|e| internal(e.to_string()))?;
    let slot = value
        .pointer_mut("/ast/challenge")
        .filter(|v| v.is_string())
        .ok_or_else(|| internal("no /ast/challenge in the authentication state".into()))?;
    *slot = serde_json::Value::String(encoded.clone());
    let swapped: PasskeyAuthentication =
        serde_json::from_value(value).map_err(|e| internal(e.to_string()))?;
    let check = serde_json::to_value(&swapped).map_err(|e| internal(e.to_string()))?;
    if check.pointer("/ast/challenge").and_then(|v| v.as_str()) != Some(encoded.as_str()) {
        return Err(internal(
            "the state did not keep the derived challenge".into(),
        ));
    }
    options.public_key.challenge = challenge.to_vec();
    Ok(swapped)
}

/// The passkey's public key as SPKI DER, for ES256 (P-256) passkeys only.
fn es256_spki(passkey: &StoredPasskey) -> Option<Vec<u8>> {
    let cred: Credential = passkey.passkey.clone().into();
    if cred.cred.type_ != COSEAlgorithm::ES256 {
        return None;
    }
    let COSEKeyType::EC_EC2(ec) = &cred.cred.key else {
        return None;
    };
    let mut point = vec![4u8];
    point.extend_from_slice(&ec.x);
    point.extend_from_slice(&ec.y);
    PublicKey::p256(&point).ok().map(|k| k.spki_der())
}

/// What an approval produced before it is recorded.
struct Approved {
    signatures: Vec<ProducedSignature>,
    /// The records of the same signatures for civis's record of produced signatures
    /// (what `/verify/v1` checks as `produced`).
    produced: Vec<produce::ProducedSignature>,
    approval: Approval,
    passkey_id: String,
    result: webauthn_rs::prelude::AuthenticationResult,
    key_id: String,
}

/// Sign requests approved with a passkey: the PKI for keys and records, webauthn-rs for
/// the ceremony.
pub struct Approvals<'a> {
    /// Keys, records, randomness.
    pub pki: Pki<'a>,
    /// The relying party.
    pub webauthn: &'a Webauthn,
}

impl Approvals<'_> {
    /// The official's passkeys that may approve: theirs, not revoked, ES256 (what the
    /// evidence's offline check verifies).
    fn signing_passkeys(&self, citizen_id: &str) -> Result<Vec<StoredPasskey>> {
        let citizen = self
            .pki
            .store
            .citizens()
            .get(citizen_id)?
            .ok_or(DomainError::NotFound("citizen"))?;
        let mut out = Vec::new();
        for id in &citizen.passkey_ids {
            if let Some(p) = self.pki.store.passkeys().credential(id)?
                && p.citizen_id == citizen_id
                && p.revoked_at.is_none()
                && es256_spki(&p).is_some()
            {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// A pending request of this official, or why not.
    fn pending(
        &self,
        citizen_id: &str,
        request_id: &str,
        now: OffsetDateTime,
    ) -> Result<SignRequest> {
        let request = self.pki.request(request_id)?;
        if request.citizen_id != citizen_id {
            return Err(DomainError::Forbidden(
                "only the official who asked may approve",
            ));
        }
        match request.status(now) {
            Status::Pending => Ok(request),
            other => Err(not_pending(other)),
        }
    }

    /// The official declines the request: it moves to rejected (once) and is never signed.
    ///
    /// # Errors
    /// As [`Approvals::start`].
    pub fn reject(&self, citizen_id: &str, request_id: &str, now: OffsetDateTime) -> Result<()> {
        self.pending(citizen_id, request_id, now)?;
        self.pki.store.transact(|tx| {
            let mut current = tx
                .sign_requests()
                .get(request_id)?
                .ok_or(DomainError::NotFound("sign request"))?;
            match current.status(now) {
                Status::Pending => {}
                other => return Err(not_pending(other)),
            }
            current.rejected_at = Some(now);
            tx.sign_requests().update(&current)?;
            Ok(())
        })
    }

    /// Starts an approval by the signed-in official `citizen_id`: options that allow only
    /// their own passkeys, require user verification, and carry the derived challenge.
    ///
    /// # Errors
    /// [`DomainError::NotFound`] for another's or an unknown request; [`DomainError::Conflict`]
    /// when it is no longer pending; [`DomainError::Forbidden`] without a usable passkey;
    /// storage errors.
    pub fn start(
        &self,
        citizen_id: &str,
        request_id: &str,
        now: OffsetDateTime,
    ) -> Result<(String, RequestChallengeResponse)> {
        let request = self.pending(citizen_id, request_id, now)?;
        let passkeys: Vec<_> = self
            .signing_passkeys(citizen_id)?
            .into_iter()
            .map(|p| p.passkey)
            .collect();
        if passkeys.is_empty() {
            return Err(DomainError::Forbidden(
                "no passkey that can approve signatures",
            ));
        }
        let (mut options, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| DomainError::Internal(format!("webauthn start authentication: {e}")))?;
        let nonce = random_bytes::<32>(self.pki.rng)?;
        let challenge = derived_challenge(&request.canonical(), &nonce);
        let state = inject_challenge(&mut options, &state, &challenge)?;
        let ceremony = ApprovalCeremony {
            request_id: request.id,
            citizen_id: citizen_id.to_owned(),
            nonce,
            state,
            rp_id: options.public_key.rp_id.clone(),
            expires_at: (now + APPROVAL_CEREMONY_TTL).min(request.expires_at),
        };
        let id = URL_SAFE_NO_PAD.encode(random_bytes::<32>(self.pki.rng)?);
        self.pki
            .store
            .transact(|tx| tx.sign_requests().insert_ceremony(&id, &ceremony))?;
        Ok((id, options))
    }

    /// Drops a ceremony whose assertion was refused: one try per ceremony.
    fn consume(&self, ceremony_id: &str) -> Result<()> {
        self.pki.store.transact(|tx| {
            tx.sign_requests().take_ceremony(ceremony_id)?;
            Ok::<_, DomainError>(())
        })
    }

    /// Finishes an approval: verifies the assertion over the derived challenge, signs every
    /// document with the official's key (outside any transaction), then in one transaction
    /// takes the ceremony, checks the request is still pending and the key and passkey
    /// still live, records the signatures, the evidence and the passkey's counter.
    ///
    /// # Errors
    /// [`Refusal`]s for expired, replayed or refused assertions; [`DomainError::Forbidden`]
    /// when the session is not the request's official or the official can no longer sign;
    /// [`DomainError::Conflict`] when the request is no longer pending (a concurrent
    /// approval won); storage errors.
    pub fn finish(
        &self,
        citizen_id: &str,
        request_id: &str,
        ceremony_id: &str,
        assertion: &PublicKeyCredential,
        now: OffsetDateTime,
    ) -> Result<SignRequest> {
        let ceremony = self
            .pki
            .store
            .sign_requests()
            .ceremony(ceremony_id)?
            .filter(|c| c.expires_at > now && c.request_id == request_id)
            .ok_or(Refusal::CeremonyExpired)?;
        if ceremony.citizen_id != citizen_id {
            return Err(DomainError::Forbidden(
                "this approval belongs to another official",
            ));
        }
        let request = self.pending(citizen_id, request_id, now)?;
        // One try per ceremony: whatever refuses it from here on also drops it.
        let outcome = self.verify_and_sign(&ceremony, &request, assertion, citizen_id, now);
        let Approved {
            signatures,
            produced,
            approval,
            passkey_id,
            result,
            key_id,
        } = match outcome {
            Ok(v) => v,
            Err(e) => {
                self.consume(ceremony_id)?;
                return Err(e);
            }
        };
        let entry = Entry::new(
            event::SIGNATURE_PRODUCED,
            Actor::Citizen(citizen_id),
            Some(citizen_id),
            json!({
                "request_id": request.id,
                "key_id": key_id,
                "passkey_id": passkey_id,
                "format": request.format.as_str(),
                "documents": produce::documents_json(&request.documents),
            }),
            now,
            self.pki.rng,
        )?;
        self.pki.store.transact(|tx| {
            tx.sign_requests()
                .take_ceremony(ceremony_id)?
                .ok_or(Refusal::CeremonyExpired)?;
            let mut current = tx
                .sign_requests()
                .get(request_id)?
                .ok_or(DomainError::NotFound("sign request"))?;
            match current.status(now) {
                Status::Pending => {}
                other => return Err(not_pending(other)),
            }
            let official = tx
                .signing_keys()
                .get(&key_id)?
                .filter(|k| k.holder.kind() == Kind::Official)
                .ok_or(DomainError::NotFound("official"))?;
            if official.revoked_at.is_some() {
                return Err(DomainError::Forbidden("the official can no longer sign"));
            }
            let mut credential = tx
                .passkeys()
                .credential(&passkey_id)?
                .filter(|c| c.revoked_at.is_none())
                .ok_or_else(|| Refusal::PasskeyUnknown(format!("revoked: {passkey_id}")))?;
            let stored: Credential = credential.passkey.clone().into();
            if result.counter() > 0 && result.counter() <= stored.counter {
                return Err(Refusal::PossibleClone(format!(
                    "concurrent use with counter {}: credential {}",
                    result.counter(),
                    passkey_id
                ))
                .into());
            }
            credential.passkey.update_credential(&result);
            credential.last_used_at = Some(now);
            tx.passkeys().update_credential(&credential);
            current.approval = Some((signatures.clone(), approval.clone()));
            tx.sign_requests().update(&current)?;
            produce::record_produced(tx, &produced)?;
            entry.append(tx)?;
            Ok(current)
        })
    }

    /// The checks and signing between reading the ceremony and recording the approval:
    /// the assertion (webauthn-rs), the official's live key, and one signature per document.
    fn verify_and_sign(
        &self,
        ceremony: &ApprovalCeremony,
        request: &SignRequest,
        assertion: &PublicKeyCredential,
        citizen_id: &str,
        now: OffsetDateTime,
    ) -> Result<Approved> {
        let (passkey, result) = self.verify(ceremony, assertion, citizen_id)?;
        let key = match self.pki.official_key(citizen_id, now) {
            Ok(k) if k.id == request.official_id => k,
            Ok(_) => return Err(DomainError::Conflict("the official's signing key changed")),
            Err(DomainError::NotFound(_)) => {
                return Err(DomainError::Forbidden("the official can no longer sign"));
            }
            Err(e) => return Err(e),
        };
        let signed = produce::sign_batch(
            &key,
            self.pki.ca.cert_der(),
            &request.documents,
            request.format,
            now,
        )?;
        let producer = produce::Producer {
            kind: Kind::Official,
            key_id: &key.id,
            serial: &key.serial,
            holder_id: citizen_id,
            signed_at: now,
            request_id: Some(&request.id),
        };
        let produced = produce::ProducedSignature::batch(&producer, &request.documents, &signed);
        let signatures = signed.into_iter().map(answer_form).collect();
        let approval = Approval {
            nonce: ceremony.nonce,
            credential_id: passkey.id.clone(),
            authenticator_data: assertion.response.authenticator_data.clone(),
            client_data_json: assertion.response.client_data_json.clone(),
            signature: assertion.response.signature.clone(),
            credential_public_key: es256_spki(&passkey).unwrap_or_default(),
            certificate: key.certificate.clone(),
            rp_id: ceremony.rp_id.clone(),
            origin: client_origin(&assertion.response.client_data_json),
            approved_at: now,
        };
        Ok(Approved {
            signatures,
            produced,
            approval,
            passkey_id: passkey.id,
            result,
            key_id: key.id,
        })
    }

    /// webauthn-rs's verification against the stored state, after our own checks of whose
    /// passkey it is and of the frame it came from.
    fn verify(
        &self,
        ceremony: &ApprovalCeremony,
        assertion: &PublicKeyCredential,
        citizen_id: &str,
    ) -> Result<(StoredPasskey, webauthn_rs::prelude::AuthenticationResult)> {
        same_origin_only(
            &assertion.response.client_data_json,
            self.webauthn.get_allowed_origins(),
        )?;
        let cred_id = URL_SAFE_NO_PAD.encode(&assertion.raw_id);
        let passkey = self
            .signing_passkeys(citizen_id)?
            .into_iter()
            .find(|p| p.id == cred_id)
            .ok_or_else(|| Refusal::PasskeyUnknown(format!("not the official's: {cred_id}")))?;
        let result = self
            .webauthn
            .finish_passkey_authentication(assertion, &ceremony.state)
            .map_err(|e| match e {
                WebauthnError::CredentialPossibleCompromise => {
                    Refusal::PossibleClone(format!("counter did not increase: {cred_id}"))
                }
                other => Refusal::CredentialRejected(other.to_string()),
            })?;
        Ok((passkey, result))
    }
}

/// A signature as the request keeps and answers it: standard base64 of the DER (`cades`),
/// the JWS itself (`jades`).
fn answer_form(s: produce::Signed) -> ProducedSignature {
    let signature = s.encoded();
    ProducedSignature {
        name: s.name,
        format: s.format,
        signature,
    }
}

/// Why a request that is no longer pending cannot be approved or rejected (→ 409).
fn not_pending(status: Status) -> DomainError {
    DomainError::Conflict(match status {
        Status::Signed => "the request is already signed",
        Status::Rejected => "the request was rejected",
        Status::Expired | Status::Pending => "the request has expired",
    })
}

/// The `origin` member of client data (webauthn-rs has checked it is ours).
fn client_origin(client_data_json: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(client_data_json)
        .ok()
        .and_then(|v| v.get("origin").and_then(|o| o.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
#[path = "approval_tests.rs"]
mod tests;
