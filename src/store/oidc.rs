//! OpenID Provider storage: pending authorization requests, codes and used-code markers
//! ([`Authorizations`]), grants, refresh tokens and revoked access-token ids ([`Grants`]),
//! and consents ([`Consents`]). The `…V1` structs are the frozen on-disk shapes; the
//! entities are the domain's ([`crate::domain::oidc::model`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{record_v1, record_v2};
use super::tx::Read;
use super::{Result, Store, StoreError, Tx};
use crate::crypto::digest::hex;
use crate::domain::oidc::CODE_TTL;
use crate::domain::oidc::model::{
    AuthorizationCode, Consent, Grant, LoginRef, PendingAuthorization, RefreshToken, RevokedJti,
    UsedCode,
};

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
/// Tree of spent DPoP proofs, by a hash of key thumbprint and `jti`, kept while the proof
/// could still be accepted.
pub const DPOP_PROOFS: &str = "dpop_proofs";
/// Tree of the relying parties that received an ID token in a session and registered a
/// back-channel logout URI, keyed `{credential id}/{session hash hex}/{client id}`, kept
/// while the session could live.
pub const SESSION_CLIENTS: &str = "session_clients";
/// Tree of pushed authorization requests (RFC 9126), by the hash of their `request_uri`.
pub const PUSHED_REQUESTS: &str = "pushed_requests";

/// How long a used-code marker is kept to recognise a replay.
pub const USED_CODE_TTL: time::Duration = time::Duration::days(1);

