//! Field rules of client registration: name, redirect URIs, scopes, grant types and the
//! `private_key_jwt` JWKS, each checked on its own and reported by field.

use std::collections::{BTreeSet, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{GrantType, KNOWN_SCOPES, MAX_JWKS_KEYS, MAX_NAME_CHARS, MAX_URI_LEN, MAX_URIS};
use crate::domain::FieldError;

/// Collects every invalid field of a registration.
#[derive(Default)]
pub(super) struct Errors(pub(super) Vec<FieldError>);

impl Errors {
    pub(super) fn add(&mut self, field: &'static str, detail: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            detail: detail.into(),
        });
    }

    pub(super) fn check<T>(
        &mut self,
        field: &'static str,
        r: std::result::Result<T, String>,
    ) -> Option<T> {
        r.map_err(|detail| self.add(field, detail)).ok()
    }
}

/// A display name: trimmed, 1–100 characters, no control characters.
pub(super) fn client_name(raw: &str) -> std::result::Result<String, String> {
    let name = raw.trim();
    let len = name.chars().count();
    if len == 0 {
        return Err("must not be empty".into());
    }
    if len > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_owned())
}

/// True for the hosts that may use plain `http` (RFC 8252 §7.3 loopback redirects).
fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => *ip == std::net::Ipv4Addr::LOCALHOST,
        url::Host::Ipv6(ip) => *ip == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// Checks one redirect (or post-logout redirect) URI: absolute, `https` (or `http` on a
/// loopback host), with a host, no user info, no fragment. Returns the URI's host (as
/// `url` normalises it: lower case, IPv6 in brackets); the URI itself is kept as sent,
/// because it is later compared as an exact string.
pub fn redirect_uri_host(raw: &str) -> std::result::Result<String, String> {
    if raw.len() > MAX_URI_LEN {
        return Err(format!("must be at most {MAX_URI_LEN} characters"));
    }
    if raw.trim() != raw || raw.is_empty() {
        return Err("must be an absolute URI without surrounding spaces".into());
    }
    // The URL parser drops tabs and line breaks and encodes spaces, but the URI is kept and
    // compared as registered, and sent back in `Location`: a CR/LF there would split headers.
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("is not an absolute URI ({e})"))?;
    let host = url
        .host()
        .ok_or_else(|| "must have a host name".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => {
            return Err(
                "must use https (plain http is allowed only for localhost, 127.0.0.1 and [::1])"
                    .into(),
            );
        }
        other => return Err(format!("must use https, not {other:?}")),
    }
    if raw.contains('#') || url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user information".into());
    }
    Ok(url.host_str().unwrap_or_default().to_owned())
}

/// Validates a list of URIs, reporting each bad entry; duplicates are dropped (order kept).
/// Returns the URIs and their hosts.
pub(super) fn uri_list(
    errors: &mut Errors,
    field: &'static str,
    raw: Vec<String>,
) -> (Vec<String>, BTreeSet<String>) {
    if raw.len() > MAX_URIS {
        errors.add(field, format!("must list at most {MAX_URIS} URIs"));
        return (Vec::new(), BTreeSet::new());
    }
    let mut uris = Vec::with_capacity(raw.len());
    let mut hosts = BTreeSet::new();
    for (i, uri) in raw.into_iter().enumerate() {
        match redirect_uri_host(&uri) {
            Ok(host) => {
                hosts.insert(host);
                if !uris.contains(&uri) {
                    uris.push(uri);
                }
            }
            Err(why) => errors.add(field, format!("entry {i} {uri:?} {why}")),
        }
    }
    (uris, hosts)
}

/// A space-separated scope string → the distinct known scopes, in the order given.
pub(super) fn scope_list(raw: &str) -> std::result::Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if !KNOWN_SCOPES.contains(&s) {
            unknown.push(s.to_owned());
        } else if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown scope {}; known scopes are: {}",
            unknown.join(", "),
            KNOWN_SCOPES.join(" ")
        ));
    }
    if out.is_empty() {
        return Err("must name at least one scope".into());
    }
    Ok(out)
}

