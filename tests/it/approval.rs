//! Officials sign with approval (issue 10, items 3 and 6): a sign request made with a
//! `sign` token, approved on its page with the official's passkey over a challenge derived
//! from the request, signed once; the evidence bundle checked offline by
//! `civis evidence verify`; and each attack on the approval failing.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::clock::{advance, with_test_clock};
use crate::driver::seal::failed_checks;
use crate::driver::{Device, Reply, Server, VERIFIER, enc, plain, query, tempdir};
use crate::support::{civis, root};

pub(crate) const DOC_A: &[u8] = b"Building permit 2026/17: granted.\n";
pub(crate) const DOC_B: &[u8] = b"Letter to the applicant.\n";

pub(crate) fn digest(doc: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, doc))
}

/// An official signed in: their device, session cookie and `sign` access token.
pub(crate) struct Official {
    citizen_id: String,
    official_id: String,
    pub(crate) device: Device,
    pub(crate) cookie: String,
    token: String,
    refresh: String,
    client: (String, String),
}

/// A citizen with a passkey, signed in through a web client with scope `openid sign`;
/// made an official first when `official` is true.
pub(crate) async fn signed_in(server: &Server, national_id: &str, official: bool) -> Official {
    let (citizen_id, mut device) = server.citizen_with_passkey(national_id).await;
    let official_id = if official {
        server
            .create_official(&citizen_id, "Permit officer", "City of Ljubljana")
            .await
            .id
    } else {
        String::new()
    };
    let client = server
        .register_client(json!({
            "name": "Permits", "redirect_uris": [crate::driver::REDIRECT],
            "scope": "openid sign",
        }))
        .await;
    let url = format!(
        "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid%20sign&state=st&nonce=n1&code_challenge={}&code_challenge_method=S256",
        server.url,
        client.id,
        enc(crate::driver::REDIRECT),
        crate::driver::CHALLENGE
    );
    let (back, cookie) = server.authorize(&url, &mut device, None, "allow").await;
    let code = query(&back, "code").unwrap_or_else(|| panic!("no code in {back}"));
    let tokens = server
        .redeem(
            (&client.id, client.secret.as_deref().unwrap()),
            &code,
            VERIFIER,
        )
        .await
        .tokens();
    Official {
        citizen_id,
        official_id,
        device,
        cookie: cookie.expect("a session"),
        refresh: tokens.refresh_token().to_owned(),
        token: tokens.access,
        client: (client.id, client.secret.unwrap()),
    }
}

async fn create_request(server: &Server, token: &str, format: &str) -> Reply {
    server
        .post("/sign/v1/requests")
        .bearer(token)
        .json(&json!({
            "format": format,
            "documents": [
                {"name": "permit-17.pdf", "digest": digest(DOC_A)},
                {"name": "letter <b>.txt", "digest": digest(DOC_B)},
            ],
        }))
        .send()
        .await
}

pub(crate) async fn new_request(server: &Server, o: &Official, format: &str) -> String {
    let r = create_request(server, &o.token, format).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_owned()
}

async fn start(server: &Server, cookie: &str, id: &str) -> Reply {
    server
        .post(&format!("/sign/requests/{id}/start"))
        .cookie(cookie)
        .json(&json!({}))
        .send()
        .await
}

pub(crate) async fn finish(
    server: &Server,
    cookie: &str,
    id: &str,
    ceremony: &Value,
    cred: &Value,
) -> Reply {
    server
        .post(&format!("/sign/requests/{id}/finish"))
        .cookie(cookie)
        .json(&json!({"ceremony": ceremony, "credential": cred}))
        .send()
        .await
}

/// Starts an approval and lets `device` answer; returns (ceremony, assertion).
pub(crate) async fn assertion(
    server: &Server,
    cookie: &str,
    id: &str,
    device: &mut Device,
) -> (Value, Value) {
    let started = start(server, cookie, id).await;
    assert_eq!(started.status, 200, "{}", started.text);
    let s = started.json();
    let cred = device.get(&s["options"]).await.expect("device answers");
    (s["ceremony"].clone(), cred)
}

