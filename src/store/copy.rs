//! `civis store copy`: every record of one store into another, empty one, byte for byte
//! (the move from sled to PostgreSQL when a deployment outgrows one machine).

use super::backend::{Decision, Write};
use super::{Result, Store, StoreError, TREES};

/// Records per transaction on the target.
const BATCH: usize = 1000;

/// Why a copy did not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds civis records; nothing was written.
    #[error("the target store is not empty: copy only into a new database")]
    NotEmpty,
    /// Reading or writing failed; the target holds part of the copy and must be emptied
    /// (drop and create the database) before trying again.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Copies every tree of `from` into `to`, which must be empty; returns the number of
/// records per tree, in the order of [`TREES`]. Run it with the source not in use (sled's
/// lock on the data dir ensures that).
///
/// # Errors
/// [`CopyError::NotEmpty`] before anything is written; a store error otherwise.
pub fn copy(from: &Store, to: &Store) -> std::result::Result<Vec<(&'static str, u64)>, CopyError> {
    let source = from.backend()?;
    let target = to.backend()?;
    if !target.is_empty().map_err(StoreError::from)? {
        return Err(CopyError::NotEmpty);
    }
    let mut counts = Vec::with_capacity(TREES.len());
    for spec in TREES {
        let mut copied = 0u64;
        let mut start: Vec<u8> = Vec::new();
        loop {
            let page = source
                .scan(spec.name, b"", &start, BATCH)
                .map_err(StoreError::from)?;
            let Some((last, _)) = page.last() else { break };
            let mut after = last.clone();
            after.push(0); // the smallest key after `last`
            let full = page.len() == BATCH;
            copied += page.len() as u64;
            let writes: Vec<Write> = page
                .into_iter()
                .map(|(key, value)| Write {
                    tree: spec.name,
                    key,
                    value: Some(value),
                    new: false,
                })
                .collect();
            put_all(to, writes)?;
            if !full {
                break;
            }
            start = after;
        }
        counts.push((spec.name, copied));
    }
    to.flush()?;
    Ok(counts)
}

/// One transaction of plain writes (a backend may run the body again after a conflict,
/// hence the clone).
fn put_all(to: &Store, writes: Vec<Write>) -> Result<()> {
    to.backend()?
        .transact(&mut |_| Ok(Decision::Commit(writes.clone())))
        .map_err(StoreError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_tree_byte_for_byte_and_refuses_a_used_target() {
        let from = Store::in_memory();
        from.transact(|tx| {
            for i in 0u32..2500 {
                tx.put_raw("citizens", &i.to_be_bytes(), vec![1, 2, 3]);
            }
            tx.audit().append(br#"{"event":"x"}"#, Some("c1"), 0)?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
        let to = Store::in_memory();
        let counts = copy(&from, &to).unwrap();
        let count = |t: &str| counts.iter().find(|(n, _)| *n == t).unwrap().1;
        assert_eq!(count("citizens"), 2500);
        assert_eq!(count(crate::store::AUDIT_QUEUE), 1);
        for spec in TREES {
            let all = |s: &Store| {
                s.backend()
                    .unwrap()
                    .scan(spec.name, b"", b"", 10_000)
                    .unwrap()
            };
            assert_eq!(all(&from), all(&to), "tree {}", spec.name);
        }
        assert!(matches!(copy(&from, &to), Err(CopyError::NotEmpty)));
    }
}
