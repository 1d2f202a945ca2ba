//! Delivery of back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.5): a
//! bounded queue and a background task that posts each token to its client's registered
//! `backchannel_logout_uri`, a few at a time, with a timeout, retries, and no redirects
//! followed. Queueing never waits: a logout is answered whatever the receivers do, and when
//! the queue is full a notice is dropped and logged rather than held.
//!
//! Notices live in memory: a restart loses those not yet delivered (logout tokens are
//! valid for two minutes anyway); the receiver's own session checks are the backstop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};

use crate::domain::oidc::backchannel::LogoutNotice;

/// Notices waiting at most; more are dropped (and logged).
pub const QUEUE: usize = 1024;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 16;
/// One attempt may take this long (connect, send, answer).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The waits before the second and third attempts.
const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(5)];

/// The queue's sending end.
#[derive(Clone, Debug)]
pub struct LogoutSender(mpsc::Sender<LogoutNotice>);

impl LogoutSender {
    /// Starts the delivery task (on the current tokio runtime).
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS setup).
    pub fn start() -> Result<Self, String> {
        let client = http_client()?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(deliver_all(client, rx));
        Ok(Self(tx))
    }

    /// Queues notices without waiting.
    pub fn send(&self, notices: Vec<LogoutNotice>) {
        for n in notices {
            let client_id = n.client_id.clone();
            if self.0.try_send(n).is_err() {
                tracing::warn!(client = %client_id, "back-channel logout queue full: notice dropped");
            }
        }
    }
}

fn http_client() -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

async fn deliver_all(client: reqwest::Client, mut rx: mpsc::Receiver<LogoutNotice>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(notice) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let client = client.clone();
        tokio::spawn(async move {
            deliver(&client, &notice).await;
            drop(slot);
        });
    }
}

/// Posts one token, retrying on failure; 200 and 204 are success (§2.8).
async fn deliver(client: &reqwest::Client, notice: &LogoutNotice) {
    let body = format!(
        "logout_token={}",
        url::form_urlencoded::byte_serialize(notice.token.as_bytes()).collect::<String>()
    );
    for attempt in 0..=BACKOFF.len() {
        if let Some(wait) = attempt.checked_sub(1).and_then(|i| BACKOFF.get(i)) {
            tokio::time::sleep(*wait).await;
        }
        let outcome = client
            .post(&notice.uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await;
        match outcome {
            Ok(r) if r.status().is_success() => {
                tracing::info!(client = %notice.client_id, attempt, "back-channel logout delivered");
                return;
            }
            Ok(r) => {
                tracing::info!(client = %notice.client_id, attempt, status = r.status().as_u16(),
                "back-channel logout refused by the client")
            }
            Err(e) => tracing::info!(client = %notice.client_id, attempt, error = %e,
                "back-channel logout not delivered"),
        }
    }
    tracing::warn!(client = %notice.client_id, "back-channel logout given up after 3 attempts");
}
