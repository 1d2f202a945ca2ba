//! Round trips and refusals: what `sign` writes, `inspect` reads back, and every tampering
//! fails the check it should.

use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::crypto::format::testing::{Fixture, fixture};

const DIGEST: [u8; 32] = [0xab; 32];

fn signed(f: &Fixture) -> String {
    sign(
        &f.signer,
        &f.chain,
        "permit-2026-17.pdf",
        &DIGEST,
        datetime!(2026-03-01 12:34:56.789 UTC),
    )
    .unwrap()
}

/// The JWS with its header changed by `change` and the original signature kept.
fn reheadered(jws: &str, change: impl FnOnce(&mut Map<String, Value>)) -> String {
    let (header, rest) = jws.split_once('.').unwrap();
    let mut h: Map<String, Value> =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    change(&mut h);
    format!(
        "{}.{rest}",
        URL_SAFE_NO_PAD.encode(Value::Object(h).to_string())
    )
}

#[test]
fn a_signature_reads_back_with_every_check_passing() {
    let f = fixture("Ana Novak");
    let jws = signed(&f);
    assert!(jws.contains(".."), "detached, empty payload: {jws}");
    let sig = inspect(&jws).unwrap();
    assert!(sig.verify_signature());
    assert!(sig.covers(&DIGEST));
    assert_eq!(sig.conformance_problems(), Vec::<String>::new());
    assert_eq!(sig.signing_certificate, CertificateReference::Matches);
    assert_eq!(sig.signing_time, Some(datetime!(2026-03-01 12:34:56 UTC)));
    assert_eq!(sig.chain, f.chain);
    assert_eq!(sig.signer_certificate, f.chain[0]);
    assert_eq!(
        sig.documents,
        vec![SignedDocument {
            name: "permit-2026-17.pdf".into(),
            digest: DIGEST.to_vec()
        }]
    );
}

#[test]
fn the_header_is_exactly_the_contracts() {
    let f = fixture("Ana Novak");
    let sig = inspect(&signed(&f)).unwrap();
    let expected = json!({
        "alg": "ES256",
        "x5c": [STANDARD.encode(&f.chain[0]), STANDARD.encode(&f.chain[1])],
        "x5t#S256": URL_SAFE_NO_PAD.encode(sha256(&f.chain[0])),
        "iat": 1_772_368_496,
        "b64": false,
        "crit": ["sigD", "b64"],
        "sigD": {
            "mId": "http://uri.etsi.org/19182/ObjectIdByURIHash",
            "pars": ["permit-2026-17.pdf"],
            "hashM": "S256",
            "hashV": [URL_SAFE_NO_PAD.encode(DIGEST)],
        },
    });
    assert_eq!(Value::Object(sig.header), expected);
}

#[test]
fn a_changed_digest_in_the_header_breaks_the_signature() {
    let f = fixture("Ana Novak");
    let jws = reheadered(&signed(&f), |h| {
        h["sigD"]["hashV"][0] = Value::String(URL_SAFE_NO_PAD.encode([0xac; 32]));
    });
    let sig = inspect(&jws).unwrap();
    assert!(!sig.covers(&DIGEST));
    assert!(sig.covers(&[0xac; 32]));
    assert!(!sig.verify_signature());
}

#[test]
fn a_changed_signature_byte_fails_verification_only() {
    let f = fixture("Ana Novak");
    let jws = signed(&f);
    let (head, sig_b64) = jws.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
    raw[10] ^= 1;
    let sig = inspect(&format!("{head}.{}", URL_SAFE_NO_PAD.encode(raw))).unwrap();
    assert!(!sig.verify_signature());
    assert!(sig.covers(&DIGEST));
    assert!(sig.conformance_problems().is_empty());
}

#[test]
fn another_certificate_fails_the_hash_and_the_signature() {
    let ana = fixture("Ana Novak");
    let bob = fixture("Bob Horvat");
    let jws = reheadered(&signed(&ana), |h| {
        h["x5c"] = json!([STANDARD.encode(&bob.chain[0])]);
    });
    let sig = inspect(&jws).unwrap();
    assert_eq!(sig.signing_certificate, CertificateReference::Mismatch);
    assert!(!sig.verify_signature());
    assert_eq!(
        sig.conformance_problems(),
        vec!["x5t#S256 is not the SHA-256 of x5c[0]"]
    );
}

