//! Issue 3: passkey enrolment and usernameless login through real WebAuthn ceremonies with a
//! software authenticator, and every refusal the rules require.

use serde_json::{Value, json};

use crate::authenticator::Device;
use crate::driver::Drive as _;
use crate::driver::{Answer, assertion, enrol, finish_login, login, plain, post};
use crate::support::{Opts, Server, admin_token, http, register, tempdir};

/// A device holding a passkey enrolled with the registration answer `created`.
async fn enrolled_device(server: &Server, created: &Value) -> Device {
    let mut device = Device::new(&server.url);
    let code = created["enrolment_code"].as_str().unwrap();
    let (status, body) = enrol(server, code, &mut device).await;
    assert_eq!(status, 201, "{body}");
    device
}

async fn citizen(server: &Server, id: &str) -> Value {
    http()
        .get(server.at(&format!("/admin/v1/citizens/{id}")))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn new_code(server: &Server, id: &str) -> String {
    let v: Value = http()
        .post(server.at(&format!("/admin/v1/citizens/{id}/enrolment")))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["enrolment_code"].as_str().unwrap().to_owned()
}

async fn session(server: &Server, set_cookie: &str) -> u16 {
    let pair = set_cookie.split(';').next().unwrap();
    http()
        .get(server.at("/session"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn refused(a: &Answer) {
    assert_eq!(a.0, 400, "{a:?}");
    assert_eq!(a.1["type"], "urn:civis:problem:passkey-refused", "{a:?}");
}

#[tokio::test]
async fn enrol_then_log_in_without_typing_anything() {
    let data = tempdir();
    let server = plain(&data);
    let created = register(&server, "PK-0001").await;
    let id = created["id"].as_str().unwrap();
    let code = created["enrolment_code"].as_str().unwrap();

    // The enrolment page greets the citizen and offers the button.
    let page = http()
        .get(created["enrolment_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(">Create passkey</button>"), "{html}");
    assert!(html.contains("role=\"status\" aria-live=\"polite\""));
    assert!(!html.contains("<script>"), "no inline script");

    let mut device = Device::new(&server.url);
    let (status, started, _) = post(&server, "/enrol/start", &json!({ "code": code })).await;
    assert_eq!(status, 200);
    let sel = &started["options"]["publicKey"]["authenticatorSelection"];
    assert_eq!(sel["residentKey"], "required", "{sel}");
    assert_eq!(sel["userVerification"], "required", "{sel}");
    assert_eq!(started["options"]["publicKey"]["rp"]["id"], "localhost");
    let cred = device.create(&started["options"]).await.unwrap();
    let (status, body, _) = post(
        &server,
        "/enrol/finish",
        &json!({ "ceremony": started["ceremony"], "credential": cred }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "created");

    let c = citizen(&server, id).await;
    assert_eq!(c["passkeys"].as_array().unwrap().len(), 1, "{c}");
    // passkey-rs models a syncing password manager: backup-eligible and backed up.
    assert_eq!(c["passkeys"][0]["backup_eligible"], true);
    assert_eq!(c["passkeys"][0]["backed_up"], true);
    assert!(c["passkeys"][0]["last_used_at"].is_null());

    // The login page offers the usernameless button and autofill.
    let html = server.get_page("/login").await.1;
    assert!(html.contains(">Sign in with a passkey</button>"));
    assert!(html.contains("autocomplete=\"username webauthn\""));

    let ((status, body), cookie) = login(&server, &mut device).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["display_name"], "Ana Novak");
    let cookie = cookie.expect("session cookie");
    assert!(cookie.starts_with("__Host-civis_session="), "{cookie}");
    for attr in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    let pair = cookie.split(';').next().unwrap();
    let s: Value = server.get_with_cookie("/session", pair).await.1;
    assert_eq!(s["citizen_id"], id);
    assert_eq!(s["user_verified"], true);

    let c = citizen(&server, id).await;
    assert!(c["passkeys"][0]["last_used_at"].is_string(), "{c}");

    // Metrics count the login; the log never holds the session token.
    let metrics = server.get_page("/metrics").await.1;
    assert!(metrics.contains("civis_logins_total 1"), "{metrics}");
    let token = pair.split_once('=').unwrap().1.to_owned();
    let (_, log) = server.stop();
    assert!(!log.contains(&token));
}

#[tokio::test]
async fn a_second_passkey_excludes_the_first_and_both_log_in() {
    let data = tempdir();
    let server = plain(&data);
    let created = register(&server, "PK-0002").await;
    let id = created["id"].as_str().unwrap();
    let mut phone = enrolled_device(&server, &created).await;
    let first = citizen(&server, id).await["passkeys"][0]["id"].clone();

    let code = new_code(&server, id).await;
    let (_, started, _) = post(&server, "/enrol/start", &json!({ "code": code })).await;
    let excluded: Vec<Value> = started["options"]["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].clone())
        .collect();
    assert_eq!(excluded, vec![first]);
    let mut laptop = Device::new(&server.url);
    let cred = laptop.create(&started["options"]).await.unwrap();
    let (status, _, _) = post(
        &server,
        "/enrol/finish",
        &json!({ "ceremony": started["ceremony"], "credential": cred }),
    )
    .await;
    assert_eq!(status, 201);

    assert_eq!(
        citizen(&server, id).await["passkeys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(login(&server, &mut phone).await.0.0, 200);
    assert_eq!(login(&server, &mut laptop).await.0.0, 200);
}

#[tokio::test]
async fn a_revoked_passkey_no_longer_logs_in_and_its_sessions_end() {
    let data = tempdir();
    let server = plain(&data);
    let created = register(&server, "PK-0003").await;
    let id = created["id"].as_str().unwrap();
    let mut device = enrolled_device(&server, &created).await;
    let ((status, _), cookie) = login(&server, &mut device).await;
    assert_eq!(status, 200);
    let cookie = cookie.unwrap();
    assert_eq!(session(&server, &cookie).await, 200);

    let pk = citizen(&server, id).await["passkeys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = server.at(&format!("/admin/v1/citizens/{id}/passkeys/{pk}"));
    let resp = http()
        .delete(&url)
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = http()
        .delete(server.at(&format!("/admin/v1/citizens/{id}/passkeys/nope")))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let (answer, cookie2) = login(&server, &mut device).await;
    refused(&answer);
    assert!(cookie2.is_none());
    assert_eq!(
        session(&server, &cookie).await,
        401,
        "sessions of a revoked passkey end"
    );
    assert!(citizen(&server, id).await["passkeys"][0]["revoked_at"].is_string());

    // A passkey civis never registered gets the very same answer (nothing revealed).
    let other = tempdir();
    let other_server = plain(&other);
    let stranger_code = register(&other_server, "PK-0033").await["enrolment_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut stranger = Device::new(&server.url);
    // Enrol the stranger at the other server's origin-equivalent: same RP ID (localhost).
    let mut at_other = Device::new(&other_server.url);
    assert_eq!(
        enrol(&other_server, &stranger_code, &mut at_other).await.0,
        201
    );
    stranger.set_passkey(at_other.passkey());
    let (unknown, _) = login(&server, &mut stranger).await;
    refused(&unknown);
    assert_eq!(unknown.1["detail"], answer.1["detail"]);
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let data = tempdir();
    let server = plain(&data);
    let created = register(&server, "PK-0004").await;
    let mut device = enrolled_device(&server, &created).await;

    let (ceremony, cred) = assertion(&server, &mut device).await;
    assert_eq!(finish_login(&server, &ceremony, &cred).await.0.0, 200);
    // Same ceremony again: it was single use.
    let (again, cookie) = finish_login(&server, &ceremony, &cred).await;
    refused(&again);
    assert!(cookie.is_none());
    // The captured assertion posted into a fresh ceremony: wrong challenge.
    let (_, fresh, _) = post(&server, "/login/start", &json!({})).await;
    let (relay, cookie) = finish_login(&server, &fresh["ceremony"], &cred).await;
    refused(&relay);
    assert!(cookie.is_none());
}

#[tokio::test]
async fn a_wrong_origin_or_rp_id_is_refused() {
    let data = tempdir();
    let server = plain(&data);
    let created = register(&server, "PK-0005").await;
    let code = created["enrolment_code"].as_str().unwrap();

    // Enrolment run from another origin (another port on the same host).
    let mut elsewhere = Device::new("http://localhost:1");
    refused(&enrol(&server, code, &mut elsewhere).await);

    // A phishing site relays our options under its own origin and RP ID.
    let (_, started, _) = post(&server, "/enrol/start", &json!({ "code": code })).await;
    let mut phished = started["options"].clone();
    phished["publicKey"]["rp"]["id"] = json!("phish.example");
    let mut victim = Device::new("https://phish.example");
    let cred = victim.create(&phished).await.unwrap();
    let (status, body, _) = post(
        &server,
        "/enrol/finish",
        &json!({ "ceremony": started["ceremony"], "credential": cred }),
    )
    .await;
    refused(&(status, body));

    // Properly enrolled, then used from a wrong origin and with a wrong RP ID.
    let mut device = Device::new(&server.url);
    assert_eq!(
        enrol(&server, code, &mut device).await.0,
        201,
        "the code is still unused"
    );
    let mut device = device.at("http://localhost:1");
    refused(&login(&server, &mut device).await.0);
    let mut device = device.at("https://phish.example");
    let (_, started, _) = post(&server, "/login/start", &json!({})).await;
    let mut phished = started["options"].clone();
    phished["publicKey"]["rpId"] = json!("phish.example");
    let cred = device.get(&phished).await.unwrap();
    refused(&finish_login(&server, &started["ceremony"], &cred).await.0);
}

#[tokio::test]
async fn used_unknown_and_expired_enrolment_codes_are_refused_alike() {
    let data = tempdir();
    let server = crate::clock::with_test_clock(&data);
    let created = register(&server, "PK-0006").await;
    let id = created["id"].as_str().unwrap().to_owned();
    let code = created["enrolment_code"].as_str().unwrap().to_owned();
    let mut device = Device::new(&server.url);
    assert_eq!(enrol(&server, &code, &mut device).await.0, 201);

    // Used: the link page and the ceremony both refuse it.
    let used = http()
        .get(server.at(&format!("/enrol?code={code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 404);
    let used_page = used.text().await.unwrap();
    assert!(used_page.contains("not valid"), "{used_page}");
    assert!(!used_page.contains("Create passkey"));
    let mut other = Device::new(&server.url);
    refused(&enrol(&server, &code, &mut other).await);

    // Unknown: the same page, word for word (no hint whether anyone exists).
    let unknown = http()
        .get(server.at("/enrol?code=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.text().await.unwrap(), used_page);
    let missing = http().get(server.at("/enrol")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // Expired: issue a code, then move the server's clock past its 72 h.
    let fresh = new_code(&server, &id).await;
    crate::clock::advance(&server, 73 * 3600).await;
    let expired = http()
        .get(server.at(&format!("/enrol?code={fresh}")))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 404);
    assert_eq!(expired.text().await.unwrap(), used_page);
    refused(&enrol(&server, &fresh, &mut Device::new(&server.url)).await);
}

#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    let data = tempdir();
    let server = crate::clock::with_test_clock(&data);
    let created = register(&server, "PK-0007").await;
    let mut device = enrolled_device(&server, &created).await;
    let (ceremony, cred) = assertion(&server, &mut device).await;

    // Move the server's clock past the pending ceremony's 5 minutes.
    crate::clock::advance(&server, 6 * 60).await;
    let (answer, cookie) = finish_login(&server, &ceremony, &cred).await;
    refused(&answer);
    assert!(answer.1["detail"].as_str().unwrap().contains("expired"));
    assert!(cookie.is_none());
}

#[tokio::test]
async fn a_signature_counter_going_backwards_is_refused_as_a_clone() {
    let data = tempdir();
    let server = plain(&data);
    let created = register(&server, "PK-0008").await;
    let mut device = enrolled_device(&server, &created).await;
    assert_eq!(login(&server, &mut device).await.0.0, 200);
    // Copy the key material now (counter 1), keep using the original (counter 2)…
    let copy = device.passkey();
    assert_eq!(copy.as_ref().and_then(|p| p.counter), Some(1));
    assert_eq!(login(&server, &mut device).await.0.0, 200);
    // …then the copy shows up with counter 2 again: not greater than the stored 2.
    let mut clone = Device::new(&server.url);
    clone.set_passkey(copy);
    let (answer, cookie) = login(&server, &mut clone).await;
    refused(&answer);
    assert!(cookie.is_none());
    // The original, still counting up, keeps working.
    assert_eq!(login(&server, &mut device).await.0.0, 200);
    let (_, log) = server.stop();
    assert!(log.contains("possible cloned authenticator"), "logged");
}

#[tokio::test]
async fn ceremony_starts_are_throttled_per_address_and_cross_origin_posts_refused() {
    let data = tempdir();
    let server = Server::start(data.path(), Opts::throttled(5, 1));
    for _ in 0..5 {
        assert_eq!(post(&server, "/login/start", &json!({})).await.0, 200);
    }
    let (status, body, headers) = post(&server, "/login/start", &json!({})).await;
    assert_eq!(status, 429, "{body}");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    // Enrolment has its own bucket: exhausted login starts do not block it. A wrong code
    // costs two tokens (the visit and the refusal).
    let enrol = || async { http().get(server.at("/enrol?code=x")).send().await.unwrap() };
    assert_eq!(enrol().await.status(), 404);
    assert_eq!(enrol().await.status(), 404);
    assert_eq!(enrol().await.status(), 404);
    assert_eq!(enrol().await.status(), 429);

    let resp = http()
        .post(server.at("/login/finish"))
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

/// Each `/authorize` parks a record until it expires: a flood from one network is cut off
/// (429 with `Retry-After`) before it fills the disk, IPv6 networks by their /64.
#[tokio::test]
async fn authorization_requests_are_limited_per_network() {
    let data = tempdir();
    let server = Server::start(data.path(), Opts::throttled(2, 1));
    let (client_id, _) = crate::driver::web_client(&server).await;
    let url = format!(
        "/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        url::form_urlencoded::byte_serialize(crate::driver::REDIRECT.as_bytes())
            .collect::<String>()
    );
    let c = crate::support::http_no_redirect();
    // Burst 2 for failures means 2 × 4 for authorization requests.
    for i in 0..8 {
        let resp = c.get(server.at(&url)).send().await.unwrap();
        assert_eq!(resp.status(), 303, "request {i}");
    }
    let resp = c.get(server.at(&url)).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    // Another purpose is not affected.
    assert_eq!(post(&server, "/login/start", &json!({})).await.0, 200);
}
