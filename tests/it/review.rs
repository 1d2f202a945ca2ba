//! The weaknesses an adversarial review of the login half reproduced (issue 9), each shown
//! failing now (the per-client `sid` is checked with the pairwise subjects in
//! oidc_attacks.rs): revoking a passkey or withdrawing consent ends what they allowed, a forced
//! logout needs the current session's own ID token, a new login ends the old session, a code
//! dies with its session, and an enrolment page says whose account it enrols.

use serde_json::json;

use crate::clock::{advance, with_test_clock};
use crate::driver::{LOGGED_OUT, VERIFIER, enc, plain, tempdir};

/// The first passkey id of a citizen, from the registry.
async fn first_passkey(server: &crate::driver::Server, citizen: &str) -> String {
    server.citizen(citizen).await["passkeys"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn revoking_a_passkey_ends_every_grant_token_and_code_it_opened() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (citizen, mut device) = server.citizen_with_passkey("REV-0001").await;
    let (code, cookie) = server.code_for(&web.id, &mut device, None).await;
    let tokens = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    // A second code, issued but not yet redeemed when the passkey is revoked.
    let (pending, _) = server.code_for(&web.id, &mut device, cookie).await;
    assert_eq!(server.userinfo(&tokens.access).await.status, 200);

    let passkey = first_passkey(&server, &citizen).await;
    let revoked = server
        .admin_delete(&format!("/admin/v1/citizens/{citizen}/passkeys/{passkey}"))
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);

    let r = server.refresh(web.auth(), tokens.refresh_token()).await;
    assert_eq!(
        (r.status, r.error()),
        (400, Some("invalid_grant")),
        "refresh"
    );
    assert_eq!(
        server.userinfo(&tokens.access).await.status,
        401,
        "userinfo"
    );
    let seen = server.introspect(web.auth(), &tokens.access).await;
    assert_eq!(seen["active"], false, "access token: {seen}");
    let seen = server.introspect(web.auth(), tokens.refresh_token()).await;
    assert_eq!(seen["active"], false, "refresh token: {seen}");
    let r = server.redeem(web.auth(), &pending, VERIFIER).await;
    assert_eq!((r.status, r.error()), (400, Some("invalid_grant")), "code");
}

