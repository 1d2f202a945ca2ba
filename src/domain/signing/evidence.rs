//! The approval evidence of a signed request (CONTRACT.md §5) as one self-contained JSON
//! bundle, and its offline check (`civis evidence verify FILE`): nothing but the file, ring
//! for the ECDSA verification, civis's own CAdES/JAdES readers for the signatures.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use super::approval::derived_challenge;
use super::canonical::parse_canonical;
use super::requests::SignRequest;
use crate::crypto::digest::sha256;
use crate::crypto::pki::cert_pem;
use crate::crypto::{cades, jades};

/// Names the bundle layout.
pub const BUNDLE_FORMAT: &str = "civis-signing-evidence-v1";

/// DER prefix of a P-256 SubjectPublicKeyInfo (id-ecPublicKey, prime256v1, BIT STRING of
/// 66 bytes): what follows is the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn b64u(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn spki_pem(der: &[u8]) -> String {
    cert_pem(der).replace("CERTIFICATE", "PUBLIC KEY")
}

/// The bundle of a signed request; `None` while it is not signed.
pub fn bundle(request: &SignRequest) -> Option<Value> {
    let (signatures, a) = request.approval.as_ref()?;
    Some(json!({
        "format": BUNDLE_FORMAT,
        "request": {
            "canonical": b64u(&request.canonical()),
            "id": request.id,
            "format": request.format.as_str(),
            "expires_at": request.expires_at.format(&Rfc3339).unwrap_or_default(),
            "signer_certificate_sha256": b64u(&request.certificate_sha256),
            "documents": request.documents.iter().map(|d| json!({
                "name": d.name, "digest": b64u(&d.digest),
            })).collect::<Vec<_>>(),
        },
        "nonce": b64u(&a.nonce),
        "assertion": {
            "credential_id": a.credential_id,
            "authenticator_data": b64u(&a.authenticator_data),
            "client_data_json": b64u(&a.client_data_json),
            "signature": b64u(&a.signature),
        },
        "credential_public_key": spki_pem(&a.credential_public_key),
        "certificate": cert_pem(&a.certificate),
        "signatures": signatures.iter().map(|s| json!({
            "name": s.name, "format": s.format.as_str(), "signature": s.signature,
        })).collect::<Vec<_>>(),
        "rp_id": a.rp_id,
        "origin": a.origin,
        "approved_at": a.approved_at.format(&Rfc3339).unwrap_or_default(),
    }))
}

/// A failed check: its name and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The check, as `evidence verify` names it.
    pub check: &'static str,
    /// What was wrong.
    pub detail: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} check failed: {}", self.check, self.detail)
    }
}

fn fail<T>(check: &'static str, detail: impl Into<String>) -> Result<T, Failed> {
    Err(Failed {
        check,
        detail: detail.into(),
    })
}

fn text<'a>(v: &'a Value, pointer: &str) -> Result<&'a str, Failed> {
    v.pointer(pointer).and_then(Value::as_str).map_or_else(
        || fail("bundle", format!("{pointer} missing or not a string")),
        Ok,
    )
}

fn bytes(v: &Value, pointer: &str) -> Result<Vec<u8>, Failed> {
    URL_SAFE_NO_PAD
        .decode(text(v, pointer)?)
        .or_else(|_| fail("bundle", format!("{pointer} is not base64url")))
}

