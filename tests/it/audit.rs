//! Issue 11 through the real interface: every surface writes its audit entries, a failed
//! action writes none, a citizen sees only their own, proofs and checkpoints verify (with
//! our verifier here and with Go's packages in `tests/go/tlogcheck`), and `civis audit
//! verify` names any single change to a stopped server's store.

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::driver::{VERIFIER, plain, tempdir};
use crate::support::{Server, root};

/// Every entry of the log, through the admin API, page by page.
pub(crate) async fn all_entries(server: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    let mut from = 0u64;
    loop {
        let resp = server
            .admin_get(&format!("/admin/v1/audit?from={from}&limit=7"))
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text);
        let page = resp.json().clone();
        for e in page["entries"].as_array().unwrap() {
            assert_eq!(
                e["index"].as_u64().unwrap(),
                out.len() as u64,
                "in index order"
            );
            let bytes = STANDARD.decode(e["entry"].as_str().unwrap()).unwrap();
            let decoded: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(decoded, e["event"], "event is the entry decoded");
            out.push(e.clone());
        }
        match page["next"].as_u64() {
            Some(n) => from = n,
            None => break,
        }
    }
    out
}

fn events(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["event"]["event"].as_str().unwrap())
        .collect()
}

/// The log's size once the integrator has caught up with `n` entries.
async fn checkpoint_at_least(server: &Server, n: u64) -> String {
    for _ in 0..100 {
        let resp = server.get("/transparency/v1/checkpoint").send().await;
        if resp.status == 200 {
            let size: u64 = resp.text.lines().nth(1).unwrap().parse().unwrap();
            if size >= n {
                return resp.text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of size {n} within 10 s");
}

#[tokio::test]
async fn every_surface_writes_its_events_and_no_secret() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let citizen = server.register_citizen("AUDIT 1").await;
    let code = server.new_enrolment_code(&citizen.id).await;
    let mut device = server.enrolled_device(&code).await;
    // Login, consent, code redemption, refresh.
    let (code, _cookie) = server.code_for(&web.id, &mut device, None).await;
    let tokens = server.redeem(web.auth(), &code, VERIFIER).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let machine = server.machine_client("Statistics", "seal").await;
    let cc = server.client_credentials(machine.auth()).await;
    assert_eq!(cc.status, 200, "{}", cc.text);
    // An official and a seal, created and revoked.
    let official = server
        .create_official(&citizen.id, "Tax inspector", "Tax Office")
        .await;
    assert_eq!(
        server
            .admin_delete(&format!("/admin/v1/officials/{}", official.id))
            .await
            .status,
        204
    );
    // An agency seals (its own client and seal).
    let sealer = server.sealer().await;
    let doc = crate::driver::seal::document("letter.pdf", b"Dear citizen");
    assert_eq!(server.seal(&sealer, &[doc], "jades").await.len(), 1);
    // The officer revokes the passkey; a login with it then fails.
    let passkey = server.citizen(&citizen.id).await["passkeys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = server
        .admin_delete(&format!(
            "/admin/v1/citizens/{}/passkeys/{passkey}",
            citizen.id
        ))
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert_ne!(server.login(&mut device).await.status, 200);

    let entries = all_entries(&server).await;
    let seen = events(&entries);
    for expected in [
        "client.registered",
        "citizen.registered",
        "enrolment_code.issued",
        "passkey.added",
        "login.succeeded",
        "consent.given",
        "tokens.issued",
        "official.created",
        "official.revoked",
        "seal.created",
        "seal.used",
        "passkey.revoked",
        "login.failed",
    ] {
        assert!(seen.contains(&expected), "{expected} missing from {seen:?}");
    }
    for e in &entries {
        let ev = &e["event"];
        for field in ["time", "event", "actor", "salt"] {
            assert!(ev.get(field).is_some(), "{field} missing: {ev}");
        }
        assert!(ev.get("subject").is_some(), "subject always present: {ev}");
        assert!(ev["time"].as_str().unwrap().ends_with('Z'), "{ev}");
        // No secret, token or code ever enters the log.
        let text = e["entry"].as_str().unwrap();
        let bytes = String::from_utf8(STANDARD.decode(text).unwrap()).unwrap();
        for secret in [
            tokens.json()["access_token"].as_str().unwrap(),
            tokens.json()["refresh_token"].as_str().unwrap_or("-none-"),
            cc.json()["access_token"].as_str().unwrap(),
            web.secret.as_deref().unwrap(),
            &citizen.enrolment_code,
            &code,
        ] {
            assert!(!bytes.contains(secret), "a secret in the log: {bytes}");
        }
    }
    // Token issuance names the client and the claims released, about the citizen.
    let issued: Vec<&Value> = entries
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["event"] == "tokens.issued" && e["subject"] == citizen.id.as_str())
        .collect();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0]["actor"], format!("client:{}", web.id));
    assert_eq!(issued[0]["details"]["client_id"], web.id.as_str());
    let claims: Vec<&str> = issued[0]["details"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        claims.contains(&"given_name") && claims.contains(&"sub"),
        "{claims:?}"
    );
    let machine_tokens = entries
        .iter()
        .filter(|e| {
            e["event"]["event"] == "tokens.issued"
                && e["event"]["actor"] == format!("client:{}", machine.id)
        })
        .count();
    assert_eq!(machine_tokens, 1, "client_credentials is audited too");
    let failed: Vec<&Value> = entries
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["event"] == "login.failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0]["subject"],
        citizen.id.as_str(),
        "whose passkey was presented"
    );
    // The admin API wants the admin token; bad paging parameters are a precise 400.
    assert_eq!(server.get("/admin/v1/audit").send().await.status, 401);
    let bad = server.admin_get("/admin/v1/audit?from=-1").await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(bad.header("content-type"), "application/problem+json");
}

