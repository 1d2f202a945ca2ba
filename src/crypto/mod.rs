//! Keys and signatures: the key set on disk, secrets, and the ring-backed JWT signer.
//!
//! One crypto stack only: ring (through rustls, rcgen and our own JWT provider).

pub mod digest;
pub mod jwt;
pub mod keys;
mod secret;
pub mod token_keys;

pub use keys::{KeyError, KeySet, TokenKey};
pub use secret::Secret;