/// On disk: a validated authorization request waiting for login or consent.
#[derive(Serialize, Deserialize)]
struct PendingAuthorizationV1 {
    /// Client.
    client_id: String,
    /// Exact registered redirect URI.
    redirect_uri: String,
    /// Granted-if-consented scopes.
    scopes: Vec<String>,
    /// Client state, echoed.
    state: Option<String>,
    /// OIDC nonce, put into the ID token.
    nonce: Option<String>,
    /// PKCE S256 challenge.
    code_challenge: String,
    /// `prompt=login`: a login newer than the request is required.
    prompt_login: bool,
    /// `prompt=consent`: ask again even if consent is stored.
    prompt_consent: bool,
    /// `prompt=none`: never show a page.
    prompt_none: bool,
    /// `max_age` in seconds.
    max_age: Option<i64>,
    /// Requested `acr_values`, in order of preference (empty: none requested).
    acr_values: Vec<String>,
    /// When the request arrived.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// When it is abandoned.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// Version 2 of a pending request: version 1 plus the browser it is bound to.
#[derive(Serialize, Deserialize)]
struct PendingAuthorizationV2 {
    /// Version 1's fields.
    #[serde(flatten)]
    request: PendingAuthorizationV1,
    /// SHA-256 (hex) of the browser's binding secret.
    browser: String,
}

/// An issued authorization code (stored by its hash).
#[derive(Serialize, Deserialize)]
struct AuthorizationCodeV1 {
    /// Grant that redeeming it creates.
    grant_id: String,
    /// Client it was issued to.
    client_id: String,
    /// Redirect URI it was sent to.
    redirect_uri: String,
    /// PKCE S256 challenge.
    code_challenge: String,
    /// OIDC nonce.
    nonce: Option<String>,
    /// Granted scopes.
    scopes: Vec<String>,
    /// Citizen.
    citizen_id: String,
    /// Session id (`sid`) of the login.
    sid: String,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    auth_time: OffsetDateTime,
    /// Assurance level reached.
    acr: String,
    /// Authentication methods (RFC 8176).
    amr: Vec<String>,
    /// Codes live at most 60 s.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// The login a code or grant came from (frozen shape of [`LoginRef`]).
#[derive(Serialize, Deserialize)]
struct LoginRefV1 {
    /// Credential id of the passkey.
    credential_id: String,
    /// SHA-256 (hex) of the session token.
    session: String,
}

/// Version 2 of a code: version 1 plus the login it came from and its issue time.
#[derive(Serialize, Deserialize)]
struct AuthorizationCodeV2 {
    /// Grant that redeeming it creates.
    grant_id: String,
    /// Client it was issued to.
    client_id: String,
    /// Redirect URI it was sent to.
    redirect_uri: String,
    /// PKCE S256 challenge.
    code_challenge: String,
    /// OIDC nonce.
    nonce: Option<String>,
    /// Granted scopes.
    scopes: Vec<String>,
    /// Citizen.
    citizen_id: String,
    /// Session id (`sid`) as the client sees it.
    sid: String,
    /// The passkey and session of the login.
    login: LoginRefV1,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    auth_time: OffsetDateTime,
    /// Assurance level reached.
    acr: String,
    /// Authentication methods (RFC 8176).
    amr: Vec<String>,
    /// Issue time.
    #[serde(with = "time::serde::rfc3339")]
    issued_at: OffsetDateTime,
    /// Codes live at most 60 s.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// What a redeemed code leads to (kept a day to detect replays).
#[derive(Serialize, Deserialize)]
struct UsedCodeV1 {
    /// Grant created from the code.
    grant_id: String,
    /// When the record may be pruned.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// A grant: what one citizen allowed one client, from one code, across refreshes.
#[derive(Serialize, Deserialize)]
struct GrantV1 {
    /// Id (also the `gid` claim of access tokens).
    id: String,
    /// Client.
    client_id: String,
    /// Citizen.
    citizen_id: String,
    /// Scopes.
    scopes: Vec<String>,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    auth_time: OffsetDateTime,
    /// Assurance level.
    acr: String,
    /// Methods.
    amr: Vec<String>,
    /// Session id.
    sid: String,
    /// Creation.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Revocation: every token of the grant is dead from then on.
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
}

/// Version 2 of a grant: version 1 plus the login it came from.
#[derive(Serialize, Deserialize)]
struct GrantV2 {
    /// Id (also the `gid` claim of access tokens).
    id: String,
    /// Client.
    client_id: String,
    /// Citizen.
    citizen_id: String,
    /// Scopes.
    scopes: Vec<String>,
    /// Login time.
    #[serde(with = "time::serde::rfc3339")]
    auth_time: OffsetDateTime,
    /// Assurance level.
    acr: String,
    /// Methods.
    amr: Vec<String>,
    /// Session id as the client sees it.
    sid: String,
    /// The passkey and session of the login.
    login: LoginRefV1,
    /// Creation.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Revocation: every token of the grant is dead from then on.
    #[serde(with = "time::serde::rfc3339::option")]
    revoked_at: Option<OffsetDateTime>,
}

/// A refresh token (stored by its hash).
#[derive(Serialize, Deserialize)]
struct RefreshTokenV1 {
    /// Grant.
    grant_id: String,
    /// Client.
    client_id: String,
    /// Scopes it may refresh.
    scopes: Vec<String>,
    /// Absolute expiry.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    /// When it was exchanged; a spent token presented again revokes the grant.
    #[serde(with = "time::serde::rfc3339::option")]
    spent_at: Option<OffsetDateTime>,
    /// The token response it was exchanged for, kept only during the configured retry grace
    /// (default none) so that a retry gets the same answer.
    grace_response: Option<serde_json::Value>,
}

/// A citizen's consent for a client.
#[derive(Serialize, Deserialize)]
struct ConsentV1 {
    /// Scopes allowed.
    scopes: Vec<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    granted_at: OffsetDateTime,
}

/// Version 2 of a consent: version 1 plus when it was first given.
#[derive(Serialize, Deserialize)]
struct ConsentV2 {
    /// Scopes allowed.
    scopes: Vec<String>,
    /// When it was last given or extended.
    #[serde(with = "time::serde::rfc3339")]
    granted_at: OffsetDateTime,
    /// When it was first given.
    #[serde(with = "time::serde::rfc3339")]
    since: OffsetDateTime,
}

/// A revoked stand-alone access token.
#[derive(Serialize, Deserialize)]
struct RevokedJtiV1 {
    /// The token's own expiry: afterwards the record can go.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// `From` both ways between a frozen shape and a domain entity with the same fields.
macro_rules! same_fields {
    ($shape:ident, $entity:ident { $($f:ident),* $(,)? }) => {
        impl From<$shape> for $entity {
            fn from(s: $shape) -> Self {
                Self { $($f: s.$f),* }
            }
        }
        impl From<&$entity> for $shape {
            fn from(e: &$entity) -> Self {
                Self { $($f: e.$f.clone()),* }
            }
        }
    };
}

/// Version 1 without the `browser` (which neither version 1 nor a request before parking
/// has).
fn pending_v1(p: &PendingAuthorization) -> PendingAuthorizationV1 {
    PendingAuthorizationV1 {
        client_id: p.client_id.clone(),
        redirect_uri: p.redirect_uri.clone(),
        scopes: p.scopes.clone(),
        state: p.state.clone(),
        nonce: p.nonce.clone(),
        code_challenge: p.code_challenge.clone(),
        prompt_login: p.prompt_login,
        prompt_consent: p.prompt_consent,
        prompt_none: p.prompt_none,
        max_age: p.max_age,
        acr_values: p.acr_values.clone(),
        created_at: p.created_at,
        expires_at: p.expires_at,
    }
}

impl From<PendingAuthorizationV1> for PendingAuthorization {
    fn from(p: PendingAuthorizationV1) -> Self {
        Self {
            client_id: p.client_id,
            redirect_uri: p.redirect_uri,
            scopes: p.scopes,
            state: p.state,
            nonce: p.nonce,
            code_challenge: p.code_challenge,
            prompt_login: p.prompt_login,
            prompt_consent: p.prompt_consent,
            prompt_none: p.prompt_none,
            max_age: p.max_age,
            acr_values: p.acr_values,
            created_at: p.created_at,
            expires_at: p.expires_at,
            browser: None,
            dpop_jkt: None,
        }
    }
}

impl From<PendingAuthorizationV2> for PendingAuthorization {
    fn from(p: PendingAuthorizationV2) -> Self {
        Self {
            browser: Some(p.browser),
            ..p.request.into()
        }
    }
}

impl From<&PendingAuthorization> for StoredPending {
    /// Bound requests are written as version 2, an unbound one as version 1.
    fn from(p: &PendingAuthorization) -> Self {
        match (&p.browser, &p.dpop_jkt) {
            (_, Some(jkt)) => Self::V3 {
                request: pending_v1(p),
                browser: p.browser.clone(),
                dpop_jkt: jkt.clone(),
            },
            (Some(browser), None) => Self::V2(PendingAuthorizationV2 {
                request: pending_v1(p),
                browser: browser.clone(),
            }),
            (None, None) => Self::V1(pending_v1(p)),
        }
    }
}
impl From<LoginRefV1> for LoginRef {
    fn from(l: LoginRefV1) -> Self {
        Self {
            credential_id: l.credential_id,
            session: l.session,
        }
    }
}

impl From<&LoginRef> for LoginRefV1 {
    fn from(l: &LoginRef) -> Self {
        Self {
            credential_id: l.credential_id.clone(),
            session: l.session.clone(),
        }
    }
}

/// A version-1 code knows neither its login nor its issue time (which is its expiry less
/// the code lifetime).
impl From<AuthorizationCodeV1> for AuthorizationCode {
    fn from(c: AuthorizationCodeV1) -> Self {
        Self {
            grant_id: c.grant_id,
            client_id: c.client_id,
            redirect_uri: c.redirect_uri,
            code_challenge: c.code_challenge,
            nonce: c.nonce,
            scopes: c.scopes,
            citizen_id: c.citizen_id,
            sid: c.sid,
            login: None,
            auth_time: c.auth_time,
            acr: c.acr,
            amr: c.amr,
            issued_at: c.expires_at - CODE_TTL,
            expires_at: c.expires_at,
            dpop_jkt: None,
        }
    }
}

impl From<AuthorizationCodeV2> for AuthorizationCode {
    fn from(c: AuthorizationCodeV2) -> Self {
        Self {
            grant_id: c.grant_id,
            client_id: c.client_id,
            redirect_uri: c.redirect_uri,
            code_challenge: c.code_challenge,
            nonce: c.nonce,
            scopes: c.scopes,
            citizen_id: c.citizen_id,
            sid: c.sid,
            login: Some(c.login.into()),
            auth_time: c.auth_time,
            acr: c.acr,
            amr: c.amr,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
            dpop_jkt: None,
        }
    }
}

impl From<&AuthorizationCode> for StoredCode {
    /// Codes with their login are written as version 2 (every code issued now); one
    /// without is written as version 1, so that nothing is invented.
    fn from(c: &AuthorizationCode) -> Self {
        // A code bound to a DPoP key always has its login (every code issued now does).
        match &c.login {
            Some(login) => {
                let code = AuthorizationCodeV2 {
                    grant_id: c.grant_id.clone(),
                    client_id: c.client_id.clone(),
                    redirect_uri: c.redirect_uri.clone(),
                    code_challenge: c.code_challenge.clone(),
                    nonce: c.nonce.clone(),
                    scopes: c.scopes.clone(),
                    citizen_id: c.citizen_id.clone(),
                    sid: c.sid.clone(),
                    login: login.into(),
                    auth_time: c.auth_time,
                    acr: c.acr.clone(),
                    amr: c.amr.clone(),
                    issued_at: c.issued_at,
                    expires_at: c.expires_at,
                };
                match &c.dpop_jkt {
                    Some(jkt) => Self::V3 {
                        code,
                        dpop_jkt: jkt.clone(),
                    },
                    None => Self::V2(code),
                }
            }
            None => Self::V1(AuthorizationCodeV1 {
                grant_id: c.grant_id.clone(),
                client_id: c.client_id.clone(),
                redirect_uri: c.redirect_uri.clone(),
                code_challenge: c.code_challenge.clone(),
                nonce: c.nonce.clone(),
                scopes: c.scopes.clone(),
                citizen_id: c.citizen_id.clone(),
                sid: c.sid.clone(),
                auth_time: c.auth_time,
                acr: c.acr.clone(),
                amr: c.amr.clone(),
                expires_at: c.expires_at,
            }),
        }
    }
}

same_fields!(
    UsedCodeV1,
    UsedCode {
        grant_id,
        expires_at
    }
);

/// A version-1 grant does not know its login: it is not tied to a passkey.
impl From<GrantV1> for Grant {
    fn from(g: GrantV1) -> Self {
        Self {
            id: g.id,
            client_id: g.client_id,
            citizen_id: g.citizen_id,
            scopes: g.scopes,
            auth_time: g.auth_time,
            acr: g.acr,
            amr: g.amr,
            sid: g.sid,
            login: None,
            created_at: g.created_at,
            revoked_at: g.revoked_at,
        }
    }
}

impl From<GrantV2> for Grant {
    fn from(g: GrantV2) -> Self {
        Self {
            id: g.id,
            client_id: g.client_id,
            citizen_id: g.citizen_id,
            scopes: g.scopes,
            auth_time: g.auth_time,
            acr: g.acr,
            amr: g.amr,
            sid: g.sid,
            login: Some(g.login.into()),
            created_at: g.created_at,
            revoked_at: g.revoked_at,
        }
    }
}

impl From<&Grant> for StoredGrant {
    /// Grants with their login are written as version 2; one read from version 1 (no
    /// login) is written back as version 1, so that nothing is invented.
    fn from(g: &Grant) -> Self {
        match &g.login {
            Some(login) => Self::V2(GrantV2 {
                id: g.id.clone(),
                client_id: g.client_id.clone(),
                citizen_id: g.citizen_id.clone(),
                scopes: g.scopes.clone(),
                auth_time: g.auth_time,
                acr: g.acr.clone(),
                amr: g.amr.clone(),
                sid: g.sid.clone(),
                login: login.into(),
                created_at: g.created_at,
                revoked_at: g.revoked_at,
            }),
            None => Self::V1(GrantV1 {
                id: g.id.clone(),
                client_id: g.client_id.clone(),
                citizen_id: g.citizen_id.clone(),
                scopes: g.scopes.clone(),
                auth_time: g.auth_time,
                acr: g.acr.clone(),
                amr: g.amr.clone(),
                sid: g.sid.clone(),
                created_at: g.created_at,
                revoked_at: g.revoked_at,
            }),
        }
    }
}

/// A version-1 consent's first-given time is unknown: the epoch, so that every grant made
/// under it stays valid.
impl From<ConsentV1> for Consent {
    fn from(c: ConsentV1) -> Self {
        Self {
            scopes: c.scopes,
            granted_at: c.granted_at,
            since: OffsetDateTime::UNIX_EPOCH,
        }
    }
}
same_fields!(
    ConsentV2,
    Consent {
        scopes,
        granted_at,
        since
    }
);
same_fields!(RevokedJtiV1, RevokedJti { expires_at });

impl From<&RefreshToken> for RefreshTokenV1 {
    fn from(r: &RefreshToken) -> Self {
        Self {
            grant_id: r.grant_id.clone(),
            client_id: r.client_id.clone(),
            scopes: r.scopes.clone(),
            expires_at: r.expires_at,
            spent_at: r.spent_at,
            grace_response: r
                .grace_response
                .as_ref()
                .and_then(|t| serde_json::to_value(t).ok()),
        }
    }
}

impl RefreshTokenV1 {
    fn into_domain(self, key: &[u8]) -> Result<RefreshToken> {
        let grace_response = match self.grace_response {
            None => None,
            Some(v) => Some(serde_json::from_value(v).map_err(|e| StoreError::Corrupt {
                tree: REFRESH_TOKENS,
                key: super::record::printable_key(key),
                reason: format!("grace response: {e}"),
            })?),
        };
        Ok(RefreshToken {
            grant_id: self.grant_id,
            client_id: self.client_id,
            scopes: self.scopes,
            expires_at: self.expires_at,
            spent_at: self.spent_at,
            grace_response,
            jkt: None,
        })
    }
}

/// A pending request: v1 unbound, v2 bound to a browser, v3 also bound to a DPoP key
/// (RFC 9449 §10), which a build before v3 refuses rather than lose the binding.
#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredPending {
    #[serde(rename = "1")]
    V1(PendingAuthorizationV1),
    #[serde(rename = "2")]
    V2(PendingAuthorizationV2),
    #[serde(rename = "3")]
    V3 {
        #[serde(flatten)]
        request: PendingAuthorizationV1,
        browser: Option<String>,
        /// Thumbprint of the DPoP key the code will be bound to.
        dpop_jkt: String,
    },
}

impl super::record::Record for StoredPending {
    const TREE: &'static str = AUTHZ_REQUESTS;
    const VERSIONS: &'static [&'static str] = &["1", "2", "3"];
}

impl StoredPending {
    fn into_domain(self) -> PendingAuthorization {
        match self {
            Self::V1(p) => p.into(),
            Self::V2(p) => p.into(),
            Self::V3 {
                request,
                browser,
                dpop_jkt,
            } => PendingAuthorization {
                browser,
                dpop_jkt: Some(dpop_jkt),
                ..request.into()
            },
        }
    }
}

/// A pushed request (RFC 9126): the request and the DPoP key its code is bound to, if any.
#[derive(Serialize, Deserialize)]
struct PushedV1 {
    #[serde(flatten)]
    request: PendingAuthorizationV1,
    dpop_jkt: Option<String>,
}
/// A code: v1 without its login, v2 with it, v3 also bound to a DPoP key (RFC 9449 §10),
/// which a build before v3 refuses rather than redeem without the key.
#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredCode {
    #[serde(rename = "1")]
    V1(AuthorizationCodeV1),
    #[serde(rename = "2")]
    V2(AuthorizationCodeV2),
    #[serde(rename = "3")]
    V3 {
        #[serde(flatten)]
        code: AuthorizationCodeV2,
        dpop_jkt: String,
    },
}

impl super::record::Record for StoredCode {
    const TREE: &'static str = CODES;
    const VERSIONS: &'static [&'static str] = &["1", "2", "3"];
}

impl StoredCode {
    fn into_domain(self) -> AuthorizationCode {
        match self {
            Self::V1(c) => c.into(),
            Self::V2(c) => c.into(),
            Self::V3 { code, dpop_jkt } => AuthorizationCode {
                dpop_jkt: Some(dpop_jkt),
                ..code.into()
            },
        }
    }
}
record_v1!(StoredUsedCode, USED_CODES, UsedCodeV1);
record_v2!(StoredGrant, GRANTS, GrantV1, GrantV2);
/// A refresh token is v2 only when it is bound to a DPoP key (a public client's), so that a
/// build from before v2 refuses it rather than accept it without its key.
#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredRefresh {
    #[serde(rename = "1")]
    V1(RefreshTokenV1),
    #[serde(rename = "2")]
    V2 {
        #[serde(flatten)]
        token: RefreshTokenV1,
        /// Thumbprint of the DPoP key every use must prove.
        jkt: String,
    },
}

