//! civis: electronic identification and signing for the public sector.
//!
//! # Crate map
//!
//! Data flows one way: a request enters [`http`] (the only code that knows axum), which
//! extracts and validates the wire type and calls [`domain`] with the current time and a
//! source of randomness; the domain applies the rules and persists through [`store`] (the
//! only code that knows sled). [`crypto`] holds the keys and the signature formats.
//!
//! - [`config`]: flags, `CIVIS_*` environment and TOML file → one validated [`config::Config`].
//! - [`app`]: application state, router assembly, TLS, graceful shutdown.
//! - [`cli`]: the `civis` command line (`serve`, `keys init`, `openapi`).
//! - [`http`]: one module per surface, extractors, and the single error → status table.
//! - [`domain`]: rules for citizens and enrolment; time and randomness are injected.
//! - [`crypto`]: key set loading and generation, secrets, the ring-backed JWT provider.
//! - [`store`]: the storage trait, versioned records, the sled and in-memory backends.
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod app;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod logging;
pub mod store;
