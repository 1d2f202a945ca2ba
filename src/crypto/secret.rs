//! A secret byte string: zeroed on drop, never printed, compared in constant time.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Secret bytes (bearer tokens, private keys).
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Takes ownership of secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes, for the one place that must use them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time equality that also hides the length: both sides are hashed first.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let a = super::digest::sha256(&self.0);
        let b = super::digest::sha256(candidate);
        a.ct_eq(&b).into()
    }

    /// A short public name for the secret (first 8 bytes of its SHA-256, hex): safe to log
    /// and to record as "who did this", reveals nothing usable.
    pub fn fingerprint(&self) -> String {
        super::digest::hex(&super::digest::sha256(&self.0)[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_compare_works() {
        let s = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert!(s.matches(b"hunter2"));
        assert!(!s.matches(b"hunter3"));
        assert!(!s.matches(b""));
        assert_eq!(s.fingerprint().len(), 16);
    }
}
