//! One suite of the store's semantics, run against every backend: uniqueness, atomic and
//! isolated transactions, single-use take under concurrency, scans, expiry, unknown
//! versions and durability. A new backend passes this before it serves anyone.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::macros::datetime;

use super::record::Record;
use super::{Read, Store, StoreError};

const TREE: &str = "meta";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum Probe {
    #[serde(rename = "1")]
    V1 { n: u64 },
}

impl Record for Probe {
    const TREE: &'static str = TREE;
    const VERSIONS: &'static [&'static str] = &["1"];
}

fn n(store: &Store, key: &[u8]) -> Option<u64> {
    store.get::<Probe>(key).unwrap().map(|Probe::V1 { n }| n)
}

fn put(store: &Store, key: &[u8], value: u64) {
    store
        .transact(|tx| {
            tx.put(key, &Probe::V1 { n: value });
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

fn unique_inserts_abort_the_whole_transaction(store: &Store) {
    store
        .transact(|tx| tx.insert_new(b"u1", &Probe::V1 { n: 1 }))
        .unwrap();
    let second = store.transact(|tx| {
        tx.put(b"u2", &Probe::V1 { n: 2 });
        tx.insert_new(b"u1", &Probe::V1 { n: 3 })
    });
    assert!(
        matches!(second, Err(StoreError::Conflict { tree: TREE, .. })),
        "{second:?}"
    );
    assert_eq!(n(store, b"u1"), Some(1), "the existing value stays");
    assert_eq!(
        n(store, b"u2"),
        None,
        "the aborted transaction wrote nothing"
    );
}

fn a_new_key_is_judged_against_the_transactions_own_writes_too(store: &Store) {
    // Staged twice in one transaction: the second claim fails at once.
    let twice = store.transact(|tx| {
        tx.insert_new(b"n1", &Probe::V1 { n: 1 })?;
        tx.insert_new(b"n1", &Probe::V1 { n: 2 })
    });
    assert!(
        matches!(twice, Err(StoreError::Conflict { .. })),
        "{twice:?}"
    );
    assert_eq!(n(store, b"n1"), None);
    // A new key reads back inside its transaction.
    let seen = store
        .transact(|tx| {
            tx.insert_new(b"n1", &Probe::V1 { n: 3 })?;
            tx.get::<Probe>(b"n1")
        })
        .unwrap();
    assert!(matches!(seen, Some(Probe::V1 { n: 3 })));
    // Removed and then inserted again in one transaction: a replacement, not a conflict.
    store
        .transact(|tx| {
            tx.delete(TREE, b"n1");
            tx.insert_new(b"n1", &Probe::V1 { n: 4 })
        })
        .unwrap();
    assert_eq!(n(store, b"n1"), Some(4));
}

fn a_transaction_reads_its_own_writes_and_an_error_discards_them(store: &Store) {
    let seen = store
        .transact(|tx| {
            tx.put(b"t1", &Probe::V1 { n: 7 });
            let before = tx.get::<Probe>(b"t1")?;
            tx.delete(TREE, b"t1");
            let after = tx.get::<Probe>(b"t1")?;
            tx.put(b"t2", &Probe::V1 { n: 8 });
            Ok::<_, StoreError>((before, after))
        })
        .unwrap();
    assert_eq!(seen, (Some(Probe::V1 { n: 7 }), None));
    assert_eq!((n(store, b"t1"), n(store, b"t2")), (None, Some(8)));
    let failed: Result<(), StoreError> = store.transact(|tx| {
        tx.put(b"t2", &Probe::V1 { n: 9 });
        Err(StoreError::WouldBlock)
    });
    assert!(failed.is_err());
    assert_eq!(n(store, b"t2"), Some(8));
}

fn take_is_single_use_under_concurrency(store: &Store) {
    put(store, b"once", 1);
    let store = Arc::new(store.clone());
    let winners: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                s.spawn(move || {
                    store
                        .transact(|tx| tx.take::<Probe>(b"once"))
                        .unwrap()
                        .is_some()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum()
    });
    assert_eq!(winners, 1);
    assert_eq!(n(&store, b"once"), None);
}

fn concurrent_inserts_of_one_new_key_admit_one(store: &Store) {
    let admitted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                s.spawn(move || {
                    match store.transact(|tx| tx.insert_new(b"fresh", &Probe::V1 { n: i })) {
                        Ok(()) => 1,
                        Err(StoreError::Conflict { .. }) => 0,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(admitted, 1, "exactly one of the racing inserts wins");
    assert!(n(store, b"fresh").is_some());
}

fn read_modify_write_loses_no_update(store: &Store) {
    put(store, b"counter", 0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..25 {
                    store
                        .transact(|tx| {
                            let Some(Probe::V1 { n }) = tx.get::<Probe>(b"counter")? else {
                                return Err(StoreError::WouldBlock);
                            };
                            tx.put(b"counter", &Probe::V1 { n: n + 1 });
                            Ok(())
                        })
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(n(store, b"counter"), Some(200));
}

fn scans_follow_prefix_start_and_limit(store: &Store) {
    for key in ["s/b", "s/a", "s/c", "t/a", "r/z"] {
        put(store, key.as_bytes(), 1);
    }
    let backend = store.backend().unwrap();
    let keys = |prefix: &[u8], start: &[u8], limit| -> Vec<String> {
        backend
            .scan(TREE, prefix, start, limit)
            .unwrap()
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    };
    assert_eq!(keys(b"s/", b"", 10), ["s/a", "s/b", "s/c"]);
    assert_eq!(keys(b"s/", b"s/b", 10), ["s/b", "s/c"]);
    assert_eq!(keys(b"s/", b"", 2), ["s/a", "s/b"]);
    assert_eq!(
        keys(b"s/", b"a", 10),
        ["s/a", "s/b", "s/c"],
        "start before the prefix"
    );
    assert!(keys(b"q/", b"", 10).is_empty());
}

fn reads_of_many_keys_answer_in_the_order_asked(store: &Store) {
    put(store, b"m/a", 1);
    put(store, b"m/b", 2);
    let keys: Vec<Vec<u8>> = ["m/b", "m/x", "m/a", "m/b"]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
    let backend = store.backend().unwrap();
    let one = |key: &[u8]| backend.get(TREE, key).unwrap();
    let expected = vec![one(b"m/b"), None, one(b"m/a"), one(b"m/b")];
    assert!(expected[0].is_some() && expected[2].is_some());
    assert_eq!(backend.get_many(TREE, &keys).unwrap(), expected);
    assert!(backend.get_many(TREE, &[]).unwrap().is_empty());
    // In a transaction, its own writes first.
    store
        .transact(|tx| {
            tx.put(b"m/x", &Probe::V1 { n: 3 });
            let many = tx.raw_many(TREE, &keys)?;
            assert_eq!(many[0], expected[0]);
            assert_eq!(many[1], tx.raw(TREE, b"m/x")?);
            assert!(many[1].is_some());
            assert_eq!(many[2..], expected[2..]);
            Ok::<_, StoreError>(())
        })
        .unwrap();
}

/// A short-lived record that names its own expiry, as every such shape does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "v", content = "data")]
enum Timed {
    #[serde(rename = "1")]
    V1 {
        #[serde(with = "time::serde::rfc3339")]
        expires_at: time::OffsetDateTime,
    },
}

impl Record for Timed {
    const TREE: &'static str = TREE;
    const VERSIONS: &'static [&'static str] = &["1"];
}

fn expired_records_are_swept_and_reused_keys_kept(store: &Store) {
    let t0 = datetime!(2026-01-01 00:00 UTC);
    let soon = t0 + time::Duration::minutes(1);
    let hour = t0 + time::Duration::hours(1);
    let timed = |expires_at| Timed::V1 { expires_at };
    store
        .transact(|tx| {
            tx.put_expiring(b"e1", &Probe::V1 { n: 1 }, soon);
            tx.put_expiring(b"e2", &timed(soon), soon);
            tx.put_expiring(b"e3", &Probe::V1 { n: 3 }, hour);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    // e2 is taken early and its key used again for a record that lives longer.
    store
        .transact(|tx| {
            tx.delete(TREE, b"e2");
            tx.put_expiring(b"e2", &timed(hour), hour);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!(
        store.sweep_expired(t0, 100).unwrap(),
        0,
        "nothing is due yet"
    );
    let later = soon + time::Duration::seconds(1);
    assert_eq!(
        store.sweep_expired(later, 1).unwrap(),
        1,
        "one per call at most"
    );
    assert_eq!(store.sweep_expired(later, 100).unwrap(), 1);
    assert_eq!(store.sweep_expired(later, 100).unwrap(), 0);
    assert_eq!(n(store, b"e1"), None);
    let e2 = store.get::<Timed>(b"e2").unwrap();
    assert_eq!(
        e2,
        Some(timed(hour)),
        "a reused key is not swept with its old record"
    );
    assert_eq!(n(store, b"e3"), Some(3));
    let past_hour = hour + time::Duration::seconds(1);
    assert_eq!(store.sweep_expired(past_hour, 100).unwrap(), 2);
    assert_eq!(store.get::<Timed>(b"e2").unwrap(), None);
    assert_eq!(n(store, b"e3"), None);
}

fn unknown_versions_and_garbage_are_errors_naming_the_record(store: &Store) {
    store
        .plant_raw(TREE, b"future", br#"{"v":"99","data":{}}"#)
        .unwrap();
    store.plant_raw(TREE, b"junk", b"\xff").unwrap();
    assert!(matches!(
        store.get::<Probe>(b"future"),
        Err(StoreError::UnknownVersion { tree: TREE, .. })
    ));
    assert!(matches!(
        store.get::<Probe>(b"junk"),
        Err(StoreError::Corrupt { tree: TREE, .. })
    ));
    // Nor can a transaction take what it cannot read: the record stays.
    assert!(store.transact(|tx| tx.take::<Probe>(b"future")).is_err());
    assert!(
        store
            .backend()
            .unwrap()
            .get(TREE, b"future")
            .unwrap()
            .is_some()
    );
}

fn concurrent_audit_entries_form_one_gap_free_sequence(store: &Store) {
    // Queued (shared databases) or numbered in place (serial backends): either way every
    // entry ends up exactly once, with indices 0..n.
    std::thread::scope(|s| {
        for t in 0..8u32 {
            s.spawn(move || {
                for i in 0..25u32 {
                    let entry = format!("{t}-{i}");
                    let subject = format!("c{t}");
                    store
                        .transact(|tx| {
                            tx.audit()
                                .append(entry.as_bytes(), Some(&subject), 1_700_000_000)
                        })
                        .unwrap();
                }
            });
        }
    });
    while store.audit().number_queued(1000).unwrap().0 > 0 {}
    assert_eq!(store.audit().appended().unwrap(), 200);
    let entries = store.audit().entries(0, 1000).unwrap();
    let indices: Vec<u64> = entries.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, (0..200).collect::<Vec<u64>>());
    let distinct: std::collections::BTreeSet<&[u8]> =
        entries.iter().map(|(_, e)| e.as_slice()).collect();
    assert_eq!(distinct.len(), 200);
    assert_eq!(
        store.audit().subject_indices("c3", 0, 1000).unwrap().len(),
        25
    );
}

fn a_dpop_proof_is_spent_once_under_concurrency(store: &Store) {
    use crate::store::replay::Spend;
    let now = time::OffsetDateTime::now_utc();
    let made = now.unix_timestamp();
    let until = now + time::Duration::seconds(60);
    let outcomes: Vec<Spend> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..8)
            .map(|_| s.spawn(|| store.spend_dpop_proof(&[7; 32], made, until, now).unwrap()))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| **o == Spend::Spent).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        store.spend_dpop_proof(&[8; 32], made, until, now).unwrap(),
        Spend::Spent
    );
    // Made before this store was opened: refused where memory is all there is, judged by its
    // record where the database remembers.
    let before = store
        .spend_dpop_proof(&[9; 32], made - 3600, until, now)
        .unwrap();
    assert!(matches!(before, Spend::TooOld | Spend::Spent), "{before:?}");
}

macro_rules! suite {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $test() { super::$test(&super::Store::in_memory()); })*
        }
        mod sled {
            $(#[test] fn $test() {
                let dir = tempfile::tempdir().unwrap();
                super::$test(&super::Store::open_sled(dir.path()).unwrap());
            })*
        }
        mod postgres {
            $(#[test] fn $test() {
                use crate::store::postgres::{PgOptions, testdb::TestDb};
                let Some(db) = TestDb::create() else { return };
                let store = super::Store::open_postgres(&PgOptions::new(db.url.as_str())).unwrap();
                super::$test(&store);
            })*
        }
    };
}

suite!(
    unique_inserts_abort_the_whole_transaction,
    a_new_key_is_judged_against_the_transactions_own_writes_too,
    a_transaction_reads_its_own_writes_and_an_error_discards_them,
    take_is_single_use_under_concurrency,
    concurrent_inserts_of_one_new_key_admit_one,
    read_modify_write_loses_no_update,
    scans_follow_prefix_start_and_limit,
    reads_of_many_keys_answer_in_the_order_asked,
    expired_records_are_swept_and_reused_keys_kept,
    unknown_versions_and_garbage_are_errors_naming_the_record,
    concurrent_audit_entries_form_one_gap_free_sequence,
    a_dpop_proof_is_spent_once_under_concurrency,
);

#[test]
fn sled_commits_are_on_disk_when_transact_returns() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open_sled(dir.path()).unwrap();
        put(&store, b"durable", 42);
        // No explicit flush, no clean shutdown: the process could die right here.
        std::mem::forget(store);
    }
    // sled's lock is held by the forgotten handle in this process; a copy of the files is
    // what a restart after a crash would find.
    let copy = tempfile::tempdir().unwrap();
    for entry in walk(dir.path()) {
        let to = copy.path().join(entry.strip_prefix(dir.path()).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &to).unwrap();
    }
    let reopened = Store::open_sled(copy.path()).unwrap();
    assert_eq!(n(&reopened, b"durable"), Some(42));
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in walk(from) {
        let target = to.join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn entries(store: &Store) -> Vec<Vec<u8>> {
    let page = store.audit().entries(0, 100).unwrap();
    page.into_iter().map(|(_, bytes)| bytes).collect()
}

#[test]
fn sled_journaled_entries_are_numbered_once_across_crashes_and_rotations() {
    use super::NewEntry;
    let journal = super::journal::FILE_NAME;
    let new = |bytes: &'static [u8], subject| NewEntry {
        bytes,
        subject,
        at: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sled(dir.path()).unwrap();
    store
        .append_audit(&[new(b"a", None), new(b"b", None)])
        .unwrap();
    assert_eq!(
        store.audit().appended().unwrap(),
        0,
        "journaled, not yet numbered"
    );
    // The files a crash right now would leave.
    let unnumbered = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), unnumbered.path());
    assert_eq!(store.number_journal().unwrap(), 2);
    store
        .append_audit(&[new(b"c", Some("c1")), new(b"d", None)])
        .unwrap();

    // Crashed after numbering a and b: c and d are numbered at open, a and b not again.
    let crashed = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), crashed.path());
    let recovered = Store::open_sled(crashed.path()).unwrap();
    assert_eq!(
        entries(&recovered),
        [b"a", b"b", b"c", b"d"].map(|b| b.to_vec())
    );
    assert_eq!(recovered.audit().subject_indices("c1", 0, 10).unwrap(), [2]);
    drop(recovered);

    // Crashed before the numbering reached the disk: all four, once each.
    std::fs::copy(dir.path().join(journal), unnumbered.path().join(journal)).unwrap();
    let early = Store::open_sled(unnumbered.path()).unwrap();
    assert_eq!(
        entries(&early),
        [b"a", b"b", b"c", b"d"].map(|b| b.to_vec())
    );
    drop(early);

    // Past the rotation size, the numbered journal starts again under a new generation;
    // what is journaled after that is numbered, and nothing twice after a restart.
    let big = vec![b'x'; 1 << 20];
    let big = NewEntry {
        bytes: &big,
        subject: None,
        at: 0,
    };
    store.append_audit(&[big; 5]).unwrap();
    assert_eq!(store.number_journal().unwrap(), 7);
    let size = std::fs::metadata(dir.path().join(journal)).unwrap().len();
    assert!(size < 1 << 10, "the journal started again: {size} bytes");
    store.append_audit(&[new(b"e", None)]).unwrap();
    assert_eq!(store.number_journal().unwrap(), 1);
    drop(store);
    let reopened = Store::open_sled(dir.path()).unwrap();
    let all = entries(&reopened);
    assert_eq!(all.len(), 10);
    assert_eq!(all[9], b"e");
}
