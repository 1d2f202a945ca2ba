//! The agency-client registry (CONTRACT.md §2, "Client registration rules") and OAuth client
//! authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3,
//! RFC 7523 `private_key_jwt`, OpenID Connect Core §9).
//!
//! Secrets: a confidential client using `client_secret_basic` or `client_secret_post` gets a
//! 256-bit random secret, returned once by [`Clients::register`] and stored only as
//! `KeySet::keyed_hash("client-secret", secret)`; presented secrets are hashed the same way and
//! compared in constant time. `private_key_jwt` clients get no secret: they prove themselves
//! with a short-lived ES256 assertion whose `jti` is used once. Public clients (`none`) get
//! no secret and may not use `client_credentials`.
//!
//! Every authentication failure is the one [`ClientAuthError::Invalid`] (→ `invalid_client`);
//! its text is for the log only and never contains a presented secret or assertion.

use std::collections::{BTreeSet, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::{DomainError, FieldError, Result, Rng, random_bytes};
use crate::crypto::KeySet;
use crate::store::{Store, StoreError};

/// Scopes a client may be registered for (CONTRACT.md §4 and §5).
pub const KNOWN_SCOPES: &[&str] = &["openid", "profile", "email", "national_id", "sign", "seal"];
/// Scope set when the registration names none.
pub const DEFAULT_SCOPE: &str = "openid profile email";
/// `client_assertion_type` of RFC 7523 §2.2.
pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest accepted lifetime of a client assertion: its `exp` may be at most this far ahead.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::minutes(10);
/// Tolerated clock difference between a client and us for `exp`, `nbf` and `iat`.
pub const ASSERTION_CLOCK_SKEW: Duration = Duration::seconds(60);
/// Keyed-hash purpose under which client secrets are stored.
const SECRET_PURPOSE: &str = "client-secret";
/// Upper bounds that keep registrations and presented credentials reasonable.
const MAX_URIS: usize = 32;
const MAX_URI_LEN: usize = 2048;
const MAX_NAME_CHARS: usize = 100;
const MAX_JWKS_KEYS: usize = 16;
const MAX_ASSERTION_LEN: usize = 8 * 1024;
const MAX_JTI_LEN: usize = 256;
/// One successful assertion in this many prunes the client's expired `jti` records.
const PRUNE_ONE_IN: u8 = 16;

/// How a client authenticates at the token endpoint (`token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A signed ES256 JWT assertion (RFC 7523) verified with the client's registered JWKS.
    PrivateKeyJwt,
    /// Public client: only `client_id`, no credentials.
    None,
}

impl AuthMethod {
    /// Every method, in the order they are documented.
    pub const ALL: [Self; 4] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
        Self::None,
    ];

    /// The registration / discovery name, e.g. `client_secret_basic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// The method with that name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// True for the methods that use a client secret issued by us.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// How `sub` is computed for the client's users (OpenID Connect Core §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectType {
    /// The same `sub` for every client.
    Public,
    /// A `sub` per sector (the host of the client's redirect URIs).
    Pairwise,
}

impl SubjectType {
    /// `public` or `pairwise`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Pairwise => "pairwise",
        }
    }

    /// The subject type with that name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Public, Self::Pairwise]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// OAuth grant types a client may be registered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantType {
    /// `authorization_code` (with PKCE).
    AuthorizationCode,
    /// `refresh_token`.
    RefreshToken,
    /// `client_credentials` (the client acting for itself, e.g. e-seals).
    ClientCredentials,
}

impl GrantType {
    /// Every grant type.
    pub const ALL: [Self; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    /// The OAuth name, e.g. `authorization_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// The grant type with that name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

/// Keyed hash of a client secret. `Debug` never shows it; equality is constant-time.
#[derive(Clone)]
pub struct SecretHash(pub(crate) [u8; 32]);

impl std::fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHash(<redacted>)")
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretHash {}

/// A registered agency client (relying party).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Random URL-safe identifier (`client_id`).
    pub id: String,
    /// Human-readable name, shown on the consent page.
    pub name: String,
    /// Exact redirect URIs (compared as strings at `/authorize`).
    pub redirect_uris: Vec<String>,
    /// Exact URIs allowed as `post_logout_redirect_uri`.
    pub post_logout_redirect_uris: Vec<String>,
    /// The one way this client authenticates.
    pub auth_method: AuthMethod,
    /// Public JWKS (`{"keys": [...]}`, EC P-256 only) for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    /// Public or pairwise `sub`.
    pub subject_type: SubjectType,
    /// Host of the redirect URIs when pairwise (the sector identifier).
    pub sector: Option<String>,
    /// Grant types the client may use.
    pub grant_types: Vec<GrantType>,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// Keyed hash of the secret (`client_secret_basic` / `client_secret_post` only).
    pub(crate) secret_hash: Option<SecretHash>,
}

impl Client {
    /// True when `scope` is one the client is registered for.
    pub fn allows_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// True when the client is registered for grant type `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// A public client (`token_endpoint_auth_method: none`): cannot keep a secret.
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    /// The scopes as one space-separated string (registration answer, discovery).
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }
}

/// A registration as the admin sends it, before validation.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    /// Display name.
    pub name: String,
    /// Redirect URIs (may be empty only for a `client_credentials`-only client).
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs (default none).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Default `client_secret_basic`.
    pub token_endpoint_auth_method: Option<String>,
    /// Required for `private_key_jwt`, refused otherwise.
    pub jwks: Option<serde_json::Value>,
    /// Space-separated allowed scopes (default `openid profile email`).
    pub scope: Option<String>,
    /// `public` (default) or `pairwise`.
    pub subject_type: Option<String>,
    /// Default `["authorization_code", "refresh_token"]`.
    pub grant_types: Option<Vec<String>>,
}

/// Presented client credentials, raw from the token/introspection/revocation request.
/// Empty form values must already be mapped to `None` (RFC 6749 §3.2).
#[derive(Clone, Default)]
pub struct PresentedClient {
    /// Decoded HTTP Basic credentials (`client_id`, `client_secret`).
    pub basic: Option<(String, String)>,
    /// `client_id` form field.
    pub client_id: Option<String>,
    /// `client_secret` form field.
    pub client_secret: Option<String>,
    /// `client_assertion_type` form field.
    pub assertion_type: Option<String>,
    /// `client_assertion` form field.
    pub assertion: Option<String>,
}

