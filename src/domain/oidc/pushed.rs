//! Pushed authorization requests (RFC 9126): a client sends its authorization request over
//! the back channel, authenticated, and gets a `request_uri` that is short-lived, used once
//! and only by that client. Clients registered with `require_pushed_authorization_requests`
//! (and every FAPI 2.0 client) may start `/authorize` no other way.

use time::{Duration, OffsetDateTime};

use super::authorize::{AuthorizeError, AuthorizeParams};
use super::model::PendingAuthorization;
use super::{PENDING_TTL, Provider, opaque_token, sha256};
use crate::domain::DomainError;
use crate::domain::clients::Client;

/// How long a `request_uri` may wait for the browser (RFC 9126 §2.2 suggests 5 to 600 s).
pub const PUSHED_TTL: Duration = Duration::seconds(60);
/// The prefix of every `request_uri` civis issues (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// Why a pushed request is refused (RFC 6749 §5.2 JSON at the PAR endpoint).
#[derive(Debug)]
pub enum PushError {
    /// The authorization endpoint's error code and a description.
    Invalid {
        /// `invalid_request`, `invalid_scope`, `unauthorized_client`, …
        error: &'static str,
        /// For the client.
        description: String,
    },
    /// Storage or randomness failed.
    Internal(DomainError),
}

/// A pushed request as the PAR endpoint answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The `request_uri` to send the browser to `/authorize` with.
    pub request_uri: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
}

const GONE: &str = "This sign-in request has expired or was already used. Go back to the \
                    application and start again.";

impl Provider<'_> {
    /// Validates a pushed request of the authenticated `client` with the authorization
    /// endpoint's rules and stores it under a new `request_uri`.
    ///
    /// # Errors
    /// [`PushError`].
    pub fn push_authorization(
        &self,
        client: &Client,
        params: &AuthorizeParams,
        now: OffsetDateTime,
    ) -> Result<Pushed, PushError> {
        let invalid = |error, description: &str| PushError::Invalid {
            error,
            description: description.to_owned(),
        };
        if params.request_uri.is_some() {
            return Err(invalid(
                "invalid_request",
                "request_uri must not be sent to the PAR endpoint",
            ));
        }
        if params.client_id.as_deref().is_some_and(|c| c != client.id) {
            return Err(invalid(
                "invalid_request",
                "client_id does not match the authenticated client",
            ));
        }
        let pending = self
            .validate_request(params, Some(client), true, now)
            .map_err(|e| match e {
                AuthorizeError::Page(_) => invalid(
                    "invalid_request",
                    "redirect_uri is required and must be one the client registered",
                ),
                AuthorizeError::Redirect(r) => PushError::Invalid {
                    error: r.error,
                    description: r.description,
                },
                AuthorizeError::Internal(e) => PushError::Internal(e),
            })?;
        let value = opaque_token(self.rng).map_err(PushError::Internal)?;
        let stored = PendingAuthorization {
            expires_at: now + PUSHED_TTL,
            ..pending
        };
        self.store
            .transact(|tx| {
                tx.authorizations()
                    .insert_pushed(&sha256(value.as_bytes()), &stored)
            })
            .map_err(|e| PushError::Internal(e.into()))?;
        Ok(Pushed {
            request_uri: format!("{REQUEST_URI_PREFIX}{value}"),
            expires_in: PUSHED_TTL.whole_seconds(),
        })
    }

    /// The request `/authorize` was sent with: the pushed one its `request_uri` names
    /// (taken: used once, by the client it was pushed by, before it expires; the other
    /// query parameters are ignored, RFC 9126 §4), or the query itself, validated.
    ///
    /// # Errors
    /// [`AuthorizeError`]: an unusable `request_uri` is a page (its redirect URI is inside
    /// the request, so there is nowhere trusted to redirect to).
    pub fn authorization_request(
        &self,
        params: &AuthorizeParams,
        client: Option<&Client>,
        now: OffsetDateTime,
    ) -> Result<PendingAuthorization, AuthorizeError> {
        let Some(uri) = params.request_uri.as_deref() else {
            return self.validate_request(params, client, false, now);
        };
        let client = client.ok_or(AuthorizeError::Page(
            "The application that sent you here is not registered with civis.",
        ))?;
        let Some(value) = uri.strip_prefix(REQUEST_URI_PREFIX) else {
            return Err(AuthorizeError::Page(GONE));
        };
        let hash = sha256(value.as_bytes());
        let pushed = self
            .store
            .transact(|tx| tx.authorizations().take_pushed(&hash))?
            .filter(|p| p.expires_at > now && p.client_id == client.id)
            .ok_or(AuthorizeError::Page(GONE))?;
        Ok(PendingAuthorization {
            created_at: now,
            expires_at: now + PENDING_TTL,
            ..pushed
        })
    }
}
