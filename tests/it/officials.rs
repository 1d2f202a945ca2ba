//! The service PKI through the real interface (issue 10, item 1): an official's and a
//! seal's certificate, checked by x509-parser and by `openssl verify` against
//! keys-dev/ca.pem; refusals (401, 404, 422, 503 without kek.key); revocation and the CRL,
//! checked by x509-parser and `openssl crl`.

use std::path::Path;
use std::process::Command;

use x509_parser::der_parser::oid::Oid;
use x509_parser::prelude::*;

use crate::driver::{Opts, admin::SigningKey, plain, start, tempdir};
use crate::support::{keys_init, root};

/// Runs `openssl` with `args` in `dir`; the CLI is an outside verifier (`.ci/run` installs
/// it on a machine without it).
fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("the openssl command is needed for these tests: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn ca_pem() -> String {
    root().join("keys-dev/ca.pem").display().to_string()
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn attrs(name: &X509Name<'_>, oid: &[u64]) -> Vec<String> {
    let oid = Oid::from(oid).unwrap();
    name.iter_attributes()
        .filter(|a| a.attr_type() == &oid)
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// `openssl verify` of a certificate against the development CA.
fn openssl_verifies(key: &SigningKey) -> bool {
    let dir = tempdir();
    std::fs::write(dir.path().join("leaf.pem"), &key.certificate_pem).unwrap();
    let (ok, text) = openssl(dir.path(), &["verify", "-CAfile", &ca_pem(), "leaf.pem"]);
    ok && text.contains("leaf.pem: OK")
}

#[tokio::test]
async fn an_official_certificate_names_the_person_and_chains_to_the_ca() {
    let data = tempdir();
    let server = plain(&data);
    let citizen = server.register_citizen("PKI-1001").await;
    let key = server
        .create_official(&citizen.id, "Head of Permits", "City of Ljubljana")
        .await;

    let der = der_of(&key.certificate_pem);
    let (_, cert) = parse_x509_certificate(&der).unwrap();
    let subject = cert.subject();
    assert_eq!(attrs(subject, &[2, 5, 4, 3]), ["Ana Novak"]);
    assert_eq!(attrs(subject, &[2, 5, 4, 12]), ["Head of Permits"], "title");
    assert_eq!(attrs(subject, &[2, 5, 4, 10]), ["City of Ljubljana"]);
    let ku = cert.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.digital_signature() && ku.value.non_repudiation());
    assert!(!cert.basic_constraints().unwrap().unwrap().value.ca);
    assert!(cert.raw_serial().len() >= 8, "at least 64 bits");
    assert!(cert.raw_serial()[0] < 0x80, "positive");
    let validity = cert.validity();
    let days = (validity.not_after.to_datetime() - validity.not_before.to_datetime()).whole_days();
    assert_eq!(days, 730, "the default validity");
    let crl_dp: Vec<String> = cert
        .extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(p) => Some(p),
            _ => None,
        })
        .flat_map(|p| p.points.iter())
        .filter_map(|p| match &p.distribution_point {
            Some(DistributionPointName::FullName(names)) => Some(names),
            _ => None,
        })
        .flatten()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(crl_dp, [server.at("/pki/crl")]);
    assert!(cert.extensions().iter().any(|e| matches!(
        e.parsed_extension(),
        ParsedExtension::AuthorityKeyIdentifier(_)
    )));
    assert!(
        openssl_verifies(&key),
        "openssl verify against keys-dev/ca.pem"
    );

    let view = server
        .admin_get(&format!("/admin/v1/officials/{}", key.id))
        .await;
    assert_eq!(view.status, 200, "{}", view.text);
    let view = view.json();
    assert_eq!(view["citizen_id"], citizen.id.as_str());
    assert_eq!(view["title"], "Head of Permits");
    assert_eq!(view["certificate_pem"], key.certificate_pem.as_str());
    assert_eq!(view["revoked_at"], serde_json::Value::Null);
    assert_eq!(view["serial"], hex::encode(cert.raw_serial()));
    for secret in ["wrapped_key", "private_key", "key"] {
        assert!(view.get(secret).is_none(), "{secret} in {view}");
    }
}