impl std::fmt::Debug for PresentedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |present: bool| if present { "<redacted>" } else { "-" };
        f.debug_struct("PresentedClient")
            .field("basic_id", &self.basic.as_ref().map(|(id, _)| id))
            .field("basic_secret", &redact(self.basic.is_some()))
            .field("client_id", &self.client_id)
            .field("client_secret", &redact(self.client_secret.is_some()))
            .field("assertion_type", &self.assertion_type)
            .field("assertion", &redact(self.assertion.is_some()))
            .finish()
    }
}

/// Client authentication failed. There is one variant on purpose: unknown client, wrong
/// secret, wrong method and bad assertion all answer the same `invalid_client`; the text says
/// why, for the log only.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// → OAuth `invalid_client` (401). Holds the reason (never a secret).
    #[error("client authentication failed: {0}")]
    Invalid(String),
}

fn refuse(reason: impl Into<String>) -> AuthFailure {
    AuthFailure::Client(ClientAuthError::Invalid(reason.into()))
}

/// Why [`Clients::authenticate`] did not return a client: either the client failed to
/// authenticate ([`AuthFailure::Client`] → `invalid_client` 401), or we failed
/// ([`AuthFailure::Domain`], storage or randomness → `server_error` 500).
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// The presented credentials do not authenticate a client.
    #[error(transparent)]
    Client(#[from] ClientAuthError),
    /// Our fault: storage or randomness failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<StoreError> for AuthFailure {
    fn from(e: StoreError) -> Self {
        Self::Domain(e.into())
    }
}

/// Registry and authentication operations; borrows the store, randomness and keys.
pub struct Clients<'a> {
    /// Where clients and used assertion ids live.
    pub store: &'a Store,
    /// Source of client ids and secrets.
    pub rng: &'a dyn Rng,
    /// Keys; the client-secret hash is keyed from them.
    pub keys: &'a KeySet,
}

/// Collects every invalid field of a registration.
#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: &'static str, detail: impl Into<String>) {
        self.0.push(FieldError {
            field,
            detail: detail.into(),
        });
    }

    fn check<T>(&mut self, field: &'static str, r: std::result::Result<T, String>) -> Option<T> {
        r.map_err(|detail| self.add(field, detail)).ok()
    }
}

/// A display name: trimmed, 1–100 characters, no control characters.
fn client_name(raw: &str) -> std::result::Result<String, String> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err("must not be empty".into());
    }
    if len > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

/// True for the hosts that may use plain `http` (RFC 8252 §7.3 loopback redirects).
fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => *ip == std::net::Ipv4Addr::LOCALHOST,
        url::Host::Ipv6(ip) => *ip == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// Checks one redirect (or post-logout redirect) URI: absolute, `https` (or `http` on a
/// loopback host), with a host, no user info, no fragment. Returns the URI's host (as
/// `url` normalises it: lower case, IPv6 in brackets); the URI itself is kept as sent,
/// because it is later compared as an exact string.
pub fn redirect_uri_host(raw: &str) -> std::result::Result<String, String> {
    if raw.len() > MAX_URI_LEN {
        return Err(format!("must be at most {MAX_URI_LEN} characters"));
    }
    if raw.trim() != raw || raw.is_empty() {
        return Err("must be an absolute URI without surrounding spaces".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("is not an absolute URI ({e})"))?;
    let host = url
        .host()
        .ok_or_else(|| "must have a host name".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => {
            return Err(
                "must use https (plain http is allowed only for localhost, 127.0.0.1 and [::1])"
                    .into(),
            );
        }
        other => return Err(format!("must use https, not {other:?}")),
    }
    if raw.contains('#') || url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user information".into());
    }
    Ok(url.host_str().unwrap_or_default().to_owned())
}

/// Validates a list of URIs, reporting each bad entry; duplicates are dropped (order kept).
/// Returns the URIs and their hosts.
fn uri_list(
    errors: &mut Errors,
    field: &'static str,
    raw: Vec<String>,
) -> (Vec<String>, BTreeSet<String>) {
    if raw.len() > MAX_URIS {
        errors.add(field, format!("must list at most {MAX_URIS} URIs"));
        return (Vec::new(), BTreeSet::new());
    }
    let mut uris = Vec::with_capacity(raw.len());
    let mut hosts = BTreeSet::new();
    for (i, uri) in raw.into_iter().enumerate() {
        match redirect_uri_host(&uri) {
            Ok(host) => {
                hosts.insert(host);
                if !uris.contains(&uri) {
                    uris.push(uri);
                }
            }
            Err(why) => errors.add(field, format!("entry {i} {uri:?} {why}")),
        }
    }
    (uris, hosts)
}

/// A space-separated scope string → the distinct known scopes, in the order given.
fn scope_list(raw: &str) -> std::result::Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if !KNOWN_SCOPES.contains(&s) {
            unknown.push(s.to_owned());
        } else if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown scope {}; known scopes are: {}",
            unknown.join(", "),
            KNOWN_SCOPES.join(" ")
        ));
    }
    if out.is_empty() {
        return Err("must name at least one scope".into());
    }
    Ok(out)
}

/// Grant type names → the distinct grant types, in the order given.
fn grant_list(raw: &[String]) -> std::result::Result<Vec<GrantType>, String> {
    let mut out = Vec::new();
    for name in raw {
        let g = GrantType::parse(name).ok_or_else(|| {
            format!(
                "unknown grant type {name:?}; supported: authorization_code, refresh_token, \
                 client_credentials"
            )
        })?;
        if !out.contains(&g) {
            out.push(g);
        }
    }
    if out.is_empty() {
        return Err("must name at least one grant type".into());
    }
    if out.contains(&GrantType::RefreshToken) && !out.contains(&GrantType::AuthorizationCode) {
        return Err("refresh_token is only issued with authorization_code".into());
    }
    Ok(out)
}

/// Decodes a base64url JWK coordinate of a P-256 key (32 bytes).
fn coordinate(v: Option<&serde_json::Value>) -> Option<&str> {
    let s = v?.as_str()?;
    let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
    (bytes.len() == 32).then_some(s)
}

