//! Keys and signatures: the key set on disk, secrets, the signer seam, digests, JWTs, the
//! service PKI (officials' and seals' certificates, the CRL) and keys wrapped at rest.
//!
//! One crypto stack only: ring (through rustls, rcgen and our own JWT provider).

pub mod digest;
pub mod jwt;
pub mod kek;
pub mod keys;
pub mod pki;
mod secret;
pub mod signer;
pub mod token_keys;

pub use keys::{KeyError, KeySet};
pub use secret::Secret;
pub use signer::{EcdsaFileKey, PublicKey, Signer};