async fn approve(server: &Server, o: &mut Official, id: &str) -> Reply {
    let (ceremony, cred) = assertion(server, &o.cookie, id, &mut o.device).await;
    finish(server, &o.cookie, id, &ceremony, &cred).await
}

/// The approval page of a request that is no longer pending: it says `word` and offers no
/// button.
async fn page_shows_only(server: &Server, o: &Official, id: &str, word: &str) {
    let page = server
        .get(&format!("/sign/requests/{id}"))
        .cookie(&o.cookie)
        .send()
        .await;
    assert!(
        page.text.contains(word) && !page.text.contains("<button"),
        "{}",
        page.text
    );
}

pub(crate) async fn status(server: &Server, o: &Official, id: &str) -> Value {
    let r = server
        .get(&format!("/sign/v1/requests/{id}"))
        .bearer(&o.token)
        .send()
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json().clone()
}

fn verify_evidence(bundle: &Value) -> std::process::Output {
    let dir = tempdir();
    let path = dir.path().join("evidence.json");
    std::fs::write(&path, bundle.to_string()).unwrap();
    civis()
        .args(["evidence", "verify"])
        .arg(&path)
        .output()
        .unwrap()
}

fn openssl_missing() -> bool {
    let missing = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err();
    assert!(
        !(missing && std::env::var_os("CI").is_some()),
        "openssl is required under CI"
    );
    missing
}

