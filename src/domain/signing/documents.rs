//! The rules for a batch of documents to sign (CONTRACT.md §5), shared by sealing and
//! officials' signing requests: a format civis knows, 1 to `max` documents, each named
//! 1–255 characters without control characters, each digest the base64url (no padding) of
//! 32 bytes. Every bad field is named at once, as `documents[i].name` and so on.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{Document, SignatureFormat};
use crate::domain::{DomainError, FieldError, Result};

/// Longest document name, in characters. It goes into JAdES `sigD.pars` verbatim and
/// into the record of produced signatures.
pub const MAX_NAME_CHARS: usize = 255;

/// A document as the caller sends it, not yet checked.
#[derive(Debug, Clone)]
pub struct DocumentInput {
    /// The document's name.
    pub name: String,
    /// base64url (no padding) of the SHA-256 of its bytes.
    pub digest: String,
}

/// Checks a batch: its format and 1 to `max` documents.
///
/// # Errors
/// [`DomainError::Invalid`] naming every bad field.
pub fn batch(
    format: &str,
    documents: &[DocumentInput],
    max: usize,
) -> Result<(SignatureFormat, Vec<Document>)> {
    let mut errors = Vec::new();
    let mut bad = |field: Cow<'static, str>, detail: String| {
        errors.push(FieldError { field, detail });
    };
    let format = parse_format(format)
        .map_err(|detail| bad("format".into(), detail))
        .ok();
    let mut checked = Vec::with_capacity(documents.len().min(max));
    if documents.is_empty() || documents.len() > max {
        bad(
            "documents".into(),
            format!("must hold 1 to {max} documents, not {}", documents.len()),
        );
    } else {
        for (i, doc) in documents.iter().enumerate() {
            let name = name(&doc.name)
                .map_err(|d| bad(format!("documents[{i}].name").into(), d.into()))
                .ok();
            let digest = digest(&doc.digest)
                .map_err(|d| bad(format!("documents[{i}].digest").into(), d.into()))
                .ok();
            if let (Some(()), Some(digest)) = (name, digest) {
                checked.push(Document {
                    name: doc.name.clone(),
                    digest,
                });
            }
        }
    }
    match format {
        Some(format) if errors.is_empty() => Ok((format, checked)),
        _ => Err(DomainError::Invalid(errors)),
    }
}

/// `cades` or `jades`.
///
/// # Errors
/// The reason, naming the formats civis knows.
pub fn parse_format(raw: &str) -> std::result::Result<SignatureFormat, String> {
    SignatureFormat::parse(raw).ok_or_else(|| {
        let shown: String = raw.chars().take(32).collect();
        format!("{shown:?} is not a format civis signs: use \"cades\" or \"jades\"")
    })
}

/// A document name: 1–255 characters, no control characters; kept as given (it is the
/// caller's reference to the document, and JAdES names it in the signature).
fn name(raw: &str) -> std::result::Result<(), &'static str> {
    let len = raw.chars().count();
    if len == 0 {
        return Err("must not be empty");
    }
    if len > MAX_NAME_CHARS {
        return Err("must be at most 255 characters");
    }
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

/// A SHA-256 digest as base64url without padding: exactly 43 characters, canonical.
///
/// # Errors
/// The reason.
pub fn digest(raw: &str) -> std::result::Result<[u8; 32], &'static str> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| "must be base64url without padding (the SHA-256 of the document)")?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| "must be the 32 bytes of a SHA-256 digest (43 base64url characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, digest: &str) -> DocumentInput {
        DocumentInput {
            name: name.into(),
            digest: digest.into(),
        }
    }

    fn fields(r: Result<(SignatureFormat, Vec<Document>)>) -> Vec<String> {
        match r {
            Err(DomainError::Invalid(errors)) => {
                errors.into_iter().map(|e| e.field.into_owned()).collect()
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    const GOOD: &str = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";

    #[test]
    fn a_good_batch_is_kept_as_given() {
        let (format, docs) = batch("jades", &[doc(" Permit 7.pdf", GOOD)], 1000).unwrap();
        assert_eq!(format, SignatureFormat::Jades);
        assert_eq!(docs[0].name, " Permit 7.pdf", "names are not trimmed");
        assert_eq!(docs[0].digest, crate::crypto::digest::sha256(b""));
        let name_255 = "é".repeat(255);
        assert!(batch("cades", &[doc(&name_255, GOOD)], 1).is_ok());
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let docs = [
            doc("ok.pdf", GOOD),
            doc("", GOOD),
            doc("tab\there", "not base64!"),
            doc(&"x".repeat(256), &GOOD[..42]),
            doc("padded.pdf", &format!("{GOOD}=")),
            doc("short.pdf", "AAAA"),
        ];
        assert_eq!(
            fields(batch("xades", &docs, 1000)),
            [
                "format",
                "documents[1].name",
                "documents[2].name",
                "documents[2].digest",
                "documents[3].name",
                "documents[3].digest",
                "documents[4].digest",
                "documents[5].digest",
            ]
        );
    }

    #[test]
    fn a_batch_holds_one_to_max_documents() {
        assert_eq!(fields(batch("cades", &[], 1000)), ["documents"]);
        let many = vec![doc("a", GOOD); 1001];
        assert_eq!(fields(batch("cades", &many, 1000)), ["documents"]);
        assert_eq!(batch("cades", &many[..1000], 1000).unwrap().1.len(), 1000);
    }

    #[test]
    fn a_digest_with_stray_bits_is_not_canonical() {
        // 43 characters carry 258 bits: the last 2 must be zero for 32 bytes.
        let mut stray = GOOD[..42].to_owned();
        stray.push('V');
        assert!(digest(&stray).is_err());
        assert!(digest(GOOD).is_ok());
    }
}
