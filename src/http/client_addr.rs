//! The client address that throttling counts: the TCP peer, or — only when the peer is a
//! configured trusted proxy (`--trusted-proxies`) — the address that proxy forwarded.
//!
//! Behind a TLS-terminating proxy every request comes from the proxy, so without this all
//! citizens would share one throttle bucket. Forwarding headers are written by whoever sent
//! the request, so they are believed only from a trusted peer, and then read from the right
//! (the hop nearest to us) leftwards, skipping addresses that are themselves trusted
//! proxies: the first address that is not one is the client. Anything left of it was
//! written by the client and could be made up. With no trusted proxies (the default) the
//! headers are ignored.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, header};

use super::error::ApiError;
use super::state::AppState;
use crate::config::IpRange;

/// The address a request is throttled as (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        client_addr(
            &parts.extensions,
            &parts.headers,
            &state.config.trusted_proxies,
        )
        .map(Self)
        .ok_or_else(|| ApiError::Unavailable("no peer address".into()))
    }
}

/// The client address of a request, from its connection info (present on every connection
/// the server accepts) and headers; `None` only when the connection info is missing.
pub fn client_addr(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted: &[IpRange],
) -> Option<IpAddr> {
    let peer = extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(resolve(peer, headers, trusted))
}

/// The client address given the TCP peer: the peer itself unless it is a trusted proxy;
/// then the right-most forwarded address that is not a trusted proxy. `Forwarded`
/// (RFC 7239) is read when present, else `X-Forwarded-For`. A forwarded value that is not
/// an address (`unknown`, an obfuscated `_name`, garbage) ends the walk at the last trusted
/// hop, which is then the address counted: conservative, never a client-chosen one.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut hops = forwarded_for(headers);
    if hops.is_empty() {
        hops = x_forwarded_for(headers);
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        match node_ip(hop) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// Every `for=` value of every `Forwarded` header, in order (RFC 7239 §4: elements are
/// separated by `,`, pairs by `;`, names are case-insensitive, values may be quoted).
fn forwarded_for(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for value in headers.get_all(header::FORWARDED) {
        let Ok(value) = value.to_str() else {
            // A header we cannot read: trust nothing forwarded beyond this proxy.
            return vec!["unreadable".into()];
        };
        for element in value.split(',') {
            for pair in element.split(';') {
                if let Some((name, v)) = pair.trim().split_once('=')
                    && name.trim().eq_ignore_ascii_case("for")
                {
                    out.push(v.trim().trim_matches('"').to_owned());
                }
            }
        }
    }
    out
}

/// Every entry of every `X-Forwarded-For` header, in order.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<String> {
    let mut out = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return vec!["unreadable".into()];
        };
        out.extend(value.split(',').map(|v| v.trim().to_owned()));
    }
    out
}

/// The address of a forwarded node: `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:443`.
fn node_ip(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return ip.parse().ok();
    }
    node.parse::<SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ranges(list: &[&str]) -> Vec<IpRange> {
        list.iter().map(|r| r.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_are_ignored_unless_the_peer_is_trusted() {
        let h = headers(&[
            ("x-forwarded-for", "10.9.9.9"),
            ("forwarded", "for=10.8.8.8"),
        ]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &[]), ip("127.0.0.1"));
        let trusted = ranges(&["192.0.2.0/24"]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = ranges(&["127.0.0.1/32", "10.0.0.0/8"]);
        // The client made up 6.6.6.6; our proxies (10.x) appended the real hops.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("198.51.100.7"));
        // Only trusted hops: the left-most of them.
        let h = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("10.0.0.3"));
        // No header from a trusted peer: the peer.
        assert_eq!(
            resolve(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn forwarded_is_preferred_and_parsed_per_rfc_7239() {
        let trusted = ranges(&["127.0.0.1"]);
        let h = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.43, For="[2001:db8:cafe::17]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(
            resolve(ip("127.0.0.1"), &h, &trusted),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[("forwarded", "proto=https;for=\"192.0.2.60:8080\"")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("192.0.2.60"));
        // Something that is not an address stops at the last trusted hop.
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("127.0.0.1"));
        let h = headers(&[("x-forwarded-for", "198.51.100.1, _hidden")]);
        assert_eq!(resolve(ip("127.0.0.1"), &h, &trusted), ip("127.0.0.1"));
    }
}
