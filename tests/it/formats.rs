//! civis's signatures checked by verifiers nobody here wrote: CAdES by `openssl cms`, JAdES by
//! panva's `jose` in node (tests/browser/jades-verify.mjs). The signatures come from the library
//! (`civis::crypto::{cades, jades}`) with a CA and a signer's certificate made at test time by
//! rcgen. Without openssl, node or `tests/browser/setup.sh` the tests are skipped, or fail
//! when `CI` is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use civis::crypto::keys::CaKeys;
use civis::crypto::pki::{Ca, Subject, cert_pem, new_signing_key};
use civis::crypto::{EcdsaFileKey, Secret, Signer as _, cades, jades};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use crate::support::{root, tempdir};

pub(crate) const DOCUMENT: &[u8] = b"Decision 17/2026: the building permit is granted.\n";

/// A signer with its chain (DER, signer first) and the CA's PEM.
pub(crate) struct Official {
    pub(crate) key: EcdsaFileKey,
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) ca_pem: String,
}

fn official() -> Official {
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "civis formats test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "Ana Novak");
    leaf.distinguished_name
        .push(DnType::OrganizationName, "Municipality of Test");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    let leaf_cert = leaf.signed_by(&key, &issuer).unwrap();
    Official {
        key: EcdsaFileKey::from_pkcs8(&key.serialize_der()).unwrap(),
        chain: vec![leaf_cert.der().to_vec(), ca_cert.der().to_vec()],
        ca_pem: ca_cert.pem(),
    }
}

/// The development CA (keys-dev/ca.pem and ca.key) as the service loads it, so that outside
/// validators can take keys-dev/ca.pem as their trust anchor.
pub(crate) fn dev_ca() -> Ca {
    let pem = |name: &str| std::fs::read_to_string(root().join("keys-dev").join(name)).unwrap();
    let key_pem = pem("ca.key");
    let key_b64: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let keys = CaKeys {
        cert_pem: pem("ca.pem"),
        key: Secret::new(BASE64.decode(key_b64).unwrap()),
    };
    Ca::new(&keys, "https://localhost:8443").unwrap()
}

/// An official whose key and certificate the development CA issues at test time exactly as
/// the service issues officials' (`Ca::issue`: givenName, surname, title, organisation, CRL
/// distribution point, authority key identifier), valid from `not_before` for a year.
pub(crate) fn official_of(ca: &Ca, not_before: OffsetDateTime) -> Official {
    let (_, key) = new_signing_key().unwrap();
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial).unwrap();
    let subject = Subject::Official {
        given_name: "Ana".into(),
        family_name: "Novak".into(),
        title: "Head of the building permits office".into(),
        organisation: "Municipality of Test".into(),
    };
    let issued = ca
        .issue(
            &subject,
            key.public_key(),
            serial,
            not_before,
            time::Duration::days(365),
        )
        .unwrap();
    Official {
        key,
        chain: vec![issued.der, ca.cert_der().to_vec()],
        ca_pem: cert_pem(ca.cert_der()),
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    civis::crypto::digest::sha256(data)
}

/// Skips (prints SKIP) when something is missing, or panics under `CI`; `setup` is the
/// script that installs what is missing.
pub(crate) fn prerequisites(test: &str, setup: &str, missing: Vec<String>) -> bool {
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "prerequisites missing: {}; run `{setup}` (as root) first",
        missing.join(", ")
    );
    assert!(std::env::var_os("CI").is_none(), "{test}: {msg}");
    eprintln!("SKIP {test}: {msg}");
    false
}

pub(crate) fn runs(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
        || Command::new(program).arg("version").output().is_ok()
}

fn run(program: &str, args: &[&Path]) -> Output {
    Command::new(program).args(args).output().unwrap()
}

pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn openssl_cms_verify(sig: &Path, doc: &Path, ca: &Path) -> Output {
    Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any",
        ])
        .arg("-in")
        .arg(sig)
        .arg("-content")
        .arg(doc)
        .arg("-CAfile")
        .arg(ca)
        .args(["-out", "/dev/null"])
        .output()
        .unwrap()
}

