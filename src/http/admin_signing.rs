//! Admin API for signing keys (CONTRACT.md §2): officials and seals, each a key certified
//! by the service CA, and their revocation; behind the admin bearer token. No answer ever
//! holds a private key, wrapped or not.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::{Problem, Result};
use super::extract::{Admin, ApiJson};
use super::state::AppState;
use crate::crypto::pki::cert_pem;
use crate::domain::signing::{NewOfficial, NewSeal, Official, Seal};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/officials", post(create_official))
        .route(
            "/admin/v1/officials/{id}",
            get(get_official).delete(revoke_official),
        )
        .route("/admin/v1/seals", post(create_seal))
        .route("/admin/v1/seals/{id}", get(get_seal).delete(revoke_seal))
}

/// An official to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOfficial {
    /// A registered citizen (their name becomes the certificate's commonName).
    pub citizen_id: String,
    /// Their title: 1–64 characters with a letter, no control characters.
    pub title: String,
    /// The organisation they sign for, same rules.
    pub organisation: String,
}

/// A seal to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSeal {
    /// The registered agency client that will seal with it.
    pub client_id: String,
    /// The organisation named by the seal: 1–64 characters with a letter.
    pub organisation: String,
}

/// A key just created: its id and certificate.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyCreated {
    /// The official's or seal's id.
    pub id: String,
    /// The certificate issued by the service CA (PEM).
    pub certificate_pem: String,
}

/// An official as stored (never the key).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OfficialView {
    /// Id.
    pub id: String,
    /// The citizen who signs with it.
    pub citizen_id: String,
    /// Title, as certified.
    pub title: String,
    /// Organisation, as certified.
    pub organisation: String,
    /// The certificate's serial number (hex), as the CRL lists it.
    pub serial: String,
    /// The certificate (PEM).
    pub certificate_pem: String,
    /// When the certificate ends (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// When created (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When revoked (RFC 3339), or null while it signs.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<Official> for OfficialView {
    fn from(o: Official) -> Self {
        Self {
            serial: hex::encode(&o.serial),
            certificate_pem: cert_pem(&o.certificate),
            id: o.id,
            citizen_id: o.citizen_id,
            title: o.title,
            organisation: o.organisation,
            not_after: o.not_after,
            created_at: o.created_at,
            revoked_at: o.revoked_at,
        }
    }
}

/// A seal as stored (never the key).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SealView {
    /// Id.
    pub id: String,
    /// The client that seals with it.
    pub client_id: String,
    /// Organisation, as certified.
    pub organisation: String,
    /// The certificate's serial number (hex), as the CRL lists it.
    pub serial: String,
    /// The certificate (PEM).
    pub certificate_pem: String,
    /// When the certificate ends (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// When created (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When revoked (RFC 3339), or null while it seals.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<Seal> for SealView {
    fn from(s: Seal) -> Self {
        Self {
            serial: hex::encode(&s.serial),
            certificate_pem: cert_pem(&s.certificate),
            id: s.id,
            client_id: s.client_id,
            organisation: s.organisation,
            not_after: s.not_after,
            created_at: s.created_at,
            revoked_at: s.revoked_at,
        }
    }
}

/// 201 with the new key's id, certificate and `Location`.
fn created(location: String, id: String, certificate: &[u8]) -> Response {
    let body = KeyCreated {
        id,
        certificate_pem: cert_pem(certificate),
    };
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Creates an official's signing key and certificate; a live key of the same citizen is
/// revoked (superseded) at the same instant.
#[utoipa::path(post, path = "/admin/v1/officials", tag = "admin", security(("admin" = [])),
    request_body = CreateOfficial,
    responses(
        (status = 201, body = KeyCreated),
        (status = 401, body = Problem), (status = 404, body = Problem, description = "Unknown citizen"),
        (status = 422, body = Problem),
        (status = 503, body = Problem, description = "No key-encryption key (kek.key) in the keys directory")))]
pub async fn create_official(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateOfficial>,
) -> Result<Response> {
    let input = NewOfficial {
        citizen_id: body.citizen_id,
        title: body.title,
        organisation: body.organisation,
    };
    let official = state
        .run(move |s| s.pki().create_official(input, s.now()))
        .await?;
    tracing::info!(
        official_id = %official.id,
        citizen_id = %official.citizen_id,
        serial = %hex::encode(&official.serial),
        actor = %admin.actor,
        "official created"
    );
    Ok(created(
        format!("/admin/v1/officials/{}", official.id),
        official.id,
        &official.certificate,
    ))
}

/// Reads an official (certificate and state, never the key).
#[utoipa::path(get, path = "/admin/v1/officials/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Official id")),
    responses((status = 200, body = OfficialView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_official(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<axum::Json<OfficialView>> {
    let official = state.run(move |s| s.pki().official(&id)).await?;
    Ok(axum::Json(official.into()))
}

/// Revokes an official's key from now on (again: no change); the CRL lists it at once.
#[utoipa::path(delete, path = "/admin/v1/officials/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Official id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_official(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let official_id = id.clone();
    state
        .run(move |s| s.pki().revoke_official(&official_id, s.now()))
        .await?;
    tracing::info!(official_id = %id, actor = %admin.actor, "official revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Creates an organisation's seal key and certificate for an agency client; a live seal
/// of the same client is revoked (superseded) at the same instant.
#[utoipa::path(post, path = "/admin/v1/seals", tag = "admin", security(("admin" = [])),
    request_body = CreateSeal,
    responses(
        (status = 201, body = KeyCreated),
        (status = 401, body = Problem), (status = 404, body = Problem, description = "Unknown client"),
        (status = 422, body = Problem),
        (status = 503, body = Problem, description = "No key-encryption key (kek.key) in the keys directory")))]
pub async fn create_seal(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateSeal>,
) -> Result<Response> {
    let input = NewSeal {
        client_id: body.client_id,
        organisation: body.organisation,
    };
    let seal = state
        .run(move |s| s.pki().create_seal(input, s.now()))
        .await?;
    tracing::info!(
        seal_id = %seal.id,
        client_id = %seal.client_id,
        serial = %hex::encode(&seal.serial),
        actor = %admin.actor,
        "seal created"
    );
    Ok(created(
        format!("/admin/v1/seals/{}", seal.id),
        seal.id,
        &seal.certificate,
    ))
}

/// Reads a seal (certificate and state, never the key).
#[utoipa::path(get, path = "/admin/v1/seals/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Seal id")),
    responses((status = 200, body = SealView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_seal(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<String>,
) -> Result<axum::Json<SealView>> {
    let seal = state.run(move |s| s.pki().seal(&id)).await?;
    Ok(axum::Json(seal.into()))
}

/// Revokes a seal from now on (again: no change); the CRL lists it at once.
#[utoipa::path(delete, path = "/admin/v1/seals/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Seal id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_seal(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let seal_id = id.clone();
    state
        .run(move |s| s.pki().revoke_seal(&seal_id, s.now()))
        .await?;
    tracing::info!(seal_id = %id, actor = %admin.actor, "seal revoked");
    Ok(StatusCode::NO_CONTENT)
}
