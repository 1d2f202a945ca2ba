//! The attacks of the OAuth security BCP (RFC 9700) against civis, each shown failing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::driver::{
    CHALLENGE, LOGGED_OUT, REDIRECT, VERIFIER, code_grant, enc, field, jwt_part, plain, query,
    start, tempdir,
};
use crate::support::{Opts, root};

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0001").await;
    let (code, _) = server.code_for(&web.id, &mut device, None).await;
    let first = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    assert_eq!(server.userinfo(&first.access).await.status, 200);

    let again = server.redeem(web.auth(), &code, VERIFIER).await;
    assert_eq!((again.status, again.error()), (400, Some("invalid_grant")));
    assert_eq!(
        server.userinfo(&first.access).await.status,
        401,
        "access token revoked"
    );
    let r = server.refresh(web.auth(), first.refresh_token()).await;
    assert_eq!(
        (r.status, r.error()),
        (400, Some("invalid_grant")),
        "refresh token revoked"
    );
}

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0002").await;

    // No challenge at all: the authorization endpoint refuses (redirected error).
    let no_pkce = server.auth_url(&web.id, "").replace(
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
        "",
    );
    let resp = server.get(&no_pkce).no_redirect().send().await;
    let loc = resp.location();
    assert_eq!(
        query(loc, "error").as_deref(),
        Some("invalid_request"),
        "{loc}"
    );
    assert_eq!(query(loc, "state").as_deref(), Some("st"));
    let plain_method = server
        .auth_url(&web.id, "")
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let resp = server.get(&plain_method).no_redirect().send().await;
    assert_eq!(
        query(resp.location(), "error").as_deref(),
        Some("invalid_request")
    );

    // Wrong verifier, then missing verifier: each burns its code.
    let (code, cookie) = server.code_for(&web.id, &mut device, None).await;
    let e = server.redeem(web.auth(), &code, &"x".repeat(43)).await;
    assert_eq!((e.status, e.error()), (400, Some("invalid_grant")));
    assert_eq!(
        server.redeem(web.auth(), &code, VERIFIER).await.status,
        400,
        "code spent"
    );
    let (code, _) = server.code_for(&web.id, &mut device, cookie).await;
    let e = server
        .token(
            web.auth(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!((e.status, e.error()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn redirect_uri_mismatch_never_redirects() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    for bad in [
        "http://localhost:9/cb/evil",
        "https://attacker.example/cb",
        "http://localhost:9/CB",
        "http://localhost:9/cb?x=1",
    ] {
        let url = server.auth_url_to(&web.id, bad, "");
        let resp = server.get(&url).no_redirect().send().await;
        assert_eq!(resp.status, 400, "{bad}");
        assert!(resp.headers.get("location").is_none(), "{bad}: no redirect");
        assert!(resp.text.contains("not registered"));
    }
    // Unknown client: a page too.
    let resp = server
        .get(&server.auth_url("nobody", ""))
        .no_redirect()
        .send()
        .await;
    assert_eq!(resp.status, 400);
    assert!(resp.headers.get("location").is_none());

    // At the token endpoint a different redirect_uri than the code's is invalid_grant.
    let (_, mut device) = server.citizen_with_passkey("ATK-0003").await;
    let (code, _) = server.code_for(&web.id, &mut device, None).await;
    let e = server
        .token(
            web.auth(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://localhost:9/other"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!((e.status, e.error()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_expires() {
    let data = tempdir();
    let server = crate::clock::with_test_clock(&data);
    let web = server.web_client().await;
    let other = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0004").await;
    let (code, cookie) = server.code_for(&web.id, &mut device, None).await;
    let e = server.redeem(other.auth(), &code, VERIFIER).await;
    assert_eq!(
        (e.status, e.error()),
        (400, Some("invalid_grant")),
        "another client's code"
    );

    // Expiry: move the server's clock past the code's 60 s.
    let (code, _) = server.code_for(&web.id, &mut device, cookie).await;
    crate::clock::advance(&server, 61).await;
    let e = server.redeem(web.auth(), &code, VERIFIER).await;
    assert_eq!(
        (e.status, e.error()),
        (400, Some("invalid_grant")),
        "expired code"
    );
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_whole_grant() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0005").await;
    let (code, _) = server.code_for(&web.id, &mut device, None).await;
    let first = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    let r1 = first.refresh_token();
    let second = server.refresh(web.auth(), r1).await;
    assert_eq!(second.status, 200, "{}", second.text);
    let second = second.tokens();
    let r2 = second.refresh_token();
    assert_ne!(r1, r2, "rotated");
    assert_eq!(server.userinfo(&second.access).await.status, 200);

    // The stolen, already spent r1 comes back: everything of the grant dies.
    let e = server.refresh(web.auth(), r1).await;
    assert_eq!((e.status, e.error()), (400, Some("invalid_grant")));
    let e = server.refresh(web.auth(), r2).await;
    assert_eq!(
        (e.status, e.error()),
        (400, Some("invalid_grant")),
        "the new one too"
    );
    assert_eq!(server.userinfo(&second.access).await.status, 401);
}

#[tokio::test]
async fn a_concurrent_retry_within_the_grace_gets_the_same_tokens() {
    let data = tempdir();
    let server = start(
        &data,
        Opts::plain().with_args(["--refresh-grace-seconds", "30"]),
    );
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0006").await;
    let (code, _) = server.code_for(&web.id, &mut device, None).await;
    let first = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    let r1 = first.refresh_token();
    let a = server.refresh(web.auth(), r1).await;
    let b = server.refresh(web.auth(), r1).await;
    assert_eq!(b.status, 200);
    assert_eq!(a.json()["refresh_token"], b.json()["refresh_token"]);
    assert_eq!(server.userinfo(&b.tokens().access).await.status, 200);
}

/// Forged tokens: `alg: none`, HS256 keyed with our public key, a wrong audience (signed with
/// the real key), an ID token used as an access token.
#[tokio::test]
async fn forged_and_misused_tokens_are_rejected_by_userinfo_and_introspection() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0007").await;
    let (code, _) = server.code_for(&web.id, &mut device, None).await;
    let t = server.redeem(web.auth(), &code, VERIFIER).await.tokens();
    let good = t.access.as_str();
    let payload = good.split('.').nth(1).unwrap();
    let mut claims = jwt_part(good, 1);

    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#)
    );
    let keys = civis::crypto::KeySet::load(
        &root().join("keys-dev"),
        &root().join("keys-dev/admin-token"),
    )
    .unwrap();
    let hs_input = format!(
        "{}.{payload}",
        URL_SAFE_NO_PAD.encode(format!(
            r#"{{"alg":"HS256","typ":"at+jwt","kid":"{}"}}"#,
            keys.tokens()
                .signing(time::OffsetDateTime::now_utc())
                .key_id()
        ))
    );
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            keys.tokens()
                .signing(time::OffsetDateTime::now_utc())
                .public_key()
                .sec1_point(),
        ),
        hs_input.as_bytes(),
    );
    let hs = format!("{hs_input}.{}", URL_SAFE_NO_PAD.encode(mac));
    claims["aud"] = json!("https://some-other-api.example");
    let wrong_aud = civis::crypto::jwt::sign(
        keys.tokens().signing(time::OffsetDateTime::now_utc()),
        "at+jwt",
        &claims,
    )
    .unwrap();
    let id_token = t.id_token();

    for (name, bad) in [
        ("alg none", none.as_str()),
        ("HS256", hs.as_str()),
        ("wrong aud", wrong_aud.as_str()),
        ("id token", id_token),
    ] {
        let resp = server.userinfo(bad).await;
        assert_eq!(resp.status, 401, "{name}");
        assert!(
            resp.header("www-authenticate").contains("invalid_token"),
            "{name}"
        );
        let i = server.introspect(web.auth(), bad).await;
        assert_eq!(i["active"], false, "{name}");
    }
    let i = server.introspect(web.auth(), good).await;
    assert_eq!(i["active"], true);
    // Another client sees nothing of this token.
    let other = server.web_client().await;
    let i = server.introspect(other.auth(), good).await;
    assert_eq!(i, json!({"active": false}));
    // Userinfo accepts POST with a form token as well (OIDC Core §5.3).
    let resp = server
        .post("/userinfo")
        .form(&[("access_token", good)])
        .send()
        .await;
    assert_eq!(resp.status, 200);
    // Revocation kills it.
    assert_eq!(server.revoke(web.auth(), good).await.status, 200);
    assert_eq!(server.userinfo(good).await.status, 401);
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let resp = server
        .get(&server.auth_url(&web.id, "&prompt=none"))
        .no_redirect()
        .send()
        .await;
    assert_eq!(resp.status, 303);
    let loc = resp.location();
    assert!(loc.starts_with(REDIRECT));
    assert_eq!(query(loc, "error").as_deref(), Some("login_required"));
    assert_eq!(query(loc, "state").as_deref(), Some("st"));
}

#[tokio::test]
async fn unmet_acr_values_and_denied_consent_are_proper_errors() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0008").await;
    let (back, cookie) = server
        .authorize(&server.auth_url(&web.id, ""), &mut device, None, "deny")
        .await;
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    let url = server.auth_url(&web.id, "&acr_values=urn%3Aexample%3Aloa%3Aextreme");
    let (back, _) = server.authorize(&url, &mut device, cookie, "allow").await;
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{back}"
    );
}

