//! The sizing table: every figure of every N, with its baseline ratio and its ratio to the
//! smallest N, in markdown so that it goes into the README as printed.

use std::time::Duration;

use crate::load::Point;
use crate::loader::Loaded;
use crate::lookup::{Latency, Lookups};

pub struct Baselines {
    /// The higher of the two measurements (the stricter baseline).
    pub sign: f64,
    pub verify: f64,
    pub before: (f64, f64),
    pub after: (f64, f64),
}

/// One load series at one N.
pub struct Figure {
    pub name: &'static str,
    pub point: Point,
    pub peak_kib: Option<u64>,
}

impl Figure {
    pub fn new(name: &'static str, point: Point, peak_kib: Option<u64>) -> Self {
        Self {
            name,
            point,
            peak_kib,
        }
    }

    /// The raw operation this figure needs once per unit, and its name.
    fn baseline(&self, b: &Baselines) -> Option<(f64, &'static str)> {
        match self.name {
            n if n.starts_with("/token client") || n.starts_with("seal") => Some((b.sign, "sign")),
            n if n.starts_with("passkey") || n.starts_with("/verify") => Some((b.verify, "verify")),
            _ => None,
        }
    }
}

pub struct Step {
    pub n: u64,
    pub backend: &'static str,
    /// Opening the store in process, as the server does first.
    pub open: Duration,
    pub loaded: Loaded,
    pub bytes: u64,
    pub lookups: Lookups,
    pub ready_empty: Duration,
    pub ready_full: Duration,
    pub idle_kib: Option<u64>,
    pub figures: Vec<Figure>,
}

pub fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0))
}

fn count(n: u64) -> String {
    match n {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

fn lat(l: Latency) -> String {
    format!("{:.1} / {:.1}", l.p50_us, l.p99_us)
}

pub fn print(steps: &[Step], b: &Baselines, k: usize, measure: Duration, took: Duration) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\ncivis at scale: {cores} cores, K = {k} keep-alive connections, {:.0} s per series after 1 s warm-up, whole run {:.1} min",
        measure.as_secs_f64(),
        took.as_secs_f64() / 60.0
    );
    println!(
        "baselines, one core (higher of before/after): ring ECDSA P-256 sign {:.0}/s ({:.0} / {:.0}), verify {:.0}/s ({:.0} / {:.0})\n",
        b.sign, b.before.0, b.after.0, b.verify, b.before.1, b.after.1
    );

    println!(
        "| backend | N | data | per citizen | load | entries integrated | ready, empty / full | store open | lookup p50 / p99 µs: citizen id | national id | credential id | idle RSS |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for s in steps {
        let per = s.bytes as f64 / s.n.max(1) as f64;
        println!(
            "| {} | {} | {:.0} MB | {:.0} B | {:.0} citizens/s | {:.0}/s ({} entries) | {:.0} / {:.0} ms | {:.0} ms | {} | {} | {} | {} MiB |",
            s.backend,
            count(s.n),
            s.bytes as f64 / 1e6,
            per,
            s.loaded.citizens as f64 / s.loaded.load_seconds,
            s.loaded.entries as f64 / s.loaded.integrate_seconds,
            s.loaded.entries,
            s.ready_empty.as_secs_f64() * 1e3,
            s.ready_full.as_secs_f64() * 1e3,
            s.open.as_secs_f64() * 1e3,
            lat(s.lookups.by_citizen_id),
            lat(s.lookups.by_national_id),
            lat(s.lookups.by_credential_id),
            mib(s.idle_kib),
        );
    }

    println!(
        "\n| figure | backend | N | per second | p50 / p99 ms | ÷ raw baseline | ÷ smallest N | server CPU per op | peak RSS | errors |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let Some(first) = steps.first() else { return };
    for (i, f) in first.figures.iter().enumerate() {
        for s in steps {
            let Some(g) = s.figures.get(i) else { continue };
            // Scaling is judged within a backend: against its smallest N.
            let first = steps
                .iter()
                .find(|t| t.backend == s.backend)
                .unwrap_or(first);
            let p = &g.point;
            let base = g.baseline(b).map_or("".into(), |(r, what)| {
                format!("{:.2} ({what})", p.per_second / r)
            });
            let scale = first.figures[i].point.per_second;
            let vs_first = if scale > 0.0 {
                format!("{:.2}", p.per_second / scale)
            } else {
                "?".into()
            };
            let cpu = p
                .server_cpu_us
                .map_or("?".into(), |us| format!("{us:.0} µs"));
            let errors = match &p.first_error {
                Some(e) if p.errors > 0 => {
                    format!("{} ({})", p.errors, e.chars().take(60).collect::<String>())
                }
                _ => p.errors.to_string(),
            };
            println!(
                "| {} | {} | {} | {:.0} | {:.2} / {:.2} | {base} | {vs_first} | {cpu} | {} MiB | {errors} |",
                f.name,
                s.backend,
                count(s.n),
                p.per_second,
                p.p50_ms,
                p.p99_ms,
                mib(g.peak_kib),
            );
            for note in &p.notes {
                println!("|  | | note: {note} | | | | | | | |");
            }
        }
    }
}
