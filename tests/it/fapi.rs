//! Agency apps at the FAPI 2.0 level through the real endpoints: pushed authorization
//! requests (RFC 9126), DPoP-bound tokens (RFC 9449) and the `fapi2` client profile, with
//! the attacks each of them exists to stop.

use serde_json::json;

use crate::clock::{advance, with_test_clock};
use crate::driver::dpop::{ClientKey, Proof, unix_now};
use crate::driver::{
    CHALLENGE, REDIRECT, Server, VERIFIER, code_grant, enc, jwt_part, plain, query, tempdir,
};

/// Pushes `fields` (plus the usual request for `openid profile`) for `client_id`
/// authenticated with HTTP Basic `secret`.
async fn push(
    server: &Server,
    client_id: &str,
    secret: &str,
    extra: &[(&str, &str)],
) -> crate::driver::Reply {
    let mut form = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile"),
        ("state", "st"),
        ("nonce", "n1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    form.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    form.extend_from_slice(extra);
    form.retain(|(_, v)| !v.is_empty());
    server
        .post("/par")
        .basic(client_id, secret)
        .form(&form)
        .send()
        .await
}

fn authorize_by_reference(server: &Server, client_id: &str, request_uri: &str) -> String {
    server.at(&format!(
        "/authorize?client_id={client_id}&request_uri={}",
        enc(request_uri)
    ))
}

/// A pushed request is used once, only by its client, within its minute; the PAR endpoint
/// answers RFC 6749 errors; a client that must push cannot use the front channel.
#[tokio::test]
async fn a_pushed_request_is_single_use_bound_to_its_client_and_short_lived() {
    let data = tempdir();
    let server = with_test_clock(&data);
    let web = server.web_client().await;
    let other = server.web_client().await;
    let (id, secret) = (web.id.as_str(), web.secret.as_deref().unwrap());
    let (_, mut device) = server.citizen_with_passkey("PAR-0001").await;

    let pushed = push(&server, id, secret, &[]).await;
    assert_eq!(pushed.status, 201, "{}", pushed.text);
    let request_uri = pushed.json()["request_uri"].as_str().unwrap().to_owned();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(pushed.json()["expires_in"], 60);
    assert_eq!(pushed.header("cache-control"), "no-store");

    // Used by another client: refused (and spent).
    let stolen = server
        .get(&authorize_by_reference(&server, &other.id, &request_uri))
        .no_redirect()
        .send()
        .await;
    assert_eq!(stolen.status, 400, "{}", stolen.text);

    // The rightful use: parameters come from the pushed request, not the query.
    let pushed = push(&server, id, secret, &[("state", "pushed-state")]).await;
    let request_uri = pushed.json()["request_uri"].as_str().unwrap().to_owned();
    let url = format!(
        "{}&state=forged&scope=national_id",
        authorize_by_reference(&server, id, &request_uri)
    );
    let (back, cookie) = server.authorize(&url, &mut device, None, "allow").await;
    assert_eq!(
        query(&back, "state").as_deref(),
        Some("pushed-state"),
        "{back}"
    );
    assert_eq!(
        query(&back, "iss").as_deref(),
        Some(server.url.as_str()),
        "RFC 9207 iss"
    );
    let code = query(&back, "code").unwrap();
    let tokens = server.redeem((id, secret), &code, VERIFIER).await.tokens();
    assert_eq!(jwt_part(&tokens.access, 1)["scope"], "openid profile");

    // Used again: refused.
    let again = server
        .get(&url)
        .no_redirect()
        .cookie(cookie.as_deref().unwrap())
        .send()
        .await;
    assert_eq!(again.status, 400, "{}", again.text);
    assert!(
        again.text.contains("expired or was already used"),
        "{}",
        again.text
    );

    // Expired: refused after its 60 seconds.
    let pushed = push(&server, id, secret, &[]).await;
    let request_uri = pushed.json()["request_uri"].as_str().unwrap().to_owned();
    advance(&server, 61).await;
    let late = server
        .get(&authorize_by_reference(&server, id, &request_uri))
        .no_redirect()
        .send()
        .await;
    assert_eq!(late.status, 400, "{}", late.text);

    // A made-up request_uri, and one outside our namespace.
    for made_up in [
        "urn:ietf:params:oauth:request_uri:nope",
        "https://evil.example/req",
    ] {
        let r = server
            .get(&authorize_by_reference(&server, id, made_up))
            .no_redirect()
            .send()
            .await;
        assert_eq!(r.status, 400, "{made_up}");
    }

    // The PAR endpoint's own errors are RFC 6749 JSON.
    for (extra, error) in [
        (
            vec![("redirect_uri", "https://evil.example/cb")],
            "invalid_request",
        ),
        (vec![("redirect_uri", "")], "invalid_request"),
        (vec![("scope", "openid seal")], "invalid_scope"),
        (vec![("code_challenge", "")], "invalid_request"),
        (
            vec![("request_uri", "urn:ietf:params:oauth:request_uri:x")],
            "invalid_request",
        ),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
    ] {
        let r = push(&server, id, secret, &extra).await;
        assert_eq!(
            (r.status, r.error()),
            (400, Some(error)),
            "{extra:?}: {}",
            r.text
        );
    }
    let unauthenticated = push(&server, id, "wrong-secret", &[]).await;
    assert_eq!(
        (unauthenticated.status, unauthenticated.error()),
        (401, Some("invalid_client"))
    );
    // Another client's id in the body than the one authenticated.
    let mixed = push(&server, id, secret, &[("client_id", other.id.as_str())]).await;
    assert_eq!((mixed.status, mixed.error()), (401, Some("invalid_client")));

    // A client that must push: the front channel is refused with a redirect naming why.
    let strict = server
        .register_client(json!({"name": "Strict", "redirect_uris": [REDIRECT],
            "require_pushed_authorization_requests": true}))
        .await;
    let front = server
        .get(&server.auth_url(&strict.id, ""))
        .no_redirect()
        .send()
        .await;
    assert_eq!(front.status, 303, "{}", front.text);
    assert_eq!(
        query(front.location(), "error").as_deref(),
        Some("invalid_request")
    );
    assert!(
        query(front.location(), "error_description")
            .unwrap()
            .contains("pushed authorization")
    );
    let view = server
        .admin_get(&format!("/admin/v1/clients/{}", strict.id))
        .await;
    assert_eq!(view.json()["require_pushed_authorization_requests"], true);

    let discovery = server.get("/.well-known/openid-configuration").send().await;
    let d = discovery.json();
    assert_eq!(
        d["pushed_authorization_request_endpoint"],
        server.at("/par")
    );
    assert_eq!(d["dpop_signing_alg_values_supported"], json!(["ES256"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
}

/// DPoP at the token endpoint and at userinfo: tokens bound to the proof's key, and every
/// way of using a bound token without that key refused.
#[tokio::test]
async fn dpop_bound_tokens_are_useless_without_their_key() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (id, secret) = (web.id.as_str(), web.secret.as_deref().unwrap());
    let (_, mut device) = server.citizen_with_passkey("DPOP-0001").await;
    let key = ClientKey::new();
    let token_url = server.at("/token");
    let at_token = |nonce: Option<&str>| {
        key.proof(Proof {
            htm: "POST",
            htu: &token_url,
            iat: unix_now(),
            nonce,
            access_token: None,
        })
    };

    let (code, cookie) = server.code_for(id, &mut device, None).await;
    // Without the server nonce: use_dpop_nonce, and the nonce to use.
    let first = server
        .token_request((id, secret), &code_grant(&code, VERIFIER))
        .dpop(&at_token(None))
        .send()
        .await;
    assert_eq!(
        (first.status, first.error()),
        (400, Some("use_dpop_nonce")),
        "{}",
        first.text
    );
    let nonce = first.header("dpop-nonce").to_owned();
    let reply = server
        .token_request((id, secret), &code_grant(&code, VERIFIER))
        .dpop(&at_token(Some(&nonce)))
        .send()
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["token_type"], "DPoP");
    assert!(!reply.header("dpop-nonce").is_empty());
    let tokens = reply.tokens();
    assert_eq!(jwt_part(&tokens.access, 1)["cnf"]["jkt"], key.thumbprint());
    let introspected = server.introspect((id, secret), &tokens.access).await;
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"]["jkt"], key.thumbprint());

    // The rightful use.
    let ok = server.userinfo_dpop(&key, &tokens.access).await;
    assert_eq!(ok.status, 200, "{}", ok.text);

    // As a bearer token.
    let bearer = server.userinfo(&tokens.access).await;
    assert_eq!(bearer.status, 401, "{}", bearer.text);
    assert!(
        bearer.header("www-authenticate").starts_with("DPoP"),
        "{}",
        bearer.header("www-authenticate")
    );
    // The DPoP scheme without a proof.
    let no_proof = server
        .get("/userinfo")
        .authorization(Some(&format!("DPoP {}", tokens.access)))
        .send()
        .await;
    assert_eq!(
        (no_proof.status, no_proof.error()),
        (401, Some("invalid_dpop_proof"))
    );

    let userinfo = server.at("/userinfo");
    let good = Proof {
        htm: "GET",
        htu: &userinfo,
        iat: unix_now(),
        nonce: None,
        access_token: Some(&tokens.access),
    };
    // A replayed proof.
    let proof = key.proof(good);
    let once = server
        .with_dpop(server.get("/userinfo"), &tokens.access, &proof)
        .send()
        .await;
    assert_eq!(once.status, 200, "{}", once.text);
    let replay = server
        .with_dpop(server.get("/userinfo"), &tokens.access, &proof)
        .send()
        .await;
    assert_eq!(
        (replay.status, replay.error()),
        (401, Some("invalid_dpop_proof")),
        "replayed proof"
    );
    // Another key's proof.
    let thief = ClientKey::new();
    let stolen = server
        .with_dpop(server.get("/userinfo"), &tokens.access, &thief.proof(good))
        .send()
        .await;
    assert_eq!(
        (stolen.status, stolen.error()),
        (401, Some("invalid_token")),
        "another key"
    );
    // Wrong htu, htm, ath, and a stale or future iat.
    let other_url = server.at("/token");
    let other_token = "not-this-token";
    for (why, p) in [
        (
            "htu",
            Proof {
                htu: &other_url,
                ..good
            },
        ),
        (
            "htm",
            Proof {
                htm: "POST",
                ..good
            },
        ),
        (
            "ath",
            Proof {
                access_token: Some(other_token),
                ..good
            },
        ),
        (
            "stale iat",
            Proof {
                iat: unix_now() - 120,
                ..good
            },
        ),
        (
            "future iat",
            Proof {
                iat: unix_now() + 120,
                ..good
            },
        ),
        (
            "stale nonce",
            Proof {
                nonce: Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                ..good
            },
        ),
    ] {
        let r = server
            .with_dpop(server.get("/userinfo"), &tokens.access, &key.proof(p))
            .send()
            .await;
        assert_eq!(r.status, 401, "{why}: {}", r.text);
        let expected = if why == "stale nonce" {
            "use_dpop_nonce"
        } else {
            "invalid_dpop_proof"
        };
        assert_eq!(r.error(), Some(expected), "{why}");
    }
    // A replayed proof at the token endpoint, and a proof for another endpoint there.
    let refresh_proof = at_token(Some(&nonce));
    let refreshed = server
        .token_request(
            (id, secret),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens.refresh_token()),
            ],
        )
        .dpop(&refresh_proof)
        .send()
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(refreshed.json()["token_type"], "DPoP");
    let replayed = server
        .token_request(
            (id, secret),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refreshed.tokens().refresh_token()),
            ],
        )
        .dpop(&refresh_proof)
        .send()
        .await;
    assert_eq!(
        (replayed.status, replayed.error()),
        (400, Some("invalid_dpop_proof")),
        "{}",
        replayed.text
    );
    // An unbound token cannot claim the DPoP scheme.
    let (code, _) = server.code_for(id, &mut device, cookie).await;
    let plain_tokens = server.redeem((id, secret), &code, VERIFIER).await.tokens();
    let claimed = server.userinfo_dpop(&key, &plain_tokens.access).await;
    assert_eq!(
        (claimed.status, claimed.error()),
        (401, Some("invalid_token"))
    );
    assert_eq!(server.userinfo(&plain_tokens.access).await.status, 200);
}

