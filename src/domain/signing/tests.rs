//! Officials, seals, revocation and the CRL against the memory store and the development CA.

use ::time::{Duration, OffsetDateTime};
use base64::Engine as _;
use x509_parser::prelude::*;

use super::*;
use crate::crypto::kek::Kek;
use crate::crypto::{KeySet, Signer as _};
use crate::domain::SystemRng;
use crate::domain::citizens::{NewCitizen, Registry};
use crate::domain::clients::{Clients, NewClient};

struct World {
    store: Store,
    rng: SystemRng,
    keys: KeySet,
    ca: Ca,
    kek: Kek,
    crl: CrlCache,
}

fn world() -> World {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-dev");
    let keys = KeySet::load(&dir, &dir.join("admin-token")).unwrap();
    World {
        store: Store::in_memory(),
        rng: SystemRng::default(),
        ca: Ca::new(&keys.ca, "https://id.example.gov").unwrap(),
        keys,
        kek: Kek::from_bytes(&[9; 32]).unwrap(),
        crl: CrlCache::default(),
    }
}

fn now() -> OffsetDateTime {
    ::time::macros::datetime!(2027-03-01 9:00 UTC)
}

impl World {
    fn pki(&self) -> Pki<'_> {
        Pki {
            store: &self.store,
            rng: &self.rng,
            ca: &self.ca,
            kek: Some(&self.kek),
            validity: Duration::days(730),
            crl: &self.crl,
        }
    }

    fn citizen(&self, national_id: &str) -> String {
        let registry = Registry {
            store: &self.store,
            rng: &self.rng,
            enrolment_ttl: Duration::hours(1),
        };
        let input = NewCitizen {
            given_name: "Ana".into(),
            family_name: "Novak".into(),
            birthdate: "1990-04-01".into(),
            national_id: national_id.into(),
            email: None,
        };
        registry.register(input, "test", now()).unwrap().0.id
    }

    fn client(&self) -> String {
        let clients = Clients {
            store: &self.store,
            rng: &self.rng,
            keys: &self.keys,
        };
        let input = NewClient {
            name: "Tax office".into(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: None,
            token_endpoint_auth_method: None,
            jwks: None,
            scope: Some("seal".into()),
            subject_type: None,
            grant_types: Some(vec!["client_credentials".into()]),
            ..Default::default()
        };
        clients.register(input, now()).unwrap().0.id
    }

    fn official(&self, citizen_id: &str, title: &str) -> Result<SigningKey> {
        self.pki().create_official(
            NewOfficial {
                citizen_id: citizen_id.into(),
                title: title.into(),
                organisation: "City of Ljubljana".into(),
            },
            now(),
        )
    }

    /// Every value the store holds, raw and with every string inside it decoded the ways
    /// a key could hide: base64 (standard or URL-safe) and hex.
    fn every_reading(&self) -> Vec<Vec<u8>> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::String(s) => out.push(s.clone()),
                serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
                serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
                _ => {}
            }
        }
        let backend = self.store.backend().unwrap();
        let mut all = Vec::new();
        for tree in crate::store::TREES {
            for (k, v) in backend.scan(tree.name, b"", b"", usize::MAX).unwrap() {
                let mut texts = Vec::new();
                if let Ok(json) = serde_json::from_slice(&v) {
                    strings(&json, &mut texts);
                }
                for t in texts {
                    all.extend(STANDARD.decode(&t).ok());
                    all.extend(URL_SAFE_NO_PAD.decode(&t).ok());
                    all.extend(hex::decode(&t).ok());
                    all.push(t.into_bytes());
                }
                all.push(k);
                all.push(v);
            }
        }
        all
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn an_official_gets_a_certified_key_that_signs_and_is_never_stored_in_clear() {
    let w = world();
    let citizen = w.citizen("PKI-0001");
    let official = w.official(&citizen, "Head of Permits").unwrap();
    assert_eq!(w.pki().official(&official.id).unwrap(), official);

    let key = w.pki().official_key(&citizen, now()).unwrap();
    assert_eq!(key.id, official.id);
    let (_, cert) = parse_x509_certificate(&key.certificate).unwrap();
    assert_eq!(
        cert.public_key().subject_public_key.data.as_ref(),
        key.signer.public_key().sec1_point(),
        "the certificate certifies the stored key"
    );
    assert_eq!(cert.raw_serial(), official.serial.as_slice());
    let sig = key.signer.sign(b"document digest").unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        key.signer.public_key().sec1_point(),
    )
    .verify(b"document digest", &sig)
    .unwrap();

    // The attack: read the database. The private scalar is in it only wrapped, in no
    // encoding of any stored value.
    let pkcs8 = w
        .kek
        .unwrap(
            &key_aad(Kind::Official, &official.id),
            &official.wrapped_key,
        )
        .unwrap();
    let scalar = {
        use p256::pkcs8::DecodePrivateKey as _;
        p256::SecretKey::from_pkcs8_der(&pkcs8).unwrap().to_bytes()
    };
    let readings = w.every_reading();
    assert!(
        readings.iter().any(|r| contains(r, official.id.as_bytes())),
        "the dump is real"
    );
    assert!(
        readings.iter().any(|r| contains(r, &official.wrapped_key)),
        "base64 fields are decoded"
    );
    for r in &readings {
        assert!(!contains(r, &scalar), "private key in clear in the store");
    }
    assert!(!format!("{key:?}").contains(&hex::encode(&*pkcs8)));
}

