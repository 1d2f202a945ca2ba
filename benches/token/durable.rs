//! The two series of durable writes, each acknowledged only after a flush (fsync): code
//! redemptions (`POST /token`, `grant_type=authorization_code` with PKCE) and citizen
//! registrations (`POST /admin/v1/citizens`). K workers at once show whether concurrent
//! requests share flushes (group commit): without sharing, the rate stays flat as K grows.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::HTTP_WARMUP;
use crate::codes::{Code, REDIRECT, RelyingParty};
use crate::load::{Point, Worker, run_point};
use crate::server::{Server, admin_token, client};

/// Browsers issuing codes at once before each point.
const ISSUERS: usize = 16;
/// Codes issued for the first rough rate estimate of each point (at least 8 per worker).
const PILOT_CODES: usize = 256;
/// The batch holds this many times the codes the point is expected to redeem: a short
/// pilot on a cold connection underestimates the rate (by up to 4× in trial runs).
const MARGIN: f64 = 2.0;
/// Bounds the batch (memory, and issuing time).
const MAX_CODES: usize = 100_000;
/// Codes live 60 s: issuing plus redeeming must finish well within that.
const CODE_BUDGET: Duration = Duration::from_secs(55);

/// Codes shared by the workers of one point; each is handed out once.
struct Codes {
    codes: Vec<Code>,
    next: AtomicUsize,
}

impl Codes {
    fn take(&self) -> Option<&Code> {
        self.codes.get(self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn used(&self) -> usize {
        self.next.load(Ordering::Relaxed).min(self.codes.len())
    }
}

struct Redeemer {
    client: reqwest::Client,
    url: String,
    rp: Arc<RelyingParty>,
    codes: Arc<Codes>,
}

impl Worker for Redeemer {
    async fn request(&mut self) -> Option<Result<usize, String>> {
        let code = self.codes.take()?;
        let sent = self
            .client
            .post(self.url.as_str())
            .basic_auth(&self.rp.client_id, Some(&self.rp.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code.code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &code.verifier),
            ])
            .send()
            .await;
        Some(match sent {
            Ok(r) => {
                let status = r.status();
                let body = r.bytes().await.unwrap_or_default();
                let token = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .is_some_and(|v| v["access_token"].as_str().is_some_and(|t| !t.is_empty()));
                if status == 200 && token {
                    Ok(1)
                } else {
                    Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
                }
            }
            Err(e) => Err(e.to_string()),
        })
    }
}

/// Redeems `codes` with K keep-alive connections.
async fn redeem(
    server: &Server,
    rp: &Arc<RelyingParty>,
    codes: Vec<Code>,
    k: usize,
    warmup: Duration,
    measure: Duration,
) -> (Point, usize, usize) {
    let total = codes.len();
    let codes = Arc::new(Codes {
        codes,
        next: AtomicUsize::new(0),
    });
    let workers = (0..k)
        .map(|i| Redeemer {
            client: client(),
            url: format!("{}/token", server.url_for(i)),
            rp: rp.clone(),
            codes: codes.clone(),
        })
        .collect();
    let point = run_point(server, workers, warmup, measure).await;
    (point, codes.used(), total)
}

/// One redemption point: a pilot batch for a rough rate, then a batch sized for warm-up +
/// `measure` at the highest rate seen so far (the pilot's redemption and issue rates, the
/// previous point's rate), issued just before it is redeemed.
pub async fn redemption_point(
    server: &Server,
    rp: &Arc<RelyingParty>,
    k: usize,
    measure: Duration,
    previous: Option<f64>,
) -> Point {
    let pilot = rp
        .issue_batch(PILOT_CODES.max(8 * k), ISSUERS, CODE_BUDGET)
        .await;
    let issue_rate = pilot.per_second;
    let (p, _, _) = redeem(server, rp, pilot.codes, k, Duration::ZERO, CODE_BUDGET).await;
    let rate = p.per_second.max(issue_rate).max(previous.unwrap_or(0.0));
    let expected = rate.max(1.0) * (HTTP_WARMUP + measure).as_secs_f64() * MARGIN;
    let n = (expected.ceil() as usize).clamp(4 * k, MAX_CODES);
    // Leave the redemption its warm-up and window inside the codes' lifetime.
    let issuing = CODE_BUDGET
        .saturating_sub(HTTP_WARMUP + measure)
        .max(Duration::from_secs(5));
    let batch = rp.issue_batch(n, ISSUERS, issuing).await;
    let issued = batch.codes.len();
    let (mut point, used, total) = redeem(server, rp, batch.codes, k, HTTP_WARMUP, measure).await;
    point.issued_per_second = Some(batch.per_second);
    point.errors += batch.errors;
    if point.first_error.is_none() {
        point.first_error = batch.first_error.map(|e| format!("issuing a code: {e}"));
    }
    if issued < n {
        point.notes.push(format!(
            "only {issued} of {n} codes issued within {:.0} s",
            issuing.as_secs_f64()
        ));
    }
    if used >= total && point.window < measure {
        point.notes.push(format!(
            "the {total} codes ran out {:.2} s into the window",
            point.window.as_secs_f64()
        ));
    }
    point
}

/// Registration numbers unique across the whole run (every server gets new ones).
static NATIONAL_ID: AtomicU64 = AtomicU64::new(0);

struct Registrar {
    client: reqwest::Client,
    url: String,
    token: Arc<str>,
}

impl Worker for Registrar {
    async fn request(&mut self) -> Option<Result<usize, String>> {
        // 4–32 characters of A-Z 0-9 -.
        let national_id = format!("BENCH-{:010}", NATIONAL_ID.fetch_add(1, Ordering::Relaxed));
        let sent = self
            .client
            .post(self.url.as_str())
            .bearer_auth(&*self.token)
            .json(&json!({"given_name": "Ana", "family_name": "Novak",
                          "birthdate": "1990-04-01", "national_id": national_id}))
            .send()
            .await;
        Some(match sent {
            Ok(r) => {
                let status = r.status();
                let body = r.bytes().await.unwrap_or_default();
                let created = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .is_some_and(|v| v["id"].is_string());
                if status == 201 && created {
                    Ok(1)
                } else {
                    Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
                }
            }
            Err(e) => Err(e.to_string()),
        })
    }
}

/// K keep-alive connections registering citizens, each with a new national_id.
pub async fn registration_point(server: &Server, k: usize, measure: Duration) -> Point {
    let token: Arc<str> = admin_token().into();
    let workers = (0..k)
        .map(|i| Registrar {
            client: client(),
            url: format!("{}/admin/v1/citizens", server.url_for(i)),
            token: token.clone(),
        })
        .collect();
    run_point(server, workers, HTTP_WARMUP, measure).await
}
