//! SHA-256 and hex: the one place civis computes digests and prints or parses them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, data).as_ref());
    out
}

/// base64url (no padding) of SHA-256: PKCE S256, `at_hash` material.
pub fn s256(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(sha256(data))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// The inverse of [`hex`] for 32-byte values: exactly 64 hex digits, nothing else (no sign,
/// no spaces), either case.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    ::hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_is_strict() {
        let h = sha256(b"abc");
        assert_eq!(
            hex(&h),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(unhex32(&hex(&h)), Some(h));
        // `u8::from_str_radix` accepts "+1"; a digest must not.
        let plus = format!("+1{}", &hex(&h)[2..]);
        assert_eq!(unhex32(&plus), None);
        assert_eq!(unhex32(&hex(&h)[..62]), None);
        assert_eq!(unhex32(&format!("{}0", hex(&h))), None);
    }
}
