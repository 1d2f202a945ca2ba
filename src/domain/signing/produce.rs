//! Producing document signatures with a key in use, and the record of every signature
//! civis produces. Shared by sealing (`POST /seal/v1/sign`) and officials' approvals: both
//! sign a batch with [`sign_batch`] outside any store transaction (no signing under the
//! store's lock), then call [`record_produced`] inside the one transaction that also does
//! whatever else the signing changes, so that nothing is acknowledged before its record
//! is durable.
//!
//! The record is what `/verify/v1` checks as `produced`: a signature under a civis
//! certificate that civis has no record of was not made through civis.

use time::OffsetDateTime;

use super::{KeyInUse, Kind};
use crate::crypto::digest::sha256;
use crate::crypto::{FormatError, cades, jades};
use crate::domain::Result;
use crate::store::Tx;

/// The two signature formats (spec/signature-formats.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// CAdES-B-B: DER CMS SignedData, detached.
    Cades,
    /// JAdES-B-B: JWS compact serialisation, detached.
    Jades,
}

impl SignatureFormat {
    /// The format's name in the API and on disk.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cades => "cades",
            Self::Jades => "jades",
        }
    }

    /// The format named `name`, if civis knows it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cades" => Some(Self::Cades),
            "jades" => Some(Self::Jades),
            _ => None,
        }
    }
}

/// A document to sign: its name and the SHA-256 of its bytes (the document never reaches
/// civis).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// As the caller names it (1–255 characters, no control characters).
    pub name: String,
    /// SHA-256 of the document's bytes.
    pub digest: [u8; 32],
}

/// The documents of an audit entry: `[{name, digest}]`, the digest in base64url (what the
/// citizen's activity page shows for every signature in their name).
pub fn documents_json(documents: &[Document]) -> serde_json::Value {
    use base64::Engine as _;
    documents
        .iter()
        .map(|d| {
            serde_json::json!({
                "name": d.name,
                "digest": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.digest),
            })
        })
        .collect()
}

/// A signature just made over one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The document's name.
    pub name: String,
    /// Its format.
    pub format: SignatureFormat,
    /// The signature: DER for CAdES, the JWS string's bytes for JAdES.
    pub bytes: Vec<u8>,
}

impl Signed {
    /// The signature as answers carry it (CONTRACT.md §5): standard base64 (with padding)
    /// of the DER for `cades`, the JWS compact serialisation itself for `jades` (ASCII by
    /// construction: base64url and dots).
    pub fn encoded(&self) -> String {
        match self.format {
            SignatureFormat::Cades => {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(&self.bytes)
            }
            SignatureFormat::Jades => String::from_utf8_lossy(&self.bytes).into_owned(),
        }
    }

    /// The key the record of this signature is filed under: SHA-256 of its bytes.
    pub fn fingerprint(&self) -> [u8; 32] {
        sha256(&self.bytes)
    }
}

/// Signs every document with `key`, whose certificate comes first in the chain and the
/// CA's (`ca_der`) second, all at `signing_time` (kept to whole seconds by the formats).
/// The key was unwrapped once for the whole batch.
///
/// # Errors
/// [`crate::domain::DomainError::Internal`] when a signature cannot be made (the key does
/// not match its certificate, the signer failed): never the caller's fault, since the
/// documents were validated before.
pub fn sign_batch(
    key: &KeyInUse,
    ca_der: &[u8],
    documents: &[Document],
    format: SignatureFormat,
    signing_time: OffsetDateTime,
) -> Result<Vec<Signed>> {
    let chain = [key.certificate.clone(), ca_der.to_vec()];
    let internal = |e: FormatError| {
        crate::domain::DomainError::Internal(format!("signing with key {}: {e}", key.id))
    };
    let signed = |doc: &Document, bytes: Vec<u8>| Signed {
        name: doc.name.clone(),
        format,
        bytes,
    };
    // The chain is parsed and checked, and everything but the digest prepared, once.
    match format {
        SignatureFormat::Cades => {
            let mut batch =
                cades::BatchSigner::new(&key.signer, &chain, signing_time).map_err(internal)?;
            documents
                .iter()
                .map(|doc| Ok(signed(doc, batch.sign(&doc.digest).map_err(internal)?)))
                .collect()
        }
        SignatureFormat::Jades => {
            let batch =
                jades::BatchSigner::new(&key.signer, &chain, signing_time).map_err(internal)?;
            documents
                .iter()
                .map(|doc| {
                    let jws = batch.sign(&doc.name, &doc.digest).map_err(internal)?;
                    Ok(signed(doc, jws.into_bytes()))
                })
                .collect()
        }
    }
}

/// The record of one signature civis produced. Holds nothing secret: no key, no
/// signature value (only its hash, as the record's key), no document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedSignature {
    /// SHA-256 of the signature's bytes (DER for CAdES, the JWS string for JAdES).
    pub fingerprint: [u8; 32],
    /// Seal or official.
    pub kind: Kind,
    /// The serial number of the signer's certificate.
    pub serial: Vec<u8>,
    /// The seal's or official's id (the key record).
    pub key_id: String,
    /// Who used the key: the client id for a seal, the citizen id for an official.
    pub holder_id: String,
    /// The document's name.
    pub name: String,
    /// The digest signed.
    pub digest: [u8; 32],
    /// The format.
    pub format: SignatureFormat,
    /// The signing time written into the signature.
    pub signed_at: OffsetDateTime,
    /// The signing request it answers (officials' approvals); none for seals.
    pub request_id: Option<String>,
}

/// Who produced a batch, and when: what [`ProducedSignature::batch`] needs besides the
/// signatures themselves.
#[derive(Debug, Clone)]
pub struct Producer<'a> {
    /// Seal or official.
    pub kind: Kind,
    /// The seal's or official's id.
    pub key_id: &'a str,
    /// The serial number of its certificate.
    pub serial: &'a [u8],
    /// The client id (seal) or citizen id (official).
    pub holder_id: &'a str,
    /// The signing time of the batch.
    pub signed_at: OffsetDateTime,
    /// The signing request (officials' approvals).
    pub request_id: Option<&'a str>,
}

impl ProducedSignature {
    /// The records of a batch signed by `producer`: `signed[i]` over `documents[i]`.
    pub fn batch(producer: &Producer<'_>, documents: &[Document], signed: &[Signed]) -> Vec<Self> {
        documents
            .iter()
            .zip(signed)
            .map(|(doc, sig)| Self {
                fingerprint: sig.fingerprint(),
                kind: producer.kind,
                serial: producer.serial.to_vec(),
                key_id: producer.key_id.to_owned(),
                holder_id: producer.holder_id.to_owned(),
                name: doc.name.clone(),
                digest: doc.digest,
                format: sig.format,
                signed_at: producer.signed_at,
                request_id: producer.request_id.map(str::to_owned),
            })
            .collect()
    }
}

/// Records a batch of produced signatures in `tx`, the transaction that also does whatever
/// else the signing changes; the signature trees are durable, so the batch is on disk
/// before `transact` returns.
///
/// # Errors
/// Storage errors (the caller's transaction then writes nothing).
pub fn record_produced(tx: &mut Tx<'_>, batch: &[ProducedSignature]) -> Result<()> {
    tx.signatures().record(batch);
    Ok(())
}
