//! The canonical encoding of a sign request: what the approval's WebAuthn challenge commits
//! to (`SHA-256(canonical ‖ nonce)`), and its reading back for the offline evidence check.
//! spec/flows/signing-approval.md defines it field by field.

use super::Document;
use super::requests::{MAX_DOCUMENTS, SignRequest};

/// Domain separator that opens every canonical request.
pub const CANONICAL_TAG: &str = "civis-sign-request-v1";

impl SignRequest {
    /// The canonical encoding the approval commits to: a sequence of fields, each a 4-byte
    /// big-endian length and that many bytes: [`CANONICAL_TAG`], id, format, the signer
    /// certificate's SHA-256 (32 bytes), the deadline (decimal Unix seconds), the number of
    /// documents (decimal), then each document's name (UTF-8) and digest (32 bytes).
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut field = |bytes: &[u8]| {
            let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(bytes);
        };
        field(CANONICAL_TAG.as_bytes());
        field(self.id.as_bytes());
        field(self.format.as_str().as_bytes());
        field(&self.certificate_sha256);
        field(self.expires_at.unix_timestamp().to_string().as_bytes());
        field(self.documents.len().to_string().as_bytes());
        for d in &self.documents {
            field(d.name.as_bytes());
            field(&d.digest);
        }
        out
    }
}

/// The request a canonical encoding describes (the offline verifier reads it back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    /// Request id.
    pub id: String,
    /// Format name.
    pub format: String,
    /// The signer certificate's SHA-256.
    pub certificate_sha256: [u8; 32],
    /// The deadline, Unix seconds.
    pub expires_at: i64,
    /// The documents.
    pub documents: Vec<Document>,
}

/// Reads a canonical encoding back; `Err` names what is wrong with it.
///
/// # Errors
/// A message naming the malformed field.
pub fn parse_canonical(bytes: &[u8]) -> std::result::Result<CanonicalRequest, String> {
    let mut rest = bytes;
    let mut next = |what: &str| -> std::result::Result<Vec<u8>, String> {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| format!("truncated before {what}"))?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|e| e.to_string())?;
        if tail.len() < len {
            return Err(format!("truncated inside {what}"));
        }
        let (value, tail) = tail.split_at(len);
        rest = tail;
        Ok(value.to_vec())
    };
    let text =
        |b: Vec<u8>, what: &str| String::from_utf8(b).map_err(|_| format!("{what} is not UTF-8"));
    if next("the tag")? != CANONICAL_TAG.as_bytes() {
        return Err(format!("does not start with {CANONICAL_TAG}"));
    }
    let id = text(next("the id")?, "id")?;
    let format = text(next("the format")?, "format")?;
    let certificate_sha256: [u8; 32] = next("the certificate hash")?
        .try_into()
        .map_err(|_| "certificate hash is not 32 bytes".to_owned())?;
    let expires_at: i64 = text(next("the deadline")?, "deadline")?
        .parse()
        .map_err(|_| "deadline is not a number".to_owned())?;
    let count: usize = text(next("the count")?, "count")?
        .parse()
        .map_err(|_| "count is not a number".to_owned())?;
    if count > MAX_DOCUMENTS {
        return Err("too many documents".into());
    }
    let mut documents = Vec::with_capacity(count);
    for i in 0..count {
        let name = text(next("a document name")?, "document name")?;
        let digest: [u8; 32] = next("a digest")?
            .try_into()
            .map_err(|_| format!("digest {i} is not 32 bytes"))?;
        documents.push(Document { name, digest });
    }
    if !rest.is_empty() {
        return Err("bytes after the last document".into());
    }
    Ok(CanonicalRequest {
        id,
        format,
        certificate_sha256,
        expires_at,
        documents,
    })
}

#[cfg(test)]
mod tests {
    use time::{Duration, OffsetDateTime};

    use super::*;
    use crate::domain::signing::SignatureFormat;

    fn request() -> SignRequest {
        SignRequest {
            id: "r1".into(),
            citizen_id: "c".into(),
            official_id: "o".into(),
            certificate_sha256: [7; 32],
            format: SignatureFormat::Cades,
            documents: vec![
                Document {
                    name: "a.pdf".into(),
                    digest: [1; 32],
                },
                Document {
                    name: "b".into(),
                    digest: [2; 32],
                },
            ],
            created_at: OffsetDateTime::UNIX_EPOCH,
            expires_at: OffsetDateTime::UNIX_EPOCH + Duration::seconds(900),
            approval: None,
            rejected_at: None,
        }
    }

    #[test]
    fn the_canonical_encoding_is_length_prefixed_fields() {
        let bytes = request().canonical();
        let mut expected = Vec::new();
        for f in [
            CANONICAL_TAG.as_bytes(),
            b"r1",
            b"cades",
            &[7; 32],
            b"900",
            b"2",
            b"a.pdf",
            &[1; 32],
            b"b",
            &[2; 32],
        ] {
            expected.extend_from_slice(&u32::try_from(f.len()).unwrap().to_be_bytes());
            expected.extend_from_slice(f);
        }
        assert_eq!(bytes, expected);
        let back = parse_canonical(&bytes).unwrap();
        assert_eq!(back.documents, request().documents);
        assert_eq!((back.id.as_str(), back.expires_at), ("r1", 900));
    }

    #[test]
    fn names_cannot_shift_into_digests() {
        // Moving a byte between adjacent fields changes the encoding.
        let mut a = request();
        a.documents[0].name = "a.pdfb".into();
        a.documents[1].name = String::new();
        assert_ne!(a.canonical(), request().canonical());
    }

    #[test]
    fn a_truncated_or_extended_encoding_does_not_parse() {
        let bytes = request().canonical();
        assert!(parse_canonical(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parse_canonical(&longer).is_err());
    }
}
