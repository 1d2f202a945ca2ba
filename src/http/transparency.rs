//! The public face of the audit log (CONTRACT.md §7): the latest signed checkpoint, the
//! verifier key, and RFC 9162 inclusion and consistency proofs. Only hashes leave here.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::audit::decimal;
use super::error::{ApiError, Problem, Result};
use super::extract::ApiQuery;
use super::state::AppState;
use crate::domain::transparency;
use crate::store::{Store, StoreError};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/transparency/v1/checkpoint", get(checkpoint))
        .route("/transparency/v1/key", get(key))
        .route("/transparency/v1/proof/inclusion", get(inclusion))
        .route("/transparency/v1/proof/consistency", get(consistency))
}

const NO_KEY: &str =
    "the audit log publishes no checkpoints: audit.key is missing from the keys dir";

fn text(body: String) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The latest checkpoint: a C2SP `tlog-checkpoint` signed note.
#[utoipa::path(get, path = "/transparency/v1/checkpoint", tag = "transparency",
    responses((status = 200, content_type = "text/plain", body = String,
               description = "origin line, tree size, base64 root hash, blank line, Ed25519 signature line"),
              (status = 503, body = Problem, description = "No audit.key, or no checkpoint yet")))]
pub async fn checkpoint(State(state): State<AppState>) -> Result<Response> {
    if state.audit_signer.is_none() {
        return Err(ApiError::Unavailable(NO_KEY.into()));
    }
    let latest = state
        .run(|s| s.store.audit().latest_checkpoint())
        .await
        .map_err(crate::domain::DomainError::from)?;
    match latest {
        Some((_, note)) => Ok(text(note)),
        None => Err(ApiError::Unavailable(
            "no checkpoint has been published yet".into(),
        )),
    }
}

/// The checkpoint verifier key in signed-note form.
#[utoipa::path(get, path = "/transparency/v1/key", tag = "transparency",
    responses((status = 200, content_type = "text/plain", body = String,
               description = "`<name>+<8 hex digits key hash>+<base64(0x01 ‖ Ed25519 public key)>`"),
              (status = 503, body = Problem, description = "No audit.key")))]
pub async fn key(State(state): State<AppState>) -> Result<Response> {
    match &state.audit_signer {
        Some(signer) => Ok(text(format!("{}\n", signer.verifier_key()))),
        None => Err(ApiError::Unavailable(NO_KEY.into())),
    }
}

/// A proof: its parameters and the hashes, standard base64.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InclusionProof {
    /// The entry.
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// RFC 9162 §2.1.3.1 PATH order: the leaf's sibling first.
    pub hashes: Vec<String>,
}

/// A consistency proof.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub size: u64,
    /// RFC 9162 §2.1.4.1 SUBPROOF order.
    pub hashes: Vec<String>,
}

fn required(query: &HashMap<String, String>, name: &str) -> Result<u64> {
    decimal(query, name)?.ok_or_else(|| ApiError::BadRequest(format!("{name} is required")))
}

fn encode(hashes: &[[u8; 32]]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

/// A proof computed from the stored tree: [`transparency::inclusion`] or
/// [`transparency::consistency`].
type Prove = fn(&Store, u64, u64) -> Result<Vec<[u8; 32]>, StoreError>;

/// The hashes of a proof for a tree of `size` entries, which must be no larger than the
/// latest checkpoint's; `other` is the proof's other parameter (index or older size).
async fn proof_hashes(
    state: &AppState,
    other: u64,
    size: u64,
    prove: Prove,
) -> Result<Vec<String>> {
    let hashes = state
        .run(move |s| {
            let latest = s.store.audit().integrated()?;
            if size > latest {
                return Ok(Err(format!(
                    "size must be at most the latest checkpoint's size, {latest}"
                )));
            }
            prove(&s.store, other, size).map(Ok)
        })
        .await
        .map_err(crate::domain::DomainError::from)?
        .map_err(ApiError::BadRequest)?;
    Ok(encode(&hashes))
}

/// The inclusion proof of entry `index` in the tree of `size` entries.
#[utoipa::path(get, path = "/transparency/v1/proof/inclusion", tag = "transparency",
    params(("index" = u64, Query, description = "0 ≤ index < size"),
           ("size" = u64, Query, description = "≤ the latest checkpoint's size")),
    responses((status = 200, body = InclusionProof),
              (status = 400, body = Problem, description = "Missing, non-decimal or out-of-range parameter")))]
pub async fn inclusion(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> Result<axum::Json<InclusionProof>> {
    let index = required(&query, "index")?;
    let size = required(&query, "size")?;
    if index >= size {
        return Err(ApiError::BadRequest("index must be less than size".into()));
    }
    let hashes = proof_hashes(&state, index, size, transparency::inclusion).await?;
    Ok(axum::Json(InclusionProof {
        index,
        size,
        hashes,
    }))
}

/// The consistency proof between the trees of `from` and `size` entries.
#[utoipa::path(get, path = "/transparency/v1/proof/consistency", tag = "transparency",
    params(("from" = u64, Query, description = "1 ≤ from ≤ size"),
           ("size" = u64, Query, description = "≤ the latest checkpoint's size")),
    responses((status = 200, body = ConsistencyProof),
              (status = 400, body = Problem, description = "Missing, non-decimal or out-of-range parameter")))]
pub async fn consistency(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> Result<axum::Json<ConsistencyProof>> {
    let from = required(&query, "from")?;
    let size = required(&query, "size")?;
    if from == 0 || from > size {
        return Err(ApiError::BadRequest(
            "from must be between 1 and size".into(),
        ));
    }
    let hashes = proof_hashes(&state, from, size, transparency::consistency).await?;
    Ok(axum::Json(ConsistencyProof { from, size, hashes }))
}
