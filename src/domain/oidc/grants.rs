//! The token endpoint's grants (RFC 6749 §4.1.3, §6, §4.4): code redemption in one
//! transaction with replay detection, refresh-token rotation with reuse detection and an
//! optional retry grace, and client credentials.

use time::OffsetDateTime;

use super::authorize::pkce_ok;
use super::dpop::DpopError;
use super::liveness;
use super::mint::{TokenResponse, With};
use super::model::{AuthorizationCode, Grant, RefreshToken, UsedCode};
use super::{Provider, REFRESH_TTL, TOKEN_TTL, opaque_token, parse_scopes, sha256};
use crate::domain::DomainError;
use crate::domain::audit::{Actor, Entry, Salt, event};
use crate::domain::citizens::Citizen;
use crate::domain::clients::{Client, GrantType};
use crate::domain::passkeys::SESSION_TTL;
use crate::store::oidc::{SessionClient, USED_CODE_TTL};
use crate::store::{StoreError, Tx};
use serde_json::json;

/// What a client is told about any refresh token that does not work.
const REFRESH_INVALID: &str = "refresh token is invalid, expired or revoked";
/// A code whose passkey, session or consent ended before it was redeemed.
const LOGIN_ENDED: &str = "the login or consent the code was issued for has ended";
/// A code presented by a client it was not issued to.
pub(super) const WRONG_CLIENT: &str = "code was not issued to this client";

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
    /// `invalid_dpop_proof` or `use_dpop_nonce` (RFC 9449 §5.1, §8).
    Dpop(DpopError),
    /// Our fault.
    Internal(DomainError),
}

impl From<DomainError> for TokenError {
    fn from(e: DomainError) -> Self {
        Self::Internal(e)
    }
}

impl From<DpopError> for TokenError {
    fn from(e: DpopError) -> Self {
        match e {
            DpopError::Internal(e) => Self::Internal(e),
            other => Self::Dpop(other),
        }
    }
}

