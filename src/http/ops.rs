//! Operations endpoints: health, metrics, the CA certificate and CRL, and the fallbacks.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, Result};
use super::state::AppState;

/// Health answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` when the status is 200.
    pub status: &'static str,
}

/// 200 when the store answers and the token key signs; 503 otherwise.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = super::error::Problem)))]
pub async fn healthz(State(state): State<AppState>) -> Result<axum::Json<Health>> {
    state
        .run(|s| s.store.probe())
        .await
        .map_err(|e| ApiError::Unavailable(format!("store: {e}")))?;
    state
        .keys
        .tokens()
        .signing(state.now())
        .sign(b"civis health probe")
        .map_err(|_| ApiError::Unavailable("token key cannot sign".into()))?;
    Ok(axum::Json(Health { status: "ok" }))
}

/// Prometheus metrics in the OpenMetrics text format. Served only on the metrics listener
/// (`--metrics-listen ADDR`, plain HTTP, off by default); the main listener answers 404.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    description = "Served only on the separate metrics listener (`--metrics-listen ADDR`, plain HTTP, off by default); the main listener answers 404.",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response> {
    let text = state
        .metrics
        .render()
        .map_err(|e| ApiError::Unavailable(format!("metrics: {e}")))?;
    let mut resp = text.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(resp)
}

/// The service CA certificate that verifiers trust.
#[utoipa::path(get, path = "/pki/ca.pem", tag = "pki",
    responses((status = 200, description = "PEM certificate", content_type = "application/x-pem-file")))]
pub async fn ca_pem(State(state): State<AppState>) -> Response {
    let mut resp = state.keys.ca.cert_pem.clone().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    resp
}

/// The CA's current CRL (DER): every revoked official and seal certificate with its
/// revocation time, rebuilt after each revocation.
#[utoipa::path(get, path = "/pki/crl", tag = "pki",
    responses((status = 200, description = "DER CRL (RFC 5280), valid for a day, rebuilt after every revocation and at least hourly", content_type = "application/pkix-crl")))]
pub async fn crl(State(state): State<AppState>) -> Result<Response> {
    let der = state.run(|s| s.pki().crl(s.now())).await?;
    let mut resp = der.as_ref().clone().into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pkix-crl"),
    );
    Ok(resp)
}

/// Unknown route.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}

/// Known route, unknown method.
pub async fn wrong_method() -> ApiError {
    ApiError::MethodNotAllowed
}
