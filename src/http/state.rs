//! The state every handler reaches, and small facades over it: the domain services built
//! from it (`provider()`, `registry()`, `passkeys()`, `clients()`, `pki()`), the clock
//! (`now()`), and
//! [`AppState::run`], the one way onto the blocking pool.

use std::sync::Arc;

use crate::config::Config;
use crate::crypto::KeySet;
use crate::crypto::pki::Ca;
use crate::domain::citizens::Registry;
use crate::domain::clients::Clients;
use crate::domain::oidc::Provider;
use crate::domain::passkeys::Passkeys;
use crate::domain::signing::approval::Approvals;
use crate::domain::signing::{CrlCache, Pki};
use crate::domain::{Clock, OffsetClock, Rng};
use crate::store::Store;

use super::observe::Metrics;

/// Everything a handler may use. Cheap to clone (one reference count): axum clones the state
/// for every extractor and middleware of every request.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// What every handler can reach, through [`AppState`].
#[derive(Debug)]
pub struct Services {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Effective issuer / public base URL (no trailing slash).
    pub issuer: Arc<str>,
    /// Storage handle.
    pub store: Store,
    /// Keys.
    pub keys: Arc<KeySet>,
    /// Randomness for ids, codes and request ids.
    pub rng: Arc<dyn Rng>,
    /// Prometheus registry.
    pub metrics: Arc<Metrics>,
    /// WebAuthn relying party (RP ID = issuer host, origin = issuer origin).
    pub webauthn: Arc<webauthn_rs::prelude::Webauthn>,
    /// The issuer's origin (`scheme://host[:port]`), for `Origin` checks.
    pub public_origin: Arc<str>,
    /// Per-address throttle for ceremony starts and failed attempts.
    pub throttle: Arc<super::throttle::Throttle>,
    /// The time; the system's, or in debug test runs one that tests can move.
    pub clock: Arc<dyn Clock>,
    /// The same clock when it can be moved (debug builds with `CIVIS_TEST_CLOCK=1`).
    pub test_clock: Option<Arc<OffsetClock>>,
    /// The service CA, ready to issue officials' and seals' certificates.
    pub ca: Arc<Ca>,
    /// The CA's current CRL.
    pub crl: Arc<CrlCache>,
    /// One thread per core for sealing batches: signing is CPU-bound, so more batches at
    /// once would only add threads, allocator arenas and memory held by batches in flight;
    /// the callers beyond wait in line, which costs them nothing but time.
    pub sealing: Arc<crate::store::offload::Workers>,
    /// Appends the entries of actions that write nothing else, many per transaction.
    pub audit_appender: Arc<crate::domain::audit::Appender>,
    /// Delivers back-channel logout tokens in the background.
    pub logout_sender: crate::http::backchannel::LogoutSender,
    /// Signs the audit log's checkpoints (`None` without `audit.key`).
    pub audit_signer: Option<Arc<crate::crypto::note::NoteSigner>>,
}

impl AppState {
    /// Runs a domain call on the blocking pool ([`crate::store::offload::run`]): the one
    /// way handlers reach anything that may touch storage.
    pub async fn run<T, F>(&self, call: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&AppState) -> T + Send + 'static,
    {
        let state = self.clone();
        crate::store::offload::run(move || call(&state)).await
    }

    /// Like [`AppState::run`], but in place first: for calls that usually need no storage
    /// ([`crate::store::offload::run_inline_first`] says what they must not do). The state
    /// is cloned only if the call has to move to the blocking pool.
    pub async fn run_inline_first<T, F>(&self, call: F) -> T
    where
        T: Send + 'static,
        F: Fn(&AppState) -> T + Send + 'static,
    {
        if let Some(answer) = crate::store::offload::attempt_in_place(|| call(self)) {
            return answer;
        }
        self.run(call).await
    }
}

impl AppState {
    /// Wraps the services.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }

    /// Now, from the injected clock.
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// The OpenID Provider's rules.
    pub fn provider(&self) -> Provider<'_> {
        Provider {
            store: &self.store,
            rng: self.rng.as_ref(),
            keys: &self.keys,
            issuer: &self.issuer,
            refresh_grace: self.config.refresh_grace,
        }
    }

    /// The citizen registry.
    pub fn registry(&self) -> Registry<'_> {
        Registry {
            store: &self.store,
            rng: self.rng.as_ref(),
            enrolment_ttl: self.config.enrolment_ttl,
        }
    }

    /// Passkeys and sessions.
    pub fn passkeys(&self) -> Passkeys<'_> {
        Passkeys {
            store: &self.store,
            rng: self.rng.as_ref(),
            webauthn: &self.webauthn,
            attestation_roots: self.config.attestation_roots.as_ref(),
        }
    }

    /// The client registry.
    pub fn clients(&self) -> Clients<'_> {
        Clients {
            store: &self.store,
            rng: self.rng.as_ref(),
            keys: &self.keys,
        }
    }
}

impl AppState {
    /// Officials, seals and the CRL.
    pub fn pki(&self) -> Pki<'_> {
        Pki {
            store: &self.store,
            rng: self.rng.as_ref(),
            ca: &self.ca,
            kek: self.keys.kek.as_ref(),
            validity: self.config.signing_cert_validity,
            crl: &self.crl,
        }
    }
}

impl AppState {
    /// Sign requests and their approval with a passkey.
    pub fn approvals(&self) -> Approvals<'_> {
        Approvals {
            pki: self.pki(),
            webauthn: &self.webauthn,
        }
    }
}

impl std::fmt::Debug for dyn Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng")
    }
}

impl std::fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}