#[tokio::test]
async fn a_failed_action_writes_no_entry() {
    let data = tempdir();
    let server = plain(&data);
    // A new log has its first checkpoint, of the empty tree, as soon as the server listens.
    let first = server.get("/transparency/v1/checkpoint").send().await;
    assert_eq!(first.status, 200, "{}", first.text);
    let empty = STANDARD.encode(ring::digest::digest(&ring::digest::SHA256, b""));
    assert_eq!(first.text.lines().nth(1), Some("0"), "{}", first.text);
    assert_eq!(
        first.text.lines().nth(2),
        Some(empty.as_str()),
        "{}",
        first.text
    );
    server.register_citizen("AUDIT 2").await;
    let before = all_entries(&server).await.len();
    // The same national id again: 409, and nothing recorded.
    let again = server
        .admin_post(
            "/admin/v1/citizens",
            &json!({"given_name": "Ana", "family_name": "Novak", "birthdate": "1990-04-01", "national_id": "AUDIT 2"}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    // A client_credentials request with a scope the client does not have: no token, no entry.
    let machine = server.machine_client("Statistics", "seal").await;
    let after_client = all_entries(&server).await.len();
    assert_eq!(after_client, before + 1, "only client.registered");
    let refused = server
        .token(
            machine.auth(),
            &[("grant_type", "client_credentials"), ("scope", "profile")],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(all_entries(&server).await.len(), after_client);
}

#[tokio::test]
async fn a_citizen_sees_their_own_activity_and_not_anothers() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (ana, mut ana_device) = server.citizen_with_passkey("AUDIT 3").await;
    let (bob, mut bob_device) = server.citizen_with_passkey("AUDIT 4").await;
    let (code, ana_cookie) = server.code_for(&web.id, &mut ana_device, None).await;
    assert_eq!(server.redeem(web.auth(), &code, VERIFIER).await.status, 200);
    let bob_login = server.login(&mut bob_device).await;
    let bob_cookie = bob_login.cookie().unwrap();
    let ana_cookie = ana_cookie.unwrap();

    let mine = server
        .get("/activity/v1/entries")
        .cookie(&ana_cookie)
        .send()
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text);
    assert_eq!(mine.header("cache-control"), "no-store");
    let entries = mine.json()["entries"].as_array().unwrap().clone();
    assert!(!entries.is_empty());
    for e in &entries {
        assert_eq!(e["event"]["subject"], ana.as_str(), "only Ana's: {e}");
    }
    let seen: Vec<&str> = entries
        .iter()
        .map(|e| e["event"]["event"].as_str().unwrap())
        .collect();
    for expected in [
        "citizen.registered",
        "passkey.added",
        "login.succeeded",
        "consent.given",
        "tokens.issued",
    ] {
        assert!(seen.contains(&expected), "{expected} missing: {seen:?}");
    }
    let theirs = server
        .get("/activity/v1/entries")
        .cookie(&bob_cookie)
        .send()
        .await;
    for e in theirs.json()["entries"].as_array().unwrap() {
        assert_eq!(e["event"]["subject"], bob.as_str());
    }
    // Paging: one at a time, `next` chains through all of Ana's.
    let one = server
        .get("/activity/v1/entries?limit=1")
        .cookie(&ana_cookie)
        .send()
        .await;
    assert_eq!(one.json()["entries"].as_array().unwrap().len(), 1);
    assert_eq!(one.json()["next"], entries[1]["index"]);
    // Without a session: 401 (API) and the login page first (page).
    assert_eq!(server.get("/activity/v1/entries").send().await.status, 401);
    let page = server.get("/activity").no_redirect().send().await;
    assert_eq!(page.status, 303, "{}", page.text);
    assert!(
        page.location().starts_with("/login?return_to="),
        "{}",
        page.location()
    );

    // The page, in plain language, newest first.
    let page = server.get("/activity").cookie(&ana_cookie).send().await;
    assert_eq!(page.status, 200, "{}", page.text);
    let html = &page.text;
    assert!(html.contains("<h1>Your activity</h1>"), "{html}");
    assert!(
        html.contains("<th scope=\"col\">What happened</th>"),
        "{html}"
    );
    assert!(html.contains("Tax office received your data"), "{html}");
    assert!(
        html.contains("You allowed Tax office to receive your data"),
        "{html}"
    );
    assert!(html.contains("You signed in with a passkey"), "{html}");
    let received = html.find("Tax office received your data").unwrap();
    let registered = html.find("You were registered").unwrap();
    assert!(received < registered, "newest first");
    assert!(!html.contains(&bob), "another citizen's id on Ana's page");
}

/// Fetches the log's public surface and every entry into the layout `tests/go/tlogcheck`
/// reads, with inclusion proofs for every index and consistency proofs for `froms`.
async fn tlogcheck_dir(server: &Server, dir: &std::path::Path, froms: &[u64]) -> (String, u64) {
    let key = server.get("/transparency/v1/key").send().await;
    assert_eq!(key.status, 200);
    assert!(key.header("content-type").starts_with("text/plain"));
    let entries = all_entries(server).await;
    let note = checkpoint_at_least(server, entries.len() as u64).await;
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    let mut inclusion = Vec::new();
    for index in 0..size {
        let p = server
            .get(&format!(
                "/transparency/v1/proof/inclusion?index={index}&size={size}"
            ))
            .send()
            .await;
        assert_eq!(p.status, 200, "{}", p.text);
        inclusion.push(p.json().clone());
    }
    let mut consistency = Vec::new();
    for from in froms.iter().copied().filter(|f| *f <= size) {
        let p = server
            .get(&format!(
                "/transparency/v1/proof/consistency?from={from}&size={size}"
            ))
            .send()
            .await;
        assert_eq!(p.status, 200, "{}", p.text);
        consistency.push(p.json().clone());
    }
    let lines: Vec<&str> = entries
        .iter()
        .map(|e| e["entry"].as_str().unwrap())
        .collect();
    std::fs::write(dir.join("key"), &key.text).unwrap();
    std::fs::write(dir.join("checkpoint"), &note).unwrap();
    std::fs::write(dir.join("entries"), lines.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.join("inclusion.json"),
        Value::from(inclusion).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("consistency.json"),
        Value::from(consistency).to_string(),
    )
    .unwrap();
    (note, size)
}

#[tokio::test]
async fn proofs_and_checkpoints_verify_with_gos_tlog_packages() {
    let data = tempdir();
    let server = plain(&data);
    // A few hundred entries: citizens (registration) and enrolment codes.
    for i in 0..150 {
        let c = server.register_citizen(&format!("TLOG {i:04}")).await;
        server.new_enrolment_code(&c.id).await;
    }
    let dir = tempdir();
    let (note, size) = tlogcheck_dir(
        &server,
        dir.path(),
        &[1, 2, 3, 7, 8, 64, 100, 255, 256, 299, 300],
    )
    .await;
    assert!(size >= 300, "{note}");
    let key = server.get("/transparency/v1/key").send().await.text;
    let name = key.split('+').next().unwrap();
    assert_eq!(
        note.lines().next().unwrap(),
        name,
        "origin line is the key name"
    );
    assert!(note.contains("\n\n\u{2014} "), "a signature line: {note}");

    let go = Command::new("go")
        .args(["run", ".", "-dir"])
        .arg(dir.path())
        .current_dir(root().join("tests/go/tlogcheck"))
        .output()
        .expect("the go command is needed (.ci/run checks for it)");
    let out = String::from_utf8_lossy(&go.stdout);
    let err = String::from_utf8_lossy(&go.stderr);
    assert!(go.status.success(), "Go's verifier refused: {out}\n{err}");
    assert!(out.contains(&format!("ok: size {size}")), "{out}");
    assert!(out.contains("2 forgeries refused"), "{out}");

    // Bad parameters are a precise 400, never a 5xx.
    for query in [
        "proof/inclusion?index=0",
        &format!("proof/inclusion?index={size}&size={size}"),
        &format!("proof/inclusion?index=0&size={}", size + 1),
        "proof/inclusion?index=x&size=1",
        "proof/inclusion?index=-1&size=1",
        "proof/inclusion?index=99999999999999999999999&size=1",
        "proof/consistency?from=0&size=1",
        "proof/consistency?from=2&size=1",
        &format!("proof/consistency?from=1&size={}", size + 1),
        "proof/consistency?size=1",
    ] {
        let resp = server
            .get(&format!("/transparency/v1/{query}"))
            .send()
            .await;
        assert_eq!(resp.status, 400, "{query}: {}", resp.text);
        assert_eq!(
            resp.header("content-type"),
            "application/problem+json",
            "{query}"
        );
    }
    let same = server
        .get(&format!(
            "/transparency/v1/proof/consistency?from={size}&size={size}"
        ))
        .send()
        .await;
    assert_eq!(same.json()["hashes"], json!([]));
}

pub(crate) fn audit_verify(data: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_civis"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data)
        .arg("--keys-dir")
        .arg(root().join("keys-dev"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A stopped server's data dir with `n` citizens' entries in its tree, copied per tamper.
async fn logged_store(n: usize) -> tempfile::TempDir {
    let data = tempdir();
    let server = plain(&data);
    for i in 0..n {
        server.register_citizen(&format!("TAMPER {i:03}")).await;
    }
    checkpoint_at_least(&server, n as u64).await;
    let (status, _) = server.stop();
    assert!(status.success());
    data
}

fn copy_dir(from: &std::path::Path) -> tempfile::TempDir {
    let to = tempdir();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to.path())
        .status()
        .unwrap();
    assert!(status.success());
    to
}

/// Changes a stopped server's store directly (on a thread of its own: the store refuses
/// I/O on the test's async runtime).
fn tamper(dir: &std::path::Path, change: impl FnOnce(&civis::store::Store) + Send) {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let store = civis::store::Store::open_sled(dir).unwrap();
                change(&store);
                store.flush().unwrap();
            })
            .join()
            .unwrap();
    });
}

