//! The OpenID Provider endpoints (CONTRACT.md §4): the router of all of them, discovery,
//! JWKS, token, userinfo, introspection and revocation, and helpers shared with
//! [`super::authorize`] (authorization and consent) and [`super::logout`] (RP-initiated logout).

use std::collections::HashMap;
use std::net::IpAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use time::OffsetDateTime;

use super::client_auth::authenticate_client;
use super::error::{ApiError, BearerError, OAuthError, OAuthErrorCode};
use super::pages::problem_page;
use super::passkey::session_token;
use super::state::AppState;
use super::{authorize, logout};
use crate::domain::DomainError;
use crate::domain::clients::Client;
use crate::domain::oidc::authorize::AuthorizeParams;
use crate::domain::oidc::dpop::{Expected, NonceRule};
use crate::domain::oidc::grants::TokenError;
use crate::domain::oidc::pushed::PushError;
use crate::domain::oidc::{ACR_HIGH, ACR_SUBSTANTIAL, SCOPES};
use crate::domain::passkeys::{Session, session_hash};

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/authorize/continue", get(authorize::authorize_continue))
        .route("/authorize/consent", post(authorize::consent))
        .route(
            "/session/consents/{client_id}",
            axum::routing::delete(authorize::withdraw_consent),
        )
        .route("/par", post(par))
        .route("/token", post(token))
        .route("/userinfo", get(userinfo).post(userinfo))
        .route("/introspect", post(introspect))
        .route("/revoke", post(revoke))
        .route(
            "/end_session",
            get(logout::end_session_get).post(logout::end_session_post),
        )
        .route("/end_session/confirm", post(logout::end_session_confirm))
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
    // LoA high is reachable only with attestation roots to verify hardware keys against;
    // advertising it otherwise would invite requests that can never be met.
    let acr_values: &[&str] = if state.config.attestation_roots.is_some() {
        &[ACR_SUBSTANTIAL, ACR_HIGH]
    } else {
        &[ACR_SUBSTANTIAL]
    };
    let doc = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "introspection_endpoint": format!("{i}/introspect"),
        "revocation_endpoint": format!("{i}/revoke"),
        "end_session_endpoint": format!("{i}/end_session"),
        "pushed_authorization_request_endpoint": format!("{i}/par"),
        "require_pushed_authorization_requests": false,
        "dpop_signing_alg_values_supported": ["ES256"],
        "scopes_supported": scopes,
        "claims_supported": claims,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": acr_values,
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
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
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
pub(super) fn current_session(
    state: &AppState,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<Option<(Session, [u8; 32])>, DomainError> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    Ok(state
        .passkeys()
        .session(&token, now)?
        .map(|s| (s, session_hash(&token))))
}

pub(super) fn csrf(
    state: &AppState,
    purpose: &str,
    session_hash: &[u8; 32],
    bound_to: &str,
) -> String {
    let mut data = session_hash.to_vec();
    data.extend_from_slice(bound_to.as_bytes());
    crate::crypto::digest::hex(&state.keys.hashes.keyed_hash(purpose, &data))
}

/// What a page says when a form posted from it fails the session and CSRF checks.
pub(super) struct FormRefusals {
    /// No live session: status, title and message.
    pub signed_out: (StatusCode, &'static str, &'static str),
    /// The CSRF value was not issued for this session: title and message (403).
    pub forged: (&'static str, &'static str),
}

