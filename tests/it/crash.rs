//! Issue 14, item 3: crash safety. The real binary takes concurrent load — citizens and
//! clients registered, documents sealed, authorization codes redeemed — and is killed with
//! SIGKILL in the middle of it, at several points; after each restart every request that
//! was answered with success is there and intact, a redeemed code is still spent, and at
//! the end `civis audit verify` passes and the log holds an entry for every acknowledged
//! registration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::audit::{all_entries, audit_verify};
use crate::driver::seal::{digest_of, document};
use crate::driver::{VERIFIER, code_grant, plain, tempdir};
use crate::support::{Server, http};

/// What the server acknowledged, across every round.
#[derive(Default)]
struct Acknowledged {
    /// `(citizen id, national id)`.
    citizens: Vec<(String, String)>,
    /// Client ids.
    clients: Vec<String>,
    /// `(format, signature, document)`.
    signatures: Vec<(String, String, Vec<u8>)>,
    /// `(code, refresh token)` of redemptions answered 200.
    redeemed: Vec<(String, String)>,
}

type Shared = Arc<Mutex<Acknowledged>>;

/// The fixed parties: a web client for codes, a sealing client with its seal.
struct Parties {
    web: (String, String),
    sealer: (String, String),
}

async fn post(url: String, auth: (&str, &str), body: Body) -> Option<(u16, Value)> {
    let req = http().post(url);
    let req = match auth {
        ("bearer", token) => req.bearer_auth(token),
        (id, secret) => req.basic_auth(id, Some(secret)),
    };
    let req = match body {
        Body::Json(v) => req.json(&v),
        Body::Form(f) => req.form(&f),
    };
    // A refused connection or one cut by the kill: nothing was acknowledged.
    let resp = req.send().await.ok()?;
    let status = resp.status().as_u16();
    Some((status, resp.json().await.ok()?))
}

enum Body {
    Json(Value),
    Form(Vec<(String, String)>),
}

/// One worker: runs `step` with a counter until the server stops answering.
fn worker<F, Fut>(step: F) -> tokio::task::JoinHandle<()>
where
    F: Fn(usize) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    tokio::spawn(async move {
        for i in 0.. {
            if !step(i).await {
                break;
            }
        }
    })
}

/// Starts the load against `server`, kills the server after `after`, and waits for the
/// workers to notice.
async fn load_then_kill(
    server: Server,
    parties: &Parties,
    codes: Vec<String>,
    round: usize,
    after: Duration,
    ack: &Shared,
) {
    let admin = crate::support::admin_token();
    let url = server.url.clone();
    let mut workers = Vec::new();
    for w in 0..2 {
        let (url, admin, ack) = (url.clone(), admin.clone(), ack.clone());
        workers.push(worker(move |i| {
            let (url, admin, ack) = (url.clone(), admin.clone(), ack.clone());
            async move {
                let nid = format!("CRASH-{round}-{w}-{i}");
                let body = json!({"given_name": "Ana", "family_name": "Novak",
                                  "birthdate": "1990-04-01", "national_id": nid});
                match post(
                    format!("{url}/admin/v1/citizens"),
                    ("bearer", &admin),
                    Body::Json(body),
                )
                .await
                {
                    Some((201, v)) => {
                        let id = v["id"].as_str().unwrap().to_owned();
                        ack.lock().unwrap().citizens.push((id, nid));
                        true
                    }
                    other => other.is_some_and(|(s, _)| s < 500),
                }
            }
        }));
    }
    {
        let (url, admin, ack) = (url.clone(), admin.clone(), ack.clone());
        workers.push(worker(move |i| {
            let (url, admin, ack) = (url.clone(), admin.clone(), ack.clone());
            async move {
                let body = json!({"name": format!("Agency {round}-{i}"),
                                  "redirect_uris": ["https://rp.example/cb"]});
                match post(
                    format!("{url}/admin/v1/clients"),
                    ("bearer", &admin),
                    Body::Json(body),
                )
                .await
                {
                    Some((201, v)) => {
                        let id = v["client_id"].as_str().unwrap().to_owned();
                        ack.lock().unwrap().clients.push(id);
                        true
                    }
                    other => other.is_some_and(|(s, _)| s < 500),
                }
            }
        }));
    }
    {
        let (url, ack, sealer) = (url.clone(), ack.clone(), parties.sealer.clone());
        let token = client_token(&url, &sealer).await;
        workers.push(worker(move |i| {
            let (url, ack, token) = (url.clone(), ack.clone(), token.clone());
            async move {
                let format = if i % 2 == 0 { "cades" } else { "jades" };
                let content = format!("Decision {round}-{i}").into_bytes();
                let body = json!({"format": format,
                                  "documents": [document("decision.pdf", &content)]});
                match post(
                    format!("{url}/seal/v1/sign"),
                    ("bearer", &token),
                    Body::Json(body),
                )
                .await
                {
                    Some((200, v)) => {
                        let signature = v["signatures"][0]["signature"].as_str().unwrap();
                        ack.lock().unwrap().signatures.push((
                            format.to_owned(),
                            signature.to_owned(),
                            content,
                        ));
                        true
                    }
                    other => other.is_some_and(|(s, _)| s < 500),
                }
            }
        }));
    }
    {
        let (url, ack, web) = (url.clone(), ack.clone(), parties.web.clone());
        let codes = Arc::new(codes);
        workers.push(worker(move |i| {
            let (url, ack, web, codes) = (url.clone(), ack.clone(), web.clone(), codes.clone());
            async move {
                let Some(code) = codes.get(i).cloned() else {
                    return false;
                };
                let form = code_grant(&code, VERIFIER)
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect();
                match post(format!("{url}/token"), (&web.0, &web.1), Body::Form(form)).await {
                    Some((200, v)) => {
                        let refresh = v["refresh_token"].as_str().unwrap().to_owned();
                        ack.lock().unwrap().redeemed.push((code.clone(), refresh));
                        true
                    }
                    other => other.is_some_and(|(s, _)| s < 500),
                }
            }
        }));
    }
    tokio::time::sleep(after).await;
    drop(server); // SIGKILL: no shutdown, no final flush
    for w in workers {
        w.await.unwrap();
    }
}

