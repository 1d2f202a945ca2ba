//! The attacks of the OAuth security BCP (RFC 9700) against civis, each shown failing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::driver::Drive as _;
use crate::driver::{
    LOGGED_OUT, REDIRECT, agency_and_citizen, browse, citizen_with_passkey, new_client, plain,
    query, web_client,
};
use crate::support::{Server, http, http_no_redirect, root, tempdir};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn auth_url(server: &Server, client_id: &str, extra: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=openid%20profile&state=st&nonce=n1&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        server.url,
        url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    )
}

/// The browser's first authorization for `client_id` (login and the consent answer
/// `decision` included): the redirect back to the client and the session cookie.
async fn authorize(
    server: &Server,
    client_id: &str,
    device: &mut crate::authenticator::Device,
    decision: &str,
) -> (String, Option<String>) {
    let url = auth_url(server, client_id, "");
    browse(server, &url, device, None, decision).await
}

async fn redeem(server: &Server, auth: (&str, &str), code: &str, verifier: &str) -> (u16, Value) {
    server
        .token(
            auth,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier),
            ],
        )
        .await
}

/// A fresh code for a citizen (logging in and consenting as needed).
async fn code_for(
    server: &Server,
    client_id: &str,
    device: &mut crate::authenticator::Device,
    cookie: Option<String>,
) -> (String, Option<String>) {
    let (back, cookie) = browse(
        server,
        &auth_url(server, client_id, ""),
        device,
        cookie,
        "allow",
    )
    .await;
    (
        query(&back, "code").unwrap_or_else(|| panic!("no code in {back}")),
        cookie,
    )
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let (_data, server, id, secret, mut device) = agency_and_citizen("ATK-0001").await.into_parts();
    let (code, _) = code_for(&server, &id, &mut device, None).await;
    let (status, first) = redeem(&server, (&id, &secret), &code, VERIFIER).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        server
            .userinfo(first["access_token"].as_str().unwrap())
            .await,
        200
    );

    let (status, again) = redeem(&server, (&id, &secret), &code, VERIFIER).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        server
            .userinfo(first["access_token"].as_str().unwrap())
            .await,
        401,
        "access token revoked"
    );
    let (status, r) = server
        .refresh((&id, &secret), first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        (status, r["error"].as_str()),
        (400, Some("invalid_grant")),
        "refresh token revoked"
    );
}

#[tokio::test]
async fn pkce_is_required_and_checked() {
    let (_data, server, id, secret, mut device) = agency_and_citizen("ATK-0002").await.into_parts();

    // No challenge at all: the authorization endpoint refuses (redirected error).
    let no_pkce = auth_url(&server, &id, "").replace(
        &format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"),
        "",
    );
    let resp = http_no_redirect().get(&no_pkce).send().await.unwrap();
    let loc = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        query(&loc, "error").as_deref(),
        Some("invalid_request"),
        "{loc}"
    );
    assert_eq!(query(&loc, "state").as_deref(), Some("st"));
    let plain_method = auth_url(&server, &id, "")
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let resp = http_no_redirect().get(&plain_method).send().await.unwrap();
    assert_eq!(
        query(resp.headers()["location"].to_str().unwrap(), "error").as_deref(),
        Some("invalid_request")
    );

    // Wrong verifier, then missing verifier: each burns its code.
    let (code, cookie) = code_for(&server, &id, &mut device, None).await;
    let (status, e) = redeem(&server, (&id, &secret), &code, "x".repeat(43).as_str()).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        redeem(&server, (&id, &secret), &code, VERIFIER).await.0,
        400,
        "code spent"
    );
    let (code, _) = code_for(&server, &id, &mut device, cookie).await;
    let (status, e) = server
        .token(
            (&id, &secret),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn redirect_uri_mismatch_never_redirects() {
    let data = tempdir();
    let server = plain(&data);
    let (id, secret) = web_client(&server).await;
    for bad in [
        "http://localhost:9/cb/evil",
        "https://attacker.example/cb",
        "http://localhost:9/CB",
        "http://localhost:9/cb?x=1",
    ] {
        let url = auth_url(&server, &id, "").replace(
            &url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
            &url::form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>(),
        );
        let resp = http_no_redirect().get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        assert!(
            resp.headers().get("location").is_none(),
            "{bad}: no redirect"
        );
        assert!(resp.text().await.unwrap().contains("not registered"));
    }
    // Unknown client: a page too.
    let resp = http_no_redirect()
        .get(auth_url(&server, "nobody", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());

    // At the token endpoint a different redirect_uri than the code's is invalid_grant.
    let (_, mut device) = citizen_with_passkey(&server, "ATK-0003").await;
    let (code, _) = code_for(&server, &id, &mut device, None).await;
    let (status, e) = server
        .token(
            (&id, &secret),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://localhost:9/other"),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_expires() {
    let data = tempdir();
    let server = crate::clock::with_test_clock(&data);
    let (id, _secret) = web_client(&server).await;
    let (other_id, other_secret) = web_client(&server).await;
    let (_, mut device) = citizen_with_passkey(&server, "ATK-0004").await;
    let (code, cookie) = code_for(&server, &id, &mut device, None).await;
    let (status, e) = redeem(&server, (&other_id, &other_secret), &code, VERIFIER).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "another client's code"
    );

    // Expiry: move the server's clock past the code's 60 s.
    let (code, _) = code_for(&server, &id, &mut device, cookie).await;
    crate::clock::advance(&server, 61).await;
    let secret = _secret;
    let (status, e) = redeem(&server, (&id, &secret), &code, VERIFIER).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "expired code"
    );
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_whole_grant() {
    let (_data, server, id, secret, mut device) = agency_and_citizen("ATK-0005").await.into_parts();
    let (code, _) = code_for(&server, &id, &mut device, None).await;
    let (_, first) = redeem(&server, (&id, &secret), &code, VERIFIER).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let (status, second) = server.refresh((&id, &secret), r1).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2, "rotated");
    assert_eq!(
        server
            .userinfo(second["access_token"].as_str().unwrap())
            .await,
        200
    );

    // The stolen, already spent r1 comes back: everything of the grant dies.
    let (status, e) = server.refresh((&id, &secret), r1).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, e) = server.refresh((&id, &secret), r2).await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("invalid_grant")),
        "the new one too"
    );
    assert_eq!(
        server
            .userinfo(second["access_token"].as_str().unwrap())
            .await,
        401
    );
}

