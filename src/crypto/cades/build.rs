//! Making a CAdES-B-B signature: the signed attributes, their signature by the `Signer`
//! (DER ECDSA inside CMS), and the SignedData around them, all through the RustCrypto types.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier,
    SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec, UtcTime};
use der::{Any, Encode as _};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::time::Time;

use super::{
    ECDSA_WITH_SHA256, EssCertIdV2, ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SHA256,
    ID_SIGNED_DATA, ID_SIGNING_CERTIFICATE_V2, ID_SIGNING_TIME, IssuerSerial, SigningCertificateV2,
    algorithm,
};
use crate::crypto::digest::sha256;
use crate::crypto::format::{FormatError, signer_chain, unix_seconds};
use crate::crypto::signer::Signer;

/// Signs `digest` (the SHA-256 of a document) as CAdES-B-B: a DER `ContentInfo` holding a
/// detached `SignedData` with one signer, whose signed attributes are content-type (id-data),
/// message-digest (`digest`), signing-time (`signing_time`, whole seconds) and
/// signing-certificate-v2 (SHA-256 of `chain[0]` with its issuer and serial number).
/// `chain` is DER, the signer's certificate first; all of it goes into `certificates`.
/// [`BatchSigner`] signs many digests at one time with one key.
///
/// # Errors
/// [`FormatError::EmptyChain`], [`FormatError::Certificate`] or [`FormatError::KeyMismatch`]
/// for a chain that does not start with the signer's certificate,
/// [`FormatError::SigningTime`] before 1970, [`FormatError::Sign`] when the key cannot sign.
pub fn sign(
    signer: &dyn Signer,
    chain: &[Vec<u8>],
    digest: &[u8; 32],
    signing_time: OffsetDateTime,
) -> Result<Vec<u8>, FormatError> {
    BatchSigner::new(signer, chain, signing_time)?.sign(digest)
}

/// [`sign`], with signing-certificate-v2 naming `referenced` (DER) instead of `chain[0]`:
/// `sign` passes `chain[0]`; tests pass another certificate to show the mismatch is caught
/// (here, and by outside validators through [`super::testing`]).
pub fn sign_referencing(
    signer: &dyn Signer,
    chain: &[Vec<u8>],
    referenced: &[u8],
    digest: &[u8; 32],
    signing_time: OffsetDateTime,
) -> Result<Vec<u8>, FormatError> {
    BatchSigner::referencing(signer, chain, referenced, signing_time)?.sign(digest)
}

/// CAdES-B-B signatures of many digests with one key at one signing time: the chain is
/// parsed and checked against the key, and every part of the signature that does not depend
/// on the digest is built, once (sealing signs up to 1000 digests a call).
pub struct BatchSigner<'a> {
    signer: &'a dyn Signer,
    /// The three signed attributes other than message-digest.
    fixed_attributes: [Attribute; 3],
    sid: SignerIdentifier,
    /// Everything but `signer_infos`, which [`Self::sign`] fills in for each digest.
    signed_data: SignedData,
}

impl<'a> BatchSigner<'a> {
    /// Prepares signatures by `signer`, whose certificate is `chain[0]`, at `signing_time`.
    ///
    /// # Errors
    /// As [`sign`], except for a failing key, which only [`Self::sign`] finds.
    pub fn new(
        signer: &'a dyn Signer,
        chain: &[Vec<u8>],
        signing_time: OffsetDateTime,
    ) -> Result<Self, FormatError> {
        let signer_der = chain.first().ok_or(FormatError::EmptyChain)?;
        Self::referencing(signer, chain, signer_der, signing_time)
    }

    /// [`Self::new`], with signing-certificate-v2 naming `referenced` (see
    /// [`sign_referencing`]).
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn referencing(
        signer: &'a dyn Signer,
        chain: &[Vec<u8>],
        referenced: &[u8],
        signing_time: OffsetDateTime,
    ) -> Result<Self, FormatError> {
        let certs = signer_chain(signer, chain)?;
        let signer_cert = certs.first().ok_or(FormatError::EmptyChain)?;
        let fixed_attributes = fixed_attributes(signer_cert, referenced, signing_time)?;
        let tbs = signer_cert.tbs_certificate();
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer().clone(),
            serial_number: tbs.serial_number().clone(),
        });
        // `certificates` is a SET: a certificate given twice is carried once.
        let mut certificates = Vec::with_capacity(certs.len());
        for cert in certs.into_iter().map(CertificateChoices::Certificate) {
            if !certificates.contains(&cert) {
                certificates.push(cert);
            }
        }
        let signed_data = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![algorithm(ID_SHA256)]).map_err(encode)?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: ID_DATA,
                econtent: None,
            },
            certificates: Some(CertificateSet::try_from(certificates).map_err(encode)?),
            crls: None,
            signer_infos: SignerInfos::try_from(Vec::new()).map_err(encode)?,
        };
        Ok(Self {
            signer,
            fixed_attributes,
            sid,
            signed_data,
        })
    }

    /// The DER `ContentInfo` of the signature over `digest`.
    ///
    /// # Errors
    /// [`FormatError::Sign`] when the key cannot sign; [`FormatError::Encode`] never in
    /// practice (every part was encodable when prepared).
    pub fn sign(&mut self, digest: &[u8; 32]) -> Result<Vec<u8>, FormatError> {
        let signed_attrs = signed_attributes(&self.fixed_attributes, digest)?;
        // RFC 5652 §5.4: the signature covers the attributes' DER with the SET OF tag (0x31),
        // not the [0] IMPLICIT tag they carry inside SignerInfo.
        let to_be_signed = signed_attrs.to_der().map_err(encode)?;
        let fixed = self.signer.sign(&to_be_signed)?;
        let der_signature = p256::ecdsa::Signature::from_slice(&fixed)
            .map_err(|e| FormatError::SignatureValue(e.to_string()))?
            .to_der();
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: self.sid.clone(),
            digest_alg: algorithm(ID_SHA256),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: algorithm(ECDSA_WITH_SHA256),
            signature: OctetString::new(der_signature.as_bytes()).map_err(encode)?,
            unsigned_attrs: None,
        };
        self.signed_data.signer_infos = SignerInfos::try_from(vec![signer_info]).map_err(encode)?;
        ContentInfo {
            content_type: ID_SIGNED_DATA,
            content: Any::encode_from(&self.signed_data).map_err(encode)?,
        }
        .to_der()
        .map_err(encode)
    }
}