/// Grant type names → the distinct grant types, in the order given.
pub(super) fn grant_list(raw: &[String]) -> std::result::Result<Vec<GrantType>, String> {
    let mut out = Vec::new();
    for name in raw {
        let g = GrantType::parse(name).ok_or_else(|| {
            format!(
                "unknown grant type {name:?}; supported: authorization_code, refresh_token, \
                 client_credentials"
            )
        })?;
        if !out.contains(&g) {
            out.push(g);
        }
    }
    if out.is_empty() {
        return Err("must name at least one grant type".into());
    }
    if out.contains(&GrantType::RefreshToken) && !out.contains(&GrantType::AuthorizationCode) {
        return Err("refresh_token is only issued with authorization_code".into());
    }
    Ok(out)
}

/// Decodes a base64url JWK coordinate of a P-256 key (32 bytes).
fn coordinate(v: Option<&serde_json::Value>) -> Option<&str> {
    let s = v?.as_str()?;
    let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
    (bytes.len() == 32).then_some(s)
}

/// Validates a JWKS for `private_key_jwt` and returns it normalised: only the public members
/// of the EC P-256 signing keys (`kty`, `crv`, `x`, `y`, and `kid`, `use`, `alg` when given).
/// Keys of other types are refused rather than silently dropped, so an operator is never
/// surprised by which key counts; private key material (`d`) is refused outright.
pub fn client_jwks(raw: &serde_json::Value) -> std::result::Result<serde_json::Value, String> {
    let keys = raw
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| "must be a JWK Set: {\"keys\": [...]}".to_string())?;
    if keys.is_empty() {
        return Err("must contain at least one EC P-256 key".into());
    }
    if keys.len() > MAX_JWKS_KEYS {
        return Err(format!("must contain at most {MAX_JWKS_KEYS} keys"));
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut kids = HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        let obj = key
            .as_object()
            .ok_or_else(|| format!("key {i} is not a JSON object"))?;
        if obj.contains_key("d") {
            return Err(format!(
                "key {i} contains private key material (\"d\"); register the public key only"
            ));
        }
        let str_member = |name: &str| obj.get(name).and_then(serde_json::Value::as_str);
        if str_member("kty") != Some("EC") || str_member("crv") != Some("P-256") {
            return Err(format!(
                "key {i} must be an EC P-256 key (\"kty\": \"EC\", \"crv\": \"P-256\")"
            ));
        }
        let (Some(x), Some(y)) = (coordinate(obj.get("x")), coordinate(obj.get("y"))) else {
            return Err(format!(
                "key {i} needs \"x\" and \"y\": base64url of 32 bytes each"
            ));
        };
        if let Some(u) = obj.get("use")
            && u.as_str() != Some("sig")
        {
            return Err(format!(
                "key {i} must have \"use\": \"sig\" if \"use\" is given"
            ));
        }
        if let Some(a) = obj.get("alg")
            && a.as_str() != Some("ES256")
        {
            return Err(format!(
                "key {i} must have \"alg\": \"ES256\" if \"alg\" is given"
            ));
        }
        let mut jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        match obj.get("kid") {
            None => {}
            Some(serde_json::Value::String(kid)) if !kid.is_empty() && kid.len() <= 256 => {
                if !kids.insert(kid.clone()) {
                    return Err(format!("kid {kid:?} is used by more than one key"));
                }
                jwk["kid"] = kid.clone().into();
            }
            Some(_) => return Err(format!("key {i} has a \"kid\" that is not a short string")),
        }
        for member in ["use", "alg"] {
            if let Some(v) = obj.get(member) {
                jwk[member] = v.clone();
            }
        }
        out.push(jwk);
    }
    Ok(serde_json::json!({ "keys": out }))
}