/// A public client's refresh token is bound to its DPoP key: without a proof, or with
/// another key's, it is refused; a client registered with `dpop_bound_access_tokens` gets
/// no token without a proof.
#[tokio::test]
async fn public_clients_refresh_tokens_are_bound_and_flagged_clients_must_use_dpop() {
    let data = tempdir();
    let server = plain(&data);
    let public = server
        .register_client(json!({"name": "App", "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none", "dpop_bound_access_tokens": true}))
        .await;
    let (_, mut device) = server.citizen_with_passkey("DPOP-0002").await;
    let key = ClientKey::new();
    let nonce = server.dpop_nonce(&key).await;
    let token_url = server.at("/token");
    let proof = |k: &ClientKey| {
        k.proof(Proof {
            htm: "POST",
            htu: &token_url,
            iat: unix_now(),
            nonce: Some(&nonce),
            access_token: None,
        })
    };
    let mut grant = code_grant("", VERIFIER).to_vec();
    grant.push(("client_id", &public.id));

    let (code, _) = server.code_for(&public.id, &mut device, None).await;
    grant[1] = ("code", &code);
    let without = server.post("/token").form(&grant).send().await;
    assert_eq!(
        (without.status, without.error()),
        (400, Some("invalid_dpop_proof")),
        "{}",
        without.text
    );
    let (code, _) = server.code_for(&public.id, &mut device, None).await;
    grant[1] = ("code", &code);
    let tokens = server
        .post("/token")
        .form(&grant)
        .dpop(&proof(&key))
        .send()
        .await
        .tokens();
    let introspect_refresh = jwt_part(&tokens.access, 1);
    assert_eq!(introspect_refresh["cnf"]["jkt"], key.thumbprint());

    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh_token()),
        ("client_id", public.id.as_str()),
    ];
    let no_proof = server.post("/token").form(&refresh).send().await;
    assert_eq!(
        (no_proof.status, no_proof.error()),
        (400, Some("invalid_dpop_proof"))
    );
    let thief = ClientKey::new();
    let stolen = server
        .post("/token")
        .form(&refresh)
        .dpop(&proof(&thief))
        .send()
        .await;
    assert_eq!(
        (stolen.status, stolen.error()),
        (400, Some("invalid_grant")),
        "{}",
        stolen.text
    );
    let rightful = server
        .post("/token")
        .form(&refresh)
        .dpop(&proof(&key))
        .send()
        .await;
    assert_eq!(rightful.status, 200, "{}", rightful.text);
    assert_eq!(
        jwt_part(&rightful.tokens().access, 1)["cnf"]["jkt"],
        key.thumbprint()
    );
}