impl super::record::Record for StoredRefresh {
    const TREE: &'static str = REFRESH_TOKENS;
    const VERSIONS: &'static [&'static str] = &["1", "2"];
}

impl From<&RefreshToken> for StoredRefresh {
    fn from(r: &RefreshToken) -> Self {
        match &r.jkt {
            None => Self::V1(r.into()),
            Some(jkt) => Self::V2 {
                token: r.into(),
                jkt: jkt.clone(),
            },
        }
    }
}

impl StoredRefresh {
    fn into_domain(self, key: &[u8]) -> Result<RefreshToken> {
        match self {
            Self::V1(r) => r.into_domain(key),
            Self::V2 { token, jkt } => Ok(RefreshToken {
                jkt: Some(jkt),
                ..token.into_domain(key)?
            }),
        }
    }
}
record_v2!(StoredConsent, CONSENTS, ConsentV1, ConsentV2);
record_v1!(StoredRevokedJti, REVOKED_JTIS, RevokedJtiV1);
record_v1!(StoredDpopProof, DPOP_PROOFS, RevokedJtiV1);
record_v1!(StoredSessionClient, SESSION_CLIENTS, SessionClientV1);

/// On disk: a relying party to tell when a session ends.
#[derive(Serialize, Deserialize)]
struct SessionClientV1 {
    client_id: String,
    /// The session id as that client knows it.
    sid: String,
    citizen_id: String,
}

