//! `POST /seal/v1/sign` (CONTRACT.md §5): an agency client seals up to 1000 digests at
//! once with its organisation's e-seal key, authenticated by a `client_credentials` access
//! token with scope `seal`.
//!
//! The token is checked before the body is read, so only a sealing client can make civis
//! buffer this route's larger body (see [`SEAL_BODY_BYTES`]).

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};

use super::error::{BearerError, Problem, Result};
use super::extract::ApiJson;
use super::openapi_web::OAuthErrorBody;
use super::state::AppState;
use crate::domain::DomainError;
use crate::domain::signing::documents::{self, DocumentInput};
use crate::domain::signing::{MAX_SEAL_DOCUMENTS, Signed};

/// The body limit of this route (unless `--max-body-bytes` is larger): 1000 documents of
/// about 100 bytes of JSON each already exceed the 64 KiB default, and 1 MiB holds 1000
/// documents whose names have 255 characters of up to 3 bytes each. Only the sealing route
/// gets it; the answer to a full batch is larger still (about 2 MB of CAdES).
pub const SEAL_BODY_BYTES: usize = 1 << 20;

/// Routes of this module, with their own body limit.
pub fn router(max_body_bytes: usize) -> Router<AppState> {
    super::extract::with_body_limit(
        Router::new().route("/seal/v1/sign", post(seal)),
        max_body_bytes.max(SEAL_BODY_BYTES),
    )
}

/// The agency client behind a valid `client_credentials` access token with scope `seal`.
#[derive(Debug, Clone)]
pub struct SealingClient {
    /// Its client id.
    pub client_id: String,
}

impl FromRequestParts<AppState> for SealingClient {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, BearerError> {
        let token = super::access::presented(&parts.headers, None)?;
        let (method, path) = (parts.method.clone(), parts.uri.path().to_owned());
        let client = state
            .run(move |s| {
                let claims = super::access::verify(s, &token, method.as_str(), &path)?;
                if claims.gid.is_some() {
                    return Err(BearerError::WrongKind {
                        scope: "seal",
                        detail: "a citizen's access token cannot seal: use the agency \
                                 client's own client_credentials token with scope seal",
                    });
                }
                if !claims.scope.split(' ').any(|s| s == "seal") {
                    return Err(BearerError::InsufficientScope("seal"));
                }
                Ok(Self {
                    client_id: claims.client_id,
                })
            })
            .await?;
        // One seal call (up to 1000 digests) is one request of the client's quota.
        state
            .throttle
            .take_client(&client.client_id, std::time::Instant::now())
            .map_err(BearerError::OverQuota)?;
        Ok(client)
    }
}

/// One document to seal.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentRequest {
    /// The document's name: 1–255 characters, no control characters (kept as given; JAdES
    /// names it in `sigD.pars`).
    pub name: String,
    /// base64url without padding of the SHA-256 of the document's bytes (43 characters).
    pub digest: String,
}

/// A batch to seal.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealRequest {
    /// 1 to 1000 documents.
    pub documents: Vec<DocumentRequest>,
    /// `cades` (CAdES-B-B) or `jades` (JAdES-B-B).
    pub format: String,
}

/// One signature, in the documents' order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignatureView {
    /// The document's name.
    pub name: String,
    /// `cades` or `jades`.
    pub format: &'static str,
    /// Standard base64 (with padding) of the DER for `cades`; the JWS compact
    /// serialisation itself for `jades`.
    pub signature: String,
}

impl From<Signed> for SignatureView {
    fn from(s: Signed) -> Self {
        let signature = s.encoded();
        Self {
            name: s.name,
            format: s.format.as_str(),
            signature,
        }
    }
}

/// The signatures of a batch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SealResponse {
    /// One per document, in the order sent.
    pub signatures: Vec<SignatureView>,
}

/// Seals a batch of digests with the client's e-seal at once. Every signature is recorded
/// durably before the answer (the record `/verify/v1` checks as `produced`).
#[utoipa::path(post, path = "/seal/v1/sign", tag = "signing",
    security(("client_token" = ["seal"])),
    request_body = SealRequest,
    responses(
        (status = 200, body = SealResponse),
        (status = 401, body = OAuthErrorBody, description = "No token (`invalid_request`), or `invalid_token` (bad, expired or revoked), `invalid_dpop_proof` or `use_dpop_nonce` (with `DPoP-Nonce`)", headers(("dpop-nonce" = String))),
        (status = 403, body = OAuthErrorBody, description = "`insufficient_scope`: no scope `seal`, or a citizen's token"),
        (status = 409, body = Problem, description = "The client has no live seal (none, revoked, or its certificate expired)"),
        (status = 413, body = Problem, description = "Body over 1 MiB (or `--max-body-bytes` if larger)"),
        (status = 422, body = Problem, description = "Every bad field named: `format`, `documents`, `documents[i].name`, `documents[i].digest`"),
        (status = 429, body = OAuthErrorBody, description = "`temporarily_unavailable`: this client's request quota (`--client-rate-per-second`) is spent"),
        (status = 503, body = Problem, description = "No key-encryption key (kek.key), or a timeout; `temporarily_unavailable` (an OAuth error) when the database is unreachable")))]
pub async fn seal(
    State(state): State<AppState>,
    client: SealingClient,
    ApiJson(body): ApiJson<SealRequest>,
) -> Result<Response> {
    let client_id = client.client_id.clone();
    let services = state.clone();
    let (format, count, body) = state
        .sealing
        .run(move || {
            let s = &services;
            let inputs: Vec<DocumentInput> = body
                .documents
                .into_iter()
                .map(|d| DocumentInput {
                    name: d.name,
                    digest: d.digest,
                })
                .collect();
            let (format, docs) = documents::batch(&body.format, &inputs, MAX_SEAL_DOCUMENTS)?;
            let signed = s.pki().seal_documents(&client_id, &docs, format, s.now())?;
            let response = SealResponse {
                signatures: signed.into_iter().map(SignatureView::from).collect(),
            };
            Ok::<_, DomainError>((format, docs.len(), encode(&response)?))
        })
        .await?;
    state
        .metrics
        .signatures_produced("seal", format.as_str(), count);
    tracing::info!(
        client_id = %client.client_id,
        format = format.as_str(),
        documents = count,
        "sealed"
    );
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

/// The answer's JSON in one buffer of about its final size, written on the sealing thread:
/// a full batch is megabytes, and growing a buffer by doubling would allocate twice that.
fn encode(response: &SealResponse) -> Result<Vec<u8>, DomainError> {
    let size = response
        .signatures
        .iter()
        .map(|v| v.name.len() + v.signature.len() + 48)
        .sum::<usize>()
        + 16;
    let mut body = Vec::with_capacity(size);
    serde_json::to_writer(&mut body, response)
        .map_err(|e| DomainError::Internal(format!("encoding the seal answer: {e}")))?;
    Ok(body)
}