#[tokio::test]
async fn withdrawing_consent_stops_the_agency_and_a_new_consent_does_not_revive_it() {
    let data = tempdir();
    let server = with_test_clock(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("REV-0002").await;
    let (code, cookie) = server.code_for(&web.id, &mut device, None).await;
    let cookie = cookie.unwrap();
    let old = server.redeem(web.auth(), &code, VERIFIER).await.tokens();

    let withdrawn = server
        .delete(&format!("/session/consents/{}", web.id))
        .cookie(&cookie)
        .send()
        .await;
    assert_eq!(withdrawn.status, 204);
    let r = server.refresh(web.auth(), old.refresh_token()).await;
    assert_eq!((r.status, r.error()), (400, Some("invalid_grant")));
    assert_eq!(server.userinfo(&old.access).await.status, 401);

    // The citizen agrees again later: the new grant works, the withdrawn one stays dead.
    advance(&server, 2).await;
    let (code, _) = server.code_for(&web.id, &mut device, Some(cookie)).await;
    let new = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    assert_eq!(server.userinfo(&new.access).await.status, 200);
    let r = server.refresh(web.auth(), old.refresh_token()).await;
    assert_eq!((r.status, r.error()), (400, Some("invalid_grant")));
}

/// Logs a citizen in at the web client and returns (ID token, session cookie).
async fn signed_in(
    server: &crate::driver::Server,
    web: &crate::driver::admin::Client,
    national_id: &str,
) -> (String, String) {
    let (_, mut device) = server.citizen_with_passkey(national_id).await;
    let (code, cookie) = server.code_for(&web.id, &mut device, None).await;
    let tokens = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    (tokens.id_token().to_owned(), cookie.unwrap())
}

#[tokio::test]
async fn a_logout_hint_of_another_citizen_or_an_older_session_only_asks() {
    let data = tempdir();
    let server = with_test_clock(&data);
    let web = server.web_client().await;
    let (hint_of_mallory, _) = signed_in(&server, &web, "REV-0004").await;
    let (own_hint, victim) = signed_in(&server, &web, "REV-0005").await;
    let logout = |hint: &str| {
        format!(
            "/end_session?id_token_hint={hint}&post_logout_redirect_uri={}&state=s",
            enc(LOGGED_OUT)
        )
    };

    // Another citizen's (genuine, civis-signed) ID token: the page asks, nothing ends.
    let resp = server
        .get(&logout(&hint_of_mallory))
        .no_redirect()
        .cookie(&victim)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    assert!(resp.text.contains(">Log out</button>"), "{}", resp.text);
    assert_eq!(server.session(&victim).await.status, 200, "still signed in");

    // A citizen's own ID token from an earlier login, presented in their new session: the
    // hint speaks for a session that is over, so the page asks.
    let (_, mut device) = server.citizen_with_passkey("REV-0006").await;
    let (code, _) = server.code_for(&web.id, &mut device, None).await;
    let earlier = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    advance(&server, 5).await;
    let fresh = server.login(&mut device).await.cookie().unwrap();
    let fresh_hint = earlier.id_token();
    let resp = server
        .get(&logout(fresh_hint))
        .no_redirect()
        .cookie(&fresh)
        .send()
        .await;
    assert_eq!(resp.status, 200, "an older session's hint asks");
    assert_eq!(server.session(&fresh).await.status, 200);

    // The current session's own hint: logged out without a question.
    let resp = server
        .get(&logout(&own_hint))
        .no_redirect()
        .cookie(&victim)
        .send()
        .await;
    assert_eq!(resp.status, 303, "{}", resp.text);
    assert_eq!(resp.location(), format!("{LOGGED_OUT}?state=s"));
    assert_eq!(server.session(&victim).await.status, 401);
}

#[tokio::test]
async fn a_new_login_ends_the_browsers_previous_session() {
    let data = tempdir();
    let server = plain(&data);
    let (_, mut device) = server.citizen_with_passkey("REV-0007").await;
    let first = server.login(&mut device).await.cookie().unwrap();
    assert_eq!(server.session(&first).await.status, 200);
    let (ceremony, cred) = server.assertion(&mut device).await;
    let second = server
        .post("/login/finish")
        .cookie(&first)
        .json(&json!({ "ceremony": ceremony, "credential": cred }))
        .send()
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let second = second.cookie().unwrap();
    assert_ne!(first, second);
    assert_eq!(
        server.session(&first).await.status,
        401,
        "old session ended"
    );
    assert_eq!(server.session(&second).await.status, 200);
}

#[tokio::test]
async fn a_code_cannot_be_redeemed_after_its_session_ended() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("REV-0008").await;
    let (code, cookie) = server.code_for(&web.id, &mut device, None).await;
    let out = server.post("/logout").cookie(&cookie.unwrap()).send().await;
    assert_eq!(out.status, 204);
    let r = server.redeem(web.auth(), &code, VERIFIER).await;
    assert_eq!(
        (r.status, r.error()),
        (400, Some("invalid_grant")),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn the_enrolment_page_says_whose_account_it_enrols() {
    let data = tempdir();
    let server = plain(&data);
    let citizen = server.register_citizen("REV-0009").await;
    let page = server
        .get(&format!("/enrol?code={}", citizen.enrolment_code))
        .send()
        .await;
    assert_eq!(page.status, 200);
    let text = &page.text;
    let name = text.find("Ana Novak").expect("full name shown");
    let button = text.find(">Create passkey</button>").unwrap();
    assert!(name < button, "the name comes before the button");
    assert!(text.contains("1990-04-01"), "{text}");
    assert!(text.contains("If this is not you"), "{text}");
}

#[tokio::test]
async fn an_authorization_request_cannot_be_finished_in_another_browser() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    // The attacker starts a request with their own state and PKCE challenge…
    let start = server
        .get(&server.auth_url(&web.id, ""))
        .no_redirect()
        .send()
        .await;
    assert_eq!(start.status, 303);
    let attacker_binding = start
        .cookie_named(crate::driver::BROWSER_COOKIE)
        .expect("the request is bound to this browser");
    let login = start.location().to_owned();
    let continue_at = crate::driver::query(&format!("{}{login}", server.url), "return_to").unwrap();
    // …and lures a signed-in victim to the continue link.
    let (_, mut device) = server.citizen_with_passkey("REV-0010").await;
    let victim = server.login(&mut device).await.cookie().unwrap();
    let lured = server
        .get(&continue_at)
        .no_redirect()
        .cookie(&victim)
        .send()
        .await;
    assert_eq!(lured.status, 400, "{}", lured.text);
    assert!(lured.text.contains("another browser"), "{}", lured.text);
    assert!(lured.headers.get("location").is_none(), "no code issued");
    // The victim's own binding (from a request of theirs) does not fit either.
    let own = server
        .get(&server.auth_url(&web.id, ""))
        .no_redirect()
        .send()
        .await
        .cookie_named(crate::driver::BROWSER_COOKIE)
        .unwrap();
    let lured = server
        .get(&continue_at)
        .no_redirect()
        .cookie(&format!("{victim}; {own}"))
        .send()
        .await;
    assert_eq!(lured.status, 400);
    // In the browser that started it, the request continues (to the consent page).
    let fine = server
        .get(&continue_at)
        .no_redirect()
        .cookie(&format!("{victim}; {attacker_binding}"))
        .send()
        .await;
    assert_eq!(fine.status, 200, "{}", fine.text);
    assert!(fine.text.contains(">Allow</button>"));
}

/// A server on a fixed address and issuer, so that it can be stopped and started again on
/// the same data and still accept the tokens it issued.
fn serve_at(data: &std::path::Path, listen: &str) -> crate::driver::Server {
    let issuer = format!("http://localhost:{}", listen.rsplit_once(':').unwrap().1);
    let mut cmd = crate::support::civis();
    cmd.args([
        "serve",
        "--plain-http",
        "--listen",
        listen,
        "--issuer",
        &issuer,
    ])
    .arg("--data-dir")
    .arg(data);
    crate::driver::Server::spawn(cmd).unwrap_or_else(|(s, err)| panic!("{s:?}: {err}"))
}

/// No route deletes a citizen (`DELETE /admin/v1/citizens` is 405), but a record can still
/// go missing (an operator's hand, a restored backup). Then nothing of theirs is live:
/// userinfo is 401 `invalid_token`, introspection says inactive, refresh and a pending code
/// are `invalid_grant`, and their passkey is refused — never a 500 or a 404.
#[tokio::test]
async fn a_citizen_whose_record_is_gone_has_no_live_token_code_or_login() {
    let data = tempdir();
    let listen = crate::support::free_addr();
    let server = serve_at(data.path(), &listen);
    let web = server.web_client().await;
    let (citizen, mut device) = server.citizen_with_passkey("GONE-0001").await;
    let (code, cookie) = server.code_for(&web.id, &mut device, None).await;
    let tokens = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    let (pending, _) = server.code_for(&web.id, &mut device, cookie).await;
    assert_eq!(server.userinfo(&tokens.access).await.status, 200);
    assert!(server.stop().0.success());

    crate::support::outside_runtime(|| {
        let store = civis::store::Store::open_sled(data.path()).unwrap();
        store
            .transact(|tx| {
                tx.delete(civis::store::CITIZENS, citizen.as_bytes());
                Ok::<_, civis::store::StoreError>(())
            })
            .unwrap();
        store.flush().unwrap();
    });
    let server = serve_at(data.path(), &listen);

    let r = server.userinfo(&tokens.access).await;
    assert_eq!(
        (r.status, r.error()),
        (401, Some("invalid_token")),
        "{}",
        r.text
    );
    let seen = server.introspect(web.auth(), &tokens.access).await;
    assert_eq!(seen["active"], false, "access token: {seen}");
    let seen = server.introspect(web.auth(), tokens.refresh_token()).await;
    assert_eq!(seen["active"], false, "refresh token: {seen}");
    let r = server.refresh(web.auth(), tokens.refresh_token()).await;
    assert_eq!(
        (r.status, r.error()),
        (400, Some("invalid_grant")),
        "{}",
        r.text
    );
    let r = server.redeem(web.auth(), &pending, VERIFIER).await;
    assert_eq!(
        (r.status, r.error()),
        (400, Some("invalid_grant")),
        "{}",
        r.text
    );
    let r = server.login(&mut device).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["type"], "urn:civis:problem:passkey-refused");
}
