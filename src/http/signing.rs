//! The officials' signing API (CONTRACT.md §5): create a sign request, read its status and
//! signatures, and read the approval evidence. Behind an access token with scope `sign`
//! issued to a citizen (a grant); evidence also to the admin.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::access::Presented;
use super::error::{ApiError, BearerError, Problem};
use super::extract::{ApiJson, ApiPath};
use super::openapi_web::OAuthErrorBody;
use super::state::AppState;
use crate::domain::DomainError;
use crate::domain::signing::evidence;
use crate::domain::signing::requests::{NewRequest, SignRequest};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sign/v1/requests", post(create_request))
        .route("/sign/v1/requests/{id}", get(get_request))
        .route("/sign/v1/requests/{id}/evidence", get(get_evidence))
}

/// One document to sign.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentIn {
    /// 1–255 characters, no control characters.
    pub name: String,
    /// SHA-256 of the document, base64url without padding (32 bytes).
    pub digest: String,
}

/// A sign request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// 1–100 documents.
    pub documents: Vec<DocumentIn>,
    /// `cades` or `jades`.
    pub format: String,
}

/// A request just made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestCreated {
    /// Request id.
    pub id: String,
    /// The page where the official approves it with a passkey.
    pub approval_url: String,
    /// The approval deadline (RFC 3339), 15 minutes after creation.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// One signature produced.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignatureOut {
    /// The document's name.
    pub name: String,
    /// `cades` or `jades`.
    pub format: String,
    /// Standard base64 of the DER (`cades`), or the JWS (`jades`).
    pub signature: String,
}

/// A request's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestView {
    /// Request id.
    pub id: String,
    /// `pending`, `signed`, `rejected` or `expired`.
    pub status: String,
    /// The approval deadline (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The signatures, once signed (in the request's document order).
    pub signatures: Vec<SignatureOut>,
}

/// The method and path of a request, which a DPoP proof names.
struct Uri<'a> {
    method: &'a str,
    path: &'a str,
}

/// The citizen behind an access token with scope `sign` (on the blocking pool).
fn official_of(state: &AppState, token: &Presented, request: &Uri) -> Result<String, BearerError> {
    let claims = super::access::verify(state, token, request.method, request.path)?;
    let Some(gid) = claims.gid.as_deref() else {
        return Err(BearerError::InsufficientScope("sign"));
    };
    if !claims.scope.split(' ').any(|s| s == "sign") {
        return Err(BearerError::InsufficientScope("sign"));
    }
    let grant = state
        .store
        .grants()
        .get(gid)
        .map_err(|e| BearerError::Internal(e.into()))?
        .ok_or_else(|| BearerError::Invalid("grant gone".into()))?;
    Ok(grant.citizen_id)
}

/// An answer that is either an RFC 6750 bearer error or a problem.
enum Failure {
    Bearer(BearerError),
    Api(ApiError),
}

impl From<BearerError> for Failure {
    fn from(e: BearerError) -> Self {
        Self::Bearer(e)
    }
}

impl From<DomainError> for Failure {
    fn from(e: DomainError) -> Self {
        Self::Api(e.into())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Self::Bearer(e) => e.into_response(),
            Self::Api(e) => e.into_response(),
        }
    }
}

fn view(r: &SignRequest, now: OffsetDateTime) -> RequestView {
    RequestView {
        id: r.id.clone(),
        status: r.status(now).as_str().to_owned(),
        expires_at: r.expires_at,
        signatures: r
            .approval
            .iter()
            .flat_map(|(sigs, _)| sigs)
            .map(|s| SignatureOut {
                name: s.name.clone(),
                format: s.format.as_str().to_owned(),
                signature: s.signature.clone(),
            })
            .collect(),
    }
}

