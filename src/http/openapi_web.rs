//! The OpenAPI description of the OIDC, passkey-ceremony and page routes. Their handlers
//! take what utoipa cannot describe from a signature (forms read by one extractor that
//! refuses duplicate parameters, cookies, HTML), so each route is described here by a
//! doc-only function next to the wire types it speaks; `routes_and_description_agree`
//! (below) fails when a route of the router is missing from the description.
#![allow(dead_code)]

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::error::Problem;

/// An RFC 6749 §5.2 error, as every OAuth endpoint answers it.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// The error code (`invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, `invalid_dpop_proof`,
    /// `use_dpop_nonce`, `request_not_supported`, `invalid_request_uri`, `invalid_token`,
    /// `insufficient_scope`, `temporarily_unavailable`, `server_error`).
    pub error: String,
    /// What was wrong, in words.
    pub error_description: Option<String>,
}

/// Client authentication in the form body, for clients that do not use HTTP Basic
/// (`client_secret_post`, `private_key_jwt`, public clients).
#[derive(Serialize, ToSchema)]
pub struct ClientAuthFields {
    /// The client.
    pub client_id: Option<String>,
    /// `client_secret_post`.
    pub client_secret: Option<String>,
    /// `urn:ietf:params:oauth:client-assertion-type:jwt-bearer` for `private_key_jwt`.
    pub client_assertion_type: Option<String>,
    /// The signed assertion (RFC 7523).
    pub client_assertion: Option<String>,
}

/// `POST /token` (RFC 6749 §4.1.3, §4.4, §6). Every parameter at most once.
#[derive(Serialize, ToSchema)]
pub struct TokenForm {
    /// `authorization_code`, `refresh_token` or `client_credentials`.
    pub grant_type: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// The redirect URI the code was requested for.
    pub redirect_uri: Option<String>,
    /// The PKCE verifier.
    pub code_verifier: Option<String>,
    /// The refresh token.
    pub refresh_token: Option<String>,
    /// Scopes asked for (client credentials; a narrower set on refresh).
    pub scope: Option<String>,
    /// Client authentication, unless by HTTP Basic.
    #[serde(flatten)]
    pub auth: ClientAuthFields,
}

/// A successful token answer (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Serialize, ToSchema)]
pub struct TokenAnswer {
    /// An RFC 9068 JWT access token.
    pub access_token: String,
    /// `Bearer`, or `DPoP` when bound to a key.
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The scopes granted.
    pub scope: Option<String>,
    /// A refresh token (code grants of clients that may refresh).
    pub refresh_token: Option<String>,
    /// The ID token (code grants with `openid`).
    pub id_token: Option<String>,
}

/// An authorization request (OpenID Connect Core §3.1.2.1): the query of `/authorize`, or the
/// form of `POST /authorize` and `/par`.
#[derive(Serialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizationRequest {
    /// `code`.
    pub response_type: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// A registered redirect URI.
    pub redirect_uri: Option<String>,
    /// Scopes asked for.
    pub scope: Option<String>,
    /// Opaque value returned to the client.
    pub state: Option<String>,
    /// Put into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// `S256`.
    pub code_challenge_method: Option<String>,
    /// `none`, `login`, `consent`.
    pub prompt: Option<String>,
    /// The longest time in seconds since the citizen last signed in that the client
    /// accepts; an older session signs in again.
    pub max_age: Option<String>,
    /// Requested levels of assurance.
    pub acr_values: Option<String>,
    /// `query`, the only mode; another is `invalid_request`.
    pub response_mode: Option<String>,
    /// Request objects are not supported: any value is `request_not_supported`.
    pub request: Option<String>,
    /// A pushed request (`/par`) instead of the parameters above (not at `/par` itself).
    pub request_uri: Option<String>,
    /// The thumbprint of the DPoP key the code is bound to (RFC 9449 §10).
    pub dpop_jkt: Option<String>,
}

/// `POST /par` (RFC 9126): the authorization request, pushed with client authentication.
#[derive(Serialize, ToSchema)]
pub struct ParForm {
    /// The request.
    #[serde(flatten)]
    pub request: AuthorizationRequest,
    /// Client authentication, unless by HTTP Basic.
    #[serde(flatten)]
    pub auth: ClientAuthFields,
}

/// The answer of `/par`.
#[derive(Serialize, ToSchema)]
pub struct ParAnswer {
    /// `urn:ietf:params:oauth:request_uri:…`, for `/authorize?client_id=…&request_uri=…`.
    pub request_uri: String,
    /// Seconds until it expires (60).
    pub expires_in: u64,
}

