//! Issue 14, item 4, at the connection: slow and idle clients are disconnected, oversized
//! request heads are refused, and every answer carries the security headers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::driver::{plain, tempdir, tls};
use crate::support::{authority, status_line};

/// How long until the server closes `stream`, while `drip` is sent every two seconds
/// (nothing when empty); gives up after 45 s.
fn closed_after(mut stream: TcpStream, first: &[u8], drip: &[u8]) -> Option<Duration> {
    let start = Instant::now();
    stream.write_all(first).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 1024];
    while start.elapsed() < Duration::from_secs(45) {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            // An answer (the 408 hyper may send) followed by the close.
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(start.elapsed()),
        }
        if !drip.is_empty() && stream.write_all(drip).is_err() {
            return Some(start.elapsed());
        }
    }
    None
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_within_30_seconds() {
    let data = tempdir();
    let server = plain(&data);
    let addr = authority(&server.url);
    let (slow, idle, kept) = crate::support::outside_runtime(|| {
        std::thread::scope(|s| {
            // Slowloris: a request head that never ends, one header every two seconds.
            let slow = s.spawn(|| {
                let stream = TcpStream::connect(&addr).unwrap();
                closed_after(
                    stream,
                    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n",
                    b"X-Slow: 1\r\n",
                )
            });
            // A connection opened and never used.
            let idle = s.spawn(|| closed_after(TcpStream::connect(&addr).unwrap(), b"", b""));
            // A keep-alive connection left idle after one complete request.
            let kept = s.spawn(|| {
                closed_after(
                    TcpStream::connect(&addr).unwrap(),
                    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
                    b"",
                )
            });
            (
                slow.join().unwrap(),
                idle.join().unwrap(),
                kept.join().unwrap(),
            )
        })
    });
    for (what, closed) in [("slowloris", slow), ("idle", idle), ("kept alive", kept)] {
        let closed = closed.unwrap_or_else(|| panic!("{what} connection still open after 45 s"));
        assert!(
            closed < Duration::from_secs(30),
            "{what}: closed after {closed:?}"
        );
    }
    // The server still answers.
    assert_eq!(server.get("/healthz").send().await.status, 200);
}

#[tokio::test]
async fn an_oversized_request_head_is_431() {
    let data = tempdir();
    let server = plain(&data);
    let addr = authority(&server.url);
    let long = "a".repeat(20 * 1024);
    let huge = "a".repeat(100 * 1024);
    let (header, url, fine, closed) = crate::support::outside_runtime(|| {
        (
            status_line(
                &addr,
                format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {long}\r\n\r\n").as_bytes(),
            ),
            status_line(
                &addr,
                format!("GET /healthz?{long} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            ),
            status_line(
                &addr,
                format!(
                    "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
                    &long[..8 * 1024]
                )
                .as_bytes(),
            ),
            // Past hyper's buffer the head is not even read: the connection is closed.
            status_line(
                &addr,
                format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {huge}\r\n\r\n").as_bytes(),
            ),
        )
    });
    assert_eq!(closed, None, "a 100 KiB head is not answered");
    for (what, status) in [("header", header), ("URL", url)] {
        assert_eq!(
            status.as_deref(),
            Some("HTTP/1.1 431 Request Header Fields Too Large"),
            "{what}"
        );
    }
    assert_eq!(
        fine.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "8 KiB of header is fine"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let data = tempdir();
    let server = plain(&data);
    let answers = [
        ("JSON", server.get("/healthz").send().await),
        ("page", server.get("/login").send().await),
        ("404", server.get("/no/such/thing").send().await),
        (
            "OAuth error",
            server
                .post("/token")
                .form(&[("grant_type", "x")])
                .send()
                .await,
        ),
        ("JWKS", server.get("/jwks").send().await),
    ];
    for (what, r) in &answers {
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(r.header("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(r.header("x-frame-options"), "DENY", "{what}");
        let csp = r.header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
        let hsts = r.headers.get("strict-transport-security");
        assert!(hsts.is_none(), "{what}: HSTS over plain HTTP");
    }
    // The page keeps its own, fuller policy: its script from this origin only.
    assert!(
        answers[1]
            .1
            .header("content-security-policy")
            .contains("script-src 'self'")
    );

    let data = tempdir();
    let server = tls(&data);
    let r = server.get("/healthz").send().await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("strict-transport-security"), "max-age=31536000");
}
