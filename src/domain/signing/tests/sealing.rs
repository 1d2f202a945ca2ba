//! Sealing, the record of produced signatures and verification, against the memory store
//! and the development CA, with time passed in (the rules on revocation and validity at
//! the signing time need signatures made at chosen times, which the API cannot make).

use ::time::{Duration, OffsetDateTime};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::*;
use crate::domain::DomainError;
use crate::domain::signing::produce::{Producer, record_produced, sign_batch};
use crate::domain::signing::verify::CHECKS;
use crate::domain::signing::{Document, ProducedSignature, SignatureFormat, Signed};

fn docs(n: usize) -> Vec<Document> {
    (0..n)
        .map(|i| Document {
            name: format!("letter-{i}.pdf"),
            digest: crate::crypto::digest::sha256(format!("letter {i}").as_bytes()),
        })
        .collect()
}

fn wire(s: &Signed) -> String {
    s.encoded()
}

fn input(s: &Signed, digest: &[u8; 32]) -> VerifyInput {
    VerifyInput {
        digest: URL_SAFE_NO_PAD.encode(digest),
        signature: wire(s),
        format: s.format.as_str().into(),
    }
}

/// The names of the checks that failed.
fn failed(v: &Verification) -> Vec<&'static str> {
    v.checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect()
}

fn detail<'a>(v: &'a Verification, name: &str) -> &'a str {
    &v.checks.iter().find(|c| c.name == name).unwrap().detail
}

impl World {
    /// A client with a seal created at `at`; returns the client id and the seal.
    fn sealer(&self, at: OffsetDateTime) -> (String, SigningKey) {
        let client = self.client();
        let seal = self
            .pki()
            .create_seal(
                NewSeal {
                    client_id: client.clone(),
                    organisation: "Tax Office".into(),
                },
                at,
            )
            .unwrap();
        (client, seal)
    }

    /// Signs with the seal's key directly at `at`, whatever its state, and records the
    /// signature as produced: what civis would have recorded had it signed then.
    fn sign_recorded_at(&self, seal: &SigningKey, doc: &Document, at: OffsetDateTime) -> Signed {
        let key = self
            .pki()
            .unwrap_key(
                Kind::Seal,
                &seal.id,
                &seal.wrapped_key,
                &seal.certificate,
                &seal.serial,
            )
            .unwrap();
        let signed = sign_batch(
            &key,
            self.ca.cert_der(),
            std::slice::from_ref(doc),
            SignatureFormat::Cades,
            at,
        )
        .unwrap();
        let producer = Producer {
            kind: Kind::Seal,
            key_id: &seal.id,
            serial: &seal.serial,
            holder_id: seal.holder.as_ref().id,
            signed_at: at,
            request_id: None,
        };
        let records = ProducedSignature::batch(&producer, std::slice::from_ref(doc), &signed);
        self.store
            .transact(|tx| record_produced(tx, &records))
            .unwrap();
        signed.into_iter().next().unwrap()
    }
}

#[test]
fn a_sealed_batch_verifies_with_every_check_passed_and_is_recorded() {
    let w = world();
    let (client, seal) = w.sealer(now());
    for format in [SignatureFormat::Cades, SignatureFormat::Jades] {
        let batch = docs(5);
        let signed = w
            .pki()
            .seal_documents(
                &client,
                &batch,
                format,
                now() + Duration::milliseconds(1500),
            )
            .unwrap();
        assert_eq!(signed.len(), 5);
        for (doc, sig) in batch.iter().zip(&signed) {
            assert_eq!((sig.name.as_str(), sig.format), (doc.name.as_str(), format));
            let v = w.pki().verify(&input(sig, &doc.digest)).unwrap();
            assert!(v.valid, "{:#?}", v.checks);
            assert_eq!(
                v.checks.iter().map(|c| c.name).collect::<Vec<_>>(),
                CHECKS,
                "every check, in order"
            );
            assert_eq!(v.signer.name, "Tax Office");
            assert_eq!(v.signer.organisation, "Tax Office");
            assert_eq!(v.signer.title, None);
            assert_eq!(
                v.signed_at,
                Some(now() + Duration::seconds(1)),
                "whole seconds"
            );
            assert_eq!(
                v.certificate_chain,
                [seal.certificate.clone(), w.ca.cert_der().to_vec()]
            );

            let record = w
                .store
                .signatures()
                .find(
                    &seal.serial,
                    now() + Duration::seconds(1),
                    &sig.fingerprint(),
                )
                .unwrap()
                .unwrap();
            assert_eq!(record.kind, Kind::Seal);
            assert_eq!(
                (record.key_id.as_str(), record.holder_id.as_str()),
                (seal.id.as_str(), client.as_str())
            );
            assert_eq!(
                (record.name.as_str(), record.digest, record.format),
                (doc.name.as_str(), doc.digest, format)
            );
            assert_eq!(record.signed_at, now() + Duration::seconds(1));
        }
    }
}

