//! Issue 3: passkey enrolment and usernameless login through real WebAuthn ceremonies with a
//! software authenticator, and every refusal the rules require.

use serde_json::{Value, json};

use crate::driver::{Device, Opts, REDIRECT, Reply, enc, plain, start, tempdir};

/// The answer every refused ceremony gets: 400 with the one passkey-refused problem type.
fn refused(a: &Reply) {
    assert_eq!(a.status, 400, "{a:?}");
    assert_eq!(
        a.json()["type"],
        "urn:civis:problem:passkey-refused",
        "{a:?}"
    );
}

#[tokio::test]
async fn enrol_then_log_in_without_typing_anything() {
    let data = tempdir();
    let (opts, metrics_addr) = Opts::plain().with_metrics();
    let server = start(&data, opts);
    let created = server.register_citizen("PK-0001").await;
    let id = created.id.as_str();
    let code = created.enrolment_code.as_str();

    // The enrolment page greets the citizen and offers the button.
    let page = server.get(&created.enrolment_url).send().await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = &page.text;
    assert!(html.contains(">Create passkey</button>"), "{html}");
    assert!(html.contains("role=\"status\" aria-live=\"polite\""));
    assert!(!html.contains("<script>"), "no inline script");

    let mut device = Device::new(&server.url);
    let started = server.start_enrolment(code).await;
    assert_eq!(started.status, 200);
    let started = started.json();
    let sel = &started["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(sel["residentKey"], "required", "{sel}");
    assert_eq!(sel["userVerification"], "required", "{sel}");
    assert_eq!(started["options"]["publicKey"]["rp"]["id"], "localhost");
    let cred = device.create(&started["options"]).await.unwrap();
    let finished = server.finish_enrolment(&started["ceremony"], &cred).await;
    assert_eq!(finished.status, 201, "{}", finished.text);
    assert_eq!(finished.json()["status"], "created");

    let c = server.citizen(id).await;
    assert_eq!(c["passkeys"].as_array().unwrap().len(), 1, "{c}");
    // passkey-rs models a syncing password manager: backup-eligible and backed up.
    assert_eq!(c["passkeys"][0]["backup_eligible"], true);
    assert_eq!(c["passkeys"][0]["backed_up"], true);
    assert!(c["passkeys"][0]["last_used_at"].is_null());

    // The login page offers the usernameless button and autofill.
    let html = server.get("/login").send().await.text;
    assert!(html.contains(">Sign in with a passkey</button>"));
    assert!(html.contains("autocomplete=\"username webauthn\""));

    let login = server.login(&mut device).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.json()["display_name"], "Ana Novak");
    let cookie = login.set_cookie().expect("session cookie");
    assert!(cookie.starts_with("__Host-civis_session="), "{cookie}");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    let pair = login.cookie().unwrap();
    let s = server.session(&pair).await;
    assert_eq!(s.json()["citizen_id"], id);
    assert_eq!(s.json()["user_verified"], true);

    let c = server.citizen(id).await;
    assert!(c["passkeys"][0]["last_used_at"].is_string(), "{c}");

    // Metrics count the login; the log never holds the session token.
    let metrics = server
        .get(&format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .text;
    assert!(metrics.contains("civis_logins_total 1"), "{metrics}");
    let token = pair.split_once('=').unwrap().1.to_owned();
    let (_, log) = server.stop();
    assert!(!log.contains(&token));
}

#[tokio::test]
async fn a_second_passkey_excludes_the_first_and_both_log_in() {
    let data = tempdir();
    let server = plain(&data);
    let (id, mut phone) = server.citizen_with_passkey("PK-0002").await;
    let id = id.as_str();
    let first = server.citizen(id).await["passkeys"][0]["id"].clone();

    let code = server.new_enrolment_code(id).await;
    let started = server.start_enrolment(&code).await;
    let started = started.json();
    let excluded: Vec<Value> = started["options"]["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(excluded, vec![first]);
    let mut laptop = Device::new(&server.url);
    let cred = laptop.create(&started["options"]).await.unwrap();
    let finished = server.finish_enrolment(&started["ceremony"], &cred).await;
    assert_eq!(finished.status, 201);

    assert_eq!(
        server.citizen(id).await["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(server.login(&mut phone).await.status, 200);
    assert_eq!(server.login(&mut laptop).await.status, 200);
}

#[tokio::test]
async fn a_revoked_passkey_no_longer_logs_in_and_its_sessions_end() {
    let data = tempdir();
    let server = plain(&data);
    let (id, mut device) = server.citizen_with_passkey("PK-0003").await;
    let id = id.as_str();
    let login = server.login(&mut device).await;
    assert_eq!(login.status, 200);
    let cookie = login.cookie().unwrap();
    assert_eq!(server.session(&cookie).await.status, 200);

    let pk = server.citizen(id).await["passkeys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/admin/v1/citizens/{id}/passkeys/{pk}");
    assert_eq!(server.admin_delete(&path).await.status, 204);
    let path = format!("/admin/v1/citizens/{id}/passkeys/nope");
    assert_eq!(server.admin_delete(&path).await.status, 404);

    let answer = server.login(&mut device).await;
    refused(&answer);
    assert!(answer.set_cookie().is_none());
    assert_eq!(
        server.session(&cookie).await.status,
        401,
        "sessions of a revoked passkey end"
    );
    assert!(server.citizen(id).await["passkeys"][0]["revoked_at"].is_string());

    // A passkey civis never registered gets the very same answer (nothing revealed).
    let other = tempdir();
    let other_server = plain(&other);
    let stranger_code = other_server
        .register_citizen("PK-0033")
        .await
        .enrolment_code;
    let mut stranger = Device::new(&server.url);
    // Enrol the stranger at the other server's origin-equivalent: same RP ID (localhost).
    let mut at_other = Device::new(&other_server.url);
    assert_eq!(
        other_server
            .enrol(&stranger_code, &mut at_other)
            .await
            .status,
        201
    );
    stranger.set_passkey(at_other.passkey());
    let unknown = server.login(&mut stranger).await;
    refused(&unknown);
    assert_eq!(unknown.json()["detail"], answer.json()["detail"]);
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let data = tempdir();
    let server = plain(&data);
    let (_, mut device) = server.citizen_with_passkey("PK-0004").await;

    let (ceremony, cred) = server.assertion(&mut device).await;
    assert_eq!(server.finish_login(&ceremony, &cred).await.status, 200);
    // Same ceremony again: it was single use.
    let again = server.finish_login(&ceremony, &cred).await;
    refused(&again);
    assert!(again.set_cookie().is_none());
    // The captured assertion posted into a fresh ceremony: wrong challenge.
    let fresh = server.start_login().await;
    let relay = server.finish_login(&fresh.json()["ceremony"], &cred).await;
    refused(&relay);
    assert!(relay.set_cookie().is_none());
}

#[tokio::test]
async fn a_wrong_origin_or_rp_id_is_refused() {
    let data = tempdir();
    let server = plain(&data);
    let created = server.register_citizen("PK-0005").await;
    let code = created.enrolment_code.as_str();

    // Enrolment run from another origin (another port on the same host).
    let mut elsewhere = Device::new("http://localhost:1");
    refused(&server.enrol(code, &mut elsewhere).await);

    // A phishing site relays our options under its own origin and RP ID.
    let started = server.start_enrolment(code).await;
    let mut phished = started.json()["options"].clone();
    phished["publicKey"]["rp"]["id"] = json!("phish.example");
    let mut victim = Device::new("https://phish.example");
    let cred = victim.create(&phished).await.unwrap();
    refused(
        &server
            .finish_enrolment(&started.json()["ceremony"], &cred)
            .await,
    );

    // Properly enrolled, then used from a wrong origin and with a wrong RP ID.
    let mut device = Device::new(&server.url);
    assert_eq!(
        server.enrol(code, &mut device).await.status,
        201,
        "the code is still unused"
    );
    let mut device = device.at("http://localhost:1");
    refused(&server.login(&mut device).await);
    let mut device = device.at("https://phish.example");
    let started = server.start_login().await;
    let mut phished = started.json()["options"].clone();
    phished["publicKey"]["rpId"] = json!("phish.example");
    let cred = device.get(&phished).await.unwrap();
    refused(
        &server
            .finish_login(&started.json()["ceremony"], &cred)
            .await,
    );
}

#[tokio::test]
async fn used_unknown_and_expired_enrolment_codes_are_refused_alike() {
    let data = tempdir();
    let server = crate::clock::with_test_clock(&data);
    let created = server.register_citizen("PK-0006").await;
    let id = created.id;
    let code = created.enrolment_code;
    let mut device = Device::new(&server.url);
    assert_eq!(server.enrol(&code, &mut device).await.status, 201);

    // Used: the link page and the ceremony both refuse it.
    let used = server.get(&format!("/enrol?code={code}")).send().await;
    assert_eq!(used.status, 404);
    let used_page = used.text;
    assert!(used_page.contains("not valid"), "{used_page}");
    assert!(!used_page.contains("Create passkey"));
    let mut other = Device::new(&server.url);
    refused(&server.enrol(&code, &mut other).await);

    // Unknown: the same page, word for word (no hint whether anyone exists).
    let unknown = server
        .get("/enrol?code=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.text, used_page);
    assert_eq!(server.get("/enrol").send().await.status, 404);

    // Expired: issue a code, then move the server's clock past its 72 h.
    let fresh = server.new_enrolment_code(&id).await;
    crate::clock::advance(&server, 73 * 3600).await;
    let expired = server.get(&format!("/enrol?code={fresh}")).send().await;
    assert_eq!(expired.status, 404);
    assert_eq!(expired.text, used_page);
    refused(&server.enrol(&fresh, &mut Device::new(&server.url)).await);
}

#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    let data = tempdir();
    let server = crate::clock::with_test_clock(&data);
    let (_, mut device) = server.citizen_with_passkey("PK-0007").await;
    let (ceremony, cred) = server.assertion(&mut device).await;

    // Move the server's clock past the pending ceremony's 5 minutes.
    crate::clock::advance(&server, 6 * 60).await;
    let answer = server.finish_login(&ceremony, &cred).await;
    refused(&answer);
    assert!(
        answer.json()["detail"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert!(answer.set_cookie().is_none());
}

#[tokio::test]
async fn a_signature_counter_going_backwards_is_refused_as_a_clone() {
    let data = tempdir();
    let server = plain(&data);
    let (_, mut device) = server.citizen_with_passkey("PK-0008").await;
    assert_eq!(server.login(&mut device).await.status, 200);
    // Copy the key material now (counter 1), keep using the original (counter 2)…
    let copy = device.passkey();
    assert_eq!(copy.as_ref().and_then(|p| p.counter), Some(1));
    assert_eq!(server.login(&mut device).await.status, 200);
    // …then the copy shows up with counter 2 again: not greater than the stored 2.
    let mut clone = Device::new(&server.url);
    clone.set_passkey(copy);
    let answer = server.login(&mut clone).await;
    refused(&answer);
    assert!(answer.set_cookie().is_none());
    // The original, still counting up, keeps working.
    assert_eq!(server.login(&mut device).await.status, 200);
    let (_, log) = server.stop();
    assert!(log.contains("possible cloned authenticator"), "logged");
}

/// Throttling: a burst of `burst` failures, then one token a minute.
fn throttled(burst: &str) -> Opts {
    Opts::plain().with_args(["--throttle-burst", burst, "--throttle-per-minute", "1"])
}

#[tokio::test]
async fn ceremony_starts_are_throttled_per_address_and_cross_origin_posts_refused() {
    let data = tempdir();
    let server = start(&data, throttled("5"));
    // Each start parks a ceremony: starts have their own bucket, 4 × the failure burst.
    for i in 0..20 {
        assert_eq!(server.start_login().await.status, 200, "start {i}");
    }
    let resp = server.start_login().await;
    assert_eq!(resp.status, 429, "{}", resp.text);
    let wait: u64 = resp.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait));
    // Enrolment has its own buckets: exhausted login starts do not block it. A wrong code
    // costs one token (the refusal); the visit itself costs nothing.
    let enrol = || async { server.get("/enrol?code=x").send().await.status };
    for _ in 0..5 {
        assert_eq!(enrol().await, 404);
    }
    assert_eq!(enrol().await, 429);
    assert_eq!(
        server.start_enrolment("x").await.status,
        429,
        "wrong codes used it up"
    );

    let resp = server
        .post("/login/finish")
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await;
    assert_eq!(resp.status, 403);
}

/// Each `/authorize` parks a record until it expires: a flood from one network is cut off
/// (429 with `Retry-After`) before it fills the disk, IPv6 networks by their /64.
#[tokio::test]
async fn authorization_requests_are_limited_per_network() {
    let data = tempdir();
    let server = start(&data, throttled("2"));
    let web = server.web_client().await;
    let url = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        web.id,
        enc(REDIRECT)
    );
    let authorize = || server.get(&url).no_redirect().send();
    // Burst 2 for failures means 2 × 4 for authorization requests.
    for i in 0..8 {
        assert_eq!(authorize().await.status, 303, "request {i}");
    }
    let resp = authorize().await;
    assert_eq!(resp.status, 429);
    assert!(resp.headers.contains_key("retry-after"));
    // Another purpose is not affected.
    assert_eq!(server.start_login().await.status, 200);
}
