//! Round trips and refusals: what `sign` writes, `inspect` reads back, and every tampering
//! fails the check it should.

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerInfos};
use der::{Any, Decode as _, Encode as _};
use time::macros::datetime;

use super::*;
use crate::crypto::digest::sha256;
use crate::crypto::format::testing::{Fixture, fixture};
use crate::crypto::format::{CertificateReference, FormatError};

const DIGEST: [u8; 32] = [0xab; 32];

fn signed(f: &Fixture) -> Vec<u8> {
    sign(
        &f.signer,
        &f.chain,
        &DIGEST,
        datetime!(2026-03-01 12:34:56.789 UTC),
    )
    .unwrap()
}

/// Decodes a signature, lets `change` edit its SignedData, and encodes it again.
fn edited(der: &[u8], change: impl FnOnce(&mut SignedData)) -> Vec<u8> {
    let mut info = ContentInfo::from_der(der).unwrap();
    let mut sd: SignedData = info.content.decode_as().unwrap();
    change(&mut sd);
    info.content = Any::encode_from(&sd).unwrap();
    info.to_der().unwrap()
}

#[test]
fn a_signature_reads_back_with_every_check_passing() {
    let f = fixture("Ana Novak");
    let sig = inspect(&signed(&f)).unwrap();
    assert!(sig.verify_signature());
    assert!(sig.covers(&DIGEST));
    assert_eq!(sig.conformance_problems(), Vec::<String>::new());
    assert_eq!(sig.signing_certificate_v2, CertificateReference::Matches);
    assert_eq!(sig.signing_time, Some(datetime!(2026-03-01 12:34:56 UTC)));
    assert_eq!(sig.content_type.as_deref(), Some("1.2.840.113549.1.7.1"));
    assert_eq!(sig.signer_certificate, f.chain[0]);
    assert_eq!(sig.chain, f.chain, "signer first, then the CA");
    assert_eq!(sig.digest_algorithm, "2.16.840.1.101.3.4.2.1");
    assert_eq!(sig.signature_algorithm, "1.2.840.10045.4.3.2");
}

#[test]
fn algorithm_identifiers_carry_no_parameters() {
    let f = fixture("Ana Novak");
    let der = signed(&f);
    let info = ContentInfo::from_der(&der).unwrap();
    let sd: SignedData = info.content.decode_as().unwrap();
    assert_eq!(sd.digest_algorithms.len(), 1);
    assert!(sd.digest_algorithms.iter().all(|a| a.parameters.is_none()));
    let si = &sd.signer_infos.0.as_slice()[0];
    assert!(si.digest_alg.parameters.is_none());
    assert!(si.signature_algorithm.parameters.is_none());
    assert_eq!(si.signature.as_bytes()[0], 0x30, "ECDSA inside CMS is DER");
}

#[test]
fn another_digest_is_not_covered() {
    let f = fixture("Ana Novak");
    let sig = inspect(&signed(&f)).unwrap();
    assert!(!sig.covers(&[0xac; 32]));
    assert!(!sig.covers(&DIGEST[..31]));
}

#[test]
fn a_changed_message_digest_breaks_the_signature() {
    let f = fixture("Ana Novak");
    let mut der = signed(&f);
    let at = der.windows(32).position(|w| w == DIGEST).unwrap();
    der[at] ^= 1;
    let sig = inspect(&der).unwrap();
    assert!(!sig.covers(&DIGEST));
    assert!(!sig.verify_signature());
}

#[test]
fn a_changed_signature_byte_fails_verification_only() {
    let f = fixture("Ana Novak");
    let mut der = signed(&f);
    let last = der.len() - 1;
    der[last] ^= 1;
    let sig = inspect(&der).unwrap();
    assert!(!sig.verify_signature());
    assert!(sig.covers(&DIGEST));
    assert!(sig.conformance_problems().is_empty());
}

