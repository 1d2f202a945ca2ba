//! The domain's error type: what went wrong in terms of the rules, not of HTTP.

use crate::store::StoreError;

/// One invalid input field and why, in plain language.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Name of the field as sent by the client; a path such as `documents[3].digest` for a
    /// field inside a list.
    #[schema(value_type = String)]
    pub field: std::borrow::Cow<'static, str>,
    /// What is wrong with it.
    pub detail: String,
}

/// Errors of the domain layer. The http layer maps each to a status code in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Fields failed validation (→ 422).
    #[error("invalid fields: {0:?}")]
    Invalid(Vec<FieldError>),
    /// The thing does not exist (→ 404). Holds what kind of thing, never an identifier.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was broken (→ 409). Holds a client-safe explanation.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The caller is known but may not do this (→ 403). Holds a client-safe explanation.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A passkey ceremony was refused (→ 400 with a plain-language message).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A part of the service is not configured (→ 503). Holds a client-safe explanation
    /// naming what is missing (e.g. `kek.key`).
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    /// Storage failed (→ 500; text only in the log).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is our fault (→ 500; text only in the log).
    #[error("internal: {0}")]
    Internal(String),
}

impl DomainError {
    /// Shorthand for a single invalid field.
    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError {
            field: field.into(),
            detail: detail.into(),
        }])
    }
}

/// Why a passkey ceremony was refused. `Display` (with details) is for the log;
/// [`Refusal::message`] is what the person sees, and never tells whether a citizen or a
/// credential exists.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The enrolment code is unknown, expired or already used.
    #[error("enrolment link unknown, expired or already used")]
    EnrolmentLinkInvalid,
    /// The ceremony is unknown, expired or already finished (a replay).
    #[error("ceremony unknown, expired or already used")]
    CeremonyExpired,
    /// webauthn-rs refused the credential (wrong origin or RP ID, bad signature, no user
    /// verification, wrong challenge…).
    #[error("credential rejected: {0}")]
    CredentialRejected(String),
    /// The credential is not registered, revoked, or not the user's.
    #[error("passkey unknown or revoked: {0}")]
    PasskeyUnknown(String),
    /// The signature counter did not increase on a counting authenticator.
    #[error("possible cloned authenticator: {0}")]
    PossibleClone(String),
}

impl Refusal {
    /// A short machine-readable name (audit entries; never the details, which may name
    /// credentials).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EnrolmentLinkInvalid => "enrolment_link_invalid",
            Self::CeremonyExpired => "ceremony_expired",
            Self::CredentialRejected(_) => "credential_rejected",
            Self::PasskeyUnknown(_) => "passkey_unknown_or_revoked",
            Self::PossibleClone(_) => "possible_clone",
        }
    }

    /// A plain-language explanation for the person in front of the screen.
    pub fn message(&self) -> &'static str {
        match self {
            Self::EnrolmentLinkInvalid => {
                "This enrolment link is not valid: it may have expired or already been used. \
                 Please ask your registration office for a new link."
            }
            Self::CeremonyExpired => "This attempt has expired. Please try again.",
            Self::CredentialRejected(_) => {
                "Your passkey could not be verified for this site. Please try again."
            }
            Self::PasskeyUnknown(_) | Self::PossibleClone(_) => {
                "This passkey cannot be used to sign in here. \
                 If you lost access, ask your registration office for a new enrolment link."
            }
        }
    }
}
