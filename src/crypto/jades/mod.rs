//! JAdES-B-B (ETSI TS 119 182-1): a detached JWS in compact serialisation over a document's
//! SHA-256 digest. The payload is empty and unencoded (`b64: false`); the digest travels in
//! the `sigD` header (`ObjectIdByURIHash`), the signing time in `iat`. No Rust JOSE crate
//! signs an empty unencoded payload, so the JWS is assembled here (base64url and JSON are
//! encodings) and signed by the `Signer` (ES256, fixed-length `r‖s`). spec/signature-formats.md
//! describes the header.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::digest::sha256;
use super::format::{
    CertificateReference, FormatError, p256_point, parse_certificate, signer_chain, unix_seconds,
    verify_p256,
};
use super::signer::{SignatureAlgorithm, Signer};

/// `sigD.mId`: the signed data objects are named by URI and signed by their hash.
pub const OBJECT_ID_BY_URI_HASH: &str = "http://uri.etsi.org/19182/ObjectIdByURIHash";
/// `sigD.hashM` for SHA-256.
const HASH_S256: &str = "S256";

/// Signs `digest` (the SHA-256 of the document called `name`) as JAdES-B-B: returns
/// `<base64url header>..<base64url signature>`, the header being `alg` ES256, `x5c` (`chain`,
/// standard base64 DER, the signer's first), `x5t#S256`, `iat` (`signing_time` in seconds),
/// `b64: false`, `crit: ["sigD", "b64"]` and `sigD` with `pars: [name]`, `hashV: [digest]`.
/// [`BatchSigner`] signs many digests at one time with one key.
///
/// # Errors
/// [`FormatError::EmptyChain`], [`FormatError::Certificate`] or [`FormatError::KeyMismatch`]
/// for a chain that does not start with the signer's certificate,
/// [`FormatError::DocumentName`] for an empty name or one with control characters,
/// [`FormatError::SigningTime`] before 1970, [`FormatError::Sign`] when the key cannot sign.
pub fn sign(
    signer: &dyn Signer,
    chain: &[Vec<u8>],
    name: &str,
    digest: &[u8; 32],
    signing_time: OffsetDateTime,
) -> Result<String, FormatError> {
    BatchSigner::new(signer, chain, signing_time)?.sign(name, digest)
}

/// JAdES-B-B signatures of many documents with one key at one signing time: the chain is
/// checked against the key and encoded once (sealing signs up to 1000 digests a call).
pub struct BatchSigner<'a> {
    signer: &'a dyn Signer,
    x5c: Vec<String>,
    x5t: String,
    iat: u64,
}

/// The protected header. Its fields are in alphabetical order, as `serde_json` writes a
/// `Value` map, so the bytes are those of the JSON object the spec shows.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    b64: bool,
    crit: [&'static str; 2],
    iat: u64,
    #[serde(rename = "sigD")]
    sig_d: SigD<'a>,
    x5c: &'a [String],
    #[serde(rename = "x5t#S256")]
    x5t: &'a str,
}

#[derive(Serialize)]
struct SigD<'a> {
    #[serde(rename = "hashM")]
    hash_m: &'static str,
    #[serde(rename = "hashV")]
    hash_v: [String; 1],
    #[serde(rename = "mId")]
    m_id: &'static str,
    pars: [&'a str; 1],
}

impl<'a> BatchSigner<'a> {
    /// Prepares signatures by `signer`, whose certificate is `chain[0]`, at `signing_time`.
    ///
    /// # Errors
    /// As [`sign`], except for names and a failing key, which only [`Self::sign`] finds.
    pub fn new(
        signer: &'a dyn Signer,
        chain: &[Vec<u8>],
        signing_time: OffsetDateTime,
    ) -> Result<Self, FormatError> {
        signer_chain(signer, chain)?;
        let signer_der = chain.first().ok_or(FormatError::EmptyChain)?;
        Ok(Self {
            signer,
            x5c: chain.iter().map(|c| STANDARD.encode(c)).collect(),
            x5t: URL_SAFE_NO_PAD.encode(sha256(signer_der)),
            iat: unix_seconds(signing_time)?,
        })
    }