/// `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009).
#[derive(Serialize, ToSchema)]
pub struct TokenParamForm {
    /// The token.
    pub token: Option<String>,
    /// `access_token` or `refresh_token`.
    pub token_type_hint: Option<String>,
    /// Client authentication, unless by HTTP Basic.
    #[serde(flatten)]
    pub auth: ClientAuthFields,
}

/// An introspection answer (RFC 7662 §2.2): `active`, and the token's claims when active.
#[derive(Serialize, ToSchema)]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// Granted scopes.
    pub scope: Option<String>,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// The subject as that client sees it.
    pub sub: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: Option<i64>,
}

/// `POST /userinfo` with the token in the body (RFC 6750 §2.2) instead of the header.
#[derive(Serialize, ToSchema)]
pub struct UserInfoForm {
    /// The access token (bearer only; never together with `Authorization`).
    pub access_token: Option<String>,
}

/// Claims about the signed-in citizen, as the token's scopes allow; always `sub`.
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    /// The subject as this client sees it.
    pub sub: String,
}

/// The OpenID Provider metadata (OpenID Connect Discovery 1.0, RFC 8414); the members
/// CONTRACT.md §4 lists, and more.
#[derive(Serialize, ToSchema)]
pub struct Discovery {
    /// This issuer.
    pub issuer: String,
    /// `/authorize`.
    pub authorization_endpoint: String,
    /// `/token`.
    pub token_endpoint: String,
    /// `/jwks`.
    pub jwks_uri: String,
}

/// The token-signing keys (RFC 7517).
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    /// P-256 public keys with `kid`, `use: sig`, `alg: ES256`.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

/// The query of `/end_session` (OpenID Connect RP-Initiated Logout 1.0).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EndSessionQuery {
    /// An ID token civis issued to the client.
    pub id_token_hint: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// A registered post-logout redirect URI.
    pub post_logout_redirect_uri: Option<String>,
    /// Returned to the client.
    pub state: Option<String>,
}

/// The query of the login page.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginPageQuery {
    /// Where to go after signing in: a path on this site (anything else is dropped).
    pub return_to: Option<String>,
}

/// The query of the enrolment page.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnrolPageQuery {
    /// The enrolment code from the officer.
    pub code: Option<String>,
}

/// `POST /enrol/start`.
#[derive(Serialize, ToSchema)]
pub struct EnrolStartBody {
    /// The enrolment code.
    pub code: String,
}

/// A started ceremony.
#[derive(Serialize, ToSchema)]
pub struct CeremonyStarted {
    /// Sent back with the result.
    pub ceremony: String,
    /// The options for `navigator.credentials.create` / `.get`.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// `POST /enrol/finish` and `POST /login/finish`.
#[derive(Serialize, ToSchema)]
pub struct CeremonyFinish {
    /// From the start.
    pub ceremony: String,
    /// The browser's `PublicKeyCredential` as JSON.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
    /// `/login/finish` only: a path on this site to go to afterwards.
    pub return_to: Option<String>,
}

/// An enrolled passkey.
#[derive(Serialize, ToSchema)]
pub struct Enrolled {
    /// `created`.
    pub status: String,
    /// The new passkey.
    pub passkey_id: String,
}

/// A signed-in citizen.
#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    /// `signed_in`.
    pub status: String,
    /// Given and family name.
    pub display_name: String,
    /// The local path to go to, if one was asked for and allowed.
    pub redirect: Option<String>,
}

/// The browser's session.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// The citizen.
    pub citizen_id: String,
    /// The passkey that signed in.
    pub passkey_id: String,
    /// When (RFC 3339).
    pub auth_time: String,
    /// Until when (RFC 3339).
    pub expires_at: String,
    /// Whether the authenticator verified the user.
    pub user_verified: bool,
}

/// An approved sign request: every document is signed.
#[derive(Serialize, ToSchema)]
pub struct Approved {
    /// `signed`.
    pub status: String,
    /// The request.
    pub id: String,
}

/// A rejected sign request.
#[derive(Serialize, ToSchema)]
pub struct Rejected {
    /// `rejected`.
    pub status: String,
    /// The request.
    pub id: String,
}

/// `POST /end_session`: the parameters of `GET /end_session` as a form.
#[derive(Serialize, ToSchema)]
pub struct EndSessionForm {
    /// An ID token civis issued to the client.
    pub id_token_hint: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// A registered post-logout redirect URI.
    pub post_logout_redirect_uri: Option<String>,
    /// Returned to the client.
    pub state: Option<String>,
}

