//! Passkey credentials, WebAuthn ceremony state and login sessions, as versioned records.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use webauthn_rs::prelude::{DiscoverableAuthentication, Passkey, PasskeyRegistration};

use super::record::Record;
use super::tx::Read;
use super::{Result, Store, Tx};
use crate::crypto::digest::{hex, unhex32};
use crate::domain::passkeys::{Ceremony, CeremonyKind, Session, StoredPasskey};

/// Tree of pending WebAuthn ceremonies by ceremony id (single use, short-lived).
pub const CEREMONIES: &str = "ceremonies";
/// Tree of passkey credentials by credential id (base64url).
pub const CREDENTIALS: &str = "credentials";
/// Tree of login sessions by SHA-256 of the session token (hex).
pub const SESSIONS: &str = "sessions";

#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredCeremony {
    #[serde(rename = "1")]
    V1(CeremonyV1),
}

// webauthn-rs's own state serialisation (feature `danger-allow-state-serialisation`): it only
// ever lives here, server-side, for minutes.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum CeremonyV1 {
    Enrol {
        citizen_id: String,
        enrolment_hash: String,
        state: PasskeyRegistration,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    Login {
        state: DiscoverableAuthentication,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
}

impl Record for StoredCeremony {
    const TREE: &'static str = CEREMONIES;
    const VERSIONS: &'static [&'static str] = &["1"];
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredCredential {
    #[serde(rename = "1")]
    V1 {
        id: String,
        citizen_id: String,
        passkey: Passkey,
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339::option")]
        last_used_at: Option<OffsetDateTime>,
        #[serde(with = "time::serde::rfc3339::option")]
        revoked_at: Option<OffsetDateTime>,
    },
}

impl Record for StoredCredential {
    const TREE: &'static str = CREDENTIALS;
    const VERSIONS: &'static [&'static str] = &["1"];
}

impl From<&StoredPasskey> for StoredCredential {
    fn from(p: &StoredPasskey) -> Self {
        Self::V1 {
            id: p.id.clone(),
            citizen_id: p.citizen_id.clone(),
            passkey: p.passkey.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
            revoked_at: p.revoked_at,
        }
    }
}

impl From<StoredCredential> for StoredPasskey {
    fn from(s: StoredCredential) -> Self {
        let StoredCredential::V1 {
            id,
            citizen_id,
            passkey,
            created_at,
            last_used_at,
            revoked_at,
        } = s;
        Self {
            id,
            citizen_id,
            passkey,
            created_at,
            last_used_at,
            revoked_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredSession {
    #[serde(rename = "1")]
    V1 {
        citizen_id: String,
        credential_id: String,
        #[serde(with = "time::serde::rfc3339")]
        auth_time: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
        user_verified: bool,
    },
    /// Version 2 adds whether the login used a verified hardware key.
    #[serde(rename = "2")]
    V2 {
        citizen_id: String,
        credential_id: String,
        #[serde(with = "time::serde::rfc3339")]
        auth_time: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
        user_verified: bool,
        hardware_attested: bool,
    },
}

impl Record for StoredSession {
    const TREE: &'static str = SESSIONS;
    const VERSIONS: &'static [&'static str] = &["1", "2"];
}

impl From<StoredSession> for Session {
    fn from(s: StoredSession) -> Self {
        match s {
            // Written before attestation was judged: such a login never claims a
            // verified hardware key.
            StoredSession::V1 {
                citizen_id,
                credential_id,
                auth_time,
                expires_at,
                user_verified,
            } => Session {
                citizen_id,
                credential_id,
                auth_time,
                expires_at,
                user_verified,
                hardware_attested: false,
            },
            StoredSession::V2 {
                citizen_id,
                credential_id,
                auth_time,
                expires_at,
                user_verified,
                hardware_attested,
            } => Session {
                citizen_id,
                credential_id,
                auth_time,
                expires_at,
                user_verified,
                hardware_attested,
            },
        }
    }
}

/// Passkey storage: credentials, WebAuthn ceremonies and login sessions. Reads work on the
/// committed store and in a transaction; writes only in a transaction.
pub struct Passkeys<S>(pub(super) S);

impl Store {
    /// Committed passkeys and sessions.
    pub fn passkeys(&self) -> Passkeys<&Self> {
        Passkeys(self)
    }
}

impl<'a> Tx<'a> {
    /// Passkeys, ceremonies and sessions in this transaction.
    pub fn passkeys(&mut self) -> Passkeys<&mut Tx<'a>> {
        Passkeys(self)
    }
}

fn session_key(token_hash: &[u8; 32]) -> Vec<u8> {
    hex(token_hash).into_bytes()
}

impl<S: Read> Passkeys<S> {
    /// A credential by id.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn credential(&self, id: &str) -> Result<Option<StoredPasskey>> {
        Ok(self
            .0
            .get::<StoredCredential>(id.as_bytes())?
            .map(StoredPasskey::from))
    }

