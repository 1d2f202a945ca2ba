//! Agency clients and the `jti`s of spent client assertions, as versioned records.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::record::{Record, printable_key};
use super::tx::Read;
use super::{Result, Store, StoreError, Tx};
use crate::crypto::digest::{hex, unhex32};
use crate::domain::clients::{
    AuthMethod, Client, GrantType, PROFILE_FAPI2, SecretHash, Security, SubjectType,
};

/// Tree of agency clients by client id.
pub const CLIENTS: &str = "clients";
/// Tree of spent `private_key_jwt` assertion ids, keyed `<client_id>:<jti>` (client ids are
/// base64url, so the first `:` separates), each kept until its assertion expires.
pub const CLIENT_ASSERTION_JTIS: &str = "client_assertion_jtis";

/// A client is written as v1 when its security profile is the default, so that a build from
/// before v2 still reads it; a client with a profile is v2, which such a build refuses to
/// read rather than serve without the profile's rules.
#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredClient {
    #[serde(rename = "1")]
    V1(ClientV1),
    #[serde(rename = "2")]
    V2 {
        #[serde(flatten)]
        client: ClientV1,
        security: SecurityV2,
    },
}

#[derive(Serialize, Deserialize)]
struct SecurityV2 {
    require_pushed_authorization_requests: bool,
    dpop_bound_access_tokens: bool,
    backchannel_logout_uri: Option<String>,
    backchannel_logout_session_required: bool,
    /// `fapi2` or none.
    profile: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ClientV1 {
    id: String,
    name: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    /// `token_endpoint_auth_method` name.
    auth_method: String,
    jwks: Option<serde_json::Value>,
    scopes: Vec<String>,
    /// `public` or `pairwise`.
    subject_type: String,
    sector: Option<String>,
    /// Grant type names.
    grant_types: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Keyed hash of the secret (hex); never the secret.
    secret_hash: Option<String>,
}

impl Record for StoredClient {
    const TREE: &'static str = CLIENTS;
    const VERSIONS: &'static [&'static str] = &["1", "2"];
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredAssertionJti {
    #[serde(rename = "1")]
    V1 {
        /// After this instant the assertion is refused as expired, so the record may go.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
}

impl Record for StoredAssertionJti {
    const TREE: &'static str = CLIENT_ASSERTION_JTIS;
    const VERSIONS: &'static [&'static str] = &["1"];
}

impl From<&Client> for StoredClient {
    fn from(c: &Client) -> Self {
        let client = ClientV1 {
            id: c.id.clone(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            auth_method: c.auth_method.as_str().to_owned(),
            jwks: c.jwks.clone(),
            scopes: c.scopes.clone(),
            subject_type: c.subject_type.as_str().to_owned(),
            sector: c.sector.clone(),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            created_at: c.created_at,
            secret_hash: c.secret_hash.as_ref().map(|h| hex(&h.0)),
        };
        let s = &c.security;
        if *s == Security::default() {
            return Self::V1(client);
        }
        Self::V2 {
            client,
            security: SecurityV2 {
                require_pushed_authorization_requests: s.require_par,
                dpop_bound_access_tokens: s.dpop_bound,
                backchannel_logout_uri: s.backchannel_logout_uri.clone(),
                backchannel_logout_session_required: s.backchannel_logout_session_required,
                profile: s.fapi2.then(|| PROFILE_FAPI2.to_owned()),
            },
        }
    }
}

impl StoredClient {
    fn into_domain(self, key: &[u8]) -> Result<Client> {
        let (c, security) = match self {
            Self::V1(c) => (c, None),
            Self::V2 { client, security } => (client, Some(security)),
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            tree: CLIENTS,
            key: printable_key(key),
            reason,
        };
        let auth_method = AuthMethod::parse(&c.auth_method)
            .ok_or_else(|| corrupt(format!("unknown auth method {:?}", c.auth_method)))?;
        let subject_type = SubjectType::parse(&c.subject_type)
            .ok_or_else(|| corrupt(format!("unknown subject type {:?}", c.subject_type)))?;
        let grant_types = c
            .grant_types
            .iter()
            .map(|g| GrantType::parse(g).ok_or_else(|| corrupt(format!("unknown grant {g:?}"))))
            .collect::<Result<Vec<_>>>()?;
        let secret_hash = match c.secret_hash.as_deref() {
            None => None,
            Some(h) => Some(SecretHash(
                unhex32(h).ok_or_else(|| corrupt("malformed secret hash".into()))?,
            )),
        };
        let security = match security {
            None => Security::default(),
            Some(s) => Security {
                require_par: s.require_pushed_authorization_requests,
                dpop_bound: s.dpop_bound_access_tokens,
                backchannel_logout_uri: s.backchannel_logout_uri,
                backchannel_logout_session_required: s.backchannel_logout_session_required,
                fapi2: match s.profile.as_deref() {
                    None => false,
                    Some(PROFILE_FAPI2) => true,
                    Some(p) => return Err(corrupt(format!("unknown profile {p:?}"))),
                },
            },
        };
        Ok(Client {
            security,
            id: c.id,
            name: c.name,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            auth_method,
            jwks: c.jwks,
            scopes: c.scopes,
            subject_type,
            sector: c.sector,
            grant_types,
            created_at: c.created_at,
            secret_hash,
        })
    }
}

/// How long a decoded client registration may be served from this process's cache. A
/// change made by another process (a shared database) is seen after at most this long.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(10);

/// Decoded client registrations with the time each was loaded.
#[derive(Default)]
pub(super) struct Cache(RwLock<HashMap<String, (Instant, Client)>>);

/// Client registrations and spent assertion ids. Reads work on the committed store and in a
/// transaction; writes only in a transaction.
pub struct Clients<S>(S);

impl Store {
    /// Committed client registrations.
    pub fn clients(&self) -> Clients<&Self> {
        Clients(self)
    }
}

impl<'a> Tx<'a> {
    /// Client registrations in this transaction.
    pub fn clients(&mut self) -> Clients<&mut Tx<'a>> {
        Clients(self)
    }
}

impl<S: Read> Clients<S> {
    /// A client by id, read from storage.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn get(&self, id: &str) -> Result<Option<Client>> {
        self.0
            .get::<StoredClient>(id.as_bytes())?
            .map(|c| c.into_domain(id.as_bytes()))
            .transpose()
    }
}

