//! Throttling never locks citizens out (issue 9 item 4): failure buckets are per purpose
//! and charged by failures only, successful ceremonies are bounded by their own larger
//! buckets, and forwarding headers choose the bucket only when a trusted proxy sends them.

use crate::driver::{Opts, Reply, Server, plain, start, tempdir};

/// A token request with no client credentials at all: `invalid_client`, charged to the
/// client-authentication failure bucket of the address it is counted as.
async fn bad_token_request(server: &Server, forwarded: Option<(&str, &str)>) -> Reply {
    let mut req = server
        .post("/token")
        .form(&[("grant_type", "client_credentials")]);
    if let Some((name, value)) = forwarded {
        req = req.header(name, value);
    }
    req.send().await
}

/// A small failure budget (3 in a burst, then one a minute) so tests run out quickly.
fn three_failures() -> Opts {
    Opts::plain().with_args(["--throttle-burst", "3", "--throttle-per-minute", "1"])
}

#[tokio::test]
async fn bad_token_requests_do_not_affect_login_start() {
    let data = tempdir();
    let server = plain(&data);
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(bad_token_request(&server, None).await.status);
    }
    // The default budget: 30 failures, then 429.
    assert!(statuses[..30].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[30..].iter().all(|s| *s == 429), "{statuses:?}");
    let resp = server.start_login().await;
    assert_eq!(resp.status, 200, "{}", resp.text);
}

/// Stricter than one login a second for a minute: 60 in a row, as fast as they go, on the
/// default budget (30 failures in a burst, 30 a minute).
#[tokio::test]
async fn sixty_successful_logins_in_a_row_are_never_throttled() {
    let data = tempdir();
    let server = plain(&data);
    let (_, mut device) = server.citizen_with_passkey("THR-0001").await;
    for i in 0..60 {
        let resp = server.login(&mut device).await;
        assert_eq!(resp.status, 200, "login {i}: {}", resp.text);
    }
}

/// Failures are still counted: once refused logins have used the address's budget, no new
/// login ceremony starts there (429), while successful logins had cost nothing.
#[tokio::test]
async fn refused_logins_still_use_up_the_budget() {
    let data = tempdir();
    let server = start(&data, three_failures());
    let (_, mut device) = server.citizen_with_passkey("THR-0002").await;
    for _ in 0..5 {
        assert_eq!(server.login(&mut device).await.status, 200);
    }
    let (ceremony, credential) = server.assertion(&mut device).await;
    assert_eq!(
        server.finish_login(&ceremony, &credential).await.status,
        200
    );
    // The same ceremony again: refused (it was used), three times.
    for _ in 0..3 {
        let resp = server.finish_login(&ceremony, &credential).await;
        assert_eq!(resp.status, 400, "{}", resp.text);
    }
    let resp = server.start_login().await;
    assert_eq!(resp.status, 429, "{}", resp.text);
    assert!(resp.headers.contains_key("retry-after"));
}

/// Opening a valid enrolment link costs nothing, however often; wrong links are charged.
#[tokio::test]
async fn valid_enrolment_links_are_never_throttled() {
    let data = tempdir();
    let server = start(&data, three_failures());
    let citizen = server.register_citizen("THR-0003").await;
    for i in 0..10 {
        let resp = server.get(&citizen.enrolment_url).send().await;
        assert_eq!(resp.status, 200, "visit {i}");
    }
    for _ in 0..3 {
        assert_eq!(server.get("/enrol?code=wrong").send().await.status, 404);
    }
    assert_eq!(server.get("/enrol?code=wrong").send().await.status, 429);
}

/// Without trusted proxies, `X-Forwarded-For` and `Forwarded` are ignored: a client that
/// makes up a new address for every failure still spends its own address's bucket.
#[tokio::test]
async fn spoofed_forwarding_headers_are_ignored_without_trusted_proxies() {
    let data = tempdir();
    let server = start(&data, three_failures());
    for i in 0..3 {
        let xff = format!("10.0.0.{i}");
        let resp = bad_token_request(&server, Some(("x-forwarded-for", &xff))).await;
        assert_eq!(resp.status, 401, "{}", resp.text);
    }
    for header in [
        ("x-forwarded-for", "10.9.9.9"),
        ("forwarded", "for=10.8.8.8"),
    ] {
        let resp = bad_token_request(&server, Some(header)).await;
        assert_eq!(resp.status, 429, "{header:?}: {}", resp.text);
    }
}