#[tokio::test]
async fn fifty_parallel_redemptions_of_one_code_yield_exactly_one_success() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0009").await;
    let (code, _) = server.code_for(&web.id, &mut device, None).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let redemption = server.token_request(web.auth(), &code_grant(&code, VERIFIER));
        tasks.push(tokio::spawn(async move { redemption.send().await.status }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            400 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1);
}

/// A replay that arrives while the first redemption is still in progress must revoke too:
/// the code is taken, the grant created and the used-code marker written in one
/// transaction, so whichever of two simultaneous redemptions comes second finds the
/// marker. (Before, a replay between taking the code and storing the grant was refused but
/// revoked nothing.)
#[tokio::test]
async fn a_replay_racing_the_first_redemption_still_revokes() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0019").await;
    let mut cookie = None;
    for round in 0..6 {
        let (code, c) = server.code_for(&web.id, &mut device, cookie.clone()).await;
        cookie = c;
        let (a, b) = tokio::join!(
            server.redeem(web.auth(), &code, VERIFIER),
            server.redeem(web.auth(), &code, VERIFIER)
        );
        let winners: Vec<_> = [&a, &b]
            .into_iter()
            .filter(|reply| reply.status == 200)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {a:?} {b:?}");
        let tokens = winners[0].tokens();
        assert_eq!(
            server.userinfo(&tokens.access).await.status,
            401,
            "round {round}: the replay revoked the access token"
        );
        let r = server.refresh(web.auth(), tokens.refresh_token()).await;
        assert_eq!(
            (r.status, r.error()),
            (400, Some("invalid_grant")),
            "round {round}: and the refresh token"
        );
    }
}