    /// A session by the hash of its token.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>> {
        Ok(self
            .0
            .get::<StoredSession>(&session_key(token_hash))?
            .map(Session::from))
    }
}

impl Passkeys<&mut Tx<'_>> {
    /// Stores a new ceremony under a fresh id, filed for expiry.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] if the id is taken.
    pub fn insert_ceremony(&mut self, id: &str, c: &Ceremony) -> Result<()> {
        let v1 = match &c.kind {
            CeremonyKind::Enrol {
                citizen_id,
                enrolment_hash,
                state,
            } => CeremonyV1::Enrol {
                citizen_id: citizen_id.clone(),
                enrolment_hash: hex(enrolment_hash),
                state: state.clone(),
                expires_at: c.expires_at,
            },
            CeremonyKind::Login { state } => CeremonyV1::Login {
                state: state.clone(),
                expires_at: c.expires_at,
            },
        };
        self.0
            .insert_new_expiring(id.as_bytes(), &StoredCeremony::V1(v1), c.expires_at)
    }

    /// Removes and returns a ceremony: whoever takes it first owns it (single use).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn take_ceremony(&mut self, id: &str) -> Result<Option<Ceremony>> {
        let Some(StoredCeremony::V1(v1)) = self.0.take::<StoredCeremony>(id.as_bytes())? else {
            return Ok(None);
        };
        Ok(Some(match v1 {
            CeremonyV1::Enrol {
                citizen_id,
                enrolment_hash,
                state,
                expires_at,
            } => Ceremony {
                kind: CeremonyKind::Enrol {
                    citizen_id,
                    enrolment_hash: unhex32(&enrolment_hash).ok_or_else(|| {
                        super::StoreError::Corrupt {
                            tree: CEREMONIES,
                            key: id.to_owned(),
                            reason: "malformed enrolment hash".into(),
                        }
                    })?,
                    state,
                },
                expires_at,
            },
            CeremonyV1::Login { state, expires_at } => Ceremony {
                kind: CeremonyKind::Login { state },
                expires_at,
            },
        }))
    }

    /// Stores a newly enrolled credential.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] naming [`CREDENTIALS`] if the id exists.
    pub fn insert_credential(&mut self, p: &StoredPasskey) -> Result<()> {
        self.0
            .insert_new(p.id.as_bytes(), &StoredCredential::from(p))
    }

    /// Replaces a credential (counter, last use, revocation).
    pub fn update_credential(&mut self, p: &StoredPasskey) {
        self.0.put(p.id.as_bytes(), &StoredCredential::from(p));
    }

    /// Stores a new session, filed for expiry.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] if the token hash exists.
    pub fn insert_session(&mut self, token_hash: &[u8; 32], s: &Session) -> Result<()> {
        self.0.insert_new_expiring(
            &session_key(token_hash),
            &StoredSession::V2 {
                citizen_id: s.citizen_id.clone(),
                credential_id: s.credential_id.clone(),
                auth_time: s.auth_time,
                expires_at: s.expires_at,
                user_verified: s.user_verified,
                hardware_attested: s.hardware_attested,
            },
            s.expires_at,
        )
    }

    /// Ends a session (logout, expiry, revocation).
    pub fn delete_session(&mut self, token_hash: &[u8; 32]) {
        self.0.delete(SESSIONS, &session_key(token_hash));
    }
}

/// [`super::record::round_trip`] for the record stored in `tree`, if it is one of this
/// module's.
pub(super) fn round_trip(tree: &str, bytes: &[u8]) -> Option<std::result::Result<(), String>> {
    use super::record::round_trip as check;
    Some(match tree {
        CEREMONIES => check::<StoredCeremony>(bytes),
        CREDENTIALS => check::<StoredCredential>(bytes),
        SESSIONS => check::<StoredSession>(bytes),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{decode, encode};

    #[test]
    fn a_version_1_session_decodes_without_a_hardware_key() {
        let v1 = br#"{"v":"1","data":{"citizen_id":"c","credential_id":"k","auth_time":"2026-01-01T00:00:00Z","expires_at":"2026-01-01T08:00:00Z","user_verified":true}}"#;
        let s = Session::from(decode::<StoredSession>(b"h", v1).unwrap());
        assert!(s.user_verified && !s.hardware_attested, "{s:?}");
    }

    #[test]
    fn sessions_are_written_as_version_2() {
        let bytes = encode(&StoredSession::V2 {
            citizen_id: "c".into(),
            credential_id: "k".into(),
            auth_time: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH,
            user_verified: true,
            hardware_attested: true,
        });
        assert!(bytes.starts_with(br#"{"v":"2""#));
        let s = Session::from(decode::<StoredSession>(b"h", &bytes).unwrap());
        assert!(s.hardware_attested);
    }
}
