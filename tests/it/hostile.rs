//! Issue 14, item 5: the rows of SECURITY.md's bad-input catalogue that no other test sends.
//! Each test sends one kind of hostile input to every surface it applies to and checks the
//! precise refusal (status, error code or problem type), never a 5xx, never a redirect.

use serde_json::json;

use crate::driver::Server;
use crate::driver::dpop::ClientKey;
use crate::driver::{CHALLENGE, REDIRECT, Reply, enc, plain, tempdir};

fn problem(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(
        r.header("content-type"),
        "application/problem+json",
        "{}",
        r.text
    );
}

fn oauth_error(r: &Reply, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.json()["error"], error, "{}", r.text);
}

#[tokio::test]
async fn deeply_nested_json_is_a_4xx_wherever_json_is_read() {
    let data = tempdir();
    let server = plain(&data);
    // Under a key no endpoint knows (skipped, but still parsed) and in place of a field.
    let deep_object = format!("{}1{}", "{\"x\":".repeat(5000), "}".repeat(5000));
    let deep_array = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    for (path, admin) in [
        ("/admin/v1/citizens", true),
        ("/admin/v1/clients", true),
        ("/verify/v1", false),
        ("/login/finish", false),
    ] {
        for body in [
            // serde_json stops at depth 128: a syntax error, not a stack overflow.
            format!("{{\"unknown\": {deep_object}}}"),
            // A field given an array where it wants a value fails at its first bracket.
            format!("{{\"ceremony\": {deep_array}, \"given_name\": {deep_array}}}"),
        ] {
            let mut req = server
                .post(path)
                .header("content-type", "application/json")
                .body(body);
            if admin {
                req = req.admin();
            }
            let r = req.send().await;
            // 400 (the depth limit) or 422 (unknown fields are refused by some bodies
            // before the depth is reached): a precise problem either way.
            assert!(matches!(r.status, 400 | 422), "{path}: {}", r.text);
            assert_eq!(r.header("content-type"), "application/problem+json");
        }
    }
}

#[tokio::test]
async fn invalid_utf8_is_refused_in_json_forms_and_urls() {
    let data = tempdir();
    let server = plain(&data);
    let client = server.web_client().await;
    // JSON whose string holds the bytes FF FE.
    let r = crate::support::http()
        .post(server.at("/admin/v1/citizens"))
        .bearer_auth(crate::support::admin_token())
        .header("content-type", "application/json")
        .body(b"{\"given_name\":\"\xff\xfe\"}".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // A form whose value decodes to invalid UTF-8: decoded with replacement characters, it
    // names no scope there is, so the request fails on its own terms.
    let machine = server.machine_client("Machine", "seal").await;
    let r = server
        .token_request(machine.auth(), &[])
        .body("grant_type=client_credentials&scope=%FF%FE")
        .send()
        .await;
    oauth_error(&r, 400, "invalid_scope");
    // A query string at /authorize: a redirect URI with the byte FF matches none
    // registered, so an error page, no redirect anywhere.
    let r = server
        .get(&format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}%FF&scope=openid&state=s",
            client.id,
            enc(REDIRECT)
        ))
        .no_redirect()
        .send()
        .await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert!(r.headers.get("location").is_none(), "never redirected");
}