#[tokio::test]
async fn client_credentials_are_limited_to_registered_scopes() {
    let data = tempdir();
    let server = plain(&data);
    let archive = server.machine_client("Archive", "seal").await;
    let t = server.client_credentials(archive.auth()).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.json()["scope"], "seal");
    assert!(t.json().get("refresh_token").is_none() && t.json().get("id_token").is_none());
    let e = server
        .token(
            archive.auth(),
            &[("grant_type", "client_credentials"), ("scope", "seal sign")],
        )
        .await;
    assert_eq!((e.status, e.error()), (400, Some("invalid_scope")));
    let e = server.client_credentials((&archive.id, "wrong")).await;
    assert_eq!((e.status, e.error()), (401, Some("invalid_client")));
    // A client-credentials token is no ticket to a citizen's userinfo.
    assert_eq!(server.userinfo(&t.tokens().access).await.status, 403);
    // Web clients cannot use this grant.
    let web = server.web_client().await;
    let e = server.client_credentials(web.auth()).await;
    assert_eq!((e.status, e.error()), (400, Some("unauthorized_client")));
    let e = server
        .token(web.auth(), &[("grant_type", "password")])
        .await;
    assert_eq!((e.status, e.error()), (400, Some("unsupported_grant_type")));
}

#[tokio::test]
async fn pairwise_subjects_and_session_ids_differ_by_sector_and_stay_stable() {
    let data = tempdir();
    let server = plain(&data);
    let a = server
        .register_client(
            json!({"name": "A", "redirect_uris": [REDIRECT], "subject_type": "pairwise"}),
        )
        .await;
    let other_sector = "http://127.0.0.1:9/cb";
    let b = server
        .register_client(
            json!({"name": "B", "redirect_uris": [other_sector], "subject_type": "pairwise"}),
        )
        .await;
    let (citizen, mut device) = server.citizen_with_passkey("ATK-0010").await;
    // `sub` and `sid` as a client sees them in its ID token.
    let claim = |t: &Value, name: &str| -> String {
        jwt_part(t["id_token"].as_str().unwrap(), 1)[name]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let sub_of = |t: &Value| claim(t, "sub");
    let (code, cookie) = server.code_for(&a.id, &mut device, None).await;
    let sub_a1 = sub_of(server.redeem(a.auth(), &code, VERIFIER).await.json());
    let (code, cookie) = server.code_for(&a.id, &mut device, cookie).await;
    let second = server.redeem(a.auth(), &code, VERIFIER).await;
    let (sub_a2, sid_a) = (sub_of(second.json()), claim(second.json(), "sid"));
    let url = server.auth_url_to(&b.id, other_sector, "");
    let (back, _) = server.authorize(&url, &mut device, cookie, "allow").await;
    let code = query(&back, "code").unwrap();
    let t = server
        .token(
            b.auth(),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", other_sector),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    let (sub_b, sid_b) = (sub_of(t.json()), claim(t.json(), "sid"));
    assert_eq!(sub_a1, sub_a2, "stable");
    assert_ne!(sub_a1, sub_b, "different per sector");
    assert_ne!(sub_a1, citizen, "not the internal id");
    // One browser session, and still nothing the two sectors could join on (issue 9).
    assert_ne!(sid_a, sid_b, "sid differs per client");
}

#[tokio::test]
async fn logout_without_a_hint_asks_first_and_checks_the_return_address() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0011").await;
    let (_, cookie) = server
        .authorize(&server.auth_url(&web.id, ""), &mut device, None, "allow")
        .await;
    let cookie = cookie.unwrap();
    let page = server.get("/end_session").cookie(&cookie).send().await.text;
    assert!(page.contains(">Log out</button>"), "{page}");
    // An unregistered return address is refused outright.
    let resp = server
        .get(&format!(
            "/end_session?client_id={}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
            web.id
        ))
        .no_redirect()
        .cookie(&cookie)
        .send()
        .await;
    assert_eq!(resp.status, 400);
    // Confirming logs out and returns to the registered address.
    let resp = server
        .post("/end_session/confirm")
        .no_redirect()
        .cookie(&cookie)
        .form(&[
            ("csrf", field(&page, "csrf").as_str()),
            ("client_id", web.id.as_str()),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "z"),
        ])
        .send()
        .await;
    assert_eq!(resp.status, 303);
    assert_eq!(resp.location(), format!("{LOGGED_OUT}?state=z"));
    assert_eq!(server.session(&cookie).await.status, 401);
}