/// A relying party that received an ID token in a session (for back-channel logout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClient {
    /// The client.
    pub client_id: String,
    /// `sid` as that client knows it.
    pub sid: String,
    /// The citizen (the client's `sub` is derived from it).
    pub citizen_id: String,
}

fn session_clients_prefix(credential_id: &str, session: Option<&str>) -> Vec<u8> {
    match session {
        Some(s) => format!("{credential_id}/{s}/"),
        None => format!("{credential_id}/"),
    }
    .into_bytes()
}

impl Store {
    /// The relying parties to tell when session `session` (hash, hex) of passkey
    /// `credential_id` ends, or every session of that passkey with `None`, with their keys.
    ///
    /// # Errors
    /// Backend and decoding errors.
    pub fn session_clients(
        &self,
        credential_id: &str,
        session: Option<&str>,
    ) -> Result<Vec<(Vec<u8>, SessionClient)>> {
        let prefix = session_clients_prefix(credential_id, session);
        // A session has a handful of relying parties; a passkey's sessions over 8 hours a
        // few more. The cap keeps one logout's work bounded.
        let rows = self.backend()?.scan(SESSION_CLIENTS, &prefix, b"", 1024)?;
        rows.into_iter()
            .map(|(key, bytes)| {
                let StoredSessionClient::V1(r) = super::record::decode(&key, &bytes)?;
                Ok((
                    key,
                    SessionClient {
                        client_id: r.client_id,
                        sid: r.sid,
                        citizen_id: r.citizen_id,
                    },
                ))
            })
            .collect()
    }
}

