//! Per-request observation: a request id (echoed as `x-request-id`), a tracing span that
//! every log line of the request inherits, the time limit, one log line per request, and
//! Prometheus metrics per route.
//!
//! The request id is always our own: unique, and safe wherever it is copied (logs, headers,
//! problem bodies, support tickets). A caller's `x-request-id` is never adopted — it could
//! collide with another request's or be chosen to confuse a log search — but when it is
//! short and of a safe charset it is logged beside ours as `client_request_id`, so the
//! caller's trace can still be followed into our logs.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument;

use super::error::ApiError;
use super::state::AppState;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served by this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// What a produced signature is counted by: `kind` (`seal`, `official`) and `format`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignatureLabels {
    kind: &'static str,
    format: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// The service's Prometheus registry and the HTTP metrics in it.
pub struct Metrics {
    registry: Registry,
    /// Successful passkey logins.
    pub logins: Counter,
    /// Token responses issued.
    pub tokens: Counter,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    signatures: Family<SignatureLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~8 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("civis");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route and method",
            latency.clone(),
        );
        let logins = Counter::default();
        registry.register("logins", "Successful passkey logins", logins.clone());
        let tokens = Counter::default();
        registry.register("tokens", "Token responses issued", tokens.clone());
        let signatures = Family::<SignatureLabels, Counter>::default();
        registry.register(
            "signatures",
            "Document signatures produced (and recorded), by kind and format",
            signatures.clone(),
        );
        Self {
            registry,
            logins,
            tokens,
            requests,
            latency,
            signatures,
        }
    }
}

impl Metrics {
    /// The registry in Prometheus/OpenMetrics text.
    ///
    /// # Errors
    /// Only if formatting into a `String` fails.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    /// Counts `n` signatures produced by a `kind` of key (`seal`, `official`) in `format`.
    pub fn signatures_produced(&self, kind: &'static str, format: &'static str, n: usize) {
        self.signatures
            .get_or_create(&SignatureLabels { kind, format })
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route: route.to_owned(),
            })
            .observe(seconds);
    }
}

/// A request id unique in this process and unpredictable across processes: a random
/// per-process prefix and a counter (no system call per request; it is not a secret).
fn next_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 4];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        u32::from_be_bytes(b)
    });
    format!(
        "{prefix:08x}{:016x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A caller's `x-request-id`, only if it is 1 to 64 characters of `[A-Za-z0-9._-]`
/// (harmless in a log line and a log search); otherwise it is dropped.
fn incoming_id(req: &Request) -> Option<String> {
    safe_client_id(req.headers().get("x-request-id")?.as_bytes())
}

fn safe_client_id(v: &[u8]) -> Option<String> {
    let ok = (1..=64).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| String::from_utf8_lossy(v).into_owned())
}

/// The middleware; see the module documentation.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = next_request_id();
    let client_id = incoming_id(&req);
    // Unmatched paths share one label so scanners cannot blow up the metric cardinality.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        client_request_id = tracing::field::Empty,
        %method,
        %route
    );
    if let Some(c) = &client_id {
        span.record("client_request_id", c.as_str());
    }
    let limit = state.config.request_timeout;
    let too_large = head_bytes(&req) > crate::app::MAX_HEAD_BYTES;
    let mut resp = REQUEST_ID
        .scope(
            id.clone(),
            async move {
                if too_large {
                    return ApiError::HeadTooLarge.into_response();
                }
                match tokio::time::timeout(limit, next.run(req)).await {
                    Ok(r) => r,
                    Err(_) => ApiError::Timeout.into_response(),
                }
            }
            .instrument(span.clone()),
        )
        .await;
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    state
        .metrics
        .observe(&method, &route, status, elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
    });
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-request-id", v);
    }
    // Nothing civis answers may be cached unless the handler says otherwise (the JWKS and
    // the static assets do): tokens, codes, personal data and forms with CSRF values all
    // pass here (RFC 6749 §5.1 asks for `no-store` and `Pragma: no-cache` on tokens). Done in
    // this one middleware every answer already passes, rather than in a layer of its own.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    secure_defaults(h, !state.config.plain_http);
    resp
}

/// The size of a request's head as sent: the request line and every header line.
fn head_bytes(req: &Request) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    req.headers().iter().fold(line, |n, (name, value)| {
        n + name.as_str().len() + value.len() + 4
    })
}

/// Headers every answer carries unless its handler set its own (pages set a fuller CSP):
/// nothing of ours may be framed, sniffed into another type, or leak its URL (enrolment
/// links carry codes) in a Referer; over TLS, browsers are told to stay on HTTPS.
fn secure_defaults(h: &mut axum::http::HeaderMap, tls: bool) {
    let defaults = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_safe_client_ids_are_kept() {
        assert_eq!(
            safe_client_id(b"trace-abc_1.2").as_deref(),
            Some("trace-abc_1.2")
        );
        for hostile in [
            &b"a\nb"[..],
            b"a\"b",
            b"a b",
            b"a}{\\n",
            "\u{e9}t\u{e9}".as_bytes(),
            b"",
            &[b'a'; 65],
        ] {
            assert_eq!(safe_client_id(hostile), None, "{hostile:?}");
        }
        assert_ne!(next_request_id(), next_request_id());
    }
}
