//! Test support (compiled only for tests): writes the input directory of the Go verifier in
//! tests/go/tlogcheck (golang.org/x/mod's note and tlog packages) and runs it, so that unit
//! tests can have code civis did not write check its proofs and checkpoints.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::merkle::Hash;

/// An inclusion proof of the entry `index` in the tree of `size` leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry's index.
    pub index: u64,
    /// The tree size (the checkpoint's).
    pub size: u64,
    /// RFC 9162 PATH, leaf side first.
    pub hashes: Vec<Hash>,
}

/// A consistency proof from the tree of `from` leaves to the tree of `size` leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The older tree size.
    pub from: u64,
    /// The tree size (the checkpoint's).
    pub size: u64,
    /// RFC 9162 PROOF.
    pub hashes: Vec<Hash>,
}

fn b64_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

/// Writes `dir/{key, checkpoint, entries, inclusion.json, consistency.json}` as the Go
/// program reads them: the verifier key line, the signed note, one standard-base64 line per
/// entry (index order from 0), and the proofs as JSON arrays of
/// `{"index","size","hashes"}` / `{"from","size","hashes"}` with standard-base64 hashes.
pub fn write_tlogcheck_dir<E: AsRef<[u8]>>(
    dir: &Path,
    key: &str,
    checkpoint: &str,
    entries: &[E],
    inclusion: &[InclusionProof],
    consistency: &[ConsistencyProof],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("key"), format!("{}\n", key.trim_end()))?;
    std::fs::write(dir.join("checkpoint"), checkpoint)?;
    let mut lines = String::new();
    for e in entries {
        lines.push_str(&STANDARD.encode(e.as_ref()));
        lines.push('\n');
    }
    std::fs::write(dir.join("entries"), lines)?;
    let inclusion: Vec<_> = inclusion
        .iter()
        .map(
            |p| serde_json::json!({"index": p.index, "size": p.size, "hashes": b64_all(&p.hashes)}),
        )
        .collect();
    let consistency: Vec<_> = consistency
        .iter()
        .map(|p| serde_json::json!({"from": p.from, "size": p.size, "hashes": b64_all(&p.hashes)}))
        .collect();
    std::fs::write(
        dir.join("inclusion.json"),
        serde_json::Value::Array(inclusion).to_string(),
    )?;
    std::fs::write(
        dir.join("consistency.json"),
        serde_json::Value::Array(consistency).to_string(),
    )?;
    Ok(())
}

/// Where the Go program lives (in the source tree).
pub fn tlogcheck_program_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go/tlogcheck")
}

/// Runs `go run . -dir DIR` in [`tlogcheck_program_dir`]: its summary line when it exits 0,
/// otherwise what went wrong (including a missing `go`, which is a failure, not a skip).
pub fn run_tlogcheck(dir: &Path) -> Result<String, String> {
    let out = Command::new("go")
        .args(["run", ".", "-dir"])
        .arg(dir)
        .current_dir(tlogcheck_program_dir())
        .output()
        .map_err(|e| {
            format!(
                "cannot run `go` ({e}): Go 1.26 or later must be on PATH for the independent \
                 tlog check (tests/go/tlogcheck)"
            )
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(stdout.trim_end().to_string())
    } else {
        Err(format!(
            "tests/go/tlogcheck {}:\n{stdout}{stderr}",
            out.status
        ))
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::crypto::merkle::{self, Leaves};
    use crate::crypto::note::{Checkpoint, NoteSigner, generate_key};

    use crate::crypto::merkle::MapStore as Store;

    #[test]
    fn go_verifies_our_proofs_and_checkpoint() {
        const N: u64 = 300;
        let entries: Vec<Vec<u8>> = (0..N)
            .map(|i| match i {
                0 => Vec::new(),
                1 => vec![0x00, 0xff, b'\n', 0x80],
                _ => format!("{{\"seq\":{i},\"event\":\"login\"}}").into_bytes(),
            })
            .collect();
        let mut store = Store::default();
        for (i, e) in entries.iter().enumerate() {
            for (level, index, h) in
                merkle::completed_by(&store, i as u64, merkle::leaf_hash(e)).unwrap()
            {
                store.0.insert((level, index), h);
            }
        }
        let root = merkle::root(&store, N).unwrap();
        let leaves = Leaves(entries.iter().map(|e| merkle::leaf_hash(e)).collect());
        assert_eq!(root, merkle::root(&leaves, N).unwrap());

        let key = generate_key().unwrap();
        let signer = NoteSigner::new("example.org/civis-audit", key.expose()).unwrap();
        let checkpoint = Checkpoint {
            origin: signer.name().to_string(),
            size: N,
            root,
        };
        let note = signer.sign(&checkpoint.text()).unwrap();
        let mut inclusion: Vec<InclusionProof> = (0..N)
            .map(|index| InclusionProof {
                index,
                size: N,
                hashes: merkle::inclusion_proof(&store, index, N).unwrap(),
            })
            .collect();
        let consistency: Vec<ConsistencyProof> = [1, 2, 3, 7, 8, 64, 100, 255, 256, 299, 300]
            .into_iter()
            .map(|from| ConsistencyProof {
                from,
                size: N,
                hashes: merkle::consistency_proof(&store, from, N).unwrap(),
            })
            .collect();

        let dir = tempfile::tempdir().unwrap();
        let check = |inclusion: &[InclusionProof]| {
            let (key, dir) = (signer.verifier_key(), dir.path());
            write_tlogcheck_dir(dir, &key, &note, &entries, inclusion, &consistency).unwrap();
            run_tlogcheck(dir)
        };
        let summary = check(&inclusion).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            summary,
            "ok: size 300, 300 inclusion proofs, 11 consistency proofs, 2 forgeries refused"
        );

        // And the Go side does refuse a bad proof, naming it.
        inclusion[123].hashes[2][7] ^= 0x10;
        let err = check(&inclusion).unwrap_err();
        assert!(
            err.contains("FAIL: inclusion proof for index 123 (size 300)"),
            "{err}"
        );
        assert_eq!(err.matches("FAIL:").count(), 1, "{err}");
    }
}
