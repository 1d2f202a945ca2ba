//! The authorization endpoint's pages: `/authorize` (GET and POST), the return from login
//! (`/authorize/continue`), the consent page with **Allow** / **Deny**, and consent withdrawal.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use time::OffsetDateTime;

use super::client_addr::ClientAddr;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use super::oidc::{FormRefusals, csrf, current_session, form_session, origin_of};
use super::pages::{PageData, page_with_form_targets, problem_page, too_many_attempts};
use super::passkey::cookie;
use super::state::AppState;
use super::throttle::Purpose;
use crate::domain::clients::Client;
use crate::domain::oidc::authorize::{AuthorizeError, AuthorizeParams, Next, error_redirect_url};
use crate::domain::oidc::model::PendingAuthorization;
use crate::domain::oidc::{PENDING_TTL, opaque_token};
use crate::domain::passkeys::Session;

/// Binds authorization requests to the browser that sent them: a random value, reused for
/// every request of that browser while one is pending (so tabs do not interfere).
const BROWSER_COOKIE: &str = "__Host-civis_authz";

fn authorize_error(state: &AppState, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(msg) => problem_page(StatusCode::BAD_REQUEST, "Cannot continue", msg),
        AuthorizeError::Redirect(r) => match error_redirect_url(&r, &state.issuer) {
            Some(url) => Redirect::to(&url).into_response(),
            None => problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot continue",
                "The application's return address is malformed.",
            ),
        },
        AuthorizeError::Internal(e) => ApiError::from(e).into_response(),
    }
}

/// Every authorization request parks a record until it expires, so requests are limited
/// per client network; a browser that signs in at a human pace never meets the limit.
fn throttled(state: &AppState, ip: IpAddr) -> Option<Response> {
    state
        .throttle
        .take(Purpose::Authorize, ip, Instant::now())
        .err()
        .map(too_many_attempts)
}

pub(super) async fn authorize_get(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    q: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Some(r) = throttled(&state, ip) {
        return r;
    }
    match q {
        Ok(Query(p)) => state.run(move |s| authorize(s, &headers, p)).await,
        Err(_) => problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "The sign-in request is malformed.",
        ),
    }
}

pub(super) async fn authorize_post(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    headers: HeaderMap,
    f: Result<axum::Form<AuthorizeParams>, axum::extract::rejection::FormRejection>,
) -> Response {
    if let Some(r) = throttled(&state, ip) {
        return r;
    }
    match f {
        Ok(axum::Form(p)) => state.run(move |s| authorize(s, &headers, p)).await,
        Err(_) => problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "The sign-in request is malformed.",
        ),
    }
}