#[test]
fn another_digest_fails_the_digest_check_only() {
    let w = world();
    let (client, _) = w.sealer(now());
    for format in [SignatureFormat::Cades, SignatureFormat::Jades] {
        let signed = w
            .pki()
            .seal_documents(&client, &docs(1), format, now())
            .unwrap();
        let v = w.pki().verify(&input(&signed[0], &[7; 32])).unwrap();
        assert!(!v.valid);
        assert_eq!(failed(&v), ["digest"], "{format:?}");
    }
}

#[test]
fn a_client_without_a_live_seal_cannot_seal() {
    let w = world();
    let no_seal = w.client();
    let refused = w
        .pki()
        .seal_documents(&no_seal, &docs(1), SignatureFormat::Cades, now());
    assert!(
        matches!(refused, Err(DomainError::Conflict(NO_LIVE_SEAL))),
        "{refused:?}"
    );

    let (client, seal) = w.sealer(now());
    w.pki()
        .revoke_seal(&seal.id, now() + Duration::hours(1))
        .unwrap();
    let refused = w.pki().seal_documents(
        &client,
        &docs(1),
        SignatureFormat::Jades,
        now() + Duration::hours(2),
    );
    assert!(
        matches!(refused, Err(DomainError::Conflict(_))),
        "{refused:?}"
    );
}

#[test]
fn revocation_counts_at_the_signing_time() {
    let w = world();
    let (client, seal) = w.sealer(now());
    let doc = &docs(1)[0];
    let before = w
        .pki()
        .seal_documents(
            &client,
            std::slice::from_ref(doc),
            SignatureFormat::Cades,
            now() + Duration::hours(1),
        )
        .unwrap()
        .remove(0);
    let revoked_at = now() + Duration::hours(2);
    w.pki().revoke_seal(&seal.id, revoked_at).unwrap();

    // Revoked after signing: still valid, and the detail says why.
    let v = w.pki().verify(&input(&before, &doc.digest)).unwrap();
    assert!(v.valid, "{:#?}", v.checks);
    assert!(
        detail(&v, "revocation").contains("after the signing time"),
        "{}",
        detail(&v, "revocation")
    );

    // Revoked before signing: a signature stating a later time is not valid, even though
    // civis's record holds it (the record cannot make a revoked key sign).
    let after = w.sign_recorded_at(&seal, doc, revoked_at + Duration::hours(1));
    let v = w.pki().verify(&input(&after, &doc.digest)).unwrap();
    assert!(!v.valid);
    assert_eq!(failed(&v), ["revocation"]);

    // At the very instant of revocation: revoked.
    let same = w.sign_recorded_at(&seal, doc, revoked_at);
    assert_eq!(
        failed(&w.pki().verify(&input(&same, &doc.digest)).unwrap()),
        ["revocation"]
    );
}

