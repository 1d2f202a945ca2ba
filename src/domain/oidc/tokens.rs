//! The token endpoint's grants (RFC 6749 §4.1.3, §6, §4.4), access tokens as RFC 9068 JWTs,
//! ID tokens, refresh-token rotation with reuse detection, revocation (RFC 7009) and
//! introspection (RFC 7662).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::authorize::pkce_ok;
use super::{
    Provider, REFRESH_TTL, TOKEN_TTL, identity_claims, opaque_token, parse_scopes, sha256, subject,
};
use crate::domain::clients::{Client, GrantType, SubjectType};
use crate::domain::{DomainError, new_id};
use crate::store::StoreError;
use crate::store::oidc::{AuthorizationCode, Grant, RefreshToken, RevokedJti, UsedCode};

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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
        self.keys
            .tokens()
            .signing(now)
            .sign_jwt(typ, claims)
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
        sub: &str,
        nonce: Option<&str>,
        access_token: &str,
        now: OffsetDateTime,
    ) -> Result<String, DomainError> {
        let citizen = self
            .store
            .citizen(&grant.citizen_id)?
            .ok_or(DomainError::NotFound("citizen"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
        let half = digest.as_ref().get(..16).unwrap_or_default();
        let mut claims = identity_claims(&citizen, &grant.scopes);
        let mut put = |k: &str, v: serde_json::Value| {
            claims.insert(k.to_owned(), v);
        };
        put("iss", self.issuer.into());
        put("sub", sub.into());
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
        nonce: Option<&str>,
        refresh_token: Option<String>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, DomainError> {
        let sub = self.sub_for(client, &grant.citizen_id);
        let access = self.access_token(client, sub.clone(), &grant.scopes, Some(grant), now)?;
        let id_token = if grant.scopes.iter().any(|s| s == "openid") {
            Some(self.id_token(client, grant, &sub, nonce, &access, now)?)
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
        for _ in 0..8 {
            let Some(g) = self.store.grant(grant_id)? else {
                return Ok(());
            };
            if g.value.revoked_at.is_some() {
                return Ok(());
            }
            let mut updated = g.value.clone();
            updated.revoked_at = Some(now);
            match self.store.replace_grant(&g, &updated) {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(DomainError::Internal(
            "grant revocation kept conflicting".into(),
        ))
    }

    fn new_refresh(
        &self,
        client: &Client,
        grant: &Grant,
        now: OffsetDateTime,
    ) -> Result<Option<(String, RefreshToken)>, DomainError> {
        if !client.allows_grant(GrantType::RefreshToken) {
            return Ok(None);
        }
        let token = opaque_token(self.rng)?;
        Ok(Some((
            token,
            RefreshToken {
                grant_id: grant.id.clone(),
                client_id: client.id.clone(),
                scopes: grant.scopes.clone(),
                expires_at: now + REFRESH_TTL,
                spent_at: None,
                grace_response: None,
            },
        )))
    }

    /// `grant_type=authorization_code`. A code is redeemed once; a replay revokes every
    /// token the first redemption issued.
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
        let Some(record): Option<AuthorizationCode> = self.store.take_code(&hash)? else {
            if let Some(used) = self.store.used_code(&hash)? {
                tracing::warn!(grant_id = %used.grant_id, "authorization code replayed: grant revoked");
                self.revoke_grant(&used.grant_id, now)?;
            }
            return Err(TokenError::InvalidGrant(
                "code is invalid, expired or already used",
            ));
        };
        // The code is spent from here on, whatever the outcome: a code presented by the
        // wrong client or with the wrong verifier must not stay usable.
        if record.client_id != client.id {
            tracing::warn!(code_client = %record.client_id, client = %client.id, "code presented by another client");
            return Err(TokenError::InvalidGrant(
                "code was not issued to this client",
            ));
        }
        if record.expires_at <= now {
            return Err(TokenError::InvalidGrant("code expired"));
        }
        if redirect_uri != Some(record.redirect_uri.as_str()) {
            return Err(TokenError::InvalidGrant(
                "redirect_uri does not match the authorization request",
            ));
        }
        let Some(verifier) = verifier else {
            return Err(TokenError::InvalidGrant("code_verifier is required"));
        };
        if !pkce_ok(verifier, &record.code_challenge) {
            return Err(TokenError::InvalidGrant(
                "code_verifier does not match the code_challenge",
            ));
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
        let refresh = self.new_refresh(client, &grant, now)?;
        let response = self.tokens_for_grant(
            client,
            &grant,
            record.nonce.as_deref(),
            refresh.as_ref().map(|r| r.0.clone()),
            now,
        )?;
        let used = UsedCode {
            grant_id: grant.id.clone(),
            expires_at: now + time::Duration::days(1),
        };
        let refresh_hash = refresh.as_ref().map(|(t, _)| sha256(t.as_bytes()));
        let refresh_rec = refresh_hash.as_ref().zip(refresh.as_ref().map(|(_, r)| r));
        self.store.redeem_code(&hash, &used, &grant, refresh_rec)?;
        Ok(response)
    }

    /// `grant_type=refresh_token`, rotating the token. A spent token presented again revokes
    /// the whole grant, unless it is a retry within the configured grace window, which gets
    /// the same answer as the first use.
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
        let invalid = TokenError::InvalidGrant("refresh token is invalid, expired or revoked");
        let current = self
            .store
            .refresh_token(&hash)?
            .ok_or(TokenError::InvalidGrant(
                "refresh token is invalid, expired or revoked",
            ))?;
        if current.value.client_id != client.id {
            return Err(invalid);
        }
        if let Some(spent_at) = current.value.spent_at {
            if now - spent_at <= self.refresh_grace
                && let Some(cached) = current
                    .value
                    .grace_response
                    .clone()
                    .and_then(|v| serde_json::from_value(v).ok())
            {
                return Ok(cached);
            }
            tracing::warn!(grant_id = %current.value.grant_id, "spent refresh token reused: grant revoked");
            self.revoke_grant(&current.value.grant_id, now)?;
            return Err(invalid);
        }
        if current.value.expires_at <= now {
            return Err(invalid);
        }
        let grant = self
            .store
            .grant(&current.value.grant_id)?
            .ok_or(TokenError::InvalidGrant("grant not found"))?
            .value;
        if grant.revoked_at.is_some() {
            return Err(invalid);
        }
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
        let narrowed = Grant {
            scopes,
            ..grant.clone()
        };
        let Some((new_token, mut new_record)) = self.new_refresh(client, &grant, now)? else {
            return Err(TokenError::UnauthorizedClient(
                "client may not use refresh_token",
            ));
        };
        new_record.scopes = grant.scopes.clone();
        new_record.expires_at = current.value.expires_at;
        let response =
            self.tokens_for_grant(client, &narrowed, None, Some(new_token.clone()), now)?;
        let mut spent = current.value.clone();
        spent.spent_at = Some(now);
        if !self.refresh_grace.is_zero() {
            spent.grace_response = serde_json::to_value(&response).ok();
        }
        match self.store.rotate_refresh(
            &hash,
            &current,
            &spent,
            &sha256(new_token.as_bytes()),
            &new_record,
        ) {
            Ok(()) => Ok(response),
            // A concurrent use won the race: this one is a reuse of a spent token.
            Err(StoreError::Conflict { .. }) => self.refresh(client, Some(token), scope, now),
            Err(e) => Err(e.into()),
        }
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
        crate::crypto::jwt::install_provider();
        let reject = |why: &str| InvalidToken::Rejected(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|e| reject(&e.to_string()))?;
        if header.alg != jsonwebtoken::Algorithm::ES256 {
            return Err(reject("algorithm is not ES256"));
        }
        if header
            .typ
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
            != Some("at+jwt")
        {
            return Err(reject("not an access token (typ)"));
        }
        let keys = self.keys.tokens();
        let key = header
            .kid
            .as_deref()
            .and_then(|k| keys.by_kid(k))
            .ok_or_else(|| reject("unknown kid"))?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_issuer(&[self.issuer]);
        v.set_audience(&[self.issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        v.leeway = 0;
        v.validate_exp = false;
        let dk = key.decoding_key().map_err(|e| reject(&e.to_string()))?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &dk, &v)
            .map_err(|e| reject(&e.to_string()))?
            .claims;
        if claims.exp <= now.unix_timestamp() {
            return Err(reject("expired"));
        }
        let revoked = match &claims.gid {
            Some(gid) => self
                .store
                .grant(gid)
                .map_err(DomainError::from)?
                .is_none_or(|g| g.value.revoked_at.is_some()),
            None => self
                .store
                .jti_revoked(&claims.jti)
                .map_err(DomainError::from)?,
        };
        if revoked {
            return Err(InvalidToken::Revoked);
        }
        Ok(claims)
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
        if let Some(r) = self.store.refresh_token(&sha256(token.as_bytes()))? {
            if r.value.client_id == client.id {
                self.revoke_grant(&r.value.grant_id, now)?;
            }
            return Ok(());
        }
        if let Ok(claims) = self.verify_access_token(token, now)
            && claims.client_id == client.id
        {
            {
                match &claims.gid {
                    Some(gid) => self.revoke_grant(gid, now)?,
                    None => self.store.revoke_jti(
                        &claims.jti,
                        &RevokedJti {
                            expires_at: OffsetDateTime::from_unix_timestamp(claims.exp)
                                .unwrap_or(now),
                        },
                    )?,
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
        if let Some(r) = self.store.refresh_token(&sha256(token.as_bytes()))? {
            let live = r.value.client_id == client.id
                && r.value.spent_at.is_none()
                && r.value.expires_at > now
                && self
                    .store
                    .grant(&r.value.grant_id)?
                    .is_some_and(|g| g.value.revoked_at.is_none());
            if !live {
                return Ok(inactive);
            }
            return Ok(serde_json::json!({
                "active": true, "token_type": "refresh_token", "client_id": client.id,
                "scope": r.value.scopes.join(" "), "exp": r.value.expires_at.unix_timestamp(),
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
            .grant(gid)?
            .ok_or(DomainError::NotFound("grant"))?
            .value;
        let citizen = self
            .store
            .citizen(&grant.citizen_id)?
            .ok_or(DomainError::NotFound("citizen"))?;
        let scopes = parse_scopes(&claims.scope);
        let mut m = identity_claims(&citizen, &scopes);
        m.insert("sub".into(), claims.sub.clone().into());
        Ok(serde_json::Value::Object(m))
    }
}