    /// The JWS of the document called `name` with SHA-256 `digest`.
    ///
    /// # Errors
    /// [`FormatError::DocumentName`] for an empty name or one with control characters,
    /// [`FormatError::Sign`] when the key cannot sign.
    pub fn sign(&self, name: &str, digest: &[u8; 32]) -> Result<String, FormatError> {
        check_name(name)?;
        let alg = match self.signer.algorithm() {
            SignatureAlgorithm::Es256 => SignatureAlgorithm::Es256.jose(),
        };
        let header = Header {
            alg,
            b64: false,
            crit: ["sigD", "b64"],
            iat: self.iat,
            sig_d: SigD {
                hash_m: HASH_S256,
                hash_v: [URL_SAFE_NO_PAD.encode(digest)],
                m_id: OBJECT_ID_BY_URI_HASH,
                pars: [name],
            },
            x5c: &self.x5c,
            x5t: &self.x5t,
        };
        let json = serde_json::to_vec(&header)
            .map_err(|e| FormatError::Encode(format!("JAdES header: {e}")))?;
        // RFC 7797 §3 with an empty payload: the signing input is the header and a dot.
        let mut jws = URL_SAFE_NO_PAD.encode(json);
        jws.push('.');
        let signature = self.signer.sign(jws.as_bytes())?;
        if signature.len() != 64 {
            return Err(FormatError::SignatureValue(format!(
                "{} bytes, not 64",
                signature.len()
            )));
        }
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

/// A name goes into `sigD.pars` as a URI reference: it must say something and be printable.
fn check_name(name: &str) -> Result<(), FormatError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.chars().any(char::is_control) {
        "it contains control characters"
    } else {
        return Ok(());
    };
    Err(FormatError::DocumentName {
        name: name.to_owned(),
        reason,
    })
}

/// One signed document as `sigD` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDocument {
    /// `sigD.pars[i]`.
    pub name: String,
    /// `sigD.hashV[i]`, decoded.
    pub digest: Vec<u8>,
}

/// A parsed JAdES signature: what its header claims, with each check available on its own.
#[derive(Debug, Clone)]
pub struct JadesSignature {
    /// The protected header, as decoded JSON.
    pub header: Map<String, Value>,
    /// The signer's certificate (`x5c[0]`, DER).
    pub signer_certificate: Vec<u8>,
    /// Every certificate in `x5c` (DER), the signer's first.
    pub chain: Vec<Vec<u8>>,
    /// `iat`, if it is a NumericDate.
    pub signing_time: Option<OffsetDateTime>,
    /// What `x5t#S256` says about `x5c[0]`.
    pub signing_certificate: CertificateReference,
    /// The documents `sigD` names (empty when `sigD` is missing or malformed).
    pub documents: Vec<SignedDocument>,
    /// The JWS signing input: the encoded header and a dot (the payload is empty).
    signing_input: String,
    /// The decoded signature value.
    signature: Vec<u8>,
}

impl JadesSignature {
    /// Whether the ES256 signature verifies (ring) with the key of `x5c[0]`. False for any
    /// other `alg` or a key that is not P-256.
    pub fn verify_signature(&self) -> bool {
        if self.header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return false;
        }
        let Ok(cert) = parse_certificate(0, &self.signer_certificate) else {
            return false;
        };
        p256_point(&cert).is_some_and(|point| {
            verify_p256(point, self.signing_input.as_bytes(), &self.signature, true)
        })
    }

    /// Whether `sigD` names `digest` (the SHA-256 of the document) with SHA-256.
    pub fn covers(&self, digest: &[u8]) -> bool {
        self.documents.iter().any(|d| d.digest == digest)
    }

    /// What keeps this signature from being JAdES-B-B as civis makes it (ETSI TS 119 182-1
    /// §5.1, §5.2.8, §6): every missing or wrong header, named. Empty when it conforms.
    pub fn conformance_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let h = &self.header;
        if h.get("alg").and_then(Value::as_str) != Some("ES256") {
            problems.push("alg is not ES256".to_owned());
        }
        match self.signing_certificate {
            CertificateReference::Matches => {}
            CertificateReference::Absent => problems.push("x5t#S256 missing".to_owned()),
            CertificateReference::Mismatch | CertificateReference::UnsupportedHash => {
                problems.push("x5t#S256 is not the SHA-256 of x5c[0]".to_owned());
            }
        }
        if self.signing_time.is_none() {
            problems.push("iat missing or not a NumericDate".to_owned());
        }
        if h.get("b64") != Some(&Value::Bool(false)) {
            problems.push("b64 is not false".to_owned());
        }
        match h.get("crit").and_then(Value::as_array) {
            None => problems.push("crit missing".to_owned()),
            Some(crit) => {
                for needed in ["sigD", "b64"] {
                    if !crit.iter().any(|c| c == needed) {
                        problems.push(format!("crit does not list {needed}"));
                    }
                }
                for c in crit {
                    if !matches!(c.as_str(), Some("sigD" | "b64")) {
                        problems.push(format!("crit lists {c}, which civis does not process"));
                    }
                }
            }
        }
        problems.extend(sig_d_problems(h.get("sigD")));
        problems
    }
}

