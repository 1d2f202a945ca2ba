//! The OpenID Provider endpoints (CONTRACT.md §4): discovery, JWKS, authorization (with the
//! consent page), token, userinfo, introspection, revocation and RP-initiated logout.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::json;
use time::OffsetDateTime;

use super::client_auth::authenticate_client;
use super::error::{ApiError, BearerError, OAuthError, OAuthErrorCode};
use super::pages::{escape, page_with_form_targets, problem_page};
use super::passkey::{passkeys, session_token};
use crate::app::AppState;
use crate::domain::DomainError;
use crate::domain::clients::{Client, Clients};
use crate::domain::oidc::authorize::{AuthorizeError, AuthorizeParams, Next, error_redirect_url};
use crate::domain::oidc::{ACR_HIGH, ACR_SUBSTANTIAL, Provider, SCOPES};
use crate::domain::passkeys::{Session, session_hash};
use crate::store::oidc::PendingAuthorization;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/authorize/continue", get(authorize_continue))
        .route("/authorize/consent", post(consent))
        .route(
            "/session/consents/{client_id}",
            axum::routing::delete(withdraw_consent),
        )
        .route("/token", post(token))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/introspect", post(introspect))
        .route("/revoke", post(revoke))
        .route("/end_session", get(end_session_get).post(end_session_post))
        .route("/end_session/confirm", post(end_session_confirm))
}

fn provider(state: &AppState) -> Provider<'_> {
    Provider {
        store: &state.store,
        rng: state.rng.as_ref(),
        keys: &state.keys,
        issuer: &state.issuer,
        refresh_grace: state.config.refresh_grace,
    }
}

fn clients(state: &AppState) -> Clients<'_> {
    Clients {
        store: &state.store,
        rng: state.rng.as_ref(),
        keys: &state.keys,
    }
}

fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

async fn discovery(State(state): State<AppState>) -> Response {
    let i = &*state.issuer;
    let scopes: Vec<&str> = SCOPES.iter().map(|(s, _)| *s).collect();
    let mut claims: Vec<&str> = SCOPES.iter().flat_map(|(_, c)| c.iter().copied()).collect();
    claims.extend([
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "at_hash",
        "sid",
        "azp",
    ]);
    let auth_methods = [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    ];
    let doc = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "introspection_endpoint": format!("{i}/introspect"),
        "revocation_endpoint": format!("{i}/revoke"),
        "end_session_endpoint": format!("{i}/end_session"),
        "scopes_supported": scopes,
        "claims_supported": claims,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": [ACR_SUBSTANTIAL, ACR_HIGH],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "introspection_endpoint_auth_methods_supported": auth_methods[..3],
        "introspection_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "userinfo_signing_alg_values_supported": [],
    });
    axum::Json(doc).into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = axum::Json(state.keys.tokens().jwks()).into_response();
    // Short enough that a rotated key (published an activation lead before it signs) is
    // fetched in time; clients also refetch on an unknown kid.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// The live session of the browser, with the hash of its token.
fn current_session(
    state: &AppState,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<Option<(Session, [u8; 32])>, DomainError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    Ok(passkeys(state)
        .session(&token, now)?
        .map(|s| (s, session_hash(&token))))
}

fn authorize_error(state: &AppState, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(msg) => problem_page(StatusCode::BAD_REQUEST, "Cannot continue", msg),
        AuthorizeError::Redirect(r) => match error_redirect_url(&r, &state.issuer) {
            Some(url) => Redirect::to(&url).into_response(),
            None => problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot continue",
                "The application's return address is malformed.",
            ),
        },
        AuthorizeError::Internal(e) => ApiError::from(e).into_response(),
    }
}

async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<AuthorizeParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match q {
        Ok(Query(p)) => authorize(&state, &headers, p),
        Err(_) => problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "The sign-in request is malformed.",
        ),
    }
}

async fn authorize_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<axum::Form<AuthorizeParams>, axum::extract::rejection::FormRejection>,
) -> Response {
    match f {
        Ok(axum::Form(p)) => authorize(&state, &headers, p),
        Err(_) => problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "The sign-in request is malformed.",
        ),
    }
}

