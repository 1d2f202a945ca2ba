//! The authorization endpoint's rules: request validation (RFC 6749 §4.1, OIDC Core §3.1.2,
//! PKCE S256 for everyone), the login / consent decision, and code issue.

use time::OffsetDateTime;

use super::model::{AuthorizationCode, Consent, LoginRef, PendingAuthorization};
use super::{
    CODE_TTL, PENDING_TTL, Provider, acr_for, acr_satisfies, amr_for, opaque_token,
    parse_bounded_list, sha256,
};
use crate::crypto::digest::hex;
use crate::domain::audit::{Actor, Entry, event};
use crate::domain::clients::{Client, GrantType};
use crate::domain::passkeys::Session;
use crate::domain::{DomainError, new_id};
use crate::store::StoreError;
use serde_json::json;

/// Raw authorization request parameters.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct AuthorizeParams {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// Client id.
    pub client_id: Option<String>,
    /// Must equal a registered URI exactly.
    pub redirect_uri: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// Echoed to the client.
    pub state: Option<String>,
    /// Put into the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge.
    pub code_challenge: Option<String>,
    /// Must be `S256`.
    pub code_challenge_method: Option<String>,
    /// `none`, `login`, `consent` (space-separated).
    pub prompt: Option<String>,
    /// Maximum authentication age in seconds.
    pub max_age: Option<String>,
    /// Requested assurance levels.
    pub acr_values: Option<String>,
    /// Only `query` is supported.
    pub response_mode: Option<String>,
    /// Request objects are not supported.
    pub request: Option<String>,
    /// A pushed request's reference (RFC 9126), only with `client_id`.
    pub request_uri: Option<String>,
    /// The thumbprint of the DPoP key that must redeem the code (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
}

/// Why an authorization request failed, and how to tell.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The redirect URI cannot be trusted: show a page, never redirect.
    Page(&'static str),
    /// Redirect the error to the client (RFC 6749 §4.1.2.1).
    Redirect(ErrorRedirect),
    /// Storage or randomness failure.
    Internal(DomainError),
}

/// An error to send to the client's redirect URI.
#[derive(Debug)]
pub struct ErrorRedirect {
    /// Registered redirect URI.
    pub redirect_uri: String,
    /// OAuth/OIDC error code.
    pub error: &'static str,
    /// Human-readable description.
    pub description: String,
    /// Client state.
    pub state: Option<String>,
}

impl From<DomainError> for AuthorizeError {
    fn from(e: DomainError) -> Self {
        Self::Internal(e)
    }
}

impl From<crate::store::StoreError> for AuthorizeError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// What the citizen's browser must do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Log in (again), then come back.
    Login,
    /// Show the consent page.
    Consent,
    /// Everything is settled: issue the code.
    Issue,
}

fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An RFC 7638 SHA-256 thumbprint: 43 base64url characters.
pub fn is_thumbprint(s: &str) -> bool {
    s.len() == 43
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks a PKCE verifier against the stored S256 challenge.
pub fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    use subtle::ConstantTimeEq;
    is_pkce_value(verifier)
        && bool::from(
            super::s256(verifier.as_bytes())
                .as_bytes()
                .ct_eq(challenge.as_bytes()),
        )
}

