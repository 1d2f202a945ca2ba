//! Pages a person sees (CONTRACT.md §3): server-rendered HTML, one small script, a strict
//! Content-Security-Policy. Buttons carry the accessible names the contract fixes.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::client_addr::ClientAddr;
use super::error::Result;
use super::extract::ApiQuery;
use super::passkey::local_path;
use super::state::AppState;
use super::throttle::Purpose;
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

/// What the page script needs to know, as `data-*` attributes of `<main>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct PageData<'a> {
    /// Which ceremony the script runs (`enrol`, `login`).
    pub page: Option<&'a str>,
    /// The enrolment code.
    pub code: Option<&'a str>,
    /// Where to go after signing in (a local path).
    pub return_to: Option<&'a str>,
    /// The sign request being approved.
    pub request: Option<&'a str>,
}

/// A complete page. Every value is escaped by the template engine (maud); only `body`,
/// itself built with `html!`, is inserted as markup.
pub fn page(status: StatusCode, title: &str, data: PageData<'_>, body: Markup) -> Response {
    page_with_form_targets(status, title, data, body, &[])
}

/// A page whose forms may lead (through our redirect) to the given origins: browsers apply
/// `form-action` to the redirect that follows a form submission.
pub fn page_with_form_targets(
    status: StatusCode,
    title: &str,
    data: PageData<'_>,
    body: Markup,
    origins: &[&str],
) -> Response {
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – civis" }
                link rel="stylesheet" href="/static/civis.css";
                script src="/static/civis.js" defer {}
            }
            body {
                main id="main" data-page=[data.page] data-code=[data.code]
                    data-return-to=[data.return_to] data-request=[data.request] {
                    h1 { (title) }
                    (body)
                    p id="status" role="status" aria-live="polite" {}
                }
            }
        }
    };
    let mut resp = (status, html.into_string()).into_response();
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
        PageData::default(),
        html! { p class="problem" { (message) } },
    )
}

/// Query of `/enrol`.
#[derive(Debug, Deserialize)]
pub struct EnrolQuery {
    code: Option<String>,
}

async fn enrol_page(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ApiQuery(q): ApiQuery<EnrolQuery>,
) -> Result<Response> {
    // Only wrong links are charged; a valid one may be opened again and again.
    if let Err(wait) = state
        .throttle
        .check(Purpose::Enrolment, ip, std::time::Instant::now())
    {
        return Ok(too_many_attempts(wait));
    }
    let code = q.code.unwrap_or_default();
    let presented = code.clone();
    let found = state
        .run(move |s| s.passkeys().enrolment_citizen(&presented, s.now()))
        .await;
    match found {
        Ok(citizen) => Ok(page(
            StatusCode::OK,
            "Create your passkey",
            PageData {
                page: Some("enrol"),
                code: Some(&code),
                ..PageData::default()
            },
            // Whose account this is, before anything else: a link forwarded by someone
            // else would otherwise put the victim's passkey into that person's account.
            html! {
                div class="account" role="note" {
                    p { "This link creates a passkey for the account of:" }
                    p class="account-name" {
                        strong { (citizen.given_name) " " (citizen.family_name) }
                        ", born " (citizen.birthdate)
                    }
                    p {
                        strong { "If this is not you, stop here." }
                        " Whoever creates this passkey can sign in as this person."
                    }
                }
                p {
                    "A passkey lets you sign in to public services with your device's screen \
                     lock (fingerprint, face or PIN) instead of a password."
                }
                button type="button" id="create" { "Create passkey" }
            },
        )),
        Err(DomainError::Refused(r)) => {
            let _ = state
                .throttle
                .take(Purpose::Enrolment, ip, std::time::Instant::now());
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

async fn login_page(ApiQuery(q): ApiQuery<LoginQuery>) -> Response {
    let return_to = local_path(q.return_to.as_deref()).unwrap_or_default();
    page(
        StatusCode::OK,
        "Sign in",
        PageData {
            page: Some("login"),
            return_to: Some(&return_to),
            ..PageData::default()
        },
        html! {
            p {
                "Sign in with the passkey you created with your enrolment link. You do not \
                 need to type anything."
            }
            button type="button" id="signin" { "Sign in with a passkey" }
            p class="autofill" {
                label for="passkey-autofill" { "Or choose a saved passkey" }
                input id="passkey-autofill" name="username" autocomplete="username webauthn";
            }
        },
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
        self.headers_mut()
            .insert(header::RETRY_AFTER, super::error::retry_after(wait));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text(resp: Response) -> String {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn a_throttled_page_never_says_retry_after_zero() {
        for (wait_ms, expected) in [
            (0, "1"),
            (300, "1"),
            (1000, "1"),
            (2500, "3"),
            (60_000, "60"),
        ] {
            let resp = too_many_attempts(std::time::Duration::from_millis(wait_ms));
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(
                resp.headers()[header::RETRY_AFTER],
                expected,
                "{wait_ms} ms"
            );
        }
    }

    #[tokio::test]
    async fn values_are_escaped_by_the_template() {
        let hostile = "<script>alert(1)</script>\"'&";
        let resp = page(
            StatusCode::OK,
            hostile,
            PageData {
                code: Some("\"><img src=x onerror=alert(1)>"),
                ..PageData::default()
            },
            html! { p { (hostile) } },
        );
        let html = text(resp).await;
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("\"><img"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;"),
            "{html}"
        );
        assert!(
            html.contains(r#"data-code="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;""#),
            "{html}"
        );
        assert!(!html.contains("data-page"), "absent data is left out");
    }
}