#[test]
fn a_signature_made_after_the_certificate_expired_fails_validity() {
    let w = world();
    let (_, seal) = w.sealer(now());
    let doc = &docs(1)[0];
    let late = w.sign_recorded_at(&seal, doc, seal.not_after + Duration::days(1));
    let v = w.pki().verify(&input(&late, &doc.digest)).unwrap();
    assert_eq!(failed(&v), ["validity"]);
    assert!(detail(&v, "validity").contains("after the certificate expired"));
    let early = w.sign_recorded_at(&seal, doc, now() - Duration::days(1));
    assert_eq!(
        failed(&w.pki().verify(&input(&early, &doc.digest)).unwrap()),
        ["validity"]
    );
    // And sealing itself refuses an expired seal.
    let refused = w.pki().seal_documents(
        seal.holder.as_ref().id,
        &docs(1),
        SignatureFormat::Cades,
        seal.not_after + Duration::seconds(1),
    );
    assert!(
        matches!(refused, Err(DomainError::Conflict(_))),
        "{refused:?}"
    );
}

#[test]
fn a_signature_civis_has_no_record_of_is_not_valid() {
    let w = world();
    let (_, seal) = w.sealer(now());
    let doc = &docs(1)[0];
    let key = w
        .pki()
        .unwrap_key(
            Kind::Seal,
            &seal.id,
            &seal.wrapped_key,
            &seal.certificate,
            &seal.serial,
        )
        .unwrap();
    // Made with the seal's own key (as a thief of the key could), never recorded.
    let stolen = sign_batch(
        &key,
        w.ca.cert_der(),
        std::slice::from_ref(doc),
        SignatureFormat::Jades,
        now(),
    )
    .unwrap()
    .remove(0);
    let v = w.pki().verify(&input(&stolen, &doc.digest)).unwrap();
    assert!(!v.valid);
    assert_eq!(failed(&v), ["produced"]);
    assert!(detail(&v, "produced").contains("made outside civis"));
}

#[test]
fn a_signature_under_another_ca_fails_the_chain() {
    let w = world();
    let foreign = crate::crypto::testing::fixture("Mallory");
    let doc = &docs(1)[0];
    let der =
        crate::crypto::cades::sign(&foreign.signer, &foreign.chain, &doc.digest, now()).unwrap();
    let sig = Signed {
        name: doc.name.clone(),
        format: SignatureFormat::Cades,
        bytes: der,
    };
    let v = w.pki().verify(&input(&sig, &doc.digest)).unwrap();
    assert!(!v.valid);
    assert_eq!(failed(&v), ["chain", "revocation", "produced"]);
    assert!(
        detail(&v, "chain").contains("not from the service CA"),
        "{}",
        detail(&v, "chain")
    );
    assert_eq!(v.signer.name, "Mallory");
    assert_eq!(
        v.signer.organisation, "",
        "the fixture names no organisation"
    );
}

#[test]
fn a_signature_by_the_ca_key_itself_fails_key_usage() {
    let w = world();
    let ca_key = crate::crypto::EcdsaFileKey::from_pkcs8(w.keys.ca.key.expose()).unwrap();
    let doc = &docs(1)[0];
    let chain = [w.ca.cert_der().to_vec(), w.ca.cert_der().to_vec()];
    let der = crate::crypto::cades::sign(&ca_key, &chain, &doc.digest, now()).unwrap();
    let sig = Signed {
        name: doc.name.clone(),
        format: SignatureFormat::Cades,
        bytes: der,
    };
    let v = w.pki().verify(&input(&sig, &doc.digest)).unwrap();
    assert!(!v.valid);
    assert!(failed(&v).contains(&"key_usage"), "{:?}", failed(&v));
    assert!(detail(&v, "key_usage").contains("CA certificate"));
}

