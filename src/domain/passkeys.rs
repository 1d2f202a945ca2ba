//! Passkeys: enrolment with a one-time code, usernameless (discoverable) login, sessions and
//! revocation. WebAuthn verification is webauthn-rs's; this module holds the rules around it
//! (single-use ceremonies and codes, expiry, clone detection, revocation, same-origin
//! ceremonies, and whether a login used a verified hardware key — [`super::attestation`]).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Credential, DiscoverableAuthentication, Passkey,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnError,
};
use webauthn_rs_proto::AttestationConveyancePreference;
use zeroize::Zeroizing;

use super::attestation::{AttestationRoots, hardware_attested};
use super::audit::{Actor, Entry, event};
use super::citizens::{Citizen, PasskeySummary, enrolment_hash};
use super::{DomainError, Refusal, Result, Rng, random_bytes};
use crate::store::{Store, StoreError};
use serde_json::json;

/// How long a started ceremony may take before it must be started again.
pub const CEREMONY_TTL: Duration = Duration::minutes(5);
/// How long a login session lasts.
pub const SESSION_TTL: Duration = Duration::hours(8);

/// A pending WebAuthn ceremony, kept server-side only.
#[derive(Debug)]
pub struct Ceremony {
    /// What is being done.
    pub kind: CeremonyKind,
    /// When it stops being accepted.
    pub expires_at: OffsetDateTime,
}

/// The two ceremonies and their webauthn-rs state.
#[derive(Debug)]
pub enum CeremonyKind {
    /// Creating a passkey with an enrolment code.
    Enrol {
        /// Whose passkey.
        citizen_id: String,
        /// The code being used (hash); consumed on success.
        enrolment_hash: [u8; 32],
        /// webauthn-rs registration state.
        state: PasskeyRegistration,
    },
    /// Usernameless login.
    Login {
        /// webauthn-rs authentication state.
        state: DiscoverableAuthentication,
    },
}

/// A citizen's passkey as stored.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    /// Credential id, base64url.
    pub id: String,
    /// Owner.
    pub citizen_id: String,
    /// webauthn-rs credential (public key, counter, flags).
    pub passkey: Passkey,
    /// Enrolment time.
    pub created_at: OffsetDateTime,
    /// Last successful login.
    pub last_used_at: Option<OffsetDateTime>,
    /// Revocation time; a revoked passkey never logs in.
    pub revoked_at: Option<OffsetDateTime>,
}

impl StoredPasskey {
    /// What the registry shows.
    pub fn summary(&self) -> PasskeySummary {
        let cred: Credential = self.passkey.clone().into();
        PasskeySummary {
            id: self.id.clone(),
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            backup_eligible: cred.backup_eligible,
            backed_up: cred.backup_state,
            revoked_at: self.revoked_at,
        }
    }
}

/// A logged-in browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Who.
    pub citizen_id: String,
    /// With which passkey.
    pub credential_id: String,
    /// When the login happened (OIDC `auth_time`).
    pub auth_time: OffsetDateTime,
    /// When it ends.
    pub expires_at: OffsetDateTime,
    /// The authenticator verified the user (PIN or biometrics).
    pub user_verified: bool,
    /// The passkey was a device-bound key whose attestation chains to a root the operator
    /// trusts, at login time ([`hardware_attested`]): what `hwk` and LoA high need.
    pub hardware_attested: bool,
}

/// A new session token, shown once to the browser (cookie); stored as its SHA-256.
pub struct SessionToken(pub Zeroizing<String>);

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

/// The result of a successful login.
#[derive(Debug)]
pub struct Login {
    /// Who logged in.
    pub citizen: Citizen,
    /// The session created.
    pub session: Session,
    /// Its token for the cookie.
    pub token: SessionToken,
}

/// SHA-256 of a session token: the only form in which it is stored.
pub fn session_hash(token: &str) -> [u8; 32] {
    enrolment_hash(token)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Passkey operations over the store, with webauthn-rs and injected randomness.
pub struct Passkeys<'a> {
    /// Storage.
    pub store: &'a Store,
    /// Randomness for ceremony ids and session tokens.
    pub rng: &'a dyn Rng,
    /// The relying party (RP ID and origin come from the issuer).
    pub webauthn: &'a Webauthn,
    /// Roots trusted for authenticator attestation (`--attestation-roots`), if any.
    pub attestation_roots: Option<&'a AttestationRoots>,
}

