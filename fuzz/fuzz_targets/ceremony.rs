//! Fuzz target `ceremony`: see `fuzz/harness.rs` for what it sends and what it checks.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::ceremony(data));
