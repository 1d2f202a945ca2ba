//! Point lookups in process on a loaded data dir, opened as the server opens it (its
//! default 16 MiB sled cache): by citizen id, by national id (the uniqueness index every
//! registration consults) and by credential id (every login's first read), at indices
//! spread over all N citizens.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use civis::store::Store;

use crate::loader::{citizen_uuid, credential_id, national_id};

/// Lookups per kind.
const SAMPLES: u64 = 20_000;

/// p50 and p99 of one kind of lookup, in microseconds.
#[derive(Clone, Copy, Default)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
}

pub struct Lookups {
    pub by_citizen_id: Latency,
    pub by_national_id: Latency,
    pub by_credential_id: Latency,
}

fn latency(mut times: Vec<Duration>) -> Latency {
    times.sort();
    let at = |q: usize| times[(times.len() * q / 100).min(times.len() - 1)].as_secs_f64() * 1e6;
    Latency {
        p50_us: at(50),
        p99_us: at(99),
    }
}

/// A spread of indices below `n` (a multiplicative walk with a large odd step).
fn indices(n: u64, salt: u64) -> impl Iterator<Item = u64> {
    (0..SAMPLES).map(move |k| {
        (k.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(salt)
            .rotate_left(17))
            % n
    })
}

fn time_each(n: u64, salt: u64, mut op: impl FnMut(u64) -> bool) -> Latency {
    let times = indices(n, salt)
        .map(|i| {
            let start = Instant::now();
            assert!(op(i), "lookup {i} found nothing");
            start.elapsed()
        })
        .collect();
    latency(times)
}

/// Times the three lookups on `store` (opened as the server opens it).
pub fn measure(store: &Store, n: u64) -> Lookups {
    let by_citizen_id = time_each(n, 1, |i| {
        let id = citizen_uuid(i).to_string();
        store.citizens().get(&id).expect("read").is_some()
    });
    let by_national_id = time_each(n, 2, |i| {
        store
            .citizens()
            .by_national_id(&national_id(i))
            .expect("read")
            .is_some()
    });
    let by_credential_id = time_each(n, 3, |i| {
        let id = URL_SAFE_NO_PAD.encode(credential_id(i));
        store.passkeys().credential(&id).expect("read").is_some()
    });
    Lookups {
        by_citizen_id,
        by_national_id,
        by_credential_id,
    }
}
