//! Admin API for signing keys (CONTRACT.md §2): officials and seals, each a key certified
//! by the service CA, and their revocation; behind the admin bearer token. No answer ever
//! holds a private key, wrapped or not.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::{Problem, Result};
use super::extract::{Admin, ApiJson, ApiPath};
use super::state::AppState;
use crate::crypto::pki::cert_pem;
use crate::domain::signing::{Holder, Kind, NewOfficial, NewSeal, SigningKey};

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

/// A signing key as stored (never the key itself).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SigningKeyView {
    /// Id.
    pub id: String,
    /// `official` or `seal`.
    pub kind: &'static str,
    /// The citizen who signs with it (officials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citizen_id: Option<String>,
    /// Title, as certified (officials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The client that seals with it (seals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
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

impl From<SigningKey> for SigningKeyView {
    fn from(k: SigningKey) -> Self {
        let kind = k.holder.kind().noun();
        let (citizen_id, title, client_id) = match k.holder {
            Holder::Official { citizen_id, title } => (Some(citizen_id), Some(title), None),
            Holder::Seal { client_id } => (None, None, Some(client_id)),
        };
        Self {
            serial: hex::encode(&k.serial),
            certificate_pem: cert_pem(&k.certificate),
            id: k.id,
            kind,
            citizen_id,
            title,
            client_id,
            organisation: k.organisation,
            not_after: k.not_after,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// 201 with the new key's id, certificate and `Location`, after logging who made it.
fn created(key: SigningKey, admin: &Admin) -> Response {
    let kind = key.holder.kind().noun();
    tracing::info!(
        key_id = %key.id,
        kind,
        holder = %key.holder.as_ref().id,
        serial = %hex::encode(&key.serial),
        actor = %admin.actor,
        "signing key created"
    );
    let location = format!("/admin/v1/{kind}s/{}", key.id);
    let body = KeyCreated {
        certificate_pem: cert_pem(&key.certificate),
        id: key.id,
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
    Ok(created(official, &admin))
}

/// Reads an official (certificate and state, never the key).
#[utoipa::path(get, path = "/admin/v1/officials/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Official id")),
    responses((status = 200, body = SigningKeyView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_official(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<SigningKeyView>> {
    read_key(&state, Kind::Official, id).await
}

/// Revokes an official's key from now on (again: no change); the CRL lists it at once.
#[utoipa::path(delete, path = "/admin/v1/officials/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Official id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_official(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode> {
    revoke_key(&state, &admin, Kind::Official, id).await
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
    Ok(created(seal, &admin))
}

/// Reads a seal (certificate and state, never the key).
#[utoipa::path(get, path = "/admin/v1/seals/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Seal id")),
    responses((status = 200, body = SigningKeyView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_seal(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<SigningKeyView>> {
    read_key(&state, Kind::Seal, id).await
}

/// Revokes a seal from now on (again: no change); the CRL lists it at once.
#[utoipa::path(delete, path = "/admin/v1/seals/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Seal id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_seal(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode> {
    revoke_key(&state, &admin, Kind::Seal, id).await
}

/// Reads one key of `kind` (certificate and state, never the key).
async fn read_key(state: &AppState, kind: Kind, id: String) -> Result<axum::Json<SigningKeyView>> {
    let key = state.run(move |s| s.pki().key(kind, &id)).await?;
    Ok(axum::Json(key.into()))
}

/// Revokes one key of `kind` from now on.
async fn revoke_key(state: &AppState, admin: &Admin, kind: Kind, id: String) -> Result<StatusCode> {
    let key_id = id.clone();
    state
        .run(move |s| s.pki().revoke(kind, &key_id, s.now()))
        .await?;
    tracing::info!(key_id = %id, kind = kind.noun(), actor = %admin.actor, "signing key revoked");
    Ok(StatusCode::NO_CONTENT)
}