#[test]
fn missing_and_wrong_headers_are_each_named() {
    let f = fixture("Ana Novak");
    let jws = reheadered(&signed(&f), |h| {
        for k in ["x5t#S256", "iat", "b64"] {
            h.remove(k);
        }
        h["alg"] = json!("ES384");
        h["crit"] = json!(["b64", "exp"]);
        h["sigD"]["hashM"] = json!("S512");
    });
    let sig = inspect(&jws).unwrap();
    assert_eq!(
        sig.conformance_problems(),
        vec![
            "alg is not ES256",
            "x5t#S256 missing",
            "iat missing or not a NumericDate",
            "b64 is not false",
            "crit does not list sigD",
            "crit lists \"exp\", which civis does not process",
            "sigD.hashM is not S256",
        ]
    );
    assert!(
        !sig.covers(&DIGEST),
        "a digest under another hashM is no SHA-256"
    );
    assert!(!sig.verify_signature());
    let no_sig_d = reheadered(&signed(&f), |h| {
        h.remove("sigD");
    });
    assert_eq!(
        inspect(&no_sig_d).unwrap().conformance_problems(),
        vec!["sigD missing"]
    );
    let uneven = reheadered(&signed(&f), |h| {
        h["sigD"]["pars"] = json!(["a", "b"]);
        h["sigD"]["mId"] = json!("http://uri.etsi.org/19182/HttpHeaders");
    });
    assert_eq!(inspect(&uneven).unwrap().conformance_problems().len(), 2);
}

#[test]
fn malformed_input_is_an_error_naming_the_problem() {
    let f = fixture("Ana Novak");
    let jws = signed(&f);
    let (header, signature) = jws.split_once("..").unwrap();
    let err = |s: &str| inspect(s).unwrap_err();
    assert!(matches!(err("not a jws"), FormatError::NotJws(_)));
    assert!(matches!(
        err(&format!("{header}.{signature}")),
        FormatError::NotJws(_)
    ));
    assert_eq!(
        err(&format!("{header}.cGF5bG9hZA.{signature}")),
        FormatError::Attached
    );
    assert!(matches!(
        err(&format!("{header}!..{signature}")),
        FormatError::NotJws(_)
    ));
    assert!(matches!(
        err(&format!("{header}..{signature}=")),
        FormatError::NotJws(_)
    ));
    let not_object = URL_SAFE_NO_PAD.encode("[1,2]");
    assert!(matches!(
        err(&format!("{not_object}..{signature}")),
        FormatError::Header(_)
    ));
    let no_x5c = reheadered(&jws, |h| {
        h.remove("x5c");
    });
    assert_eq!(err(&no_x5c), FormatError::MissingSignerCertificate);
    let empty_x5c = reheadered(&jws, |h| h["x5c"] = json!([]));
    assert_eq!(err(&empty_x5c), FormatError::MissingSignerCertificate);
    let url_x5c = reheadered(&jws, |h| {
        h["x5c"] = json!([URL_SAFE_NO_PAD.encode(&f.chain[0])]);
    });
    assert!(matches!(err(&url_x5c), FormatError::Header(_)));
    let not_cert = reheadered(&jws, |h| h["x5c"] = json!([STANDARD.encode(b"hello")]));
    assert!(matches!(
        err(&not_cert),
        FormatError::Certificate { index: 0, .. }
    ));
}

#[test]
fn every_truncation_is_an_error_or_fails_a_check_never_a_panic() {
    let f = fixture("Ana Novak");
    let jws = signed(&f);
    for len in 0..jws.len() {
        let Some(prefix) = jws.get(..len) else {
            continue;
        };
        if let Ok(sig) = inspect(prefix) {
            assert!(!sig.verify_signature(), "truncated to {len} still verifies");
        }
    }
    for garbage in ["", ".", "..", "...", "\u{0}..", "e30..", "e30..AA"] {
        if let Ok(sig) = inspect(garbage) {
            assert!(!sig.verify_signature());
        }
    }
}

#[test]
fn names_must_be_printable_and_chains_the_signers() {
    let ana = fixture("Ana Novak");
    let bob = fixture("Bob Horvat");
    let t = datetime!(2026-03-01 12:00 UTC);
    for bad in ["", "a\nb", "\u{7}"] {
        assert!(matches!(
            sign(&ana.signer, &ana.chain, bad, &DIGEST, t),
            Err(FormatError::DocumentName { .. })
        ));
    }
    assert!(
        sign(
            &ana.signer,
            &ana.chain,
            "Odločba št. 5/2026 \"final\".pdf",
            &DIGEST,
            t
        )
        .is_ok()
    );
    assert!(matches!(
        sign(&ana.signer, &bob.chain, "a.pdf", &DIGEST, t),
        Err(FormatError::KeyMismatch { .. })
    ));
    assert!(matches!(
        sign(
            &ana.signer,
            &ana.chain,
            "a.pdf",
            &DIGEST,
            datetime!(1969-07-20 20:17 UTC)
        ),
        Err(FormatError::SigningTime(_))
    ));
}
