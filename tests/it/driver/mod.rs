//! The typed test driver (in the spirit of kanidm's testkit): functions that read like the
//! domain — start a server, register a citizen, enrol a passkey, log in, register a client,
//! authorize, redeem, refresh, introspect — so that each test reads as a story and the HTTP
//! plumbing lives in one place.

pub mod admin;
mod ceremonies;
pub mod dpop;
mod http;
mod oauth;
pub mod seal;

pub use http::{Reply, Req};
pub use oauth::{
    Auth, BROWSER_COOKIE, CHALLENGE, LOGGED_OUT, REDIRECT, VERIFIER, code_grant, enc, field,
    jwt_part, query,
};

pub use crate::authenticator::Device;
pub use crate::support::{Opts, Server, tempdir};

/// A server on `data` over plain HTTP (`--plain-http`), nothing else changed.
pub fn plain(data: &tempfile::TempDir) -> Server {
    start(data, Opts::plain())
}

/// A server on `data` over TLS with the development keys.
pub fn tls(data: &tempfile::TempDir) -> Server {
    start(data, Opts::default())
}

/// A server on `data` started with `opts`.
pub fn start(data: &tempfile::TempDir, opts: Opts) -> Server {
    Server::start(data.path(), opts)
}