/// The preamble of every form posted from our pages: the live session, and the CSRF value
/// issued for it, for `purpose` and `bound_to`. The error is the page to answer instead.
pub(super) fn form_session(
    state: &AppState,
    headers: &HeaderMap,
    purpose: &str,
    bound_to: &str,
    presented_csrf: &str,
    refusals: &FormRefusals,
) -> Result<(Session, [u8; 32]), Box<Response>> {
    let session = match current_session(state, headers, state.now()) {
        Ok(Some(s)) => s,
        Ok(None) => {
            let (status, title, message) = refusals.signed_out;
            return Err(Box::new(problem_page(status, title, message)));
        }
        Err(e) => return Err(Box::new(ApiError::from(e).into_response())),
    };
    if !csrf_ok(state, purpose, &session.1, bound_to, presented_csrf) {
        let (title, message) = refusals.forged;
        return Err(Box::new(problem_page(
            StatusCode::FORBIDDEN,
            title,
            message,
        )));
    }
    Ok(session)
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

pub(super) fn origin_of(uri: &str) -> Option<String> {
    url::Url::parse(uri)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

/// The extractor of the token, introspection and revocation endpoints: the
/// `application/x-www-form-urlencoded` body with OAuth error handling (wrong type, bad
/// encoding or a repeated parameter, RFC 6749 §3.1, is `invalid_request`), and what client
/// authentication needs: the client address (failures are throttled per network) and the
/// headers (HTTP Basic).
struct OAuthRequest {
    client: IpAddr,
    headers: HeaderMap,
    form: HashMap<String, String>,
}

impl FromRequest<AppState> for OAuthRequest {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let bad = |d: &str| OAuthError::new(OAuthErrorCode::InvalidRequest, d).into_response();
        // Present on every connection the server accepts (`into_make_service_with_connect_info`).
        let client = super::client_addr::client_addr(
            req.extensions(),
            req.headers(),
            &state.config.trusted_proxies,
        )
        .ok_or_else(|| {
            OAuthError::new(OAuthErrorCode::ServerError, "no peer address").into_response()
        })?;
        let headers = req.headers().clone();
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
        Ok(Self {
            client,
            headers,
            form: map,
        })
    }
}

/// The authenticated client of an OAuth request (failures throttled per address); the
/// error is the answer to send instead.
fn authenticate(
    state: &AppState,
    client: IpAddr,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Client, Box<Response>> {
    // RFC 7523 §3 and RFC 9126 §2: the endpoint's URL or the issuer (FAPI 2.0 §5.3.2.1
    // asks that the issuer be accepted) — one list for the token, PAR, introspection and
    // revocation endpoints: an assertion's jti is spent wherever it is used first.
    let token_url = token_url(state);
    let par_url = format!("{}/par", state.issuer);
    let audiences = [token_url.as_str(), &par_url, &*state.issuer];
    authenticate_client(state, client, headers, form, &audiences)
        .map_err(|e| Box::new(e.into_response()))
}

async fn token(State(state): State<AppState>, req: OAuthRequest) -> Response {
    let OAuthRequest {
        client,
        headers,
        form,
    } = req;
    let proof = match dpop_header(&headers) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    if form
        .get("grant_type")
        .is_some_and(|g| g == "client_credentials")
    {
        let with_proof = proof.is_some();
        let resp = client_credentials(state.clone(), client, headers, form, proof).await;
        return with_dpop_nonce(&state, resp, with_proof);
    }
    // The other grants, and any grant with a DPoP proof (whose jti is spent), read and
    // write the store.
    let with_proof = proof.is_some();
    let resp = state
        .run(move |s| token_answer(s, client, &headers, &form, proof.as_deref()))
        .await;
    with_dpop_nonce(&state, resp, with_proof)
}

/// The single `DPoP` header of a request, if any; the error is the answer to send instead.
pub(super) fn dpop_header(headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    super::access::dpop_header(headers).map_err(|why| {
        Box::new(OAuthError::new(OAuthErrorCode::InvalidDpopProof, why).into_response())
    })
}

/// Adds the current server nonce to an answer to a request that used DPoP (or was told to),
/// so that the client's next proof can carry it (RFC 9449 §8).
pub(super) fn with_dpop_nonce(state: &AppState, mut resp: Response, used_dpop: bool) -> Response {
    let told = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("use_dpop_nonce"));
    if (used_dpop || told)
        && let Ok(v) = HeaderValue::from_str(&state.provider().dpop_nonce(state.now()))
    {
        resp.headers_mut().insert("dpop-nonce", v);
    }
    resp
}

/// The pushed authorization request endpoint (RFC 9126): the client authenticates as at the
/// token endpoint; the request is checked with the authorization endpoint's rules and kept
/// under a `request_uri` for [`crate::domain::oidc::pushed::PUSHED_TTL`].
async fn par(State(state): State<AppState>, req: OAuthRequest) -> Response {
    let OAuthRequest {
        client,
        headers,
        form,
    } = req;
    let proof = match dpop_header(&headers) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let with_proof = proof.is_some();
    let resp = state
        .run(move |s| {
            let client = match authenticate(s, client, &headers, &form) {
                Ok(c) => c,
                Err(r) => return *r,
            };
            let mut params: AuthorizeParams = match serde_json::to_value(&form)
                .and_then(serde_json::from_value)
            {
                Ok(p) => p,
                Err(_) => {
                    return OAuthError::new(OAuthErrorCode::InvalidRequest, "malformed parameters")
                        .into_response();
                }
            };
            // RFC 9449 §10.1: a proof sent with the push binds the code to its key; with
            // `dpop_jkt` as well, both must name the same key.
            if let Some(proof) = proof.as_deref() {
                let url = format!("{}/par", s.issuer);
                let expected = Expected {
                    method: "POST",
                    url: &url,
                    access_token: None,
                    nonce: NonceRule::IfSent,
                };
                match s.provider().check_dpop(proof, &expected, s.now()) {
                    Ok(jkt) if params.dpop_jkt.as_deref().is_none_or(|j| j == jkt) => {
                        params.dpop_jkt = Some(jkt);
                    }
                    Ok(_) => {
                        return OAuthError::new(
                            OAuthErrorCode::InvalidDpopProof,
                            "dpop_jkt does not match the key of the DPoP proof",
                        )
                        .into_response();
                    }
                    Err(e) => return OAuthError::from(e).into_response(),
                }
            }
            match s.provider().push_authorization(&client, &params, s.now()) {
                Ok(pushed) => (
                    StatusCode::CREATED,
                    axum::Json(json!({
                        "request_uri": pushed.request_uri,
                        "expires_in": pushed.expires_in,
                    })),
                )
                    .into_response(),
                Err(PushError::Invalid { error, description }) => (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"error": error, "error_description": description})),
                )
                    .into_response(),
                Err(PushError::Internal(e)) => OAuthError::from(e).into_response(),
            }
        })
        .await;
    with_dpop_nonce(&state, resp, with_proof)
}