#[test]
fn another_signers_certificate_does_not_verify() {
    let ana = fixture("Ana Novak");
    let bob = fixture("Bob Horvat");
    // Ana's signature, but the certificates and the signer id are Bob's.
    let bobs = ContentInfo::from_der(&signed(&bob)).unwrap();
    let bob_sd: SignedData = bobs.content.decode_as().unwrap();
    let der = edited(&signed(&ana), |sd| {
        let bob_si = &bob_sd.signer_infos.0.as_slice()[0];
        let mut si = sd.signer_infos.0.as_slice()[0].clone();
        si.sid = bob_si.sid.clone();
        sd.signer_infos = SignerInfos::try_from(vec![si]).unwrap();
        sd.certificates = bob_sd.certificates.clone();
    });
    let sig = inspect(&der).unwrap();
    assert_eq!(sig.signer_certificate, bob.chain[0]);
    assert!(!sig.verify_signature());
    assert_eq!(sig.signing_certificate_v2, CertificateReference::Mismatch);
}

#[test]
fn a_wrong_certificate_hash_is_reported_even_when_the_signature_verifies() {
    let f = fixture("Ana Novak");
    let other = fixture("Ana Novak");
    let der = build::sign_referencing(
        &f.signer,
        &f.chain,
        &other.chain[0],
        &DIGEST,
        datetime!(2026-03-01 12:00 UTC),
    )
    .unwrap();
    let sig = inspect(&der).unwrap();
    assert!(
        sig.verify_signature(),
        "the key is right; only the reference is wrong"
    );
    assert_eq!(sig.signing_certificate_v2, CertificateReference::Mismatch);
    assert_eq!(
        sig.conformance_problems(),
        vec!["signing-certificate-v2 does not reference the signer's certificate"]
    );
    assert_ne!(sha256(&other.chain[0]), sha256(&f.chain[0]));
}

#[test]
fn a_certificate_hash_with_another_serial_number_is_a_mismatch() {
    let f = fixture("Ana Novak");
    let der = edited(&signed(&f), |sd| {
        let mut si = sd.signer_infos.0.as_slice()[0].clone();
        let attrs: Vec<_> = si
            .signed_attrs
            .iter()
            .flat_map(|a| a.iter())
            .map(|a| {
                let mut a = a.clone();
                if a.oid == ID_SIGNING_CERTIFICATE_V2 {
                    let value = a.values.get(0).unwrap().to_der().unwrap();
                    let mut ess = SigningCertificateV2::from_der(&value).unwrap();
                    let is = ess.certs[0].issuer_serial.as_mut().unwrap();
                    is.serial_number = x509_cert::serial_number::SerialNumber::new(&[7]).unwrap();
                    a.values = der::asn1::SetOfVec::try_from(vec![Any::encode_from(&ess).unwrap()])
                        .unwrap();
                }
                a
            })
            .collect();
        si.signed_attrs = Some(der::asn1::SetOfVec::try_from(attrs).unwrap());
        sd.signer_infos = SignerInfos::try_from(vec![si]).unwrap();
    });
    let sig = inspect(&der).unwrap();
    assert_eq!(sig.signing_certificate_v2, CertificateReference::Mismatch);
}