async fn client_token(url: &str, (id, secret): &(String, String)) -> String {
    let form = Body::Form(vec![("grant_type".into(), "client_credentials".into())]);
    let (status, v) = post(format!("{url}/token"), (id, secret), form)
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

/// Everything acknowledged so far is on the restarted server, intact; spent codes stay spent.
async fn check_acknowledged(
    server: &Server,
    parties: &Parties,
    ack: &Shared,
) -> Vec<(String, String)> {
    let ack = std::mem::take(&mut *ack.lock().unwrap());
    eprintln!(
        "acknowledged before the kill: {} citizens, {} clients, {} signatures, {} redemptions",
        ack.citizens.len(),
        ack.clients.len(),
        ack.signatures.len(),
        ack.redeemed.len()
    );
    assert!(
        !ack.citizens.is_empty() && !ack.signatures.is_empty() && !ack.redeemed.is_empty(),
        "the kill came before the load did anything"
    );
    for (id, nid) in &ack.citizens {
        let c = server.admin_get(&format!("/admin/v1/citizens/{id}")).await;
        assert_eq!(c.status, 200, "acknowledged citizen {id} lost: {}", c.text);
        assert_eq!(c.json()["national_id"], nid.as_str(), "{}", c.text);
    }
    for id in &ack.clients {
        let c = server.admin_get(&format!("/admin/v1/clients/{id}")).await;
        assert_eq!(c.status, 200, "acknowledged client {id} lost: {}", c.text);
    }
    for (format, signature, content) in &ack.signatures {
        let v = server
            .post_verify(&digest_of(content), signature, format)
            .await;
        assert_eq!(v.status, 200, "{}", v.text);
        // `produced` is civis's own record of the signature: it survived the kill.
        assert_eq!(
            v.json()["valid"],
            true,
            "acknowledged signature: {}",
            v.text
        );
    }
    let web = (parties.web.0.as_str(), parties.web.1.as_str());
    for (code, refresh) in &ack.redeemed {
        let again = server.redeem(web, code, VERIFIER).await;
        assert_eq!(
            again.status, 400,
            "a redeemed code redeemed again: {}",
            again.text
        );
        assert_eq!(again.json()["error"], "invalid_grant");
        // The replay revoked the grant, so its refresh token is refused too — the grant
        // and the used-code marker both survived.
        let refreshed = server.refresh(web, refresh).await;
        assert_eq!(refreshed.status, 400, "{}", refreshed.text);
    }
    ack.citizens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_at_several_points() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let sealer = server.machine_client("Sealing office", "seal").await;
    server.create_seal(&sealer.id, "Sealing Office").await;
    let (_, mut device) = server.citizen_with_passkey("CRASH-CITIZEN").await;
    let parties = Parties {
        web: (web.id.clone(), web.secret.clone().unwrap()),
        sealer: (sealer.id.clone(), sealer.secret.clone().unwrap()),
    };
    let mut citizens = Vec::new();
    let ack: Shared = Arc::default();
    let mut server = Some(server);
    // Kill points: early in the load, in its middle, and late.
    for (round, after_ms) in [60u64, 350, 900].into_iter().enumerate() {
        let live = match server.take() {
            Some(s) => s,
            None => plain(&data),
        };
        // The passkey's RP ID stays `localhost`; the origin has the new port.
        device = device.at(&live.url);
        let mut codes = Vec::new();
        let mut cookie = None;
        for _ in 0..12 {
            let (code, c) = live.code_for(&parties.web.0, &mut device, cookie).await;
            codes.push(code);
            cookie = c;
        }
        load_then_kill(
            live,
            &parties,
            codes,
            round,
            Duration::from_millis(after_ms),
            &ack,
        )
        .await;
        let restarted = plain(&data);
        citizens.extend(check_acknowledged(&restarted, &parties, &ack).await);
        server = Some(restarted);
    }
    let server = server.unwrap();
    assert!(
        !citizens.is_empty(),
        "the load registered nobody before the kills"
    );
    let entries = all_entries(&server).await;
    for (id, _) in &citizens {
        assert!(
            entries
                .iter()
                .any(|e| e["event"]["event"] == "citizen.registered"
                    && e["event"]["subject"] == id.as_str()),
            "citizen {id} has no citizen.registered entry"
        );
    }
    drop(server);
    let (code, out) = audit_verify(data.path());
    assert_eq!(code, 0, "{out}");
}
