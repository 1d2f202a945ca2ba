//! OpenID Connect state: pending authorization requests, codes, grants, refresh tokens,
//! consents and revoked access-token ids. The structs here are the persisted shapes (version
//! 1); the domain uses them as plain data.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{decode, encode, hex, printable_key, record_v1};
use super::{Result, Snapshot, Store, StoreError, Write, WriteKind};

/// Pending authorization requests by id.
pub const AUTHZ_REQUESTS: &str = "authz_requests";
/// Authorization codes by SHA-256 (hex).
pub const CODES: &str = "codes";
/// Redeemed codes by SHA-256 (hex) → the grant they created (replay detection).
pub const USED_CODES: &str = "used_codes";
/// Grants by id.
pub const GRANTS: &str = "grants";
/// Refresh tokens by SHA-256 (hex).
pub const REFRESH_TOKENS: &str = "refresh_tokens";
/// Consents by `citizen_id/client_id`.
pub const CONSENTS: &str = "consents";
/// Revoked stand-alone access tokens (client credentials) by `jti`.
pub const REVOKED_JTIS: &str = "revoked_jtis";

/// A validated authorization request waiting for login or consent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// Client.
    pub client_id: String,
    /// Exact registered redirect URI.
    pub redirect_uri: String,
    /// Granted-if-consented scopes.
    pub scopes: Vec<String>,
    /// Client state, echoed.
    pub state: Option<String>,
    /// OIDC nonce, put into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// `prompt=login`: a login newer than the request is required.
    pub prompt_login: bool,
    /// `prompt=consent`: ask again even if consent is stored.
    pub prompt_consent: bool,
    /// `prompt=none`: never show a page.
    pub prompt_none: bool,
    /// `max_age` in seconds.
    pub max_age: Option<i64>,
    /// Requested `acr_values`, in order of preference (empty: none requested).
    pub acr_values: Vec<String>,
    /// When the request arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it is abandoned.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// An issued authorization code (stored by its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationCode {
    /// Grant that redeeming it creates.
    pub grant_id: String,
    /// Client it was issued to.
    pub client_id: String,
    /// Redirect URI it was sent to.
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Citizen.
    pub citizen_id: String,
    /// Session id (`sid`) of the login.
    pub sid: String,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    pub auth_time: OffsetDateTime,
    /// Assurance level reached.
    pub acr: String,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// Codes live at most 60 s.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// What a redeemed code leads to (kept a day to detect replays).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsedCode {
    /// Grant created from the code.
    pub grant_id: String,
    /// When the record may be pruned.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A grant: what one citizen allowed one client, from one code, across refreshes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    /// Id (also the `gid` claim of access tokens).
    pub id: String,
    /// Client.
    pub client_id: String,
    /// Citizen.
    pub citizen_id: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    pub auth_time: OffsetDateTime,
    /// Assurance level.
    pub acr: String,
    /// Methods.
    pub amr: Vec<String>,
    /// Session id.
    pub sid: String,
    /// Creation.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Revocation: every token of the grant is dead from then on.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A refresh token (stored by its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshToken {
    /// Grant.
    pub grant_id: String,
    /// Client.
    pub client_id: String,
    /// Scopes it may refresh.
    pub scopes: Vec<String>,
    /// Absolute expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was exchanged; a spent token presented again revokes the grant.
    #[serde(with = "time::serde::rfc3339::option")]
    pub spent_at: Option<OffsetDateTime>,
    /// The token response it was exchanged for, kept only during the configured retry grace
    /// (default none) so that a retry gets the same answer.
    pub grace_response: Option<serde_json::Value>,
}

/// A citizen's consent for a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consent {
    /// Scopes allowed.
    pub scopes: Vec<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub granted_at: OffsetDateTime,
}

/// A revoked stand-alone access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokedJti {
    /// The token's own expiry: afterwards the record can go.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

