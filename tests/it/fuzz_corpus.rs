//! Replays the fuzz targets' checked-in inputs (`fuzz/corpus/<target>/`: the seeds, and
//! `fuzz/regressions/<target>/`: every crash a fuzzer found, kept once fixed) through the
//! same harness the cargo-fuzz binaries run (`fuzz/harness.rs`), so CI holds what fuzzing
//! established without running a fuzzer.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|f| f.is_file());
    files.sort();
    files
}

#[test]
fn every_checked_in_fuzz_input_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (target, run) in harness::TARGETS {
        let seeds = inputs(&fuzz.join("corpus").join(target));
        assert!(!seeds.is_empty(), "fuzz/corpus/{target}/ has no seeds");
        for input in seeds
            .iter()
            .chain(&inputs(&fuzz.join("regressions").join(target)))
        {
            let bytes = std::fs::read(input).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target}: {} fails", input.display());
            replayed += 1;
        }
    }
    // Every corpus directory belongs to a target (a renamed target keeps its seeds).
    for dir in std::fs::read_dir(fuzz.join("corpus")).unwrap() {
        let name = dir.unwrap().file_name().into_string().unwrap();
        assert!(
            harness::TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name}/ belongs to no target"
        );
    }
    eprintln!("replayed {replayed} fuzz inputs");
}

/// The setup's own signatures verify through the harness: the `/verify/v1` target reaches
/// the full check, not only the parser (a harness whose service signs nothing would pass
/// every input for the wrong reason).
#[test]
fn the_fuzz_harness_reaches_past_parsing() {
    let service = harness::Service::get();
    let mut cades = vec![0u8];
    cades.extend_from_slice(&service.cades);
    harness::verify_document(&cades);
    let verified = service.send(
        axum::http::Request::post("/verify/v1")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                serde_json::json!({"format": "jades", "signature": service.jades,
                    "digest": base64::Engine::encode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        civis::crypto::digest::sha256(harness::DOCUMENT))})
                .to_string(),
            ))
            .unwrap(),
    );
    assert_eq!(verified.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&verified.body).unwrap();
    assert_eq!(body["valid"], true, "{body}");
    // The placeholder credentials of the `/token` target authenticate its client.
    let token = service.send(
        axum::http::Request::post("/token")
            .header("authorization", service.client_basic())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from("grant_type=client_credentials"))
            .unwrap(),
    );
    assert_eq!(
        token.status,
        200,
        "{}",
        String::from_utf8_lossy(&token.body)
    );
}

/// Writes the seeds that come from the service itself (signatures, stored records):
/// `cargo test --test it write_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "writes into fuzz/corpus; run by hand when formats change"]
fn write_fuzz_seeds() {
    harness::write_seeds(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz"));
}
