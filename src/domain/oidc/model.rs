//! The OpenID Provider's entities: pending authorization requests, codes, grants, refresh
//! tokens, consents and revoked access-token ids. The store keeps frozen on-disk shapes of
//! these (`store/oidc.rs`) and converts; changing a field here never changes what "v1"
//! means on disk.

use time::OffsetDateTime;

use super::mint::TokenResponse;

/// A validated authorization request waiting for login or consent.
#[derive(Debug, Clone, PartialEq)]
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
    pub created_at: OffsetDateTime,
    /// When it is abandoned.
    pub expires_at: OffsetDateTime,
    /// SHA-256 (hex) of the secret in the cookie of the browser that sent the request: only
    /// that browser may continue it after login. `None` before it is parked, and for
    /// requests parked before browsers were bound.
    pub browser: Option<String>,
    /// The DPoP key the code will be bound to (RFC 9449 §10: `dpop_jkt`, or the proof sent
    /// with the pushed request).
    pub dpop_jkt: Option<String>,
}

/// An issued authorization code (stored by its hash).
#[derive(Debug, Clone, PartialEq)]
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
    /// Session id (`sid`) of the login as this client sees it (derived per client).
    pub sid: String,
    /// The login: which passkey and which session produced the code. `None` only for
    /// codes written before this was recorded.
    pub login: Option<LoginRef>,
    /// Login time.
    pub auth_time: OffsetDateTime,
    /// Assurance level reached.
    pub acr: String,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    /// When it was issued: a consent withdrawn after that makes it worthless.
    pub issued_at: OffsetDateTime,
    /// Codes live at most 60 s.
    pub expires_at: OffsetDateTime,
    /// The DPoP key that must redeem it, if it is bound.
    pub dpop_jkt: Option<String>,
}

/// The login a code or grant came from, so that ending it ends what it produced: revoking
/// the passkey kills every code and grant of it, and a code needs its session still live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRef {
    /// Credential id (base64url) of the passkey.
    pub credential_id: String,
    /// SHA-256 (hex) of the session token (the sessions tree's key; not the token).
    pub session: String,
}

/// What a redeemed code leads to (kept a day to detect replays).
#[derive(Debug, Clone, PartialEq)]
pub struct UsedCode {
    /// Grant created from the code.
    pub grant_id: String,
    /// When the record may be pruned.
    pub expires_at: OffsetDateTime,
}

/// A grant: what one citizen allowed one client, from one code, across refreshes.
#[derive(Debug, Clone, PartialEq)]
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
    pub auth_time: OffsetDateTime,
    /// Assurance level.
    pub acr: String,
    /// Methods.
    pub amr: Vec<String>,
    /// Session id as this client sees it.
    pub sid: String,
    /// The login it came from (`None` for grants written before this was recorded).
    pub login: Option<LoginRef>,
    /// Creation.
    pub created_at: OffsetDateTime,
    /// Revocation: every token of the grant is dead from then on.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A refresh token (stored by its hash).
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    /// Grant.
    pub grant_id: String,
    /// Client.
    pub client_id: String,
    /// Scopes it may refresh.
    pub scopes: Vec<String>,
    /// Absolute expiry.
    pub expires_at: OffsetDateTime,
    /// When it was exchanged; a spent token presented again revokes the grant.
    pub spent_at: Option<OffsetDateTime>,
    /// The token response it was exchanged for, kept only during the configured retry grace
    /// (default none) so that a retry gets the same answer.
    pub grace_response: Option<TokenResponse>,
    /// The DPoP key every use must prove (a public client's token, RFC 9449 §5).
    pub jkt: Option<String>,
}

/// A citizen's consent for a client.
#[derive(Debug, Clone, PartialEq)]
pub struct Consent {
    /// Scopes allowed.
    pub scopes: Vec<String>,
    /// When it was last given or extended.
    pub granted_at: OffsetDateTime,
    /// When it was first given (unchanged when scopes are added). Grants and codes older
    /// than this came from an earlier consent, since withdrawn: they are dead.
    pub since: OffsetDateTime,
}

/// A revoked stand-alone access token.
#[derive(Debug, Clone, PartialEq)]
pub struct RevokedJti {
    /// The token's own expiry: afterwards the record can go.
    pub expires_at: OffsetDateTime,
}