record_v1!(StoredPending, AUTHZ_REQUESTS, PendingAuthorization);
record_v1!(StoredCode, CODES, AuthorizationCode);
record_v1!(StoredUsedCode, USED_CODES, UsedCode);
record_v1!(StoredGrant, GRANTS, Grant);
record_v1!(StoredRefresh, REFRESH_TOKENS, RefreshToken);
record_v1!(StoredConsent, CONSENTS, Consent);
record_v1!(StoredRevokedJti, REVOKED_JTIS, RevokedJti);

fn put(tree: &'static str, key: &[u8], value: Vec<u8>, new: bool) -> Write {
    Write {
        tree,
        key: key.to_vec(),
        kind: if new {
            WriteKind::PutNew(value)
        } else {
            WriteKind::Put(value)
        },
    }
}

fn consent_key(citizen_id: &str, client_id: &str) -> Vec<u8> {
    format!("{citizen_id}/{client_id}").into_bytes()
}

impl Store {
    fn commit_unflushed(&self, writes: Vec<Write>) -> Result<()> {
        match self.backend.commit(writes)? {
            None => Ok(()),
            Some((tree, key)) => Err(StoreError::Conflict {
                tree,
                key: printable_key(&key),
            }),
        }
    }

    fn take_decoded<R: super::record::Record>(&self, key: &[u8]) -> Result<Option<R>> {
        match self.backend.take(R::TREE, key)? {
            None => Ok(None),
            Some(raw) => decode::<R>(key, &raw).map(Some),
        }
    }

    /// Stores a pending authorization request (not flushed: a lost one is just retried).
    ///
    /// # Errors
    /// Backend errors.
    pub fn put_pending(&self, id: &str, p: &PendingAuthorization) -> Result<()> {
        self.commit_unflushed(vec![put(
            AUTHZ_REQUESTS,
            id.as_bytes(),
            encode(&StoredPending::V1(p.clone())),
            true,
        )])
    }

