//! The OpenAPI description, generated from the handlers' annotations. `civis openapi`
//! prints it; `spec/openapi.json` is the checked-in copy, kept equal by a test.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
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
/// operation; 413 on operations with a body; 400 (malformed JSON) and 415 (another content
/// type) on JSON bodies.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                common_answers(op);
            }
        }
    }
}

fn common_answers(op: &mut Operation) {
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            as_problem_json(response);
        }
    }
    let body = match &op.request_body {
        Some(RefOr::T(body)) => Some(body.content.contains_key("application/json")),
        Some(RefOr::Ref(_)) => Some(false),
        None => None,
    };
    let has_params = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter().any(|p| {
            matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query))
        })
    });
    if has_params {
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
    let mut add = |status: &str, what: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::T(problem(what)));
    };
    add("431", "The URL and headers together are over 16 KiB");
    add(
        "503",
        "The request timed out, or the database is unreachable (`urn:civis:problem:database-unavailable`)",
    );

    if body.is_some() {
        add("413", "The body is over the size limit");
    }
    if body == Some(true) {
        add(
            "400",
            "The body is not JSON (or nested deeper than 128 levels)",
        );
        add("415", "The body is not `application/json`");
    }
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
                 operation names",
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
            token("An access token (RFC 9068) of a citizen's grant with scope sign"),
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