/// Checks a bundle: the request bytes and their readable copy, the challenge re-derived
/// from them and the nonce, the client data (type, challenge, origin), rpIdHash, the UP and
/// UV flags, the passkey's ES256 signature, the certificate the request commits to, and
/// every signature (cryptography, signer, and a digest the request lists). Returns what it
/// verified, one line each.
///
/// # Errors
/// The first failed check, named.
pub fn verify(file: &[u8]) -> Result<Vec<String>, Failed> {
    let mut ok = Vec::new();
    let b: Value = serde_json::from_slice(file).or_else(|e| fail("bundle", e.to_string()))?;
    if text(&b, "/format")? != BUNDLE_FORMAT {
        return fail("bundle", format!("format is not {BUNDLE_FORMAT}"));
    }
    let canonical = bytes(&b, "/request/canonical")?;
    let request = parse_canonical(&canonical).or_else(|e| fail("request", e))?;
    let readable = json!({
        "id": request.id, "format": request.format,
        "signer_certificate_sha256": b64u(&request.certificate_sha256),
        "documents": request.documents.iter().map(|d| json!({
            "name": d.name, "digest": b64u(&d.digest),
        })).collect::<Vec<_>>(),
    });
    for key in ["id", "format", "signer_certificate_sha256", "documents"] {
        if b.pointer(&format!("/request/{key}")) != readable.get(key) {
            return fail(
                "request",
                format!("the readable {key} differs from the canonical bytes"),
            );
        }
    }
    let deadline = time::OffsetDateTime::from_unix_timestamp(request.expires_at)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok());
    if deadline.as_deref() != Some(text(&b, "/request/expires_at")?) {
        return fail(
            "request",
            "the readable expires_at differs from the canonical bytes",
        );
    }
    ok.push(format!(
        "request {}: {} document(s), format {}, deadline {}",
        request.id,
        request.documents.len(),
        request.format,
        deadline.unwrap_or_default()
    ));

    let nonce: [u8; 32] = bytes(&b, "/nonce")?
        .try_into()
        .or_else(|_| fail("nonce", "not 32 bytes"))?;
    let challenge = derived_challenge(&canonical, &nonce);

    let client_data_json = bytes(&b, "/assertion/client_data_json")?;
    let client_data: Value = serde_json::from_slice(&client_data_json)
        .or_else(|e| fail("client data", e.to_string()))?;
    if client_data.get("type").and_then(Value::as_str) != Some("webauthn.get") {
        return fail("type", "clientDataJSON.type is not webauthn.get");
    }
    let presented = client_data
        .get("challenge")
        .and_then(Value::as_str)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok());
    if presented.as_deref() != Some(&challenge[..]) {
        return fail(
            "challenge",
            "clientDataJSON.challenge is not SHA-256(request ‖ nonce)",
        );
    }
    ok.push("challenge = SHA-256(canonical request ‖ nonce)".into());
    let origin = text(&b, "/origin")?;
    if client_data.get("origin").and_then(Value::as_str) != Some(origin) {
        return fail("origin", "clientDataJSON.origin is not the bundle's origin");
    }
    if client_data.get("crossOrigin") == Some(&Value::Bool(true)) {
        return fail("origin", "made inside a cross-origin frame");
    }
    let rp_id = text(&b, "/rp_id")?;
    let host = url::Url::parse(origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
        return fail(
            "origin",
            format!("origin {origin} is not within RP ID {rp_id}"),
        );
    }
    ok.push(format!("type webauthn.get, origin {origin}"));

    let auth_data = bytes(&b, "/assertion/authenticator_data")?;
    if auth_data.len() < 37 {
        return fail("authenticator data", "shorter than 37 bytes");
    }
    if auth_data[..32] != sha256(rp_id.as_bytes()) {
        return fail(
            "rp id hash",
            format!("rpIdHash is not SHA-256(\"{rp_id}\")"),
        );
    }
    let flags = auth_data[32];
    if flags & 0x01 == 0 {
        return fail("user presence", "the UP flag is not set");
    }
    if flags & 0x04 == 0 {
        return fail("user verification", "the UV flag is not set");
    }
    ok.push(format!(
        "rpIdHash = SHA-256(\"{rp_id}\"), user present and verified"
    ));

    let spki =
        SubjectPublicKeyInfoDer::from_pem_slice(text(&b, "/credential_public_key")?.as_bytes())
            .or_else(|e| fail("credential public key", e.to_string()))?;
    let point = spki
        .as_ref()
        .strip_prefix(&P256_SPKI_PREFIX[..])
        .filter(|p| p.len() == 65)
        .map_or_else(|| fail("credential public key", "not a P-256 SPKI"), Ok)?;
    let mut signed = auth_data.clone();
    signed.extend_from_slice(&sha256(&client_data_json));
    let assertion_sig = bytes(&b, "/assertion/signature")?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
        .verify(&signed, &assertion_sig)
        .or_else(|_| {
            fail(
                "assertion signature",
                "ES256 over authenticatorData ‖ SHA-256(clientDataJSON) does not verify",
            )
        })?;
    ok.push("passkey signature (ES256) verifies with the credential public key".into());

    let certificate = CertificateDer::from_pem_slice(text(&b, "/certificate")?.as_bytes())
        .or_else(|e| fail("certificate", e.to_string()))?;
    if sha256(certificate.as_ref()) != request.certificate_sha256 {
        return fail(
            "certificate",
            "its SHA-256 is not the one the request commits to",
        );
    }
    ok.push("certificate is the one the request names".into());

    let signatures = b
        .get("signatures")
        .and_then(Value::as_array)
        .map_or_else(|| fail("bundle", "signatures missing"), Ok)?;
    if signatures.len() != request.documents.len() {
        return fail("signatures", "not one signature per document");
    }
    for (i, (s, doc)) in signatures.iter().zip(&request.documents).enumerate() {
        let value = s
            .get("signature")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let format = s.get("format").and_then(Value::as_str).unwrap_or_default();
        if format != request.format || s.get("name").and_then(Value::as_str) != Some(&doc.name) {
            return fail(
                "signatures",
                format!("signature {i} is not for document {i} in the request's format"),
            );
        }
        let (verifies, covers, signer) = match format {
            "cades" => {
                let der = STANDARD
                    .decode(value)
                    .or_else(|_| fail("signatures", format!("signature {i} is not base64")))?;
                let c = cades::inspect(&der)
                    .or_else(|e| fail("signatures", format!("signature {i}: {e}")))?;
                (
                    c.verify_signature(),
                    c.covers(&doc.digest),
                    c.signer_certificate,
                )
            }
            _ => {
                let j = jades::inspect(value)
                    .or_else(|e| fail("signatures", format!("signature {i}: {e}")))?;
                (
                    j.verify_signature(),
                    j.covers(&doc.digest),
                    j.signer_certificate,
                )
            }
        };
        if !verifies {
            return fail("signatures", format!("signature {i} does not verify"));
        }
        if !covers {
            return fail(
                "signatures",
                format!(
                    "signature {i} does not cover the digest the request lists for {}",
                    doc.name
                ),
            );
        }
        if signer != certificate.as_ref() {
            return fail(
                "signatures",
                format!("signature {i} is not by the bundle's certificate"),
            );
        }
    }
    ok.push(format!(
        "{} signature(s) verify, by that certificate, each over a digest the request lists",
        signatures.len()
    ));
    Ok(ok)
}

#[cfg(test)]
#[path = "evidence_tests.rs"]
mod tests;
