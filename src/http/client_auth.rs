//! OAuth client authentication for the token, introspection and revocation endpoints:
//! reading the presented credentials (RFC 6749 §2.3.1 HTTP Basic with form-urlencoded parts,
//! form fields, RFC 7523 assertions), mapping failures to `invalid_client`, and throttling
//! failures per client IP (CONTRACT.md §6).
//!
//! Typical use in a handler that has the client address (`ClientAddr`) and the parsed form:
//!
//! ```ignore
//! let client = client_auth::authenticate_client(&state, ip, &headers, &form, &[&token_url, &state.issuer])?;
//! ```
//!
//! or step by step with [`presented_client`], [`clients`]`.authenticate`, [`map_auth_failure`]
//! and [`throttle_failure`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

use super::error::{OAuthError, OAuthErrorCode};
use super::state::AppState;
use super::throttle::Purpose;
use crate::domain::clients::{AuthFailure, Client, ClientAuthError, PresentedClient};

/// What a client is told when its authentication fails, whatever the reason.
const GENERIC_FAILURE: &str = "client authentication failed";

fn invalid_client() -> OAuthError {
    OAuthError {
        code: OAuthErrorCode::InvalidClient,
        description: Some(GENERIC_FAILURE.into()),
    }
}

/// Standard base64 that accepts credentials with or without padding.
const BASIC_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte), as
/// RFC 6749 §2.3.1 requires for the client id and secret inside HTTP Basic.
/// Malformed escapes (`%+1`, `%zz`, a trailing `%`) and non-UTF-8 results are refused,
/// not passed through.
fn form_urldecode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let escapes_ok = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'%')
        .all(|(i, _)| {
            bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        });
    if !escapes_ok {
        return None;
    }
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Decodes the credentials part of `Authorization: Basic <credentials>` into the client id
/// and secret. `None` when it is not base64 of `id:secret` with valid form-urlencoding, or
/// the id is empty.
pub fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let raw = BASIC_B64.decode(credentials.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let id = form_urldecode(id)?;
    let secret = form_urldecode(secret)?;
    (!id.is_empty()).then_some((id, secret))
}

/// Reads the client credentials of a token, introspection or revocation request: HTTP Basic
/// (other `Authorization` schemes are ignored) and the form fields `client_id`,
/// `client_secret`, `client_assertion_type` and `client_assertion` (empty values count as
/// absent, RFC 6749 §3.2). Whether they are consistent is decided by
/// [`Clients::authenticate`].
///
/// # Errors
/// `invalid_client` when the `Authorization: Basic` header is malformed or repeated.
pub fn presented_client(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<PresentedClient, OAuthError> {
    let mut auth = headers.get_all(header::AUTHORIZATION).iter();
    let basic = match (auth.next(), auth.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            tracing::warn!("client authentication: more than one Authorization header");
            return Err(invalid_client());
        }
        (Some(value), None) => {
            let text = value.to_str().map_err(|_| invalid_client())?;
            let (scheme, rest) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
            if scheme.eq_ignore_ascii_case("basic") {
                let pair = decode_basic(rest);
                if pair.is_none() {
                    tracing::warn!("client authentication: malformed HTTP Basic credentials");
                    return Err(invalid_client());
                }
                pair
            } else {
                None
            }
        }
    };
    let field = |name: &str| form.get(name).filter(|v| !v.is_empty()).cloned();
    Ok(PresentedClient {
        basic,
        client_id: field("client_id"),
        client_secret: field("client_secret"),
        assertion_type: field("client_assertion_type"),
        assertion: field("client_assertion"),
    })
}

/// The OAuth answer to a failed authentication: `invalid_client` (401) with a generic
/// description for anything the client got wrong, `server_error` (500) when we failed. The
/// reason is logged (never a secret).
pub fn map_auth_failure(e: AuthFailure) -> OAuthError {
    match e {
        AuthFailure::Client(ClientAuthError::Invalid(reason)) => {
            tracing::warn!(%reason, "client authentication failed");
            invalid_client()
        }
        // Not a failure: the call is about to run again on the blocking pool.
        AuthFailure::Domain(crate::domain::DomainError::Store(
            crate::store::StoreError::WouldBlock,
        )) => OAuthError {
            code: OAuthErrorCode::ServerError,
            description: None,
        },
        AuthFailure::Domain(error @ crate::domain::DomainError::Store(_)) => {
            OAuthError::from(error)
        }
        AuthFailure::Domain(error) => {
            tracing::error!(%error, "client authentication could not be completed");
            OAuthError {
                code: OAuthErrorCode::ServerError,
                description: None,
            }
        }
    }
}

/// Records one failed client authentication from `ip`; returns how long to wait when this
/// address has failed too often (answer 429 with `Retry-After`). Call it only after a
/// failure, so correctly authenticated clients are never throttled.
pub fn throttle_failure(state: &AppState, ip: IpAddr) -> Option<Duration> {
    state
        .throttle
        .take(Purpose::ClientAuthFailure, ip, Instant::now())
        .err()
}

/// 429 for an address that failed client authentication too often: the OAuth error body of
/// the failure it replaces (`invalid_client`) plus `Retry-After`.
pub fn too_many_failures(wait: Duration) -> Response {
    let secs = wait.as_secs().max(1);
    let body = serde_json::json!({
        "error": "invalid_client",
        "error_description": format!(
            "too many failed client authentications from your address; retry in {secs} s"
        ),
    });
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        h.insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Why [`authenticate_client`] refused; answer it with `into_response()`.
#[derive(Debug)]
pub enum ClientAuthRejection {
    /// 401 `invalid_client`, or 500 `server_error` when we failed.
    OAuth(OAuthError),
    /// 429 with `Retry-After`: this address failed too often.
    Throttled(Duration),
    /// 429 with `Retry-After`: the client authenticated but its request quota is spent.
    OverQuota(Duration),
}

impl IntoResponse for ClientAuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::OAuth(e) => e.into_response(),
            Self::Throttled(wait) => too_many_failures(wait),
            Self::OverQuota(wait) => super::error::over_quota(wait),
        }
    }
}

