//! Issue 10, items 4 and 5 through the real interface: an agency seals (`POST
//! /seal/v1/sign`, 1000 digests in one call) and anyone verifies (`POST /verify/v1`), with
//! `openssl cms -verify` as an outside verifier of the CAdES; what verification reports
//! for tampered, foreign, revoked and expired signatures and for unreadable input; who may
//! seal.
//!
//! "Revoked before signing" cannot be produced through the API (a revoked seal signs
//! nothing), so that rule is shown in the domain's unit tests with signatures made at
//! chosen times (src/domain/signing/tests/sealing.rs); here a signature made before its
//! seal was revoked stays valid, and sealing after the revocation is refused.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use serde_json::{Value, json};

use crate::clock::advance;
use crate::driver::seal::{check_detail, digest_of, document, failed_checks};
use crate::driver::{CHALLENGE, Opts, VERIFIER, code_grant, enc, plain, start, tempdir};
use crate::support::root;

const CHECKS: [&str; 9] = [
    "format",
    "signature",
    "digest",
    "signing_certificate",
    "chain",
    "validity",
    "key_usage",
    "revocation",
    "produced",
];

/// Every check is present, in order, and passed.
fn assert_valid(v: &Value) {
    assert_eq!(v["valid"], true, "{v:#}");
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, CHECKS);
    assert!(failed_checks(v).is_empty(), "{v:#}");
    for c in v["checks"].as_array().unwrap() {
        assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
    }
}

/// The documents `letter-0000.pdf`… with contents of their own.
fn letters(n: usize) -> (Vec<Vec<u8>>, Vec<Value>) {
    let contents: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("Tax decision {i:04}: you owe nothing.\n").into_bytes())
        .collect();
    let docs = contents
        .iter()
        .enumerate()
        .map(|(i, c)| document(&format!("letter-{i:04}.pdf"), c))
        .collect();
    (contents, docs)
}

fn openssl_available() -> bool {
    let ok = Command::new("openssl").arg("version").output().is_ok();
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "the openssl command is needed (.ci/run installs it)"
        );
        eprintln!("SKIP openssl cms -verify: no openssl command");
    }
    ok
}

/// `openssl cms -verify` of a detached CAdES over `doc` against keys-dev/ca.pem.
fn openssl_cms_verify(dir: &Path, der: &[u8], doc: &[u8]) -> (bool, String) {
    std::fs::write(dir.join("sig.p7s"), der).unwrap();
    std::fs::write(dir.join("doc"), doc).unwrap();
    let out = Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig.p7s",
        ])
        .args([
            "-content",
            "doc",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
            "-CAfile",
        ])
        .arg(root().join("keys-dev/ca.pem"))
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn an_agency_seals_1000_digests_in_one_call_and_each_verifies() {
    let data = tempdir();
    let server = plain(&data);
    let sealer = server.sealer().await;
    let (contents, docs) = letters(1000);
    let body = json!({"documents": docs, "format": "cades"}).to_string();
    assert!(
        body.len() > 65536,
        "over the default body limit: {}",
        body.len()
    );

    let signatures = server.seal(&sealer, &docs, "cades").await;
    assert_eq!(signatures.len(), 1000);
    for (i, (sig, doc)) in signatures.iter().zip(&docs).enumerate() {
        assert_eq!(sig["name"], doc["name"], "in the order sent");
        assert_eq!(sig["format"], "cades");
        let s = sig["signature"].as_str().unwrap();
        assert!(STANDARD.decode(s).is_ok(), "standard base64 of the DER");
        // Every one of the 1000 verifies.
        let v = server
            .verify(doc["digest"].as_str().unwrap(), s, "cades")
            .await;
        assert_valid(&v);
        if i == 0 {
            assert_eq!(
                v["signer"],
                json!({"name": "Tax Office", "organisation": "Tax Office"})
            );
            assert_eq!(
                v["certificate_chain"][0],
                sealer.seal.certificate_pem.as_str()
            );
            let ca = std::fs::read_to_string(root().join("keys-dev/ca.pem")).unwrap();
            assert_eq!(
                v["certificate_chain"][1].as_str().unwrap().trim(),
                ca.trim()
            );
            assert!(v["signed_at"].as_str().unwrap().ends_with('Z'));
        }
    }

    // An outside verifier agrees, and refuses another document.
    if openssl_available() {
        let dir = tempdir();
        let der = STANDARD
            .decode(signatures[7]["signature"].as_str().unwrap())
            .unwrap();
        let (ok, why) = openssl_cms_verify(dir.path(), &der, &contents[7]);
        assert!(ok, "openssl cms -verify refused a civis seal: {why}");
        assert!(why.contains("Verification successful"), "{why}");
        let (ok, _) = openssl_cms_verify(dir.path(), &der, &contents[8]);
        assert!(!ok, "openssl verified the seal over another document");
    }
}

