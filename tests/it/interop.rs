//! civis's signatures checked by two validators nobody here wrote (tests/interop/README.md):
//! pyHanko validates the CAdES signature and refuses one whose signing-certificate-v2 hash
//! names another certificate (which `openssl cms -verify` accepts); the EU DSS validator
//! classifies the CAdES and the JAdES signature as CAdES-BASELINE-B and JAdES-BASELINE-B and
//! reports which basic checks pass: all but the certificate chain's without revocation data
//! (INDETERMINATE), all of them given the CA's CRL (TOTAL_PASSED). Both validators report a
//! certificate that the CRL revokes before the signing time, and a changed document. The
//! signer's certificate is issued at test time by the development CA as the service issues
//! officials' (`Ca::issue`); both validators take keys-dev/ca.pem as their only trust anchor.
//! `tests/interop/setup.sh` installs both; without them the tests print SKIP, or fail when `CI`
//! is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use civis::crypto::pki::{Ca, RevokedCert};
use civis::crypto::{cades, jades};
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::formats::{DOCUMENT, Official, dev_ca, official_of, prerequisites, runs, sha256, write};
use crate::support::{root, tempdir};

const SETUP: &str = "tests/interop/setup.sh";
const NAME: &str = "decision.txt";
const CHANGED: &[u8] = b"Decision 17/2026: the building permit is refused.\n";

fn interop() -> PathBuf {
    root().join("tests/interop")
}

/// The document under its name in `dir`, the same name with other bytes in `dir/changed`
/// (DSS matches a JAdES `sigD` entry by name), and the trust anchor.
struct Files {
    doc: PathBuf,
    changed: PathBuf,
    ca: PathBuf,
}

fn files(dir: &Path) -> Files {
    std::fs::create_dir(dir.join("changed")).unwrap();
    Files {
        doc: write(dir, NAME, DOCUMENT),
        changed: write(&dir.join("changed"), NAME, CHANGED),
        ca: root().join("keys-dev/ca.pem"),
    }
}

/// When the official's certificate starts to be valid.
fn issued_at() -> OffsetDateTime {
    OffsetDateTime::now_utc() - Duration::hours(1)
}

/// When the official signs: after the certificate was issued, before the CRL.
fn signed_at() -> OffsetDateTime {
    OffsetDateTime::now_utc() - Duration::minutes(10)
}

fn cades_signature(who: &Official) -> Vec<u8> {
    cades::sign(&who.key, &who.chain, &sha256(DOCUMENT), signed_at()).unwrap()
}

/// A CAdES whose signing-certificate-v2 hashes another certificate (one the same CA issued
/// to the same person), signed correctly by the official's key.
fn cades_with_a_wrong_certificate_hash(ca: &Ca, who: &Official) -> Vec<u8> {
    let other = official_of(ca, issued_at());
    assert_ne!(sha256(&other.chain[0]), sha256(&who.chain[0]));
    cades::testing::sign_with_wrong_signing_certificate_hash(
        &who.key,
        &who.chain,
        &other.chain[0],
        &sha256(DOCUMENT),
        signed_at(),
    )
    .unwrap()
}

/// The CA's CRL (revoking nothing) as the service would publish it after the signature.
fn crl(ca: &Ca, dir: &Path) -> PathBuf {
    crl_revoking(ca, dir, &[])
}

/// The CA's CRL listing `revoked`, published five minutes ago (after the signature).
fn crl_revoking(ca: &Ca, dir: &Path, revoked: &[RevokedCert]) -> PathBuf {
    let now = OffsetDateTime::now_utc();
    let der = ca
        .crl(
            revoked,
            1,
            now - Duration::minutes(5),
            now + Duration::days(1),
        )
        .unwrap();
    write(dir, &format!("ca-{}.crl", revoked.len()), &der)
}

/// The official's certificate revoked 20 minutes ago: before the signature (10 minutes ago).
fn revoked_before_signing(who: &Official) -> RevokedCert {
    let (_, cert) = x509_parser::parse_x509_certificate(&who.chain[0]).unwrap();
    RevokedCert {
        serial: cert.raw_serial().to_vec(),
        revoked_at: OffsetDateTime::now_utc() - Duration::minutes(20),
        superseded: false,
    }
}

