//! The audit-log series (issue 11): inclusion proofs served per second over HTTP
//! (`GET /transparency/v1/proof/inclusion`, a log of a few thousand entries), and, in
//! process, how many entries per second the integrator puts into the Merkle tree.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::HTTP_WARMUP;
use crate::load::{Point, Worker, run_point};
use crate::server::{Server, admin_token, client};

/// Citizens registered (one entry each) before the proof points.
pub const SEED_ENTRIES: u64 = 2000;

/// Fills the server's log with [`SEED_ENTRIES`] registrations and waits for the checkpoint
/// that covers them; returns the tree size.
pub async fn seed(server: &Server) -> u64 {
    let workers: Vec<_> = (0..16u64)
        .map(|w| {
            let url = format!("{}/admin/v1/citizens", server.url);
            tokio::spawn(async move {
                let http = client();
                for i in (w..SEED_ENTRIES).step_by(16) {
                    let resp = http
                        .post(&url)
                        .bearer_auth(admin_token())
                        .json(&json!({"given_name": "Ana", "family_name": "Novak",
                            "birthdate": "1990-04-01", "national_id": format!("PROOF{i:06}")}))
                        .send()
                        .await
                        .expect("register");
                    assert_eq!(resp.status(), 201, "seeding the audit log");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("seeding worker");
    }
    let http = client();
    for _ in 0..200 {
        let note = http
            .get(format!("{}/transparency/v1/checkpoint", server.url))
            .send()
            .await
            .expect("checkpoint");
        let text = note.text().await.unwrap_or_default();
        if let Some(size) = text.lines().nth(1).and_then(|l| l.parse::<u64>().ok())
            && size >= SEED_ENTRIES
        {
            return size;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no checkpoint covering {SEED_ENTRIES} entries within 10 s");
}

struct Proving {
    client: reqwest::Client,
    base: String,
    size: u64,
    next: u64,
}

impl Worker for Proving {
    async fn request(&mut self) -> Option<Result<usize, String>> {
        // Indices spread over the whole tree (7919 is prime, so every index comes up).
        self.next = (self.next + 7919) % self.size;
        let url = format!("{}?index={}&size={}", self.base, self.next, self.size);
        Some(match self.client.get(url).send().await {
            Ok(r) => {
                let status = r.status();
                let body: Value = r.json().await.unwrap_or_default();
                if status == 200 && body["hashes"].as_array().is_some_and(|h| !h.is_empty()) {
                    Ok(1)
                } else {
                    Err(format!("{status}: {body}"))
                }
            }
            Err(e) => Err(e.to_string()),
        })
    }
}

/// One proof point: K connections asking for inclusion proofs in the tree of `size`.
pub async fn proof_point(server: &Server, size: u64, k: usize, measure: Duration) -> Point {
    let workers = (0..k as u64)
        .map(|w| Proving {
            client: client(),
            base: format!("{}/transparency/v1/proof/inclusion", server.url),
            size,
            next: w * 131,
        })
        .collect();
    run_point(server, workers, HTTP_WARMUP, measure).await
}

/// Entries integrated per second, in process: `n` entries appended to a fresh sled store
/// (1000 per transaction), then timed while the integrator puts them into the tree and
/// signs a checkpoint per round. Must run outside any async runtime (the store refuses
/// I/O on one).
pub fn integration_rate(n: u64) -> f64 {
    use civis::domain::audit::{Actor, Entry, event};
    let dir = tempfile::tempdir().expect("tempdir");
    let store = civis::store::Store::open_sled(dir.path()).expect("sled");
    let rng = civis::domain::SystemRng::new();
    let now = time::OffsetDateTime::now_utc();
    let mut appended = 0;
    while appended < n {
        let batch: Vec<Entry> = (0..1000.min(n - appended))
            .map(|i| {
                Entry::new(
                    event::LOGIN_SUCCEEDED,
                    Actor::Citizen("8c1f0d52-7a43-4d0e-9a55-6a1e8f3b2c10"),
                    Some("8c1f0d52-7a43-4d0e-9a55-6a1e8f3b2c10"),
                    json!({"passkey_id": format!("cred-{}", appended + i), "user_verified": true}),
                    now,
                    &rng,
                )
                .expect("entry")
            })
            .collect();
        store
            .transact(|tx| {
                for e in &batch {
                    e.append(tx)?;
                }
                Ok::<_, civis::store::StoreError>(())
            })
            .expect("append");
        appended += batch.len() as u64;
    }
    let pkcs8 = civis::crypto::note::generate_key().expect("key");
    let signer = civis::crypto::note::NoteSigner::new("bench.example/audit", pkcs8.expose())
        .expect("signer");
    let start = Instant::now();
    while let Some(size) =
        civis::domain::transparency::integrate(&store, &signer).expect("integrate")
    {
        if size >= n {
            break;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}
