//! The WebAuthn ceremony endpoints behind the enrolment and login pages, and the session.

use std::net::IpAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse,
};

use super::client_addr::ClientAddr;
use super::error::{ApiError, Result};
use super::extract::ApiJson;
use super::state::AppState;
use super::throttle::Purpose;
use crate::domain::DomainError;
use crate::domain::passkeys::SessionToken;

/// Session cookie. `__Host-` binds it to this exact origin (Secure, Path=/, no Domain).
pub const SESSION_COOKIE: &str = "__Host-civis_session";

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/enrol/start", post(enrol_start))
        .route("/enrol/finish", post(enrol_finish))
        .route("/login/start", post(login_start))
        .route("/login/finish", post(login_finish))
        .route("/session", get(session))
        .route("/logout", post(logout))
}

/// Takes a `purpose` throttle token for the client's address, or answers 429.
pub(super) fn throttle(state: &AppState, purpose: Purpose, ip: IpAddr) -> Result<()> {
    state
        .throttle
        .take(purpose, ip, Instant::now())
        .map_err(ApiError::TooManyRequests)
}

/// Answers 429 while the client's `purpose` bucket is empty, taking nothing: successful
/// attempts cost nothing, failed ones are charged by [`charge_on_refusal`].
pub(super) fn refuse_while_exhausted(state: &AppState, purpose: Purpose, ip: IpAddr) -> Result<()> {
    state
        .throttle
        .check(purpose, ip, Instant::now())
        .map_err(ApiError::TooManyRequests)
}

/// Charges the client's address for a refused attempt, passing the error through.
fn charge_on_refusal<T>(
    state: &AppState,
    purpose: Purpose,
    ip: IpAddr,
    r: Result<T, DomainError>,
) -> Result<T> {
    if matches!(r, Err(DomainError::Refused(_))) {
        let _ = state.throttle.take(purpose, ip, Instant::now());
    }
    Ok(r?)
}

/// Refuses state-changing requests that a browser marks as coming from another origin.
/// Non-browser clients send no `Origin` and pass; WebAuthn itself binds the origin too.
pub struct SameOrigin;

impl FromRequestParts<AppState> for SameOrigin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        match parts.headers.get(header::ORIGIN) {
            Some(o) if o.as_bytes() != state.public_origin.as_bytes() => {
                Err(ApiError::Forbidden("cross-origin request"))
            }
            _ => Ok(Self),
        }
    }
}

/// Body of `/enrol/start`.
#[derive(Debug, Deserialize)]
pub struct EnrolStart {
    /// The code from the enrolment link.
    pub code: String,
}

/// A started ceremony: its id and the options for `navigator.credentials`.
#[derive(Debug, Serialize)]
pub struct Started<T> {
    /// Ceremony id to send back with the result.
    pub ceremony: String,
    /// WebAuthn options.
    pub options: T,
}

async fn enrol_start(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    _o: SameOrigin,
    ApiJson(body): ApiJson<EnrolStart>,
) -> Result<Response> {
    // Wrong codes are charged; a start parks a ceremony, so starts have their own bucket.
    refuse_while_exhausted(&state, Purpose::Enrolment, ip)?;
    throttle(&state, Purpose::EnrolmentStart, ip)?;
    let r = state
        .run(move |s| s.passkeys().start_enrolment(&body.code, s.now()))
        .await;
    let (ceremony, options) = charge_on_refusal(&state, Purpose::Enrolment, ip, r)?;
    Ok(axum::Json(Started::<CreationChallengeResponse> { ceremony, options }).into_response())
}

/// Body of `/enrol/finish`.
#[derive(Debug, Deserialize)]
pub struct EnrolFinish {
    /// Ceremony id from `/enrol/start`.
    pub ceremony: String,
    /// The browser's `PublicKeyCredential` (attestation response).
    pub credential: RegisterPublicKeyCredential,
}