fn stdout_json(what: &str, out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

// ---- pyHanko -------------------------------------------------------------------------------

fn python() -> PathBuf {
    interop().join(".venv/bin/python")
}

fn pyhanko_missing() -> Vec<String> {
    let ok = Command::new(python())
        .args(["-c", "import pyhanko, pyhanko_certvalidator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        vec![]
    } else {
        vec![format!("pyhanko in {}", python().display())]
    }
}

/// tests/interop/pyhanko_verify.py: exit status 0 only when intact, valid, trusted and the
/// signing-certificate-v2 attribute names the signer's certificate.
fn pyhanko(sig: &Path, doc: &Path, ca: &Path) -> (bool, Value) {
    pyhanko_with(sig, doc, ca, None)
}

/// The same with `crl` as the only revocation data, hard-fail.
fn pyhanko_with(sig: &Path, doc: &Path, ca: &Path, crl: Option<&Path>) -> (bool, Value) {
    let out = Command::new(python())
        .arg(interop().join("pyhanko_verify.py"))
        .args([sig, doc, ca])
        .args(crl)
        .output()
        .unwrap();
    let report = stdout_json("pyhanko_verify.py", &out);
    (out.status.success(), report)
}

#[test]
fn pyhanko_validates_civis_cades_and_refuses_a_wrong_signing_certificate_hash() {
    if !prerequisites(
        "pyhanko_validates_civis_cades_and_refuses_a_wrong_signing_certificate_hash",
        SETUP,
        pyhanko_missing(),
    ) {
        return;
    }
    let ca = dev_ca();
    let who = official_of(&ca, issued_at());
    let dir = tempdir();
    let f = files(dir.path());
    let sig = write(dir.path(), "sig.p7s", &cades_signature(&who));

    let (ok, report) = pyhanko(&sig, &f.doc, &f.ca);
    eprintln!("pyHanko on civis's CAdES: {report:#}");
    assert!(ok, "pyHanko refused civis's CAdES: {report:#}");
    assert_eq!(report["intact"], true, "{report:#}");
    assert_eq!(report["valid"], true, "{report:#}");
    assert_eq!(report["trusted"], true, "{report:#}");
    assert_eq!(report["signing_certificate_v2"], "match", "{report:#}");
    assert!(
        report["signer"].as_str().unwrap().contains("Ana Novak"),
        "{report:#}"
    );

    // Checked against the CA's CRL, which does not list the certificate.
    let (ok, report) = pyhanko_with(&sig, &f.doc, &f.ca, Some(&crl(&ca, dir.path())));
    assert!(
        ok,
        "pyHanko refused civis's CAdES given the CRL: {report:#}"
    );
    assert_eq!(report["trusted"], true, "{report:#}");
    assert_eq!(report["revoked"], false, "{report:#}");

    let revoked = crl_revoking(&ca, dir.path(), &[revoked_before_signing(&who)]);
    let (ok, report) = pyhanko_with(&sig, &f.doc, &f.ca, Some(&revoked));
    eprintln!("pyHanko on civis's CAdES, the certificate revoked before signing: {report:#}");
    assert!(
        !ok,
        "a revoked certificate's signature validated: {report:#}"
    );
    assert_eq!(report["revoked"], true, "{report:#}");

    let (ok, report) = pyhanko(&sig, &f.changed, &f.ca);
    assert!(!ok, "a changed document validated: {report:#}");
    assert_eq!(report["intact"], false, "{report:#}");

    // openssl cms -verify accepts this one (tests/it/formats.rs says why it is not enough).
    let wrong = write(
        dir.path(),
        "wrong-ess.p7s",
        &cades_with_a_wrong_certificate_hash(&ca, &who),
    );
    let (ok, report) = pyhanko(&wrong, &f.doc, &f.ca);
    eprintln!("pyHanko on a CAdES with a wrong signing-certificate-v2 hash: {report:#}");
    assert!(
        !ok,
        "a wrong signing-certificate-v2 hash validated: {report:#}"
    );
    assert_eq!(report["signing_certificate_v2"], "mismatch", "{report:#}");
    assert_eq!(
        report["ades_subindication"], "NO_SIGNING_CERTIFICATE_FOUND",
        "{report:#}"
    );
}

// ---- EU DSS validator ----------------------------------------------------------------------

fn dss_dir() -> PathBuf {
    interop().join("dss/target")
}

fn dss_missing() -> Vec<String> {
    let mut missing = Vec::new();
    if !runs("java") {
        missing.push("java".to_owned());
    }
    for built in ["classes/civis/interop/DssValidate.class", "lib"] {
        let path = dss_dir().join(built);
        if !path.exists() {
            missing.push(path.display().to_string());
        }
    }
    missing
}

/// tests/interop/dss: the report DSS gives for the one signature in `sig`, with `crl` as the
/// only revocation data, if any.
fn dss(sig: &Path, doc: &Path, ca: &Path, crl: Option<&Path>) -> Value {
    let classpath = format!(
        "{}:{}",
        dss_dir().join("classes").display(),
        dss_dir().join("lib/*").display()
    );
    let out = Command::new("java")
        // A short run: the client compiler only and one GC thread start faster on 2 cores.
        .args(["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp"])
        .arg(classpath)
        .arg("civis.interop.DssValidate")
        .args([sig, doc, ca])
        .args(crl)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "DSS failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout_json("DssValidate", &out);
    let signatures = report["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 1, "{report:#}");
    signatures[0].clone()
}

/// The facts DSS establishes for a civis signature over the right document, whatever the
/// revocation data: the baseline level, signature and reference intact, signing certificate
/// identified (signing-certificate-v2 matches) and its chain ending at the trust anchor.
fn assert_baseline_b_intact(report: &Value, level: &str) {
    assert_eq!(report["format"], level, "{report:#}");
    for check in [
        "signatureIntact",
        "signatureValid",
        "referenceDataFound",
        "referenceDataIntact",
        "signingCertificateIdentified",
        "signingCertificateReferencePresent",
        "trustedChain",
    ] {
        assert_eq!(report["checks"][check], true, "{check}: {report:#}");
    }
    for block in ["FC", "ISC", "VCI", "CV", "SAV"] {
        assert_eq!(report["blocks"][block], "PASSED", "{block}: {report:#}");
    }
}

/// Without revocation data (nothing is fetched) every basic building block passes but X.509
/// certificate validation, which is INDETERMINATE: "No revocation data found".
fn assert_baseline_b_with_all_but_revocation(report: &Value, level: &str) {
    assert_baseline_b_intact(report, level);
    assert_eq!(
        report["blocks"]["XCV"], "INDETERMINATE/CERTIFICATE_CHAIN_GENERAL_FAILURE",
        "{report:#}"
    );
    assert_eq!(report["indication"], "INDETERMINATE", "{report:#}");
    assert_eq!(
        report["subIndication"], "CERTIFICATE_CHAIN_GENERAL_FAILURE",
        "{report:#}"
    );
    let errors = report["errors"].to_string();
    assert!(
        errors.contains("No revocation data found for the certificate"),
        "{report:#}"
    );
}

/// Given the CA's CRL as well (what `GET /pki/crl` serves), DSS's default policy passes it.
fn assert_baseline_b_total_passed(report: &Value, level: &str) {
    assert_baseline_b_intact(report, level);
    assert_eq!(report["blocks"]["XCV"], "PASSED", "{report:#}");
    assert_eq!(report["indication"], "TOTAL_PASSED", "{report:#}");
    assert_eq!(report["subIndication"], Value::Null, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report:#}");
}

fn assert_reference_not_intact(report: &Value) {
    assert_eq!(report["checks"]["referenceDataIntact"], false, "{report:#}");
    assert_eq!(report["blocks"]["CV"], "FAILED/HASH_FAILURE", "{report:#}");
    assert_eq!(report["indication"], "TOTAL_FAILED", "{report:#}");
    assert_eq!(report["subIndication"], "HASH_FAILURE", "{report:#}");
}

#[test]
fn dss_classifies_civis_cades_as_baseline_b_and_catches_a_changed_document() {
    if !prerequisites(
        "dss_classifies_civis_cades_as_baseline_b_and_catches_a_changed_document",
        SETUP,
        dss_missing(),
    ) {
        return;
    }
    let ca = dev_ca();
    let who = official_of(&ca, issued_at());
    let dir = tempdir();
    let f = files(dir.path());
    let sig = write(dir.path(), "sig.p7s", &cades_signature(&who));

    let report = dss(&sig, &f.doc, &f.ca, None);
    eprintln!("DSS on civis's CAdES: {report:#}");
    assert_baseline_b_with_all_but_revocation(&report, "CAdES-BASELINE-B");

    let report = dss(&sig, &f.doc, &f.ca, Some(&crl(&ca, dir.path())));
    eprintln!("DSS on civis's CAdES, given the CA's CRL: {report:#}");
    assert_baseline_b_total_passed(&report, "CAdES-BASELINE-B");

    let revoked = crl_revoking(&ca, dir.path(), &[revoked_before_signing(&who)]);
    let report = dss(&sig, &f.doc, &f.ca, Some(&revoked));
    eprintln!("DSS on civis's CAdES, the certificate revoked before signing: {report:#}");
    // Without a timestamp nothing proves the signature existed before the revocation.
    assert_eq!(report["checks"]["signatureIntact"], true, "{report:#}");
    assert_eq!(
        report["blocks"]["XCV"], "INDETERMINATE/REVOKED_NO_POE",
        "{report:#}"
    );
    assert_eq!(report["indication"], "INDETERMINATE", "{report:#}");
    assert_eq!(report["subIndication"], "REVOKED_NO_POE", "{report:#}");
    assert!(
        report["errors"]
            .to_string()
            .contains("The certificate is revoked!"),
        "{report:#}"
    );

    assert_reference_not_intact(&dss(&sig, &f.changed, &f.ca, None));

    let wrong = write(
        dir.path(),
        "wrong-ess.p7s",
        &cades_with_a_wrong_certificate_hash(&ca, &who),
    );
    let report = dss(&wrong, &f.doc, &f.ca, None);
    eprintln!("DSS on a CAdES with a wrong signing-certificate-v2 hash: {report:#}");
    assert_eq!(report["checks"]["signatureIntact"], true, "{report:#}");
    assert_eq!(
        report["checks"]["signingCertificateIdentified"], false,
        "{report:#}"
    );
    assert_eq!(report["indication"], "INDETERMINATE", "{report:#}");
    assert_eq!(
        report["subIndication"], "NO_SIGNING_CERTIFICATE_FOUND",
        "{report:#}"
    );
}

#[test]
fn dss_classifies_civis_jades_as_baseline_b_and_catches_a_changed_document() {
    if !prerequisites(
        "dss_classifies_civis_jades_as_baseline_b_and_catches_a_changed_document",
        SETUP,
        dss_missing(),
    ) {
        return;
    }
    let ca = dev_ca();
    let who = official_of(&ca, issued_at());
    let dir = tempdir();
    let f = files(dir.path());
    let jws = jades::sign(&who.key, &who.chain, NAME, &sha256(DOCUMENT), signed_at()).unwrap();
    let sig = write(dir.path(), "sig.jws", jws.as_bytes());

    let report = dss(&sig, &f.doc, &f.ca, None);
    eprintln!("DSS on civis's JAdES: {report:#}");
    assert_baseline_b_with_all_but_revocation(&report, "JAdES-BASELINE-B");

    let report = dss(&sig, &f.doc, &f.ca, Some(&crl(&ca, dir.path())));
    eprintln!("DSS on civis's JAdES, given the CA's CRL: {report:#}");
    assert_baseline_b_total_passed(&report, "JAdES-BASELINE-B");

    assert_reference_not_intact(&dss(&sig, &f.changed, &f.ca, None));
}
