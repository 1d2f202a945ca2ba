//! The access token of a resource request (userinfo, signing, sealing): `Authorization:
//! Bearer` (RFC 6750) or `Authorization: DPoP` with its proof (RFC 9449 §7), verified the
//! same way for every resource. A DPoP-bound token is never accepted as a bearer token.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};

use super::error::BearerError;
use super::state::AppState;
use crate::domain::oidc::dpop::{DpopError, Expected, NonceRule};
use crate::domain::oidc::mint::AccessClaims;

/// A presented access token, before it is verified.
pub(super) struct Presented {
    token: String,
    /// `Some` for the `DPoP` scheme: the proof header (it may be missing, which is refused).
    dpop: Option<Option<String>>,
}

/// The single `DPoP` header of a request, if any (RFC 9449 §4.3: more than one, or one that
/// is not text, is refused with the reason).
pub(super) fn dpop_header(headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    let mut all = headers.get_all("dpop").iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err("send one DPoP header"),
        (Some(v), None) => v
            .to_str()
            .map(|p| Some(p.to_owned()))
            .map_err(|_| "the DPoP header is not a JWT"),
    }
}

impl Presented {
    /// The token as presented (compared with the admin token where that is accepted too).
    pub(super) fn token(&self) -> &str {
        &self.token
    }
}

/// The token of a resource request: `Authorization: Bearer`, `Authorization: DPoP` (with a
/// `DPoP` proof header), or for a POST the `access_token` form field (RFC 6750 §2.2, bearer
/// only) — never two of them.
pub(super) fn presented(
    headers: &HeaderMap,
    form: Option<&HashMap<String, String>>,
) -> Result<Presented, BearerError> {
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(scheme, t)| (scheme.to_ascii_lowercase(), t.trim().to_owned()))
        .filter(|(scheme, _)| scheme == "bearer" || scheme == "dpop");
    let form_token = form.and_then(|f| f.get("access_token").cloned());
    let proof = || {
        dpop_header(headers).map_err(|why| BearerError::Dpop {
            error: "invalid_dpop_proof",
            why: why.into(),
        })
    };
    match (header_token, form_token) {
        (Some(_), Some(_)) => Err(BearerError::Invalid("token sent twice".into())),
        (Some((scheme, token)), None) if !token.is_empty() => Ok(Presented {
            token,
            dpop: if scheme == "dpop" {
                Some(proof()?)
            } else {
                None
            },
        }),
        (None, Some(token)) if !token.is_empty() => Ok(Presented { token, dpop: None }),
        _ => Err(BearerError::Missing),
    }
}

/// Verifies a presented token for a request with `method` to `path` (on the blocking pool:
/// revocation is read and a proof's `jti` spent in the store). A bound token needs the
/// `DPoP` scheme and a proof by its key for this very request and token; an unbound one
/// must not claim the `DPoP` scheme.
pub(super) fn verify(
    state: &AppState,
    presented: &Presented,
    method: &str,
    path: &str,
) -> Result<AccessClaims, BearerError> {
    let prov = state.provider();
    let now = state.now();
    let claims = prov.verify_access_token(&presented.token, now)?;
    let dpop_refusal = |error: &'static str, why: &str| BearerError::Dpop {
        error,
        why: why.to_owned(),
    };
    match (&claims.cnf, &presented.dpop) {
        (None, None) => Ok(claims),
        (None, Some(_)) => Err(dpop_refusal(
            "invalid_token",
            "the access token is not DPoP-bound: present it as a Bearer token",
        )),
        (Some(_), None) => Err(dpop_refusal(
            "invalid_token",
            "the access token is DPoP-bound: present it with the DPoP scheme and a proof",
        )),
        (Some(_), Some(None)) => Err(dpop_refusal(
            "invalid_dpop_proof",
            "the DPoP scheme needs a DPoP proof header",
        )),
        (Some(cnf), Some(Some(proof))) => {
            let url = format!("{}{path}", state.issuer);
            let expected = Expected {
                method,
                url: &url,
                access_token: Some(&presented.token),
                nonce: NonceRule::IfSent,
            };
            match prov.check_dpop(proof, &expected, now) {
                Ok(jkt) if jkt == cnf.jkt => Ok(claims),
                Ok(_) => Err(dpop_refusal(
                    "invalid_token",
                    "the access token is bound to another key",
                )),
                Err(DpopError::Invalid(why)) => Err(dpop_refusal("invalid_dpop_proof", &why)),
                Err(DpopError::UseNonce) => Err(BearerError::UseDpopNonce(prov.dpop_nonce(now))),
                Err(DpopError::Internal(e)) => Err(BearerError::Internal(e)),
            }
        }
    }
}
