//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a citizen's session
//! ends — RP-initiated logout, logging out of civis, or the passkey revoked — every client
//! that received an ID token in that session and registered a `backchannel_logout_uri` gets
//! a signed logout token. This module decides who and signs the tokens; delivery is the
//! bounded background sender's (`http::backchannel`), so a slow receiver never delays the
//! logout itself.

use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::Provider;
use crate::domain::{DomainError, new_id};
use crate::store::StoreError;

/// The `events` member that makes a JWT a logout token (§2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is good for: enough for the sender's retries.
pub const LOGOUT_TOKEN_TTL: Duration = Duration::minutes(2);

/// A logout token for one client, and where to post it.
#[derive(Clone, PartialEq, Eq)]
pub struct LogoutNotice {
    /// The client.
    pub client_id: String,
    /// Its registered `backchannel_logout_uri`.
    pub uri: String,
    /// The signed logout token.
    pub token: String,
}

impl std::fmt::Debug for LogoutNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutNotice")
            .field("client_id", &self.client_id)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl Provider<'_> {
    /// The logout tokens for the clients of session `session` (its hash, hex) of passkey
    /// `credential_id`, or of every session of that passkey with `None`; the records that
    /// named them are removed, so each session end is announced once.
    ///
    /// # Errors
    /// Storage or signing failures.
    pub fn logout_notices(
        &self,
        credential_id: &str,
        session: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Vec<LogoutNotice>, DomainError> {
        let rows = self.store.session_clients(credential_id, session)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut notices = Vec::with_capacity(rows.len());
        for (_, rp) in &rows {
            let Some(client) = self.store.clients().cached(&rp.client_id)? else {
                continue;
            };
            let Some(uri) = client.security.backchannel_logout_uri.clone() else {
                continue;
            };
            let claims = json!({
                "iss": self.issuer,
                "aud": client.id,
                "iat": now.unix_timestamp(),
                "exp": (now + LOGOUT_TOKEN_TTL).unix_timestamp(),
                "jti": new_id(self.rng)?,
                "sub": self.sub_for(&client, &rp.citizen_id),
                "sid": rp.sid,
                "events": { LOGOUT_EVENT: {} },
            });
            let token =
                crate::crypto::jwt::sign(self.keys.tokens().signing(now), "logout+jwt", &claims)
                    .map_err(|e| DomainError::Internal(format!("signing logout token: {e}")))?;
            notices.push(LogoutNotice {
                client_id: client.id,
                uri,
                token,
            });
        }
        self.store.transact(|tx| {
            for (key, _) in &rows {
                tx.delete(crate::store::oidc::SESSION_CLIENTS, key);
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(notices)
    }
}
