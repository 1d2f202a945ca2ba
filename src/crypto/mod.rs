//! Keys and signatures: the key set on disk, secrets, the signer seam, digests, JWTs, and the
//! document signature formats (CAdES, JAdES).
//!
//! One crypto stack only: ring (through rustls, rcgen and our own JWT provider).

pub mod cades;
pub mod digest;
mod format;
pub mod jades;
pub mod jwt;
pub mod keys;
mod secret;
pub mod signer;
pub mod token_keys;

pub use format::{CertificateReference, FormatError};
pub use keys::{KeyError, KeySet};
pub use secret::Secret;
pub use signer::{EcdsaFileKey, PublicKey, Signer};