fn authorize(state: &AppState, headers: &HeaderMap, p: AuthorizeParams) -> Response {
    let now = OffsetDateTime::now_utc();
    let client = match p
        .client_id
        .as_deref()
        .map(|id| clients(state).get(id))
        .transpose()
    {
        Ok(c) => c.flatten(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let prov = provider(state);
    let pending = match prov.validate_authorization(&p, client.as_ref(), now) {
        Ok(p) => p,
        Err(e) => return authorize_error(state, e),
    };
    match prov.park(&pending) {
        Ok(id) => proceed(state, headers, &id, &pending, client.as_ref(), now),
        Err(e) => authorize_error(state, e),
    }
}

/// Query of `/authorize/continue`.
#[derive(Debug, serde::Deserialize)]
struct ContinueQuery {
    request: String,
}

async fn authorize_continue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ContinueQuery>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    match state.store.pending(&q.request) {
        Ok(Some(p)) if p.expires_at > now => {
            let client = clients(&state).get(&p.client_id).ok().flatten();
            proceed(&state, &headers, &q.request, &p, client.as_ref(), now)
        }
        Ok(_) => problem_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in took too long. Please go back to the application and start again.",
        ),
        Err(e) => ApiError::from(DomainError::from(e)).into_response(),
    }
}

fn proceed(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    p: &PendingAuthorization,
    client: Option<&Client>,
    now: OffsetDateTime,
) -> Response {
    let session = match current_session(state, headers, now) {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match provider(state).decide(p, session.as_ref().map(|s| &s.0), now) {
        Ok(Next::Login) => {
            let back = format!("/authorize/continue?request={id}");
            let url = format!(
                "/login?return_to={}",
                url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
            );
            Redirect::to(&url).into_response()
        }
        Ok(Next::Consent) => match (session, client) {
            (Some((_, hash)), Some(c)) => consent_page(state, id, p, c, &hash),
            _ => problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot continue",
                "Please start again from the application.",
            ),
        },
        Ok(Next::Issue) => match session {
            Some((s, hash)) => issue(state, id, &s, &hash, now),
            None => problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot continue",
                "Please start again from the application.",
            ),
        },
        Err(e) => authorize_error(state, e),
    }
}

fn issue(
    state: &AppState,
    id: &str,
    s: &Session,
    hash: &[u8; 32],
    now: OffsetDateTime,
) -> Response {
    let p = match state.store.take_pending(id) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Already done",
                "This sign-in was already completed. Please go back to the application.",
            );
        }
        Err(e) => return ApiError::from(DomainError::from(e)).into_response(),
    };
    let backup_eligible = state
        .store
        .credential(&s.credential_id)
        .ok()
        .flatten()
        .is_some_and(|c| c.summary().backup_eligible);
    match provider(state).issue_code(&p, s, hash, backup_eligible, now) {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn csrf(state: &AppState, purpose: &str, session_hash: &[u8; 32], bound_to: &str) -> String {
    let mut data = session_hash.to_vec();
    data.extend_from_slice(bound_to.as_bytes());
    crate::store::record::hex(&state.keys.keyed_hash(purpose, &data))
}

fn csrf_ok(
    state: &AppState,
    purpose: &str,
    session_hash: &[u8; 32],
    bound_to: &str,
    presented: &str,
) -> bool {
    use subtle::ConstantTimeEq;
    csrf(state, purpose, session_hash, bound_to)
        .as_bytes()
        .ct_eq(presented.as_bytes())
        .into()
}

fn origin_of(uri: &str) -> Option<String> {
    url::Url::parse(uri)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

fn scope_text(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are (a pseudonymous identifier)",
        "profile" => "Your name and date of birth",
        "email" => "Your e-mail address",
        "national_id" => "Your national identification number",
        "sign" => "Request signatures in your name (each one needs your approval)",
        "seal" => "Seal documents for the organisation",
        _ => "Other access",
    }
}

fn consent_page(
    state: &AppState,
    id: &str,
    p: &PendingAuthorization,
    client: &Client,
    hash: &[u8; 32],
) -> Response {
    let items: String = p
        .scopes
        .iter()
        .map(|s| format!("<li>{}</li>", escape(scope_text(s))))
        .collect();
    let body = format!(
        "<p><strong>{name}</strong> asks to use your civis account. It will receive:</p>\n<ul>{items}</ul>\n\
         <form method=\"post\" action=\"/authorize/consent\">\n\
         <input type=\"hidden\" name=\"request\" value=\"{id}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\n\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button>\n</form>\n\
         <p class=\"note\">You can withdraw this later; civis remembers your answer for this application.</p>",
        name = escape(&client.name),
        id = escape(id),
        csrf = csrf(state, "consent-csrf", hash, id),
    );
    let target = origin_of(&p.redirect_uri).unwrap_or_default();
    page_with_form_targets(StatusCode::OK, "Allow access?", "", &body, &[&target])
}

/// Form of the consent page.
#[derive(Debug, serde::Deserialize)]
struct ConsentForm {
    request: String,
    csrf: String,
    decision: String,
}

async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<axum::Form<ConsentForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let Ok(axum::Form(f)) = f else {
        return problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot continue",
            "The form was incomplete.",
        );
    };
    let session = match current_session(&state, &headers, now) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Signed out",
                "Your session has ended. Please start again from the application.",
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !csrf_ok(&state, "consent-csrf", &session.1, &f.request, &f.csrf) {
        return problem_page(
            StatusCode::FORBIDDEN,
            "Cannot continue",
            "This form was not issued for your session. Please start again.",
        );
    }
    let p = match state.store.pending(&f.request) {
        Ok(Some(p)) if p.expires_at > now => p,
        Ok(_) => {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Sign-in expired",
                "This sign-in took too long. Please go back to the application and start again.",
            );
        }
        Err(e) => return ApiError::from(DomainError::from(e)).into_response(),
    };
    match f.decision.as_str() {
        "allow" => {
            if let Err(e) = provider(&state).remember_consent(&session.0.citizen_id, &p, now) {
                return ApiError::from(e).into_response();
            }
            issue(&state, &f.request, &session.0, &session.1, now)
        }
        _ => {
            let _ = state.store.take_pending(&f.request);
            let e = crate::domain::oidc::authorize::ErrorRedirect {
                redirect_uri: p.redirect_uri.clone(),
                error: "access_denied",
                description: "the citizen denied the request".into(),
                state: p.state.clone(),
            };
            authorize_error(&state, AuthorizeError::Redirect(e))
        }
    }
}