#[tokio::test]
async fn an_official_approves_a_batch_with_a_passkey_and_the_signatures_and_evidence_verify() {
    let data = tempdir();
    let server = plain(&data);
    let mut o = signed_in(&server, "SIGN-1001", true).await;
    let created = create_request(&server, &o.token, "cades").await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.json()["approval_url"],
        format!("{}/sign/requests/{id}", server.url)
    );
    assert_eq!(status(&server, &o, &id).await["status"], "pending");

    // The page lists every name (escaped) and digest, with the button.
    let page = server
        .get(&format!("/sign/requests/{id}"))
        .cookie(&o.cookie)
        .send()
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains(">Sign with passkey</button>"),
        "{}",
        page.text
    );
    assert!(page.text.contains("letter &lt;b&gt;.txt"), "{}", page.text);
    assert!(page.text.contains(&digest(DOC_A)) && page.text.contains(&digest(DOC_B)));
    // Without a session: to the login page, and back here afterwards.
    let anon = server
        .get(&format!("/sign/requests/{id}"))
        .no_redirect()
        .send()
        .await;
    assert_eq!(anon.status, 303, "{}", anon.text);
    assert!(
        anon.location()
            .starts_with("/login?return_to=%2Fsign%2Frequests%2F")
    );

    // Only the official's own passkey may answer, with user verification.
    let started = start(&server, &o.cookie, &id).await;
    let allowed = &started.json()["options"]["publicKey"]["allowCredentials"];
    assert_eq!(allowed.as_array().unwrap().len(), 1, "{allowed}");
    assert_eq!(
        started.json()["options"]["publicKey"]["userVerification"],
        "required"
    );

    let approved = approve(&server, &mut o, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.text);
    let done = status(&server, &o, &id).await;
    assert_eq!(done["status"], "signed");
    let sigs = done["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2);
    assert_eq!(sigs[0]["name"], "permit-17.pdf");
    assert_eq!(sigs[0]["format"], "cades");

    // Once signed, the page shows it and offers no button.
    page_shows_only(&server, &o, &id, "Signed").await;

    // The official's activity shows the request and the signature, with every document.
    let mine = server
        .get("/activity/v1/entries?limit=1000")
        .cookie(&o.cookie)
        .send()
        .await;
    let produced: Vec<&Value> = mine.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["event"])
        .filter(|e| e["event"] == "signature.produced")
        .collect();
    assert_eq!(produced.len(), 1, "{}", mine.text);
    assert_eq!(produced[0]["details"]["request_id"], id.as_str());
    assert_eq!(
        produced[0]["details"]["documents"][0]["name"],
        "permit-17.pdf"
    );
    let page = server.get("/activity").cookie(&o.cookie).send().await;
    assert!(
        page.text.contains("Documents were signed in your name"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("permit-17.pdf (SHA-256 "),
        "{}",
        page.text
    );

    // The evidence, to the official and to the admin, verifies offline.
    let evidence = server
        .get(&format!("/sign/v1/requests/{id}/evidence"))
        .bearer(&o.token)
        .send()
        .await;
    assert_eq!(evidence.status, 200, "{}", evidence.text);
    let bundle = evidence.json().clone();
    let admin = server
        .get(&format!("/sign/v1/requests/{id}/evidence"))
        .admin()
        .send()
        .await;
    assert_eq!(admin.json(), &bundle);
    let out = verify_evidence(&bundle);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("evidence verified"));

    // One byte changed in the request, the assertion or a digest: the named check fails.
    let flip = |b64: &str, at: usize| {
        let mut bytes = URL_SAFE_NO_PAD.decode(b64).unwrap();
        bytes[at] ^= 1;
        URL_SAFE_NO_PAD.encode(bytes)
    };
    let mut tampered = Vec::new();
    let canonical = bundle["request"]["canonical"].as_str().unwrap();
    let last = URL_SAFE_NO_PAD.decode(canonical).unwrap().len() - 1;
    let mut b = bundle.clone();
    b["request"]["canonical"] = flip(canonical, last).into();
    tampered.push((b, "request"));
    let mut b = bundle.clone();
    let cd = bundle["assertion"]["client_data_json"].as_str().unwrap();
    let mut client_data: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(cd).unwrap()).unwrap();
    client_data["challenge"] = flip(client_data["challenge"].as_str().unwrap(), 0).into();
    b["assertion"]["client_data_json"] = URL_SAFE_NO_PAD.encode(client_data.to_string()).into();
    tampered.push((b, "challenge"));
    let mut b = bundle.clone();
    b["nonce"] = flip(bundle["nonce"].as_str().unwrap(), 0).into();
    tampered.push((b, "challenge"));
    let mut b = bundle.clone();
    b["assertion"]["authenticator_data"] = flip(
        bundle["assertion"]["authenticator_data"].as_str().unwrap(),
        36,
    )
    .into();
    tampered.push((b, "assertion signature"));
    let mut b = bundle.clone();
    b["assertion"]["signature"] =
        flip(bundle["assertion"]["signature"].as_str().unwrap(), 20).into();
    tampered.push((b, "assertion signature"));
    let mut b = bundle.clone();
    b["request"]["documents"][1]["digest"] = digest(b"another letter").into();
    tampered.push((b, "request"));
    let mut b = bundle.clone();
    b["signatures"][1] = bundle["signatures"][0].clone();
    tampered.push((b, "signatures"));
    for (b, check) in tampered {
        let out = verify_evidence(&b);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("{check} check failed")),
            "{check}: {err}"
        );
    }

    // Both signatures verify at /verify/v1, every check passed (civis recorded them), and
    // the signer is the official with their title.
    for (i, doc) in [DOC_A, DOC_B].iter().enumerate() {
        let signature = done["signatures"][i]["signature"].as_str().unwrap();
        let v = server.verify(&digest(doc), signature, "cades").await;
        assert_eq!(v["valid"], true, "{v}");
        assert!(failed_checks(&v).is_empty(), "{v}");
        assert_eq!(v["signer"]["title"], "Permit officer", "{v}");
    }

    // The CAdES signature verifies in openssl against the service CA.
    if openssl_missing() {
        eprintln!("SKIP openssl cms: openssl missing");
        return;
    }
    let dir = tempdir();
    let sig = dir.path().join("sig.p7s");
    let doc = dir.path().join("permit.pdf");
    std::fs::write(
        &sig,
        STANDARD
            .decode(sigs[0]["signature"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    std::fs::write(&doc, DOC_A).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
        ])
        .arg("-in")
        .arg(&sig)
        .arg("-content")
        .arg(&doc)
        .arg("-CAfile")
        .arg(root().join("keys-dev/ca.pem"))
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn jades_requests_are_signed_and_their_evidence_verifies() {
    let data = tempdir();
    let server = plain(&data);
    let mut o = signed_in(&server, "SIGN-1002", true).await;
    let id = new_request(&server, &o, "jades").await;
    let r = approve(&server, &mut o, &id).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let done = status(&server, &o, &id).await;
    assert_eq!(done["signatures"][1]["format"], "jades");
    let jws = done["signatures"][1]["signature"].as_str().unwrap();
    assert_eq!(jws.split('.').count(), 3);
    let v = server.verify(&digest(DOC_B), jws, "jades").await;
    assert_eq!(v["valid"], true, "{v}");
    let bundle = server
        .get(&format!("/sign/v1/requests/{id}/evidence"))
        .bearer(&o.token)
        .send()
        .await;
    assert!(verify_evidence(bundle.json()).status.success());
}

#[tokio::test]
async fn requests_are_validated_and_only_officials_may_make_them() {
    let data = tempdir();
    let server = plain(&data);
    let citizen = signed_in(&server, "SIGN-2001", false).await;
    let r = create_request(&server, &citizen.token, "cades").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["detail"], "not an official");

    let o = signed_in(&server, "SIGN-2002", true).await;
    let r = server
        .post("/sign/v1/requests")
        .bearer(&o.token)
        .json(&json!({"format": "pdf", "documents": [
            {"name": "", "digest": "AAAA"}, {"name": "a\u{7}", "digest": digest(DOC_A)}]}))
        .send()
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        r.json()["errors"].as_array().unwrap().len(),
        4,
        "{}",
        r.text
    );
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"name": format!("d{i}"), "digest": digest(DOC_A)}))
        .collect();
    let r = server
        .post("/sign/v1/requests")
        .bearer(&o.token)
        .json(&json!({"format": "cades", "documents": many}))
        .send()
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let body = json!({"format": "cades", "documents": [{"name": "a", "digest": digest(DOC_A)}]});
    let r = server.post("/sign/v1/requests").json(&body).send().await;
    assert_eq!(r.status, 401);
    let r = server
        .post("/sign/v1/requests")
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(r.status, 401, "authentication before the body: {}", r.text);
    let r = server
        .post("/sign/v1/requests")
        .bearer("not-a-token")
        .json(&body)
        .send()
        .await;
    assert_eq!(r.status, 401);

    // A token of the same official without scope `sign`, and a machine token: 403.
    let web = server.web_client().await;
    let mut device = o.device;
    let (code, _) = server.code_for(&web.id, &mut device, None).await;
    let plain_token = server
        .redeem(web.auth(), &code, VERIFIER)
        .await
        .tokens()
        .access;
    let r = create_request(&server, &plain_token, "cades").await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["error"], "insufficient_scope");
    let machine = server.machine_client("Robot", "sign").await;
    let machine_token = server
        .client_credentials(machine.auth())
        .await
        .tokens()
        .access;
    assert_eq!(
        create_request(&server, &machine_token, "cades")
            .await
            .status,
        403
    );
    let o = Official { device, ..o };

    // Another official's request is not found, through the API or the page.
    let id = new_request(&server, &o, "cades").await;
    let other = signed_in(&server, "SIGN-2003", true).await;
    let r = server
        .get(&format!("/sign/v1/requests/{id}"))
        .bearer(&other.token)
        .send()
        .await;
    assert_eq!(r.status, 404);
    let r = server
        .get(&format!("/sign/v1/requests/{id}/evidence"))
        .bearer(&other.token)
        .send()
        .await;
    assert_eq!(r.status, 404);
    // … and their session cannot start its approval.
    assert_eq!(start(&server, &other.cookie, &id).await.status, 403);
}