#[tokio::test]
async fn consent_is_remembered_until_withdrawn() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0012").await;
    let (_, cookie) = server
        .authorize(&server.auth_url(&web.id, ""), &mut device, None, "allow")
        .await;
    let cookie = cookie.unwrap();
    let visit = |extra: &'static str| {
        server
            .get(&server.auth_url(&web.id, extra))
            .no_redirect()
            .cookie(&cookie)
            .send()
    };
    // Remembered: the next authorization goes straight back with a code.
    let resp = visit("").await;
    assert_eq!(resp.status, 303);
    assert!(query(resp.location(), "code").is_some());
    // prompt=consent asks again even so.
    assert_eq!(visit("&prompt=consent").await.status, 200);
    // Withdrawn: asked again; and prompt=none now fails with consent_required.
    let consent = format!("/session/consents/{}", web.id);
    let resp = server.delete(&consent).cookie(&cookie).send().await;
    assert_eq!(resp.status, 204);
    assert_eq!(visit("").await.status, 200, "consent page again");
    let resp = visit("&prompt=none").await;
    assert_eq!(
        query(resp.location(), "error").as_deref(),
        Some("consent_required")
    );
    // Without a session nothing can be withdrawn.
    assert_eq!(server.delete(&consent).send().await.status, 401);
}