/// Refuses client data from a ceremony run inside another site's frame: `crossOrigin` must
/// be absent or `false`, and a `topOrigin`, if present, must be one of ours. webauthn-rs
/// 0.6.2 checks `origin`, but refuses `crossOrigin: true` only at registration and never
/// reads `topOrigin`. The JSON is parsed, never compared as bytes (browsers add keys).
pub(crate) fn same_origin_only(client_data_json: &[u8], ours: &[Url]) -> Result<(), Refusal> {
    let data: serde_json::Value = serde_json::from_slice(client_data_json)
        .map_err(|e| Refusal::CredentialRejected(format!("clientDataJSON unparsable: {e}")))?;
    match data.get("crossOrigin") {
        None | Some(serde_json::Value::Bool(false)) => {}
        Some(other) => {
            return Err(Refusal::CredentialRejected(format!(
                "cross-origin ceremony (crossOrigin {other})"
            )));
        }
    }
    if let Some(top) = data.get("topOrigin") {
        let ours = top
            .as_str()
            .and_then(|t| Url::parse(t).ok())
            .is_some_and(|t| ours.iter().any(|o| o.origin() == t.origin()));
        if !ours {
            return Err(Refusal::CredentialRejected(format!(
                "ceremony inside a frame of another origin (topOrigin {top})"
            )));
        }
    }
    Ok(())
}