/// The form of the **Log out** question: the values the page put in it.
#[derive(Serialize, ToSchema)]
pub struct LogoutConfirmForm {
    /// The CSRF value bound to the session.
    pub csrf: Option<String>,
    /// The client.
    pub client_id: Option<String>,
    /// A registered post-logout redirect URI.
    pub post_logout_redirect_uri: Option<String>,
    /// Returned to the client.
    pub state: Option<String>,
}

/// The consent page's form: the values the page put in it.
#[derive(Serialize, ToSchema)]
pub struct PageForm {
    /// The parked request the page is about.
    pub request: Option<String>,
    /// The CSRF value bound to the session.
    pub csrf: Option<String>,
    /// `allow` or `deny` (consent).
    pub decision: Option<String>,
}

// ---- OIDC --------------------------------------------------------------------------------

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oidc",
    responses((status = 200, body = Discovery, description = "The provider's metadata")))]
fn discovery() {}

#[utoipa::path(get, path = "/jwks", tag = "oidc",
    responses((status = 200, body = Jwks, description = "The token-signing public keys")))]
fn jwks() {}

#[utoipa::path(get, path = "/authorize", tag = "oidc", params(AuthorizationRequest),
    responses(
        (status = 303, description = "To the login page, the consent page, or back to the client's redirect URI with `code` or `error`, `state` and `iss`", headers(("location" = String))),
        (status = 400, content_type = "text/html", body = String, description = "A page: the client or redirect URI cannot be trusted (unknown client, unregistered or duplicate `redirect_uri`, a bad `request_uri`), or the query does not decode (a repeated parameter), so nothing is redirected"),
        (status = 429, content_type = "text/html", body = String, description = "A page: too many authorization requests from this network")))]
fn authorize_get() {}

#[utoipa::path(post, path = "/authorize", tag = "oidc",
    request_body(content = AuthorizationRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "As `GET /authorize`", headers(("location" = String))),
        (status = 400, content_type = "text/html", body = String, description = "A page: as `GET /authorize`, or the body is not a form (another content type, a repeated parameter, over the size limit)"),
        (status = 429, content_type = "text/html", body = String, description = "A page: too many authorization requests from this network")))]
fn authorize_post() {}

#[utoipa::path(get, path = "/authorize/continue", tag = "oidc",
    params(("request" = Option<String>, Query, description = "The parked request")),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "The consent page"),
        (status = 303, description = "To the login page, or back to the client", headers(("location" = String))),
        (status = 400, content_type = "text/html", body = String, description = "A page: the request is unknown, expired, or was started in another browser")))]
fn authorize_continue() {}

#[utoipa::path(post, path = "/authorize/consent", tag = "oidc",
    request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Back to the client with `code`, or `error=access_denied`", headers(("location" = String))),
        (status = 400, content_type = "text/html", body = String, description = "A page: no session, an unknown or expired request, or the body is not the page's form (missing fields, another content type, over the size limit)"),
        (status = 403, content_type = "text/html", body = String, description = "A page: the CSRF value was not issued for this session")))]
fn consent() {}

#[utoipa::path(delete, path = "/session/consents/{client_id}", tag = "oidc",
    params(("client_id" = String, Path, description = "The client whose consent is withdrawn")),
    responses(
        (status = 204, description = "Withdrawn (or there was none); the client's grants under it stop working"),
        (status = 401, body = Problem, description = "No session"),
        (status = 403, body = Problem, description = "A cross-origin request")))]
fn withdraw_consent() {}

#[utoipa::path(post, path = "/par", tag = "oidc",
    request_body(content = ParForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = []), ()),
    responses(
        (status = 201, body = ParAnswer, description = "Pushed; use `request_uri` at `/authorize` within `expires_in` seconds", headers(("dpop-nonce" = String, description = "A nonce for the next DPoP proof, when the request carried one"))),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request` (a duplicate parameter, another content type than a form, a body over the size limit, an unsupported `response_mode`), `request_not_supported`, `invalid_scope`, `invalid_dpop_proof`, `use_dpop_nonce`, `unauthorized_client`", headers(("dpop-nonce" = String, description = "A nonce for the next DPoP proof, when the request carried one"))),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client`", headers(("dpop-nonce" = String, description = "A nonce for the next DPoP proof, when the request carried one"))),
        (status = 429, body = OAuthErrorBody, description = "Too many failed client authentications from this network (`invalid_client`), or this client's request quota is spent (`temporarily_unavailable`)", headers(("dpop-nonce" = String, description = "A nonce for the next DPoP proof, when the request carried one")))))]