impl Tx<'_> {
    /// Records that `rp` received an ID token in session `session` (hash, hex) of passkey
    /// `credential_id`, until `expires_at`.
    pub fn put_session_client(
        &mut self,
        credential_id: &str,
        session: &str,
        rp: &SessionClient,
        expires_at: OffsetDateTime,
    ) {
        let mut key = session_clients_prefix(credential_id, Some(session));
        key.extend_from_slice(rp.client_id.as_bytes());
        let record = StoredSessionClient::V1(SessionClientV1 {
            client_id: rp.client_id.clone(),
            sid: rp.sid.clone(),
            citizen_id: rp.citizen_id.clone(),
        });
        self.put_expiring(&key, &record, expires_at);
    }
}
// A pushed request is a pending one that no browser holds yet.
record_v1!(StoredPushed, PUSHED_REQUESTS, PushedV1);

fn consent_key(citizen_id: &str, client_id: &str) -> Vec<u8> {
    format!("{citizen_id}/{client_id}").into_bytes()
}

/// Handles named after the aggregates, over the committed store (`&Store`) or a
/// transaction (`&mut Tx`).
macro_rules! handle {
    ($name:ident, $doc:literal, $method:ident) => {
        #[doc = $doc]
        pub struct $name<S>(pub(super) S);

        impl Store {
            #[doc = $doc]
            pub fn $method(&self) -> $name<&Self> {
                $name(self)
            }
        }

        impl<'a> Tx<'a> {
            #[doc = $doc]
            pub fn $method(&mut self) -> $name<&mut Tx<'a>> {
                $name(self)
            }
        }
    };
}