impl Passkeys<'_> {
    fn new_ceremony(&self, kind: CeremonyKind, now: OffsetDateTime) -> Result<String> {
        let id = b64(&random_bytes::<32>(self.rng)?);
        let ceremony = Ceremony {
            kind,
            expires_at: now + CEREMONY_TTL,
        };
        self.store
            .transact(|tx| tx.passkeys().insert_ceremony(&id, &ceremony))?;
        Ok(id)
    }

    fn take_ceremony(&self, id: &str, now: OffsetDateTime) -> Result<CeremonyKind> {
        match self.store.transact(|tx| tx.passkeys().take_ceremony(id))? {
            Some(c) if c.expires_at > now => Ok(c.kind),
            Some(_) => Err(Refusal::CeremonyExpired.into()),
            None => Err(Refusal::CeremonyExpired.into()),
        }
    }

    /// The citizen an enrolment code belongs to, if the code is valid now. Unknown, expired
    /// and used codes are the same refusal, so nothing tells whether a citizen exists.
    ///
    /// # Errors
    /// [`Refusal::EnrolmentLinkInvalid`]; storage errors.
    pub fn enrolment_citizen(&self, code: &str, now: OffsetDateTime) -> Result<Citizen> {
        let hash = enrolment_hash(code);
        let ticket = self
            .store
            .citizens()
            .enrolment_ticket(&hash)?
            .filter(|t| t.expires_at > now)
            .ok_or(Refusal::EnrolmentLinkInvalid)?;
        self.store
            .citizens()
            .get(&ticket.citizen_id)?
            .filter(|c| c.enrolment_hash == Some(hash))
            .ok_or_else(|| Refusal::EnrolmentLinkInvalid.into())
    }

    /// Starts creating a passkey: a discoverable credential with user verification, the
    /// citizen's existing passkeys excluded.
    ///
    /// # Errors
    /// [`Refusal::EnrolmentLinkInvalid`]; webauthn and storage errors.
    pub fn start_enrolment(
        &self,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<(String, CreationChallengeResponse)> {
        let citizen = self.enrolment_citizen(code, now)?;
        let user_id = Uuid::parse_str(&citizen.id)
            .map_err(|e| DomainError::Internal(format!("citizen id is not a UUID: {e}")))?;
        let mut exclude = Vec::new();
        for id in &citizen.passkey_ids {
            // Revoked ones too: the authenticator should not create a second credential
            // beside a revoked one on the same device silently.
            if let Some(p) = self.store.passkeys().credential(id)? {
                exclude.push(p.passkey.cred_id().clone());
            }
        }
        let display = format!("{} {}", citizen.given_name, citizen.family_name);
        let (mut options, state) = self
            .webauthn
            .start_passkey_registration(user_id, &display, &display, Some(exclude))
            .map_err(|e| DomainError::Internal(format!("webauthn start registration: {e}")))?;
        // Usernameless login needs a discoverable credential: ask for it explicitly (webauthn-rs
        // leaves residency to the authenticator for passkeys).
        if let Some(sel) = options.public_key.authenticator_selection.as_mut() {
            sel.require_resident_key = true;
            sel.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Required);
        }
        // With roots to check it against, ask for the authenticator's attestation. Not
        // webauthn-rs's attested-passkey ceremony: that refuses every credential without a
        // trusted attestation, and citizens with ordinary passkeys must still enrol. The
        // registration state does not depend on this preference; finishing verifies any
        // attestation statement it gets, and logins judge its chain (super::attestation).
        if self.attestation_roots.is_some() {
            options.public_key.attestation = Some(AttestationConveyancePreference::Direct);
        }
        let id = self.new_ceremony(
            CeremonyKind::Enrol {
                citizen_id: citizen.id,
                enrolment_hash: enrolment_hash(code),
                state,
            },
            now,
        )?;
        Ok((id, options))
    }

    /// Finishes creating a passkey and consumes the enrolment code.
    ///
    /// # Errors
    /// [`Refusal`]s for expired or replayed ceremonies, used codes and rejected credentials;
    /// storage errors.
    pub fn finish_enrolment(
        &self,
        ceremony: &str,
        credential: &RegisterPublicKeyCredential,
        now: OffsetDateTime,
    ) -> Result<PasskeySummary> {
        let CeremonyKind::Enrol {
            citizen_id,
            enrolment_hash: hash,
            state,
        } = self.take_ceremony(ceremony, now)?
        else {
            return Err(Refusal::CeremonyExpired.into());
        };
        same_origin_only(
            &credential.response.client_data_json,
            self.webauthn.get_allowed_origins(),
        )?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(credential, &state)
            .map_err(|e| Refusal::CredentialRejected(e.to_string()))?;
        // For the operator only: whether this passkey would count as a verified hardware
        // key now (logins decide again, against the roots configured then).
        let credential_internals: Credential = passkey.clone().into();
        tracing::info!(
            attestation_format = ?credential_internals.attestation_format,
            hardware_attested =
                hardware_attested(&credential_internals, self.attestation_roots, now),
            "passkey enrolled"
        );
        let stored = StoredPasskey {
            id: b64(passkey.cred_id()),
            citizen_id: citizen_id.clone(),
            passkey,
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        let entry = Entry::new(
            event::PASSKEY_ADDED,
            Actor::Citizen(&citizen_id),
            Some(&citizen_id),
            json!({"passkey_id": stored.id}),
            now,
            self.rng,
        )?;
        self.store.transact(|tx| {
            let ticket_ok = tx
                .citizens()
                .enrolment_ticket(&hash)?
                .is_some_and(|t| t.expires_at > now && t.citizen_id == citizen_id);
            let mut citizen = tx
                .citizens()
                .get(&citizen_id)?
                .filter(|c| ticket_ok && c.enrolment_hash == Some(hash))
                .ok_or(Refusal::EnrolmentLinkInvalid)?;
            match tx.passkeys().insert_credential(&stored) {
                Err(StoreError::Conflict { .. }) => {
                    return Err(Refusal::CredentialRejected(
                        "credential id already registered".into(),
                    )
                    .into());
                }
                other => other?,
            }
            citizen.passkey_ids.push(stored.id.clone());
            citizen.enrolment_hash = None;
            tx.citizens().update(&citizen);
            tx.citizens().delete_enrolment(&hash);
            entry.append(tx)?;
            Ok(stored.summary())
        })
    }

    /// Starts a usernameless login.
    ///
    /// # Errors
    /// webauthn and storage errors.
    pub fn start_login(&self, now: OffsetDateTime) -> Result<(String, RequestChallengeResponse)> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(|e| DomainError::Internal(format!("webauthn start authentication: {e}")))?;
        let id = self.new_ceremony(CeremonyKind::Login { state }, now)?;
        Ok((id, options))
    }

    /// Finishes a login: verifies the assertion against the stored credential, refuses
    /// revoked and cloned credentials, records the counter and creates a session. The
    /// browser's previous session (`replaces`, its token), if any, ends in the same
    /// transaction: a new login never leaves an older session of that browser alive.
    ///
    /// # Errors
    /// [`Refusal`]s; storage errors.
    pub fn finish_login(
        &self,
        ceremony: &str,
        assertion: &PublicKeyCredential,
        replaces: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Login> {
        let CeremonyKind::Login { state } = self.take_ceremony(ceremony, now)? else {
            return Err(Refusal::CeremonyExpired.into());
        };
        // Whose passkey was presented, once known: the subject of a failure's entry.
        let mut presented: Option<String> = None;
        match self.verify_login(state, assertion, replaces, now, &mut presented) {
            Err(DomainError::Refused(refusal)) => {
                self.record_failed_login(presented.as_deref(), &refusal, now)?;
                Err(refusal.into())
            }
            other => other,
        }
    }

    /// A refused login's entry, in its own transaction (the login itself wrote nothing).
    /// Only ceremonies civis started get here, and the HTTP layer throttles failures per
    /// client, so this cannot be used to flood the log.
    fn record_failed_login(
        &self,
        citizen: Option<&str>,
        refusal: &Refusal,
        now: OffsetDateTime,
    ) -> Result<()> {
        let actor = citizen.map_or(Actor::Anonymous, Actor::Citizen);
        let entry = Entry::new(
            event::LOGIN_FAILED,
            actor,
            citizen,
            json!({"reason": refusal.kind()}),
            now,
            self.rng,
        )?;
        self.store.transact(|tx| entry.append(tx))?;
        Ok(())
    }

    fn verify_login(
        &self,
        state: DiscoverableAuthentication,
        assertion: &PublicKeyCredential,
        replaces: Option<&str>,
        now: OffsetDateTime,
        presented: &mut Option<String>,
    ) -> Result<Login> {
        same_origin_only(
            &assertion.response.client_data_json,
            self.webauthn.get_allowed_origins(),
        )?;
        let (user, cred_id) = self
            .webauthn
            .identify_discoverable_authentication(assertion)
            .map_err(|e| Refusal::CredentialRejected(format!("no user handle: {e}")))?;
        let cred_id = b64(cred_id);
        let unknown = |why: &str| Refusal::PasskeyUnknown(format!("{why}: credential {cred_id}"));
        let current = self
            .store
            .passkeys()
            .credential(&cred_id)?
            .ok_or_else(|| unknown("not registered"))?;
        *presented = Some(current.citizen_id.clone());
        if current.revoked_at.is_some() {
            return Err(unknown("revoked").into());
        }
        if current.citizen_id != user.to_string() {
            return Err(unknown("user handle does not match owner").into());
        }
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(assertion, state, &current.passkey)
            .map_err(|e| match e {
                WebauthnError::CredentialPossibleCompromise => Refusal::PossibleClone(format!(
                    "signature counter did not increase: credential {cred_id} of citizen {}",
                    current.citizen_id
                )),
                other => Refusal::CredentialRejected(other.to_string()),
            })?;
        let token = SessionToken(Zeroizing::new(b64(&random_bytes::<32>(self.rng)?)));
        let credential: Credential = current.passkey.clone().into();
        let session = Session {
            citizen_id: current.citizen_id.clone(),
            credential_id: cred_id.clone(),
            auth_time: now,
            expires_at: now + SESSION_TTL,
            user_verified: result.user_verified(),
            hardware_attested: hardware_attested(
                &credential,
                self.attestation_roots,
                current.created_at,
            ),
        };
        let token_hash = session_hash(&token.0);
        let entry = Entry::new(
            event::LOGIN_SUCCEEDED,
            Actor::Citizen(&session.citizen_id),
            Some(&session.citizen_id),
            json!({
                "passkey_id": cred_id,
                "user_verified": session.user_verified,
                "hardware_attested": session.hardware_attested,
            }),
            now,
            self.rng,
        )?;
        // The signature was checked against the credential as first read; the transaction
        // re-reads it, so a login that landed meanwhile with the same or a higher counter,
        // or a revocation, is seen.
        let citizen = self.store.transact(|tx| {
            let mut credential = tx
                .passkeys()
                .credential(&cred_id)?
                .ok_or_else(|| unknown("vanished"))?;
            if credential.revoked_at.is_some() {
                return Err(unknown("revoked").into());
            }
            let stored: Credential = credential.passkey.clone().into();
            if result.counter() > 0 && result.counter() <= stored.counter {
                return Err(Refusal::PossibleClone(format!(
                    "concurrent use with counter {}: credential {cred_id}",
                    result.counter()
                ))
                .into());
            }
            credential.passkey.update_credential(&result);
            credential.last_used_at = Some(now);
            tx.passkeys().update_credential(&credential);
            if let Some(old) = replaces {
                tx.passkeys().delete_session(&session_hash(old));
            }
            tx.passkeys().insert_session(&token_hash, &session)?;
            entry.append(tx)?;
            // A passkey whose citizen's record is gone signs in no one.
            tx.citizens()
                .get(&session.citizen_id)?
                .ok_or_else(|| DomainError::from(unknown("owner's record is gone")))
        })?;
        Ok(Login {
            citizen,
            session,
            token,
        })
    }

    /// The live session for a token, if any (expired sessions and sessions of revoked
    /// passkeys are gone).
    ///
    /// # Errors
    /// Storage errors.
    pub fn session(&self, token: &str, now: OffsetDateTime) -> Result<Option<Session>> {
        let hash = session_hash(token);
        let Some(session) = self.store.passkeys().session(&hash)? else {
            return Ok(None);
        };
        let live = session.expires_at > now
            && self
                .store
                .passkeys()
                .credential(&session.credential_id)?
                .is_some_and(|c| c.revoked_at.is_none());
        if live {
            Ok(Some(session))
        } else {
            self.end_session(&hash)?;
            Ok(None)
        }
    }

    /// Ends a session.
    ///
    /// # Errors
    /// Storage errors.
    pub fn logout(&self, token: &str) -> Result<()> {
        self.end_session(&session_hash(token))
    }

    fn end_session(&self, hash: &[u8; 32]) -> Result<()> {
        Ok(self.store.transact(|tx| {
            tx.passkeys().delete_session(hash);
            Ok::<_, StoreError>(())
        })?)
    }

    /// The registry view of a citizen's passkeys.
    ///
    /// # Errors
    /// Storage errors.
    pub fn summaries(&self, citizen: &Citizen) -> Result<Vec<PasskeySummary>> {
        let mut out = Vec::new();
        for id in &citizen.passkey_ids {
            if let Some(p) = self.store.passkeys().credential(id)? {
                out.push(p.summary());
            }
        }
        Ok(out)
    }

    /// Revokes one of a citizen's passkeys: it never logs in again and its sessions end
    /// (sessions are checked against their credential). It stays listed, with `revoked_at`.
    /// Revoking twice is harmless.
    ///
    /// # Errors
    /// [`DomainError::NotFound`] when the citizen or the passkey (of that citizen) is unknown.
    pub fn revoke(&self, citizen_id: &str, passkey_id: &str, now: OffsetDateTime) -> Result<()> {
        let entry = Entry::new(
            event::PASSKEY_REVOKED,
            Actor::Admin,
            Some(citizen_id),
            json!({"passkey_id": passkey_id}),
            now,
            self.rng,
        )?;
        self.store.transact(|tx| {
            let citizen = tx
                .citizens()
                .get(citizen_id)?
                .ok_or(DomainError::NotFound("citizen"))?;
            if !citizen.passkey_ids.iter().any(|p| p == passkey_id) {
                return Err(DomainError::NotFound("passkey"));
            }
            let mut credential = tx
                .passkeys()
                .credential(passkey_id)?
                .filter(|c| c.citizen_id == citizen_id)
                .ok_or(DomainError::NotFound("passkey"))?;
            if credential.revoked_at.is_none() {
                credential.revoked_at = Some(now);
                tx.passkeys().update_credential(&credential);
                entry.append(tx)?;
            }
            Ok(())
        })
    }
}
