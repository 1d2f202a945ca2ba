//! The signing seam: what civis needs of a key that signs (tokens today; officials' and
//! seals' documents and the audit log's checkpoints next), behind one trait, with ring keys
//! read from PKCS#8 files as the implementation. An HSM or a remote signer implements the
//! same trait; nothing above `crypto/` sees private key material.

use p256::pkcs8::EncodePublicKey as _;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};

/// The signature algorithms civis produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// ECDSA P-256 with SHA-256; signatures are fixed-length r‖s (64 bytes), as JWS wants.
    Es256,
}

impl SignatureAlgorithm {
    /// The JOSE name (`alg`).
    pub fn jose(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
        }
    }
}

/// A signer failed (an HSM unreachable, the random generator broken). Never carries key
/// material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("signing with key {key_id} failed: {reason}")]
pub struct SignError {
    /// Which key.
    pub key_id: String,
    /// What went wrong.
    pub reason: String,
}

/// The public half of a signing key, as verifiers need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    algorithm: SignatureAlgorithm,
    /// Uncompressed SEC1 point (65 bytes for P-256).
    point: Vec<u8>,
}

impl PublicKey {
    /// A P-256 public key from its uncompressed SEC1 point.
    ///
    /// # Errors
    /// When the bytes are not a point on P-256.
    pub fn p256(point: &[u8]) -> Result<Self, String> {
        p256::PublicKey::from_sec1_bytes(point)
            .map_err(|e| format!("not a P-256 public key ({e})"))?;
        Ok(Self {
            algorithm: SignatureAlgorithm::Es256,
            point: point.to_vec(),
        })
    }

    /// The algorithm its signatures use.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// Uncompressed SEC1 point.
    pub fn sec1_point(&self) -> &[u8] {
        &self.point
    }

    /// X.509 SubjectPublicKeyInfo, DER (what certificates and any crypto library read).
    pub fn spki_der(&self) -> Vec<u8> {
        p256::PublicKey::from_sec1_bytes(&self.point)
            .ok()
            .and_then(|k| k.to_public_key_der().ok())
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    }

    /// The JWK (RFC 7517) of this key under `kid`.
    pub fn jwk(&self, kid: &str) -> serde_json::Value {
        let (x, y) = super::jwt::xy(&self.point);
        serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "kid": kid, "use": "sig", "alg": self.algorithm.jose(),
        })
    }
}

/// A key that signs. Implementations keep the private half to themselves.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// Stable identifier (`kid` in JOSE): for file keys the RFC 7638 thumbprint.
    fn key_id(&self) -> &str;

    /// The public half.
    fn public_key(&self) -> &PublicKey;

    /// Signs `message` (the algorithm hashes it).
    ///
    /// # Errors
    /// [`SignError`] when the key cannot sign now.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;

    /// The algorithm of its signatures.
    fn algorithm(&self) -> SignatureAlgorithm {
        self.public_key().algorithm()
    }

    /// The public key as a JWK with this key's id.
    fn public_jwk(&self) -> serde_json::Value {
        self.public_key().jwk(self.key_id())
    }
}

/// An ECDSA P-256 key held in memory by ring, read from a PKCS#8 file.
pub struct EcdsaFileKey {
    pair: EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    public: PublicKey,
    kid: String,
}

impl std::fmt::Debug for EcdsaFileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcdsaFileKey")
            .field("kid", &self.kid)
            .field("private", &"<redacted>")
            .finish()
    }
}

impl EcdsaFileKey {
    /// Parses a PKCS#8 P-256 private key.
    ///
    /// # Errors
    /// When the bytes are not a P-256 PKCS#8 key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, String> {
        let rng = ring::rand::SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| format!("not a P-256 PKCS#8 private key ({e})"))?;
        let public = PublicKey::p256(pair.public_key().as_ref())?;
        let kid = super::jwt::thumbprint(public.sec1_point());
        Ok(Self {
            pair,
            rng,
            public,
            kid,
        })
    }
}

impl Signer for EcdsaFileKey {
    fn key_id(&self) -> &str {
        &self.kid
    }

    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.pair
            .sign(&self.rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| SignError {
                key_id: self.kid.clone(),
                reason: "ring could not sign (random generator)".into(),
            })
    }
}

#[cfg(test)]
pub(crate) fn generated_key() -> EcdsaFileKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map(|d| d.as_ref().to_vec())
        .unwrap_or_default();
    EcdsaFileKey::from_pkcs8(&pkcs8).unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_key_signs_and_ring_verifies_with_its_public_key() {
        let key = generated_key();
        let sig = key.sign(b"message").unwrap();
        assert_eq!(sig.len(), 64, "fixed-length r||s");
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            key.public_key().sec1_point(),
        )
        .verify(b"message", &sig)
        .unwrap();
        assert_eq!(key.algorithm(), SignatureAlgorithm::Es256);
        assert_eq!(key.public_jwk()["kid"], key.key_id());
        assert!(!format!("{key:?}").contains("pair"), "redacted Debug");
    }

    #[test]
    fn spki_is_der_that_x509_parser_reads_back_to_the_same_point() {
        let key = generated_key();
        let der = key.public_key().spki_der();
        use x509_parser::prelude::FromDer as _;
        let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&der).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            spki.subject_public_key.data.as_ref(),
            key.public_key().sec1_point()
        );
        assert!(PublicKey::p256(&[4; 65]).is_err(), "not on the curve");
    }
}