#[tokio::test]
async fn a_seal_names_the_organisation_and_chains_to_the_ca() {
    let data = tempdir();
    let server = start(
        &data,
        Opts::plain().with_args(["--signing-cert-days", "30"]),
    );
    let client = server.machine_client("Tax office", "seal").await;
    let key = server.create_seal(&client.id, "Tax Office").await;
    let der = der_of(&key.certificate_pem);
    let (_, cert) = parse_x509_certificate(&der).unwrap();
    assert_eq!(attrs(cert.subject(), &[2, 5, 4, 3]), ["Tax Office"]);
    assert_eq!(attrs(cert.subject(), &[2, 5, 4, 10]), ["Tax Office"]);
    let validity = cert.validity();
    let days = (validity.not_after.to_datetime() - validity.not_before.to_datetime()).whole_days();
    assert_eq!(days, 30, "--signing-cert-days");
    assert!(openssl_verifies(&key));
    let view = server
        .admin_get(&format!("/admin/v1/seals/{}", key.id))
        .await;
    assert_eq!(view.json()["client_id"], client.id.as_str());
}

#[tokio::test]
async fn refusals_are_precise() {
    let data = tempdir();
    let server = plain(&data);
    let citizen = server.register_citizen("PKI-1002").await;

    let r = server
        .post_official("no-such-citizen", "Clerk", "City")
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.header("content-type"), "application/problem+json");
    let r = server.post_seal("no-such-client", "City").await;
    assert_eq!(r.status, 404, "{}", r.text);

    let r = server.post_official(&citizen.id, "", &"x".repeat(65)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let fields: Vec<&str> = r.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["title", "organisation"]);
    let r = server.post_seal("any", "\u{7}").await;
    assert_eq!(r.status, 422, "{}", r.text);

    let r = server
        .post("/admin/v1/officials")
        .json(&serde_json::json!({"citizen_id": citizen.id, "title": "Clerk", "organisation": "City"}))
        .send()
        .await;
    assert_eq!(r.status, 401, "no admin token");
    for path in ["/admin/v1/officials/x", "/admin/v1/seals/x"] {
        assert_eq!(server.get(path).send().await.status, 401, "{path}");
        assert_eq!(server.delete(path).send().await.status, 401, "{path}");
        assert_eq!(server.admin_get(path).await.status, 404, "{path}");
        assert_eq!(server.admin_delete(path).await.status, 404, "{path}");
    }
}

#[tokio::test]
async fn without_kek_key_signing_keys_are_503_naming_the_file() {
    let keys = tempdir();
    assert!(keys_init(keys.path()).status.success());
    std::fs::remove_file(keys.path().join("kek.key")).unwrap();
    let data = tempdir();
    let token = root().join("keys-dev/admin-token").display().to_string();
    let dir = keys.path().display().to_string();
    let server = start(
        &data,
        Opts::plain().with_args(["--keys-dir", &dir, "--admin-token-file", &token]),
    );
    let citizen = server.register_citizen("PKI-1003").await;
    let r = server.post_official(&citizen.id, "Clerk", "City").await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert!(
        r.json()["detail"].as_str().unwrap().contains("kek.key"),
        "{}",
        r.text
    );
    let client = server.machine_client("Tax office", "seal").await;
    assert_eq!(server.post_seal(&client.id, "Tax").await.status, 503);
    assert!(server.stderr().contains("no key-encryption key"));
    assert_eq!(
        server.admin_get("/healthz").await.status,
        200,
        "the rest runs"
    );
}