    /// Reads a pending authorization request.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn pending(&self, id: &str) -> Result<Option<PendingAuthorization>> {
        Ok(self
            .read::<StoredPending>(id.as_bytes())?
            .map(|StoredPending::V1(p)| p))
    }

    /// Removes a pending authorization request, returning it if it was there (single use).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn take_pending(&self, id: &str) -> Result<Option<PendingAuthorization>> {
        Ok(self
            .take_decoded::<StoredPending>(id.as_bytes())?
            .map(|StoredPending::V1(p)| p))
    }

    /// Stores a new authorization code by hash, flushed (the redirect that carries it follows).
    ///
    /// # Errors
    /// Backend errors.
    pub fn put_code(&self, hash: &[u8; 32], code: &AuthorizationCode) -> Result<()> {
        self.commit(vec![put(
            CODES,
            hex(hash).as_bytes(),
            encode(&StoredCode::V1(code.clone())),
            true,
        )])
    }

    /// Atomically removes a code: of many concurrent redemptions exactly one gets it.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn take_code(&self, hash: &[u8; 32]) -> Result<Option<AuthorizationCode>> {
        Ok(self
            .take_decoded::<StoredCode>(hex(hash).as_bytes())?
            .map(|StoredCode::V1(c)| c))
    }

    /// The grant a redeemed code created, if it was redeemed.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn used_code(&self, hash: &[u8; 32]) -> Result<Option<UsedCode>> {
        Ok(self
            .read::<StoredUsedCode>(hex(hash).as_bytes())?
            .map(|StoredUsedCode::V1(u)| u))
    }

    /// Records a redemption: the used-code marker, the grant and its first refresh token,
    /// atomically, flushed.
    ///
    /// # Errors
    /// Backend errors.
    pub fn redeem_code(
        &self,
        code_hash: &[u8; 32],
        used: &UsedCode,
        grant: &Grant,
        refresh: Option<(&[u8; 32], &RefreshToken)>,
    ) -> Result<()> {
        let mut writes = vec![
            put(
                USED_CODES,
                hex(code_hash).as_bytes(),
                encode(&StoredUsedCode::V1(used.clone())),
                false,
            ),
            put(
                GRANTS,
                grant.id.as_bytes(),
                encode(&StoredGrant::V1(grant.clone())),
                true,
            ),
        ];
        if let Some((hash, r)) = refresh {
            writes.push(put(
                REFRESH_TOKENS,
                hex(hash).as_bytes(),
                encode(&StoredRefresh::V1(r.clone())),
                true,
            ));
        }
        self.commit(writes)
    }

    /// Reads a grant for update.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn grant(&self, id: &str) -> Result<Option<Snapshot<Grant>>> {
        Ok(self
            .read_for_update::<StoredGrant>(id.as_bytes())?
            .map(|s| s.map(|StoredGrant::V1(g)| g)))
    }

    /// Replaces a grant read as `current` (revocation), flushed.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when it changed concurrently.
    pub fn replace_grant(&self, current: &Snapshot<Grant>, updated: &Grant) -> Result<()> {
        self.commit(vec![current.replace(
            GRANTS,
            current.value.id.as_bytes(),
            encode(&StoredGrant::V1(updated.clone())),
        )])
    }

    /// Reads a refresh token for update.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn refresh_token(&self, hash: &[u8; 32]) -> Result<Option<Snapshot<RefreshToken>>> {
        Ok(self
            .read_for_update::<StoredRefresh>(hex(hash).as_bytes())?
            .map(|s| s.map(|StoredRefresh::V1(r)| r)))
    }

    /// Rotates a refresh token: the old one is marked spent (compare-and-swap, so of two
    /// concurrent uses only one rotates) and the new one stored, flushed.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the old token changed concurrently.
    pub fn rotate_refresh(
        &self,
        old_hash: &[u8; 32],
        old: &Snapshot<RefreshToken>,
        spent: &RefreshToken,
        new_hash: &[u8; 32],
        new: &RefreshToken,
    ) -> Result<()> {
        self.commit(vec![
            old.replace(
                REFRESH_TOKENS,
                hex(old_hash).as_bytes(),
                encode(&StoredRefresh::V1(spent.clone())),
            ),
            put(
                REFRESH_TOKENS,
                hex(new_hash).as_bytes(),
                encode(&StoredRefresh::V1(new.clone())),
                true,
            ),
        ])
    }

    /// A citizen's consent for a client.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn consent(&self, citizen_id: &str, client_id: &str) -> Result<Option<Consent>> {
        Ok(self
            .read::<StoredConsent>(&consent_key(citizen_id, client_id))?
            .map(|StoredConsent::V1(c)| c))
    }

    /// Stores (replaces) a consent, flushed.
    ///
    /// # Errors
    /// Backend errors.
    pub fn put_consent(&self, citizen_id: &str, client_id: &str, c: &Consent) -> Result<()> {
        self.commit(vec![put(
            CONSENTS,
            &consent_key(citizen_id, client_id),
            encode(&StoredConsent::V1(c.clone())),
            false,
        )])
    }

    /// Withdraws a consent, flushed.
    ///
    /// # Errors
    /// Backend errors.
    pub fn delete_consent(&self, citizen_id: &str, client_id: &str) -> Result<()> {
        self.commit(vec![Write {
            tree: CONSENTS,
            key: consent_key(citizen_id, client_id),
            kind: WriteKind::Delete,
        }])
    }

    /// Marks a stand-alone access token revoked, flushed.
    ///
    /// # Errors
    /// Backend errors.
    pub fn revoke_jti(&self, jti: &str, r: &RevokedJti) -> Result<()> {
        self.commit(vec![put(
            REVOKED_JTIS,
            jti.as_bytes(),
            encode(&StoredRevokedJti::V1(r.clone())),
            false,
        )])
    }

    /// Whether a stand-alone access token was revoked.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn jti_revoked(&self, jti: &str) -> Result<bool> {
        Ok(self.read::<StoredRevokedJti>(jti.as_bytes())?.is_some())
    }
}
