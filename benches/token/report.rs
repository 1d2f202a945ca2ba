//! The table and the ratios: each series' rounds merged per K (mean rate, every round's rate
//! shown), `/token` ÷ raw signing, and after ÷ before when two binaries were measured.

use crate::TARGET_RATIO;
use crate::load::Point;
use crate::series::{Bin, Kind, Run, Series};

/// The in-process signing baseline.
pub struct Baseline {
    pub cores: usize,
    pub input_len: usize,
    /// The higher of the two raw signing rates: the ratios use it.
    pub sign: f64,
    pub sign_before: f64,
    pub sign_after: f64,
    pub sign_jwt: f64,
    pub sign_others: Option<f64>,
    pub jwt_others: Option<f64>,
}

/// The rounds of one series on one binary at one K.
struct Merged {
    rates: Vec<f64>,
    /// Means over the rounds (errors and counts summed).
    point: Point,
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = v.fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / n as f64)
}

fn merge(runs: &[Run], series: Series, bin: usize) -> Vec<Merged> {
    let mine: Vec<&Run> = runs
        .iter()
        .filter(|r| r.series == series && r.bin == bin)
        .collect();
    let Some(first) = mine.first() else {
        return Vec::new();
    };
    (0..first.points.len())
        .map(|i| {
            let ps: Vec<&Point> = mine.iter().filter_map(|r| r.points.get(i)).collect();
            let avg = |f: fn(&Point) -> Option<f64>| mean(ps.iter().filter_map(|p| f(p)));
            let mut notes: Vec<String> = Vec::new();
            for n in ps.iter().flat_map(|p| &p.notes) {
                if !notes.contains(n) {
                    notes.push(n.clone());
                }
            }
            Merged {
                rates: ps.iter().map(|p| p.per_second).collect(),
                point: Point {
                    k: ps[0].k,
                    ok: ps.iter().map(|p| p.ok).sum(),
                    errors: ps.iter().map(|p| p.errors).sum(),
                    first_error: ps.iter().find_map(|p| p.first_error.clone()),
                    per_second: avg(|p| Some(p.per_second)).unwrap_or_default(),
                    window: ps[0].window,
                    issued_per_second: avg(|p| p.issued_per_second),
                    notes,
                    mean_ms: avg(|p| Some(p.mean_ms)).unwrap_or_default(),
                    p50_ms: avg(|p| Some(p.p50_ms)).unwrap_or_default(),
                    p99_ms: avg(|p| Some(p.p99_ms)).unwrap_or_default(),
                    server_cpu_us: avg(|p| p.server_cpu_us),
                    client_cpu_us: avg(|p| p.client_cpu_us),
                    others: avg(|p| p.others),
                },
            }
        })
        .collect()
}

