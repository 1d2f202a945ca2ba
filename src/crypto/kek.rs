//! The key-encryption key (`kek.key`): officials' and seals' private keys are stored only
//! wrapped under it, with AES-256-GCM (ring `aead`).
//!
//! A wrapped key is `0x01 ‖ nonce (12) ‖ ciphertext ‖ tag (16)`: the leading version byte
//! leaves room for a later key or algorithm, and the nonce is fresh random for every
//! wrapping (a counter would need state shared by every process). The caller's associated
//! data names the record the key belongs to, so a wrapped key copied into another record
//! does not unwrap.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Format version of a wrapped key.
const VERSION: u8 = 1;

/// Why a key could not be wrapped or unwrapped. Never carries key material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KekError {
    /// The key-encryption key is not 32 bytes.
    #[error("a key-encryption key is 32 bytes")]
    BadKey,
    /// The random generator failed.
    #[error("random generator failed")]
    Random,
    /// The wrapped bytes are malformed, were changed, belong to another record (other
    /// associated data) or were wrapped under another key: AES-GCM cannot tell which.
    #[error("wrapped key does not authenticate (changed, moved or another key)")]
    Unwrap,
}

/// AES-256-GCM key that wraps private keys at rest.
pub struct Kek {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// A key from its 32 raw bytes.
    ///
    /// # Errors
    /// [`KekError::BadKey`] for any other length.
    pub fn from_bytes(raw: &[u8]) -> Result<Self, KekError> {
        let unbound = UnboundKey::new(&AES_256_GCM, raw).map_err(|_| KekError::BadKey)?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Encrypts `plaintext` bound to `aad` under a fresh random nonce.
    ///
    /// # Errors
    /// [`KekError::Random`] when the system generator fails.
    pub fn wrap(&self, aad: &[u8], plaintext: &Zeroizing<Vec<u8>>) -> Result<Vec<u8>, KekError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| KekError::Random)?;
        // Encrypted in a zeroizing buffer: it holds the clear key until sealing overwrites it.
        let mut buf = Zeroizing::new(plaintext.to_vec());
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                buf.as_mut_slice(),
            )
            .map_err(|_| KekError::Random)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len() + tag.as_ref().len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts what [`Kek::wrap`] produced with the same `aad`.
    ///
    /// # Errors
    /// [`KekError::Unwrap`] when the bytes were changed, belong to other associated data,
    /// were wrapped under another key, or are not a wrapped key at all.
    pub fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let (&version, rest) = wrapped.split_first().ok_or(KekError::Unwrap)?;
        if version != VERSION || rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(KekError::Unwrap);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| KekError::Unwrap)?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let clear_len = self
            .key
            .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
            .map_err(|_| KekError::Unwrap)?
            .len();
        buf.truncate(clear_len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::from_bytes(&[byte; 32]).unwrap()
    }

    fn secret() -> Zeroizing<Vec<u8>> {
        Zeroizing::new(b"a PKCS#8 private key, say".to_vec())
    }

    #[test]
    fn wraps_and_unwraps_with_the_same_key_and_aad() {
        let k = kek(7);
        let wrapped = k.wrap(b"official/1", &secret()).unwrap();
        assert_eq!(wrapped.len(), 1 + 12 + secret().len() + 16);
        assert!(
            !wrapped
                .windows(secret().len())
                .any(|w| w == secret().as_slice()),
            "the clear key is not in the wrapped bytes"
        );
        assert_eq!(*k.unwrap(b"official/1", &wrapped).unwrap(), *secret());
        assert_ne!(
            wrapped,
            k.wrap(b"official/1", &secret()).unwrap(),
            "a fresh nonce every time"
        );
    }

    #[test]
    fn every_changed_byte_fails() {
        let k = kek(7);
        let wrapped = k.wrap(b"official/1", &secret()).unwrap();
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                k.unwrap(b"official/1", &bad).unwrap_err(),
                KekError::Unwrap,
                "byte {i}"
            );
        }
        assert!(
            k.unwrap(b"official/1", &wrapped[..20]).is_err(),
            "truncated"
        );
        assert!(k.unwrap(b"official/1", &[]).is_err(), "empty");
    }

    #[test]
    fn another_record_or_another_key_fails() {
        let wrapped = kek(7).wrap(b"official/1", &secret()).unwrap();
        assert_eq!(
            kek(7).unwrap(b"official/2", &wrapped).unwrap_err(),
            KekError::Unwrap,
            "moved to another record"
        );
        assert_eq!(
            kek(8).unwrap(b"official/1", &wrapped).unwrap_err(),
            KekError::Unwrap,
            "another key"
        );
    }

    #[test]
    fn only_32_byte_keys_and_debug_is_redacted() {
        assert_eq!(Kek::from_bytes(&[1; 16]).unwrap_err(), KekError::BadKey);
        assert_eq!(format!("{:?}", kek(1)), "Kek(<redacted>)");
    }
}
