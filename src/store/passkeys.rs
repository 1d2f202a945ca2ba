//! Passkey credentials, WebAuthn ceremony state and login sessions, as versioned records.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use webauthn_rs::prelude::{DiscoverableAuthentication, Passkey, PasskeyRegistration};

use super::citizens::{citizen_update, enrolment_key};
use super::record::{Record, decode, encode, hex, unhex32};
use super::{Result, Snapshot, Store, Write, WriteKind};
use crate::domain::citizens::Citizen;
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
}

impl Record for StoredSession {
    const TREE: &'static str = SESSIONS;
    const VERSIONS: &'static [&'static str] = &["1"];
}

fn credential_write(p: &StoredPasskey, kind: fn(Vec<u8>) -> WriteKind) -> Write {
    Write {
        tree: CREDENTIALS,
        key: p.id.as_bytes().to_vec(),
        kind: kind(encode(&StoredCredential::from(p))),
    }
}

fn session_write(token_hash: &[u8; 32], s: &Session) -> Write {
    Write {
        tree: SESSIONS,
        key: hex(token_hash).into_bytes(),
        kind: WriteKind::PutNew(encode(&StoredSession::V1 {
            citizen_id: s.citizen_id.clone(),
            credential_id: s.credential_id.clone(),
            auth_time: s.auth_time,
            expires_at: s.expires_at,
            user_verified: s.user_verified,
        })),
    }
}

impl Store {
    /// Stores a new ceremony under a fresh id.
    ///
    /// # Errors
    /// Backend errors; [`super::StoreError::Conflict`] if the id is taken.
    pub fn put_ceremony(&self, id: &str, c: &Ceremony) -> Result<()> {
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
        // Not flushed: a ceremony lost in a crash is simply started again.
        match self.backend.commit(vec![Write {
            tree: CEREMONIES,
            key: id.as_bytes().to_vec(),
            kind: WriteKind::PutNew(encode(&StoredCeremony::V1(v1))),
        }])? {
            None => Ok(()),
            Some((tree, key)) => Err(super::StoreError::Conflict {
                tree,
                key: super::record::printable_key(&key),
            }),
        }
    }

    /// Removes and returns a ceremony: whoever takes it first owns it (single use).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn take_ceremony(&self, id: &str) -> Result<Option<Ceremony>> {
        let Some(raw) = self.backend.take(CEREMONIES, id.as_bytes())? else {
            return Ok(None);
        };
        let StoredCeremony::V1(v1) = decode::<StoredCeremony>(id.as_bytes(), &raw)?;
        Ok(Some(match v1 {
            CeremonyV1::Enrol {
                citizen_id,
                enrolment_hash,
                state,
                expires_at,
            } => Ceremony {
                kind: CeremonyKind::Enrol {
                    citizen_id,
                    enrolment_hash: unhex32(&enrolment_hash).unwrap_or_default(),
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

    /// Reads a credential.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn credential(&self, id: &str) -> Result<Option<StoredPasskey>> {
        Ok(self
            .read::<StoredCredential>(id.as_bytes())?
            .map(StoredPasskey::from))
    }

    /// Reads a credential for a later compare-and-swap update.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn credential_for_update(&self, id: &str) -> Result<Option<Snapshot<StoredPasskey>>> {
        Ok(self
            .read_for_update::<StoredCredential>(id.as_bytes())?
            .map(|s| s.map(StoredPasskey::from)))
    }

    /// Records a newly enrolled passkey: the citizen gains it and loses the used enrolment
    /// code, the credential is created, the ticket is deleted — atomically, flushed.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] if the citizen changed or the credential id exists.
    pub fn enrol_passkey(
        &self,
        citizen: &Snapshot<Citizen>,
        updated: &Citizen,
        passkey: &StoredPasskey,
        enrolment_hash: &[u8; 32],
    ) -> Result<()> {
        self.commit(vec![
            citizen_update(citizen, updated),
            credential_write(passkey, WriteKind::PutNew),
            Write {
                tree: super::ENROLMENTS,
                key: enrolment_key(enrolment_hash),
                kind: WriteKind::Delete,
            },
        ])
    }

    /// Records a login: the credential's new counter and last use, and the new session,
    /// atomically, flushed.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] if the credential changed concurrently.
    pub fn record_login(
        &self,
        credential: &Snapshot<StoredPasskey>,
        updated: &StoredPasskey,
        token_hash: &[u8; 32],
        session: &Session,
    ) -> Result<()> {
        self.commit(vec![
            credential.replace(
                CREDENTIALS,
                credential.value.id.as_bytes(),
                encode(&StoredCredential::from(updated)),
            ),
            session_write(token_hash, session),
        ])
    }

    /// Replaces a credential read as `current` (revocation), flushed.
    ///
    /// # Errors
    /// [`super::StoreError::Conflict`] if it changed concurrently.
    pub fn replace_credential(
        &self,
        current: &Snapshot<StoredPasskey>,
        updated: &StoredPasskey,
    ) -> Result<()> {
        self.commit(vec![current.replace(
            CREDENTIALS,
            current.value.id.as_bytes(),
            encode(&StoredCredential::from(updated)),
        )])
    }

    /// Reads a session by the hash of its token.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn session(&self, token_hash: &[u8; 32]) -> Result<Option<Session>> {
        let key = hex(token_hash);
        Ok(self.read::<StoredSession>(key.as_bytes())?.map(
            |StoredSession::V1 {
                 citizen_id,
                 credential_id,
                 auth_time,
                 expires_at,
                 user_verified,
             }| Session {
                citizen_id,
                credential_id,
                auth_time,
                expires_at,
                user_verified,
            },
        ))
    }

    /// Deletes a session (logout, expiry), flushed.
    ///
    /// # Errors
    /// Backend errors.
    pub fn delete_session(&self, token_hash: &[u8; 32]) -> Result<()> {
        self.commit(vec![Write {
            tree: SESSIONS,
            key: hex(token_hash).into_bytes(),
            kind: WriteKind::Delete,
        }])
    }
}