/// Validates a JWKS for `private_key_jwt` and returns it normalised: only the public members
/// of the EC P-256 signing keys (`kty`, `crv`, `x`, `y`, and `kid`, `use`, `alg` when given).
/// Keys of other types are refused rather than silently dropped, so an operator is never
/// surprised by which key counts; private key material (`d`) is refused outright.
pub fn client_jwks(raw: &serde_json::Value) -> std::result::Result<serde_json::Value, String> {
    let keys = raw
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| "must be a JWK Set: {\"keys\": [...]}".to_string())?;
    if keys.is_empty() {
        return Err("must contain at least one EC P-256 key".into());
    }
    if keys.len() > MAX_JWKS_KEYS {
        return Err(format!("must contain at most {MAX_JWKS_KEYS} keys"));
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut kids = HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        let obj = key
            .as_object()
            .ok_or_else(|| format!("key {i} is not a JSON object"))?;
        if obj.contains_key("d") {
            return Err(format!(
                "key {i} contains private key material (\"d\"); register the public key only"
            ));
        }
        let str_member = |name: &str| obj.get(name).and_then(serde_json::Value::as_str);
        if str_member("kty") != Some("EC") || str_member("crv") != Some("P-256") {
            return Err(format!(
                "key {i} must be an EC P-256 key (\"kty\": \"EC\", \"crv\": \"P-256\")"
            ));
        }
        let (Some(x), Some(y)) = (coordinate(obj.get("x")), coordinate(obj.get("y"))) else {
            return Err(format!(
                "key {i} needs \"x\" and \"y\": base64url of 32 bytes each"
            ));
        };
        if let Some(u) = obj.get("use")
            && u.as_str() != Some("sig")
        {
            return Err(format!(
                "key {i} must have \"use\": \"sig\" if \"use\" is given"
            ));
        }
        if let Some(a) = obj.get("alg")
            && a.as_str() != Some("ES256")
        {
            return Err(format!(
                "key {i} must have \"alg\": \"ES256\" if \"alg\" is given"
            ));
        }
        let mut jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        match obj.get("kid") {
            None => {}
            Some(serde_json::Value::String(kid)) if !kid.is_empty() && kid.len() <= 256 => {
                if !kids.insert(kid.clone()) {
                    return Err(format!("kid {kid:?} is used by more than one key"));
                }
                jwk["kid"] = kid.clone().into();
            }
            Some(_) => return Err(format!("key {i} has a \"kid\" that is not a short string")),
        }
        for member in ["use", "alg"] {
            if let Some(v) = obj.get(member) {
                jwk[member] = v.clone();
            }
        }
        out.push(jwk);
    }
    Ok(serde_json::json!({ "keys": out }))
}

/// RFC 7519 `aud` of a client assertion: one string or an array.
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_any(&self, accepted: &[&str]) -> bool {
        match self {
            Self::One(a) => accepted.contains(&a.as_str()),
            Self::Many(list) => list.iter().any(|a| accepted.contains(&a.as_str())),
        }
    }
}

/// The claims of a client assertion that we check (RFC 7523 §3).
#[derive(Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    jti: Option<String>,
}

/// The `sub` of an assertion, read without verification only to find the client whose key
/// verifies it.
fn assertion_subject(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Peek {
        sub: Option<String>,
    }
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Peek>(&bytes).ok()?.sub
}

