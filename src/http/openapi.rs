//! The OpenAPI description, generated from the handlers' annotations. `civis openapi`
//! prints it; `spec/openapi.json` is the checked-in copy, kept equal by a test.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
    ),
    modifiers(&AdminAuth),
)]
pub struct ApiDoc;

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
