//! The audit log as a transparency log (CONTRACT.md §7): the integrator that extends the
//! RFC 9162 Merkle tree over new entries and signs a C2SP checkpoint, the inclusion and
//! consistency proofs served from the stored subtree hashes, and the offline check behind
//! `civis audit verify`.
//!
//! The tree's storage is the hash of every complete subtree (about 2n hashes); an entry
//! costs O(log n) hashes to integrate, and a proof at most O(log² n) stored hashes, fetched
//! in one read.

use std::collections::HashMap;

use crate::crypto::merkle::{self, Frontier, Hash, Subtrees};
use crate::crypto::note::{Checkpoint, NoteSigner, NoteVerifier};
use crate::store::{MAX_AUDIT_PAGE, Store, StoreError};

/// Most entries one integration round takes (a backlog is worked off in several rounds,
/// each publishing a checkpoint).
pub const ROUND: u64 = 100_000;

/// Stored subtree hashes, seen through the ones computed in this round first.
struct Staged<'a> {
    store: &'a Store,
    fresh: HashMap<(u8, u64), Hash>,
}

impl Subtrees for Staged<'_> {
    type Error = StoreError;
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        match self.fresh.get(&(level, index)) {
            Some(h) => Ok(*h),
            None => self.store.audit().subtree(level, index),
        }
    }
}

/// Records which subtrees a proof reads, answering zeros: which ones a proof reads depends
/// only on its indices, never on the hashes, so they can all be fetched in one read first.
#[derive(Default)]
struct Wanted(std::cell::RefCell<Vec<(u8, u64)>>);

impl Subtrees for Wanted {
    type Error = std::convert::Infallible;
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
        self.0.borrow_mut().push((level, index));
        Ok([0; 32])
    }
}

/// The subtrees a proof reads, fetched beforehand.
struct Fetched(HashMap<(u8, u64), Hash>);

impl Subtrees for Fetched {
    type Error = StoreError;
    fn subtree(&self, level: u8, index: u64) -> Result<Hash, StoreError> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or_else(|| StoreError::Corrupt {
                tree: crate::store::AUDIT_HASHES,
                key: format!("({level}, {index})"),
                reason: "subtree not fetched".into(),
            })
    }
}

/// Fetches, in one read, every subtree that `proof` reads (it is run once on [`Wanted`]).
fn fetch(
    store: &Store,
    proof: impl FnOnce(&Wanted) -> Result<Vec<Hash>, std::convert::Infallible>,
) -> Result<Fetched, StoreError> {
    let wanted = Wanted::default();
    let Ok(_) = proof(&wanted);
    let wanted = wanted.0.into_inner();
    let hashes = store.audit().subtrees(&wanted)?;
    Ok(Fetched(wanted.into_iter().zip(hashes).collect()))
}

/// Why integration could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrateError {
    /// Storage failed or the log is damaged.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The checkpoint could not be signed.
    #[error("signing the checkpoint: {0}")]
    Sign(String),
    /// The stored checkpoint key is not ours: the log was started with another `audit.key`.
    #[error(
        "audit.key does not match the key that signed this log's checkpoints ({stored}); \
         restore that key, or start a new data dir"
    )]
    WrongKey {
        /// The verifier key on record.
        stored: String,
    },
}

/// Checks that `signer` is the key this log's checkpoints are signed with (or that none
/// was fixed yet). Run once at start.
///
/// # Errors
/// [`IntegrateError::WrongKey`]; storage errors.
pub fn check_key(store: &Store, signer: &NoteSigner) -> Result<(), IntegrateError> {
    match store.audit().verifier()? {
        Some(stored) if stored != signer.verifier_key() => Err(IntegrateError::WrongKey { stored }),
        _ => Ok(()),
    }
}