/// Creates a pending sign request for the official behind the token.
#[utoipa::path(post, path = "/sign/v1/requests", tag = "signing", security(("bearer" = ["sign"])),
    request_body = CreateRequest,
    responses(
        (status = 201, body = RequestCreated, headers(("location" = String))),
        (status = 401, body = OAuthErrorBody, description = "No token (`invalid_request`), or `invalid_token`, `invalid_dpop_proof` or `use_dpop_nonce` (with `DPoP-Nonce`)", headers(("dpop-nonce" = String))),
        (status = 403, description = "`insufficient_scope` (no scope `sign`, or not a citizen's token), or a problem: the citizen is not an official",
            content((OAuthErrorBody = "application/json"), (Problem = "application/problem+json"))),
        (status = 409, body = Problem, description = "100 of this official's requests already wait for a decision"),
        (status = 422, body = Problem, description = "Every bad field named")))]
pub async fn create_request(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Result<ApiJson<CreateRequest>, ApiError>,
) -> Response {
    // Authentication first: a caller without a token learns nothing about the body's shape.
    let token = match super::access::presented(&headers, None) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let body = match body {
        Ok(ApiJson(b)) => b,
        Err(e) => return e.into_response(),
    };
    let input = NewRequest {
        documents: body
            .documents
            .into_iter()
            .map(|d| (d.name, d.digest))
            .collect(),
        format: body.format,
    };
    let issuer = state.issuer.clone();
    let result = state
        .run(move |s| -> Result<SignRequest, Failure> {
            let at = Uri {
                method: "POST",
                path: uri.path(),
            };
            let citizen = official_of(s, &token, &at)?;
            Ok(s.pki().create_request(&citizen, &input, s.now())?)
        })
        .await;
    match result {
        Ok(r) => {
            tracing::info!(request_id = %r.id, citizen_id = %r.citizen_id, documents = r.documents.len(), "sign request created");
            let body = RequestCreated {
                approval_url: format!("{issuer}/sign/requests/{}", r.id),
                id: r.id.clone(),
                expires_at: r.expires_at,
            };
            let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("/sign/v1/requests/{}", r.id)) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// The request's status and, once signed, its signatures (only to the same official).
#[utoipa::path(get, path = "/sign/v1/requests/{id}", tag = "signing", security(("bearer" = ["sign"])),
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RequestView),
        (status = 401, body = OAuthErrorBody, description = "As `POST /sign/v1/requests`", headers(("dpop-nonce" = String))),
        (status = 403, body = OAuthErrorBody, description = "`insufficient_scope`: no scope `sign`, or not a citizen's token"),
        (status = 404, body = Problem, description = "Unknown, or another official's")))]
pub async fn get_request(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let token = match super::access::presented(&headers, None) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let result = state
        .run(move |s| -> Result<RequestView, Failure> {
            let at = Uri {
                method: "GET",
                path: uri.path(),
            };
            let citizen = official_of(s, &token, &at)?;
            let now = s.now();
            Ok(view(&s.pki().request_of(&citizen, &id)?, now))
        })
        .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The approval evidence of a signed request: a self-contained bundle that
/// `civis evidence verify` checks offline (to the same official, or the admin).
#[utoipa::path(get, path = "/sign/v1/requests/{id}/evidence", tag = "signing",
    security(("bearer" = ["sign"]), ("admin" = [])),
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "The evidence bundle (spec/flows/signing-approval.md)"),
        (status = 401, body = OAuthErrorBody, description = "As `POST /sign/v1/requests` (the admin token is never refused)", headers(("dpop-nonce" = String))),
        (status = 403, body = OAuthErrorBody, description = "`insufficient_scope`: no scope `sign`, or not a citizen's token"),
        (status = 404, body = Problem, description = "Unknown, another official's, or not signed (yet)")))]
pub async fn get_evidence(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Response {
    let token = match super::access::presented(&headers, None) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let admin = state.keys.admin_token.matches(token.token().as_bytes());
    let result = state
        .run(move |s| -> Result<serde_json::Value, Failure> {
            let request = if admin {
                s.pki().request(&id)?
            } else {
                let at = Uri {
                    method: "GET",
                    path: uri.path(),
                };
                s.pki().request_of(&official_of(s, &token, &at)?, &id)?
            };
            evidence::bundle(&request).ok_or_else(|| DomainError::NotFound("signed request").into())
        })
        .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}
