//! What resource servers and clients ask about tokens: verifying our access tokens,
//! userinfo, introspection (RFC 7662), revocation (RFC 7009), and logout hints.

use time::OffsetDateTime;

use crate::domain::audit::{Actor, Entry, event};
use serde_json::json;

use super::liveness;
use super::mint::AccessClaims;
use super::model::RevokedJti;
use super::{Provider, identity_claims, parse_scopes, session_id, sha256};
use crate::crypto::jwt::{self, Expect, Rejected, Typ};
use crate::domain::DomainError;
use crate::domain::clients::Client;
use crate::domain::passkeys::Session;
use crate::store::StoreError;

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

/// What logout reads from an `id_token_hint` (signature, issuer and type already checked).
#[derive(Debug, serde::Deserialize)]
pub struct LogoutHint {
    /// The client it was issued to.
    pub aud: String,
    /// The citizen as that client sees them.
    pub sub: String,
    /// The session as that client sees it.
    pub sid: Option<String>,
    /// When it was issued.
    pub iat: i64,
}

impl Provider<'_> {
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
            Some(gid) => match self.store.grants().get(gid).map_err(DomainError::from)? {
                Some(grant) => {
                    !liveness::grant_live(self.store, &grant).map_err(DomainError::from)?
                }
                None => true,
            },
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

    /// The claims of an `id_token_hint` that logout relies on, if the hint is an ID token we
    /// signed. An expired one still counts (OpenID Connect RP-Initiated Logout §2); an
    /// access token does not.
    pub fn id_token_hint(&self, hint: &str) -> Option<LogoutHint> {
        let keys = self.keys.tokens();
        let expect = Expect {
            typ: Typ::Not("at+jwt"),
            issuer: Some(self.issuer),
            audience: None,
            required: &["iss", "aud", "sub"],
        };
        jwt::verify(hint, |kid| keys.candidates(kid), &expect).ok()
    }

    /// Whether a verified logout hint was issued for the browser session `session` (its
    /// token's hash `session_hash`): the same citizen as the client sees them, the `sid`
    /// that session has for that client, and issued no earlier than the login. Only then
    /// may logout proceed without asking: any other civis ID token (another citizen's, an
    /// older session's, one a site collected) could otherwise log anyone out.
    pub fn hint_matches_session(
        &self,
        hint: &LogoutHint,
        client: &Client,
        session: &Session,
        session_hash: &[u8; 32],
    ) -> bool {
        hint.aud == client.id
            && hint.sub == self.sub_for(client, &session.citizen_id)
            && hint.sid.as_deref() == Some(session_id(self.keys, session_hash, &client.id).as_str())
            && hint.iat >= session.auth_time.unix_timestamp()
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
                self.revoke_grant(
                    &r.grant_id,
                    Actor::Client(&client.id),
                    "revoked_by_client",
                    now,
                )?;
            }
            return Ok(());
        }
        if let Ok(claims) = self.verify_access_token(token, now)
            && claims.client_id == client.id
        {
            {
                match &claims.gid {
                    Some(gid) => {
                        self.revoke_grant(
                            gid,
                            Actor::Client(&client.id),
                            "revoked_by_client",
                            now,
                        )?;
                    }
                    None => {
                        let revoked = RevokedJti {
                            expires_at: OffsetDateTime::from_unix_timestamp(claims.exp)
                                .unwrap_or(now),
                        };
                        let entry = Entry::new(
                            event::TOKEN_REVOKED,
                            Actor::Client(&client.id),
                            None,
                            json!({"client_id": client.id, "jti": claims.jti}),
                            now,
                            self.rng,
                        )?;
                        self.store.transact(|tx| {
                            tx.grants().revoke_jti(&claims.jti, &revoked);
                            entry.append(tx)?;
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
                && match self.store.grants().get(&r.grant_id)? {
                    Some(grant) => liveness::grant_live(self.store, &grant)?,
                    None => false,
                };
            if !live {
                return Ok(inactive);
            }
            let mut answer = serde_json::json!({
                "active": true, "token_type": "refresh_token", "client_id": client.id,
                "scope": r.scopes.join(" "), "exp": r.expires_at.unix_timestamp(),
                "iss": self.issuer,
            });
            if let Some(jkt) = r.jkt {
                answer["cnf"] = json!({ "jkt": jkt });
            }
            return Ok(answer);
        }
        match self.verify_access_token(token, now) {
            Ok(c) if c.client_id == client.id => {
                let token_type = super::mint::token_type(c.cnf.as_ref().map(|j| j.jkt.as_str()));
                let mut answer = serde_json::json!({
                    "active": true, "token_type": token_type, "client_id": c.client_id,
                    "scope": c.scope, "sub": c.sub, "aud": c.aud, "iss": c.iss, "exp": c.exp,
                    "iat": c.iat, "jti": c.jti,
                });
                // RFC 9449 §6.2: the resource server learns which key to expect.
                if let Some(cnf) = c.cnf {
                    answer["cnf"] = json!({ "jkt": cnf.jkt });
                }
                Ok(answer)
            }
            Ok(_) | Err(InvalidToken::Rejected(_) | InvalidToken::Revoked) => Ok(inactive),
            Err(InvalidToken::Internal(e)) => Err(e),
        }
    }

    /// Userinfo claims for a verified access token (needs the `openid` scope and a citizen).
    ///
    /// # Errors
    /// [`InvalidToken`] when the token is not a citizen's or its grant or citizen is gone
    /// (it refers to no one); storage failures.
    pub fn userinfo(&self, claims: &AccessClaims) -> Result<serde_json::Value, InvalidToken> {
        let gid = claims
            .gid
            .as_deref()
            .ok_or_else(|| InvalidToken::Rejected("not a citizen's token".into()))?;
        let grant = self
            .store
            .grants()
            .get(gid)
            .map_err(DomainError::from)?
            .ok_or(InvalidToken::Revoked)?;
        let citizen = self
            .store
            .citizens()
            .get(&grant.citizen_id)
            .map_err(DomainError::from)?
            .ok_or(InvalidToken::Revoked)?;
        let scopes = parse_scopes(&claims.scope);
        let mut m = identity_claims(&citizen, &scopes);
        m.insert("sub".into(), claims.sub.clone().into());
        Ok(serde_json::Value::Object(m))
    }
}
