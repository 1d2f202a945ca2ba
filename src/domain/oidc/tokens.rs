//! The token endpoint's grants (RFC 6749 §4.1.3, §6, §4.4), access tokens as RFC 9068 JWTs,
//! ID tokens, refresh-token rotation with reuse detection, revocation (RFC 7009) and
//! introspection (RFC 7662).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::authorize::pkce_ok;
use super::model::{AuthorizationCode, Grant, RefreshToken, RevokedJti, UsedCode};
use super::{
    Provider, REFRESH_TTL, TOKEN_TTL, identity_claims, opaque_token, parse_scopes, sha256, subject,
};
use crate::crypto::jwt::{self, Expect, Rejected, Typ};
use crate::domain::citizens::Citizen;
use crate::domain::clients::{Client, GrantType, SubjectType};
use crate::domain::{DomainError, new_id};
use crate::store::oidc::USED_CODE_TTL;
use crate::store::{StoreError, Tx};

/// What a client is told about any refresh token that does not work.
const REFRESH_INVALID: &str = "refresh token is invalid, expired or revoked";
/// A code presented by a client it was not issued to.
const WRONG_CLIENT: &str = "code was not issued to this client";

/// Token endpoint failures (RFC 6749 §5.2), each with a client-safe description.
#[derive(Debug)]
pub enum TokenError {
    /// `invalid_request`.
    InvalidRequest(&'static str),
    /// `invalid_grant`.
    InvalidGrant(&'static str),
    /// `unauthorized_client`.
    UnauthorizedClient(&'static str),
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope(String),
    /// Our fault.
    Internal(DomainError),
}

impl From<DomainError> for TokenError {
    fn from(e: DomainError) -> Self {
        Self::Internal(e)
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// JWT access token (`at+jwt`).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Granted scopes.
    pub scope: String,
    /// Opaque refresh token, when the client has the refresh grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OIDC ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// Claims of our access tokens (RFC 9068).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// Citizen subject as the client sees it, or the client id for client credentials.
    pub sub: String,
    /// Audience: the issuer (civis's own APIs are the resource server).
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Unique id.
    pub jti: String,
    /// Client the token was issued to.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Login time (citizen tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Assurance level (citizen tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Grant id: revoking the grant kills the token (citizen tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

/// Why a presented access token is not accepted (→ 401 `invalid_token`).
#[derive(Debug, thiserror::Error)]
pub enum InvalidToken {
    /// Signature, algorithm, type, issuer, audience or expiry wrong.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// Its grant was revoked or the token itself was revoked.
    #[error("token revoked")]
    Revoked,
    /// Storage failure while checking.
    #[error(transparent)]
    Internal(#[from] DomainError),
}

impl Provider<'_> {
    fn ts(t: OffsetDateTime) -> i64 {
        t.unix_timestamp()
    }

    fn sub_for(&self, client: &Client, citizen_id: &str) -> String {
        match client.subject_type {
            SubjectType::Public => citizen_id.to_owned(),
            SubjectType::Pairwise => subject(
                self.keys,
                citizen_id,
                client.sector.as_deref().or(Some(&client.id)),
            ),
        }
    }

    fn sign(
        &self,
        typ: &str,
        claims: &impl Serialize,
        now: OffsetDateTime,
    ) -> Result<String, DomainError> {
        crate::crypto::jwt::sign(self.keys.tokens().signing(now), typ, claims)
            .map_err(|e| DomainError::Internal(format!("signing token: {e}")))
    }

    /// Signs an access token for a grant (or for a client itself).
    fn access_token(
        &self,
        client: &Client,
        sub: String,
        scopes: &[String],
        grant: Option<&Grant>,
        now: OffsetDateTime,
    ) -> Result<String, DomainError> {
        let claims = AccessClaims {
            iss: self.issuer.to_owned(),
            sub,
            aud: self.issuer.to_owned(),
            exp: Self::ts(now + TOKEN_TTL),
            iat: Self::ts(now),
            jti: new_id(self.rng)?,
            client_id: client.id.clone(),
            scope: scopes.join(" "),
            auth_time: grant.map(|g| Self::ts(g.auth_time)),
            acr: grant.map(|g| g.acr.clone()),
            gid: grant.map(|g| g.id.clone()),
        };
        self.sign("at+jwt", &claims, now)
    }

    /// The ID token for a grant, with the claims its scopes release.
    fn id_token(
        &self,
        client: &Client,
        grant: &Grant,
        citizen: &Citizen,
        nonce: Option<&str>,
        access_token: &str,
        now: OffsetDateTime,
    ) -> Result<String, DomainError> {
        let digest = sha256(access_token.as_bytes());
        let half = digest.get(..16).unwrap_or_default();
        let mut claims = identity_claims(citizen, &grant.scopes);
        let mut put = |k: &str, v: serde_json::Value| {
            claims.insert(k.to_owned(), v);
        };
        put("iss", self.issuer.into());
        put("sub", self.sub_for(client, &grant.citizen_id).into());
        put("aud", client.id.clone().into());
        put("azp", client.id.clone().into());
        put("exp", Self::ts(now + TOKEN_TTL).into());
        put("iat", Self::ts(now).into());
        put("auth_time", Self::ts(grant.auth_time).into());
        put("acr", grant.acr.clone().into());
        put("amr", grant.amr.clone().into());
        put("sid", grant.sid.clone().into());
        {
            use base64::Engine;
            put(
                "at_hash",
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(half)
                    .into(),
            );
        }
        if let Some(n) = nonce {
            put("nonce", n.into());
        }
        self.sign("JWT", &claims, now)
    }

    fn tokens_for_grant(
        &self,
        client: &Client,
        grant: &Grant,
        citizen: &Citizen,
        nonce: Option<&str>,
        refresh_token: Option<String>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, DomainError> {
        let sub = self.sub_for(client, &grant.citizen_id);
        let access = self.access_token(client, sub.clone(), &grant.scopes, Some(grant), now)?;
        let id_token = if grant.scopes.iter().any(|s| s == "openid") {
            Some(self.id_token(client, grant, citizen, nonce, &access, now)?)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer".into(),
            expires_in: TOKEN_TTL.whole_seconds(),
            scope: grant.scopes.join(" "),
            refresh_token,
            id_token,
        })
    }

    /// Revokes a grant (every access and refresh token issued under it).
    ///
    /// # Errors
    /// Storage failures.
    pub fn revoke_grant(&self, grant_id: &str, now: OffsetDateTime) -> Result<(), DomainError> {
        Ok(self
            .store
            .transact(|tx| revoke_grant_in(tx, grant_id, now))?)
    }

    /// A new refresh token value, when the client has the refresh grant (randomness only:
    /// prepared before the transaction that stores it).
    fn new_refresh_value(&self, client: &Client) -> Result<Option<String>, DomainError> {
        if !client.allows_grant(GrantType::RefreshToken) {
            return Ok(None);
        }
        Ok(Some(opaque_token(self.rng)?))
    }

    /// `grant_type=authorization_code`. A code is redeemed once, in one transaction that
    /// takes the code, creates the grant and its refresh token, and leaves a used-code
    /// marker; a replay at any later moment finds the marker and revokes the grant.
    ///
    /// # Errors
    /// [`TokenError`].
    pub fn exchange_code(
        &self,
        client: &Client,
        code: Option<&str>,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, TokenError> {
        if !client.allows_grant(GrantType::AuthorizationCode) {
            return Err(TokenError::UnauthorizedClient(
                "client may not use authorization_code",
            ));
        }
        let code = code.ok_or(TokenError::InvalidRequest("code is required"))?;
        let hash = sha256(code.as_bytes());
        let refresh = self.new_refresh_value(client)?;
        let redemption = self.store.transact(|tx| {
            redeem_in(
                tx,
                &hash,
                client,
                redirect_uri,
                verifier,
                refresh.as_deref(),
                now,
            )
        })?;
        let (grant, nonce, citizen) = match redemption {
            Redemption::Issued {
                grant,
                nonce,
                citizen,
            } => (grant, nonce, citizen),
            Redemption::Replayed { grant_id } => {
                tracing::warn!(%grant_id, "authorization code replayed: grant revoked");
                return Err(TokenError::InvalidGrant(
                    "code is invalid, expired or already used",
                ));
            }
            Redemption::Unknown => {
                return Err(TokenError::InvalidGrant(
                    "code is invalid, expired or already used",
                ));
            }
            Redemption::Refused(why) => {
                if why == WRONG_CLIENT {
                    tracing::warn!(client = %client.id, "code presented by another client");
                }
                return Err(TokenError::InvalidGrant(why));
            }
        };
        let citizen = citizen.ok_or(DomainError::NotFound("citizen"))?;
        Ok(self.tokens_for_grant(client, &grant, &citizen, nonce.as_deref(), refresh, now)?)
    }

    /// `grant_type=refresh_token`, rotating the token. A spent token presented again revokes
    /// the whole grant, unless it is a retry within the configured grace window, which gets
    /// the same answer as the first use.
    ///
    /// The tokens are signed from a first read, outside the transaction (signing under the
    /// store's lock would serialise it); the transaction then re-reads the token and rotates
    /// it only if it is still unspent and its grant unrevoked.
    ///
    /// # Errors
    /// [`TokenError`].
    pub fn refresh(
        &self,
        client: &Client,
        token: Option<&str>,
        scope: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, TokenError> {
        if !client.allows_grant(GrantType::RefreshToken) {
            return Err(TokenError::UnauthorizedClient(
                "client may not use refresh_token",
            ));
        }
        let token = token.ok_or(TokenError::InvalidRequest("refresh_token is required"))?;
        let hash = sha256(token.as_bytes());
        let current = self
            .store
            .grants()
            .refresh_token(&hash)?
            .filter(|r| r.client_id == client.id)
            .ok_or(TokenError::InvalidGrant(REFRESH_INVALID))?;
        if current.spent_at.is_some() {
            return self.spent_refresh_presented(&current, now);
        }
        if current.expires_at <= now {
            return Err(TokenError::InvalidGrant(REFRESH_INVALID));
        }
        let grant = self
            .store
            .grants()
            .get(&current.grant_id)?
            .filter(|g| g.revoked_at.is_none())
            .ok_or(TokenError::InvalidGrant(REFRESH_INVALID))?;
        let scopes = match scope {
            None => grant.scopes.clone(),
            Some(s) => {
                let asked = parse_scopes(s);
                if let Some(bad) = asked.iter().find(|a| !grant.scopes.contains(a)) {
                    return Err(TokenError::InvalidScope(format!(
                        "scope {bad} was not granted"
                    )));
                }
                asked
            }
        };
        let citizen = self
            .store
            .citizens()
            .get(&grant.citizen_id)?
            .ok_or(DomainError::NotFound("citizen"))?;
        let Some(new_token) = self.new_refresh_value(client)? else {
            return Err(TokenError::UnauthorizedClient(
                "client may not use refresh_token",
            ));
        };
        let narrowed = Grant {
            scopes,
            ..grant.clone()
        };
        let response = self.tokens_for_grant(
            client,
            &narrowed,
            &citizen,
            None,
            Some(new_token.clone()),
            now,
        )?;
        let successor = RefreshToken {
            grant_id: grant.id.clone(),
            client_id: client.id.clone(),
            scopes: grant.scopes.clone(),
            expires_at: current.expires_at,
            spent_at: None,
            grace_response: None,
        };
        let grace = (!self.refresh_grace.is_zero()).then_some(&response);
        let new_hash = sha256(new_token.as_bytes());
        let rotation = self
            .store
            .transact(|tx| rotate_in(tx, &hash, &new_hash, &successor, grace, now))?;
        match rotation {
            Rotation::Rotated => Ok(response),
            // A concurrent use won the race: this one is a reuse of a spent token.
            Rotation::AlreadySpent(spent) => self.spent_refresh_presented(&spent, now),
            Rotation::Invalid => Err(TokenError::InvalidGrant(REFRESH_INVALID)),
        }
    }

    /// A spent refresh token presented again: the first answer again within the grace
    /// window, otherwise the grant is revoked.
    fn spent_refresh_presented(
        &self,
        spent: &RefreshToken,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, TokenError> {
        if let (Some(spent_at), Some(cached)) = (spent.spent_at, &spent.grace_response)
            && now - spent_at <= self.refresh_grace
        {
            return Ok(cached.clone());
        }
        tracing::warn!(grant_id = %spent.grant_id, "spent refresh token reused: grant revoked");
        self.revoke_grant(&spent.grant_id, now)?;
        Err(TokenError::InvalidGrant(REFRESH_INVALID))
    }

    /// `grant_type=client_credentials`: a token for the client itself (no citizen), limited
    /// to the client's registered scopes. Stateless: nothing is written.
    ///
    /// # Errors
    /// [`TokenError`].
    pub fn client_credentials(
        &self,
        client: &Client,
        scope: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, TokenError> {
        if client.is_public() || !client.allows_grant(GrantType::ClientCredentials) {
            return Err(TokenError::UnauthorizedClient(
                "client may not use client_credentials",
            ));
        }
        let scopes = match scope {
            Some(s) => parse_scopes(s),
            None => client
                .scopes
                .iter()
                .filter(|s| *s != "openid")
                .cloned()
                .collect(),
        };
        if let Some(bad) = scopes
            .iter()
            .find(|s| *s == "openid" || !client.allows_scope(s))
        {
            return Err(TokenError::InvalidScope(format!(
                "scope {bad} is not allowed for this client"
            )));
        }
        let access = self.access_token(client, client.id.clone(), &scopes, None, now)?;
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer".into(),
            expires_in: TOKEN_TTL.whole_seconds(),
            scope: scopes.join(" "),
            refresh_token: None,
            id_token: None,
        })
    }

    /// Verifies one of our access tokens: ES256 with a published key, `typ: at+jwt`, our
    /// issuer as `iss` and `aud`, not expired, not revoked.
    ///
    /// # Errors
    /// [`InvalidToken`].
    pub fn verify_access_token(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<AccessClaims, InvalidToken> {
        let reject = |why: &str| InvalidToken::Rejected(why.to_owned());
        let keys = self.keys.tokens();
        let expect = Expect {
            typ: Typ::Is("at+jwt"),
            issuer: Some(self.issuer),
            audience: Some(self.issuer),
            required: &["exp", "iss", "aud", "sub"],
        };
        let claims: AccessClaims = jwt::verify(token, |kid| keys.candidates(kid), &expect)
            .map_err(|e| match e {
                Rejected::Typ => reject("not an access token (typ)"),
                Rejected::NoKey => reject("unknown kid"),
                other => reject(&other.to_string()),
            })?;
        if claims.exp <= now.unix_timestamp() {
            return Err(reject("expired"));
        }
        let revoked = match &claims.gid {
            Some(gid) => self
                .store
                .grants()
                .get(gid)
                .map_err(DomainError::from)?
                .is_none_or(|g| g.revoked_at.is_some()),
            None => self
                .store
                .grants()
                .jti_revoked(&claims.jti)
                .map_err(DomainError::from)?,
        };
        if revoked {
            return Err(InvalidToken::Revoked);
        }
        Ok(claims)
    }

    /// The client an `id_token_hint` names (its `aud`), if the hint is an ID token we
    /// signed. An expired one still counts (OpenID Connect RP-Initiated Logout §2); an
    /// access token does not.
    pub fn id_token_hint_audience(&self, hint: &str) -> Option<String> {
        let keys = self.keys.tokens();
        let expect = Expect {
            typ: Typ::Not("at+jwt"),
            issuer: Some(self.issuer),
            audience: None,
            required: &["iss", "aud"],
        };
        let claims: serde_json::Value =
            jwt::verify(hint, |kid| keys.candidates(kid), &expect).ok()?;
        claims.get("aud")?.as_str().map(str::to_owned)
    }

    /// RFC 7009 revocation by `client`: a refresh token or an access token of this client
    /// revokes its grant; anything else is silently ignored (as the RFC asks).
    ///
    /// # Errors
    /// Storage failures.
    pub fn revoke(
        &self,
        client: &Client,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        if let Some(r) = self
            .store
            .grants()
            .refresh_token(&sha256(token.as_bytes()))?
        {
            if r.client_id == client.id {
                self.revoke_grant(&r.grant_id, now)?;
            }
            return Ok(());
        }
        if let Ok(claims) = self.verify_access_token(token, now)
            && claims.client_id == client.id
        {
            {
                match &claims.gid {
                    Some(gid) => self.revoke_grant(gid, now)?,
                    None => {
                        let revoked = RevokedJti {
                            expires_at: OffsetDateTime::from_unix_timestamp(claims.exp)
                                .unwrap_or(now),
                        };
                        self.store.transact(|tx| {
                            tx.grants().revoke_jti(&claims.jti, &revoked);
                            Ok::<_, StoreError>(())
                        })?;
                    }
                }
            }
        }
        Ok(())
    }

    /// RFC 7662 introspection by `client`: only the caller's own live tokens are active.
    ///
    /// # Errors
    /// Storage failures.
    pub fn introspect(
        &self,
        client: &Client,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<serde_json::Value, DomainError> {
        let inactive = serde_json::json!({ "active": false });
        if let Some(r) = self
            .store
            .grants()
            .refresh_token(&sha256(token.as_bytes()))?
        {
            let live = r.client_id == client.id
                && r.spent_at.is_none()
                && r.expires_at > now
                && self
                    .store
                    .grants()
                    .get(&r.grant_id)?
                    .is_some_and(|g| g.revoked_at.is_none());
            if !live {
                return Ok(inactive);
            }
            return Ok(serde_json::json!({
                "active": true, "token_type": "refresh_token", "client_id": client.id,
                "scope": r.scopes.join(" "), "exp": r.expires_at.unix_timestamp(),
                "iss": self.issuer,
            }));
        }
        match self.verify_access_token(token, now) {
            Ok(c) if c.client_id == client.id => Ok(serde_json::json!({
                "active": true, "token_type": "Bearer", "client_id": c.client_id, "scope": c.scope,
                "sub": c.sub, "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat, "jti": c.jti,
            })),
            Ok(_) | Err(InvalidToken::Rejected(_) | InvalidToken::Revoked) => Ok(inactive),
            Err(InvalidToken::Internal(e)) => Err(e),
        }
    }

    /// Userinfo claims for a verified access token (needs the `openid` scope and a citizen).
    ///
    /// # Errors
    /// [`DomainError::NotFound`] if the citizen is gone; storage failures.
    pub fn userinfo(&self, claims: &AccessClaims) -> Result<serde_json::Value, DomainError> {
        let gid = claims
            .gid
            .as_deref()
            .ok_or(DomainError::NotFound("citizen"))?;
        let grant = self
            .store
            .grants()
            .get(gid)?
            .ok_or(DomainError::NotFound("grant"))?;
        let citizen = self
            .store
            .citizens()
            .get(&grant.citizen_id)?
            .ok_or(DomainError::NotFound("citizen"))?;
        let scopes = parse_scopes(&claims.scope);
        let mut m = identity_claims(&citizen, &scopes);
        m.insert("sub".into(), claims.sub.clone().into());
        Ok(serde_json::Value::Object(m))
    }
}

/// What the redemption transaction found.
#[expect(
    clippy::large_enum_variant,
    reason = "a transient return value, moved once"
)]
enum Redemption {
    /// The code was valid: the grant is stored, with its citizen as of the redemption.
    Issued {
        grant: Grant,
        nonce: Option<String>,
        citizen: Option<Citizen>,
    },
    /// The code had been redeemed before: its grant is now revoked.
    Replayed { grant_id: String },
    /// No such code (never issued, expired and swept, or refused before).
    Unknown,
    /// The code was presented wrongly; it is spent anyway.
    Refused(&'static str),
}

/// Why a taken code does not yield a grant, if it does not.
fn code_refusal(
    record: &AuthorizationCode,
    client: &Client,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    now: OffsetDateTime,
) -> Option<&'static str> {
    if record.client_id != client.id {
        return Some(WRONG_CLIENT);
    }
    if record.expires_at <= now {
        return Some("code expired");
    }
    if redirect_uri != Some(record.redirect_uri.as_str()) {
        return Some("redirect_uri does not match the authorization request");
    }
    let Some(verifier) = verifier else {
        return Some("code_verifier is required");
    };
    if !pkce_ok(verifier, &record.code_challenge) {
        return Some("code_verifier does not match the code_challenge");
    }
    None
}

/// The redemption transaction. A refused code is still taken (committed), so a code
/// presented by the wrong client or with the wrong verifier never stays usable.
fn redeem_in(
    tx: &mut Tx<'_>,
    hash: &[u8; 32],
    client: &Client,
    redirect_uri: Option<&str>,
    verifier: Option<&str>,
    refresh: Option<&str>,
    now: OffsetDateTime,
) -> Result<Redemption, StoreError> {
    let Some(record) = tx.authorizations().take_code(hash)? else {
        return match tx.authorizations().used_code(hash)? {
            Some(used) => {
                revoke_grant_in(tx, &used.grant_id, now)?;
                Ok(Redemption::Replayed {
                    grant_id: used.grant_id,
                })
            }
            None => Ok(Redemption::Unknown),
        };
    };
    if let Some(why) = code_refusal(&record, client, redirect_uri, verifier, now) {
        return Ok(Redemption::Refused(why));
    }
    let grant = Grant {
        id: record.grant_id.clone(),
        client_id: client.id.clone(),
        citizen_id: record.citizen_id.clone(),
        scopes: record.scopes.clone(),
        auth_time: record.auth_time,
        acr: record.acr.clone(),
        amr: record.amr.clone(),
        sid: record.sid.clone(),
        created_at: now,
        revoked_at: None,
    };
    tx.grants().insert(&grant)?;
    tx.authorizations().mark_used(
        hash,
        &UsedCode {
            grant_id: grant.id.clone(),
            expires_at: now + USED_CODE_TTL,
        },
    );
    if let Some(token) = refresh {
        tx.grants().put_refresh_token(
            &sha256(token.as_bytes()),
            &RefreshToken {
                grant_id: grant.id.clone(),
                client_id: client.id.clone(),
                scopes: grant.scopes.clone(),
                expires_at: now + REFRESH_TTL,
                spent_at: None,
                grace_response: None,
            },
        );
    }
    let citizen = tx.citizens().get(&grant.citizen_id)?;
    Ok(Redemption::Issued {
        grant,
        nonce: record.nonce,
        citizen,
    })
}

/// What the rotation transaction found.
#[expect(
    clippy::large_enum_variant,
    reason = "a transient return value, moved once"
)]
enum Rotation {
    /// The old token is spent and its successor stored.
    Rotated,
    /// Someone spent it first (the record as it is now).
    AlreadySpent(RefreshToken),
    /// The token or its grant is gone or revoked.
    Invalid,
}

/// The rotation transaction: spends `old` (keeping `grace`, the answer, for retries) and
/// stores `successor` under `new_hash`, if `old` is still unspent and its grant live.
fn rotate_in(
    tx: &mut Tx<'_>,
    old: &[u8; 32],
    new_hash: &[u8; 32],
    successor: &RefreshToken,
    grace: Option<&TokenResponse>,
    now: OffsetDateTime,
) -> Result<Rotation, StoreError> {
    let Some(mut current) = tx.grants().refresh_token(old)? else {
        return Ok(Rotation::Invalid);
    };
    if current.spent_at.is_some() {
        return Ok(Rotation::AlreadySpent(current));
    }
    let live = tx
        .grants()
        .get(&current.grant_id)?
        .is_some_and(|g| g.revoked_at.is_none());
    if !live || current.grant_id != successor.grant_id {
        return Ok(Rotation::Invalid);
    }
    current.spent_at = Some(now);
    current.grace_response = grace.cloned();
    tx.grants().put_refresh_token(old, &current);
    tx.grants().put_refresh_token(new_hash, successor);
    Ok(Rotation::Rotated)
}

/// Revokes a grant inside a transaction (absent or already revoked: nothing to do).
///
/// # Errors
/// Storage failures.
pub fn revoke_grant_in(
    tx: &mut Tx<'_>,
    grant_id: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if let Some(mut grant) = tx.grants().get(grant_id)?
        && grant.revoked_at.is_none()
    {
        grant.revoked_at = Some(now);
        tx.grants().update(&grant);
    }
    Ok(())
}
