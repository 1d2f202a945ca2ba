//! Keys and signatures: the key set on disk, secrets, the signer seam, digests, and JWTs.
//!
//! One crypto stack only: ring (through rustls, rcgen and our own JWT provider).

pub mod digest;
pub mod jwt;
pub mod keys;
mod secret;
pub mod signer;
pub mod token_keys;

pub use keys::{KeyError, KeySet};
pub use secret::Secret;
pub use signer::{EcdsaFileKey, PublicKey, Signer};