impl Provider<'_> {
    /// Validates a request against its client. Until the client and redirect URI are known
    /// to be good, errors are pages; after that they are redirects.
    ///
    /// # Errors
    /// [`AuthorizeError`].
    pub fn validate_authorization(
        &self,
        p: &AuthorizeParams,
        client: Option<&Client>,
        now: OffsetDateTime,
    ) -> Result<PendingAuthorization, AuthorizeError> {
        self.validate_request(p, client, false, now)
    }

    /// [`Self::validate_authorization`] for a request that was `pushed` to the PAR endpoint
    /// or not: a client that must push its requests is refused the front channel.
    pub(super) fn validate_request(
        &self,
        p: &AuthorizeParams,
        client: Option<&Client>,
        pushed: bool,
        now: OffsetDateTime,
    ) -> Result<PendingAuthorization, AuthorizeError> {
        let client = client.ok_or(AuthorizeError::Page(
            "The application that sent you here is not registered with civis.",
        ))?;
        let redirect_uri = p
            .redirect_uri
            .as_deref()
            .filter(|r| client.redirect_uris.iter().any(|x| x == r))
            .ok_or(AuthorizeError::Page(
                "The application sent you here with a return address that is not registered with civis.",
            ))?
            .to_owned();
        let fail = |error: &'static str, description: &str| {
            Err(AuthorizeError::Redirect(ErrorRedirect {
                redirect_uri: redirect_uri.clone(),
                error,
                description: description.to_owned(),
                state: p.state.clone(),
            }))
        };
        if p.request.is_some() {
            return fail("request_not_supported", "request objects are not supported");
        }
        if p.request_uri.is_some() {
            return fail(
                "invalid_request",
                "request_uri is only for requests pushed to the PAR endpoint",
            );
        }
        if !pushed && client.security.require_par {
            let rule = if client.security.fapi2 {
                "profile fapi2 requires pushed authorization requests: push the request to \
                 the PAR endpoint and send only client_id and request_uri here"
            } else {
                "this client must use pushed authorization requests \
                 (require_pushed_authorization_requests)"
            };
            return fail("invalid_request", rule);
        }
        if p.response_mode.as_deref().is_some_and(|m| m != "query") {
            return fail("invalid_request", "only response_mode=query is supported");
        }
        match p.response_type.as_deref() {
            Some("code") => {}
            None => return fail("invalid_request", "response_type is required"),
            Some(_) => {
                return fail(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                );
            }
        }
        if !client.allows_grant(GrantType::AuthorizationCode) {
            return fail(
                "unauthorized_client",
                "this client may not use the authorization code flow",
            );
        }
        let Some(scopes) = parse_bounded_list(p.scope.as_deref().unwrap_or_default()) else {
            return fail(
                "invalid_scope",
                "scope is too long (at most 2048 bytes and 64 values)",
            );
        };
        if scopes.is_empty() {
            return fail("invalid_scope", "scope is required");
        }
        if let Some(bad) = scopes.iter().find(|s| !client.allows_scope(s)) {
            return fail(
                "invalid_scope",
                &format!("scope {bad} is not allowed for this client"),
            );
        }
        match (
            p.code_challenge.as_deref(),
            p.code_challenge_method.as_deref(),
        ) {
            (Some(c), Some("S256")) if c.len() == 43 && is_pkce_value(c) => {}
            (None, _) => {
                return fail(
                    "invalid_request",
                    "PKCE is required: send code_challenge with code_challenge_method=S256",
                );
            }
            (Some(_), Some("S256")) => {
                return fail("invalid_request", "code_challenge is malformed");
            }
            (Some(_), _) => return fail("invalid_request", "code_challenge_method must be S256"),
        }
        let Some(prompt) = parse_bounded_list(p.prompt.as_deref().unwrap_or_default()) else {
            return fail("invalid_request", "prompt is too long");
        };
        if let Some(bad) = prompt
            .iter()
            .find(|v| !matches!(v.as_str(), "none" | "login" | "consent" | "select_account"))
        {
            return fail(
                "invalid_request",
                &format!("unsupported prompt value {bad}"),
            );
        }
        let prompt_none = prompt.iter().any(|v| v == "none");
        if prompt_none && prompt.len() > 1 {
            return fail(
                "invalid_request",
                "prompt=none cannot be combined with other values",
            );
        }
        let max_age = match p.max_age.as_deref() {
            None => None,
            Some(s) => match s.parse::<i64>() {
                Ok(v) if v >= 0 => Some(v),
                _ => return fail("invalid_request", "max_age must be a non-negative integer"),
            },
        };
        let Some(acr_values) = parse_bounded_list(p.acr_values.as_deref().unwrap_or_default())
        else {
            return fail("invalid_request", "acr_values is too long");
        };
        let nonce = p.nonce.clone().filter(|n| !n.is_empty());
        if nonce.as_ref().is_some_and(|n| n.len() > 512)
            || p.state.as_ref().is_some_and(|s| s.len() > 2048)
        {
            return fail("invalid_request", "nonce or state is too long");
        }
        let dpop_jkt = p.dpop_jkt.clone();
        if dpop_jkt.as_deref().is_some_and(|j| !is_thumbprint(j)) {
            return fail(
                "invalid_request",
                "dpop_jkt must be a base64url SHA-256 JWK thumbprint (43 characters)",
            );
        }
        Ok(PendingAuthorization {
            dpop_jkt,
            client_id: client.id.clone(),
            redirect_uri,
            scopes,
            state: p.state.clone(),
            nonce,
            code_challenge: p.code_challenge.clone().unwrap_or_default(),
            prompt_login: prompt.iter().any(|v| v == "login" || v == "select_account"),
            prompt_consent: prompt.iter().any(|v| v == "consent"),
            prompt_none,
            max_age,
            acr_values,
            created_at: now,
            expires_at: now + PENDING_TTL,
            browser: None,
        })
    }

    /// Stores a validated request, bound to the browser that holds `browser_secret` (a
    /// random value in its cookie), and returns its id.
    ///
    /// # Errors
    /// Storage failures.
    pub fn park(
        &self,
        pending: &PendingAuthorization,
        browser_secret: &str,
    ) -> Result<String, AuthorizeError> {
        let id = super::opaque_token(self.rng)?;
        let bound = PendingAuthorization {
            browser: Some(hex(&sha256(browser_secret.as_bytes()))),
            ..pending.clone()
        };
        self.store
            .transact(|tx| tx.authorizations().insert_pending(&id, &bound))?;
        Ok(id)
    }

    /// Whether the browser presenting `browser_secret` is the one that sent the request.
    /// Without this, anyone could start a request (with their own PKCE challenge and
    /// state) and lure a victim into finishing it by sending them the continue link.
    pub fn started_in(&self, p: &PendingAuthorization, browser_secret: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        match (&p.browser, browser_secret) {
            // Parked before requests were bound (an upgrade within their 10 minutes).
            (None, _) => true,
            (Some(bound), Some(secret)) => {
                let presented = hex(&sha256(secret.as_bytes()));
                bound.as_bytes().ct_eq(presented.as_bytes()).into()
            }
            (Some(_), None) => false,
        }
    }

    /// A parked request, if it is still there and has not expired.
    ///
    /// # Errors
    /// Storage failures.
    pub fn pending(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, DomainError> {
        Ok(self
            .store
            .authorizations()
            .pending(id)?
            .filter(|p| p.expires_at > now))
    }

    /// Removes a parked request and returns it if it was there and has not expired: the
    /// request is answered once.
    ///
    /// # Errors
    /// Storage failures.
    pub fn take_pending(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PendingAuthorization>, DomainError> {
        Ok(self
            .store
            .transact(|tx| tx.authorizations().take_pending(id))?
            .filter(|p| p.expires_at > now))
    }

    /// Decides what the browser does next for a request and the current session.
    ///
    /// # Errors
    /// Redirect errors `login_required`, `consent_required` (for `prompt=none`) and
    /// `unmet_authentication_requirements`.
    pub fn decide(
        &self,
        p: &PendingAuthorization,
        session: Option<&Session>,
        now: OffsetDateTime,
    ) -> Result<Next, AuthorizeError> {
        let fail = |error: &'static str, description: &str| {
            Err(AuthorizeError::Redirect(ErrorRedirect {
                redirect_uri: p.redirect_uri.clone(),
                error,
                description: description.to_owned(),
                state: p.state.clone(),
            }))
        };
        let fresh_enough = |s: &Session| {
            (!p.prompt_login || s.auth_time >= p.created_at)
                && p.max_age
                    .is_none_or(|m| (now - s.auth_time).whole_seconds() <= m)
        };
        let Some(session) = session.filter(|s| fresh_enough(s)) else {
            return if p.prompt_none {
                fail("login_required", "the citizen must log in")
            } else {
                Ok(Next::Login)
            };
        };
        if !p.acr_values.is_empty() {
            let reached = acr_for(session.user_verified, session.hardware_attested);
            if !p.acr_values.iter().any(|r| acr_satisfies(reached, r)) {
                return fail(
                    "unmet_authentication_requirements",
                    "none of the requested acr_values can be met",
                );
            }
        }
        let consented = self
            .store
            .consents()
            .get(&session.citizen_id, &p.client_id)?
            .is_some_and(|c| p.scopes.iter().all(|s| c.scopes.contains(s)));
        if consented && !p.prompt_consent {
            return Ok(Next::Issue);
        }
        if p.prompt_none {
            return fail(
                "consent_required",
                "the citizen has not consented to these scopes",
            );
        }
        Ok(Next::Consent)
    }

    /// Records the citizen's consent (adding to any earlier one).
    ///
    /// # Errors
    /// Storage failures.
    pub fn remember_consent(
        &self,
        citizen_id: &str,
        p: &PendingAuthorization,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        let entry = Entry::new(
            event::CONSENT_GIVEN,
            Actor::Citizen(citizen_id),
            Some(citizen_id),
            json!({"client_id": p.client_id, "scopes": p.scopes}),
            now,
            self.rng,
        )?;
        Ok(self.store.transact(|tx| {
            let earlier = tx.consents().get(citizen_id, &p.client_id)?;
            let mut scopes = earlier
                .as_ref()
                .map(|c| c.scopes.clone())
                .unwrap_or_default();
            for s in &p.scopes {
                if !scopes.contains(s) {
                    scopes.push(s.clone());
                }
            }
            let consent = Consent {
                scopes,
                granted_at: now,
                since: earlier.map_or(now, |c| c.since),
            };
            tx.consents().put(citizen_id, &p.client_id, &consent);
            entry.append(tx)?;
            Ok::<_, StoreError>(())
        })?)
    }

    /// Withdraws a citizen's consent for a client. Every grant and code made under it dies
    /// with it ([`super::liveness`]): the client's refresh and access tokens stop working at
    /// once, and a later consent does not revive them.
    ///
    /// # Errors
    /// Storage failures.
    pub fn revoke_consent(
        &self,
        citizen_id: &str,
        client_id: &str,
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        let entry = Entry::new(
            event::CONSENT_WITHDRAWN,
            Actor::Citizen(citizen_id),
            Some(citizen_id),
            json!({"client_id": client_id}),
            now,
            self.rng,
        )?;
        Ok(self.store.transact(|tx| {
            if tx.consents().get(citizen_id, client_id)?.is_some() {
                tx.consents().delete(citizen_id, client_id);
                entry.append(tx)?;
            }
            Ok::<_, StoreError>(())
        })?)
    }

    /// Issues a single-use code bound to the client, redirect URI, PKCE challenge, nonce and
    /// session, and returns the redirect (with `code`, `state` and `iss`).
    ///
    /// # Errors
    /// Storage or randomness failures.
    pub fn issue_code(
        &self,
        p: &PendingAuthorization,
        session: &Session,
        session_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<String, DomainError> {
        let code = opaque_token(self.rng)?;
        let record = AuthorizationCode {
            dpop_jkt: p.dpop_jkt.clone(),
            grant_id: new_id(self.rng)?,
            client_id: p.client_id.clone(),
            redirect_uri: p.redirect_uri.clone(),
            code_challenge: p.code_challenge.clone(),
            nonce: p.nonce.clone(),
            scopes: p.scopes.clone(),
            citizen_id: session.citizen_id.clone(),
            sid: super::session_id(self.keys, session_hash, &p.client_id),
            login: Some(LoginRef {
                credential_id: session.credential_id.clone(),
                session: hex(session_hash),
            }),
            auth_time: session.auth_time,
            acr: acr_for(session.user_verified, session.hardware_attested).to_owned(),
            amr: amr_for(session.user_verified, session.hardware_attested),
            issued_at: now,
            expires_at: now + CODE_TTL,
        };
        let hash = sha256(code.as_bytes());
        self.store
            .transact(|tx| tx.authorizations().insert_code(&hash, &record))?;
        let mut url = url::Url::parse(&p.redirect_uri).map_err(|e| {
            DomainError::Internal(format!("registered redirect_uri unparsable: {e}"))
        })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("code", &code);
            if let Some(s) = &p.state {
                q.append_pair("state", s);
            }
            q.append_pair("iss", self.issuer);
        }
        Ok(url.into())
    }
}

/// The redirect URL for an error (`error`, `error_description`, `state`, `iss`).
pub fn error_redirect_url(e: &ErrorRedirect, issuer: &str) -> Option<String> {
    let mut url = url::Url::parse(&e.redirect_uri).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", e.error);
        q.append_pair("error_description", &e.description);
        if let Some(s) = &e.state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", issuer);
    }
    Some(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_verifier_rules() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let c = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_ok(v, c));
        assert!(!pkce_ok("short", c));
        assert!(!pkce_ok(&v.replace('d', "e"), c));
        assert!(
            !pkce_ok(c, c),
            "the challenge itself is not a verifier for itself"
        );
    }
}