/// A client's name is chosen by whoever registers it and shown to citizens on the consent
/// page: the template engine escapes it, so markup in it is text, never code.
#[tokio::test]
async fn a_client_name_with_markup_is_shown_as_text() {
    let data = tempdir();
    let server = plain(&data);
    let client = server
        .register_client(
            json!({"name": "<script>alert('x')</script> & \"Co\"", "redirect_uris": [REDIRECT]}),
        )
        .await;
    let (_, mut device) = server.citizen_with_passkey("ATK-0031").await;
    // `authorize` reads the consent page and fails on any `<script>` without `src`.
    let (back, _) = server
        .authorize(&server.auth_url(&client.id, ""), &mut device, None, "allow")
        .await;
    assert!(query(&back, "code").is_some(), "{back}");
}

/// `/authorize` is open to anyone: an oversized scope (more than 64 values or 2 KiB) is
/// refused at once with `invalid_scope` to the registered redirect URI, before anything is
/// parked; a long list of repeats within the limit is de-duplicated as usual.
#[tokio::test]
async fn an_oversized_scope_is_refused_without_being_parsed_further() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let with_scope = |scope: &str| {
        server
            .auth_url(&web.id, "")
            .replace("scope=openid%20profile", &format!("scope={}", enc(scope)))
    };
    let many: Vec<String> = (0..64).map(|i| format!("x{i}")).collect();
    for scope in [
        format!("openid {}", many.join(" ")),
        format!("openid {}", "a".repeat(2100)),
    ] {
        let resp = server.get(&with_scope(&scope)).no_redirect().send().await;
        assert_eq!(resp.status, 303, "{}", resp.text);
        let back = resp.location();
        assert!(back.starts_with(REDIRECT), "{back}");
        assert_eq!(
            query(back, "error").as_deref(),
            Some("invalid_scope"),
            "{back}"
        );
        assert_eq!(query(back, "state").as_deref(), Some("st"));
        let why = query(back, "error_description").unwrap_or_default();
        assert!(why.contains("too long"), "{why}");
    }
    // 200 values, repeats of two scopes (1 500 bytes): within the limits, and
    // the sign-in goes on to the login page.
    let repeats = "openid profile ".repeat(100);
    let resp = server.get(&with_scope(&repeats)).no_redirect().send().await;
    assert_eq!(resp.status, 303, "{}", resp.text);
    assert!(resp.location().contains("/login"), "{}", resp.location());
}
