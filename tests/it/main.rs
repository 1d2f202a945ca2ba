//! The integration test binary: every test starts the real `civis` binary on 127.0.0.1:0 and
//! talks to it over real HTTP(S). One binary keeps link time down.

mod api_fuzz;
mod approval;
mod assurance;
mod audit;
mod authenticator;
mod backchannel;
mod browser;
mod client_assertions;
mod clients;
mod clock;
mod compat;
mod crash;
mod driver;
mod fapi;
mod formats;
mod foundation;
mod fuzz_corpus;
mod hostile;
mod interop;
mod limits;
mod officials;
mod oidc;
mod oidc_attacks;
mod passkeys;
mod registry;
mod review;
mod rotation;
mod scaleout;
mod seal;
mod support;
mod throttling;