impl Clients<&Store> {
    /// A client by id, from the cache when it was loaded less than [`CLIENT_CACHE_TTL`]
    /// ago (no I/O: a token request for a cached client needs no storage at all).
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn cached(&self, id: &str) -> Result<Option<Client>> {
        let now = Instant::now();
        let cache = &self.0.clients.0;
        if let Some((_, c)) = cache.read().ok().and_then(|m| {
            m.get(id)
                .filter(|(at, _)| now.duration_since(*at) < CLIENT_CACHE_TTL)
                .cloned()
        }) {
            return Ok(Some(c));
        }
        let found = self.get(id)?;
        if let (Some(c), Ok(mut map)) = (&found, cache.write()) {
            map.insert(id.to_owned(), (now, c.clone()));
        }
        Ok(found)
    }
}

impl Clients<&mut Tx<'_>> {
    /// Records a new client.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming [`CLIENTS`] if the id exists.
    pub fn insert(&mut self, client: &Client) -> Result<()> {
        self.0
            .insert_new(client.id.as_bytes(), &StoredClient::from(client))
    }

    /// Spends assertion id `jti` of `client_id`, kept until `expires_at` (then swept).
    /// Returns `false` when it was spent before (a replay) — also when that earlier record
    /// has expired but not yet been swept: a `jti` must be unique, and refusing is the safe
    /// answer.
    ///
    /// # Errors
    /// Backend errors.
    pub fn claim_assertion_jti(
        &mut self,
        client_id: &str,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool> {
        let key = format!("{client_id}:{jti}").into_bytes();
        if self.0.raw(CLIENT_ASSERTION_JTIS, &key)?.is_some() {
            return Ok(false);
        }
        self.0
            .put_expiring(&key, &StoredAssertionJti::V1 { expires_at }, expires_at);
        Ok(true)
    }
}

/// [`super::record::round_trip`] for the record stored in `tree`, if it is one of this
/// module's.
pub(super) fn round_trip(tree: &str, bytes: &[u8]) -> Option<std::result::Result<(), String>> {
    use super::record::round_trip as check;
    Some(match tree {
        CLIENTS => check::<StoredClient>(bytes),
        CLIENT_ASSERTION_JTIS => check::<StoredAssertionJti>(bytes),
        _ => return None,
    })
}