/// Behind a trusted proxy (here: the test itself, on 127.0.0.1) the forwarded address picks
/// the bucket: one client running out does not throttle another behind the same proxy.
#[tokio::test]
async fn a_trusted_proxy_forwards_the_client_address() {
    let data = tempdir();
    let server = start(
        &data,
        three_failures().with_args(["--trusted-proxies", "127.0.0.1/32"]),
    );
    let from = |ip: &'static str| Some(("x-forwarded-for", ip));
    for _ in 0..3 {
        assert_eq!(
            bad_token_request(&server, from("10.1.2.3")).await.status,
            401
        );
    }
    assert_eq!(
        bad_token_request(&server, from("10.1.2.3")).await.status,
        429
    );
    // Another client behind the same proxy, by either header.
    assert_eq!(
        bad_token_request(&server, from("10.9.9.9")).await.status,
        401
    );
    let rfc7239 = Some(("forwarded", "for=10.7.7.7;proto=https"));
    assert_eq!(bad_token_request(&server, rfc7239).await.status, 401);
    // A client behind the proxy prepending a made-up address is still itself: the proxy
    // appends the address it saw, and that right-most one counts.
    let prepended = from("10.9.9.9, 10.1.2.3");
    assert_eq!(bad_token_request(&server, prepended).await.status, 429);
    // The proxy's own requests (no header) are the proxy's bucket, not a client's.
    assert_eq!(bad_token_request(&server, None).await.status, 401);
}

#[tokio::test]
async fn a_malformed_trusted_proxy_is_refused_with_its_name() {
    let data = tempdir();
    let opts = Opts::plain().with_args(["--trusted-proxies", "127.0.0.1/32,10.0.0.1/8"]);
    let (status, err) = match Server::try_start(data.path(), opts) {
        Ok(_) => panic!("started with a malformed range"),
        Err(e) => e,
    };
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{err}");
    assert!(
        err.contains("invalid trusted_proxies: \"10.0.0.1/8\""),
        "{err}"
    );
}

/// `--client-rate-per-second 3`: a client gets three requests a second at `/token` (and
/// sealing), then 429 with `Retry-After`; another client is unaffected, and wrong secrets
/// sent under the first client's id do not spend its quota (it is taken only after
/// authentication), so no one can lock an agency out.
#[tokio::test]
async fn each_client_has_its_own_request_quota_that_only_it_can_spend() {
    let data = tempdir();
    let server = start(
        &data,
        Opts::plain().with_args(["--client-rate-per-second", "3"]),
    );
    let a = server.machine_client("Agency A", "seal").await;
    let b = server.machine_client("Agency B", "seal").await;
    let (a_id, a_secret) = a.auth();
    for _ in 0..10 {
        let wrong = server
            .token(
                (a_id, "not-the-secret"),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(wrong.status, 401, "{}", wrong.text);
    }
    let answers: Vec<u16> = statuses_in_a_row(&server, (a_id, a_secret), 5).await;
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        3,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 429).count(),
        2,
        "{answers:?}"
    );
    let over = server.client_credentials((a_id, a_secret)).await;
    assert_eq!(over.status, 429, "{}", over.text);
    assert_eq!(over.json()["error"], "temporarily_unavailable");
    assert!(over.header("retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(
        server.client_credentials(b.auth()).await.status,
        200,
        "per client"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        server.client_credentials((a_id, a_secret)).await.status,
        200,
        "the quota comes back"
    );
}

/// `n` token requests of one client, one after another.
async fn statuses_in_a_row(server: &Server, auth: (&str, &str), n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(server.client_credentials(auth).await.status);
    }
    statuses
}

/// What `spec/openapi.json` says a throttled answer is: an HTML page at `/authorize` and
/// `/enrol` (a browser shows it), problem+json at the admin API; `Retry-After` on each.
#[tokio::test]
async fn a_throttled_page_is_a_page_and_a_throttled_api_is_a_problem() {
    let data = tempdir();
    let server = start(&data, three_failures());
    let throttled = |r: &Reply, content_type: &str| {
        assert_eq!(r.status, 429, "{}", r.text);
        assert!(r.header("content-type").starts_with(content_type), "{r:?}");
        assert!(r.header("retry-after").parse::<u64>().is_ok(), "{r:?}");
    };
    let mut last = server.get("/authorize").send().await;
    for _ in 0..100 {
        if last.status == 429 {
            break;
        }
        last = server.get("/authorize").send().await;
    }
    throttled(&last, "text/html");
    for _ in 0..3 {
        assert_eq!(server.get("/enrol?code=wrong").send().await.status, 404);
    }
    throttled(&server.get("/enrol?code=wrong").send().await, "text/html");
    for _ in 0..3 {
        let r = server.get("/admin/v1/audit").bearer("wrong").send().await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = server.get("/admin/v1/audit").bearer("wrong").send().await;
    throttled(&r, "application/problem+json");
}
