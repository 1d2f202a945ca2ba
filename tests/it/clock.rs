//! Time as the tests move it: a debug build started with `CIVIS_TEST_CLOCK=1` takes its time
//! from a clock the admin API can move forward, so records expire without waiting and
//! without editing the data directory. Without the variable the route does not exist.

use serde_json::json;

use crate::driver::{Opts, Server, plain, start, tempdir};

/// A server whose clock the test can move.
pub fn with_test_clock(data: &tempfile::TempDir) -> Server {
    start(data, Opts::plain().with_env("CIVIS_TEST_CLOCK", "1"))
}

/// Moves the server's clock forward.
pub async fn advance(server: &Server, seconds: i64) {
    let reply = server
        .admin_post(
            "/admin/v1/test/clock",
            &json!({ "advance_seconds": seconds }),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
}

#[tokio::test]
async fn the_clock_cannot_be_moved_unless_the_test_clock_is_enabled() {
    let data = tempdir();
    let server = plain(&data);
    let reply = server
        .admin_post("/admin/v1/test/clock", &json!({ "advance_seconds": 3600 }))
        .await;
    assert_eq!(reply.status, 404);
}

/// An enrolment code expires when the clock passes its `expires_at`, and the sweeper then
/// removes its record (a bounded batch per pass, every 10 s).
#[tokio::test]
async fn expired_records_stop_working_and_the_sweeper_removes_them() {
    let data = tempdir();
    let server = with_test_clock(&data);
    let citizen = server.register_citizen("CLOCK-001").await;
    let link = format!("/enrol?code={}", citizen.enrolment_code);
    assert_eq!(server.get(&link).send().await.status, 200);
    advance(&server, 73 * 3600).await;
    assert_eq!(server.get(&link).send().await.status, 404);
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
