//! Keys and signatures: the key set on disk, secrets, the signer seam, digests, JWTs, the
//! service PKI (officials' and seals' certificates, the CRL), keys wrapped at rest, the
//! document signature formats (CAdES, JAdES), and the audit log's Merkle tree and signed
//! checkpoints (RFC 9162, C2SP signed notes).
//!
//! One crypto stack only: ring (through rustls, rcgen and our own JWT provider).

pub mod cades;
pub mod certificate;
pub mod digest;
pub mod dpop;
mod format;
pub mod jades;
pub mod jwt;
pub mod kek;
pub mod keys;
pub mod merkle;
pub mod note;
pub mod pki;
mod secret;
pub mod signer;
#[cfg(test)]
mod tlogcheck;
pub mod token_keys;

#[cfg(test)]
pub(crate) use format::testing;
pub use format::{CertificateReference, FormatError};
pub use keys::{KeyError, KeySet};
pub use secret::Secret;
pub use signer::{EcdsaFileKey, PublicKey, Signer};
