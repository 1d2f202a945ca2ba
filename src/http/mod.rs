//! HTTP: the only layer that knows axum. Read [`router`] to see where every request goes.

mod access;
pub mod admin;
pub mod admin_clients;
pub mod admin_signing;
mod approval;
pub mod audit;
mod authorize;
pub mod backchannel;
pub mod client_addr;
pub mod client_auth;
pub mod error;
pub mod extract;
mod logout;
pub mod observe;
pub mod oidc;
pub mod openapi;
mod openapi_web;
pub mod ops;
pub mod pages;
pub mod passkey;
pub mod seal;
pub mod signing;
pub mod state;
pub mod throttle;
pub mod transparency;
pub mod verify;

use axum::Router;
use axum::routing::get;

use crate::http::state::AppState;

/// The metrics listener's only route (`--metrics-listen`): `/metrics` is kept off the
/// public listener, where anyone could read request rates and logins per route.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .fallback(ops::no_route)
        .method_not_allowed_fallback(ops::wrong_method)
        .with_state(state)
}

/// Every route of the service, with the observation middleware and body limit around them
/// (the sealing route sets a larger limit of its own, `seal::SEAL_BODY_BYTES`).
pub fn router(state: AppState) -> Router {
    let mut routes = Router::new();
    if state.test_clock.is_some() {
        routes = routes.route(
            "/admin/v1/test/clock",
            axum::routing::post(admin::advance_clock),
        );
    }
    let routes = routes
        .route("/healthz", get(ops::healthz))
        .route("/pki/ca.pem", get(ops::ca_pem))
        .route("/pki/crl", get(ops::crl))
        .merge(admin::router())
        .merge(admin_clients::router())
        .merge(admin_signing::router())
        .merge(pages::router())
        .merge(passkey::router())
        .merge(signing::router())
        .merge(approval::router())
        .merge(audit::router())
        .merge(transparency::router())
        .merge(oidc::router())
        .merge(seal::router(state.config.max_body_bytes))
        .merge(verify::router())
        .fallback(ops::no_route)
        .method_not_allowed_fallback(ops::wrong_method);
    extract::with_body_limit(routes, state.config.max_body_bytes)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}
