//! The single table from errors to HTTP answers: RFC 9457 problem+json everywhere, RFC 6749
//! error JSON on OAuth endpoints. Internal details are logged (inside the request's span,
//! which carries the request id) and never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::observe::current_request_id;
use crate::domain::{DomainError, FieldError};

/// Errors of the http layer. Status codes are given per variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A domain error; its status follows the table in [`ApiError::into_response`].
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// 401: missing or wrong bearer token. Says nothing else.
    #[error("unauthorized")]
    Unauthorized,
    /// 400: the body is not well-formed (e.g. JSON syntax).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 422: the body is well-formed but does not have the expected shape.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    /// 413: the body exceeds the configured limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 431: the request line and headers together exceed `app::MAX_HEAD_BYTES`.
    #[error("request head too large")]
    HeadTooLarge,
    /// 415: the body is not `application/json`.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 404: no such route.
    #[error("no such resource")]
    NoRoute,
    /// 405: the route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 503: the request took longer than the configured limit.
    #[error("request timed out")]
    Timeout,
    /// 403: refused for a reason that is safe to state (e.g. cross-origin request).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 429: too many attempts from this address; carries the wait for `Retry-After`.
    #[error("too many requests")]
    TooManyRequests(std::time::Duration),
    /// 503: a dependency (store, keys) is unusable; detail is logged only.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// Result type of handlers.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// RFC 9457 body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Problem type URI.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// Short summary of the problem type.
    pub title: &'static str,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong with this request, in plain language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Correlates with the server log; quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-by-field validation errors (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

struct Parts {
    status: StatusCode,
    type_: &'static str,
    title: &'static str,
    detail: Option<String>,
    errors: Vec<FieldError>,
}

fn parts(
    status: StatusCode,
    type_: &'static str,
    title: &'static str,
    detail: Option<String>,
) -> Parts {
    Parts {
        status,
        type_,
        title,
        detail,
        errors: Vec::new(),
    }
}