#[tokio::test]
async fn another_citizens_passkey_cannot_approve() {
    let data = tempdir();
    let server = plain(&data);
    let o = signed_in(&server, "SIGN-3001", true).await;
    let (_, mut intruder) = server.citizen_with_passkey("SIGN-3002").await;
    let id = new_request(&server, &o, "cades").await;
    let started = start(&server, &o.cookie, &id).await;
    let mut options = started.json()["options"].clone();
    // A tampered page drops allowCredentials so that the intruder's device answers.
    options["publicKey"]["allowCredentials"] = json!([]);
    let cred = intruder.get(&options).await.expect("device answers");
    let r = finish(&server, &o.cookie, &id, &started.json()["ceremony"], &cred).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(status(&server, &o, &id).await["status"], "pending");
}

#[tokio::test]
async fn an_assertion_for_another_request_is_refused_and_a_second_approval_changes_nothing() {
    let data = tempdir();
    let server = plain(&data);
    let mut o = signed_in(&server, "SIGN-4001", true).await;
    let first = new_request(&server, &o, "cades").await;
    let second = new_request(&server, &o, "cades").await;
    let (_, for_first) = assertion(&server, &o.cookie, &first, &mut o.device).await;
    let started = start(&server, &o.cookie, &second).await;
    let r = finish(
        &server,
        &o.cookie,
        &second,
        &started.json()["ceremony"],
        &for_first,
    )
    .await;
    assert_eq!(r.status, 400, "another challenge: {}", r.text);
    assert_eq!(status(&server, &o, &second).await["status"], "pending");

    let (ceremony, cred) = assertion(&server, &o.cookie, &first, &mut o.device).await;
    let r = finish(&server, &o.cookie, &first, &ceremony, &cred).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let signed = status(&server, &o, &first).await;
    // The same assertion again, and a new approval: both refused, nothing changes.
    let again = finish(&server, &o.cookie, &first, &ceremony, &cred).await;
    assert!(again.status == 400 || again.status == 409, "{}", again.text);
    let r = start(&server, &o.cookie, &first).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(status(&server, &o, &first).await, signed);
}