impl From<StoreError> for TokenError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl Provider<'_> {
    /// Revokes a grant (every access and refresh token issued under it).
    ///
    /// # Errors
    /// Storage failures.
    pub fn revoke_grant(
        &self,
        grant_id: &str,
        actor: Actor<'_>,
        reason: &'static str,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        let why = GrantEnd {
            actor,
            reason,
            salt: Salt::new(self.rng)?,
        };
        Ok(self
            .store
            .transact(|tx| revoke_grant_in(tx, grant_id, &why, now))?)
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
        jkt: Option<&str>,
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
        let salt = Salt::new(self.rng)?;
        let redemption = self.store.transact(|tx| {
            redeem_in(
                tx,
                &hash,
                client,
                Presented {
                    redirect_uri,
                    verifier,
                    jkt,
                    refresh_jkt: refresh_binding(client, jkt),
                },
                refresh.as_deref(),
                &salt,
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
        Ok(self.tokens_for_grant(
            client,
            &grant,
            &citizen,
            With {
                nonce: nonce.as_deref(),
                refresh_token: refresh,
                jkt,
            },
            now,
        )?)
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
        jkt: Option<&str>,
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
        match (current.jkt.as_deref(), jkt) {
            (None, _) => {}
            (Some(bound), Some(proven)) if bound == proven => {}
            (Some(_), None) => {
                return Err(TokenError::Dpop(DpopError::Invalid(
                    "this refresh token is DPoP-bound: send a proof made with its key".into(),
                )));
            }
            (Some(_), Some(_)) => {
                return Err(TokenError::InvalidGrant(
                    "refresh token is bound to another DPoP key",
                ));
            }
        }
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
            .ok_or(TokenError::InvalidGrant(REFRESH_INVALID))?;
        if !liveness::grant_live(self.store, &grant)? {
            return Err(TokenError::InvalidGrant(REFRESH_INVALID));
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
        let citizen = self
            .store
            .citizens()
            .get(&grant.citizen_id)?
            .ok_or(TokenError::InvalidGrant(REFRESH_INVALID))?;
        // FAPI 2.0 (§5.3.2.1) asks for no rotation: the client keeps its refresh token,
        // which is bound to its private_key_jwt authentication, and gets none in the answer.
        let rotate = !client.security.fapi2;
        let new_token = if rotate {
            let Some(t) = self.new_refresh_value(client)? else {
                return Err(TokenError::UnauthorizedClient(
                    "client may not use refresh_token",
                ));
            };
            Some(t)
        } else {
            None
        };
        let narrowed = Grant {
            scopes,
            ..grant.clone()
        };
        let response = self.tokens_for_grant(
            client,
            &narrowed,
            &citizen,
            With {
                nonce: None,
                refresh_token: new_token.clone(),
                jkt,
            },
            now,
        )?;
        let successor = new_token.as_ref().map(|t| {
            let record = RefreshToken {
                grant_id: grant.id.clone(),
                client_id: client.id.clone(),
                scopes: grant.scopes.clone(),
                expires_at: current.expires_at,
                spent_at: None,
                grace_response: None,
                jkt: current.jkt.clone(),
            };
            (sha256(t.as_bytes()), record)
        });
        let grace = (!self.refresh_grace.is_zero()).then_some(&response);
        let entry = Entry::new(
            event::TOKENS_ISSUED,
            Actor::Client(&client.id),
            Some(&grant.citizen_id),
            tokens_issued(&narrowed, "refresh_token", rotate),
            now,
            self.rng,
        )?;
        let rotation = self.store.transact(|tx| {
            let rotation = rotate_in(tx, &hash, successor.as_ref(), &grant.id, grace, now)?;
            if matches!(rotation, Rotation::Rotated) {
                entry.append(tx)?;
            }
            Ok::<_, StoreError>(rotation)
        })?;
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
        self.revoke_grant(
            &spent.grant_id,
            Actor::Client(&spent.client_id),
            "refresh_token_reused",
            now,
        )?;
        Err(TokenError::InvalidGrant(REFRESH_INVALID))
    }

    /// `grant_type=client_credentials`: a token for the client itself (no citizen), limited
    /// to the client's registered scopes. Only its audit entry is written, before the token
    /// is signed.
    ///
    /// # Errors
    /// [`TokenError`].
    pub fn client_credentials(
        &self,
        client: &Client,
        scope: Option<&str>,
        jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, TokenError> {
        let (scopes, entry) = self.client_credentials_entry(client, scope, now)?;
        self.store.transact(|tx| entry.append(tx))?;
        self.client_credentials_token(client, &scopes, jkt, now)
    }

    /// The checks of `client_credentials` and the audit entry of the token it will issue
    /// (no storage: the caller appends the entry, durably, before asking for the token).
    ///
    /// # Errors
    /// [`TokenError`].
    pub fn client_credentials_entry(
        &self,
        client: &Client,
        scope: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<(Vec<String>, Entry), TokenError> {
        if client.is_public() || !client.allows_grant(GrantType::ClientCredentials) {
            return Err(TokenError::UnauthorizedClient(
                "client may not use client_credentials",
            ));
        }
        let scopes: Vec<String> = match scope {
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
        let entry = Entry::new(
            event::TOKENS_ISSUED,
            Actor::Client(&client.id),
            None,
            json!({
                "client_id": client.id,
                "grant_type": "client_credentials",
                "scopes": scopes,
                "claims": [],
            }),
            now,
            self.rng,
        )?;
        Ok((scopes, entry))
    }

    /// The `client_credentials` token itself, once its entry is durable.
    ///
    /// # Errors
    /// [`TokenError::Internal`] when signing fails.
    pub fn client_credentials_token(
        &self,
        client: &Client,
        scopes: &[String],
        jkt: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<TokenResponse, TokenError> {
        let access = self.access_token(client, client.id.clone(), scopes, None, jkt, now)?;
        Ok(TokenResponse {
            access_token: access,
            token_type: super::mint::token_type(jkt),
            expires_in: TOKEN_TTL.whole_seconds(),
            scope: scopes.join(" "),
            refresh_token: None,
            id_token: None,
        })
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
    presented: Presented<'_>,
    refresh: Option<&str>,
    salt: &Salt,
    now: OffsetDateTime,
) -> Result<Redemption, StoreError> {
    let Presented {
        redirect_uri,
        verifier,
        jkt,
        refresh_jkt,
    } = presented;
    let Some(record) = tx.authorizations().take_code(hash)? else {
        return match tx.authorizations().used_code(hash)? {
            Some(used) => {
                let why = GrantEnd {
                    actor: Actor::Client(&client.id),
                    reason: "authorization_code_replayed",
                    salt: salt.clone(),
                };
                revoke_grant_in(tx, &used.grant_id, &why, now)?;
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
    // RFC 9449 §10: a code bound to a DPoP key is redeemed only with a proof by that key.
    if record.dpop_jkt.is_some() && record.dpop_jkt.as_deref() != jkt {
        return Ok(Redemption::Refused(
            "code is bound to a DPoP key: redeem it with a proof made by that key",
        ));
    }
    if !liveness::code_live(&*tx, &record, now)? {
        return Ok(Redemption::Refused(LOGIN_ENDED));
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
        login: record.login.clone(),
        created_at: now,
        revoked_at: None,
    };
    // Refresh tokens keep their first expiry through rotation, so nothing of this grant
    // outlives the first refresh token (or the first access token, without one).
    let tokens_end = now
        + if refresh.is_some() {
            REFRESH_TTL
        } else {
            TOKEN_TTL
        };
    tx.grants().insert(&grant, tokens_end)?;
    if let (Some(login), Some(_)) = (&grant.login, &client.security.backchannel_logout_uri)
        && grant.scopes.iter().any(|s| s == "openid")
    {
        // The ID token about to be issued joins this client to the session: its end is
        // announced to the client (OpenID Connect Back-Channel Logout 1.0).
        let rp = SessionClient {
            client_id: client.id.clone(),
            sid: grant.sid.clone(),
            citizen_id: grant.citizen_id.clone(),
        };
        tx.put_session_client(&login.credential_id, &login.session, &rp, now + SESSION_TTL);
    }
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
                jkt: refresh_jkt.map(str::to_owned),
            },
        );
    }
    Entry::salted(
        event::TOKENS_ISSUED,
        Actor::Client(&client.id),
        Some(&grant.citizen_id),
        &tokens_issued(&grant, "authorization_code", refresh.is_some()),
        now,
        salt,
    )
    .append(tx)?;
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
/// stores the `successor` (its hash and record), if `old` is still unspent and its grant
/// `grant_id` live. Without a successor (no rotation) `old` stays as it is: only checked.
fn rotate_in(
    tx: &mut Tx<'_>,
    old: &[u8; 32],
    successor: Option<&([u8; 32], RefreshToken)>,
    grant_id: &str,
    grace: Option<&TokenResponse>,
    now: OffsetDateTime,
) -> Result<Rotation, StoreError> {
    let Some(mut current) = tx.grants().refresh_token(old)? else {
        return Ok(Rotation::Invalid);
    };
    if current.spent_at.is_some() {
        return Ok(Rotation::AlreadySpent(current));
    }
    let live = match tx.grants().get(&current.grant_id)? {
        Some(grant) => liveness::grant_live(&*tx, &grant)?,
        None => false,
    };
    if !live || current.grant_id != grant_id {
        return Ok(Rotation::Invalid);
    }
    if let Some((new_hash, record)) = successor {
        current.spent_at = Some(now);
        current.grace_response = grace.cloned();
        tx.grants().put_refresh_token(old, &current);
        tx.grants().put_refresh_token(new_hash, record);
    }
    Ok(Rotation::Rotated)
}

/// Revokes a grant inside a transaction (absent or already revoked: nothing to do).
///
/// # Errors
/// Storage failures.
pub fn revoke_grant_in(
    tx: &mut Tx<'_>,
    grant_id: &str,
    why: &GrantEnd<'_>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    if let Some(mut grant) = tx.grants().get(grant_id)?
        && grant.revoked_at.is_none()
    {
        grant.revoked_at = Some(now);
        tx.grants().update(&grant);
        Entry::salted(
            event::GRANT_REVOKED,
            why.actor,
            Some(&grant.citizen_id),
            &json!({"client_id": grant.client_id, "grant_id": grant.id, "reason": why.reason}),
            now,
            &why.salt,
        )
        .append(tx)?;
    }
    Ok(())
}

/// Who ends a grant and why: its audit entry.
pub struct GrantEnd<'a> {
    /// Who.
    pub actor: Actor<'a>,
    /// Why, as a short machine-readable name.
    pub reason: &'static str,
    /// The entry's salt.
    pub salt: Salt,
}

/// What the client presented with a code.
struct Presented<'a> {
    redirect_uri: Option<&'a str>,
    verifier: Option<&'a str>,
    /// The key of the request's DPoP proof, if any.
    jkt: Option<&'a str>,
    /// The key the refresh token is bound to, if it is.
    refresh_jkt: Option<&'a str>,
}

/// The DPoP key a new refresh token is bound to: a public client's proof key (RFC 9449 §5);
/// a confidential client's refresh tokens are bound to its own authentication instead.
fn refresh_binding<'a>(client: &Client, jkt: Option<&'a str>) -> Option<&'a str> {
    jkt.filter(|_| client.is_public())
}

/// The details of a `tokens.issued` entry for a grant: the client, the grant, the scopes
/// and the names of the claims released (never a token or a claim's value).
fn tokens_issued(grant: &Grant, grant_type: &str, refresh: bool) -> serde_json::Value {
    json!({
        "client_id": grant.client_id,
        "grant_type": grant_type,
        "grant_id": grant.id,
        "scopes": grant.scopes,
        "claims": super::claims_released(&grant.scopes),
        "refresh_token": refresh,
    })
}