impl ApiError {
    fn parts(self) -> Parts {
        use StatusCode as S;
        match self {
            Self::Domain(DomainError::Invalid(errors)) => Parts {
                errors,
                ..parts(
                    S::UNPROCESSABLE_ENTITY,
                    "urn:civis:problem:invalid-fields",
                    "Invalid fields",
                    Some("One or more fields are invalid; see errors.".into()),
                )
            },
            Self::Domain(DomainError::NotFound(what)) => parts(
                S::NOT_FOUND,
                "about:blank",
                "Not Found",
                Some(format!("No such {what}.")),
            ),
            Self::Domain(DomainError::Conflict(why)) => parts(
                S::CONFLICT,
                "urn:civis:problem:conflict",
                "Conflict",
                Some(why.into()),
            ),
            Self::Domain(DomainError::Forbidden(why)) => {
                parts(S::FORBIDDEN, "about:blank", "Forbidden", Some(why.into()))
            }
            Self::Domain(DomainError::Refused(r)) => {
                if matches!(r, crate::domain::Refusal::PossibleClone(_)) {
                    tracing::error!(refusal = %r, "possible cloned authenticator: login refused");
                } else {
                    tracing::warn!(refusal = %r, "passkey ceremony refused");
                }
                parts(
                    S::BAD_REQUEST,
                    "urn:civis:problem:passkey-refused",
                    "Passkey refused",
                    Some(r.message().into()),
                )
            }
            Self::Domain(DomainError::Unavailable(why)) => {
                tracing::warn!(detail = why, "feature unavailable");
                parts(
                    S::SERVICE_UNAVAILABLE,
                    "urn:civis:problem:not-configured",
                    "Not configured",
                    Some(why.into()),
                )
            }
            Self::Domain(DomainError::Store(e)) if e.is_unavailable() => {
                tracing::error!(error = %e, "database unavailable");
                parts(
                    S::SERVICE_UNAVAILABLE,
                    "urn:civis:problem:database-unavailable",
                    "Database unavailable",
                    Some("The service cannot reach its database; try again shortly.".into()),
                )
            }
            Self::Domain(e @ (DomainError::Store(_) | DomainError::Internal(_))) => {
                tracing::error!(error = %e, "internal error");
                parts(
                    S::INTERNAL_SERVER_ERROR,
                    "about:blank",
                    "Internal Server Error",
                    Some("The service failed to process the request; it has been logged.".into()),
                )
            }
            Self::Unauthorized => parts(S::UNAUTHORIZED, "about:blank", "Unauthorized", None),
            Self::BadRequest(d) => parts(
                S::BAD_REQUEST,
                "urn:civis:problem:malformed",
                "Malformed request",
                Some(d),
            ),
            Self::Unprocessable(d) => parts(
                S::UNPROCESSABLE_ENTITY,
                "urn:civis:problem:invalid-body",
                "Invalid request body",
                Some(d),
            ),
            Self::PayloadTooLarge => parts(
                S::PAYLOAD_TOO_LARGE,
                "about:blank",
                "Content Too Large",
                Some("The request body exceeds the size limit.".into()),
            ),
            Self::HeadTooLarge => parts(
                S::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "about:blank",
                "Request Header Fields Too Large",
                Some("The URL and headers together exceed the size limit.".into()),
            ),
            Self::UnsupportedMediaType => parts(
                S::UNSUPPORTED_MEDIA_TYPE,
                "about:blank",
                "Unsupported Media Type",
                Some("Send the body as application/json.".into()),
            ),
            Self::NoRoute => parts(S::NOT_FOUND, "about:blank", "Not Found", None),
            Self::MethodNotAllowed => parts(
                S::METHOD_NOT_ALLOWED,
                "about:blank",
                "Method Not Allowed",
                None,
            ),
            Self::Timeout => parts(
                S::SERVICE_UNAVAILABLE,
                "urn:civis:problem:timeout",
                "Request timed out",
                Some("The request took too long and was abandoned.".into()),
            ),
            Self::Forbidden(why) => {
                parts(S::FORBIDDEN, "about:blank", "Forbidden", Some(why.into()))
            }
            Self::TooManyRequests(_) => parts(
                S::TOO_MANY_REQUESTS,
                "urn:civis:problem:throttled",
                "Too many attempts",
                Some("Too many attempts from your network. Please wait and try again.".into()),
            ),
            Self::Unavailable(detail) => {
                tracing::error!(%detail, "service unavailable");
                parts(
                    S::SERVICE_UNAVAILABLE,
                    "about:blank",
                    "Service Unavailable",
                    None,
                )
            }
        }
    }
}

/// `Retry-After` for a wait: whole seconds rounded up, never 0 (a client told 0 would
/// retry at once and be refused again).
pub fn retry_after(wait: std::time::Duration) -> HeaderValue {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(secs.max(1))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = matches!(self, Self::Unauthorized);
        let retry_after = match &self {
            Self::TooManyRequests(wait) => Some(retry_after(*wait)),
            _ => None,
        };
        let p = self.parts();
        let body = Problem {
            type_: p.type_,
            title: p.title,
            status: p.status.as_u16(),
            detail: p.detail,
            request_id: current_request_id(),
            errors: p.errors,
        };
        let mut resp = (p.status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if unauthorized {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(v) = retry_after {
            h.insert(header::RETRY_AFTER, v);
        }
        resp
    }
}

/// RFC 6749 §5.2 error codes used on OAuth endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// Malformed request.
    InvalidRequest,
    /// Client authentication failed (401).
    InvalidClient,
    /// Code, refresh token or credentials invalid, expired, revoked or mismatched.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// Grant type not supported.
    UnsupportedGrantType,
    /// Scope invalid or beyond what the client may ask.
    InvalidScope,
    /// Our fault (500); detail only in the log.
    ServerError,
    /// 503: the database cannot be reached now; the same request may succeed later.
    TemporarilyUnavailable,
    /// RFC 9449: the DPoP proof is missing where required, malformed or wrong.
    InvalidDpopProof,
    /// RFC 9449 §8: retry with the server nonce from the `DPoP-Nonce` header.
    UseDpopNonce,
    /// RFC 9126 / RFC 9101: the `request_uri` is unknown, used, expired or another client's.
    InvalidRequestUri,
}

