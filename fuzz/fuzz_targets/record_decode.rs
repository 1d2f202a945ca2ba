//! Checks that arbitrary bytes stored as a citizen record or an enrolment ticket decode to a value or an error, never a panic.
#![no_main]

use civis::store::{CITIZENS, ENROLMENTS, Store};
use libfuzzer_sys::fuzz_target;

/// `hex([0u8; 32])`: the key `Citizens::enrolment_ticket(&[0u8; 32])` reads.
const ZERO_HASH_KEY: &[u8; 64] = &[b'0'; 64];

fn plant(store: &Store, tree: &'static str, key: &[u8], data: &[u8]) {
    let planted = store.plant_raw(tree, key, data);
    // Planting into the memory backend cannot fail; if it did, the read below would test
    // nothing.
    assert!(planted.is_ok(), "planting failed: {planted:?}");
}

fuzz_target!(|data: &[u8]| {
    let store = Store::in_memory();

    plant(&store, CITIZENS, b"k", data);
    // Ok(Some), Err(UnknownVersion) and Err(Corrupt) are all fine; a panic is a bug.
    let _ = store.citizens().get("k");

    plant(&store, ENROLMENTS, ZERO_HASH_KEY, data);
    let _ = store.citizens().enrolment_ticket(&[0u8; 32]);
});