fn numeric_date(v: f64) -> Option<OffsetDateTime> {
    if !v.is_finite() {
        return None;
    }
    // NumericDate may carry fractions (RFC 7519 §2); whole seconds are precise enough.
    #[allow(clippy::cast_possible_truncation)]
    let secs = v.floor() as i64;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

impl Clients<'_> {
    /// Validates and records a new client. Returns the client and, for `client_secret_basic`
    /// and `client_secret_post`, its secret: shown to the caller once, stored only as a
    /// keyed hash.
    ///
    /// # Errors
    /// [`DomainError::Invalid`] naming every bad field; storage and randomness errors.
    pub fn register(
        &self,
        input: NewClient,
        now: OffsetDateTime,
    ) -> Result<(Client, Option<Zeroizing<String>>)> {
        let mut errors = Errors::default();
        let name = errors.check("name", client_name(&input.name));
        let auth_method = errors.check(
            "token_endpoint_auth_method",
            match input.token_endpoint_auth_method.as_deref() {
                None => Ok(AuthMethod::ClientSecretBasic),
                Some(m) => AuthMethod::parse(m).ok_or_else(|| {
                    format!(
                        "unknown method {m:?}; supported: client_secret_basic, \
                         client_secret_post, private_key_jwt, none"
                    )
                }),
            },
        );
        let grant_types = errors.check(
            "grant_types",
            match &input.grant_types {
                None => Ok(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
                Some(list) => grant_list(list),
            },
        );
        let (redirect_uris, hosts) = uri_list(&mut errors, "redirect_uris", input.redirect_uris);
        let (post_logout_redirect_uris, _) = uri_list(
            &mut errors,
            "post_logout_redirect_uris",
            input.post_logout_redirect_uris.unwrap_or_default(),
        );
        let scopes = errors.check(
            "scope",
            scope_list(input.scope.as_deref().unwrap_or(DEFAULT_SCOPE)),
        );
        let subject_type = errors.check(
            "subject_type",
            match input.subject_type.as_deref() {
                None => Ok(SubjectType::Public),
                Some(s) => SubjectType::parse(s)
                    .ok_or_else(|| format!("unknown subject type {s:?}; use public or pairwise")),
            },
        );

        if let Some(grants) = &grant_types {
            let credentials_only = grants.as_slice() == [GrantType::ClientCredentials];
            if redirect_uris.is_empty()
                && !credentials_only
                && !errors.0.iter().any(|e| e.field == "redirect_uris")
            {
                errors.add(
                    "redirect_uris",
                    "must list at least one redirect URI unless grant_types is \
                     [\"client_credentials\"]",
                );
            }
            if auth_method == Some(AuthMethod::None)
                && grants.contains(&GrantType::ClientCredentials)
            {
                errors.add(
                    "grant_types",
                    "a public client (token_endpoint_auth_method none) cannot use \
                     client_credentials",
                );
            }
        }

        let mut sector = None;
        if subject_type == Some(SubjectType::Pairwise) {
            match hosts.len() {
                1 => sector = hosts.into_iter().next(),
                0 => errors.add(
                    "subject_type",
                    "pairwise needs redirect_uris: their host is the sector",
                ),
                _ => errors.add(
                    "redirect_uris",
                    format!(
                        "with subject_type pairwise all redirect URIs must share one host \
                         (the sector); found {}",
                        hosts.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }

        let jwks = match (auth_method, &input.jwks) {
            (Some(AuthMethod::PrivateKeyJwt), None) => {
                errors.add(
                    "jwks",
                    "is required with private_key_jwt: a JWK Set with at least one EC P-256 key",
                );
                None
            }
            (Some(AuthMethod::PrivateKeyJwt), Some(raw)) => errors.check("jwks", client_jwks(raw)),
            (Some(_), Some(_)) => {
                errors.add(
                    "jwks",
                    "is only used with token_endpoint_auth_method private_key_jwt",
                );
                None
            }
            (_, None) | (None, Some(_)) => None,
        };

        let (
            Some(name),
            Some(auth_method),
            Some(grant_types),
            Some(scopes),
            Some(subject_type),
            true,
        ) = (
            name,
            auth_method,
            grant_types,
            scopes,
            subject_type,
            errors.0.is_empty(),
        )
        else {
            return Err(DomainError::Invalid(errors.0));
        };

        let id = URL_SAFE_NO_PAD.encode(random_bytes::<16>(self.rng)?);
        let secret = if auth_method.uses_secret() {
            let raw = Zeroizing::new(random_bytes::<32>(self.rng)?);
            Some(Zeroizing::new(URL_SAFE_NO_PAD.encode(*raw)))
        } else {
            None
        };
        let client = Client {
            id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            auth_method,
            jwks,
            scopes,
            subject_type,
            sector,
            grant_types,
            created_at: now,
            secret_hash: secret.as_ref().map(|s| self.secret_hash(s)),
        };
        match self.store.insert_client(&client) {
            Ok(()) => Ok((client, secret)),
            Err(StoreError::Conflict { .. }) => Err(DomainError::Internal(
                "random client id collided with an existing one".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one client.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get(&self, id: &str) -> Result<Option<Client>> {
        Ok(self.store.client(id)?)
    }

    fn secret_hash(&self, secret: &str) -> SecretHash {
        SecretHash(self.keys.keyed_hash(SECRET_PURPOSE, secret.as_bytes()))
    }

    /// Authenticates the client of a token, introspection or revocation request.
    ///
    /// Exactly one method may be presented, and it must be the client's registered one.
    /// `audiences` are the values a `private_key_jwt` assertion's `aud` may hold (the token
    /// endpoint URL and the issuer).
    ///
    /// # Errors
    /// [`AuthFailure::Client`] for anything the client got wrong (unknown client, wrong
    /// secret, wrong method, bad or replayed assertion); [`AuthFailure::Domain`] when storage
    /// fails.
    pub fn authenticate(
        &self,
        presented: &PresentedClient,
        audiences: &[&str],
        now: OffsetDateTime,
    ) -> Result<Client, AuthFailure> {
        let mut methods = Vec::new();
        if presented.basic.is_some() {
            methods.push(AuthMethod::ClientSecretBasic);
        }
        if presented.client_secret.is_some() {
            methods.push(AuthMethod::ClientSecretPost);
        }
        if presented.assertion.is_some() || presented.assertion_type.is_some() {
            methods.push(AuthMethod::PrivateKeyJwt);
        }
        if methods.len() > 1 {
            return Err(refuse(format!(
                "more than one authentication method presented ({})",
                methods
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let method = methods.first().copied().unwrap_or(AuthMethod::None);

        // Which client the request claims to be, and its proof.
        let (client_id, secret) = match method {
            AuthMethod::ClientSecretBasic => {
                let (id, secret) = presented.basic.clone().unwrap_or_default();
                if presented.client_id.as_ref().is_some_and(|c| *c != id) {
                    return Err(refuse("client_id in the body differs from HTTP Basic"));
                }
                (id, Some(secret))
            }
            AuthMethod::ClientSecretPost => {
                let id = presented
                    .client_id
                    .clone()
                    .ok_or_else(|| refuse("client_secret without client_id"))?;
                (id, presented.client_secret.clone())
            }
            AuthMethod::PrivateKeyJwt => {
                if presented.assertion_type.as_deref() != Some(JWT_BEARER_ASSERTION_TYPE) {
                    return Err(refuse("client_assertion_type missing or not jwt-bearer"));
                }
                let assertion = presented
                    .assertion
                    .as_deref()
                    .ok_or_else(|| refuse("client_assertion_type without client_assertion"))?;
                if assertion.len() > MAX_ASSERTION_LEN {
                    return Err(refuse("client_assertion too long"));
                }
                let sub = assertion_subject(assertion)
                    .ok_or_else(|| refuse("client_assertion is not a JWT with a sub claim"))?;
                if presented.client_id.as_ref().is_some_and(|c| *c != sub) {
                    return Err(refuse("client_id differs from the assertion's sub"));
                }
                (sub, None)
            }
            AuthMethod::None => {
                let id = presented
                    .client_id
                    .clone()
                    .ok_or_else(|| refuse("no client credentials presented"))?;
                (id, None)
            }
        };
        let secret = secret.map(Zeroizing::new);
        // Hash before the lookup, so an unknown client costs the same as a wrong secret.
        let presented_hash = secret.as_ref().map(|s| self.secret_hash(s));

        let client = self
            .store
            .client(&client_id)?
            .ok_or_else(|| refuse("unknown client_id"))?;
        if client.auth_method != method {
            return Err(refuse(format!(
                "client {} is registered for {} but presented {}",
                client.id,
                client.auth_method.as_str(),
                method.as_str()
            )));
        }
        match method {
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                let ok = match (&client.secret_hash, &presented_hash) {
                    (Some(stored), Some(given)) => stored == given,
                    _ => false,
                };
                if !ok {
                    return Err(refuse(format!(
                        "wrong client secret for client {}",
                        client.id
                    )));
                }
            }
            AuthMethod::PrivateKeyJwt => {
                let assertion = presented.assertion.as_deref().unwrap_or_default();
                self.verify_assertion(&client, assertion, audiences, now)?;
            }
            AuthMethod::None => {}
        }
        Ok(client)
    }

    /// Verifies a `private_key_jwt` assertion (RFC 7523 §3) and spends its `jti`.
    fn verify_assertion(
        &self,
        client: &Client,
        assertion: &str,
        audiences: &[&str],
        now: OffsetDateTime,
    ) -> Result<(), AuthFailure> {
        use jsonwebtoken::{Algorithm, DecodingKey, Validation};
        crate::crypto::jwt::install_provider();
        let id = &client.id;
        let header = jsonwebtoken::decode_header(assertion)
            .map_err(|e| refuse(format!("client {id}: malformed assertion header ({e})")))?;
        if header.alg != Algorithm::ES256 {
            return Err(refuse(format!(
                "client {id}: assertion alg {:?} refused, only ES256",
                header.alg
            )));
        }
        let keys: Vec<&serde_json::Value> = client
            .jwks
            .as_ref()
            .and_then(|j| j.get("keys"))
            .and_then(serde_json::Value::as_array)
            .map(|k| k.iter().collect())
            .unwrap_or_default();
        let candidates: Vec<&serde_json::Value> = match &header.kid {
            Some(kid) => keys
                .into_iter()
                .filter(|k| k.get("kid").and_then(serde_json::Value::as_str) == Some(kid))
                .collect(),
            None => keys,
        };
        if candidates.is_empty() {
            return Err(refuse(format!(
                "client {id}: no registered key matches the assertion's kid"
            )));
        }
        let mut validation = Validation::new(Algorithm::ES256);
        // Time and audience are checked below against the injected `now`.
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let mut claims = None;
        let mut last_error = String::from("no usable key");
        for key in candidates {
            let str_member = |n: &str| key.get(n).and_then(serde_json::Value::as_str);
            let (Some(x), Some(y)) = (str_member("x"), str_member("y")) else {
                continue;
            };
            let Ok(dk) = DecodingKey::from_ec_components(x, y) else {
                continue;
            };
            match jsonwebtoken::decode::<AssertionClaims>(assertion, &dk, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => last_error = e.to_string(),
            }
        }
        let claims = claims.ok_or_else(|| {
            refuse(format!(
                "client {id}: assertion signature or claims not valid under the registered \
                 keys ({last_error})"
            ))
        })?;

        if claims.iss.as_deref() != Some(id) || claims.sub.as_deref() != Some(id) {
            return Err(refuse(format!(
                "client {id}: assertion iss and sub must both be the client_id"
            )));
        }
        if !claims
            .aud
            .as_ref()
            .is_some_and(|a| a.contains_any(audiences))
        {
            return Err(refuse(format!(
                "client {id}: assertion aud names neither the token endpoint nor the issuer"
            )));
        }
        let exp = claims
            .exp
            .and_then(numeric_date)
            .ok_or_else(|| refuse(format!("client {id}: assertion without a valid exp")))?;
        if exp + ASSERTION_CLOCK_SKEW <= now {
            return Err(refuse(format!("client {id}: assertion expired")));
        }
        if exp > now + MAX_ASSERTION_LIFETIME + ASSERTION_CLOCK_SKEW {
            return Err(refuse(format!(
                "client {id}: assertion exp is more than 10 minutes ahead"
            )));
        }
        for (name, value) in [("nbf", claims.nbf), ("iat", claims.iat)] {
            if let Some(v) = value {
                let t = numeric_date(v)
                    .ok_or_else(|| refuse(format!("client {id}: assertion {name} invalid")))?;
                if t > now + ASSERTION_CLOCK_SKEW {
                    return Err(refuse(format!(
                        "client {id}: assertion {name} in the future"
                    )));
                }
            }
        }
        let jti = claims
            .jti
            .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
            .ok_or_else(|| refuse(format!("client {id}: assertion without a usable jti")))?;
        // Kept until the assertion could no longer be accepted anyway.
        let keep_until = exp + ASSERTION_CLOCK_SKEW;
        if !self.store.claim_assertion_jti(id, &jti, keep_until)? {
            return Err(refuse(format!("client {id}: assertion jti replayed")));
        }
        self.maybe_prune(id, now);
        Ok(())
    }

    /// Now and then, forget the client's expired assertion ids; failures only log.
    fn maybe_prune(&self, client_id: &str, now: OffsetDateTime) {
        let Ok([roll]) = random_bytes::<1>(self.rng) else {
            return;
        };
        if roll % PRUNE_ONE_IN != 0 {
            return;
        }
        if let Err(e) = self.store.prune_assertion_jtis(client_id, now) {
            tracing::warn!(error = %e, client_id, "pruning expired assertion ids failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);
    const TOKEN_URL: &str = "https://id.example.gov/token";
    const ISSUER: &str = "https://id.example.gov";

    fn keys() -> &'static KeySet {
        static KEYS: std::sync::LazyLock<KeySet> = std::sync::LazyLock::new(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-dev");
            KeySet::load(&dir, &dir.join("admin-token")).unwrap()
        });
        &KEYS
    }

    fn clients(store: &Store) -> Clients<'_> {
        static RNG: std::sync::LazyLock<crate::domain::SystemRng> =
            std::sync::LazyLock::new(crate::domain::SystemRng::new);
        Clients {
            store,
            rng: &*RNG,
            keys: keys(),
        }
    }

    fn input() -> NewClient {
        NewClient {
            name: "Tax Office".into(),
            redirect_uris: vec!["https://tax.example.gov/cb".into()],
            ..Default::default()
        }
    }

    /// The fields named in a 422.
    fn invalid_fields(r: Result<(Client, Option<Zeroizing<String>>)>) -> Vec<&'static str> {
        match r {
            Err(DomainError::Invalid(errs)) => errs.iter().map(|e| e.field).collect(),
            Err(e) => panic!("expected Invalid, got {e:?}"),
            Ok((c, _)) => panic!("expected Invalid, got {c:?}"),
        }
    }

    #[test]
    fn defaults_and_secret_once() {
        let store = Store::in_memory();
        let (c, secret) = clients(&store).register(input(), NOW).unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(c.scopes, ["openid", "profile", "email"]);
        assert_eq!(
            c.grant_types,
            [GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(c.subject_type, SubjectType::Public);
        assert_eq!(c.sector, None);
        assert!(c.post_logout_redirect_uris.is_empty());
        assert!(
            c.id.len() == 22
                && c.id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        );
        let secret = secret.unwrap();
        assert_eq!(secret.len(), 43, "256 bits base64url");
        let hash = c.secret_hash.clone().unwrap();
        assert_ne!(&hash.0[..], secret.as_bytes());
        assert_ne!(
            hash.0,
            *ring::digest::digest(&ring::digest::SHA256, secret.as_bytes())
                .as_ref()
                .first_chunk::<32>()
                .unwrap(),
            "keyed, not a plain hash"
        );
        assert!(!format!("{c:?}").contains(secret.as_str()));
        assert!(format!("{c:?}").contains("<redacted>"));
        let stored = clients(&store).get(&c.id).unwrap().unwrap();
        assert_eq!(stored, c);
        let raw = store.backend().scan_prefix("clients", b"").unwrap();
        let text = String::from_utf8_lossy(&raw[0].1).into_owned();
        assert!(!text.contains(secret.as_str()), "{text}");
        assert!(clients(&store).get("nope").unwrap().is_none());
        assert!(c.allows_scope("openid") && !c.allows_scope("seal"));
        assert!(c.allows_grant(GrantType::RefreshToken));
        assert!(!c.allows_grant(GrantType::ClientCredentials));
        assert!(!c.is_public());
    }

    #[test]
    fn name_rules() {
        let store = Store::in_memory();
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(101)] {
            let r = clients(&store).register(
                NewClient {
                    name: bad.into(),
                    ..input()
                },
                NOW,
            );
            assert_eq!(invalid_fields(r), ["name"], "{bad:?}");
        }
    }

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://a.example/cb",
            "https://a.example:8443/cb?x=1",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:9/cb",
        ] {
            assert!(redirect_uri_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://a.example/cb",
            "http://127.0.0.2/cb",
            "http://localhost.evil.example/cb",
            "https://a.example/cb#frag",
            "https://a.example/cb#",
            "/relative/cb",
            "a.example/cb",
            "com.example.app:/cb",
            "javascript:alert(1)",
            "https://user:pw@a.example/cb",
            " https://a.example/cb",
            "",
        ] {
            assert!(redirect_uri_host(bad).is_err(), "{bad}");
        }
        let store = Store::in_memory();
        let r = clients(&store).register(
            NewClient {
                redirect_uris: vec!["https://ok.example/cb".into(), "http://x.example/cb".into()],
                post_logout_redirect_uris: Some(vec!["https://ok.example/bye#x".into()]),
                ..input()
            },
            NOW,
        );
        assert_eq!(
            invalid_fields(r),
            ["redirect_uris", "post_logout_redirect_uris"]
        );
    }

    #[test]
    fn redirect_uris_kept_as_sent_and_deduplicated() {
        let store = Store::in_memory();
        let (c, _) = clients(&store)
            .register(
                NewClient {
                    redirect_uris: vec![
                        "https://A.example".into(),
                        "https://A.example".into(),
                        "http://localhost:8080/cb".into(),
                    ],
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(
            c.redirect_uris,
            ["https://A.example", "http://localhost:8080/cb"]
        );
    }

    #[test]
    fn empty_redirect_uris_only_for_client_credentials() {
        let store = Store::in_memory();
        let reg = clients(&store);
        let r = reg.register(
            NewClient {
                redirect_uris: vec![],
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["redirect_uris"]);
        let r = reg.register(
            NewClient {
                redirect_uris: vec![],
                grant_types: Some(vec![
                    "client_credentials".into(),
                    "authorization_code".into(),
                ]),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["redirect_uris"]);
        let (c, secret) = reg
            .register(
                NewClient {
                    redirect_uris: vec![],
                    grant_types: Some(vec!["client_credentials".into()]),
                    scope: Some("seal".into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(c.grant_types, [GrantType::ClientCredentials]);
        assert!(secret.is_some());
    }

    #[test]
    fn grant_type_rules() {
        let store = Store::in_memory();
        let reg = clients(&store);
        for bad in [
            vec!["implicit".to_owned()],
            vec![],
            vec!["refresh_token".to_owned()],
        ] {
            let r = reg.register(
                NewClient {
                    grant_types: Some(bad.clone()),
                    ..input()
                },
                NOW,
            );
            assert_eq!(invalid_fields(r), ["grant_types"], "{bad:?}");
        }
        let r = reg.register(
            NewClient {
                token_endpoint_auth_method: Some("none".into()),
                grant_types: Some(vec![
                    "authorization_code".into(),
                    "client_credentials".into(),
                ]),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["grant_types"]);
    }

    #[test]
    fn scope_rules() {
        let store = Store::in_memory();
        let reg = clients(&store);
        for bad in ["openid admin", "", "   "] {
            let r = reg.register(
                NewClient {
                    scope: Some(bad.into()),
                    ..input()
                },
                NOW,
            );
            assert_eq!(invalid_fields(r), ["scope"], "{bad:?}");
        }
        let (c, _) = reg
            .register(
                NewClient {
                    scope: Some(" openid  sign openid national_id ".into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(c.scopes, ["openid", "sign", "national_id"]);
        assert_eq!(c.scope(), "openid sign national_id");
    }

    #[test]
    fn pairwise_needs_one_host() {
        let store = Store::in_memory();
        let reg = clients(&store);
        let (c, _) = reg
            .register(
                NewClient {
                    subject_type: Some("pairwise".into()),
                    redirect_uris: vec![
                        "https://Tax.example.gov/a".into(),
                        "https://tax.example.gov:8443/b".into(),
                    ],
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(c.subject_type, SubjectType::Pairwise);
        assert_eq!(c.sector.as_deref(), Some("tax.example.gov"));
        let r = reg.register(
            NewClient {
                subject_type: Some("pairwise".into()),
                redirect_uris: vec!["https://a.example/cb".into(), "https://b.example/cb".into()],
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["redirect_uris"]);
        let r = reg.register(
            NewClient {
                subject_type: Some("pairwise".into()),
                redirect_uris: vec![],
                grant_types: Some(vec!["client_credentials".into()]),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["subject_type"]);
        let r = reg.register(
            NewClient {
                subject_type: Some("ppid".into()),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["subject_type"]);
    }

    #[test]
    fn auth_method_rules() {
        let store = Store::in_memory();
        let reg = clients(&store);
        let r = reg.register(
            NewClient {
                token_endpoint_auth_method: Some("tls_client_auth".into()),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["token_endpoint_auth_method"]);
        let (c, secret) = reg
            .register(
                NewClient {
                    token_endpoint_auth_method: Some("none".into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert!(c.is_public() && secret.is_none() && c.secret_hash.is_none());
        let (c, secret) = reg
            .register(
                NewClient {
                    token_endpoint_auth_method: Some("client_secret_post".into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretPost);
        assert!(secret.is_some());
        // jwks without private_key_jwt is refused rather than silently ignored.
        let r = reg.register(
            NewClient {
                jwks: Some(ClientKey::new().jwks(None)),
                ..input()
            },
            NOW,
        );
        assert_eq!(invalid_fields(r), ["jwks"]);
    }

    #[test]
    fn private_key_jwt_needs_ec_p256_jwks() {
        let store = Store::in_memory();
        let reg = clients(&store);
        let pkj = |jwks: Option<serde_json::Value>| NewClient {
            token_endpoint_auth_method: Some("private_key_jwt".into()),
            jwks,
            ..input()
        };
        assert_eq!(invalid_fields(reg.register(pkj(None), NOW)), ["jwks"]);
        let key = ClientKey::new();
        let good = key.jwks(Some("k1"));
        let x = good["keys"][0]["x"].clone();
        let y = good["keys"][0]["y"].clone();
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"keys": []}),
            serde_json::json!([good["keys"][0].clone()]),
            serde_json::json!({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-384", "x": x, "y": y}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": y}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "d": x}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "alg": "HS256"}]}),
            serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "x": x, "y": y, "use": "enc"}]}),
            serde_json::json!({"keys": [
                {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "a"},
                {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": "a"}]}),
        ] {
            assert_eq!(
                invalid_fields(reg.register(pkj(Some(bad.clone())), NOW)),
                ["jwks"],
                "{bad}"
            );
        }
        let mut extra = good.clone();
        extra["keys"][0]["x5c"] = serde_json::json!(["junk"]);
        let (c, secret) = reg.register(pkj(Some(extra)), NOW).unwrap();
        assert!(secret.is_none(), "private_key_jwt clients get no secret");
        assert_eq!(c.jwks, Some(good), "normalised to the public members");
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let store = Store::in_memory();
        let r = clients(&store).register(
            NewClient {
                name: String::new(),
                redirect_uris: vec!["http://x.example".into()],
                post_logout_redirect_uris: None,
                token_endpoint_auth_method: Some("private_key_jwt".into()),
                jwks: None,
                scope: Some("root".into()),
                subject_type: Some("x".into()),
                grant_types: Some(vec!["password".into()]),
            },
            NOW,
        );
        assert_eq!(
            invalid_fields(r),
            [
                "name",
                "grant_types",
                "redirect_uris",
                "scope",
                "subject_type",
                "jwks"
            ]
        );
    }

    // ---- authentication ----

    fn secret_client(store: &Store, method: &str) -> (Client, String) {
        let (c, s) = clients(store)
            .register(
                NewClient {
                    token_endpoint_auth_method: Some(method.into()),
                    ..input()
                },
                NOW,
            )
            .unwrap();
        (c, s.map(|s| s.to_string()).unwrap_or_default())
    }

    fn auth(store: &Store, p: &PresentedClient) -> Result<Client, AuthFailure> {
        clients(store).authenticate(p, &[TOKEN_URL, ISSUER], NOW)
    }

    fn refused(r: Result<Client, AuthFailure>) -> String {
        match r {
            Err(AuthFailure::Client(ClientAuthError::Invalid(why))) => why,
            Err(e) => panic!("expected invalid_client, got {e:?}"),
            Ok(c) => panic!("expected invalid_client, got {}", c.id),
        }
    }

    #[test]
    fn client_secret_basic() {
        let store = Store::in_memory();
        let (c, secret) = secret_client(&store, "client_secret_basic");
        let basic = |id: &str, s: &str| PresentedClient {
            basic: Some((id.into(), s.into())),
            ..Default::default()
        };
        assert_eq!(auth(&store, &basic(&c.id, &secret)).unwrap().id, c.id);
        // client_id repeated in the body is fine when equal.
        let mut p = basic(&c.id, &secret);
        p.client_id = Some(c.id.clone());
        assert!(auth(&store, &p).is_ok());
        p.client_id = Some("other".into());
        refused(auth(&store, &p));
        refused(auth(&store, &basic(&c.id, "wrong")));
        refused(auth(&store, &basic(&c.id, "")));
        refused(auth(&store, &basic("unknown", &secret)));
        // The right secret by the wrong method.
        let post = PresentedClient {
            client_id: Some(c.id.clone()),
            client_secret: Some(secret.clone()),
            ..Default::default()
        };
        assert!(refused(auth(&store, &post)).contains("registered for client_secret_basic"));
        // Two methods at once.
        let mut both = basic(&c.id, &secret);
        both.client_secret = Some(secret.clone());
        assert!(refused(auth(&store, &both)).contains("more than one"));
        // Only a client_id: not a public client.
        let none = PresentedClient {
            client_id: Some(c.id.clone()),
            ..Default::default()
        };
        refused(auth(&store, &none));
        refused(auth(&store, &PresentedClient::default()));
    }

    #[test]
    fn client_secret_post_and_public() {
        let store = Store::in_memory();
        let (c, secret) = secret_client(&store, "client_secret_post");
        let post = |s: &str| PresentedClient {
            client_id: Some(c.id.clone()),
            client_secret: Some(s.into()),
            ..Default::default()
        };
        assert!(auth(&store, &post(&secret)).is_ok());
        refused(auth(&store, &post("nope")));
        refused(auth(
            &store,
            &PresentedClient {
                client_secret: Some(secret.clone()),
                ..Default::default()
            },
        ));
        let (public, _) = secret_client(&store, "none");
        let only_id = PresentedClient {
            client_id: Some(public.id.clone()),
            ..Default::default()
        };
        assert!(auth(&store, &only_id).unwrap().is_public());
        // A public client presenting a secret is refused (wrong method).
        let mut with_secret = only_id.clone();
        with_secret.client_secret = Some("x".into());
        refused(auth(&store, &with_secret));
    }

    #[test]
    fn presented_client_debug_hides_secrets() {
        let p = PresentedClient {
            basic: Some(("id".into(), "s3cr3t-basic".into())),
            client_secret: Some("s3cr3t-post".into()),
            assertion: Some("eyJ.s3cr3t.jwt".into()),
            ..Default::default()
        };
        let text = format!("{p:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    // ---- private_key_jwt ----

    struct ClientKey {
        pkcs8: Vec<u8>,
        point: Vec<u8>,
    }

    impl ClientKey {
        fn new() -> Self {
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            Self {
                pkcs8: pkcs8.as_ref().to_vec(),
                point: pair.public_key().as_ref().to_vec(),
            }
        }

        fn jwks(&self, kid: Option<&str>) -> serde_json::Value {
            let mut jwk = serde_json::json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&self.point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&self.point[33..]),
            });
            if let Some(kid) = kid {
                jwk["kid"] = kid.into();
            }
            serde_json::json!({ "keys": [jwk] })
        }

        fn sign(&self, kid: Option<&str>, claims: &serde_json::Value) -> String {
            crate::crypto::jwt::install_provider();
            let mut header = Header::new(Algorithm::ES256);
            header.kid = kid.map(str::to_owned);
            jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
        }
    }

    fn jwt_client(store: &Store, key: &ClientKey, kid: Option<&str>) -> Client {
        clients(store)
            .register(
                NewClient {
                    token_endpoint_auth_method: Some("private_key_jwt".into()),
                    jwks: Some(key.jwks(kid)),
                    ..input()
                },
                NOW,
            )
            .unwrap()
            .0
    }

    fn claims(client_id: &str, jti: &str) -> serde_json::Value {
        serde_json::json!({
            "iss": client_id, "sub": client_id, "aud": TOKEN_URL, "jti": jti,
            "iat": NOW.unix_timestamp(), "exp": NOW.unix_timestamp() + 300,
        })
    }

    fn assertion(jwt: String) -> PresentedClient {
        PresentedClient {
            assertion_type: Some(JWT_BEARER_ASSERTION_TYPE.into()),
            assertion: Some(jwt),
            ..Default::default()
        }
    }

    #[test]
    fn private_key_jwt_accepted_once() {
        let store = Store::in_memory();
        let key = ClientKey::new();
        let c = jwt_client(&store, &key, Some("k1"));
        let jwt = key.sign(Some("k1"), &claims(&c.id, "j-1"));
        assert_eq!(auth(&store, &assertion(jwt.clone())).unwrap().id, c.id);
        assert!(refused(auth(&store, &assertion(jwt))).contains("replayed"));
        // A fresh jti works; the issuer is an accepted audience too; aud may be an array.
        let mut cl = claims(&c.id, "j-2");
        cl["aud"] = serde_json::json!(["https://other.example", ISSUER]);
        let mut p = assertion(key.sign(None, &cl));
        p.client_id = Some(c.id.clone());
        assert!(auth(&store, &p).is_ok(), "no kid: any registered key");
        p = assertion(key.sign(Some("k1"), &claims(&c.id, "j-3")));
        p.client_id = Some("someone-else".into());
        refused(auth(&store, &p));
        let entries = store
            .backend()
            .scan_prefix("client_assertion_jtis", c.id.as_bytes())
            .unwrap();
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn private_key_jwt_refusals() {
        let store = Store::in_memory();
        let key = ClientKey::new();
        let c = jwt_client(&store, &key, Some("k1"));
        let id = c.id.as_str();
        let try_claims = |edit: &dyn Fn(&mut serde_json::Value), jti: &str| {
            let mut cl = claims(id, jti);
            edit(&mut cl);
            refused(auth(&store, &assertion(key.sign(Some("k1"), &cl))))
        };
        let now = NOW.unix_timestamp();
        assert!(
            try_claims(&|c| c["aud"] = "https://evil.example/token".into(), "a").contains("aud")
        );
        assert!(
            try_claims(
                &|c| {
                    c.as_object_mut().unwrap().remove("aud");
                },
                "a2"
            )
            .contains("aud")
        );
        assert!(try_claims(&|c| c["exp"] = (now - 120).into(), "b").contains("expired"));
        assert!(
            try_claims(
                &|c| {
                    c.as_object_mut().unwrap().remove("exp");
                },
                "c"
            )
            .contains("exp")
        );
        assert!(try_claims(&|c| c["exp"] = (now + 3600).into(), "d").contains("10 minutes"));
        assert!(
            try_claims(
                &|c| {
                    c.as_object_mut().unwrap().remove("jti");
                },
                "e"
            )
            .contains("jti")
        );
        assert!(try_claims(&|c| c["iss"] = "x".into(), "f").contains("iss"));
        assert!(try_claims(&|c| c["nbf"] = (now + 600).into(), "g").contains("nbf"));
        // Refused assertions do not spend their jti.
        assert!(
            store
                .backend()
                .scan_prefix("client_assertion_jtis", b"")
                .unwrap()
                .is_empty()
        );

        // Unknown kid.
        let jwt = key.sign(Some("k2"), &claims(id, "h"));
        assert!(refused(auth(&store, &assertion(jwt))).contains("kid"));
        // Another key with the right kid.
        let jwt = ClientKey::new().sign(Some("k1"), &claims(id, "i"));
        assert!(refused(auth(&store, &assertion(jwt))).contains("signature"));
        // HS256 keyed with the public key (alg confusion).
        let body = URL_SAFE_NO_PAD.encode(claims(id, "j").to_string());
        let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#);
        let input = format!("{head}.{body}");
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.point),
            input.as_bytes(),
        );
        let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac));
        assert!(refused(auth(&store, &assertion(hs))).contains("ES256"));
        // alg none.
        let none = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        refused(auth(&store, &assertion(none)));
        // Wrong or missing assertion type.
        let jwt = key.sign(Some("k1"), &claims(id, "k"));
        let mut p = assertion(jwt.clone());
        p.assertion_type = Some("urn:ietf:params:oauth:client-assertion-type:saml2-bearer".into());
        refused(auth(&store, &p));
        p.assertion_type = None;
        refused(auth(&store, &p));
        // Assertion plus a secret: two methods.
        let mut p = assertion(jwt.clone());
        p.client_secret = Some("x".into());
        assert!(refused(auth(&store, &p)).contains("more than one"));
        // A secret client cannot authenticate with an assertion.
        let (sc, _) = secret_client(&store, "client_secret_basic");
        let jwt = key.sign(Some("k1"), &claims(&sc.id, "l"));
        assert!(refused(auth(&store, &assertion(jwt))).contains("registered for"));
        // Garbage.
        refused(auth(&store, &assertion("not-a-jwt".into())));
        // After all that, the untouched assertion is still good.
        assert!(auth(&store, &assertion(key.sign(Some("k1"), &claims(id, "k")))).is_ok());
    }

    #[test]
    fn expired_assertion_ids_are_pruned() {
        let store = Store::in_memory();
        let key = ClientKey::new();
        let c = jwt_client(&store, &key, None);
        assert!(auth(&store, &assertion(key.sign(None, &claims(&c.id, "old")))).is_ok());
        let later = NOW + Duration::hours(1);
        assert_eq!(store.prune_assertion_jtis(&c.id, NOW).unwrap(), 0);
        assert_eq!(store.prune_assertion_jtis(&c.id, later).unwrap(), 1);
        assert!(
            store
                .backend()
                .scan_prefix("client_assertion_jtis", b"")
                .unwrap()
                .is_empty()
        );
    }
}
