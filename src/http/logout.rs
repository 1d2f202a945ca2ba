//! RP-initiated logout (`end_session_endpoint`): with a valid `id_token_hint` it logs out
//! without asking; without one it shows a page with the button **Log out**.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::error::ApiError;
use super::oidc::{FormRefusals, csrf, current_session, form_session, origin_of};
use super::pages::{PageData, page_with_form_targets, problem_page};
use super::passkey::session_token;
use super::state::AppState;
use crate::domain::clients::Client;

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
    Query(p): Query<EndSessionParams>,
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

/// The client named by a valid (possibly expired) ID token of ours.
fn hinted_client(state: &AppState, hint: &str) -> Option<Client> {
    let client_id = state.provider().id_token_hint_audience(hint)?;
    state.clients().get(&client_id).ok().flatten()
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
        && let Err(e) = state.passkeys().logout(&token)
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
    if let Some(hint) = p.id_token_hint.as_deref() {
        let Some(client) = hinted_client(state, hint) else {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot log out",
                "The logout request carries an invalid token.",
            );
        };
        if p.client_id.as_deref().is_some_and(|c| c != client.id) {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot log out",
                "The logout request is inconsistent.",
            );
        }
        return match logout_redirect(Some(&client), &p) {
            Ok(r) => logged_out(state, headers, r),
            Err(page) => *page,
        };
    }
    // Without a hint anyone could link here: ask the person.
    let client = p
        .client_id
        .as_deref()
        .and_then(|id| state.clients().get(id).ok().flatten());
    if let Err(page) = logout_redirect(client.as_ref(), &p) {
        return *page;
    }
    let session = match current_session(state, headers, now) {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
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
        ("client_id", p.client_id.as_deref()),
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