fn best(merged: &[Merged]) -> Option<&Point> {
    merged
        .iter()
        .map(|m| &m.point)
        .max_by(|a, b| a.per_second.total_cmp(&b.per_second))
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

pub fn print(runs: &[Run], bins: &[Bin], series: &[Series], b: &Baseline) {
    let (cores, sign) = (b.cores, b.sign);
    println!();
    println!(
        "| measurement ({cores} cores, shared by server and load) | server | rate /s (mean of rounds) | rounds /s | ÷ raw sign | mean ms | p99 ms | CPU µs/op: server | CPU µs/op: load | other procs (cores) | errors | notes |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    println!(
        "| ring ES256 `sign`, 1 thread, {} B input | | {sign:.0} | | 1.00 | {:.3} | | {:.1} | | {} | | |",
        b.input_len,
        1000.0 / sign,
        1e6 / sign,
        opt(b.sign_others, 2)
    );
    println!(
        "| `sign_jwt` (JSON + base64 + sign), 1 thread | | {:.0} | | {:.2} | {:.3} | | {:.1} | | {} | | |",
        b.sign_jwt,
        b.sign_jwt / sign,
        1000.0 / b.sign_jwt,
        1e6 / b.sign_jwt,
        opt(b.jwt_others, 2)
    );
    for &s in series {
        for (bi, bin) in bins.iter().enumerate() {
            for m in merge(runs, s, bi) {
                let p = &m.point;
                let rounds: Vec<String> = m.rates.iter().map(|r| format!("{r:.0}")).collect();
                let mut notes = p.notes.clone();
                if let Some(r) = p.issued_per_second {
                    notes.insert(0, format!("codes issued at {r:.0}/s"));
                }
                println!(
                    "| {}, CIVIS_LOG={}, K={} | {} | {:.0} | {} | {:.2} | {:.3} | {:.3} | {} | {} | {} | {} | {} |",
                    s.name(),
                    s.log_level,
                    p.k,
                    bin.label,
                    p.per_second,
                    rounds.join(" / "),
                    p.per_second / sign,
                    p.mean_ms,
                    p.p99_ms,
                    opt(p.server_cpu_us, 0),
                    opt(p.client_cpu_us, 0),
                    opt(p.others, 2),
                    p.errors,
                    notes.join("; ")
                );
            }
        }
    }
    println!();
    for &s in series {
        for (bi, bin) in bins.iter().enumerate() {
            let mine = runs.iter().filter(|r| r.series == s && r.bin == bi);
            let (lines, bytes) = mine.fold((0, 0), |(l, b), r| (l + r.log_lines, b + r.log_bytes));
            println!(
                "server stderr, {} CIVIS_LOG={} [{}], all rounds: {lines} lines, {bytes} bytes",
                s.short(),
                s.log_level,
                bin.label
            );
            for r in runs.iter().filter(|r| r.series == s && r.bin == bi) {
                for p in r.points.iter().filter(|p| p.errors > 0) {
                    println!(
                        "  K={}: {} failed requests; first: {}",
                        p.k,
                        p.errors,
                        p.first_error.as_deref().unwrap_or("?")
                    );
                }
            }
        }
    }
    println!();
    println!("cores: {cores}");
    println!(
        "raw ring ES256 signing rate (1 core):  {sign:.0}/s (before the HTTP runs {:.0}/s, after {:.0}/s)",
        b.sign_before, b.sign_after
    );
    println!("sign_jwt rate (1 core):                {:.0}/s", b.sign_jwt);
    let token_series: Vec<Series> = series
        .iter()
        .copied()
        .filter(|s| matches!(s.kind, Kind::Token(_) | Kind::Dpop | Kind::Seal(_)))
        .collect();
    if !token_series.is_empty() {
        println!(
            "/token client_credentials tokens and sealed digests ÷ raw signing at the best K, per series and log level (target ≥ {TARGET_RATIO}):"
        );
        for &s in &token_series {
            for (bi, bin) in bins.iter().enumerate() {
                let merged = merge(runs, s, bi);
                let Some(p) = best(&merged) else { continue };
                let ratio = p.per_second / sign;
                println!(
                    "  {:<38} CIVIS_LOG={:<4} [{:<9}] K={:>2}: {:>6.0}/s  ratio {ratio:.2} {:<7}  CPU per token: server {} µs + load generator {} µs",
                    s.short(),
                    s.log_level,
                    bin.label,
                    p.k,
                    p.per_second,
                    if ratio >= TARGET_RATIO {
                        "met"
                    } else {
                        "not met"
                    },
                    opt(p.server_cpu_us, 0),
                    opt(p.client_cpu_us, 0),
                );
            }
        }
        println!(
            "the target allows {:.0} µs of CPU per token, server and load generator together ({cores} cores ÷ ({TARGET_RATIO} × {sign:.0}/s)); one signature is {:.0} µs",
            cores as f64 * 1e6 / (TARGET_RATIO * sign),
            1e6 / sign
        );
    }
    dpop_against_bearer(runs, series, bins);
    // With TOKEN_BENCH_BEFORE the binaries are [before, after]; with a database URL
    // [sled, postgres, two processes on postgres]: each pair in order.
    for (bi, before) in bins.iter().enumerate() {
        for (ai, after) in bins.iter().enumerate().skip(bi + 1) {
            compare(runs, series, (bi, before), (ai, after));
        }
    }
    if runs
        .iter()
        .any(|r| r.points.iter().any(|p| p.errors > 0 || !p.notes.is_empty()))
    {
        println!("some requests failed or some points were cut short: see above");
    }
}

/// DPoP-bound ÷ bearer client_credentials (reqwest both) at the best K, per binary and log
/// level (issue 13: at least 0.5).
fn dpop_against_bearer(runs: &[Run], series: &[Series], bins: &[Bin]) {
    for &dpop in series.iter().filter(|s| s.kind == Kind::Dpop) {
        let Some(&bearer) = series.iter().find(|s| {
            s.kind == Kind::Token(crate::load::Driver::Reqwest) && s.log_level == dpop.log_level
        }) else {
            continue;
        };
        for (bi, bin) in bins.iter().enumerate() {
            let (d, b) = (merge(runs, dpop, bi), merge(runs, bearer, bi));
            let (Some(d), Some(b)) = (best(&d), best(&b)) else {
                continue;
            };
            let ratio = d.per_second / b.per_second;
            println!(
                "DPoP ÷ bearer client_credentials CIVIS_LOG={} [{}]: {:.0}/s (K={}) ÷ {:.0}/s (K={}) = {ratio:.2} (goal ≥ 0.5: {}); CPU per token: server {} vs {} µs, load generator {} vs {} µs",
                dpop.log_level,
                bin.label,
                d.per_second,
                d.k,
                b.per_second,
                b.k,
                if ratio >= 0.5 { "met" } else { "not met" },
                opt(d.server_cpu_us, 0),
                opt(b.server_cpu_us, 0),
                opt(d.client_cpu_us, 0),
                opt(b.client_cpu_us, 0),
            );
        }
    }
}

/// After ÷ before per series: at each binary's best K, and at every K.
fn compare(
    runs: &[Run],
    series: &[Series],
    (bi, before): (usize, &Bin),
    (ai, after): (usize, &Bin),
) {
    println!(
        "{} ÷ {} ({}, {}; rates are means of the rounds):",
        after.label,
        before.label,
        after.path.display(),
        before.path.display()
    );
    for &s in series {
        let (b, a) = (merge(runs, s, bi), merge(runs, s, ai));
        let (Some(bb), Some(ab)) = (best(&b), best(&a)) else {
            continue;
        };
        let per_k: Vec<String> = b
            .iter()
            .zip(&a)
            .map(|(b, a)| {
                format!(
                    "K={} {:.2}",
                    a.point.k,
                    a.point.per_second / b.point.per_second
                )
            })
            .collect();
        println!(
            "  {:<38} CIVIS_LOG={:<4} best K: after {:>6.0}/s (K={}) ÷ before {:>6.0}/s (K={}) = {:.2}   per K: {}",
            s.short(),
            s.log_level,
            ab.per_second,
            ab.k,
            bb.per_second,
            bb.k,
            ab.per_second / bb.per_second,
            per_k.join(", ")
        );
    }
}