#[test]
fn cades_verifies_in_openssl_cms_and_a_changed_document_does_not() {
    if !prerequisites(
        "cades_verifies_in_openssl_cms_and_a_changed_document_does_not",
        "tests/browser/setup.sh",
        if runs("openssl") {
            vec![]
        } else {
            vec!["openssl".into()]
        },
    ) {
        return;
    }
    let who = official();
    let der = cades::sign(
        &who.key,
        &who.chain,
        &sha256(DOCUMENT),
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    let dir = tempdir();
    let sig = write(dir.path(), "sig.p7s", &der);
    let doc = write(dir.path(), "decision.txt", DOCUMENT);
    let ca = write(dir.path(), "ca.pem", who.ca_pem.as_bytes());

    let ok = openssl_cms_verify(&sig, &doc, &ca);
    assert!(
        ok.status.success(),
        "openssl cms -verify refused civis's CAdES: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stderr).contains("Verification successful"));

    let changed = write(
        dir.path(),
        "changed.txt",
        b"Decision 17/2026: the permit is refused.\n",
    );
    let bad = openssl_cms_verify(&sig, &changed, &ca);
    assert!(!bad.status.success(), "a changed document verified");
    let why = String::from_utf8_lossy(&bad.stderr);
    assert!(why.contains("CMS_SignerInfo_verify_content"), "{why}");

    let other_ca = write(dir.path(), "other-ca.pem", official().ca_pem.as_bytes());
    let foreign = openssl_cms_verify(&sig, &doc, &other_ca);
    assert!(!foreign.status.success(), "verified against a foreign CA");

    // What openssl does not check: a signing-certificate-v2 hash naming another certificate
    // passes. pyHanko and DSS refuse it (tests/it/interop.rs).
    let wrong_ess = cades::testing::sign_with_wrong_signing_certificate_hash(
        &who.key,
        &who.chain,
        &official().chain[0],
        &sha256(DOCUMENT),
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    let wrong_ess = write(dir.path(), "wrong-ess.p7s", &wrong_ess);
    assert!(
        openssl_cms_verify(&wrong_ess, &doc, &ca).status.success(),
        "openssl now checks signing-certificate-v2: say so in tests/interop/README.md"
    );

    let print = Command::new("openssl")
        .args(["cms", "-cmsout", "-print", "-inform", "DER", "-in"])
        .arg(&sig)
        .output()
        .unwrap();
    assert!(print.status.success());
    let text = String::from_utf8_lossy(&print.stdout);
    for attribute in [
        "contentType",
        "messageDigest",
        "signingTime",
        "signingCertificateV2",
    ] {
        assert!(text.contains(attribute), "{attribute} missing in:\n{text}");
    }
    assert!(text.contains("eContent: <ABSENT>"), "not detached:\n{text}");
    assert!(text.contains("ecdsa-with-SHA256"), "{text}");
}

fn jose_missing() -> Vec<String> {
    let mut missing = Vec::new();
    if !runs("node") {
        missing.push("node".to_owned());
    }
    let jose = root().join("tests/browser/node_modules/jose");
    if !jose.exists() {
        missing.push(jose.display().to_string());
    }
    missing
}

/// tests/browser/jades-verify.mjs: panva's jose verifies the JWS with the key of `x5c[0]`
/// and checks that `sigD` names the SHA-256 of `doc`.
fn jose_verify(jws: &Path, doc: &Path) -> Output {
    let script = root().join("tests/browser/jades-verify.mjs");
    run("node", &[&script, jws, doc])
}

#[test]
fn jades_verifies_in_panvas_jose_and_a_changed_digest_does_not() {
    if !prerequisites(
        "jades_verifies_in_panvas_jose_and_a_changed_digest_does_not",
        "tests/browser/setup.sh",
        jose_missing(),
    ) {
        return;
    }
    let who = official();
    let jws = jades::sign(
        &who.key,
        &who.chain,
        "decision.txt",
        &sha256(DOCUMENT),
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    let dir = tempdir();
    let sig = write(dir.path(), "sig.jws", jws.as_bytes());
    let doc = write(dir.path(), "decision.txt", DOCUMENT);

    let ok = jose_verify(&sig, &doc);
    assert!(
        ok.status.success(),
        "jose refused civis's JAdES: {}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "ok");

    // Another document: sigD does not name its digest.
    let changed = write(dir.path(), "changed.txt", b"Decision 17/2026: refused.\n");
    let bad = jose_verify(&sig, &changed);
    assert!(!bad.status.success(), "a changed document verified");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("hashV"));

    // The header changed to name the other document: the signature no longer holds.
    let other = jades::sign(
        &who.key,
        &who.chain,
        "decision.txt",
        &sha256(b"Decision 17/2026: refused.\n"),
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    let (their_header, _) = other.split_once("..").unwrap();
    let (_, our_signature) = jws.split_once("..").unwrap();
    let spliced = write(
        dir.path(),
        "spliced.jws",
        format!("{their_header}..{our_signature}").as_bytes(),
    );
    let forged = jose_verify(&spliced, &changed);
    assert!(!forged.status.success(), "a changed digest verified");
    assert!(
        String::from_utf8_lossy(&forged.stderr).contains("signature verification failed"),
        "{}",
        String::from_utf8_lossy(&forged.stderr)
    );
}