/// Everything in one call: reads the credentials, authenticates the client against
/// `audiences` (for `private_key_jwt`: the token endpoint URL and the issuer), and on a
/// client failure takes a throttle token for `ip` — 429 once exhausted, 401
/// `invalid_client` otherwise; an authenticated client spends one request of its quota
/// (429 when spent). Storage failures are 500 and not throttled.
///
/// # Errors
/// What to answer instead.
pub fn authenticate_client(
    state: &AppState,
    ip: IpAddr,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    audiences: &[&str],
) -> Result<Client, ClientAuthRejection> {
    let failed = |e: OAuthError| match throttle_failure(state, ip) {
        Some(wait) => {
            tracing::warn!(%ip, "client authentication failures throttled");
            ClientAuthRejection::Throttled(wait)
        }
        None => ClientAuthRejection::OAuth(e),
    };
    let presented = presented_client(headers, form).map_err(failed)?;
    match state
        .clients()
        .authenticate(&presented, audiences, state.now())
    {
        // Only the client itself can spend its quota: it is taken after authentication.
        Ok(client) => match state.throttle.take_client(&client.id, Instant::now()) {
            Ok(()) => Ok(client),
            Err(wait) => Err(ClientAuthRejection::OverQuota(wait)),
        },
        Err(e @ AuthFailure::Client(_)) => Err(failed(map_auth_failure(e))),
        Err(e) => Err(ClientAuthRejection::OAuth(map_auth_failure(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_urldecoding_is_strict() {
        assert_eq!(
            form_urldecode("a+b%2B%C3%A9").as_deref(),
            Some("a b+\u{e9}")
        );
        assert_eq!(form_urldecode("%41%62").as_deref(), Some("Ab"));
        // `u8::from_str_radix` takes "+1" as 1: an escape is two hex digits, nothing else.
        for bad in ["%+1", "%-1", "%zz", "%", "a%4", "%%41", "%FF"] {
            assert_eq!(form_urldecode(bad), None, "{bad}");
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn headers(auth: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for a in auth {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn basic_is_base64_of_form_urlencoded_parts() {
        assert_eq!(
            decode_basic(&b64("abc:s3cret")),
            Some(("abc".into(), "s3cret".into()))
        );
        // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        assert_eq!(
            decode_basic(&b64("my%3Aclient+id:p%40ss%2Bw%3Ard+x")),
            Some(("my:client id".into(), "p@ss+w:rd x".into()))
        );
        // A secret may contain ':' unencoded after the first one.
        assert_eq!(
            decode_basic(&b64("id:a:b")),
            Some(("id".into(), "a:b".into()))
        );
        // Padding optional; UTF-8 after decoding.
        assert_eq!(
            decode_basic(b64("ab:c").trim_end_matches('=')),
            Some(("ab".into(), "c".into()))
        );
        assert_eq!(
            decode_basic(&b64("%C3%A9:x")),
            Some(("é".into(), "x".into()))
        );
        for bad in [
            "!!!".to_owned(),
            b64("no-colon"),
            b64(":secret"),
            b64("id%zz:x"),
            b64("id%4:x"),
            b64("%FF:x"),
        ] {
            assert_eq!(decode_basic(&bad), None, "{bad}");
        }
    }

    #[test]
    fn presented_reads_header_and_form() {
        let p = presented_client(
            &headers(&[&format!("basic {}", b64("c1:s1"))]),
            &form(&[
                ("client_id", "c1"),
                ("client_secret", ""),
                ("grant_type", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(p.basic, Some(("c1".into(), "s1".into())));
        assert_eq!(p.client_id.as_deref(), Some("c1"));
        assert_eq!(p.client_secret, None, "empty means absent");

        let p = presented_client(
            &headers(&["Bearer abc"]),
            &form(&[
                ("client_assertion_type", "t"),
                ("client_assertion", "a.b.c"),
            ]),
        )
        .unwrap();
        assert_eq!(p.basic, None, "other schemes are ignored");
        assert_eq!(p.assertion_type.as_deref(), Some("t"));
        assert_eq!(p.assertion.as_deref(), Some("a.b.c"));

        for bad in [
            vec!["Basic".to_owned()],
            vec!["Basic !!".to_owned()],
            vec![format!("Basic {}", b64("nocolon"))],
            vec![
                format!("Basic {}", b64("a:b")),
                format!("Basic {}", b64("a:b")),
            ],
        ] {
            let refs: Vec<&str> = bad.iter().map(String::as_str).collect();
            let err = presented_client(&headers(&refs), &form(&[])).unwrap_err();
            assert_eq!(err.code, OAuthErrorCode::InvalidClient, "{bad:?}");
        }
    }

    #[test]
    fn failures_map_to_generic_invalid_client_or_server_error() {
        let e = map_auth_failure(AuthFailure::Client(ClientAuthError::Invalid(
            "wrong client secret for client x".into(),
        )));
        assert_eq!(e.code, OAuthErrorCode::InvalidClient);
        assert_eq!(e.description.as_deref(), Some(GENERIC_FAILURE));
        let e = map_auth_failure(AuthFailure::Domain(crate::domain::DomainError::Internal(
            "disk".into(),
        )));
        assert_eq!(e.code, OAuthErrorCode::ServerError);
        assert_eq!(e.description, None);
        let resp = too_many_failures(Duration::from_millis(10));
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
    }
}
