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

/// What durably appending `tokens.issued` entries costs in process, µs of this process's
/// CPU per entry (user + system, every thread) and entries per second, three ways:
/// - `appender`: 64 tasks through `domain::audit::Appender` into a fresh sled store, as the
///   `client_credentials` handler does (one journal `write` and `fdatasync` per batch of
///   whatever queued meanwhile), then numbered into the log as the integrator does;
/// - `sled, 1000 a transaction`: the same entries in transactions of 1000 (what numbering
///   them into sled later, from some other durable queue, would cost at best);
/// - `file + fdatasync, 16 a write`: the entries length-prefixed into a plain file, one
///   `write` and one `fdatasync` per 16: the floor of any durable append on this disk.
///
/// Must run outside any async runtime (it makes its own; the store refuses I/O on one).
pub fn append_costs(n: u64) -> Vec<(&'static str, f64, f64)> {
    use civis::domain::audit::{Actor, Appender, Entry, event};
    let rng = civis::domain::SystemRng::new();
    let now = time::OffsetDateTime::now_utc();
    let entries: Vec<Entry> = (0..n)
        .map(|i| {
            Entry::new(
                event::TOKENS_ISSUED,
                Actor::Client("bench-client"),
                None,
                json!({"client_id": "bench-client", "grant_type": "client_credentials",
                    "scope": "", "jti": format!("{i:032x}")}),
                now,
                &rng,
            )
            .expect("entry")
        })
        .collect();
    let own = std::process::id().to_string();
    let timed = |run: &mut dyn FnMut()| {
        let (cpu, start) = (crate::server::cpu_seconds(&own), Instant::now());
        run();
        let wall = start.elapsed().as_secs_f64();
        let cpu = crate::server::cpu_seconds(&own)
            .zip(cpu)
            .map_or(0.0, |(b, a)| b - a);
        (cpu * 1e6 / n as f64, n as f64 / wall)
    };
    let mut out = Vec::new();

    let dir = tempfile::tempdir().expect("tempdir");
    let store = civis::store::Store::open_sled(dir.path()).expect("sled");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut queued = Some(entries.clone());
    let (cpu, rate) = timed(&mut || {
        let Some(queued) = queued.take() else {
            return;
        };
        let appending = store.clone();
        rt.block_on(async move {
            let appender = std::sync::Arc::new(Appender::start(appending).expect("appender"));
            let per_task = queued.len().div_ceil(64);
            let tasks: Vec<_> = queued
                .chunks(per_task)
                .map(|mine| {
                    let (appender, mine) = (appender.clone(), mine.to_vec());
                    tokio::spawn(async move {
                        for e in mine {
                            appender.append(e).await.expect("append");
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("appending task");
            }
        });
        while civis::domain::audit::settle(&store).expect("numbering") > 0 {}
    });
    out.push(("appender (64 tasks, sled)", cpu, rate));

    let dir = tempfile::tempdir().expect("tempdir");
    let store = civis::store::Store::open_sled(dir.path()).expect("sled");
    let (cpu, rate) = timed(&mut || {
        for batch in entries.chunks(1000) {
            store
                .transact(|tx| batch.iter().try_for_each(|e| e.append(tx)))
                .expect("append");
        }
    });
    out.push(("sled, 1000 a transaction", cpu, rate));

    let dir = tempfile::tempdir().expect("tempdir");
    let (cpu, rate) = timed(&mut || {
        use std::io::Write as _;
        let mut file = std::fs::File::create(dir.path().join("entries")).expect("file");
        let mut buf = Vec::new();
        for batch in entries.chunks(16) {
            buf.clear();
            for e in batch {
                let len = u32::try_from(e.bytes().len()).expect("entry length");
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend_from_slice(e.bytes());
            }
            file.write_all(&buf).expect("write");
            file.sync_data().expect("fdatasync");
        }
    });
    out.push(("file + fdatasync, 16 a write", cpu, rate));
    out
}
