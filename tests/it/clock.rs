//! Time as the tests move it: a debug build started with `CIVIS_TEST_CLOCK=1` takes its time
//! from a clock the admin API can move forward, so records expire without waiting and
//! without editing the data directory. Without the variable the route does not exist.

use serde_json::json;

use crate::support::{Opts, Server, admin_token, http, register, tempdir};

/// A server whose clock the test can move.
pub fn with_test_clock(data: &tempfile::TempDir) -> Server {
    let mut opts = Opts::plain();
    opts.env.push(("CIVIS_TEST_CLOCK".into(), "1".into()));
    Server::start(data.path(), opts)
}

/// Moves the server's clock forward.
pub async fn advance(server: &Server, seconds: i64) {
    let resp = http()
        .post(server.at("/admin/v1/test/clock"))
        .bearer_auth(admin_token())
        .json(&json!({ "advance_seconds": seconds }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn the_clock_cannot_be_moved_unless_the_test_clock_is_enabled() {
    let data = tempdir();
    let server = Server::start(data.path(), Opts::plain());
    let resp = http()
        .post(server.at("/admin/v1/test/clock"))
        .bearer_auth(admin_token())
        .json(&json!({ "advance_seconds": 3600 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// An enrolment code expires when the clock passes its `expires_at`, and the sweeper then
/// removes its record (a bounded batch per pass, every 10 s).
#[tokio::test]
async fn expired_records_stop_working_and_the_sweeper_removes_them() {
    let data = tempdir();
    let server = with_test_clock(&data);
    let created = register(&server, "CLOCK-001").await;
    let link = format!(
        "/enrol?code={}",
        created["enrolment_code"].as_str().unwrap()
    );
    assert_eq!(
        http().get(server.at(&link)).send().await.unwrap().status(),
        200
    );
    advance(&server, 73 * 3600).await;
    assert_eq!(
        http().get(server.at(&link)).send().await.unwrap().status(),
        404
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !server.stderr().contains("expired records swept") {
        assert!(std::time::Instant::now() < deadline, "no sweep in 30 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(server.stop().0.success());
    let left = crate::support::outside_runtime(|| {
        let store = civis::store::Store::open_sled(data.path()).unwrap();
        let backend = store.backend().unwrap();
        backend
            .scan(civis::store::ENROLMENTS, b"", b"", 10)
            .unwrap()
            .len()
    });
    assert_eq!(left, 0, "the expired enrolment ticket was swept");
}