handle!(
    Authorizations,
    "Pending authorization requests, authorization codes and used-code markers.",
    authorizations
);
handle!(
    Grants,
    "Grants, their refresh tokens, and revoked stand-alone access tokens.",
    grants
);
handle!(Consents, "Citizens' consents to clients.", consents);

impl<S: Read> Authorizations<S> {
    /// A pending authorization request.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn pending(&self, id: &str) -> Result<Option<PendingAuthorization>> {
        Ok(self
            .0
            .get::<StoredPending>(id.as_bytes())?
            .map(StoredPending::into_domain))
    }

    /// The marker of a redeemed code, if it was redeemed (within [`USED_CODE_TTL`]).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn used_code(&self, hash: &[u8; 32]) -> Result<Option<UsedCode>> {
        Ok(self
            .0
            .get::<StoredUsedCode>(hex(hash).as_bytes())?
            .map(|StoredUsedCode::V1(u)| u.into()))
    }
}

impl Authorizations<&mut Tx<'_>> {
    /// Stores a pending authorization request, filed for expiry.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the id is taken.
    pub fn insert_pending(&mut self, id: &str, p: &PendingAuthorization) -> Result<()> {
        self.0
            .insert_new_expiring(id.as_bytes(), &StoredPending::from(p), p.expires_at)
    }

    /// Removes a pending authorization request, returning it if it was there (single use).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn take_pending(&mut self, id: &str) -> Result<Option<PendingAuthorization>> {
        Ok(self
            .0
            .take::<StoredPending>(id.as_bytes())?
            .map(StoredPending::into_domain))
    }

    /// Stores a pushed authorization request by the hash of its `request_uri`, filed for
    /// expiry.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the hash exists.
    pub fn insert_pushed(&mut self, hash: &[u8; 32], p: &PendingAuthorization) -> Result<()> {
        self.0.insert_new_expiring(
            hex(hash).as_bytes(),
            &StoredPushed::V1(PushedV1 {
                request: pending_v1(p),
                dpop_jkt: p.dpop_jkt.clone(),
            }),
            p.expires_at,
        )
    }

    /// Removes a pushed request and returns it (a `request_uri` is used once).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn take_pushed(&mut self, hash: &[u8; 32]) -> Result<Option<PendingAuthorization>> {
        Ok(self
            .0
            .take::<StoredPushed>(hex(hash).as_bytes())?
            .map(|StoredPushed::V1(p)| PendingAuthorization {
                dpop_jkt: p.dpop_jkt,
                ..p.request.into()
            }))
    }

    /// Stores a new authorization code by hash, filed for expiry.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the hash exists.
    pub fn insert_code(&mut self, hash: &[u8; 32], code: &AuthorizationCode) -> Result<()> {
        self.0.insert_new_expiring(
            hex(hash).as_bytes(),
            &StoredCode::from(code),
            code.expires_at,
        )
    }

    /// Removes a code and returns it: of concurrent redemptions exactly one gets it.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn take_code(&mut self, hash: &[u8; 32]) -> Result<Option<AuthorizationCode>> {
        Ok(self
            .0
            .take::<StoredCode>(hex(hash).as_bytes())?
            .map(StoredCode::into_domain))
    }

    /// Records that a code was redeemed, filed for expiry.
    pub fn mark_used(&mut self, hash: &[u8; 32], used: &UsedCode) {
        self.0.put_expiring(
            hex(hash).as_bytes(),
            &StoredUsedCode::V1(used.into()),
            used.expires_at,
        );
    }
}

