//! Pages a person sees (CONTRACT.md §3): server-rendered HTML, one small script, a strict
//! Content-Security-Policy. Buttons carry the accessible names the contract fixes.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use time::OffsetDateTime;

use super::error::Result;
use super::passkey::{local_path, passkeys};
use super::throttle::Purpose;
use crate::app::AppState;
use crate::domain::DomainError;

const SCRIPT: &str = include_str!("assets/civis.js");
const STYLE: &str = include_str!("assets/civis.css");

/// Scripts and styles only from this origin, no inline code, no framing, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/enrol", get(enrol_page))
        .route("/login", get(login_page))
        .route("/static/civis.js", get(script))
        .route("/static/civis.css", get(style))
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page. `main_attrs` are pre-escaped `data-*` attributes for the script.
pub fn page(status: StatusCode, title: &str, main_attrs: &str, body: &str) -> Response {
    page_with_form_targets(status, title, main_attrs, body, &[])
}

/// A page whose forms may lead (through our redirect) to the given origins: browsers apply
/// `form-action` to the redirect that follows a form submission.
pub fn page_with_form_targets(
    status: StatusCode,
    title: &str,
    main_attrs: &str,
    body: &str,
    origins: &[&str],
) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} – civis</title>\n<link rel=\"stylesheet\" href=\"/static/civis.css\">\n\
         <script src=\"/static/civis.js\" defer></script>\n</head>\n<body>\n\
         <main id=\"main\"{main_attrs}>\n<h1>{title}</h1>\n{body}\n\
         <p id=\"status\" role=\"status\" aria-live=\"polite\"></p>\n</main>\n</body>\n</html>\n",
        title = escape(title),
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let extra: String = origins
        .iter()
        .filter(|o| {
            !o.is_empty()
                && o.chars()
                    .all(|c| c.is_ascii_graphic() && c != ';' && c != ',')
        })
        .map(|o| format!(" {o}"))
        .collect();
    let csp = CSP.replace("form-action 'self'", &format!("form-action 'self'{extra}"));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    // Enrolment links carry a secret code: never leak it in a Referer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// A page that only explains something went wrong, in plain language.
pub fn problem_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        "",
        &format!("<p class=\"problem\">{}</p>", escape(message)),
    )
}

/// Query of `/enrol`.
#[derive(Debug, Deserialize)]
pub struct EnrolQuery {
    code: Option<String>,
}

async fn enrol_page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<EnrolQuery>,
) -> Result<Response> {
    if let Err(wait) = state
        .throttle
        .take(Purpose::Enrolment, peer.ip(), std::time::Instant::now())
    {
        return Ok(too_many_attempts(wait));
    }
    let code = q.code.unwrap_or_default();
    let presented = code.clone();
    let found = state
        .run(move |s| passkeys(s).enrolment_citizen(&presented, OffsetDateTime::now_utc()))
        .await;
    match found {
        Ok(citizen) => Ok(page(
            StatusCode::OK,
            "Create your passkey",
            &format!(" data-page=\"enrol\" data-code=\"{}\"", escape(&code)),
            &format!(
                "<p>Welcome, {}. A passkey lets you sign in to public services with your \
                 device's screen lock (fingerprint, face or PIN) instead of a password.</p>\n\
                 <button type=\"button\" id=\"create\">Create passkey</button>",
                escape(&citizen.given_name)
            ),
        )),
        Err(DomainError::Refused(r)) => {
            let _ = state
                .throttle
                .take(Purpose::Enrolment, peer.ip(), std::time::Instant::now());
            Ok(problem_page(
                StatusCode::NOT_FOUND,
                "Enrolment link not valid",
                r.message(),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Query of `/login`.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    return_to: Option<String>,
}

async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    let return_to = local_path(q.return_to.as_deref()).unwrap_or_default();
    page(
        StatusCode::OK,
        "Sign in",
        &format!(
            " data-page=\"login\" data-return-to=\"{}\"",
            escape(&return_to)
        ),
        "<p>Sign in with the passkey you created with your enrolment link. \
         You do not need to type anything.</p>\n\
         <button type=\"button\" id=\"signin\">Sign in with a passkey</button>\n\
         <p class=\"autofill\"><label for=\"passkey-autofill\">Or choose a saved passkey</label>\n\
         <input id=\"passkey-autofill\" name=\"username\" autocomplete=\"username webauthn\"></p>",
    )
}

async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// The page for an address that has to slow down: 429 with `Retry-After`.
pub fn too_many_attempts(wait: std::time::Duration) -> Response {
    problem_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Please wait",
        "Too many attempts from your network. Please wait a minute and try again.",
    )
    .into_response_with_retry(wait)
}

trait WithRetry {
    fn into_response_with_retry(self, wait: std::time::Duration) -> Response;
}

impl WithRetry for Response {
    fn into_response_with_retry(mut self, wait: std::time::Duration) -> Response {
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().to_string()) {
            self.headers_mut().insert(header::RETRY_AFTER, v);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