/// An error on an OAuth endpoint, rendered as `{"error", "error_description"}`.
#[derive(Debug)]
pub struct OAuthError {
    /// The RFC 6749 code.
    pub code: OAuthErrorCode,
    /// Client-safe description.
    pub description: Option<String>,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        use OAuthErrorCode as C;
        let (status, code) = match self.code {
            C::InvalidRequest => (StatusCode::BAD_REQUEST, "invalid_request"),
            C::InvalidClient => (StatusCode::UNAUTHORIZED, "invalid_client"),
            C::InvalidGrant => (StatusCode::BAD_REQUEST, "invalid_grant"),
            C::UnauthorizedClient => (StatusCode::BAD_REQUEST, "unauthorized_client"),
            C::UnsupportedGrantType => (StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            C::InvalidScope => (StatusCode::BAD_REQUEST, "invalid_scope"),
            C::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
            C::TemporarilyUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable")
            }
            C::InvalidDpopProof => (StatusCode::BAD_REQUEST, "invalid_dpop_proof"),
            C::UseDpopNonce => (StatusCode::BAD_REQUEST, "use_dpop_nonce"),
            C::InvalidRequestUri => (StatusCode::BAD_REQUEST, "invalid_request_uri"),
        };
        let mut body = serde_json::json!({ "error": code });
        if let Some(d) = self.description {
            body["error_description"] = d.into();
        }
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"civis\""),
            );
        }
        resp
    }
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: Some(description.into()),
        }
    }
}

impl From<crate::domain::oidc::dpop::DpopError> for OAuthError {
    fn from(e: crate::domain::oidc::dpop::DpopError) -> Self {
        use crate::domain::oidc::dpop::DpopError as D;
        match e {
            D::Invalid(why) => {
                tracing::info!(reason = %why, "DPoP proof refused");
                Self::new(OAuthErrorCode::InvalidDpopProof, why)
            }
            D::UseNonce => Self::new(
                OAuthErrorCode::UseDpopNonce,
                "the DPoP proof must carry the nonce in the DPoP-Nonce header",
            ),
            D::Internal(e) => Self::from(e),
        }
    }
}

impl From<crate::domain::oidc::grants::TokenError> for OAuthError {
    fn from(e: crate::domain::oidc::grants::TokenError) -> Self {
        use crate::domain::oidc::grants::TokenError as T;
        match e {
            T::InvalidRequest(d) => Self::new(OAuthErrorCode::InvalidRequest, d),
            T::InvalidGrant(d) => Self::new(OAuthErrorCode::InvalidGrant, d),
            T::UnauthorizedClient(d) => Self::new(OAuthErrorCode::UnauthorizedClient, d),
            T::UnsupportedGrantType => Self::new(
                OAuthErrorCode::UnsupportedGrantType,
                "unsupported grant_type",
            ),
            T::InvalidScope(d) => Self::new(OAuthErrorCode::InvalidScope, d),
            T::Dpop(e) => Self::from(e),
            T::Internal(e) => Self::from(e),
        }
    }
}

impl From<DomainError> for OAuthError {
    fn from(e: DomainError) -> Self {
        if matches!(&e, DomainError::Store(s) if s.is_unavailable()) {
            tracing::error!(error = %e, "database unavailable on an OAuth endpoint");
            return Self::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "the service cannot reach its database; try again shortly",
            );
        }
        tracing::error!(error = %e, "internal error on an OAuth endpoint");
        Self {
            code: OAuthErrorCode::ServerError,
            description: None,
        }
    }
}