impl<S: Read> Grants<S> {
    /// A grant by id.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, id: &str) -> Result<Option<Grant>> {
        Ok(self
            .0
            .get::<StoredGrant>(id.as_bytes())?
            .map(StoredGrant::into_domain))
    }

    /// A refresh token by hash.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn refresh_token(&self, hash: &[u8; 32]) -> Result<Option<RefreshToken>> {
        let key = hex(hash);
        self.0
            .get::<StoredRefresh>(key.as_bytes())?
            .map(|r| r.into_domain(key.as_bytes()))
            .transpose()
    }

    /// Whether a stand-alone access token was revoked.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn jti_revoked(&self, jti: &str) -> Result<bool> {
        Ok(self.0.get::<StoredRevokedJti>(jti.as_bytes())?.is_some())
    }
}

impl Grants<&mut Tx<'_>> {
    /// Stores a new grant, filed for expiry once no token of it can be valid any more
    /// (`tokens_end`); a grant that is gone counts as revoked.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the id exists.
    pub fn insert(&mut self, grant: &Grant, tokens_end: OffsetDateTime) -> Result<()> {
        self.0
            .insert_new_expiring(grant.id.as_bytes(), &StoredGrant::from(grant), tokens_end)
    }

    /// Replaces a grant (revocation).
    pub fn update(&mut self, grant: &Grant) {
        self.0.put(grant.id.as_bytes(), &StoredGrant::from(grant));
    }

    /// Stores or replaces a refresh token, filed for expiry.
    pub fn put_refresh_token(&mut self, hash: &[u8; 32], r: &RefreshToken) {
        self.0
            .put_expiring(hex(hash).as_bytes(), &StoredRefresh::from(r), r.expires_at);
    }

    /// Marks a stand-alone access token revoked until its own expiry.
    pub fn revoke_jti(&mut self, jti: &str, r: &RevokedJti) {
        self.0.put_expiring(
            jti.as_bytes(),
            &StoredRevokedJti::V1(r.into()),
            r.expires_at,
        );
    }

    /// Spends a DPoP proof (key thumbprint and `jti`, hashed), kept until `keep_until`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming [`DPOP_PROOFS`] when it was spent before (a replay).
    pub fn spend_dpop_proof(&mut self, key: &[u8; 32], keep_until: OffsetDateTime) -> Result<()> {
        let record = RevokedJti {
            expires_at: keep_until,
        };
        self.0.insert_new_expiring(
            hex(key).as_bytes(),
            &StoredDpopProof::V1((&record).into()),
            keep_until,
        )
    }
}

