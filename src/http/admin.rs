//! Admin API for registration officers (CONTRACT.md §2), behind the admin bearer token.

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
use crate::domain::citizens::{Citizen, EnrolmentCode, NewCitizen, PasskeySummary};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/citizens", post(create_citizen))
        .route("/admin/v1/citizens/{id}", get(get_citizen))
        .route("/admin/v1/citizens/{id}/enrolment", post(new_enrolment))
        .route(
            "/admin/v1/citizens/{id}/passkeys/{passkey_id}",
            axum::routing::delete(revoke_passkey),
        )
}

/// A citizen to register, as checked by the registration officer.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCitizen {
    /// Given name(s): letters, spaces, apostrophes, hyphens; 1–100 characters.
    pub given_name: String,
    /// Family name(s), same rules.
    pub family_name: String,
    /// `YYYY-MM-DD`, in the past.
    pub birthdate: String,
    /// Spaces are removed and letters upper-cased; then 4–32 of `A–Z 0–9 -`. Unique.
    pub national_id: String,
    /// Optional e-mail address.
    pub email: Option<String>,
}

/// A one-time enrolment link for the citizen.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    /// Page where the citizen creates a passkey.
    pub enrolment_url: String,
    /// The code in the link (shown once; stored only as a hash).
    pub enrolment_code: String,
    /// When the code stops working (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// Answer to a registration.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CitizenCreated {
    /// The citizen's id.
    pub id: String,
    /// The first enrolment link.
    #[serde(flatten)]
    pub enrolment: Enrolment,
}

/// A passkey as the registry shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    /// Credential id (base64url).
    pub id: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last login with it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// May be synced across devices.
    pub backup_eligible: bool,
    /// Is currently synced.
    pub backed_up: bool,
    /// When it was revoked (absent while it is usable).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A citizen as stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CitizenView {
    /// Id.
    pub id: String,
    /// Given name(s).
    pub given_name: String,
    /// Family name(s).
    pub family_name: String,
    /// `YYYY-MM-DD`.
    pub birthdate: String,
    /// Normalised national id.
    pub national_id: String,
    /// E-mail, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// When registered.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Which admin credential registered the citizen.
    pub registered_by: String,
    /// Passkeys.
    pub passkeys: Vec<PasskeyView>,
}

impl CitizenView {
    fn new(c: Citizen, passkeys: Vec<PasskeySummary>) -> Self {
        Self {
            id: c.id,
            given_name: c.given_name,
            family_name: c.family_name,
            birthdate: c.birthdate.to_string(),
            national_id: c.national_id,
            email: c.email,
            created_at: c.created_at,
            registered_by: c.registered_by,
            passkeys: passkeys
                .into_iter()
                .map(|p| PasskeyView {
                    id: p.id,
                    created_at: p.created_at,
                    last_used_at: p.last_used_at,
                    backup_eligible: p.backup_eligible,
                    backed_up: p.backed_up,
                    revoked_at: p.revoked_at,
                })
                .collect(),
        }
    }
}

fn enrolment(state: &AppState, code: EnrolmentCode) -> Enrolment {
    Enrolment {
        enrolment_url: format!("{}/enrol?code={}", state.issuer, code.code.as_str()),
        enrolment_code: code.code.to_string(),
        expires_at: code.expires_at,
    }
}

/// 201 with a `Location` (the body holds a one-time code: never cached, see `http::router`).
fn created(location: Option<String>, body: impl Serialize) -> Response {
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, v);
    }
    resp
}

/// Registers a citizen and returns the first enrolment link.
#[utoipa::path(post, path = "/admin/v1/citizens", tag = "admin", security(("admin" = [])),
    request_body = CreateCitizen,
    responses(
        (status = 201, body = CitizenCreated),
        (status = 401, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_citizen(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateCitizen>,
) -> Result<Response> {
    let input = NewCitizen {
        given_name: body.given_name,
        family_name: body.family_name,
        birthdate: body.birthdate,
        national_id: body.national_id,
        email: body.email,
    };
    let actor = admin.actor.clone();
    let (citizen, code) = state
        .run(move |s| s.registry().register(input, &actor, s.now()))
        .await?;
    tracing::info!(citizen_id = %citizen.id, actor = %admin.actor, "citizen registered");
    let location = format!("/admin/v1/citizens/{}", citizen.id);
    Ok(created(
        Some(location),
        CitizenCreated {
            id: citizen.id,
            enrolment: enrolment(&state, code),
        },
    ))
}

/// Reads a citizen and their passkeys.
#[utoipa::path(get, path = "/admin/v1/citizens/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Citizen id")),
    responses((status = 200, body = CitizenView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_citizen(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<CitizenView>> {
    let view = state
        .run(move |s| {
            let citizen = s.registry().get(&id)?;
            let passkeys = s.passkeys().summaries(&citizen)?;
            Ok::<_, crate::domain::DomainError>(CitizenView::new(citizen, passkeys))
        })
        .await?;
    Ok(axum::Json(view))
}

/// Issues a new enrolment link (recovery); the previous link stops working.
#[utoipa::path(post, path = "/admin/v1/citizens/{id}/enrolment", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Citizen id")),
    responses((status = 201, body = Enrolment), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn new_enrolment(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<Response> {
    let citizen_id = id.clone();
    let code = state
        .run(move |s| s.registry().new_enrolment(&citizen_id, s.now()))
        .await?;
    tracing::info!(citizen_id = %id, actor = %admin.actor, "enrolment code issued");
    Ok(created(None, enrolment(&state, code)))
}

/// Revokes a passkey: it no longer logs in, and sessions created with it end.
#[utoipa::path(delete, path = "/admin/v1/citizens/{id}/passkeys/{passkey_id}", tag = "admin",
    security(("admin" = [])),
    params(("id" = String, Path, description = "Citizen id"),
           ("passkey_id" = String, Path, description = "Passkey (credential) id")),
    responses((status = 204, description = "Revoked"), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_passkey(
    State(state): State<AppState>,
    admin: Admin,
    ApiPath((id, passkey_id)): ApiPath<(String, String)>,
) -> Result<StatusCode> {
    let (citizen_id, credential_id) = (id.clone(), passkey_id.clone());
    state
        .run(move |s| {
            let now = s.now();
            s.passkeys().revoke(&citizen_id, &credential_id, now)?;
            // Its sessions are over: every client that received an ID token in one is told.
            let notices = s.provider().logout_notices(&credential_id, None, now)?;
            s.logout_sender.send(notices);
            Ok::<_, crate::domain::DomainError>(())
        })
        .await?;
    tracing::info!(citizen_id = %id, %passkey_id, actor = %admin.actor, "passkey revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Body of the test-clock route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    /// Seconds to move the clock forward.
    pub advance_seconds: i64,
}

/// Moves the service's clock forward (tests only: the route exists only in debug builds
/// started with `CIVIS_TEST_CLOCK=1`, see `app::clocks`). Not part of the API.
pub async fn advance_clock(
    State(state): State<AppState>,
    _admin: Admin,
    ApiJson(body): ApiJson<AdvanceClock>,
) -> StatusCode {
    match &state.test_clock {
        Some(clock) => {
            clock.advance(time::Duration::seconds(body.advance_seconds));
            tracing::warn!(seconds = body.advance_seconds, "test clock moved");
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NOT_FOUND,
    }
}