#[test]
fn unreadable_input_names_each_field() {
    let w = world();
    let fields = |i: VerifyInput| match w.pki().verify(&i) {
        Err(DomainError::Invalid(errors)) => errors
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.detail))
            .collect::<Vec<_>>(),
        other => panic!("expected Invalid, got {other:?}"),
    };
    let digest = URL_SAFE_NO_PAD.encode([1u8; 32]);
    let i = |digest: &str, signature: &str, format: &str| VerifyInput {
        digest: digest.into(),
        signature: signature.into(),
        format: format.into(),
    };
    let bad_base64 = fields(i(&digest, "%%%", "cades"));
    assert!(
        bad_base64[0].starts_with("signature: must be standard base64"),
        "{bad_base64:?}"
    );
    let truncated = fields(i(
        &digest,
        &STANDARD.encode([0x30, 0x82, 0x05, 0x00, 0x06]),
        "cades",
    ));
    assert!(
        truncated[0].starts_with("signature: not a DER CMS signature"),
        "{truncated:?}"
    );
    let not_jws = fields(i(&digest, "hello", "jades"));
    assert!(
        not_jws[0].starts_with("signature: not a JWS compact serialisation"),
        "{not_jws:?}"
    );
    let all = fields(i("AAAA", "x", "xades"));
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[0].starts_with("format: \"xades\" is not a format"),
        "{all:?}"
    );
    assert!(
        all[1].starts_with("digest: must be the 32 bytes"),
        "{all:?}"
    );
}

#[test]
fn an_officials_recorded_signature_names_the_person_and_title() {
    let w = world();
    let citizen = w.citizen("PKI-0777");
    let official = w.official(&citizen, "Head of Permits").unwrap();
    let key = w.pki().official_key(&citizen, now()).unwrap();
    let batch = docs(2);
    let signed = sign_batch(&key, w.ca.cert_der(), &batch, SignatureFormat::Jades, now()).unwrap();
    let producer = Producer {
        kind: Kind::Official,
        key_id: &official.id,
        serial: &official.serial,
        holder_id: &citizen,
        signed_at: now(),
        request_id: Some("request-1"),
    };
    let records = ProducedSignature::batch(&producer, &batch, &signed);
    w.store
        .transact(|tx| record_produced(tx, &records))
        .unwrap();
    for (doc, sig) in batch.iter().zip(&signed) {
        let v = w.pki().verify(&input(sig, &doc.digest)).unwrap();
        assert!(v.valid, "{:#?}", v.checks);
        assert_eq!(v.signer.name, "Ana Novak");
        assert_eq!(v.signer.title.as_deref(), Some("Head of Permits"));
        assert_eq!(v.signer.organisation, "City of Ljubljana");
        assert!(detail(&v, "produced").contains("an official's approval"));
        let record = w
            .store
            .signatures()
            .find(&official.serial, now(), &sig.fingerprint())
            .unwrap()
            .unwrap();
        assert_eq!(record.request_id.as_deref(), Some("request-1"));
        assert_eq!(record.holder_id, citizen);
    }
}

#[test]
fn a_revocation_that_lands_while_a_batch_is_signed_wins() {
    let w = world();
    let (client, seal) = w.sealer(now());
    let batch = docs(3);
    // What seal_documents does, with the revocation between signing and recording.
    let key = w.pki().seal_key(&client, now()).unwrap();
    let signed = sign_batch(&key, w.ca.cert_der(), &batch, SignatureFormat::Cades, now()).unwrap();
    let producer = Producer {
        kind: Kind::Seal,
        key_id: &seal.id,
        serial: &seal.serial,
        holder_id: &client,
        signed_at: now(),
        request_id: None,
    };
    let records = ProducedSignature::batch(&producer, &batch, &signed);
    w.pki().revoke_seal(&seal.id, now()).unwrap();
    let entry = crate::domain::audit::Entry::new(
        crate::domain::audit::event::SEAL_USED,
        crate::domain::audit::Actor::Client(&client),
        None,
        serde_json::Value::Null,
        now(),
        &crate::domain::SystemRng::new(),
    )
    .unwrap();
    let refused = w.pki().record_sealed(&seal.id, &records, &entry);
    assert!(
        matches!(refused, Err(DomainError::Conflict(NO_LIVE_SEAL))),
        "{refused:?}"
    );
    crate::domain::audit::settle(&w.store).unwrap();
    assert_eq!(
        w.store.audit().appended().unwrap(),
        3,
        "no seal.used entry after a refusal"
    );
    for sig in &signed {
        assert_eq!(
            w.store
                .signatures()
                .find(&seal.serial, now(), &sig.fingerprint())
                .unwrap(),
            None,
            "nothing recorded"
        );
    }
}