impl<S: Read> Consents<S> {
    /// A citizen's consent for a client.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, citizen_id: &str, client_id: &str) -> Result<Option<Consent>> {
        Ok(self
            .0
            .get::<StoredConsent>(&consent_key(citizen_id, client_id))?
            .map(StoredConsent::into_domain))
    }
}

impl Consents<&mut Tx<'_>> {
    /// Stores (replaces) a consent.
    pub fn put(&mut self, citizen_id: &str, client_id: &str, c: &Consent) {
        self.0.put(
            &consent_key(citizen_id, client_id),
            &StoredConsent::V2(c.into()),
        );
    }

    /// Withdraws a consent.
    pub fn delete(&mut self, citizen_id: &str, client_id: &str) {
        self.0.delete(CONSENTS, &consent_key(citizen_id, client_id));
    }
}

/// [`super::record::round_trip`] for the record stored in `tree`, if it is one of this
/// module's.
pub(super) fn round_trip(tree: &str, bytes: &[u8]) -> Option<std::result::Result<(), String>> {
    use super::record::round_trip as check;
    Some(match tree {
        AUTHZ_REQUESTS => check::<StoredPending>(bytes),
        CODES => check::<StoredCode>(bytes),
        REFRESH_TOKENS => check::<StoredRefresh>(bytes),
        USED_CODES => check::<StoredUsedCode>(bytes),
        GRANTS => check::<StoredGrant>(bytes),
        CONSENTS => check::<StoredConsent>(bytes),
        REVOKED_JTIS => check::<StoredRevokedJti>(bytes),
        DPOP_PROOFS => check::<StoredDpopProof>(bytes),
        SESSION_CLIENTS => check::<StoredSessionClient>(bytes),
        PUSHED_REQUESTS => check::<StoredPushed>(bytes),
        _ => return None,
    })
}
