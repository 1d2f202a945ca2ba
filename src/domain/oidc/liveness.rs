//! Whether what a login produced may still be used. A code or a grant (and every token of
//! it) dies with the passkey that logged in, with the consent it was given under and with
//! the citizen's record (no route deletes one, but a token must not outlive it); a code
//! also dies with its login session. The rule is checked wherever a code, a grant or one of
//! its tokens is used, inside the transaction that uses it, so revoking a passkey or
//! withdrawing a consent is one record written and ends everything it produced at that
//! commit, with no index of grants to keep in step and nothing missed by a race.

use time::OffsetDateTime;

use super::model::{AuthorizationCode, Grant, LoginRef};
use crate::crypto::digest::unhex32;
use crate::store::{Read, Result, View};

/// Whether the passkey of a login is still valid. Records written before logins were
/// recorded (`None`) are tied to no passkey.
fn passkey_live<R: Read>(view: &View<R>, login: Option<&LoginRef>) -> Result<bool> {
    let Some(login) = login else {
        return Ok(true);
    };
    Ok(view
        .passkeys()
        .credential(&login.credential_id)?
        .is_some_and(|c| c.revoked_at.is_none()))
}

/// Whether the citizen's consent for the client exists and was given no later than `at`
/// (a consent withdrawn and given again does not revive what the first one allowed).
fn consent_covers<R: Read>(
    view: &View<R>,
    citizen_id: &str,
    client_id: &str,
    at: OffsetDateTime,
) -> Result<bool> {
    Ok(view
        .consents()
        .get(citizen_id, client_id)?
        .is_some_and(|c| c.since <= at))
}

/// Whether tokens of `grant` may be used: it is not revoked, its passkey is not revoked, the
/// consent it was made under has not been withdrawn, and its citizen still exists.
///
/// # Errors
/// Storage failures.
pub fn grant_live<R: Read>(reads: R, grant: &Grant) -> Result<bool> {
    let view = View(reads);
    Ok(grant.revoked_at.is_none()
        && passkey_live(&view, grant.login.as_ref())?
        && consent_covers(&view, &grant.citizen_id, &grant.client_id, grant.created_at)?
        && view.citizens().exists(&grant.citizen_id)?)
}

/// Whether a taken code may still become a grant: its passkey is not revoked, its login
/// session has not ended (logout, expiry, a newer login), its consent stands, and its
/// citizen still exists.
///
/// # Errors
/// Storage failures.
pub fn code_live<R: Read>(reads: R, code: &AuthorizationCode, now: OffsetDateTime) -> Result<bool> {
    let view = View(reads);
    let session_live = match &code.login {
        None => true,
        Some(login) => match unhex32(&login.session) {
            Some(hash) => view
                .passkeys()
                .session(&hash)?
                .is_some_and(|s| s.expires_at > now),
            None => false,
        },
    };
    Ok(session_live
        && passkey_live(&view, code.login.as_ref())?
        && consent_covers(&view, &code.citizen_id, &code.client_id, code.issued_at)?
        && view.citizens().exists(&code.citizen_id)?)
}