#[tokio::test]
async fn an_expired_request_cannot_be_approved() {
    let data = tempdir();
    let server = with_test_clock(&data);
    let mut o = signed_in(&server, "SIGN-5001", true).await;
    let id = new_request(&server, &o, "cades").await;
    let (ceremony, cred) = assertion(&server, &o.cookie, &id, &mut o.device).await;
    advance(&server, 16 * 60).await;
    let r = finish(&server, &o.cookie, &id, &ceremony, &cred).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(start(&server, &o.cookie, &id).await.status, 409);
    // The 15-minute request outlived the 5-minute access token: refresh it.
    let (id_, secret) = (o.client.0.clone(), o.client.1.clone());
    o.token = server
        .refresh((&id_, &secret), &o.refresh)
        .await
        .tokens()
        .access;
    assert_eq!(status(&server, &o, &id).await["status"], "expired");
    page_shows_only(&server, &o, &id, "Expired").await;
}

#[tokio::test]
async fn a_revoked_official_cannot_sign() {
    let data = tempdir();
    let server = plain(&data);
    let mut o = signed_in(&server, "SIGN-6001", true).await;
    let id = new_request(&server, &o, "cades").await;
    let (ceremony, cred) = assertion(&server, &o.cookie, &id, &mut o.device).await;
    let r = server
        .admin_delete(&format!("/admin/v1/officials/{}", o.official_id))
        .await;
    assert_eq!(r.status, 204);
    let r = finish(&server, &o.cookie, &id, &ceremony, &cred).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(status(&server, &o, &id).await["status"], "pending");
    assert_eq!(create_request(&server, &o.token, "cades").await.status, 403);
}

#[tokio::test]
async fn two_concurrent_approvals_sign_once() {
    let data = tempdir();
    let server = plain(&data);
    let mut o = signed_in(&server, "SIGN-7001", true).await;
    let id = new_request(&server, &o, "cades").await;
    let (c1, a1) = assertion(&server, &o.cookie, &id, &mut o.device).await;
    let (c2, a2) = assertion(&server, &o.cookie, &id, &mut o.device).await;
    let (r1, r2) = tokio::join!(
        finish(&server, &o.cookie, &id, &c1, &a1),
        finish(&server, &o.cookie, &id, &c2, &a2)
    );
    let mut codes = [r1.status, r2.status];
    codes.sort_unstable();
    assert_eq!(codes, [200, 409], "{} / {}", r1.text, r2.text);
    let done = status(&server, &o, &id).await;
    assert_eq!(done["signatures"].as_array().unwrap().len(), 2);
}