#[tokio::test]
async fn a_revoked_certificate_is_on_the_crl_which_verifies_against_the_ca() {
    let data = tempdir();
    let server = plain(&data);
    let citizen = server.register_citizen("PKI-1004").await;
    let official = server.create_official(&citizen.id, "Clerk", "City").await;
    let client = server.machine_client("Tax office", "seal").await;
    let seal = server.create_seal(&client.id, "Tax Office").await;

    let before = server.crl().await;
    let (_, crl) = parse_x509_crl(&before).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
    let first_number = crl.crl_number().unwrap().clone();

    let path = format!("/admin/v1/officials/{}", official.id);
    assert_eq!(server.admin_delete(&path).await.status, 204);
    let revoked_at = server.admin_get(&path).await.json()["revoked_at"].clone();
    assert!(revoked_at.is_string(), "{revoked_at}");
    assert_eq!(
        server.admin_delete(&path).await.status,
        204,
        "twice is harmless"
    );
    assert_eq!(
        server.admin_get(&path).await.json()["revoked_at"],
        revoked_at
    );
    let seal_path = format!("/admin/v1/seals/{}", seal.id);
    assert_eq!(server.admin_delete(&seal_path).await.status, 204);

    let after = server.crl().await;
    let (_, crl) = parse_x509_crl(&after).unwrap();
    assert!(
        crl.crl_number().unwrap() > &first_number,
        "the CRL number increases"
    );
    let revoked_at = ::time::OffsetDateTime::parse(
        revoked_at.as_str().unwrap(),
        &::time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let listed: Vec<(Vec<u8>, ::time::OffsetDateTime)> = crl
        .iter_revoked_certificates()
        .map(|r| (r.raw_serial().to_vec(), r.revocation_date.to_datetime()))
        .collect();
    let official_serial = {
        let der = der_of(&official.certificate_pem);
        parse_x509_certificate(&der)
            .unwrap()
            .1
            .raw_serial()
            .to_vec()
    };
    let seal_serial = {
        let der = der_of(&seal.certificate_pem);
        parse_x509_certificate(&der)
            .unwrap()
            .1
            .raw_serial()
            .to_vec()
    };
    assert!(
        listed.contains(&(
            official_serial.clone(),
            revoked_at.replace_nanosecond(0).unwrap()
        )),
        "{listed:?}"
    );
    assert!(listed.iter().any(|(s, _)| *s == seal_serial));

    let dir = tempdir();
    std::fs::write(dir.path().join("crl.der"), &after).unwrap();
    let (ok, text) = openssl(
        dir.path(),
        &["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"],
    );
    assert!(ok, "{text}");
    let serial_hex = hex::encode_upper(&official_serial);
    assert!(
        text.contains(&format!("Serial Number: {serial_hex}")),
        "{text}"
    );
    assert!(text.contains("Revocation Date:"), "{text}");
    let (ok, text) = openssl(
        dir.path(),
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "crl.der",
            "-CAfile",
            &ca_pem(),
            "-noout",
        ],
    );
    assert!(ok && text.contains("verify OK"), "{text}");

    // The attack on the check itself: one changed byte of the signature, and openssl
    // refuses the CRL.
    let mut forged = after.clone();
    let last = forged.len() - 1;
    forged[last] ^= 0x01;
    std::fs::write(dir.path().join("forged.der"), &forged).unwrap();
    let (_, text) = openssl(
        dir.path(),
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            "forged.der",
            "-CAfile",
            &ca_pem(),
            "-noout",
        ],
    );
    assert!(!text.contains("verify OK"), "{text}");
}

#[tokio::test]
async fn a_new_official_key_supersedes_the_old_one_on_the_crl() {
    let data = tempdir();
    let server = plain(&data);
    let citizen = server.register_citizen("PKI-1005").await;
    let old = server.create_official(&citizen.id, "Clerk", "City").await;
    let new = server
        .create_official(&citizen.id, "Head of Unit", "City")
        .await;
    let old_view = server
        .admin_get(&format!("/admin/v1/officials/{}", old.id))
        .await;
    assert!(old_view.json()["revoked_at"].is_string());
    let new_view = server
        .admin_get(&format!("/admin/v1/officials/{}", new.id))
        .await;
    assert!(new_view.json()["revoked_at"].is_null());
    let crl = server.crl().await;
    let (_, crl) = parse_x509_crl(&crl).unwrap();
    let entry = crl.iter_revoked_certificates().next().unwrap();
    assert_eq!(
        hex::encode(entry.raw_serial()),
        old_view.json()["serial"].as_str().unwrap()
    );
    assert_eq!(
        entry.reason_code().map(|(_, r)| r.0),
        Some(4),
        "reason superseded"
    );
}
