//! RP-initiated logout (`end_session_endpoint`): with an `id_token_hint` issued for the
//! browser's current session it logs out without asking; otherwise (no hint, or a hint of
//! another citizen, session or client, which any site could have collected) it shows a page
//! with the button **Log out**.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::error::ApiError;
use super::extract::ApiQuery;
use super::oidc::{FormRefusals, csrf, current_session, form_session, origin_of};
use super::pages::{PageData, page_with_form_targets, problem_page};
use super::passkey::session_token;
use super::state::AppState;
use crate::domain::clients::Client;
use crate::domain::oidc::verify::LogoutHint;

/// Parameters of RP-initiated logout.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct EndSessionParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
}

pub(super) async fn end_session_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<EndSessionParams>,
) -> Response {
    state.run(move |s| end_session(s, &headers, p)).await
}

pub(super) async fn end_session_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<axum::Form<EndSessionParams>, axum::extract::rejection::FormRejection>,
) -> Response {
    match f {
        Ok(axum::Form(p)) => state.run(move |s| end_session(s, &headers, p)).await,
        Err(_) => problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot log out",
            "The logout request is malformed.",
        ),
    }
}

/// A valid (possibly expired) ID token of ours and the client it names.
fn hinted_client(state: &AppState, hint: &str) -> Option<(LogoutHint, Client)> {
    let hint = state.provider().id_token_hint(hint)?;
    let client = state.clients().get(&hint.aud).ok().flatten()?;
    Some((hint, client))
}

/// Where to send the browser after logout: the requested address if it is registered
/// exactly for the client, with `state`. The error is the page to show instead.
fn logout_redirect(
    client: Option<&Client>,
    p: &EndSessionParams,
) -> Result<Option<String>, Box<Response>> {
    let Some(uri) = p.post_logout_redirect_uri.as_deref() else {
        return Ok(None);
    };
    let refuse = |msg: &str| Box::new(problem_page(StatusCode::BAD_REQUEST, "Cannot log out", msg));
    if !client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri)) {
        return Err(refuse(
            "The application asked to return to an address that is not registered with civis.",
        ));
    }
    let mut url = url::Url::parse(uri).map_err(|_| refuse("The return address is malformed."))?;
    if let Some(s) = &p.state {
        url.query_pairs_mut().append_pair("state", s);
    }
    Ok(Some(url.into()))
}

fn clear_session(state: &AppState, headers: &HeaderMap, mut resp: Response) -> Response {
    if let Some(token) = session_token(headers)
        && let Err(e) = end_browser_session(state, &token)
    {
        return ApiError::from(e).into_response();
    }
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-civis_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
        ),
    );
    resp
}

/// Ends the browser session of `token` and has every client that received an ID token in
/// it told so in the background (back-channel logout).
pub(super) fn end_browser_session(
    state: &AppState,
    token: &str,
) -> Result<(), crate::domain::DomainError> {
    let now = state.now();
    let ended = state.passkeys().session(token, now)?;
    state.passkeys().logout(token)?;
    if let Some(session) = ended {
        let hash = crate::crypto::digest::hex(&crate::domain::passkeys::session_hash(token));
        let notices = state
            .provider()
            .logout_notices(&session.credential_id, Some(&hash), now)?;
        state.logout_sender.send(notices);
    }
    Ok(())
}

fn logged_out(state: &AppState, headers: &HeaderMap, redirect: Option<String>) -> Response {
    tracing::info!("session ended (RP-initiated logout)");
    let resp = match redirect {
        Some(url) => Redirect::to(&url).into_response(),
        None => problem_page(
            StatusCode::OK,
            "Logged out",
            "You have been logged out of civis.",
        ),
    };
    clear_session(state, headers, resp)
}

fn end_session(state: &AppState, headers: &HeaderMap, p: EndSessionParams) -> Response {
    let now = state.now();
    let session = match current_session(state, headers, now) {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut client = None;
    if let Some(hint) = p.id_token_hint.as_deref() {
        let Some((hint, hinted)) = hinted_client(state, hint) else {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot log out",
                "The logout request carries an invalid token.",
            );
        };
        if p.client_id.as_deref().is_some_and(|c| c != hinted.id) {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot log out",
                "The logout request is inconsistent.",
            );
        }
        // The hint is the application's proof that it speaks for this session; with no
        // session there is nothing to end, and the application gets its redirect.
        let for_this_session = session.as_ref().is_none_or(|(s, hash)| {
            state
                .provider()
                .hint_matches_session(&hint, &hinted, s, hash)
        });
        if for_this_session {
            return match logout_redirect(Some(&hinted), &p) {
                Ok(r) => logged_out(state, headers, r),
                Err(page) => *page,
            };
        }
        tracing::info!(client = %hinted.id, "id_token_hint not of the current session: asking");
        client = Some(hinted);
    }
    // Without a hint of this session anyone could link here: ask the person.
    let client = match client {
        Some(c) => Some(c),
        None => p
            .client_id
            .as_deref()
            .and_then(|id| state.clients().get(id).ok().flatten()),
    };
    if let Err(page) = logout_redirect(client.as_ref(), &p) {
        return *page;
    }
    let Some((_, hash)) = session else {
        return problem_page(
            StatusCode::OK,
            "Logged out",
            "You are not logged in to civis.",
        );
    };
    let carried = [
        (
            "post_logout_redirect_uri",
            p.post_logout_redirect_uri.as_deref(),
        ),
        ("state", p.state.as_deref()),
        ("client_id", client.as_ref().map(|c| c.id.as_str())),
    ];
    let body = html! {
        p { "Do you want to log out of civis?" }
        form method="post" action="/end_session/confirm" {
            input type="hidden" name="csrf" value=(csrf(state, "logout-csrf", &hash, ""));
            @for (name, value) in carried {
                @if let Some(value) = value {
                    input type="hidden" name=(name) value=(value);
                }
            }
            button type="submit" { "Log out" }
        }
    };
    let target = p
        .post_logout_redirect_uri
        .as_deref()
        .and_then(origin_of)
        .unwrap_or_default();
    page_with_form_targets(
        StatusCode::OK,
        "Log out",
        PageData::default(),
        body,
        &[&target],
    )
}

/// Form of the logout confirmation.
#[derive(Debug, serde::Deserialize)]
pub(super) struct ConfirmForm {
    csrf: String,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
}

pub(super) async fn end_session_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<axum::Form<ConfirmForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(f)) = f else {
        return problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot log out",
            "The form was incomplete.",
        );
    };
    state.run(move |s| confirm_logout(s, &headers, f)).await
}

fn confirm_logout(state: &AppState, headers: &HeaderMap, f: ConfirmForm) -> Response {
    const REFUSALS: FormRefusals = FormRefusals {
        signed_out: (
            StatusCode::OK,
            "Logged out",
            "You are not logged in to civis.",
        ),
        forged: (
            "Cannot log out",
            "This form was not issued for your session.",
        ),
    };
    if let Err(page) = form_session(state, headers, "logout-csrf", "", &f.csrf, &REFUSALS) {
        return *page;
    }
    let p = EndSessionParams {
        id_token_hint: None,
        post_logout_redirect_uri: f.post_logout_redirect_uri,
        state: f.state,
        client_id: f.client_id,
    };
    let client = p
        .client_id
        .as_deref()
        .and_then(|id| state.clients().get(id).ok().flatten());
    match logout_redirect(client.as_ref(), &p) {
        Ok(r) => logged_out(state, headers, r),
        Err(page) => *page,
    }
}
