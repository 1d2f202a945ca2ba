//! The OpenAPI description, generated from the handlers' annotations. `civis openapi`
//! prints it; `spec/openapi.json` is the checked-in copy, kept equal by a test.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, ContentBuilder, Object, Ref, RefOr, Response, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi};

use super::openapi_web as web;

/// The API document.
#[derive(OpenApi)]
#[openapi(
    info(title = "civis", description = "Electronic identification and signing service"),
    paths(
        super::ops::healthz, super::ops::metrics, super::ops::ca_pem, super::ops::crl,
        super::admin::create_citizen, super::admin::get_citizen, super::admin::new_enrolment,
        super::admin::revoke_passkey,
        super::admin_clients::create_client, super::admin_clients::get_client,
        super::admin_signing::create_official, super::admin_signing::get_official,
        super::admin_signing::revoke_official,
        super::admin_signing::create_seal, super::admin_signing::get_seal,
        super::admin_signing::revoke_seal,
        super::seal::seal, super::verify::verify,
        super::signing::create_request, super::signing::get_request,
        super::signing::get_evidence,
        super::audit::admin_audit, super::audit::activity_entries,
        super::transparency::checkpoint, super::transparency::key,
        super::transparency::inclusion, super::transparency::consistency,
        web::discovery, web::jwks, web::authorize_get, web::authorize_post,
        web::authorize_continue, web::consent, web::withdraw_consent, web::par, web::token,
        web::userinfo_get, web::userinfo_post, web::introspect, web::revoke,
        web::end_session_get, web::end_session_post, web::end_session_confirm,
        web::enrol_start, web::enrol_finish, web::login_start, web::login_finish,
        web::session, web::logout, web::enrol_page, web::login_page, web::script, web::style,
        web::activity_page, web::approval_page, web::approval_start, web::approval_finish,
        web::approval_reject,
    ),
    modifiers(&AdminAuth, &CommonAnswers),
)]
pub struct ApiDoc;

/// What every route may answer whatever its handler does, added in one place rather than
/// on each annotation: problem bodies as `application/problem+json`; 431 for a head over
/// `app::MAX_HEAD_BYTES` and 503 for a timeout or an unreachable database, on every
/// operation (OAuth endpoints tell an unreachable database in their own error form); 413 on
/// operations with a body that is not a form (an oversized form is the route's own 400);
/// 400 (malformed JSON) and 415 (another content type) on JSON bodies; 429 on admin
/// operations (failed admin authentications are throttled per address); `Retry-After` on
/// every 429 and `WWW-Authenticate` on every 401.
struct CommonAnswers;

/// Operations whose query is read by a tolerant extractor that answers a bad one with the
/// route's own page (declared as its 400), not with a problem.
const OWN_PARAMETER_ANSWERS: &[&str] = &["/authorize"];

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let own_parameter_answers = OWN_PARAMETER_ANSWERS.contains(&path.as_str());
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                common_answers(op, own_parameter_answers);
            }
        }
    }
}

fn common_answers(op: &mut Operation, own_parameter_answers: bool) {
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            as_problem_json(response);
        }
    }
    let body = match &op.request_body {
        Some(RefOr::T(body)) if body.content.contains_key(FORM) => Some(Body::Form),
        Some(RefOr::T(body)) if body.content.contains_key("application/json") => Some(Body::Json),
        Some(_) => Some(Body::Other),
        None => None,
    };
    let has_params = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter().any(|p| {
            matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query))
        })
    });
    if has_params && !own_parameter_answers {
        let what =
            "A path segment or query parameter that does not decode, is missing or is repeated";
        match op.responses.responses.get_mut("400") {
            // A page's own 400 is HTML; the parameter's is a problem, as everywhere else.
            Some(RefOr::T(page)) if !page.content.contains_key(PROBLEM_JSON) => {
                if let Some(content) = problem(what).content.shift_remove(PROBLEM_JSON) {
                    page.content.insert(PROBLEM_JSON.to_owned(), content);
                }
            }
            Some(_) => {}
            None => {
                op.responses
                    .responses
                    .insert("400".to_owned(), RefOr::T(problem(what)));
            }
        }
    }
    let oauth = answers_oauth_errors(op);
    let admin_only = op
        .security
        .as_ref()
        .is_some_and(|s| s.as_slice() == [SecurityRequirement::new("admin", Vec::<String>::new())]);
    let mut add = |status: &str, what: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem(what)));
    };
    add("431", "The URL and headers together are over 16 KiB");
    if oauth {
        add(
            "503",
            "`temporarily_unavailable`: the database is unreachable; or (a problem) the request timed out",
        );
    } else {
        add(
            "503",
            "The request timed out, or the database is unreachable (`urn:civis:problem:database-unavailable`)",
        );
    }
    if admin_only {
        add(
            "429",
            "Too many failed admin authentications from this network (`urn:civis:problem:throttled`)",
        );
    }
    if matches!(body, Some(Body::Json | Body::Other)) {
        add("413", "The body is over the size limit");
    }
    if body == Some(Body::Json) {
        add(
            "400",
            "The body is not JSON (or nested deeper than 128 levels)",
        );
        add("415", "The body is not `application/json`");
    }
    for (status, response) in &mut op.responses.responses {
        let RefOr::T(response) = response else {
            continue;
        };
        match status.as_str() {
            // The OAuth form for an unreachable database, a problem for a timeout.
            "503" if oauth => {
                let oauth_body = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("OAuthErrorBody")))
                    .build();
                let problem_body = ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build();
                response
                    .content
                    .entry("application/json".to_owned())
                    .or_insert(RefOr::T(oauth_body));
                response
                    .content
                    .entry(PROBLEM_JSON.to_owned())
                    .or_insert(RefOr::T(problem_body));
            }
            "429" => header(response, "retry-after", Type::Integer, "Seconds to wait"),
            "401" => header(
                response,
                "www-authenticate",
                Type::String,
                "The challenge: `Bearer` (with `error=` for a refused token), `DPoP`, or `Basic` for client authentication",
            ),
            _ => {}
        }
    }
}