/// The approval page in headless Chromium (tests/browser/approve.mjs): the official enrols a
/// second passkey in the browser, signs in, and approves with **Sign with passkey**. Skipped
/// without `tests/browser/setup.sh` locally; required under CI.
#[tokio::test]
async fn an_official_approves_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = std::path::Path::new(&chromium).exists()
        && root()
            .join("tests/browser/node_modules/playwright-core")
            .exists();
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium and playwright-core are required under CI (tests/browser/setup.sh)"
        );
        eprintln!("SKIP an_official_approves_in_headless_chromium: run tests/browser/setup.sh");
        return;
    }
    let data = tempdir();
    let server = plain(&data);
    let o = signed_in(&server, "SIGN-8001", true).await;
    let id = new_request(&server, &o, "jades").await;
    let code = server.new_enrolment_code(&o.citizen_id).await;
    let enrolment_url = server.at(&format!("/enrol?code={code}"));
    let login_url = server.at("/login");
    let approval_url = server.at(&format!("/sign/requests/{id}"));
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("tests/browser/approve.mjs")
            .args([&enrolment_url, &login_url, &approval_url])
            .current_dir(root())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let rows = summary["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{summary}");
    assert!(
        rows[0].as_str().unwrap().contains(&digest(DOC_A)),
        "{summary}"
    );
    assert_eq!(summary["buttons_after"], 0, "{summary}");
    assert_eq!(summary["shown_after"], "Signed", "{summary}");
    assert_eq!(status(&server, &o, &id).await["status"], "signed");
}

#[tokio::test]
async fn a_rejected_request_is_never_signed() {
    let data = tempdir();
    let server = plain(&data);
    let mut o = signed_in(&server, "SIGN-9001", true).await;
    let id = new_request(&server, &o, "cades").await;
    let page = server
        .get(&format!("/sign/requests/{id}"))
        .cookie(&o.cookie)
        .send()
        .await;
    assert!(page.text.contains(">Reject</button>"), "{}", page.text);
    let (ceremony, cred) = assertion(&server, &o.cookie, &id, &mut o.device).await;
    let reject = |cookie: String| {
        server
            .post(&format!("/sign/requests/{id}/reject"))
            .cookie(&cookie)
            .json(&json!({}))
            .send()
    };
    let other = signed_in(&server, "SIGN-9002", true).await;
    assert_eq!(reject(other.cookie.clone()).await.status, 403);
    let r = reject(o.cookie.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(reject(o.cookie.clone()).await.status, 409, "once");
    // An approval already under way cannot sign it any more.
    let r = finish(&server, &o.cookie, &id, &ceremony, &cred).await;
    assert_eq!(r.status, 409, "{}", r.text);
    let done = status(&server, &o, &id).await;
    assert_eq!(done["status"], "rejected");
    assert_eq!(done["signatures"], json!([]));
    page_shows_only(&server, &o, &id, "Rejected").await;
}

/// A leaked `sign` token cannot fill the store: 100 requests of one official may wait for a
/// decision; the 101st is 409 until one is decided (or expires), and another official is
/// unaffected.
#[tokio::test]
async fn an_official_has_at_most_100_requests_waiting() {
    let data = tempdir();
    let server = plain(&data);
    let o = signed_in(&server, "SIGN-9101", true).await;
    let mut first = None;
    for _ in 0..100 {
        let id = new_request(&server, &o, "cades").await;
        first.get_or_insert(id);
    }
    let r = create_request(&server, &o.token, "cades").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert!(r.text.contains("too many requests wait"), "{}", r.text);
    let other = signed_in(&server, "SIGN-9102", true).await;
    new_request(&server, &other, "cades").await;
    let first = first.unwrap();
    let rejected = server
        .post(&format!("/sign/requests/{first}/reject"))
        .cookie(&o.cookie)
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(rejected.status, 200, "{}", rejected.text);
    new_request(&server, &o, "cades").await;
}