#[tokio::test]
async fn a_concurrent_retry_within_the_grace_gets_the_same_tokens() {
    let data = tempdir();
    let server = crate::support::Server::start(
        data.path(),
        crate::support::Opts {
            plain_http: true,
            args: vec!["--refresh-grace-seconds".into(), "30".into()],
            ..Default::default()
        },
    );
    let (id, secret) = web_client(&server).await;
    let (_, mut device) = citizen_with_passkey(&server, "ATK-0006").await;
    let (code, _) = code_for(&server, &id, &mut device, None).await;
    let (_, first) = redeem(&server, (&id, &secret), &code, VERIFIER).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let (_, a) = server.refresh((&id, &secret), r1).await;
    let (status, b) = server.refresh((&id, &secret), r1).await;
    assert_eq!(status, 200);
    assert_eq!(a["refresh_token"], b["refresh_token"]);
    assert_eq!(
        server.userinfo(b["access_token"].as_str().unwrap()).await,
        200
    );
}

/// Forged tokens: `alg: none`, HS256 keyed with our public key, a wrong audience (signed with
/// the real key), an ID token used as an access token.
#[tokio::test]
async fn forged_and_misused_tokens_are_rejected_by_userinfo_and_introspection() {
    let (_data, server, id, secret, mut device) = agency_and_citizen("ATK-0007").await.into_parts();
    let (code, _) = code_for(&server, &id, &mut device, None).await;
    let (_, t) = redeem(&server, (&id, &secret), &code, VERIFIER).await;
    let good = t["access_token"].as_str().unwrap();
    let payload = good.split('.').nth(1).unwrap();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();

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
    let id_token = t["id_token"].as_str().unwrap();

    for (name, bad) in [
        ("alg none", none.as_str()),
        ("HS256", hs.as_str()),
        ("wrong aud", wrong_aud.as_str()),
        ("id token", id_token),
    ] {
        let resp = http()
            .get(server.at("/userinfo"))
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{name}");
        assert!(
            resp.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{name}"
        );
        let i: Value = http()
            .post(server.at("/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", bad)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(i["active"], false, "{name}");
    }
    let i: Value = http()
        .post(server.at("/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", good)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(i["active"], true);
    // Another client sees nothing of this token.
    let (other, other_secret) = web_client(&server).await;
    let i: Value = http()
        .post(server.at("/introspect"))
        .basic_auth(&other, Some(&other_secret))
        .form(&[("token", good)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(i, json!({"active": false}));
    // Userinfo accepts POST with a form token as well (OIDC Core §5.3).
    let resp = http()
        .post(server.at("/userinfo"))
        .form(&[("access_token", good)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Revocation kills it.
    let resp = http()
        .post(server.at("/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", good)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(server.userinfo(good).await, 401);
}

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let data = tempdir();
    let server = plain(&data);
    let (id, _) = web_client(&server).await;
    let resp = http_no_redirect()
        .get(auth_url(&server, &id, "&prompt=none"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let loc = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with(REDIRECT));
    assert_eq!(query(&loc, "error").as_deref(), Some("login_required"));
    assert_eq!(query(&loc, "state").as_deref(), Some("st"));
}

#[tokio::test]
async fn unmet_acr_values_and_denied_consent_are_proper_errors() {
    let (_data, server, id, _, mut device) = agency_and_citizen("ATK-0008").await.into_parts();
    let (back, cookie) = authorize(&server, &id, &mut device, "deny").await;
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    let url = auth_url(&server, &id, "&acr_values=urn%3Aexample%3Aloa%3Aextreme");
    let (back, _) = browse(&server, &url, &mut device, cookie, "allow").await;
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("unmet_authentication_requirements"),
        "{back}"
    );
}

#[tokio::test]
async fn fifty_parallel_redemptions_of_one_code_yield_exactly_one_success() {
    let (_data, server, id, secret, mut device) = agency_and_citizen("ATK-0009").await.into_parts();
    let (code, _) = code_for(&server, &id, &mut device, None).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (url, id, secret, code) = (
            server.at("/token"),
            id.clone(),
            secret.clone(),
            code.clone(),
        );
        tasks.push(tokio::spawn(async move {
            http()
                .post(url)
                .basic_auth(id, Some(secret))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", VERIFIER),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
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
    let (_data, server, id, secret, mut device) = agency_and_citizen("ATK-0019").await.into_parts();
    let mut cookie = None;
    for round in 0..6 {
        let (code, c) = code_for(&server, &id, &mut device, cookie.clone()).await;
        cookie = c;
        let auth = (id.as_str(), secret.as_str());
        let (a, b) = tokio::join!(
            redeem(&server, auth, &code, VERIFIER),
            redeem(&server, auth, &code, VERIFIER)
        );
        let winners: Vec<&Value> = [&a, &b]
            .into_iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {a:?} {b:?}");
        let tokens = winners[0];
        assert_eq!(
            server
                .userinfo(tokens["access_token"].as_str().unwrap())
                .await,
            401,
            "round {round}: the replay revoked the access token"
        );
        let (status, r) = server
            .refresh(auth, tokens["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(
            (status, r["error"].as_str()),
            (400, Some("invalid_grant")),
            "round {round}: and the refresh token"
        );
    }
}

#[tokio::test]
async fn client_credentials_are_limited_to_registered_scopes() {
    let data = tempdir();
    let server = plain(&data);
    let (id, secret) = new_client(&server, json!({"name": "Archive", "redirect_uris": [], "grant_types": ["client_credentials"], "scope": "seal"})).await;
    let secret = secret.unwrap();
    let (status, t) = server
        .token((&id, &secret), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["scope"], "seal");
    assert!(t.get("refresh_token").is_none() && t.get("id_token").is_none());
    let (status, e) = server
        .token(
            (&id, &secret),
            &[("grant_type", "client_credentials"), ("scope", "seal sign")],
        )
        .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_scope")));
    let (status, e) = server
        .token((&id, "wrong"), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!((status, e["error"].as_str()), (401, Some("invalid_client")));
    // A client-credentials token is no ticket to a citizen's userinfo.
    assert_eq!(
        http()
            .get(server.at("/userinfo"))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    // Web clients cannot use this grant.
    let (web, web_secret) = web_client(&server).await;
    let (status, e) = server
        .token((&web, &web_secret), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    let (status, e) = server
        .token((&web, &web_secret), &[("grant_type", "password")])
        .await;
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn pairwise_subjects_differ_by_sector_and_stay_stable() {
    let data = tempdir();
    let server = plain(&data);
    let (a, a_secret) = new_client(
        &server,
        json!({"name": "A", "redirect_uris": [REDIRECT], "subject_type": "pairwise"}),
    )
    .await;
    let other_sector = "http://127.0.0.1:9/cb";
    let (b, b_secret) = new_client(
        &server,
        json!({"name": "B", "redirect_uris": [other_sector], "subject_type": "pairwise"}),
    )
    .await;
    let (citizen, mut device) = citizen_with_passkey(&server, "ATK-0010").await;
    let sub_of = |t: &Value| -> String {
        let p = t["id_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()["sub"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (code, cookie) = code_for(&server, &a, &mut device, None).await;
    let sub_a1 = sub_of(
        &redeem(&server, (&a, a_secret.as_deref().unwrap()), &code, VERIFIER)
            .await
            .1,
    );
    let (code, cookie) = code_for(&server, &a, &mut device, cookie).await;
    let sub_a2 = sub_of(
        &redeem(&server, (&a, a_secret.as_deref().unwrap()), &code, VERIFIER)
            .await
            .1,
    );
    let url = auth_url(&server, &b, "").replace(
        &url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        &url::form_urlencoded::byte_serialize(other_sector.as_bytes()).collect::<String>(),
    );
    let (back, _) = browse(&server, &url, &mut device, cookie, "allow").await;
    let code = query(&back, "code").unwrap();
    let (_, t) = server
        .token(
            (&b, b_secret.as_deref().unwrap()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", other_sector),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    let sub_b = sub_of(&t);
    assert_eq!(sub_a1, sub_a2, "stable");
    assert_ne!(sub_a1, sub_b, "different per sector");
    assert_ne!(sub_a1, citizen, "not the internal id");
}

#[tokio::test]
async fn logout_without_a_hint_asks_first_and_checks_the_return_address() {
    let (_data, server, id, _, mut device) = agency_and_citizen("ATK-0011").await.into_parts();
    let (_, cookie) = authorize(&server, &id, &mut device, "allow").await;
    let cookie = cookie.unwrap();
    let page = http()
        .get(server.at("/end_session"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(">Log out</button>"), "{page}");
    // An unregistered return address is refused outright.
    let resp = http_no_redirect()
        .get(server.at(&format!(
            "/end_session?client_id={id}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"
        )))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Confirming logs out and returns to the registered address.
    let csrf = crate::driver::hidden_field(&page, "csrf");
    let resp = http_no_redirect()
        .post(server.at("/end_session/confirm"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("client_id", id.as_str()),
            ("post_logout_redirect_uri", LOGGED_OUT),
            ("state", "z"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers()["location"],
        format!("{LOGGED_OUT}?state=z").as_str()
    );
    assert_eq!(
        http()
            .get(server.at("/session"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn consent_is_remembered_until_withdrawn() {
    let (_data, server, id, _, mut device) = agency_and_citizen("ATK-0012").await.into_parts();
    let (_, cookie) = authorize(&server, &id, &mut device, "allow").await;
    let cookie = cookie.unwrap();
    // Remembered: the next authorization goes straight back with a code.
    let resp = http_no_redirect()
        .get(auth_url(&server, &id, ""))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(query(resp.headers()["location"].to_str().unwrap(), "code").is_some());
    // prompt=consent asks again even so.
    let resp = http_no_redirect()
        .get(auth_url(&server, &id, "&prompt=consent"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Withdrawn: asked again; and prompt=none now fails with consent_required.
    let resp = http()
        .delete(server.at(&format!("/session/consents/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let resp = http_no_redirect()
        .get(auth_url(&server, &id, ""))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "consent page again");
    let resp = http_no_redirect()
        .get(auth_url(&server, &id, "&prompt=none"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query(resp.headers()["location"].to_str().unwrap(), "error").as_deref(),
        Some("consent_required")
    );
    // Without a session nothing can be withdrawn.
    let resp = http()
        .delete(server.at(&format!("/session/consents/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

/// A client's name is chosen by whoever registers it and shown to citizens on the consent
/// page: the template engine escapes it, so markup in it is text, never code.
#[tokio::test]
async fn a_client_name_with_markup_is_shown_as_text() {
    let data = tempdir();
    let server = plain(&data);
    let (id, _) = new_client(
        &server,
        json!({"name": "<script>alert('x')</script> & \"Co\"", "redirect_uris": [REDIRECT]}),
    )
    .await;
    let (_, mut device) = citizen_with_passkey(&server, "ATK-0031").await;
    // `browse` reads the consent page and fails on any `<script>` without `src`.
    let (back, _) = authorize(&server, &id, &mut device, "allow").await;
    assert!(query(&back, "code").is_some(), "{back}");
}