/// What is wrong with `sigD` for one or more documents signed by their SHA-256 hash.
fn sig_d_problems(sig_d: Option<&Value>) -> Vec<String> {
    let Some(sig_d) = sig_d else {
        return vec!["sigD missing".to_owned()];
    };
    let mut problems = Vec::new();
    if sig_d.get("mId").and_then(Value::as_str) != Some(OBJECT_ID_BY_URI_HASH) {
        problems.push(format!("sigD.mId is not {OBJECT_ID_BY_URI_HASH}"));
    }
    if sig_d.get("hashM").and_then(Value::as_str) != Some(HASH_S256) {
        problems.push("sigD.hashM is not S256".to_owned());
    }
    if documents(sig_d).is_none_or(|d| d.is_empty()) {
        problems.push(
            "sigD.pars and sigD.hashV are not equally long lists of names and SHA-256 digests"
                .to_owned(),
        );
    }
    problems
}

/// The documents of a well-formed `sigD`: `pars` and `hashV` of equal length, every name a
/// string and every digest 32 bytes of base64url.
fn documents(sig_d: &Value) -> Option<Vec<SignedDocument>> {
    let pars = sig_d.get("pars")?.as_array()?;
    let hashes = sig_d.get("hashV")?.as_array()?;
    if pars.len() != hashes.len() {
        return None;
    }
    pars.iter()
        .zip(hashes)
        .map(|(name, hash)| {
            let digest = URL_SAFE_NO_PAD
                .decode(hash.as_str()?)
                .ok()
                .filter(|d| d.len() == 32)?;
            Some(SignedDocument {
                name: name.as_str()?.to_owned(),
                digest,
            })
        })
        .collect()
}

/// Reads a detached JAdES signature in compact serialisation.
///
/// # Errors
/// [`FormatError::NotJws`] unless it is three base64url parts, [`FormatError::Attached`] when
/// the payload is not empty, [`FormatError::Header`] when the header is not a JSON object or
/// its `x5c` is missing or not a list of standard base64 strings,
/// [`FormatError::Certificate`] when one of those is not a DER certificate.
pub fn inspect(jws: &str) -> Result<JadesSignature, FormatError> {
    let parts: Vec<&str> = jws.split('.').collect();
    let [header_b64, payload, signature_b64] = parts.as_slice() else {
        return Err(FormatError::NotJws(format!(
            "{} parts separated by dots, not 3",
            parts.len()
        )));
    };
    if !payload.is_empty() {
        return Err(FormatError::Attached);
    }
    let header_json = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|e| FormatError::NotJws(format!("the header is not base64url ({e})")))?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|e| FormatError::NotJws(format!("the signature is not base64url ({e})")))?;
    let header: Map<String, Value> = serde_json::from_slice(&header_json)
        .map_err(|e| FormatError::Header(format!("not a JSON object ({e})")))?;

    let chain = x5c(&header)?;
    let signer_certificate = chain
        .first()
        .cloned()
        .ok_or(FormatError::MissingSignerCertificate)?;
    let signing_certificate = match header.get("x5t#S256") {
        None => CertificateReference::Absent,
        Some(t) if t.as_str() == Some(&URL_SAFE_NO_PAD.encode(sha256(&signer_certificate))) => {
            CertificateReference::Matches
        }
        Some(_) => CertificateReference::Mismatch,
    };
    let signing_time = header
        .get("iat")
        .and_then(Value::as_i64)
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
    let documents = header
        .get("sigD")
        .filter(|s| s.get("hashM").and_then(Value::as_str) == Some(HASH_S256))
        .and_then(documents)
        .unwrap_or_default();
    Ok(JadesSignature {
        signing_input: format!("{header_b64}."),
        header,
        signer_certificate,
        chain,
        signing_time,
        signing_certificate,
        documents,
        signature,
    })
}

/// `x5c`: standard base64 (with padding, RFC 7515 §4.1.6) DER certificates, each parsed.
fn x5c(header: &Map<String, Value>) -> Result<Vec<Vec<u8>>, FormatError> {
    let list = header
        .get("x5c")
        .ok_or(FormatError::MissingSignerCertificate)?
        .as_array()
        .ok_or_else(|| FormatError::Header("x5c is not a list".to_owned()))?;
    list.iter()
        .enumerate()
        .map(|(index, c)| {
            let der = c
                .as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .ok_or_else(|| {
                    FormatError::Header(format!("x5c[{index}] is not standard base64"))
                })?;
            parse_certificate(index, &der)?;
            Ok(der)
        })
        .collect()
}

#[cfg(test)]
mod tests;
