//! Admin API for agency onboarding (CONTRACT.md §2): registering OAuth / OpenID Connect
//! clients, behind the admin bearer token.

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
use crate::domain::DomainError;
use crate::domain::clients::{Client, NewClient, PROFILE_FAPI2};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/clients", post(create_client))
        .route("/admin/v1/clients/{id}", get(get_client))
}

/// A client to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// Display name shown to citizens (1–100 characters).
    pub name: String,
    /// Exact redirect URIs: https, or http on localhost / 127.0.0.1 / [::1]; no fragment.
    /// May be empty (or absent) only when `grant_types` is `["client_credentials"]`.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may return to (same rules as redirect URIs).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `client_secret_basic` (default), `client_secret_post`, `private_key_jwt` or `none`.
    pub token_endpoint_auth_method: Option<String>,
    /// JWK Set with at least one EC P-256 public key; required for `private_key_jwt` only.
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Space-separated scopes the client may ask for (default `openid profile email`);
    /// known: `openid profile email national_id sign seal`.
    pub scope: Option<String>,
    /// `public` (default) or `pairwise` (all redirect URIs must then share one host).
    pub subject_type: Option<String>,
    /// Default `["authorization_code", "refresh_token"]`; also `client_credentials`.
    pub grant_types: Option<Vec<String>>,
    /// RFC 9126: `/authorize` only with a `request_uri` from the PAR endpoint.
    pub require_pushed_authorization_requests: Option<bool>,
    /// RFC 9449: every token request carries a DPoP proof; tokens are bound to its key.
    pub dpop_bound_access_tokens: Option<bool>,
    /// Back-channel logout receiver: https, or http on loopback hosts.
    pub backchannel_logout_uri: Option<String>,
    /// The receiver needs `sid` in logout tokens (civis always sends it).
    pub backchannel_logout_session_required: Option<bool>,
    /// `fapi2`: the FAPI 2.0 Security Profile (PAR, DPoP, `private_key_jwt`, ES256, short
    /// codes). Implies the two flags above.
    pub profile: Option<String>,
}

/// A client's registration as stored (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    /// The client id.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// Exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// How the client authenticates at the token endpoint.
    pub token_endpoint_auth_method: String,
    /// Registered public keys (`private_key_jwt` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// Space-separated allowed scopes.
    pub scope: String,
    /// `public` or `pairwise`.
    pub subject_type: String,
    /// Allowed grant types.
    pub grant_types: Vec<String>,
    /// When registered (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Whether `/authorize` needs a pushed request.
    pub require_pushed_authorization_requests: bool,
    /// Whether tokens must be DPoP-bound.
    pub dpop_bound_access_tokens: bool,
    /// Back-channel logout receiver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Whether the receiver needs `sid`.
    pub backchannel_logout_session_required: bool,
    /// `fapi2` when the client is held to that profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

impl From<Client> for ClientView {
    fn from(c: Client) -> Self {
        Self {
            token_endpoint_auth_method: c.auth_method.as_str().to_owned(),
            scope: c.scope(),
            subject_type: c.subject_type.as_str().to_owned(),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            client_id: c.id,
            name: c.name,
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            jwks: c.jwks,
            created_at: c.created_at,
            require_pushed_authorization_requests: c.security.require_par,
            dpop_bound_access_tokens: c.security.dpop_bound,
            backchannel_logout_session_required: c.security.backchannel_logout_session_required,
            profile: c.security.fapi2.then(|| PROFILE_FAPI2.to_owned()),
            backchannel_logout_uri: c.security.backchannel_logout_uri,
        }
    }
}

/// Answer to a registration: the secret (for `client_secret_basic` / `client_secret_post`)
/// appears here once and is never shown again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientCreated {
    /// The client secret (256 bits, base64url), shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The normalised registration.
    #[serde(flatten)]
    pub client: ClientView,
}

/// Registers an agency client and returns its id and, for secret-based methods, its secret.
#[utoipa::path(post, path = "/admin/v1/clients", tag = "admin", security(("admin" = [])),
    request_body = CreateClient,
    responses(
        (status = 201, body = ClientCreated, description = "Registered; the secret is shown once"),
        (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn create_client(
    State(state): State<AppState>,
    admin: Admin,
    ApiJson(body): ApiJson<CreateClient>,
) -> Result<Response> {
    let input = NewClient {
        name: body.name,
        redirect_uris: body.redirect_uris,
        post_logout_redirect_uris: body.post_logout_redirect_uris,
        token_endpoint_auth_method: body.token_endpoint_auth_method,
        jwks: body.jwks,
        scope: body.scope,
        subject_type: body.subject_type,
        grant_types: body.grant_types,
        require_pushed_authorization_requests: body.require_pushed_authorization_requests,
        dpop_bound_access_tokens: body.dpop_bound_access_tokens,
        backchannel_logout_uri: body.backchannel_logout_uri,
        backchannel_logout_session_required: body.backchannel_logout_session_required,
        profile: body.profile,
    };
    let (client, secret) = state
        .run(move |s| s.clients().register(input, s.now()))
        .await?;
    tracing::info!(
        client_id = %client.id,
        auth_method = client.auth_method.as_str(),
        actor = %admin.actor,
        "client registered"
    );
    let location = HeaderValue::from_str(&format!("/admin/v1/clients/{}", client.id)).ok();
    let body = ClientCreated {
        client_secret: secret.map(|s| s.to_string()),
        client: client.into(),
    };
    let mut resp = (StatusCode::CREATED, axum::Json(body)).into_response();
    let h = resp.headers_mut();
    if let Some(v) = location {
        h.insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Reads a client's registration (without its secret).
#[utoipa::path(get, path = "/admin/v1/clients/{id}", tag = "admin", security(("admin" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = ClientView), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn get_client(
    State(state): State<AppState>,
    _admin: Admin,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<ClientView>> {
    let client = state
        .run(move |s| s.clients().get(&id))
        .await?
        .ok_or(DomainError::NotFound("client"))?;
    Ok(axum::Json(client.into()))
}