#[tokio::test]
async fn a_jades_batch_verifies_and_names_each_document() {
    let data = tempdir();
    let (opts, metrics_addr) = Opts::plain().with_metrics();
    let server = start(&data, opts);
    let sealer = server.sealer().await;
    let (_, docs) = letters(3);
    let signatures = server.seal(&sealer, &docs, "jades").await;
    for (sig, doc) in signatures.iter().zip(&docs) {
        assert_eq!(sig["format"], "jades");
        let jws = sig["signature"].as_str().unwrap();
        assert_eq!(jws.split('.').count(), 3);
        assert!(jws.contains(".."), "detached: {jws}");
        let v = server
            .verify(doc["digest"].as_str().unwrap(), jws, "jades")
            .await;
        assert_valid(&v);
        // Another document's digest is not covered.
        let other = server.verify(&digest_of(b"another"), jws, "jades").await;
        assert_eq!(other["valid"], false);
        assert_eq!(failed_checks(&other), ["digest"]);
    }
    let metrics = server
        .get(&format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .text;
    assert!(
        metrics.contains(r#"civis_signatures_total{kind="seal",format="jades"} 3"#),
        "{metrics}"
    );
    // The log says who sealed how much, and never holds a signature or the token.
    let (_, log) = server.stop();
    assert!(log.contains("\"sealed\""), "{log}");
    assert!(!log.contains(&sealer.token));
    assert!(!log.contains(signatures[0]["signature"].as_str().unwrap()));
}

#[tokio::test]
async fn tampered_and_foreign_signatures_are_not_valid() {
    let data = tempdir();
    let server = plain(&data);
    let sealer = server.sealer().await;
    let (_, docs) = letters(1);
    let sig = server.seal(&sealer, &docs, "cades").await.remove(0);
    let sig = sig["signature"].as_str().unwrap();

    let tampered = server
        .verify(&digest_of(b"forged letter"), sig, "cades")
        .await;
    assert_eq!(tampered["valid"], false);
    assert_eq!(failed_checks(&tampered), ["digest"]);

    // The last byte of the ECDSA value changed: still DER, no longer a signature of the
    // seal's key, and not what civis produced.
    let mut der = STANDARD.decode(sig).unwrap();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let flipped = server
        .verify(
            docs[0]["digest"].as_str().unwrap(),
            &STANDARD.encode(&der),
            "cades",
        )
        .await;
    assert_eq!(flipped["valid"], false);
    assert_eq!(failed_checks(&flipped), ["signature", "produced"]);

    // Signed by another CA's certificate (the library, an rcgen CA): chain fails.
    let (key, chain) = foreign_signer();
    let digest = civis::crypto::digest::sha256(b"foreign letter");
    let der =
        civis::crypto::cades::sign(&key, &chain, &digest, time::OffsetDateTime::now_utc()).unwrap();
    let foreign = server
        .verify(
            &digest_of(b"foreign letter"),
            &STANDARD.encode(&der),
            "cades",
        )
        .await;
    assert_eq!(foreign["valid"], false);
    let failed = failed_checks(&foreign);
    assert!(failed.contains(&"chain".to_owned()), "{foreign:#}");
    assert!(check_detail(&foreign, "chain").contains("not from the service CA"));
    assert_eq!(foreign["signer"]["name"], "Mallory");
    let jws = civis::crypto::jades::sign(
        &key,
        &chain,
        "x.pdf",
        &digest,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let foreign = server
        .verify(&digest_of(b"foreign letter"), &jws, "jades")
        .await;
    assert_eq!(foreign["valid"], false);
    assert!(failed_checks(&foreign).contains(&"chain".to_owned()));
}

/// A signer certified by a CA made here (rcgen), not by civis's.
fn foreign_signer() -> (civis::crypto::EcdsaFileKey, Vec<Vec<u8>>) {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "civis development civis CA");
    ca.distinguished_name
        .push(DnType::OrganizationName, "civis development");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "Mallory");
    leaf.distinguished_name
        .push(DnType::OrganizationName, "Tax Office");
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    let leaf_cert = leaf.signed_by(&key, &issuer).unwrap();
    (
        civis::crypto::EcdsaFileKey::from_pkcs8(&key.serialize_der()).unwrap(),
        vec![leaf_cert.der().to_vec(), ca_cert.der().to_vec()],
    )
}

#[tokio::test]
async fn a_seal_revoked_after_signing_leaves_its_signatures_valid_and_seals_nothing_more() {
    let data = tempdir();
    let server = plain(&data);
    let sealer = server.sealer().await;
    let (_, docs) = letters(1);
    let sig = server.seal(&sealer, &docs, "jades").await.remove(0);
    let revoked = server
        .admin_delete(&format!("/admin/v1/seals/{}", sealer.seal.id))
        .await;
    assert_eq!(revoked.status, 204);

    let v = server
        .verify(
            docs[0]["digest"].as_str().unwrap(),
            sig["signature"].as_str().unwrap(),
            "jades",
        )
        .await;
    assert_valid(&v);
    assert!(
        check_detail(&v, "revocation").contains("after the signing time"),
        "{v:#}"
    );

    let refused = server
        .post_seal_sign(
            Some(&format!("Bearer {}", sealer.token)),
            &json!({"documents": docs, "format": "jades"}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.header("content-type"), "application/problem+json");
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("no live seal")
    );
}

#[tokio::test]
async fn an_expired_seal_seals_nothing_but_what_it_sealed_stays_valid() {
    let data = tempdir();
    let server = start(
        &data,
        Opts::plain()
            .with_env("CIVIS_TEST_CLOCK", "1")
            .with_args(["--signing-cert-days", "1"]),
    );
    let sealer = server.sealer().await;
    let (_, docs) = letters(1);
    let sig = server.seal(&sealer, &docs, "cades").await.remove(0);
    advance(&server, 2 * 86_400).await;

    let refused = server
        .post_seal_sign(
            Some(&format!(
                "Bearer {}",
                server.client_token(&sealer.client).await
            )),
            &json!({"documents": docs, "format": "cades"}),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.text);

    let v = server
        .verify(
            docs[0]["digest"].as_str().unwrap(),
            sig["signature"].as_str().unwrap(),
            "cades",
        )
        .await;
    assert_valid(&v);
    assert!(check_detail(&v, "validity").contains("while the certificate was valid"));
}

#[tokio::test]
async fn unreadable_input_is_422_naming_the_problem() {
    let data = tempdir();
    let server = plain(&data);
    let good = digest_of(b"letter");
    let cases = [
        (
            good.as_str(),
            "%%% not base64",
            "cades",
            "signature",
            "standard base64",
        ),
        (
            good.as_str(),
            "MIIB",
            "cades",
            "signature",
            "not a DER CMS signature",
        ),
        (
            good.as_str(),
            "not-a-jws",
            "jades",
            "signature",
            "not a JWS",
        ),
        (good.as_str(), "MIIB", "xades", "format", "is not a format"),
        ("AAAA", "MIIB", "cades", "digest", "32 bytes"),
    ];
    for (digest, signature, format, field, says) in cases {
        let resp = server.post_verify(digest, signature, format).await;
        assert_eq!(resp.status, 422, "{format} {signature}: {}", resp.text);
        assert_eq!(resp.header("content-type"), "application/problem+json");
        let errors = resp.json()["errors"].as_array().unwrap().clone();
        let hit = errors
            .iter()
            .find(|e| e["field"] == field)
            .unwrap_or_else(|| panic!("{field} not named: {}", resp.text));
        assert!(
            hit["detail"].as_str().unwrap().contains(says),
            "{}",
            resp.text
        );
    }

    // A seal request names every bad field at once.
    let sealer = server.sealer().await;
    let resp = server
        .post_seal_sign(
            Some(&format!("Bearer {}", sealer.token)),
            &json!({"format": "pades", "documents": [
                {"name": "ok.pdf", "digest": good},
                {"name": "", "digest": "short"},
                {"name": "bell\u{7}.pdf", "digest": good},
            ]}),
        )
        .await;
    assert_eq!(resp.status, 422, "{}", resp.text);
    let fields: Vec<&str> = resp.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "format",
            "documents[1].name",
            "documents[1].digest",
            "documents[2].name"
        ]
    );
    let too_many = vec![json!({"name": "a", "digest": good}); 1001];
    let resp = server
        .post_seal_sign(
            Some(&format!("Bearer {}", sealer.token)),
            &json!({"format": "cades", "documents": too_many}),
        )
        .await;
    assert_eq!(resp.status, 422, "{}", resp.text);
    assert_eq!(resp.json()["errors"][0]["field"], "documents");

    // The larger body limit is the sealing route's alone, and it has one too.
    let long_name = "\u{1d11e}".repeat(255);
    let huge = vec![json!({"name": long_name, "digest": good}); 1000];
    let body = json!({"format": "cades", "documents": huge});
    assert!(body.to_string().len() > 1 << 20);
    let resp = server
        .post_seal_sign(Some(&format!("Bearer {}", sealer.token)), &body)
        .await;
    assert_eq!(resp.status, 413, "{}", resp.text);
    // A body announced over the limit is refused on its Content-Length, before it is read:
    // the client has sent only its first kilobyte (a server that read on would time out).
    let addr = crate::support::authority(&server.url);
    let head = format!(
        "POST /seal/v1/sign HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n\
         {{\"format\":\"cades\",\"documents\":[{{\"name\":\"{}",
        sealer.token,
        (1 << 20) + 1,
        "x".repeat(1024)
    );
    let early =
        crate::support::outside_runtime(|| crate::support::status_line(&addr, head.as_bytes()));
    assert_eq!(early.as_deref(), Some("HTTP/1.1 413 Payload Too Large"));
    let padded = format!("MIIB{}", "A".repeat(100_000));
    let resp = server.post_verify(&good, &padded, "cades").await;
    assert_eq!(resp.status, 413, "/verify/v1 keeps the default limit");
}

