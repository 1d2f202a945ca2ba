//! OpenID Provider rules: authorization requests, codes, grants and tokens, claims.
//!
//! - [`authorize`]: validating `/authorize`, deciding login/consent, issuing codes.
//! - [`grants`]: the token endpoint's grants (code, refresh, client credentials), each write
//!   one store transaction.
//! - [`mint`]: access and ID tokens and the token response.
//! - [`verify`]: verifying our access tokens, userinfo, introspection, revocation, logout
//!   hints.
//! - [`model`]: the entities (grants, codes, refresh tokens, consents, …).

pub mod authorize;
pub mod grants;
pub mod mint;
pub mod model;
pub mod verify;

#[cfg(test)]
mod grant_tests;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::Duration;

use super::Rng;
use crate::crypto::KeySet;
use crate::store::Store;

/// eIDAS level "substantial": a passkey login.
pub const ACR_SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
/// eIDAS level "high": a passkey with user verification on an officer-enrolled account.
pub const ACR_HIGH: &str = "http://eidas.europa.eu/LoA/high";
/// Authorization codes live this long.
pub const CODE_TTL: Duration = Duration::seconds(60);
/// Access and ID tokens live this long.
pub const TOKEN_TTL: Duration = Duration::minutes(5);
/// Refresh tokens expire this long after issue.
pub const REFRESH_TTL: Duration = Duration::days(30);
/// A pending authorization request waits this long for login and consent.
pub const PENDING_TTL: Duration = Duration::minutes(10);

/// Scopes civis knows, with the claims each releases.
pub const SCOPES: &[(&str, &[&str])] = &[
    ("openid", &["sub"]),
    ("profile", &["given_name", "family_name", "birthdate"]),
    ("email", &["email"]),
    ("national_id", &["national_id"]),
    ("sign", &[]),
    ("seal", &[]),
];

/// Everything the provider needs; borrowed from the application state.
pub struct Provider<'a> {
    /// Storage.
    pub store: &'a Store,
    /// Randomness for codes, ids and tokens.
    pub rng: &'a dyn Rng,
    /// Token key and keyed hashes.
    pub keys: &'a KeySet,
    /// Issuer URL.
    pub issuer: &'a str,
    /// Window in which a retried refresh token gets the same answer (default zero).
    pub refresh_grace: Duration,
}

pub use crate::crypto::digest::{s256, sha256};

/// A random opaque token (256 bits, base64url).
///
/// # Errors
/// Randomness failure.
pub fn opaque_token(rng: &dyn Rng) -> super::Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(super::random_bytes::<32>(rng)?))
}

/// Space-separated scope string → list without duplicates, in order. Linear: the set
/// remembers what was seen (input may come from anyone, through `/authorize`).
pub fn parse_scopes(s: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    s.split(' ')
        .filter(|x| !x.is_empty() && seen.insert(*x))
        .map(str::to_owned)
        .collect()
}

/// Longest space-separated list (`scope`, `prompt`, `acr_values`) an authorization request
/// may carry, in bytes, and most distinct values in it: far above any real request (six
/// scopes are known), so unauthenticated requests cannot make us parse, store or show more.
pub const MAX_LIST_BYTES: usize = 2048;
/// See [`MAX_LIST_BYTES`].
pub const MAX_LIST_VALUES: usize = 64;

/// [`parse_scopes`] within [`MAX_LIST_BYTES`] and [`MAX_LIST_VALUES`]; `None` beyond them.
pub fn parse_bounded_list(s: &str) -> Option<Vec<String>> {
    if s.len() > MAX_LIST_BYTES {
        return None;
    }
    Some(parse_scopes(s)).filter(|v| v.len() <= MAX_LIST_VALUES)
}

/// The subject identifier a client sees for a citizen: the citizen id, or for pairwise
/// clients a keyed hash of sector and id (stable per sector, unlinkable across sectors).
pub fn subject(keys: &KeySet, citizen_id: &str, pairwise_sector: Option<&str>) -> String {
    match pairwise_sector {
        None => citizen_id.to_owned(),
        Some(sector) => {
            let input = format!("{sector}\u{0}{citizen_id}");
            URL_SAFE_NO_PAD.encode(keys.hashes.keyed_hash("pairwise-subject", input.as_bytes()))
        }
    }
}

/// Identity claims released by `scopes` (never `sub`, which the caller sets).
pub fn identity_claims(
    citizen: &super::citizens::Citizen,
    scopes: &[String],
) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        m.insert("given_name".into(), citizen.given_name.clone().into());
        m.insert("family_name".into(), citizen.family_name.clone().into());
        m.insert("birthdate".into(), citizen.birthdate.to_string().into());
    }
    if has("email")
        && let Some(e) = &citizen.email
    {
        m.insert("email".into(), e.clone().into());
    }
    if has("national_id") {
        m.insert("national_id".into(), citizen.national_id.clone().into());
    }
    m
}

/// Assurance of a login: every citizen is enrolled by a registration officer, so a login with
/// user verification is "high"; without it "substantial".
pub fn acr_for(user_verified: bool) -> &'static str {
    if user_verified {
        ACR_HIGH
    } else {
        ACR_SUBSTANTIAL
    }
}

/// Whether a login at `reached` satisfies a requested level.
pub fn acr_satisfies(reached: &str, requested: &str) -> bool {
    requested == reached || (reached == ACR_HIGH && requested == ACR_SUBSTANTIAL)
}

/// RFC 8176 methods: a device-bound key is `hwk`, a synced one `swk`; user verification adds
/// `user` and, being a second factor on top of possession, `mfa`.
pub fn amr_for(user_verified: bool, backup_eligible: bool) -> Vec<String> {
    let mut amr = vec![if backup_eligible { "swk" } else { "hwk" }.to_owned()];
    if user_verified {
        amr.push("user".into());
        amr.push("mfa".into());
    }
    amr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256(b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn acr_ordering() {
        assert!(acr_satisfies(ACR_HIGH, ACR_SUBSTANTIAL));
        assert!(!acr_satisfies(ACR_SUBSTANTIAL, ACR_HIGH));
        assert!(!acr_satisfies(ACR_HIGH, "urn:other"));
        assert_eq!(
            parse_scopes("openid  profile openid"),
            ["openid", "profile"]
        );
    }

    #[test]
    fn lists_are_bounded() {
        let many: Vec<String> = (0..MAX_LIST_VALUES).map(|i| format!("s{i}")).collect();
        assert_eq!(
            parse_bounded_list(&many.join(" ")).map(|v| v.len()),
            Some(64)
        );
        let too_many = format!("{} extra", many.join(" "));
        assert_eq!(parse_bounded_list(&too_many), None);
        // Repeats count once, but the bytes still count.
        assert_eq!(
            parse_bounded_list(&"openid ".repeat(290)).map(|v| v.len()),
            Some(1)
        );
        assert_eq!(parse_bounded_list(&"openid ".repeat(300)), None);
        // Linear: 100 000 distinct values de-duplicate in milliseconds (the quadratic
        // version took 30 s here; 5 s leaves room for a loaded machine).
        let huge: Vec<String> = (0..100_000).map(|i| format!("s{i}")).collect();
        let started = std::time::Instant::now();
        assert_eq!(parse_scopes(&huge.join(" ")).len(), 100_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