/// How an operation's body is sent.
#[derive(PartialEq, Eq)]
enum Body {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `application/json`.
    Json,
    /// Anything else.
    Other,
}

const FORM: &str = "application/x-www-form-urlencoded";

/// Whether some answer of the operation is an OAuth error body (RFC 6749 §5.2, RFC 6750 §3).
fn answers_oauth_errors(op: &Operation) -> bool {
    op.responses.responses.values().any(|r| match r {
        RefOr::T(r) => r.content.values().any(|c| {
            matches!(c, RefOr::T(c)
                if matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/OAuthErrorBody")))
        }),
        RefOr::Ref(_) => false,
    })
}

/// Declares a response header, unless the annotation already does.
fn header(response: &mut Response, name: &str, kind: Type, description: &str) {
    response.headers.entry(name.to_owned()).or_insert_with(|| {
        RefOr::T(
            HeaderBuilder::new()
                .schema(Some(Object::with_type(kind)))
                .description(Some(description))
                .build(),
        )
    });
}

/// A response of problem details.
fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

const PROBLEM_JSON: &str = "application/problem+json";

/// Problem bodies are declared with `body = Problem`, which utoipa files under
/// `application/json`; the server sends them as `application/problem+json` (RFC 9457).
fn as_problem_json(response: &mut Response) {
    let is_problem = |c: &RefOr<Content>| match c {
        RefOr::T(c) => {
            matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
        }
        RefOr::Ref(_) => false,
    };
    if response
        .content
        .get("application/json")
        .is_some_and(is_problem)
        && let Some(content) = response.content.shift_remove("application/json")
    {
        response.content.insert(PROBLEM_JSON.to_owned(), content);
    }
}

struct AdminAuth;

impl Modify for AdminAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let token = |what: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(what))
                    .build(),
            )
        };
        components.add_security_scheme(
            "client_token",
            token(
                "An access token of POST /token (client_credentials) with the scope the \
                 operation names; a DPoP-bound one as `Authorization: DPoP` with a `DPoP` \
                 proof (RFC 9449)",
            ),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The client's id and secret (client_secret_basic); other clients \
                         authenticate in the form body",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            token(
                "An access token (RFC 9068) of a citizen's grant with scope sign; a \
                 DPoP-bound one as `Authorization: DPoP` with a `DPoP` proof (RFC 9449)",
            ),
        );
        components.add_security_scheme(
            "access_token",
            token(
                "An access token (RFC 9068) of a citizen's grant with scope openid: \
                 `Authorization: Bearer`, or for POST the `access_token` form field; a \
                 DPoP-bound token as `Authorization: DPoP` with a `DPoP` proof (RFC 9449)",
            ),
        );
    }
}

/// The document as pretty JSON with a trailing newline.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .map(|s| s + "\n")
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    fn operations() -> Vec<(String, serde_json::Value)> {
        let spec: serde_json::Value =
            serde_json::from_str(&super::json()).unwrap_or(serde_json::Value::Null);
        let mut out = Vec::new();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                out.push((format!("{method} {path}"), op.clone()));
            }
        }
        out
    }

    /// The headers the server always sends with these statuses are declared on every one.
    #[test]
    fn every_429_and_401_declares_its_header() {
        for (op, spec) in operations() {
            for (status, header) in [("429", "retry-after"), ("401", "www-authenticate")] {
                let response = &spec["responses"][status];
                if !response.is_null() {
                    assert!(!response["headers"][header].is_null(), "{op} {status}");
                }
            }
        }
    }

    /// A form over the size limit is the route's own 400 (an OAuth error or a page), never 413.
    #[test]
    fn form_bodies_are_never_answered_413() {
        for (op, spec) in operations() {
            let form = &spec["requestBody"]["content"]["application/x-www-form-urlencoded"];
            if !form.is_null() {
                assert!(spec["responses"]["413"].is_null(), "{op}");
                assert!(!spec["responses"]["400"].is_null(), "{op}");
            }
        }
    }
    /// Fails when the code's API drifts from `spec/openapi.json`. To accept a change:
    /// `cargo run -- openapi > spec/openapi.json`.
    #[test]
    fn checked_in_spec_matches_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/spec/openapi.json");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == super::json(),
            "spec/openapi.json is stale: run `cargo run -- openapi > spec/openapi.json`"
        );
    }
}