/// The token endpoint's URL, which DPoP proofs there name as `htu`.
fn token_url(state: &AppState) -> String {
    format!("{}/token", state.issuer)
}

/// `client_credentials`: the client is authenticated and the request checked in place when
/// that needs no storage (a cached client; a DPoP proof spent in memory), then the token's audit entry waits in the appender's
/// queue, sharing its flush with others, without holding a thread until it is on disk, and
/// only then is the token signed.
async fn client_credentials(
    state: AppState,
    client_ip: IpAddr,
    headers: HeaderMap,
    form: HashMap<String, String>,
    proof: Option<String>,
) -> Response {
    let check = move |s: &AppState| {
        let now = s.now();
        let client = authenticate(s, client_ip, &headers, &form)?;
        let refuse = |e: TokenError| Box::new(OAuthError::from(e).into_response());
        let prov = s.provider();
        let jkt = prov
            .token_binding(&client, proof.as_deref(), &token_url(s), now)
            .map_err(|e| refuse(e.into()))?;
        prov.client_credentials_entry(&client, form.get("scope").map(String::as_str), now)
            .map(|(scopes, entry)| (client, scopes, entry, jkt, now))
            .map_err(refuse)
    };
    // In place when it needs no I/O: the proof is spent last, so a retry on the blocking
    // pool (after an attempt that needed storage) has not spent it yet.
    let checked = state.run_inline_first(check).await;
    let (client, scopes, entry, jkt, now) = match checked {
        Ok(c) => c,
        Err(refused) => return *refused,
    };
    if let Err(e) = state.audit_appender.append(entry).await {
        let e = TokenError::Internal(e.into());
        return OAuthError::from(e).into_response();
    }
    match state
        .provider()
        .client_credentials_token(&client, &scopes, jkt.as_deref(), now)
    {
        Ok(t) => {
            state.metrics.tokens.inc();
            axum::Json(t).into_response()
        }
        Err(e) => OAuthError::from(e).into_response(),
    }
}

