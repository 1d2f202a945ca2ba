//! `POST /verify/v1` (CONTRACT.md §5): anyone verifies a civis signature over a digest.
//! The checks are the domain's (`domain::signing::verify`); this maps them to JSON. Input
//! that cannot be read is 422 naming the field; anything readable is 200 with `valid` and
//! every check, never a 5xx for a bad or foreign signature.

use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::error::{Problem, Result};
use super::extract::ApiJson;
use super::state::AppState;
use crate::crypto::pki::cert_pem;
use crate::domain::signing::{Verification, VerifyInput};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/verify/v1", post(verify))
}

/// A signature to verify.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// base64url without padding of the SHA-256 of the document's bytes.
    pub digest: String,
    /// Standard base64 (with padding) of the DER for `cades`; the JWS compact
    /// serialisation itself for `jades` (as `/seal/v1/sign` answers them).
    pub signature: String,
    /// `cades` or `jades`.
    pub format: String,
}

/// Whom the signer's certificate names.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignerView {
    /// commonName: the official's name, or the organisation of a seal (the whole subject
    /// when the certificate has no commonName).
    pub name: String,
    /// An official's title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// organizationName; empty when the certificate names none.
    pub organisation: String,
}

/// One check.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckView {
    /// `format`, `signature`, `digest`, `signing_certificate`, `chain`, `validity`,
    /// `key_usage`, `revocation` or `produced`.
    pub name: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// Why.
    pub detail: String,
}

/// The outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifyResponse {
    /// Every check passed.
    pub valid: bool,
    /// The signer, as certified.
    pub signer: SignerView,
    /// The signing time the signature states (RFC 3339), or null when it states none.
    #[serde(with = "time::serde::rfc3339::option")]
    pub signed_at: Option<OffsetDateTime>,
    /// The certificates the signature carries (PEM), the signer's first.
    pub certificate_chain: Vec<String>,
    /// Every check, always all nine, in a fixed order.
    pub checks: Vec<CheckView>,
}

impl From<Verification> for VerifyResponse {
    fn from(v: Verification) -> Self {
        Self {
            valid: v.valid,
            signer: SignerView {
                name: v.signer.name,
                title: v.signer.title,
                organisation: v.signer.organisation,
            },
            signed_at: v.signed_at,
            certificate_chain: v.certificate_chain.iter().map(|c| cert_pem(c)).collect(),
            checks: v
                .checks
                .into_iter()
                .map(|c| CheckView {
                    name: c.name,
                    passed: c.passed,
                    detail: c.detail,
                })
                .collect(),
        }
    }
}

/// Verifies a CAdES or JAdES signature over a digest: cryptography, digest binding, the
/// certificate reference, the chain to the service CA, validity, key usage and revocation
/// at the signing time, and civis's record of having produced it. Public.
#[utoipa::path(post, path = "/verify/v1", tag = "signing",
    request_body = VerifyRequest,
    responses(
        (status = 200, body = VerifyResponse, description = "The outcome, `valid: false` naming the failing checks for a bad or foreign signature"),
        (status = 422, body = Problem, description = "Input that cannot be read, each field named: `format` unknown, `digest` not 32 bytes of base64url, `signature` not base64, truncated DER, not a JWS")))]
pub async fn verify(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<VerifyRequest>,
) -> Result<axum::Json<VerifyResponse>> {
    let input = VerifyInput {
        digest: body.digest,
        signature: body.signature,
        format: body.format,
    };
    let outcome = state.run(move |s| s.pki().verify(&input)).await?;
    let failed: Vec<&str> = outcome
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect();
    tracing::info!(valid = outcome.valid, failed = ?failed, "verified");
    Ok(axum::Json(outcome.into()))
}