/// The signed-in citizen withdraws their consent for a client: the next authorization asks
/// again. (Tokens already issued stay valid until they expire or are revoked.)
async fn withdraw_consent(
    State(state): State<AppState>,
    _o: super::passkey::SameOrigin,
    headers: HeaderMap,
    axum::extract::Path(client_id): axum::extract::Path<String>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    match current_session(&state, &headers, now) {
        Ok(Some((s, _))) => match provider(&state).revoke_consent(&s.citizen_id, &client_id) {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => ApiError::from(e).into_response(),
        },
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// An `application/x-www-form-urlencoded` body with OAuth error handling: wrong type, bad
/// encoding or a repeated parameter (RFC 6749 §3.1) is `invalid_request`.
struct OAuthForm(HashMap<String, String>);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let bad =
            |d: &str| no_store(OAuthError::new(OAuthErrorCode::InvalidRequest, d).into_response());
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        if !form_type {
            return Err(bad("the body must be application/x-www-form-urlencoded"));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| bad("the body could not be read"))?;
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(&body) {
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(bad(&format!("parameter {k} is repeated")));
            }
        }
        Ok(Self(map))
    }
}

/// Authenticates the client of an OAuth request (failures throttled per address).
fn authenticate(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Client, Box<Response>> {
    let token_url = format!("{}/token", state.issuer);
    let audiences = [token_url.as_str(), &*state.issuer];
    authenticate_client(state, peer.ip(), headers, form, &audiences)
        .map_err(|e| Box::new(no_store(e.into_response())))
}

async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<OAuthForm, Response>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let OAuthForm(form) = match form {
        Ok(f) => f,
        Err(r) => return r,
    };
    let client = match authenticate(&state, peer, &headers, &form) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let get = |k: &str| form.get(k).map(String::as_str);
    let prov = provider(&state);
    let result = match get("grant_type") {
        Some("authorization_code") => prov.exchange_code(
            &client,
            get("code"),
            get("redirect_uri"),
            get("code_verifier"),
            now,
        ),
        Some("refresh_token") => prov.refresh(&client, get("refresh_token"), get("scope"), now),
        Some("client_credentials") => prov.client_credentials(&client, get("scope"), now),
        None => Err(crate::domain::oidc::tokens::TokenError::InvalidRequest(
            "grant_type is required",
        )),
        Some(_) => Err(crate::domain::oidc::tokens::TokenError::UnsupportedGrantType),
    };
    match result {
        Ok(t) => {
            state.metrics.tokens.inc();
            no_store(axum::Json(t).into_response())
        }
        Err(e) => no_store(OAuthError::from(e).into_response()),
    }
}