fn token_answer(
    state: &AppState,
    client_ip: IpAddr,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    proof: Option<&str>,
) -> Response {
    let now = state.now();
    let client = match authenticate(state, client_ip, headers, form) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let get = |k: &str| form.get(k).map(String::as_str);
    let prov = state.provider();
    let result = prov
        .token_binding(&client, proof, &token_url(state), now)
        .map_err(TokenError::from)
        .and_then(|jkt| {
            let jkt = jkt.as_deref();
            match get("grant_type") {
                Some("authorization_code") => prov.exchange_code(
                    &client,
                    get("code"),
                    get("redirect_uri"),
                    get("code_verifier"),
                    jkt,
                    now,
                ),
                Some("refresh_token") => {
                    prov.refresh(&client, get("refresh_token"), get("scope"), jkt, now)
                }
                Some("client_credentials") => {
                    prov.client_credentials(&client, get("scope"), jkt, now)
                }
                None => Err(TokenError::InvalidRequest("grant_type is required")),
                Some(_) => Err(TokenError::UnsupportedGrantType),
            }
        });
    match result {
        Ok(t) => {
            state.metrics.tokens.inc();
            axum::Json(t).into_response()
        }
        Err(e) => OAuthError::from(e).into_response(),
    }
}

async fn userinfo(
    State(state): State<AppState>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // As at the other OAuth endpoints, an unreadable body is `invalid_request`, not axum's text.
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return BearerError::Malformed("the body exceeds the size limit").into_response();
        }
        Err(_) => return BearerError::Malformed("the body could not be read").into_response(),
    };
    let form: Option<HashMap<String, String>> =
        (!body.is_empty()).then(|| url::form_urlencoded::parse(&body).into_owned().collect());
    let token = match super::access::presented(&headers, form.as_ref()) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let result = state
        .run(move |s| {
            let claims = super::access::verify(s, &token, method.as_str(), "/userinfo")?;
            if claims.gid.is_none() || !claims.scope.split(' ').any(|s| s == "openid") {
                return Err(BearerError::InsufficientScope("openid"));
            }
            Ok(s.provider().userinfo(&claims)?)
        })
        .await;
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Introspection and revocation: the form, the authenticated client and the `token`
/// parameter, then `answer` with them, on the blocking pool.
async fn with_token_param(
    state: AppState,
    req: OAuthRequest,
    answer: impl FnOnce(&AppState, Client, String) -> Response + Send + 'static,
) -> Response {
    let OAuthRequest {
        client,
        headers,
        form,
    } = req;
    state
        .run(move |s| {
            let client = match authenticate(s, client, &headers, &form) {
                Ok(c) => c,
                Err(r) => return *r,
            };
            match form.get("token") {
                Some(token) => answer(s, client, token.clone()),
                None => OAuthError::new(OAuthErrorCode::InvalidRequest, "token is required")
                    .into_response(),
            }
        })
        .await
}

async fn introspect(State(state): State<AppState>, req: OAuthRequest) -> Response {
    with_token_param(state, req, |s, client, token| {
        if client.is_public() {
            let e = OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "public clients cannot introspect",
            );
            return e.into_response();
        }
        match s.provider().introspect(&client, &token, s.now()) {
            Ok(v) => axum::Json(v).into_response(),
            Err(e) => OAuthError::from(e).into_response(),
        }
    })
    .await
}

async fn revoke(State(state): State<AppState>, req: OAuthRequest) -> Response {
    with_token_param(state, req, |s, client, token| {
        match s.provider().revoke(&client, &token, s.now()) {
            Ok(()) => StatusCode::OK.into_response(),
            Err(e) => OAuthError::from(e).into_response(),
        }
    })
    .await
}
