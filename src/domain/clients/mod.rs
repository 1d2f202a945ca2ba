//! The agency-client registry (CONTRACT.md §2, "Client registration rules") and OAuth client
//! authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3,
//! RFC 7523 `private_key_jwt`, OpenID Connect Core §9).
//!
//! Secrets: a confidential client using `client_secret_basic` or `client_secret_post` gets a
//! 256-bit random secret, returned once by [`Clients::register`] and stored only as
//! `KeyedHashes::keyed_hash("client-secret", secret)`; presented secrets are hashed the same way and
//! compared in constant time. `private_key_jwt` clients get no secret: they prove themselves
//! with a short-lived ES256 assertion whose `jti` is used once. Public clients (`none`) get
//! no secret and may not use `client_credentials`.
//!
//! Every authentication failure is the one [`ClientAuthError::Invalid`] (→ `invalid_client`);
//! its text is for the log only and never contains a presented secret or assertion.

mod authenticate;
mod register;
mod rules;

use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::{DomainError, Result, Rng};
use crate::crypto::KeySet;
use crate::store::{Store, StoreError};

pub use rules::{client_jwks, redirect_uri_host};

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
    /// What the client is held to beyond the defaults (PAR, DPoP, FAPI 2.0) and where its
    /// back-channel logout goes.
    pub security: Security,
}

/// A client's security profile (CONTRACT.md §2, "Security-profile fields"). The default is
/// what every client gets: PAR and DPoP allowed but optional, no back-channel logout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Security {
    /// `require_pushed_authorization_requests` (RFC 9126 §6): `/authorize` only with a
    /// `request_uri` from `/par`.
    pub require_par: bool,
    /// `dpop_bound_access_tokens` (RFC 9449 §5.2): every token request carries a DPoP proof
    /// and every token is bound to its key.
    pub dpop_bound: bool,
    /// `backchannel_logout_uri`: where logout tokens are posted when a session the client
    /// received an ID token in ends.
    pub backchannel_logout_uri: Option<String>,
    /// `backchannel_logout_session_required`: logout tokens must carry `sid` (they always do).
    pub backchannel_logout_session_required: bool,
    /// `profile: "fapi2"`: the FAPI 2.0 Security Profile (implies both flags above,
    /// `private_key_jwt`, and refuses anything the profile forbids).
    pub fapi2: bool,
}

/// The one profile name a registration may give.
pub const PROFILE_FAPI2: &str = "fapi2";

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
    /// `require_pushed_authorization_requests` (default false).
    pub require_pushed_authorization_requests: Option<bool>,
    /// `dpop_bound_access_tokens` (default false).
    pub dpop_bound_access_tokens: Option<bool>,
    /// `backchannel_logout_uri` (https; http only on loopback hosts).
    pub backchannel_logout_uri: Option<String>,
    /// `backchannel_logout_session_required` (default false).
    pub backchannel_logout_session_required: Option<bool>,
    /// `profile`: only `fapi2`.
    pub profile: Option<String>,
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

impl Clients<'_> {
    /// Reads one client.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get(&self, id: &str) -> Result<Option<Client>> {
        Ok(self.store.clients().cached(id)?)
    }

    fn secret_hash(&self, secret: &str) -> SecretHash {
        SecretHash(
            self.keys
                .hashes
                .keyed_hash(SECRET_PURPOSE, secret.as_bytes()),
        )
    }
}

/// Fixtures shared by the unit tests of the client modules.
#[cfg(test)]
mod test_support {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    use time::macros::datetime;

    pub(super) const NOW: OffsetDateTime = datetime!(2026-11-26 10:00 UTC);

    fn keys() -> &'static KeySet {
        static KEYS: std::sync::LazyLock<KeySet> = std::sync::LazyLock::new(|| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-dev");
            KeySet::load(&dir, &dir.join("admin-token")).unwrap()
        });
        &KEYS
    }

    pub(super) fn clients(store: &Store) -> Clients<'_> {
        static RNG: std::sync::LazyLock<crate::domain::SystemRng> =
            std::sync::LazyLock::new(crate::domain::SystemRng::new);
        Clients {
            store,
            rng: &*RNG,
            keys: keys(),
        }
    }

    pub(super) fn input() -> NewClient {
        NewClient {
            name: "Tax Office".into(),
            redirect_uris: vec!["https://tax.example.gov/cb".into()],
            ..Default::default()
        }
    }

    pub(super) struct ClientKey {
        pub(super) pkcs8: Vec<u8>,
        pub(super) point: Vec<u8>,
    }

    impl ClientKey {
        pub(super) fn new() -> Self {
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

        pub(super) fn jwks(&self, kid: Option<&str>) -> serde_json::Value {
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

        pub(super) fn sign(&self, kid: Option<&str>, claims: &serde_json::Value) -> String {
            crate::crypto::jwt::install_provider();
            let mut header = Header::new(Algorithm::ES256);
            header.kid = kid.map(str::to_owned);
            jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