async fn enrol_finish(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    _o: SameOrigin,
    ApiJson(body): ApiJson<EnrolFinish>,
) -> Result<Response> {
    let r = state
        .run(move |s| {
            s.passkeys()
                .finish_enrolment(&body.ceremony, &body.credential, s.now())
        })
        .await;
    let summary = charge_on_refusal(&state, Purpose::Enrolment, ip, r)?;
    tracing::info!(passkey_id = %summary.id, "passkey enrolled");
    let body = serde_json::json!({ "status": "created", "passkey_id": summary.id });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

async fn login_start(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    _o: SameOrigin,
) -> Result<Response> {
    // Every assertion needs a ceremony: while refused logins have used up this address's
    // bucket, no new one starts. Successful logins cost nothing there; the start itself
    // parks a ceremony, so starts have their own, larger bucket.
    refuse_while_exhausted(&state, Purpose::Login, ip)?;
    throttle(&state, Purpose::LoginStart, ip)?;
    let (ceremony, options) = state.run(|s| s.passkeys().start_login(s.now())).await?;
    Ok(axum::Json(Started::<RequestChallengeResponse> { ceremony, options }).into_response())
}

/// Body of `/login/finish`.
#[derive(Debug, Deserialize)]
pub struct LoginFinish {
    /// Ceremony id from `/login/start`.
    pub ceremony: String,
    /// The browser's `PublicKeyCredential` (assertion).
    pub credential: PublicKeyCredential,
    /// Where to go afterwards: a path on this site only.
    pub return_to: Option<String>,
}

/// A local path (`/…`, not `//…`, no backslash) or nothing: never an open redirect.
pub fn local_path(p: Option<&str>) -> Option<String> {
    p.filter(|p| p.starts_with('/') && !p.starts_with("//") && !p.contains('\\'))
        .filter(|p| !p.chars().any(char::is_control))
        .map(str::to_owned)
}

async fn login_finish(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    _o: SameOrigin,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginFinish>,
) -> Result<Response> {
    let (ceremony, credential) = (body.ceremony, body.credential);
    let previous = session_token(&headers);
    let r = state
        .run(move |s| {
            s.passkeys()
                .finish_login(&ceremony, &credential, previous.as_deref(), s.now())
        })
        .await;
    let login = charge_on_refusal(&state, Purpose::Login, ip, r)?;
    tracing::info!(citizen_id = %login.citizen.id, passkey_id = %login.session.credential_id, "login");
    state.metrics.logins.inc();
    let answer = serde_json::json!({
        "status": "signed_in",
        "display_name": format!("{} {}", login.citizen.given_name, login.citizen.family_name),
        "redirect": local_path(body.return_to.as_deref()),
    });
    let mut resp = axum::Json(answer).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(
            &login.token,
            crate::domain::passkeys::SESSION_TTL.whole_seconds(),
        )?,
    );
    Ok(resp)
}

fn session_cookie(token: &SessionToken, max_age: i64) -> Result<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax",
        token.0.as_str()
    ))
    .map_err(|_| ApiError::Unavailable("session cookie".into()))
}

/// The session token from the request's cookies, if any.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `name` in the request, if any.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The current session as JSON (for pages and tests).
#[derive(Debug, Serialize)]
struct SessionView {
    citizen_id: String,
    passkey_id: String,
    #[serde(with = "time::serde::rfc3339")]
    auth_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    user_verified: bool,
}

async fn session(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    let token = session_token(&headers).ok_or(ApiError::Unauthorized)?;
    let s = state
        .run(move |s| s.passkeys().session(&token, s.now()))
        .await?
        .ok_or(ApiError::Unauthorized)?;
    Ok(axum::Json(SessionView {
        citizen_id: s.citizen_id,
        passkey_id: s.credential_id,
        auth_time: s.auth_time,
        expires_at: s.expires_at,
        user_verified: s.user_verified,
    })
    .into_response())
}

async fn logout(
    State(state): State<AppState>,
    _o: SameOrigin,
    headers: HeaderMap,
) -> Result<Response> {
    if let Some(token) = session_token(&headers) {
        state
            .run(move |s| super::logout::end_browser_session(s, &token))
            .await?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-civis_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
        ),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_local_paths_are_return_addresses() {
        for ok in ["/", "/authorize/continue?request=abc", "/activity"] {
            assert_eq!(local_path(Some(ok)).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "\\\\evil.example",
            "/a\r\nSet-Cookie: x=y",
            "/a\tb",
            "evil.example",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(local_path(None), None);
    }
}