/// One integration round: puts up to [`ROUND`] new entries into the tree and publishes a
/// checkpoint of the new size (also the first, empty checkpoint of a new log). Returns the
/// new size, or `None` when there was nothing to do.
///
/// # Errors
/// Storage failures and damage (a missing entry), signing failures.
pub fn integrate(store: &Store, signer: &NoteSigner) -> Result<Option<u64>, IntegrateError> {
    super::audit::settle(store)?;
    let audit = store.audit();
    let size = audit.integrated()?;
    let appended = audit.appended()?;
    if appended == size && audit.latest_checkpoint()?.is_some() {
        return Ok(None);
    }
    let end = appended.min(size.saturating_add(ROUND));
    let mut staged = Staged {
        store,
        fresh: HashMap::new(),
    };
    let mut next = size;
    while next < end {
        let want = usize::try_from(end - next).unwrap_or(MAX_AUDIT_PAGE);
        let page = audit.entries(next, want.min(MAX_AUDIT_PAGE))?;
        if page.is_empty() {
            return Err(missing(next).into());
        }
        for (index, bytes) in page {
            if index != next {
                return Err(missing(next).into());
            }
            for (level, at, hash) in
                merkle::completed_by(&staged, index, merkle::leaf_hash(&bytes))?
            {
                staged.fresh.insert((level, at), hash);
            }
            next += 1;
            if next == end {
                break;
            }
        }
    }
    let root = if end == 0 {
        merkle::empty_root()
    } else {
        merkle::root(&staged, end)?
    };
    let checkpoint = Checkpoint {
        origin: signer.name().to_owned(),
        size: end,
        root,
    };
    let note = signer
        .sign(&checkpoint.text())
        .map_err(|e| IntegrateError::Sign(e.to_string()))?;
    let fresh: Vec<(u8, u64, Hash)> = staged
        .fresh
        .into_iter()
        .map(|((level, index), hash)| (level, index, hash))
        .collect();
    let verifier = signer.verifier_key();
    let done = store.transact(|tx| {
        // One integrator at a time: another that got here first wins, this round is void.
        if tx.audit().integrated()? != size {
            return Ok::<_, StoreError>(false);
        }
        tx.audit().put_subtrees(&fresh)?;
        tx.audit().put_checkpoint(end, &note);
        if tx.audit().verifier()?.is_none() {
            tx.audit().put_verifier(&verifier);
        }
        Ok(true)
    })?;
    Ok(done.then_some(end))
}

fn missing(index: u64) -> StoreError {
    StoreError::Corrupt {
        tree: crate::store::AUDIT_ENTRIES,
        key: index.to_string(),
        reason: "entry missing below the appended count".into(),
    }
}

/// The RFC 9162 inclusion proof of entry `index` in the tree of `size` entries. The caller
/// checks `index < size <= integrated`.
///
/// # Errors
/// Storage errors.
pub fn inclusion(store: &Store, index: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
    let fetched = fetch(store, |w| merkle::inclusion_proof(w, index, size))?;
    merkle::inclusion_proof(&fetched, index, size)
}

/// The RFC 9162 consistency proof between the trees of `from` and `size` entries. The
/// caller checks `1 <= from <= size <= integrated`.
///
/// # Errors
/// Storage errors.
pub fn consistency(store: &Store, from: u64, size: u64) -> Result<Vec<Hash>, StoreError> {
    let fetched = fetch(store, |w| merkle::consistency_proof(w, from, size))?;
    merkle::consistency_proof(&fetched, from, size)
}

/// What `civis audit verify` found wrong: the first damage, naming the entry where one can
/// be named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Damage {
    /// The first entry that was changed, removed or reordered, when known.
    pub entry: Option<u64>,
    /// What is wrong, in plain words.
    pub message: String,
}

fn damage(entry: Option<u64>, message: impl Into<String>) -> Damage {
    Damage {
        entry,
        message: message.into(),
    }
}

/// What an intact log verified to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entries checked.
    pub entries: u64,
    /// Size and root of the latest checkpoint.
    pub size: u64,
    /// Its root.
    pub root: Hash,
    /// Checkpoints whose signature and root were checked.
    pub checkpoints: u64,
}

