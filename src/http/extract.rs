//! Extractors: JSON bodies, paths and queries whose rejections become problem+json, and
//! admin authentication.

use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;
use super::throttle::Purpose;

/// A route's body limit, as [`with_body_limit`] sets it, for extractors that can refuse a
/// body on its announced length (axum's own limit is enforced only while reading).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Limits the bodies of `router`'s routes to `bytes`: axum's limit while reading, and
/// [`BodyLimit`] for [`ApiJson`] to refuse a larger `Content-Length` before reading. The
/// innermost call wins, so a router merged into another keeps its own limit.
pub fn with_body_limit<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    bytes: usize,
) -> axum::Router<S> {
    router
        .layer(axum::extract::DefaultBodyLimit::max(bytes))
        .layer(axum::Extension(BodyLimit(bytes)))
}

/// `axum::Json` with our error mapping: 400 malformed, 413 too large (at once when the
/// `Content-Length` says so, without reading the body), 415 wrong type, 422 wrong shape
/// (serde's message names the field).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = req.extensions().get::<BodyLimit>().map(|l| l.0 as u64);
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(limit), Some(announced)) = (limit, announced)
            && announced > limit
        {
            return Err(ApiError::PayloadTooLarge);
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::BadRequest(e.body_text())),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Unprocessable(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType),
            Err(JsonRejection::BytesRejection(e)) if e.status() == 413 => {
                Err(ApiError::PayloadTooLarge)
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// `axum::extract::Path` with our error mapping: a segment that does not decode (`%FF`) is
/// 400 problem+json, not axum's plain-text answer.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Self(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// `axum::extract::Query` with our error mapping: a missing or repeated parameter is 400
/// problem+json naming it, not axum's plain-text answer.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Self(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// Proof that the request carried the admin bearer token. Holds the token's fingerprint,
/// recorded as "who did this".
#[derive(Debug, Clone)]
pub struct Admin {
    /// Public fingerprint of the admin credential used.
    pub actor: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .unwrap_or_default();
        if state.keys.admin_token.matches(presented.as_bytes()) {
            Ok(Self {
                actor: format!("admin:{}", state.keys.admin_token.fingerprint()),
            })
        } else {
            tracing::warn!("admin authentication failed");
            // Failures are throttled per address; a correct token is never throttled.
            let client = super::client_addr::client_addr(
                &parts.extensions,
                &parts.headers,
                &state.config.trusted_proxies,
            );
            match client.map(|ip| {
                state
                    .throttle
                    .take(Purpose::AdminFailure, ip, Instant::now())
            }) {
                Some(Err(wait)) => Err(ApiError::TooManyRequests(wait)),
                _ => Err(ApiError::Unauthorized),
            }
        }
    }
}