fn par() {}

#[utoipa::path(post, path = "/token", tag = "oidc",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    params(("DPoP" = Option<String>, Header, description = "A DPoP proof (RFC 9449) binding the tokens to its key")),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, body = TokenAnswer, description = "Tokens; `Cache-Control: no-store`", headers(("dpop-nonce" = String, description = "A nonce for the next DPoP proof, when the request carried one"))),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request` (a duplicate parameter, another content type than a form, a body over the size limit), `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`, `invalid_dpop_proof`, `use_dpop_nonce`", headers(("dpop-nonce" = String, description = "The nonce to put in the DPoP proof (`use_dpop_nonce`), or for the next one"))),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client`", headers(("dpop-nonce" = String, description = "A nonce for the next DPoP proof, when the request carried one"))),
        (status = 429, body = OAuthErrorBody, description = "Too many failed client authentications from this network (`invalid_client`), or this client's request quota is spent (`temporarily_unavailable`)", headers(("dpop-nonce" = String, description = "A nonce for the next DPoP proof, when the request carried one")))))]
fn token() {}

#[utoipa::path(get, path = "/userinfo", tag = "oidc",
    security(("access_token" = [])),
    responses(
        (status = 200, body = UserInfo, description = "Claims the token's scopes allow"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request`: a body that cannot be read (over the size limit); `WWW-Authenticate: Bearer error=\"invalid_request\"`"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_request` (no token, or two), `invalid_token` (bad, expired or revoked, or its citizen is gone), `invalid_dpop_proof` or `use_dpop_nonce`", headers(("dpop-nonce" = String, description = "The nonce to put in the DPoP proof (`use_dpop_nonce`)"))),
        (status = 403, body = OAuthErrorBody, description = "`insufficient_scope`: no scope `openid`, or not a citizen's token")))]
fn userinfo_get() {}

#[utoipa::path(post, path = "/userinfo", tag = "oidc",
    security(("access_token" = [])),
    request_body(content = UserInfoForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = UserInfo, description = "As `GET /userinfo`"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request`: the body cannot be read (over the size limit); `WWW-Authenticate: Bearer error=\"invalid_request\"`"),
        (status = 401, body = OAuthErrorBody, description = "As `GET /userinfo`", headers(("dpop-nonce" = String, description = "The nonce to put in the DPoP proof (`use_dpop_nonce`)"))),
        (status = 403, body = OAuthErrorBody, description = "As `GET /userinfo`")))]
fn userinfo_post() {}

#[utoipa::path(post, path = "/introspect", tag = "oidc",
    request_body(content = TokenParamForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, body = Introspection, description = "`active: false` for anything not valid now, or not this client's"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request` (no `token`, a duplicate parameter, another content type than a form, a body over the size limit)"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client` (also a public client, which may not introspect)"),
        (status = 429, body = OAuthErrorBody, description = "Too many failed client authentications from this network (`invalid_client`), or this client's request quota is spent (`temporarily_unavailable`)")))]
fn introspect() {}

#[utoipa::path(post, path = "/revoke", tag = "oidc",
    request_body(content = TokenParamForm, content_type = "application/x-www-form-urlencoded"),
    security(("client_basic" = []), ()),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (RFC 7009 §2.2)"),
        (status = 400, body = OAuthErrorBody, description = "`invalid_request` (no `token`, a duplicate parameter, another content type than a form, a body over the size limit)"),
        (status = 401, body = OAuthErrorBody, description = "`invalid_client`"),
        (status = 429, body = OAuthErrorBody, description = "Too many failed client authentications from this network (`invalid_client`), or this client's request quota is spent (`temporarily_unavailable`)")))]
fn revoke() {}

#[utoipa::path(get, path = "/end_session", tag = "oidc", params(EndSessionQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "The **Log out** question (a session, but no hint of it), or **Logged out** (no session, or the hint's session ended and there is no return address)"),
        (status = 303, description = "Logged out, back to the post-logout redirect URI", headers(("location" = String))),
        (status = 400, content_type = "text/html", body = String, description = "A page: an `id_token_hint` that is not an ID token of ours, a `client_id` other than the hint's, an unregistered or malformed return address")))]
fn end_session_get() {}