fn authorize(state: &AppState, headers: &HeaderMap, p: AuthorizeParams) -> Response {
    let now = state.now();
    let client = match p
        .client_id
        .as_deref()
        .map(|id| state.clients().get(id))
        .transpose()
    {
        Ok(c) => c.flatten(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let prov = state.provider();
    let pending = match prov.authorization_request(&p, client.as_ref(), now) {
        Ok(p) => p,
        Err(e) => return authorize_error(state, e),
    };
    // Reused only if it looks like one of ours; anything else is replaced.
    let presented = cookie(headers, BROWSER_COOKIE).filter(|v| {
        v.len() == 43
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let browser = match presented {
        Some(secret) => secret,
        None => match opaque_token(state.rng.as_ref()) {
            Ok(secret) => secret,
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    match prov.park(&pending, &browser) {
        Ok(id) => {
            let mut resp = proceed(state, headers, &id, &pending, client.as_ref(), now);
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{BROWSER_COOKIE}={browser}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax",
                PENDING_TTL.whole_seconds()
            )) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e) => authorize_error(state, e),
    }
}

/// Query of `/authorize/continue`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ContinueQuery {
    request: String,
}

pub(super) async fn authorize_continue(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ContinueQuery>,
) -> Response {
    state
        .run(move |s| continue_after_login(s, &headers, &q))
        .await
}

fn continue_after_login(state: &AppState, headers: &HeaderMap, q: &ContinueQuery) -> Response {
    let now = state.now();
    let browser = cookie(headers, BROWSER_COOKIE);
    match state.provider().pending(&q.request, now) {
        Ok(Some(p)) if !state.provider().started_in(&p, browser.as_deref()) => {
            tracing::warn!(client = %p.client_id, "authorization request continued in another browser");
            problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot continue",
                "This sign-in was started in another browser. If you did not start it, \
                 close this page. Otherwise go back to the application and start again.",
            )
        }
        Ok(Some(p)) => {
            let client = match state.clients().get(&p.client_id) {
                Ok(c) => c,
                Err(e) => return ApiError::from(e).into_response(),
            };
            proceed(state, headers, &q.request, &p, client.as_ref(), now)
        }
        Ok(_) => problem_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in took too long. Please go back to the application and start again.",
        ),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    p: &PendingAuthorization,
    client: Option<&Client>,
    now: OffsetDateTime,
) -> Response {
    let session = match current_session(state, headers, now) {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match state
        .provider()
        .decide(p, session.as_ref().map(|s| &s.0), now)
    {
        Ok(Next::Login) => {
            let back = format!("/authorize/continue?request={id}");
            let url = format!(
                "/login?return_to={}",
                url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
            );
            Redirect::to(&url).into_response()
        }
        Ok(Next::Consent) => match (session, client) {
            (Some((_, hash)), Some(c)) => consent_page(state, id, p, c, &hash),
            _ => problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot continue",
                "Please start again from the application.",
            ),
        },
        Ok(Next::Issue) => match session {
            Some((s, hash)) => issue(state, id, &s, &hash, now),
            None => problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot continue",
                "Please start again from the application.",
            ),
        },
        Err(e) => authorize_error(state, e),
    }
}

fn issue(
    state: &AppState,
    id: &str,
    s: &Session,
    hash: &[u8; 32],
    now: OffsetDateTime,
) -> Response {
    let p = match state.provider().take_pending(id, now) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Already done",
                "This sign-in was already completed. Please go back to the application.",
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    match state.provider().issue_code(&p, s, hash, now) {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn scope_text(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are (a pseudonymous identifier)",
        "profile" => "Your name and date of birth",
        "email" => "Your e-mail address",
        "national_id" => "Your national identification number",
        "sign" => "Request signatures in your name (each one needs your approval)",
        "seal" => "Seal documents for the organisation",
        _ => "Other access",
    }
}

fn consent_page(
    state: &AppState,
    id: &str,
    p: &PendingAuthorization,
    client: &Client,
    hash: &[u8; 32],
) -> Response {
    let body = html! {
        p { strong { (client.name) } " asks to use your civis account. It will receive:" }
        ul {
            @for scope in &p.scopes {
                li { (scope_text(scope)) }
            }
        }
        form method="post" action="/authorize/consent" {
            input type="hidden" name="request" value=(id);
            input type="hidden" name="csrf" value=(csrf(state, "consent-csrf", hash, id));
            button type="submit" name="decision" value="allow" { "Allow" }
            button type="submit" name="decision" value="deny" class="secondary" { "Deny" }
        }
        p class="note" {
            "You can withdraw this later; civis remembers your answer for this application."
        }
    };
    let target = origin_of(&p.redirect_uri).unwrap_or_default();
    page_with_form_targets(
        StatusCode::OK,
        "Allow access?",
        PageData::default(),
        body,
        &[&target],
    )
}

/// Form of the consent page.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ConsentForm {
    request: String,
    csrf: String,
    decision: String,
}

pub(super) async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<axum::Form<ConsentForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(f)) = f else {
        return problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "The form was incomplete.",
        );
    };
    state.run(move |s| answer_consent(s, &headers, &f)).await
}

fn answer_consent(state: &AppState, headers: &HeaderMap, f: &ConsentForm) -> Response {
    const REFUSALS: FormRefusals = FormRefusals {
        signed_out: (
            StatusCode::BAD_REQUEST,
            "Signed out",
            "Your session has ended. Please start again from the application.",
        ),
        forged: (
            "Cannot continue",
            "This form was not issued for your session. Please start again.",
        ),
    };
    let now = state.now();
    let session = match form_session(
        state,
        headers,
        "consent-csrf",
        &f.request,
        &f.csrf,
        &REFUSALS,
    ) {
        Ok(s) => s,
        Err(page) => return *page,
    };
    let p = match state.provider().pending(&f.request, now) {
        Ok(Some(p)) => p,
        Ok(_) => {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in took too long. Please go back to the application and start again.",
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    match f.decision.as_str() {
        "allow" => {
            if let Err(e) = state
                .provider()
                .remember_consent(&session.0.citizen_id, &p, now)
            {
                return ApiError::from(e).into_response();
            }
            issue(state, &f.request, &session.0, &session.1, now)
        }
        _ => {
            let _ = state.provider().take_pending(&f.request, now);
            let e = crate::domain::oidc::authorize::ErrorRedirect {
                redirect_uri: p.redirect_uri.clone(),
                error: "access_denied",
                description: "the citizen denied the request".into(),
                state: p.state.clone(),
            };
            authorize_error(state, AuthorizeError::Redirect(e))
        }
    }
}

/// The signed-in citizen withdraws their consent for a client: every grant made under it
/// dies at once (the client's refresh and access tokens stop working), and the next
/// authorization asks again.
pub(super) async fn withdraw_consent(
    State(state): State<AppState>,
    _o: super::passkey::SameOrigin,
    headers: HeaderMap,
    ApiPath(client_id): ApiPath<String>,
) -> Response {
    state
        .run(move |state| {
            let now = state.now();
            match current_session(state, &headers, now) {
                Ok(Some((s, _))) => {
                    match state
                        .provider()
                        .revoke_consent(&s.citizen_id, &client_id, now)
                    {
                        Ok(()) => StatusCode::NO_CONTENT.into_response(),
                        Err(e) => ApiError::from(e).into_response(),
                    }
                }
                Ok(None) => ApiError::Unauthorized.into_response(),
                Err(e) => ApiError::from(e).into_response(),
            }
        })
        .await
}