#[test]
fn bad_fields_are_all_reported_and_an_unknown_citizen_is_not_found() {
    let w = world();
    let err = w
        .pki()
        .create_official(
            NewOfficial {
                citizen_id: "nobody".into(),
                title: " ".into(),
                organisation: "x".repeat(65),
            },
            now(),
        )
        .unwrap_err();
    let DomainError::Invalid(fields) = err else {
        panic!("{err:?}")
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_ref()).collect();
    assert_eq!(names, ["title", "organisation"]);
    assert!(matches!(
        w.official("nobody", "Clerk"),
        Err(DomainError::NotFound("citizen"))
    ));
    assert!(matches!(
        w.pki().create_seal(
            NewSeal {
                client_id: "nobody".into(),
                organisation: "Tax Office".into()
            },
            now()
        ),
        Err(DomainError::NotFound("client"))
    ));
    for ok in ["Head of Unit 3, Permits", "Direktorica urada"] {
        assert!(certified_text(ok).is_ok(), "{ok}");
    }
    for bad in ["", "123", "a\u{7}b", &"é".repeat(65)] {
        assert!(certified_text(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_new_official_key_supersedes_the_live_one() {
    let w = world();
    let citizen = w.citizen("PKI-0002");
    let first = w.official(&citizen, "Clerk").unwrap();
    let second = w.official(&citizen, "Head of Unit").unwrap();
    assert_eq!(w.pki().official(&first.id).unwrap().revoked_at, Some(now()));
    assert_eq!(w.pki().official(&second.id).unwrap().revoked_at, None);
    assert_eq!(w.pki().official_key(&citizen, now()).unwrap().id, second.id);
    let revoked = w.store.revocations().all().unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].serial, first.serial);
    assert!(revoked[0].superseded);
}

#[test]
fn revoking_stops_signing_once_and_for_all() {
    let w = world();
    let citizen = w.citizen("PKI-0003");
    let official = w.official(&citizen, "Clerk").unwrap();
    w.pki().revoke_official(&official.id, now()).unwrap();
    w.pki()
        .revoke_official(&official.id, now() + Duration::hours(1))
        .unwrap();
    assert_eq!(
        w.pki().official(&official.id).unwrap().revoked_at,
        Some(now()),
        "the first revocation time stays"
    );
    assert!(matches!(
        w.pki().official_key(&citizen, now()),
        Err(DomainError::NotFound("official"))
    ));
    assert!(matches!(
        w.pki().revoke_official("nope", now()),
        Err(DomainError::NotFound("official"))
    ));
    assert_eq!(w.store.revocations().all().unwrap().len(), 1);
    // An expired certificate does not sign either.
    let fresh = w.official(&citizen, "Clerk").unwrap();
    assert!(
        w.pki()
            .official_key(&citizen, fresh.not_after + Duration::seconds(1))
            .is_err()
    );
}

#[test]
fn a_wrapped_key_moved_to_another_record_does_not_unwrap() {
    let w = world();
    let (a, b) = (w.citizen("PKI-0004"), w.citizen("PKI-0005"));
    let official_a = w.official(&a, "Clerk").unwrap();
    let mut official_b = w.official(&b, "Clerk").unwrap();
    // The attack: someone with write access to the database gives B the key of A.
    official_b.wrapped_key = official_a.wrapped_key.clone();
    w.store
        .transact(|tx| {
            tx.signing_keys().update(&official_b);
            Ok::<_, crate::store::StoreError>(())
        })
        .unwrap();
    let err = w.pki().official_key(&b, now()).unwrap_err();
    assert!(matches!(err, DomainError::Internal(_)), "{err:?}");
    assert!(w.pki().official_key(&a, now()).is_ok());
}

#[test]
fn without_a_kek_creation_is_unavailable_but_revocation_works() {
    let w = world();
    let citizen = w.citizen("PKI-0006");
    let official = w.official(&citizen, "Clerk").unwrap();
    let pki = Pki {
        kek: None,
        ..w.pki()
    };
    let err = pki
        .create_official(
            NewOfficial {
                citizen_id: citizen.clone(),
                title: "Clerk".into(),
                organisation: "City".into(),
            },
            now(),
        )
        .unwrap_err();
    let DomainError::Unavailable(why) = err else {
        panic!("{err:?}")
    };
    assert!(why.contains("kek.key"), "{why}");
    assert!(matches!(
        pki.official_key(&citizen, now()),
        Err(DomainError::Unavailable(_))
    ));
    pki.revoke_official(&official.id, now()).unwrap();
}

#[test]
fn seals_belong_to_a_client_and_are_replaced_like_officials() {
    let w = world();
    let client = w.client();
    let new = || NewSeal {
        client_id: client.clone(),
        organisation: "Tax Office".into(),
    };
    let first = w.pki().create_seal(new(), now()).unwrap();
    let (_, cert) = parse_x509_certificate(&first.certificate).unwrap();
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "Tax Office"
    );
    let second = w.pki().create_seal(new(), now()).unwrap();
    assert_eq!(w.pki().seal(&first.id).unwrap().revoked_at, Some(now()));
    assert_eq!(w.pki().seal_key(&client, now()).unwrap().id, second.id);
    w.pki().revoke_seal(&second.id, now()).unwrap();
    assert!(w.pki().seal_key(&client, now()).is_err());
    // A seal's wrapped key is bound to "seal": it does not unwrap as an official's.
    assert!(
        w.kek
            .unwrap(&key_aad(Kind::Official, &second.id), &second.wrapped_key)
            .is_err()
    );
}

#[test]
fn the_crl_is_cached_rebuilt_after_revocation_and_numbered_upwards() {
    let w = world();
    let citizen = w.citizen("PKI-0007");
    let official = w.official(&citizen, "Clerk").unwrap();
    let first = w.pki().crl(now()).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first, &w.pki().crl(now() + Duration::minutes(5)).unwrap()),
        "cached"
    );
    let (_, crl) = parse_x509_crl(&first).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
    let n1 = crl.crl_number().unwrap().clone();

    w.pki().revoke_official(&official.id, now()).unwrap();
    let second = w.pki().crl(now()).unwrap();
    let (_, crl) = parse_x509_crl(&second).unwrap();
    let listed: Vec<_> = crl
        .iter_revoked_certificates()
        .map(|r| (r.raw_serial().to_vec(), r.revocation_date.to_datetime()))
        .collect();
    assert_eq!(listed, [(official.serial.clone(), now())]);
    let n2 = crl.crl_number().unwrap().clone();
    assert!(n2 > n1, "{n2} > {n1}");
    assert_eq!(
        crl.next_update().map(|t| t.to_datetime()),
        Some(now() + crl::CRL_VALIDITY)
    );

    // Older than an hour: rebuilt; past the certificate's end: no longer listed.
    let later = w.pki().crl(now() + Duration::hours(2)).unwrap();
    assert!(!std::sync::Arc::ptr_eq(&later, &second));
    let gone = w
        .pki()
        .crl(official.not_after + Duration::hours(2))
        .unwrap();
    let (_, crl) = parse_x509_crl(&gone).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
}

#[test]
fn a_new_key_after_a_revocation_keeps_the_first_revocation_as_it_was() {
    let w = world();
    let citizen = w.citizen("PKI-0009");
    let first = w.official(&citizen, "Clerk").unwrap();
    let deleted_at = now();
    w.pki().revoke_official(&first.id, deleted_at).unwrap();
    let later = now() + Duration::days(3);
    w.pki()
        .create_official(
            NewOfficial {
                citizen_id: citizen.clone(),
                title: "Head clerk".into(),
                organisation: "Town of Kranj".into(),
            },
            later,
        )
        .unwrap();
    let first = w.pki().official(&first.id).unwrap();
    assert_eq!(
        first.revoked_at,
        Some(deleted_at),
        "not re-revoked as superseded"
    );
    let entries: Vec<_> = w
        .store
        .revocations()
        .all()
        .unwrap()
        .into_iter()
        .filter(|r| r.serial == first.serial)
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(!entries[0].superseded);
}

mod sealing;
