//! The domain's error type: what went wrong in terms of the rules, not of HTTP.

use crate::store::StoreError;

/// One invalid input field and why, in plain language.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Name of the field as sent by the client.
    pub field: &'static str,
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
            field,
            detail: detail.into(),
        }])
    }
}