#[test]
fn every_truncation_and_garbage_is_an_error_not_a_panic() {
    let f = fixture("Ana Novak");
    let der = signed(&f);
    for len in 0..der.len() {
        assert!(
            matches!(inspect(&der[..len]), Err(FormatError::Der(_))),
            "truncated to {len}"
        );
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(matches!(inspect(&trailing), Err(FormatError::Der(_))));
    for garbage in [
        &b"hello"[..],
        &[0x30, 0x80, 0, 0],
        &[0xff; 64],
        &[0x30, 0x00],
    ] {
        assert!(inspect(garbage).is_err());
    }
    // Every single flipped bit: an error or a signature that fails a check, never a panic.
    for i in 0..der.len() {
        let mut d = der.clone();
        d[i] ^= 0x80;
        if let Ok(sig) = inspect(&d) {
            let intact = sig.verify_signature()
                && sig.covers(&DIGEST)
                && sig.conformance_problems().is_empty();
            // Bytes the signature does not cover (the CA certificate's body, the outer
            // lengths cannot change without failing to parse) may change the CA only.
            if intact {
                assert_ne!(sig.chain, f.chain, "flipping byte {i} changed nothing?");
            }
        }
    }
}

#[test]
fn structures_that_are_not_detached_signed_data_are_named() {
    let f = fixture("Ana Novak");
    let der = signed(&f);
    let data = ContentInfo {
        content_type: ID_DATA,
        content: Any::encode_from(&der::asn1::OctetString::new(vec![1, 2]).unwrap()).unwrap(),
    };
    assert_eq!(
        inspect(&data.to_der().unwrap()).unwrap_err(),
        FormatError::NotSignedData("1.2.840.113549.1.7.1".into())
    );
    let attached = edited(&der, |sd| {
        sd.encap_content_info.econtent =
            Some(Any::encode_from(&der::asn1::OctetString::new(b"doc".to_vec()).unwrap()).unwrap());
    });
    assert_eq!(inspect(&attached).unwrap_err(), FormatError::Attached);
    let no_signer = edited(&der, |sd| {
        sd.signer_infos = SignerInfos::try_from(vec![]).unwrap()
    });
    assert_eq!(
        inspect(&no_signer).unwrap_err(),
        FormatError::SignerCount(0)
    );
    let no_certs = edited(&der, |sd| sd.certificates = None);
    assert_eq!(
        inspect(&no_certs).unwrap_err(),
        FormatError::MissingSignerCertificate
    );
    let no_attrs = edited(&der, |sd| {
        let mut si = sd.signer_infos.0.as_slice()[0].clone();
        si.signed_attrs = None;
        sd.signer_infos = SignerInfos::try_from(vec![si]).unwrap();
    });
    assert_eq!(
        inspect(&no_attrs).unwrap_err(),
        FormatError::NoSignedAttributes
    );
}

#[test]
fn missing_attributes_are_each_named() {
    let f = fixture("Ana Novak");
    let der = edited(&signed(&f), |sd| {
        let mut si = sd.signer_infos.0.as_slice()[0].clone();
        let keep: Vec<_> = si
            .signed_attrs
            .iter()
            .flat_map(|a| a.iter())
            .filter(|a| a.oid == ID_MESSAGE_DIGEST)
            .cloned()
            .collect();
        si.signed_attrs = Some(der::asn1::SetOfVec::try_from(keep).unwrap());
        sd.signer_infos = SignerInfos::try_from(vec![si]).unwrap();
    });
    let sig = inspect(&der).unwrap();
    assert_eq!(
        sig.conformance_problems(),
        vec![
            "content-type attribute missing",
            "signing-time attribute missing",
            "signing-certificate-v2 attribute missing",
        ]
    );
    assert!(
        !sig.verify_signature(),
        "the signature covered four attributes"
    );
}

#[test]
fn sign_refuses_a_chain_of_someone_else() {
    let ana = fixture("Ana Novak");
    let bob = fixture("Bob Horvat");
    assert!(matches!(
        sign(
            &ana.signer,
            &bob.chain,
            &DIGEST,
            datetime!(2026-03-01 12:00 UTC)
        ),
        Err(FormatError::KeyMismatch { .. })
    ));
    assert_eq!(
        sign(&ana.signer, &[], &DIGEST, datetime!(2026-03-01 12:00 UTC)).unwrap_err(),
        FormatError::EmptyChain
    );
}

#[test]
fn a_certificate_given_twice_is_carried_once() {
    let f = fixture("Ana Novak");
    let chain = vec![f.chain[0].clone(), f.chain[1].clone(), f.chain[1].clone()];
    let der = sign(&f.signer, &chain, &DIGEST, datetime!(2026-03-01 12:00 UTC)).unwrap();
    let sig = inspect(&der).unwrap();
    assert_eq!(sig.chain, f.chain);
    assert!(sig.verify_signature());
}
