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
pub mod backchannel;
pub mod dpop;
pub mod grants;
pub mod liveness;
pub mod mint;
pub mod model;
pub mod pushed;
pub mod verify;

#[cfg(test)]
mod grant_tests;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::Duration;

use super::Rng;
use crate::crypto::KeySet;
use crate::store::Store;

/// eIDAS level "low": a passkey without user verification. Never reached today (every
/// ceremony requires user verification and webauthn-rs refuses an assertion without it), so
/// not advertised; it exists so that such a login could never be labelled higher.
pub const ACR_LOW: &str = "http://eidas.europa.eu/LoA/low";
/// eIDAS level "substantial": a passkey login with user verification.
pub const ACR_SUBSTANTIAL: &str = "http://eidas.europa.eu/LoA/substantial";
/// eIDAS level "high": the same with a verified hardware key (attestation chained to a root
/// the operator trusts, device-bound), on an account enrolled by a registration officer.
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

/// The names of the claims `scopes` release (what an audit entry says a client received;
/// never their values).
pub fn claims_released(scopes: &[String]) -> Vec<&'static str> {
    SCOPES
        .iter()
        .filter(|(scope, _)| scopes.iter().any(|s| s == scope))
        .flat_map(|(_, claims)| claims.iter().copied())
        .collect()
}

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

/// The `sid` a client sees for a browser session: a keyed hash of the session and the
/// client, so that two clients (of different sectors, with different pairwise subjects)
/// cannot join their subjects through a shared session id. Stable for one session and
/// client, so logout hints can be matched against the current session.
pub fn session_id(keys: &KeySet, session_hash: &[u8; 32], client_id: &str) -> String {
    let mut input = session_hash.to_vec();
    input.extend_from_slice(client_id.as_bytes());
    URL_SAFE_NO_PAD.encode(keys.hashes.keyed_hash("session-id", &input))
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

/// Assurance of a login. Every citizen is enrolled by a registration officer (identity
/// proofing in person); on top of that, "high" needs both user verification and a verified
/// hardware key ([`crate::domain::attestation`]) — a UV flag alone is only the
/// authenticator's word, and an unattested or self-attested key could be software anywhere.
/// User verification with any other passkey is "substantial"; without it "low".
pub fn acr_for(user_verified: bool, hardware_attested: bool) -> &'static str {
    match (user_verified, hardware_attested) {
        (true, true) => ACR_HIGH,
        (true, false) => ACR_SUBSTANTIAL,
        (false, _) => ACR_LOW,
    }
}

/// Rank of an eIDAS level (higher is stronger); `None` for values we do not know.
fn acr_rank(acr: &str) -> Option<u8> {
    match acr {
        ACR_LOW => Some(1),
        ACR_SUBSTANTIAL => Some(2),
        ACR_HIGH => Some(3),
        _ => None,
    }
}

/// Whether a login at `reached` satisfies a requested level (the same or a lower eIDAS level).
pub fn acr_satisfies(reached: &str, requested: &str) -> bool {
    match (acr_rank(reached), acr_rank(requested)) {
        (Some(r), Some(q)) => r >= q,
        _ => false,
    }
}

/// RFC 8176 methods: `hwk` only for a verified hardware key (its attestation chained to a
/// root the operator trusts, and not backup-eligible), every other passkey is `swk`; user
/// verification adds `user` and, being a second factor on top of possession, `mfa`.
pub fn amr_for(user_verified: bool, hardware_attested: bool) -> Vec<String> {
    let mut amr = vec![if hardware_attested { "hwk" } else { "swk" }.to_owned()];
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
    fn high_needs_user_verification_and_a_verified_hardware_key() {
        assert_eq!(acr_for(true, true), ACR_HIGH);
        assert_eq!(acr_for(true, false), ACR_SUBSTANTIAL);
        assert_eq!(acr_for(false, true), ACR_LOW);
        assert_eq!(acr_for(false, false), ACR_LOW);
        assert_eq!(amr_for(true, true), ["hwk", "user", "mfa"]);
        assert_eq!(amr_for(true, false), ["swk", "user", "mfa"]);
        assert_eq!(amr_for(false, false), ["swk"]);
    }

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
        assert!(acr_satisfies(ACR_HIGH, ACR_HIGH));
        assert!(acr_satisfies(ACR_SUBSTANTIAL, ACR_LOW));
        assert!(!acr_satisfies(ACR_SUBSTANTIAL, ACR_HIGH));
        assert!(!acr_satisfies(ACR_LOW, ACR_SUBSTANTIAL));
        assert!(!acr_satisfies(ACR_HIGH, "urn:other"));
        assert!(!acr_satisfies("urn:other", "urn:other"));
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
        // Order is kept and repeats drop out (a set does the de-duplication, so the work is
        // linear; speed is not asserted here, the caps above are what bound the input).
        assert_eq!(parse_scopes("b a b c a"), ["b", "a", "c"]);
    }
}