#[tokio::test]
async fn duplicate_oauth_parameters_are_invalid_requests() {
    let data = tempdir();
    let server = plain(&data);
    let client = server.web_client().await;
    let (id, secret) = client.auth();
    // /token: RFC 6749 §3.2 — parameters must not be included more than once.
    let r = server
        .token_request((id, secret), &[])
        .body("grant_type=client_credentials&grant_type=authorization_code")
        .send()
        .await;
    oauth_error(&r, 400, "invalid_request");
    // /par, authenticated the same way.
    let r = server
        .post("/par")
        .basic(id, secret)
        .body(format!(
            "response_type=code&client_id={id}&redirect_uri={}&scope=openid&scope=profile\
             &code_challenge={CHALLENGE}&code_challenge_method=S256",
            enc(REDIRECT)
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await;
    oauth_error(&r, 400, "invalid_request");
    // /authorize with redirect_uri twice: which one is meant cannot be known, so nothing
    // is redirected; the citizen sees an error page.
    let url = server.auth_url(
        id,
        &format!("&redirect_uri={}", enc("https://evil.example/")),
    );
    let r = server.get(&url).no_redirect().send().await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.headers.get("location").is_none());
    // /introspect.
    let r = server
        .post("/introspect")
        .basic(id, secret)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=a&token=b")
        .send()
        .await;
    oauth_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn redirect_uris_cannot_inject_headers_or_redirect_elsewhere() {
    let data = tempdir();
    let server = plain(&data);
    // Registration refuses URIs with control characters, fragments, other schemes.
    for bad in [
        "https://rp.example/cb\r\nSet-Cookie: a=b",
        "https://rp.example/cb#fragment",
        "javascript:alert(1)",
        "http://rp.example/cb",
        "https://rp.example/c b",
    ] {
        let r = server
            .post_client(&json!({"name": "Bad", "redirect_uris": [bad]}))
            .await;
        problem(&r, 422);
        assert!(r.text.contains("redirect_uris"), "{bad}: {}", r.text);
    }
    // At /authorize, a URI that differs from the registered one in any way (an injected
    // CRLF, another host, a suffix, a different case) is shown as a page, never followed.
    let client = server.web_client().await;
    for other in [
        format!("{REDIRECT}%0d%0aSet-Cookie:%20a=b"),
        enc("https://evil.example/cb"),
        enc(&format!("{REDIRECT}/../evil")),
        enc(&format!("{REDIRECT}?next=https://evil.example")),
        enc(&REDIRECT.to_uppercase()),
    ] {
        let url = format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={other}&scope=openid\
             &state=s&nonce=n&code_challenge={CHALLENGE}&code_challenge_method=S256",
            client.id
        );
        let r = server.get(&url).no_redirect().send().await;
        assert_eq!(r.status, 400, "{other}: {}", r.text);
        assert!(r.headers.get("location").is_none(), "{other}");
        assert!(r.headers.get("set-cookie").is_none(), "{other}");
    }
}

/// `client_credentials` authenticated by `assertion` alone.
async fn by_assertion(server: &Server, assertion: &str) -> Reply {
    let grant = [("grant_type", "client_credentials")];
    let form = [&grant[..], &Server::assertion_fields(assertion)[..]].concat();
    server.post("/token").form(&form).send().await
}

#[tokio::test]
async fn client_assertions_outside_the_clock_window_are_refused() {
    let data = tempdir();
    let server = plain(&data);
    let key = ClientKey::new();
    let mut jwk = key.jwk();
    jwk["kid"] = "k1".into();
    let client = server
        .register_client(json!({"name": "Skewed", "redirect_uris": [],
            "grant_types": ["client_credentials"], "scope": "seal",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [jwk]}}))
        .await;
    let token_url = server.at("/token");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // An hour ahead (a client clock far off, or a pre-made assertion), long expired.
    for iat in [now + 3600, now - 3600] {
        let assertion = key.assertion(&client.id, &token_url, iat);
        let r = by_assertion(&server, &assertion).await;
        oauth_error(&r, 401, "invalid_client");
    }
    // Within the window it works: the refusals above are about time only.
    let assertion = key.assertion(&client.id, &token_url, now);
    let r = by_assertion(&server, &assertion).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn undecodable_paths_and_repeated_query_parameters_are_problem_json() {
    let data = tempdir();
    let server = plain(&data);
    // Each was answered by the framework in plain text before this test.
    for path in [
        "/admin/v1/citizens/%FF",
        "/admin/v1/clients/%C0%AF",
        "/login?return_to=/a&return_to=/b",
        "/enrol?code=a&code=b",
        "/end_session?state=a&state=b",
        "/authorize/continue",
        "/sign/v1/requests/%FF",
    ] {
        let r = server.get(path).admin().send().await;
        problem(&r, 400);
    }
}

/// Elevation: a valid access token of ours (an agency's, with every scope it has) is not
/// the admin token; the admin API refuses it like any other wrong credential.
#[tokio::test]
async fn an_agency_access_token_is_not_an_admin_token() {
    let data = tempdir();
    let server = plain(&data);
    let machine = server.machine_client("Machine", "seal").await;
    let token = server
        .client_credentials(machine.auth())
        .await
        .tokens()
        .access;
    for (method, path) in [
        ("GET", "/admin/v1/audit"),
        ("POST", "/admin/v1/citizens"),
        ("POST", "/admin/v1/clients"),
    ] {
        let req = match method {
            "GET" => server.get(path),
            _ => server.post(path).json(&json!({})),
        };
        let r = req.bearer(&token).send().await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.text);
    }
}

/// A body over the limit (`--max-body-bytes`, 64 KiB by default) at an OAuth endpoint is an
/// OAuth error in JSON (`invalid_request`, 400, as RFC 6750 §3.1 and RFC 6749 §5.2 ask for a
/// malformed request), never axum's plain-text 413.
#[tokio::test]
async fn oversized_bodies_at_the_oauth_endpoints_are_oauth_errors() {
    let data = tempdir();
    let server = plain(&data);
    let client = server.web_client().await;
    let (id, secret) = client.auth();
    let huge = format!(
        "token=a&access_token=a&grant_type=x&pad={}",
        "a".repeat(70_000)
    );
    for path in ["/token", "/par", "/introspect", "/revoke", "/userinfo"] {
        let r = server
            .post(path)
            .basic(id, secret)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(huge.clone())
            .send()
            .await;
        assert_eq!(
            r.header("content-type"),
            "application/json",
            "{path}: {}",
            r.text
        );
        oauth_error(&r, 400, "invalid_request");
    }
    // At userinfo, the RFC 6750 challenge names the error.
    let r = server
        .post("/userinfo")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await;
    oauth_error(&r, 400, "invalid_request");
    assert_eq!(
        r.header("www-authenticate"),
        "Bearer error=\"invalid_request\""
    );
}