#[tokio::test]
async fn audit_verify_names_any_single_change() {
    let data = logged_store(12).await;
    let (code, out) = audit_verify(data.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("audit log intact: 12 entries"), "{out}");
    let tree = civis::store::AUDIT_ENTRIES;

    // One byte of entry 5 changed.
    let copy = copy_dir(data.path());
    tamper(copy.path(), |s| {
        let mut bytes = s.audit().entry(5).unwrap().unwrap();
        let at = bytes.iter().position(|b| *b == b'Z').unwrap();
        bytes[at] = b'z';
        s.plant_raw(tree, &5u64.to_be_bytes(), &bytes).unwrap();
    });
    let (code, out) = audit_verify(copy.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 5 "), "{out}");

    // Entry 7 deleted.
    let copy = copy_dir(data.path());
    tamper(copy.path(), |s| {
        s.transact(|tx| {
            tx.delete(tree, &7u64.to_be_bytes());
            Ok::<_, civis::store::StoreError>(())
        })
        .unwrap();
    });
    let (code, out) = audit_verify(copy.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 7 is missing"), "{out}");

    // Entries 2 and 3 swapped.
    let copy = copy_dir(data.path());
    tamper(copy.path(), |s| {
        let two = s.audit().entry(2).unwrap().unwrap();
        let three = s.audit().entry(3).unwrap().unwrap();
        s.plant_raw(tree, &2u64.to_be_bytes(), &three).unwrap();
        s.plant_raw(tree, &3u64.to_be_bytes(), &two).unwrap();
    });
    let (code, out) = audit_verify(copy.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("entry 2 "), "{out}");

    // The checkpoint key pinned from another keys dir is refused.
    let other = tempdir();
    let init = Command::new(env!("CARGO_BIN_EXE_civis"))
        .args(["keys", "init", "--dir"])
        .arg(other.path())
        .output()
        .unwrap();
    assert!(init.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_civis"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data.path())
        .arg("--keys-dir")
        .arg(other.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    // And the untouched store still verifies.
    let (code, out) = audit_verify(data.path());
    assert_eq!(code, 0, "{out}");
}

/// `client_credentials` entries are made durable in the audit journal and numbered into the
/// log later (`store::journal`): every token answered before a SIGKILL has its entry after
/// the restart, and the log still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_client_credentials_tokens_survive_sigkill_with_their_entries() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let data = tempdir();
    let server = plain(&data);
    let machine = server.machine_client("Journal office", "seal").await;
    let (id, secret) = (machine.id.clone(), machine.secret.clone().unwrap());
    let answered = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (url, id, secret, answered) = (
            server.at("/token"),
            id.clone(),
            secret.clone(),
            answered.clone(),
        );
        workers.push(tokio::spawn(async move {
            let http = crate::support::http();
            loop {
                let sent = http
                    .post(&url)
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                let Ok(resp) = sent else { return };
                let ok = resp.status() == 200;
                // Only a token received whole was acknowledged.
                match resp.json::<Value>().await {
                    Ok(v) if ok && v["access_token"].is_string() => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    drop(server); // SIGKILL in mid-load: no shutdown, no final flush
    for w in workers {
        w.await.unwrap();
    }
    let answered = answered.load(Ordering::SeqCst);
    assert!(answered > 0, "the kill came before any token");
    let server = plain(&data);
    let logged = all_entries(&server)
        .await
        .iter()
        .filter(|e| {
            e["event"]["event"] == "tokens.issued"
                && e["event"]["details"]["grant_type"] == "client_credentials"
                && e["event"]["details"]["client_id"] == id.as_str()
        })
        .count();
    eprintln!("{answered} tokens answered before the kill, {logged} entries after the restart");
    assert!(
        logged >= answered,
        "{answered} tokens were answered but only {logged} have their entry"
    );
    drop(server);
    let (code, out) = audit_verify(data.path());
    assert_eq!(code, 0, "{out}");
}

#[tokio::test]
async fn an_acknowledged_action_survives_sigkill_with_its_entry() {
    let data = tempdir();
    let server = plain(&data);
    let citizen = server.register_citizen("CRASH 1").await;
    drop(server); // SIGKILL: no shutdown, no final flush
    let server = plain(&data);
    let entries = all_entries(&server).await;
    assert!(
        entries
            .iter()
            .any(|e| e["event"]["event"] == "citizen.registered"
                && e["event"]["subject"] == citizen.id.as_str()),
        "the registration's entry is durable with it"
    );
    // The tree continues where it was: the checkpoint grows past the old entries.
    checkpoint_at_least(&server, entries.len() as u64).await;
}