/// Recomputes every leaf and the tree from the entries, compares each leaf with the stored
/// tree, and checks every stored checkpoint's signature and root with the verifier key on
/// record, which must carry the public key `pinned` (base64 of `0x01 ‖ key`) when given.
///
/// # Errors
/// `Ok(Err(Damage))` for a damaged log; `Err` only for storage failures that stop the check.
pub fn verify(store: &Store, pinned: Option<&str>) -> Result<Result<Verified, Damage>, StoreError> {
    let audit = store.audit();
    // The log as of now: the service may go on appending and integrating while this runs
    // (a shared database), so the check stops at these sizes. Read in this order, the
    // integrated size never exceeds the appended one.
    let integrated = audit.integrated()?;
    let appended = audit.appended()?;
    let recorded = audit.verifier()?;
    // A pinned key is the public-key part of the verifier key (after its last `+`).
    if let (Some(p), Some(r)) = (pinned, recorded.as_deref())
        && r.rsplit('+').next() != Some(p)
    {
        return Ok(Err(damage(
            None,
            format!("the checkpoint key on record ({r}) is not the key in audit.key"),
        )));
    }
    let verifier_text = recorded;
    let verifier = match verifier_text
        .as_deref()
        .map(NoteVerifier::parse)
        .transpose()
    {
        Ok(v) => v,
        Err(e) => {
            return Ok(Err(damage(
                None,
                format!("the checkpoint key is malformed: {e}"),
            )));
        }
    };
    let known = |mut page: Vec<(u64, String)>| {
        page.retain(|(size, _)| *size <= integrated);
        page.reverse(); // popped from the end: smallest size first
        page
    };
    let mut checkpoints = known(audit.checkpoints(0, MAX_AUDIT_PAGE)?);
    let mut checked = 0;
    let mut latest = (0, merkle::empty_root());
    let mut frontier = Frontier::default();
    let mut check_due = |frontier: &Frontier,
                         checkpoints: &mut Vec<(u64, String)>|
     -> Result<Result<(), Damage>, StoreError> {
        while let Some((size, _)) = checkpoints.last() {
            if *size != frontier.size() {
                break;
            }
            let Some((size, note)) = checkpoints.pop() else {
                break;
            };
            let Some(verifier) = &verifier else {
                return Ok(Err(damage(
                    None,
                    "checkpoints exist but no checkpoint key is on record",
                )));
            };
            let text = match verifier.open(&note) {
                Ok(t) => t,
                Err(e) => {
                    return Ok(Err(damage(
                        None,
                        format!("checkpoint at size {size}: signature refused ({e})"),
                    )));
                }
            };
            let parsed = match Checkpoint::parse(text) {
                Ok(c) => c,
                Err(e) => return Ok(Err(damage(None, format!("checkpoint at size {size}: {e}")))),
            };
            let root = frontier.root();
            if parsed.size != size || parsed.origin != verifier.name() || parsed.root != root {
                return Ok(Err(damage(
                    size.checked_sub(1),
                    format!(
                        "checkpoint at size {size} does not match the entries below it: an entry \
                         before index {size} was changed, removed or reordered"
                    ),
                )));
            }
            checked += 1;
            latest = (size, root);
            if checkpoints.is_empty() {
                *checkpoints = known(store.audit().checkpoints(size + 1, MAX_AUDIT_PAGE)?);
            }
        }
        Ok(Ok(()))
    };
    if let Err(d) = check_due(&frontier, &mut checkpoints)? {
        return Ok(Err(d));
    }
    let mut next = 0u64;
    while next < appended {
        let want =
            usize::try_from(appended - next).map_or(MAX_AUDIT_PAGE, |n| n.min(MAX_AUDIT_PAGE));
        let page = audit.entries(next, want)?;
        if page.is_empty() {
            break;
        }
        for (index, bytes) in page {
            if index != next {
                return Ok(Err(damage(Some(next), format!("entry {next} is missing"))));
            }
            if !serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.is_object()) {
                return Ok(Err(damage(
                    Some(index),
                    format!("entry {index} is not a JSON object"),
                )));
            }
            let leaf = merkle::leaf_hash(&bytes);
            if index < integrated && audit.subtree(0, index).ok() != Some(leaf) {
                return Ok(Err(damage(
                    Some(index),
                    format!("entry {index} was changed or reordered: its hash is not the tree's"),
                )));
            }
            frontier.push(leaf);
            if let Err(d) = check_due(&frontier, &mut checkpoints)? {
                return Ok(Err(d));
            }
            next += 1;
        }
    }
    if next < appended {
        return Ok(Err(damage(
            Some(next),
            format!("entry {next} is missing (the log counts {appended})"),
        )));
    }
    if let Some((size, _)) = checkpoints.last() {
        return Ok(Err(damage(
            Some(next),
            format!(
                "a checkpoint at size {size} covers entries that are missing from index {next}"
            ),
        )));
    }
    if integrated > 0 && latest.0 != integrated {
        return Ok(Err(damage(
            None,
            format!("the checkpoint of size {integrated} is missing"),
        )));
    }
    Ok(Ok(Verified {
        entries: next,
        size: latest.0,
        root: latest.1,
        checkpoints: checked,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::note::generate_key;

    fn signer(name: &str) -> NoteSigner {
        NoteSigner::new(name, generate_key().unwrap().expose()).unwrap()
    }

    fn append(store: &Store, n: u64) {
        store
            .transact(|tx| {
                for i in 0..n {
                    tx.audit()
                        .append(format!("{{\"n\":{i}}}").as_bytes(), None, 0)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        crate::domain::audit::settle(store).unwrap();
    }

    #[test]
    fn integration_proofs_and_the_offline_check_agree() {
        let store = Store::in_memory();
        let log = signer("example.org/audit");
        assert_eq!(
            integrate(&store, &log).unwrap(),
            Some(0),
            "the empty tree's checkpoint"
        );
        assert_eq!(integrate(&store, &log).unwrap(), None, "nothing new");
        append(&store, 37);
        assert_eq!(integrate(&store, &log).unwrap(), Some(37));
        append(&store, 5);
        assert_eq!(integrate(&store, &log).unwrap(), Some(42));
        let (_, note) = store.audit().latest_checkpoint().unwrap().unwrap();
        let verifier = NoteVerifier::parse(&log.verifier_key()).unwrap();
        let cp = Checkpoint::parse(verifier.open(&note).unwrap()).unwrap();
        assert_eq!(cp.size, 42);
        for index in 0..42 {
            let leaf = merkle::leaf_hash(&store.audit().entry(index).unwrap().unwrap());
            let proof = inclusion(&store, index, 42).unwrap();
            assert!(
                merkle::verify_inclusion(&leaf, index, 42, &proof, &cp.root),
                "{index}"
            );
        }
        // The checkpoint of size 37 is consistent with the latest one.
        let (_, old) = store.audit().checkpoints(37, 1).unwrap().remove(0);
        let old = Checkpoint::parse(verifier.open(&old).unwrap()).unwrap();
        let proof = consistency(&store, 37, 42).unwrap();
        assert!(merkle::verify_consistency(
            37, 42, &old.root, &cp.root, &proof
        ));
        let v = verify(&store, None).unwrap().unwrap();
        assert_eq!(
            (v.entries, v.size, v.root, v.checkpoints),
            (42, 42, cp.root, 3)
        );
    }

    #[test]
    fn another_key_cannot_continue_a_log() {
        let store = Store::in_memory();
        let log = signer("example.org/audit");
        integrate(&store, &log).unwrap();
        assert!(check_key(&store, &log).is_ok());
        let other = signer("example.org/audit");
        assert!(matches!(
            check_key(&store, &other),
            Err(IntegrateError::WrongKey { .. })
        ));
    }

    #[test]
    fn a_changed_entry_is_named_by_the_offline_check() {
        let store = Store::in_memory();
        let log = signer("example.org/audit");
        append(&store, 9);
        integrate(&store, &log).unwrap();
        store
            .plant_raw(
                crate::store::AUDIT_ENTRIES,
                &4u64.to_be_bytes(),
                b"{\"n\":40}",
            )
            .unwrap();
        let damage = verify(&store, None).unwrap().unwrap_err();
        assert_eq!(damage.entry, Some(4), "{damage}");
    }
}
