//! Agency clients and the `jti`s of spent client assertions, as versioned records.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{Record, decode, encode, hex, printable_key, unhex32};
use super::{Result, Store, StoreError, Write, WriteKind};
use crate::domain::clients::{AuthMethod, Client, GrantType, SecretHash, SubjectType};

/// Tree of agency clients by client id.
pub const CLIENTS: &str = "clients";
/// Tree of spent `private_key_jwt` assertion ids, keyed `<client_id>:<jti>` (client ids are
/// base64url, so the first `:` separates), each kept until its assertion expires.
pub const CLIENT_ASSERTION_JTIS: &str = "client_assertion_jtis";

#[derive(Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum StoredClient {
    #[serde(rename = "1")]
    V1(ClientV1),
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
    const VERSIONS: &'static [&'static str] = &["1"];
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
        Self::V1(ClientV1 {
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
        })
    }
}

impl StoredClient {
    fn into_domain(self, key: &[u8]) -> Result<Client> {
        let Self::V1(c) = self;
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
        Ok(Client {
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

fn jti_prefix(client_id: &str) -> Vec<u8> {
    format!("{client_id}:").into_bytes()
}

impl Store {
    /// Records a new client, flushed.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] naming [`CLIENTS`] if the id exists; backend errors.
    pub fn insert_client(&self, client: &Client) -> Result<()> {
        self.commit(vec![Write {
            tree: CLIENTS,
            key: client.id.as_bytes().to_vec(),
            kind: WriteKind::PutNew(encode(&StoredClient::from(client))),
        }])?;
        if let Ok(mut cache) = self.clients.write() {
            cache.insert(client.id.clone(), client.clone());
        }
        Ok(())
    }

    /// Reads a client by id.
    ///
    /// # Errors
    /// Decoding and backend errors.
    pub fn client(&self, id: &str) -> Result<Option<Client>> {
        if let Some(c) = self.clients.read().ok().and_then(|m| m.get(id).cloned()) {
            return Ok(Some(c));
        }
        let found = self
            .read::<StoredClient>(id.as_bytes())?
            .map(|c| c.into_domain(id.as_bytes()))
            .transpose()?;
        if let (Some(c), Ok(mut cache)) = (&found, self.clients.write()) {
            cache.insert(id.to_owned(), c.clone());
        }
        Ok(found)
    }

    /// Spends assertion id `jti` of `client_id`, kept until `expires_at`. Returns `false`
    /// when it was spent before (a replay) — also when that earlier record has expired but
    /// not yet been pruned: a `jti` must be unique, and refusing is the safe answer.
    ///
    /// # Errors
    /// Backend errors.
    pub fn claim_assertion_jti(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: OffsetDateTime,
    ) -> Result<bool> {
        let mut key = jti_prefix(client_id);
        key.extend_from_slice(jti.as_bytes());
        match self.commit(vec![Write {
            tree: CLIENT_ASSERTION_JTIS,
            key,
            kind: WriteKind::PutNew(encode(&StoredAssertionJti::V1 { expires_at })),
        }]) {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the client's spent assertion ids that expired before `now`; returns how many.
    /// Records this build cannot read are kept (refusing a replay is the safe side).
    ///
    /// # Errors
    /// Backend errors.
    pub fn prune_assertion_jtis(&self, client_id: &str, now: OffsetDateTime) -> Result<usize> {
        let entries = self
            .backend
            .scan_prefix(CLIENT_ASSERTION_JTIS, &jti_prefix(client_id))?;
        let writes: Vec<Write> = entries
            .into_iter()
            .filter(
                |(key, value)| match decode::<StoredAssertionJti>(key, value) {
                    Ok(StoredAssertionJti::V1 { expires_at }) => expires_at < now,
                    Err(_) => false,
                },
            )
            .map(|(key, _)| Write {
                tree: CLIENT_ASSERTION_JTIS,
                key,
                kind: WriteKind::Delete,
            })
            .collect();
        let n = writes.len();
        if n > 0 {
            self.commit(writes)?;
        }
        Ok(n)
    }
}
