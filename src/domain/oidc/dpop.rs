//! DPoP (RFC 9449) rules: what a proof must say for the request it comes with (`htm`, `htu`,
//! `iat` within [`PROOF_WINDOW`], `ath` for an access token, a server nonce where one is
//! required), each proof used once, and the server nonces themselves.
//!
//! Nonces are stateless, so every process of a deployment accepts every other's: a nonce is
//! a time slot and a keyed hash of it, good for the slot it was made in and the next one.
//! A proof's `jti` is spent through the store (`Store::spend_dpop_proof`: a record on a
//! shared database, memory in the one process of an embedded store), kept until the proof
//! could no longer be accepted anyway, so a replay is refused by every process.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::{Provider, sha256};
use crate::crypto::dpop;
use crate::domain::DomainError;
use crate::domain::clients::Client;
use crate::store::replay::Spend;

/// How far a proof's `iat` may be from now, either way.
pub const PROOF_WINDOW: Duration = Duration::seconds(60);
/// The length of a nonce's time slot; a nonce is accepted in its slot and the next.
pub const NONCE_PERIOD: i64 = 300;
/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// Whether the endpoint insists on a server nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceRule {
    /// Every proof must carry a current nonce (the token and PAR endpoints).
    Required,
    /// A nonce is not needed; one that is sent must be current.
    IfSent,
}

/// What the request a proof comes with looks like.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request's URL as the client sees it (issuer + path), without query.
    pub url: &'a str,
    /// The access token the request presents (resource requests), whose hash `ath` must be.
    pub access_token: Option<&'a str>,
    /// Whether a nonce is needed.
    pub nonce: NonceRule,
}

/// Why a proof is refused.
#[derive(Debug, thiserror::Error)]
pub enum DpopError {
    /// `invalid_dpop_proof`: the reason is for the client and the log.
    #[error("invalid DPoP proof: {0}")]
    Invalid(String),
    /// `use_dpop_nonce`: retry with the nonce the answer carries.
    #[error("a current DPoP nonce is required")]
    UseNonce,
    /// Storage failed while spending the proof.
    #[error(transparent)]
    Internal(#[from] DomainError),
}

impl Provider<'_> {
    /// The nonce to hand out now (the `DPoP-Nonce` header).
    pub fn dpop_nonce(&self, now: OffsetDateTime) -> String {
        let slot = now.unix_timestamp().div_euclid(NONCE_PERIOD);
        self.nonce_for(slot)
    }

    fn nonce_for(&self, slot: i64) -> String {
        let mut raw = slot.to_be_bytes().to_vec();
        let mac = self.keys.hashes.keyed_hash("dpop-nonce", &raw);
        raw.extend_from_slice(mac.get(..16).unwrap_or_default());
        URL_SAFE_NO_PAD.encode(raw)
    }

    fn nonce_current(&self, nonce: &str, now: OffsetDateTime) -> bool {
        let slot = now.unix_timestamp().div_euclid(NONCE_PERIOD);
        [slot, slot - 1]
            .iter()
            .any(|s| bool::from(self.nonce_for(*s).as_bytes().ct_eq(nonce.as_bytes())))
    }

    /// Checks `proof` for the request `expected` describes and spends its `jti`. Returns
    /// the thumbprint of the key it proves (what tokens are bound to).
    ///
    /// # Errors
    /// [`DpopError`].
    pub fn check_dpop(
        &self,
        proof: &str,
        expected: &Expected<'_>,
        now: OffsetDateTime,
    ) -> Result<String, DpopError> {
        let invalid = |why: &str| DpopError::Invalid(why.to_owned());
        let p = dpop::verify(proof).map_err(DpopError::Invalid)?;
        if p.jti.is_empty() || p.jti.len() > MAX_JTI_LEN {
            return Err(invalid("jti must be 1 to 256 characters"));
        }
        if p.htm != expected.method {
            return Err(invalid("htm does not match the request method"));
        }
        if !same_target(&p.htu, expected.url) {
            return Err(invalid("htu does not match the request URL"));
        }
        let age = now.unix_timestamp().saturating_sub(p.iat);
        if age.unsigned_abs() > PROOF_WINDOW.whole_seconds().unsigned_abs() {
            return Err(invalid("iat is not within 60 seconds of now"));
        }
        match (expected.access_token, p.ath.as_deref()) {
            (Some(token), Some(ath)) if ath == dpop::ath(token) => {}
            (Some(_), Some(_)) => return Err(invalid("ath does not match the access token")),
            (Some(_), None) => return Err(invalid("ath is required with an access token")),
            (None, _) => {}
        }
        match (expected.nonce, p.nonce.as_deref()) {
            (_, Some(n)) if self.nonce_current(n, now) => {}
            (NonceRule::IfSent, None) => {}
            (_, Some(_) | None) => return Err(DpopError::UseNonce),
        }
        let mut spent = p.jkt.clone().into_bytes();
        spent.push(0);
        spent.extend_from_slice(p.jti.as_bytes());
        let key = sha256(&spent);
        let keep_until = OffsetDateTime::from_unix_timestamp(p.iat)
            .map_or(now, |iat| iat + PROOF_WINDOW)
            .max(now);
        match self.store.spend_dpop_proof(&key, p.iat, keep_until, now) {
            Ok(Spend::Spent) => Ok(p.jkt),
            Ok(Spend::Replayed) => Err(invalid("proof replayed (jti already used)")),
            Ok(Spend::TooOld) => Err(invalid(
                "proof made before the service (re)started: make a new one",
            )),
            Err(e) => Err(DpopError::Internal(e.into())),
        }
    }
}

impl Provider<'_> {
    /// The key a token request binds its tokens to: the proof's, checked for `url` with a
    /// nonce required; none without a proof, which a client registered for DPoP-bound
    /// tokens (or FAPI 2.0) may not omit.
    ///
    /// # Errors
    /// [`DpopError`].
    pub fn token_binding(
        &self,
        client: &Client,
        proof: Option<&str>,
        url: &str,
        now: OffsetDateTime,
    ) -> Result<Option<String>, DpopError> {
        let Some(proof) = proof else {
            if client.security.dpop_bound {
                return Err(DpopError::Invalid(
                    "this client must send a DPoP proof (dpop_bound_access_tokens)".into(),
                ));
            }
            return Ok(None);
        };
        let expected = Expected {
            method: "POST",
            url,
            access_token: None,
            nonce: NonceRule::Required,
        };
        self.check_dpop(proof, &expected, now).map(Some)
    }
}

/// Whether a proof's `htu` names `url` (RFC 9449 §4.3: without query and fragment, and
/// compared after syntax-based normalisation: scheme and host case, default port).
fn same_target(htu: &str, url: &str) -> bool {
    let parse = |s: &str| {
        url::Url::parse(s).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u
        })
    };
    matches!((parse(htu), parse(url)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_is_compared_without_query_and_after_normalisation() {
        let url = "https://id.example/token";
        for same in [
            "https://id.example/token",
            "HTTPS://ID.example:443/token",
            "https://id.example/token?x=1#f",
        ] {
            assert!(same_target(same, url), "{same}");
        }
        for other in [
            "https://id.example/token/",
            "http://id.example/token",
            "https://id.example:8443/token",
            "https://evil.example/token",
            "/token",
            "",
        ] {
            assert!(!same_target(other, url), "{other}");
        }
    }
}