#[utoipa::path(post, path = "/end_session", tag = "oidc",
    request_body(content = EndSessionForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "As `GET /end_session`"),
        (status = 303, description = "As `GET /end_session`", headers(("location" = String))),
        (status = 400, content_type = "text/html", body = String, description = "As `GET /end_session`, or the body is not a form (a repeated parameter, another content type, over the size limit)")))]
fn end_session_post() {}

#[utoipa::path(post, path = "/end_session/confirm", tag = "oidc",
    request_body(content = LogoutConfirmForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "**Logged out** (or already: no session)"),
        (status = 303, description = "Logged out, back to the client", headers(("location" = String))),
        (status = 400, content_type = "text/html", body = String, description = "A page: no `csrf`, an unregistered or malformed return address, or the body is not a form (another content type, over the size limit)"),
        (status = 403, content_type = "text/html", body = String, description = "A page: the CSRF value was not issued for this session")))]
fn end_session_confirm() {}

// ---- Passkey ceremonies ------------------------------------------------------------------

#[utoipa::path(post, path = "/enrol/start", tag = "passkeys",
    request_body = EnrolStartBody,
    responses(
        (status = 200, body = CeremonyStarted, description = "Options for `navigator.credentials.create`"),
        (status = 400, body = Problem, description = "`urn:civis:problem:passkey-refused`: an unknown, used or expired enrolment code; or the body is not JSON"),
        (status = 403, body = Problem, description = "A cross-origin request"),
        (status = 422, body = Problem, description = "The body is not `{code}`"),
        (status = 429, body = Problem, description = "Too many refused codes or starts from this network")))]
fn enrol_start() {}

#[utoipa::path(post, path = "/enrol/finish", tag = "passkeys",
    request_body = CeremonyFinish,
    responses(
        (status = 201, body = Enrolled, description = "The passkey is registered"),
        (status = 400, body = Problem, description = "`urn:civis:problem:passkey-refused`: an unknown, expired or used ceremony, a credential refused (wrong origin, a cross-origin frame, a bad attestation, a credential id already registered), or an enrolment code used meanwhile (each refusal counts against this network's enrolment attempts); or the body is not JSON"),
        (status = 403, body = Problem, description = "A cross-origin request"),
        (status = 422, body = Problem, description = "The body is not a ceremony and a credential")))]
fn enrol_finish() {}

#[utoipa::path(post, path = "/login/start", tag = "passkeys",
    responses(
        (status = 200, body = CeremonyStarted, description = "Options for `navigator.credentials.get` (usernameless)"),
        (status = 403, body = Problem, description = "A cross-origin request"),
        (status = 429, body = Problem, description = "Too many refused logins or starts from this network")))]
fn login_start() {}

#[utoipa::path(post, path = "/login/finish", tag = "passkeys",
    request_body = CeremonyFinish,
    responses(
        (status = 200, body = SignedIn, description = "Signed in; `Set-Cookie` holds the session", headers(("set-cookie" = String))),
        (status = 400, body = Problem, description = "`urn:civis:problem:passkey-refused`: an unknown, expired or used ceremony, an unknown or revoked passkey (or one whose citizen is gone), a refused assertion (wrong origin, a cross-origin frame, a bad signature), a counter going backwards (each refusal counts against this network's logins, and `/login/start` answers 429 once they are spent); or the body is not JSON"),
        (status = 403, body = Problem, description = "A cross-origin request"),
        (status = 422, body = Problem, description = "The body is not a ceremony and a credential")))]
fn login_finish() {}

#[utoipa::path(get, path = "/session", tag = "passkeys",
    responses(
        (status = 200, body = SessionView, description = "The browser's session"),
        (status = 401, body = Problem, description = "No session")))]
fn session() {}

#[utoipa::path(post, path = "/logout", tag = "passkeys",
    responses(
        (status = 204, description = "Signed out (also without a session); the cookie is cleared"),
        (status = 403, body = Problem, description = "A cross-origin request")))]
fn logout() {}

// ---- Pages -------------------------------------------------------------------------------

#[utoipa::path(get, path = "/enrol", tag = "pages", params(EnrolPageQuery),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "The enrolment page, naming the account, with **Create passkey**"),
        (status = 404, content_type = "text/html", body = String, description = "A page: no code, or an unknown, used or expired one"),
        (status = 429, content_type = "text/html", body = String, description = "A page: too many refused codes from this network")))]
fn enrol_page() {}