/// The signed attributes that are the same for every digest: content-type, signing-time
/// and signing-certificate-v2.
fn fixed_attributes(
    signer_cert: &Certificate,
    referenced: &[u8],
    signing_time: OffsetDateTime,
) -> Result<[Attribute; 3], FormatError> {
    let tbs = signer_cert.tbs_certificate();
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(sha256(referenced).to_vec()).map_err(encode)?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
                serial_number: tbs.serial_number().clone(),
            }),
        }],
        policies: None,
    };
    Ok([
        attribute(ID_CONTENT_TYPE, &ID_DATA)?,
        attribute(ID_SIGNING_TIME, &cms_time(signing_time)?)?,
        attribute(ID_SIGNING_CERTIFICATE_V2, &ess)?,
    ])
}

/// The four signed attributes, as a DER SET OF (sorted by encoding by `SetOfVec`): the
/// fixed three and message-digest.
fn signed_attributes(
    fixed: &[Attribute; 3],
    digest: &[u8; 32],
) -> Result<SignedAttributes, FormatError> {
    let mut attributes = Vec::with_capacity(4);
    attributes.extend_from_slice(fixed);
    attributes.push(attribute(
        ID_MESSAGE_DIGEST,
        &OctetString::new(digest.to_vec()).map_err(encode)?,
    )?);
    SetOfVec::try_from(attributes).map_err(encode)
}

/// An attribute with exactly one value.
fn attribute(
    oid: der::oid::ObjectIdentifier,
    value: &(impl der::EncodeValue + der::Tagged),
) -> Result<Attribute, FormatError> {
    let value = Any::encode_from(value).map_err(encode)?;
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(encode)?,
    })
}

/// RFC 5652 §11.3: UTCTime through 2049, GeneralizedTime from 2050.
fn cms_time(t: OffsetDateTime) -> Result<Time, FormatError> {
    let since_epoch = std::time::Duration::from_secs(unix_seconds(t)?);
    if t.year() < 2050 {
        UtcTime::from_unix_duration(since_epoch).map(Time::UtcTime)
    } else {
        der::asn1::GeneralizedTime::from_unix_duration(since_epoch).map(Time::GeneralTime)
    }
    .map_err(|e| FormatError::SigningTime(format!("{t} ({e})")))
}

fn encode(e: der::Error) -> FormatError {
    FormatError::Encode(e.to_string())
}

#[cfg(test)]
mod tests {
    use der::{Decode as _, Encode as _};
    use time::macros::datetime;

    use super::*;
    use crate::crypto::format::testing::fixture;

    #[test]
    fn signed_attributes_are_a_der_set_sorted_by_encoding() {
        let f = fixture("Ana Novak");
        let cert = Certificate::from_der(&f.chain[0]).unwrap();
        let fixed = fixed_attributes(&cert, &f.chain[0], datetime!(2026-03-01 12:00 UTC)).unwrap();
        let attrs = signed_attributes(&fixed, &[7; 32]).unwrap();
        let der = attrs.to_der().unwrap();
        assert_eq!(der[0], 0x31, "SET OF tag, as the signature covers it");
        let encodings: Vec<Vec<u8>> = attrs.iter().map(|a| a.to_der().unwrap()).collect();
        let mut sorted = encodings.clone();
        sorted.sort();
        assert_eq!(encodings, sorted, "DER orders a SET OF by encoding");
        assert_eq!(encodings.len(), 4);
    }

    #[test]
    fn signing_time_is_utc_time_until_2049_and_generalized_time_after() {
        assert!(matches!(
            cms_time(datetime!(2049-12-31 23:59:59 UTC)).unwrap(),
            Time::UtcTime(_)
        ));
        assert!(matches!(
            cms_time(datetime!(2050-01-01 0:00 UTC)).unwrap(),
            Time::GeneralTime(_)
        ));
        assert!(cms_time(datetime!(1960-01-01 0:00 UTC)).is_err());
    }

    #[test]
    fn esscertidv2_leaves_out_the_default_sha256_algorithm() {
        let f = fixture("Ana Novak");
        let cert = Certificate::from_der(&f.chain[0]).unwrap();
        let fixed = fixed_attributes(&cert, &f.chain[0], datetime!(2026-03-01 12:00 UTC)).unwrap();
        let attrs = signed_attributes(&fixed, &[7; 32]).unwrap();
        let ess = attrs
            .iter()
            .find(|a| a.oid == ID_SIGNING_CERTIFICATE_V2)
            .unwrap();
        let value = ess.values.get(0).unwrap().to_der().unwrap();
        let id = SigningCertificateV2::from_der(&value).unwrap().certs[0].clone();
        assert_eq!(id.hash_algorithm, None);
        assert_eq!(id.cert_hash.as_bytes(), sha256(&f.chain[0]));
        let fields = Vec::<Any>::from_der(&id.to_der().unwrap()).unwrap();
        assert_eq!(
            fields[0].header().tag(),
            der::Tag::OctetString,
            "certHash comes first: no hashAlgorithm"
        );
    }
}