/// The bearer token of a resource request: `Authorization: Bearer` or, for POST, the
/// `access_token` form field (RFC 6750 §2.1, §2.2) — never both.
fn bearer(
    headers: &HeaderMap,
    form: Option<&HashMap<String, String>>,
) -> Result<String, BearerError> {
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let form_token = form.and_then(|f| f.get("access_token").cloned());
    match (header_token, form_token) {
        (Some(_), Some(_)) => Err(BearerError::Invalid("token sent twice".into())),
        (Some(t), None) | (None, Some(t)) if !t.is_empty() => Ok(t),
        _ => Err(BearerError::Missing),
    }
}

async fn userinfo(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form: Option<HashMap<String, String>> =
        (!body.is_empty()).then(|| url::form_urlencoded::parse(&body).into_owned().collect());
    let result = (|| {
        let token = bearer(&headers, form.as_ref())?;
        let prov = provider(&state);
        let claims = prov
            .verify_access_token(&token, OffsetDateTime::now_utc())
            .map_err(|e| match e {
                crate::domain::oidc::tokens::InvalidToken::Internal(d) => BearerError::Internal(d),
                other => BearerError::Invalid(other.to_string()),
            })?;
        if claims.gid.is_none() || !claims.scope.split(' ').any(|s| s == "openid") {
            return Err(BearerError::InsufficientScope("openid"));
        }
        prov.userinfo(&claims).map_err(BearerError::Internal)
    })();
    match result {
        Ok(v) => no_store(axum::Json(v).into_response()),
        Err(e) => e.into_response(),
    }
}

async fn introspect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<OAuthForm, Response>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let OAuthForm(form) = match form {
        Ok(f) => f,
        Err(r) => return r,
    };
    let client = match authenticate(&state, peer, &headers, &form) {
        Ok(c) if !c.is_public() => c,
        Ok(_) => {
            return no_store(
                OAuthError::new(
                    OAuthErrorCode::InvalidClient,
                    "public clients cannot introspect",
                )
                .into_response(),
            );
        }
        Err(r) => return *r,
    };
    let Some(token) = form.get("token") else {
        return no_store(
            OAuthError::new(OAuthErrorCode::InvalidRequest, "token is required").into_response(),
        );
    };
    match provider(&state).introspect(&client, token, now) {
        Ok(v) => no_store(axum::Json(v).into_response()),
        Err(e) => no_store(OAuthError::from(e).into_response()),
    }
}

async fn revoke(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<OAuthForm, Response>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let OAuthForm(form) = match form {
        Ok(f) => f,
        Err(r) => return r,
    };
    let client = match authenticate(&state, peer, &headers, &form) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(token) = form.get("token") else {
        return no_store(
            OAuthError::new(OAuthErrorCode::InvalidRequest, "token is required").into_response(),
        );
    };
    match provider(&state).revoke(&client, token, now) {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => no_store(OAuthError::from(e).into_response()),
    }
}

/// Parameters of RP-initiated logout.
#[derive(Debug, Default, serde::Deserialize)]
struct EndSessionParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
}

async fn end_session_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(p): Query<EndSessionParams>,
) -> Response {
    end_session(&state, &headers, p)
}

async fn end_session_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<axum::Form<EndSessionParams>, axum::extract::rejection::FormRejection>,
) -> Response {
    match f {
        Ok(axum::Form(p)) => end_session(&state, &headers, p),
        Err(_) => problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot log out",
            "The logout request is malformed.",
        ),
    }
}

/// The client named by a valid (possibly expired) ID token of ours.
fn hinted_client(state: &AppState, hint: &str) -> Option<Client> {
    crate::crypto::jwt::install_provider();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_issuer(&[&*state.issuer]);
    v.validate_exp = false;
    v.validate_aud = false;
    v.set_required_spec_claims(&["iss", "aud"]);
    let kid = jsonwebtoken::decode_header(hint).ok()?.kid?;
    let dk = state.keys.tokens().by_kid(&kid)?.decoding_key().ok()?;
    let data = jsonwebtoken::decode::<serde_json::Value>(hint, &dk, &v).ok()?;
    if data
        .header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt"))
    {
        return None;
    }
    let aud = data.claims.get("aud")?.as_str()?.to_owned();
    clients(state).get(&aud).ok().flatten()
}

/// Where to send the browser after logout: the requested address if it is registered
/// exactly for the client, with `state`. The error is the page to show instead.
fn logout_redirect(
    client: Option<&Client>,
    p: &EndSessionParams,
) -> Result<Option<String>, Box<Response>> {
    let Some(uri) = p.post_logout_redirect_uri.as_deref() else {
        return Ok(None);
    };
    let refuse = |msg: &str| Box::new(problem_page(StatusCode::BAD_REQUEST, "Cannot log out", msg));
    if !client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri)) {
        return Err(refuse(
            "The application asked to return to an address that is not registered with civis.",
        ));
    }
    let mut url = url::Url::parse(uri).map_err(|_| refuse("The return address is malformed."))?;
    if let Some(s) = &p.state {
        url.query_pairs_mut().append_pair("state", s);
    }
    Ok(Some(url.into()))
}