#[utoipa::path(get, path = "/login", tag = "pages", params(LoginPageQuery),
    responses((status = 200, content_type = "text/html", body = String, description = "The login page with **Sign in with a passkey**")))]
fn login_page() {}

#[utoipa::path(get, path = "/static/civis.js", tag = "pages",
    responses((status = 200, content_type = "text/javascript", body = String, description = "The pages' only script")))]
fn script() {}

#[utoipa::path(get, path = "/static/civis.css", tag = "pages",
    responses((status = 200, content_type = "text/css", body = String, description = "The pages' style")))]
fn style() {}

#[utoipa::path(get, path = "/activity", tag = "pages",
    responses(
        (status = 200, content_type = "text/html", body = String, description = "**Your activity**: the citizen's own audit entries, newest first"),
        (status = 303, description = "To the login page", headers(("location" = String)))))]
fn activity_page() {}

#[utoipa::path(get, path = "/sign/requests/{id}", tag = "pages",
    params(("id" = String, Path, description = "The sign request")),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "The approval page listing every document"),
        (status = 303, description = "To the login page", headers(("location" = String))),
        (status = 404, content_type = "text/html", body = String, description = "No such request of this official")))]
fn approval_page() {}

#[utoipa::path(post, path = "/sign/requests/{id}/start", tag = "passkeys",
    params(("id" = String, Path, description = "The sign request")),
    responses(
        (status = 200, body = CeremonyStarted, description = "Options whose challenge commits to the request"),
        (status = 401, body = Problem, description = "No session"),
        (status = 403, body = Problem, description = "A cross-origin request, another official's request, or no passkey that can approve"),
        (status = 404, body = Problem, description = "No such request"),
        (status = 409, body = Problem, description = "The request is no longer pending"),
        (status = 429, body = Problem, description = "Too many refused logins or approvals, or starts, from this network")))]
fn approval_start() {}

#[utoipa::path(post, path = "/sign/requests/{id}/finish", tag = "passkeys",
    params(("id" = String, Path, description = "The sign request")),
    request_body = CeremonyFinish,
    responses(
        (status = 200, body = Approved, description = "Approved and signed"),
        (status = 400, body = Problem, description = "`urn:civis:problem:passkey-refused`: an unknown, expired or used ceremony (or one of another request), a refused assertion (another citizen's or a revoked passkey, wrong origin, a bad signature, a counter going backwards), each counting against this network's logins; or the body is not JSON"),
        (status = 401, body = Problem, description = "No session"),
        (status = 403, body = Problem, description = "A cross-origin request, another official's ceremony or request, or an official who can no longer sign"),
        (status = 404, body = Problem, description = "No such request, or the official's key is gone"),
        (status = 409, body = Problem, description = "The request is no longer pending, or the official's signing key changed"),
        (status = 422, body = Problem, description = "The body is not a ceremony and a credential")))]
fn approval_finish() {}

#[utoipa::path(post, path = "/sign/requests/{id}/reject", tag = "passkeys",
    params(("id" = String, Path, description = "The sign request")),
    responses(
        (status = 200, body = Rejected, description = "Rejected; nothing will be signed"),
        (status = 401, body = Problem, description = "No session"),
        (status = 403, body = Problem, description = "A cross-origin request, or another official's request"),
        (status = 404, body = Problem, description = "No such request"),
        (status = 409, body = Problem, description = "The request is no longer pending")))]
fn approval_reject() {}

#[cfg(test)]
mod tests {
    /// Every path routed in `src/http/` is in the description (the debug-only clock
    /// excepted), so that a route added without a description fails here.
    #[test]
    fn routes_and_description_agree() {
        let spec: serde_json::Value =
            serde_json::from_str(&super::super::openapi::json()).unwrap_or(serde_json::Value::Null);
        let paths = spec["paths"].as_object().cloned().unwrap_or_default();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
        let mut routes = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_name() == "openapi_web.rs" {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let mut rest = text.as_str();
            while let Some(at) = rest.find(".route(") {
                rest = &rest[at + 7..];
                let Some(start) = rest.find('"') else { break };
                let Some(len) = rest[start + 1..].find('"') else {
                    break;
                };
                routes.push(rest[start + 1..start + 1 + len].to_owned());
            }
        }
        assert!(routes.len() > 40, "found {} routes", routes.len());
        for route in routes {
            if route == "/admin/v1/test/clock" {
                continue;
            }
            assert!(
                paths.contains_key(&route),
                "{route} is not in spec/openapi.json"
            );
        }
    }
}
