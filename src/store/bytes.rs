//! Binary fields inside JSON records: standard base64 (with padding).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Bytes as standard base64.
pub(super) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Standard base64 back to bytes; `None` when it is not base64.
pub(super) fn unb64(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}