fn clear_session(state: &AppState, headers: &HeaderMap, mut resp: Response) -> Response {
    if let Some(token) = session_token(headers)
        && let Err(e) = passkeys(state).logout(&token)
    {
        return ApiError::from(e).into_response();
    }
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-civis_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax",
        ),
    );
    resp
}

fn logged_out(state: &AppState, headers: &HeaderMap, redirect: Option<String>) -> Response {
    tracing::info!("session ended (RP-initiated logout)");
    let resp = match redirect {
        Some(url) => Redirect::to(&url).into_response(),
        None => problem_page(
            StatusCode::OK,
            "Logged out",
            "You have been logged out of civis.",
        ),
    };
    clear_session(state, headers, resp)
}

fn end_session(state: &AppState, headers: &HeaderMap, p: EndSessionParams) -> Response {
    let now = OffsetDateTime::now_utc();
    if let Some(hint) = p.id_token_hint.as_deref() {
        let Some(client) = hinted_client(state, hint) else {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot log out",
                "The logout request carries an invalid token.",
            );
        };
        if p.client_id.as_deref().is_some_and(|c| c != client.id) {
            return problem_page(
                StatusCode::BAD_REQUEST,
                "Cannot log out",
                "The logout request is inconsistent.",
            );
        }
        return match logout_redirect(Some(&client), &p) {
            Ok(r) => logged_out(state, headers, r),
            Err(page) => *page,
        };
    }
    // Without a hint anyone could link here: ask the person.
    let client = p
        .client_id
        .as_deref()
        .and_then(|id| clients(state).get(id).ok().flatten());
    if let Err(page) = logout_redirect(client.as_ref(), &p) {
        return *page;
    }
    let session = match current_session(state, headers, now) {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some((_, hash)) = session else {
        return problem_page(
            StatusCode::OK,
            "Logged out",
            "You are not logged in to civis.",
        );
    };
    let hidden = |k: &str, v: Option<&str>| {
        v.map(|v| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">\n",
                escape(v)
            )
        })
        .unwrap_or_default()
    };
    let body = format!(
        "<p>Do you want to log out of civis?</p>\n<form method=\"post\" action=\"/end_session/confirm\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n{}{}{}<button type=\"submit\">Log out</button>\n</form>",
        csrf(state, "logout-csrf", &hash, ""),
        hidden(
            "post_logout_redirect_uri",
            p.post_logout_redirect_uri.as_deref()
        ),
        hidden("state", p.state.as_deref()),
        hidden("client_id", p.client_id.as_deref()),
    );
    let target = p
        .post_logout_redirect_uri
        .as_deref()
        .and_then(origin_of)
        .unwrap_or_default();
    page_with_form_targets(StatusCode::OK, "Log out", "", &body, &[&target])
}

/// Form of the logout confirmation.
#[derive(Debug, serde::Deserialize)]
struct ConfirmForm {
    csrf: String,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    client_id: Option<String>,
}

async fn end_session_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    f: Result<axum::Form<ConfirmForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let Ok(axum::Form(f)) = f else {
        return problem_page(
            StatusCode::BAD_REQUEST,
            "Cannot log out",
            "The form was incomplete.",
        );
    };
    let session = match current_session(&state, &headers, now) {
        Ok(Some(s)) => s,
        Ok(None) => {
            return problem_page(
                StatusCode::OK,
                "Logged out",
                "You are not logged in to civis.",
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    if !csrf_ok(&state, "logout-csrf", &session.1, "", &f.csrf) {
        return problem_page(
            StatusCode::FORBIDDEN,
            "Cannot log out",
            "This form was not issued for your session.",
        );
    }
    let p = EndSessionParams {
        id_token_hint: None,
        post_logout_redirect_uri: f.post_logout_redirect_uri,
        state: f.state,
        client_id: f.client_id,
    };
    let client = p
        .client_id
        .as_deref()
        .and_then(|id| clients(&state).get(id).ok().flatten());
    match logout_redirect(client.as_ref(), &p) {
        Ok(r) => logged_out(&state, &headers, r),
        Err(page) => *page,
    }
}
