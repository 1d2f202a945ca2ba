//! The approval page (CONTRACT.md §3) and the WebAuthn ceremony behind it: the signed-in
//! official sees every document's name and digest, presses **Sign with passkey**, and the
//! page script runs `start` → `navigator.credentials.get` → `finish`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::html;
use serde::Deserialize;
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::client_addr::ClientAddr;
use super::error::{ApiError, Result};
use super::extract::{ApiJson, ApiPath};
use super::pages::{PageData, page, problem_page};
use super::passkey::{SameOrigin, Started, refuse_while_exhausted, session_token, throttle};
use super::state::AppState;
use super::throttle::Purpose;
use crate::domain::DomainError;
use crate::domain::signing::requests::Status;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sign/requests/{id}", get(approval_page))
        .route("/sign/requests/{id}/start", post(start))
        .route("/sign/requests/{id}/finish", post(finish))
        .route("/sign/requests/{id}/reject", post(reject))
}

/// The signed-in citizen, if any (on the blocking pool).
pub(super) fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, DomainError> {
    match session_token(headers) {
        Some(token) => Ok(state
            .passkeys()
            .session(&token, state.now())?
            .map(|s| s.citizen_id)),
        None => Ok(None),
    }
}

async fn approval_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    let lookup = id.clone();
    let found = state
        .run(move |s| {
            let Some(citizen) = signed_in(s, &headers)? else {
                return Ok(None);
            };
            let now = s.now();
            s.pki()
                .request_of(&citizen, &lookup)
                .map(|r| Some((r.status(now), r)))
        })
        .await;
    let (status, request) = match found {
        Ok(Some(found)) => found,
        Ok(None) => {
            let back = format!("/sign/requests/{id}");
            let url = format!(
                "/login?return_to={}",
                url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
            );
            return Ok(Redirect::to(&url).into_response());
        }
        Err(DomainError::NotFound(_)) => {
            return Ok(problem_page(
                StatusCode::NOT_FOUND,
                "Request not found",
                "There is no such sign request for you. It may have expired and been removed.",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let pending = status == Status::Pending;
    Ok(page(
        StatusCode::OK,
        "Approve signatures",
        PageData {
            page: pending.then_some("approve"),
            request: Some(&request.id),
            ..PageData::default()
        },
        html! {
            p {
                "You are asked to sign " (request.documents.len()) " document(s) in the format "
                (request.format.as_str()) ". Check every name and digest before you approve."
            }
            table class="documents" {
                thead { tr { th scope="col" { "Document" } th scope="col" { "SHA-256 digest" } } }
                tbody {
                    @for d in &request.documents {
                        tr { td { (d.name) } td { code { (URL_SAFE_NO_PAD.encode(d.digest)) } } }
                    }
                }
            }
            @if pending {
                p { "Approve before " (deadline(&request)) " UTC." }
                button type="button" id="approve" { "Sign with passkey" }
                " "
                button type="button" id="reject" class="secondary" { "Reject" }
            } @else {
                p id="request-status" class="ok" {
                    @match status {
                        Status::Signed => "Signed",
                        Status::Rejected => "Rejected: nothing was signed.",
                        Status::Expired => "Expired: this request can no longer be approved.",
                        Status::Pending => "",
                    }
                }
            }
        },
    ))
}

/// The deadline as the page shows it: `2026-12-02 17:15`.
fn deadline(request: &crate::domain::signing::requests::SignRequest) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    request.expires_at.format(&format).unwrap_or_default()
}

/// The signed-in citizen, or 401.
async fn session_citizen(state: &AppState, headers: HeaderMap) -> Result<String> {
    state
        .run(move |s| signed_in(s, &headers))
        .await?
        .ok_or(ApiError::Unauthorized)
}

async fn start(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    _o: SameOrigin,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    refuse_while_exhausted(&state, Purpose::Login, ip)?;
    throttle(&state, Purpose::LoginStart, ip)?;
    let citizen = session_citizen(&state, headers).await?;
    let (ceremony, options) = state
        .run(move |s| s.approvals().start(&citizen, &id, s.now()))
        .await?;
    Ok(axum::Json(Started::<RequestChallengeResponse> { ceremony, options }).into_response())
}

async fn reject(
    State(state): State<AppState>,
    _o: SameOrigin,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    let citizen = session_citizen(&state, headers).await?;
    let request_id = id.clone();
    state
        .run(move |s| s.approvals().reject(&citizen, &request_id, s.now()))
        .await?;
    tracing::info!(request_id = %id, "sign request rejected");
    Ok(axum::Json(serde_json::json!({ "status": "rejected", "id": id })).into_response())
}

/// Body of `/sign/requests/{id}/finish`.
#[derive(Debug, Deserialize)]
pub struct FinishApproval {
    /// Ceremony id from `start`.
    pub ceremony: String,
    /// The browser's `PublicKeyCredential` (assertion).
    pub credential: PublicKeyCredential,
}

async fn finish(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    _o: SameOrigin,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<FinishApproval>,
) -> Result<Response> {
    let citizen = session_citizen(&state, headers).await?;
    let r = state
        .run(move |s| {
            s.approvals()
                .finish(&citizen, &id, &body.ceremony, &body.credential, s.now())
        })
        .await;
    if matches!(r, Err(DomainError::Refused(_))) {
        let _ = state
            .throttle
            .take(Purpose::Login, ip, std::time::Instant::now());
    }
    let signed = r?;
    tracing::info!(request_id = %signed.id, citizen_id = %signed.citizen_id, documents = signed.documents.len(), "sign request approved and signed");
    Ok(axum::Json(serde_json::json!({ "status": "signed", "id": signed.id })).into_response())
}