/// RFC 6750 errors of bearer-protected resources (userinfo, signing API).
#[derive(Debug)]
pub enum BearerError {
    /// 401 without error code: no token presented.
    Missing,
    /// 400 `invalid_request` (RFC 6750 §3.1): the request itself is malformed, e.g. a body
    /// over the size limit; the text says how.
    Malformed(&'static str),
    /// 401 `invalid_token`: bad, expired or revoked; the reason is logged.
    Invalid(String),
    /// 403 `insufficient_scope`.
    InsufficientScope(&'static str),
    /// 403 `insufficient_scope`: a valid token of the wrong kind for this resource (a
    /// citizen's token where a client's is needed); the text says which kind.
    WrongKind {
        /// The scope the resource needs.
        scope: &'static str,
        /// What kind of token it needs, for `error_description`.
        detail: &'static str,
    },
    /// 401 with a `DPoP` challenge (RFC 9449 §7.1): `invalid_token` (a bound token presented
    /// without its proof, or an unbound one with the DPoP scheme) or `invalid_dpop_proof`.
    Dpop {
        /// The error code.
        error: &'static str,
        /// Why, for the client and the log (never the token).
        why: String,
    },
    /// 401 `use_dpop_nonce`, with this nonce in `DPoP-Nonce` (RFC 9449 §9).
    UseDpopNonce(String),
    /// 429: the client's request quota is spent; the wait for `Retry-After`.
    OverQuota(std::time::Duration),
    /// 500, logged.
    Internal(DomainError),
}

impl From<crate::domain::oidc::verify::InvalidToken> for BearerError {
    fn from(e: crate::domain::oidc::verify::InvalidToken) -> Self {
        use crate::domain::oidc::verify::InvalidToken as I;
        match e {
            I::Internal(d) => Self::Internal(d),
            other => Self::Invalid(other.to_string()),
        }
    }
}

/// 429 for an authenticated client over its request quota (`--client-rate-per-second`):
/// an OAuth error body and `Retry-After`, at the token endpoints and at sealing alike.
pub fn over_quota(wait: std::time::Duration) -> Response {
    let value = retry_after(wait);
    let secs = value.to_str().unwrap_or("1");
    let body = serde_json::json!({
        "error": "temporarily_unavailable",
        "error_description": format!("this client's request quota is spent; retry in {secs} s"),
    });
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, value);
    resp
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, body) = match self {
            Self::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer".to_owned(),
                serde_json::json!({"error": "invalid_request", "error_description": "bearer token required"}),
            ),
            Self::Malformed(why) => (
                StatusCode::BAD_REQUEST,
                "Bearer error=\"invalid_request\"".to_owned(),
                serde_json::json!({"error": "invalid_request", "error_description": why}),
            ),
            Self::Invalid(why) => {
                tracing::info!(reason = %why, "bearer token refused");
                (
                    StatusCode::UNAUTHORIZED,
                    "Bearer error=\"invalid_token\"".to_owned(),
                    serde_json::json!({"error": "invalid_token", "error_description": "the access token is invalid, expired or revoked"}),
                )
            }
            Self::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
                serde_json::json!({"error": "insufficient_scope", "error_description": format!("scope {scope} required")}),
            ),
            Self::WrongKind { scope, detail } => (
                StatusCode::FORBIDDEN,
                format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\""),
                serde_json::json!({"error": "insufficient_scope", "error_description": detail}),
            ),
            Self::Dpop { error, why } => {
                tracing::info!(reason = %why, "DPoP-bound request refused");
                (
                    StatusCode::UNAUTHORIZED,
                    format!("DPoP error=\"{error}\", algs=\"ES256\""),
                    serde_json::json!({"error": error, "error_description": why}),
                )
            }
            Self::UseDpopNonce(nonce) => {
                let mut resp = (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(serde_json::json!({"error": "use_dpop_nonce",
                        "error_description": "the DPoP proof must carry the nonce in DPoP-Nonce"})),
                )
                    .into_response();
                let h = resp.headers_mut();
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("DPoP error=\"use_dpop_nonce\", algs=\"ES256\""),
                );
                if let Ok(v) = HeaderValue::from_str(&nonce) {
                    h.insert("dpop-nonce", v);
                }
                return resp;
            }
            Self::OverQuota(wait) => return over_quota(wait),
            Self::Internal(e) => return OAuthError::from(e).into_response(),
        };
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            h.insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(resp: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn internal_error_text_never_reaches_the_client() {
        let resp =
            ApiError::Domain(DomainError::Internal("secret db path /x".into())).into_response();
        assert_eq!(resp.status(), 500);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let text = body(resp).await.to_string();
        assert!(!text.contains("secret db path"), "{text}");
    }

    #[tokio::test]
    async fn oauth_errors_use_rfc6749_shape() {
        let resp = OAuthError {
            code: OAuthErrorCode::InvalidClient,
            description: Some("client authentication failed".into()),
        }
        .into_response();
        assert_eq!(resp.status(), 401);
        let b = body(resp).await;
        assert_eq!(b["error"], "invalid_client");
        assert_eq!(b["error_description"], "client authentication failed");
    }
}