#[tokio::test]
async fn only_an_agency_client_with_scope_seal_and_a_live_seal_may_seal() {
    let data = tempdir();
    let server = plain(&data);
    let body = json!({"documents": [document("a.pdf", b"a")], "format": "cades"});

    let none = server.post_seal_sign(None, &body).await;
    assert_eq!(none.status, 401);
    assert!(none.header("www-authenticate").starts_with("Bearer"));
    // The token is checked before the body is read: a body announced over the limit,
    // without a token, is a 401, not a 413, answered while the client has sent only its
    // first kilobyte (a raw socket, so that the server's early answer cannot race a client
    // still writing).
    let addr = crate::support::authority(&server.url);
    let head = format!(
        "POST /seal/v1/sign HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{{\"format\":\"cades\",\"documents\":[{{\"name\":\"{}",
        1 << 21,
        "x".repeat(1024)
    );
    let early =
        crate::support::outside_runtime(|| crate::support::status_line(&addr, head.as_bytes()));
    assert_eq!(early.as_deref(), Some("HTTP/1.1 401 Unauthorized"));

    let bad = server
        .post_seal_sign(Some("Bearer not.a.token"), &body)
        .await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.header("www-authenticate"),
        "Bearer error=\"invalid_token\""
    );

    // A client without scope seal.
    let signer = server.machine_client("Signing robot", "sign").await;
    let token = server.client_token(&signer).await;
    let resp = server
        .post_seal_sign(Some(&format!("Bearer {token}")), &body)
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text);
    assert!(
        resp.header("www-authenticate")
            .contains("insufficient_scope")
    );

    // A client with scope seal but no seal.
    let unsealed = server.machine_client("No seal yet", "seal").await;
    let token = server.client_token(&unsealed).await;
    let resp = server
        .post_seal_sign(Some(&format!("Bearer {token}")), &body)
        .await;
    assert_eq!(resp.status, 409, "{}", resp.text);

    // A citizen's token, even one carrying scope seal, is not a client's.
    let web = server
        .register_client(json!({
            "name": "Portal", "redirect_uris": [crate::driver::REDIRECT],
            "scope": "openid profile seal",
        }))
        .await;
    let (_, mut device) = server.citizen_with_passkey("SEAL-0001").await;
    let url = server.auth_url(&web.id, "").replace(
        "scope=openid%20profile",
        &format!("scope={}", enc("openid seal")),
    );
    assert!(url.contains(CHALLENGE));
    let (back, _) = server.authorize(&url, &mut device, None, "allow").await;
    let code = crate::driver::query(&back, "code").unwrap_or_else(|| panic!("{back}"));
    let tokens = server
        .token(web.auth(), &code_grant(&code, VERIFIER))
        .await
        .tokens();
    let resp = server
        .post_seal_sign(Some(&format!("Bearer {}", tokens.access)), &body)
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text);
    assert!(resp.text.contains("citizen"), "{}", resp.text);
}