/// A `fapi2` client: registration refuses what the profile forbids; the front channel, a
/// token request without DPoP and a code older than 60 s are refused; PAR + private_key_jwt
/// + DPoP gets bound tokens, usable at userinfo only with the key.
#[tokio::test]
async fn a_fapi2_client_gets_only_what_the_profile_allows() {
    let data = tempdir();
    let server = with_test_clock(&data);
    let auth_key = ClientKey::new();
    let mut jwk = auth_key.jwk();
    jwk["kid"] = "k1".into();
    for (body, field) in [
        (
            json!({"name": "F", "redirect_uris": [REDIRECT], "profile": "fapi2"}),
            "token_endpoint_auth_method",
        ),
        (
            json!({"name": "F", "redirect_uris": [REDIRECT], "profile": "fapi2", "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [jwk]}, "dpop_bound_access_tokens": false}),
            "dpop_bound_access_tokens",
        ),
        (
            json!({"name": "F", "redirect_uris": [REDIRECT], "profile": "fapi1"}),
            "profile",
        ),
        (
            json!({"name": "F", "redirect_uris": [REDIRECT], "backchannel_logout_uri": "http://rp.example/bc"}),
            "backchannel_logout_uri",
        ),
    ] {
        let r = server.post_client(&body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(r.text.contains(field), "{field}: {}", r.text);
    }
    let fapi = server
        .register_client(
            json!({"name": "Bank", "redirect_uris": [REDIRECT], "profile": "fapi2",
            "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]}}),
        )
        .await;
    let view = server
        .admin_get(&format!("/admin/v1/clients/{}", fapi.id))
        .await;
    let v = view.json();
    assert_eq!(
        (
            v["profile"].as_str(),
            &v["require_pushed_authorization_requests"],
            &v["dpop_bound_access_tokens"]
        ),
        (Some("fapi2"), &json!(true), &json!(true))
    );
    let (_, mut device) = server.citizen_with_passkey("FAPI-0001").await;

    // The front channel.
    let front = server
        .get(&server.auth_url(&fapi.id, ""))
        .no_redirect()
        .send()
        .await;
    assert_eq!(
        query(front.location(), "error").as_deref(),
        Some("invalid_request")
    );
    assert!(
        query(front.location(), "error_description")
            .unwrap()
            .contains("fapi2")
    );

    let token_url = server.at("/token");
    let dpop = ClientKey::new();
    let (back, cookie) = fapi_code(&server, &fapi.id, &auth_key, &mut device, None).await;
    assert_eq!(
        query(&back, "iss").as_deref(),
        Some(server.url.as_str()),
        "RFC 9207 iss"
    );
    let code = query(&back, "code").unwrap();
    let redeem = |proof: Option<String>, code: String| {
        let mut form: Vec<(&str, String)> = code_grant("", VERIFIER)
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect();
        form[1].1 = code;
        form.push(("client_id", fapi.id.clone()));
        let assertion = auth_key.assertion(&fapi.id, &server.url, unix_now());
        form.extend(Server::assertion_fields(&assertion).map(|(k, v)| (k, v.to_owned())));
        let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut req = server.post("/token").form(&fields);
        if let Some(p) = proof {
            req = req.dpop(&p);
        }
        req.send()
    };
    let without = redeem(None, code.clone()).await;
    assert_eq!(
        (without.status, without.error()),
        (400, Some("invalid_dpop_proof")),
        "{}",
        without.text
    );

    let (back, cookie) = fapi_code(&server, &fapi.id, &auth_key, &mut device, cookie).await;
    let code = query(&back, "code").unwrap();
    let nonce = server.dpop_nonce(&dpop).await;
    let proof = dpop.proof(Proof {
        htm: "POST",
        htu: &token_url,
        iat: unix_now(),
        nonce: Some(&nonce),
        access_token: None,
    });
    let reply = redeem(Some(proof), code).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["token_type"], "DPoP");
    let tokens = reply.tokens();
    assert_eq!(jwt_part(&tokens.access, 0)["alg"], "ES256");
    assert_eq!(jwt_part(tokens.id_token(), 0)["alg"], "ES256");
    assert_eq!(
        server.userinfo_dpop(&dpop, &tokens.access).await.status,
        200
    );
    assert_eq!(server.userinfo(&tokens.access).await.status, 401);

    // Refresh: DPoP required, and no rotation (FAPI 2.0 §5.3.2.1): the same refresh token
    // works again and no new one is handed out.
    for _ in 0..2 {
        let assertion = auth_key.assertion(&fapi.id, &server.url, unix_now());
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token()),
        ];
        form.extend(Server::assertion_fields(&assertion));
        let proof = dpop.proof(Proof {
            htm: "POST",
            htu: &token_url,
            iat: unix_now(),
            nonce: Some(&nonce),
            access_token: None,
        });
        let refreshed = server.post("/token").form(&form).dpop(&proof).send().await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.text);
        assert_eq!(refreshed.json()["token_type"], "DPoP");
        assert!(
            refreshed.json().get("refresh_token").is_none(),
            "{}",
            refreshed.text
        );
    }

    // A client assertion whose aud is not the issuer (here the PAR endpoint's URL).
    let wrong_aud = auth_key.assertion(&fapi.id, &server.at("/par"), unix_now());
    let mut form = vec![
        ("response_type", "code"),
        ("client_id", fapi.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    form.extend(Server::assertion_fields(&wrong_aud));
    let refused = server.post("/par").form(&form).send().await;
    assert_eq!(
        (refused.status, refused.error()),
        (401, Some("invalid_client")),
        "{}",
        refused.text
    );

    // A code redeemed after its 60 seconds.
    let (back, _) = fapi_code(&server, &fapi.id, &auth_key, &mut device, cookie).await;
    let code = query(&back, "code").unwrap();
    advance(&server, 61).await;
    let nonce = server.dpop_nonce_at(&dpop, 61).await;
    let proof = dpop.proof(Proof {
        htm: "POST",
        htu: &token_url,
        iat: unix_now() + 61,
        nonce: Some(&nonce),
        access_token: None,
    });
    let assertion_time_shifted = redeem_late(&server, &fapi.id, &auth_key, &code, &proof).await;
    assert_eq!(
        (
            assertion_time_shifted.status,
            assertion_time_shifted.error()
        ),
        (400, Some("invalid_grant")),
        "{}",
        assertion_time_shifted.text
    );
}

/// A code for the `fapi2` client: PAR with its assertion, then the browser's way.
async fn fapi_code(
    server: &Server,
    client_id: &str,
    auth_key: &ClientKey,
    device: &mut crate::driver::Device,
    cookie: Option<String>,
) -> (String, Option<String>) {
    let assertion = auth_key.assertion(client_id, &server.url, unix_now());
    let mut form = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    form.extend(Server::assertion_fields(&assertion));
    let pushed = server.post("/par").form(&form).send().await;
    assert_eq!(pushed.status, 201, "{}", pushed.text);
    let uri = pushed.json()["request_uri"].as_str().unwrap().to_owned();
    server
        .authorize(
            &authorize_by_reference(server, client_id, &uri),
            device,
            cookie,
            "allow",
        )
        .await
}

/// Redeems `code` with a proof and an assertion made `61` seconds in the server's future.
async fn redeem_late(
    server: &Server,
    client_id: &str,
    auth_key: &ClientKey,
    code: &str,
    proof: &str,
) -> crate::driver::Reply {
    let assertion = auth_key.assertion(client_id, &server.url, unix_now() + 61);
    let mut form = code_grant(code, VERIFIER).to_vec();
    form.push(("client_id", client_id));
    form.extend(Server::assertion_fields(&assertion));
    server.post("/token").form(&form).dpop(proof).send().await
}

/// Sealing with a DPoP-bound `client_credentials` token: a client registered with
/// `dpop_bound_access_tokens` gets no token without a proof, and its token seals only with a
/// proof of its key for that very request.
#[tokio::test]
async fn a_dpop_bound_seal_token_seals_only_with_its_key() {
    let data = tempdir();
    let server = plain(&data);
    let client = server
        .register_client(json!({"name": "Sealing office", "redirect_uris": [],
            "grant_types": ["client_credentials"], "scope": "seal", "dpop_bound_access_tokens": true}))
        .await;
    server.create_seal(&client.id, "Sealing Office").await;
    let refused = server.client_credentials(client.auth()).await;
    assert_eq!(
        (refused.status, refused.error()),
        (400, Some("invalid_dpop_proof"))
    );

    let key = ClientKey::new();
    let nonce = server.dpop_nonce(&key).await;
    let token_url = server.at("/token");
    let proof = key.proof(Proof {
        htm: "POST",
        htu: &token_url,
        iat: unix_now(),
        nonce: Some(&nonce),
        access_token: None,
    });
    let reply = server
        .token_request(client.auth(), &[("grant_type", "client_credentials")])
        .dpop(&proof)
        .send()
        .await;
    assert_eq!(reply.json()["token_type"], "DPoP", "{}", reply.text);
    let token = reply.tokens().access;

    let body =
        json!({"documents": [crate::driver::seal::document("a.pdf", b"a")], "format": "cades"});
    let bearer = server
        .post_seal_sign(Some(&format!("Bearer {token}")), &body)
        .await;
    assert_eq!(bearer.status, 401, "{}", bearer.text);
    let seal_url = server.at("/seal/v1/sign");
    let sealing = Proof {
        htm: "POST",
        htu: &seal_url,
        iat: unix_now(),
        nonce: None,
        access_token: Some(&token),
    };
    let thief = ClientKey::new();
    let stolen = server
        .with_dpop(server.post("/seal/v1/sign"), &token, &thief.proof(sealing))
        .json(&body)
        .send()
        .await;
    assert_eq!(
        (stolen.status, stolen.error()),
        (401, Some("invalid_token"))
    );
    let sealed = server
        .with_dpop(server.post("/seal/v1/sign"), &token, &key.proof(sealing))
        .json(&body)
        .send()
        .await;
    assert_eq!(sealed.status, 200, "{}", sealed.text);
}

/// Authorization codes bound to a DPoP key (RFC 9449 §10): by the proof sent with the pushed
/// request, or by `dpop_jkt`; only a proof by that key redeems the code.
#[tokio::test]
async fn a_code_bound_to_a_dpop_key_is_redeemed_only_with_it() {
    let data = tempdir();
    let server = plain(&data);
    let web = server.web_client().await;
    let (id, secret) = (web.id.as_str(), web.secret.as_deref().unwrap());
    let (_, mut device) = server.citizen_with_passkey("DPOP-0003").await;
    let key = ClientKey::new();
    let thief = ClientKey::new();
    let nonce = server.dpop_nonce(&key).await;
    let (par_url, token_url) = (server.at("/par"), server.at("/token"));
    fn at<'a>(url: &'a str, nonce: Option<&'a str>) -> Proof<'a> {
        Proof {
            htm: "POST",
            htu: url,
            iat: unix_now(),
            nonce,
            access_token: None,
        }
    }
    let redeem = |code: String, by: Option<&ClientKey>| {
        let proof = by.map(|k| k.proof(at(&token_url, Some(&nonce))));
        let server = &server;
        async move {
            let mut req = server.token_request((id, secret), &code_grant(&code, VERIFIER));
            if let Some(p) = proof {
                req = req.dpop(&p);
            }
            req.send().await
        }
    };
    // Bound by the proof sent with the push.
    let mut cookie = None;
    for (by, expected) in [(Some(&thief), 400), (None, 400), (Some(&key), 200)] {
        let form = [
            ("response_type", "code"),
            ("client_id", id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        let pushed = server
            .post("/par")
            .basic(id, secret)
            .form(&form)
            .dpop(&key.proof(at(&par_url, None)))
            .send()
            .await;
        assert_eq!(pushed.status, 201, "{}", pushed.text);
        let uri = pushed.json()["request_uri"].as_str().unwrap().to_owned();
        let (back, c) = server
            .authorize(
                &authorize_by_reference(&server, id, &uri),
                &mut device,
                cookie,
                "allow",
            )
            .await;
        cookie = c;
        let reply = redeem(query(&back, "code").unwrap(), by).await;
        assert_eq!(reply.status, expected, "{}", reply.text);
        if expected == 400 {
            assert_eq!(reply.error(), Some("invalid_grant"));
        } else {
            assert_eq!(
                jwt_part(&reply.tokens().access, 1)["cnf"]["jkt"],
                key.thumbprint()
            );
        }
    }
    // dpop_jkt that names another key than the push's proof.
    let other = thief.thumbprint();
    let mismatched = {
        server
            .post("/par")
            .basic(id, secret)
            .form(&[
                ("response_type", "code"),
                ("client_id", id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
                ("dpop_jkt", &other),
            ])
            .dpop(&key.proof(at(&par_url, None)))
            .send()
            .await
    };
    assert_eq!(
        (mismatched.status, mismatched.error()),
        (400, Some("invalid_dpop_proof"))
    );
    // Bound by dpop_jkt on the front channel.
    let url = server.auth_url(id, &format!("&dpop_jkt={}", key.thumbprint()));
    let (back, cookie) = server.authorize(&url, &mut device, cookie, "allow").await;
    let stolen = redeem(query(&back, "code").unwrap(), Some(&thief)).await;
    assert_eq!(
        (stolen.status, stolen.error()),
        (400, Some("invalid_grant"))
    );
    let url = server.auth_url(id, &format!("&dpop_jkt={}", key.thumbprint()));
    let (back, cookie) = server.authorize(&url, &mut device, cookie, "allow").await;
    assert_eq!(
        redeem(query(&back, "code").unwrap(), Some(&key))
            .await
            .status,
        200
    );
    let bad = server.auth_url(id, "&dpop_jkt=short");
    let (back, _) = server.authorize(&bad, &mut device, cookie, "allow").await;
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("invalid_request"),
        "{back}"
    );
}
