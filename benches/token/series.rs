//! What is measured: series (a request kind at a log level), the server binaries they run
//! against, and one run of a series (a fresh server, every K in turn).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::codes::RelyingParty;
use crate::durable::{redemption_point, registration_point};
use crate::load::{Driver, Point, drive};
use crate::seal::{Sealer, sealing_point, verification_point};
use crate::server::{Server, register};
use crate::{concurrency, load_runtime};

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    /// `POST /token`, `client_credentials`, with one of the four clients.
    Token(Driver),
    /// `POST /token`, `client_credentials` with a fresh DPoP proof per request (reqwest).
    Dpop,
    /// `POST /token`, `authorization_code` with PKCE S256, pre-issued codes.
    Redeem,
    /// `POST /admin/v1/citizens`.
    Register,
    /// `POST /seal/v1/sign`, batches of 100 digests, in the format named.
    Seal(&'static str),
    /// `POST /verify/v1` of a sealed CAdES signature.
    Verify,
    /// `GET /transparency/v1/proof/inclusion` in a seeded log (and, once, the in-process
    /// integration rate).
    Proof,
}

#[derive(Clone, Copy, PartialEq)]
pub struct Series {
    pub kind: Kind,
    pub log_level: &'static str,
}

impl Series {
    /// Every series, in the order they run.
    pub fn all() -> Vec<Self> {
        let kinds = [
            Kind::Token(Driver::Reqwest),
            Kind::Token(Driver::Raw),
            Kind::Token(Driver::Pipelined),
            Kind::Token(Driver::H2),
            Kind::Dpop,
            Kind::Redeem,
            Kind::Register,
            Kind::Seal("cades"),
            Kind::Seal("jades"),
            Kind::Verify,
            Kind::Proof,
        ];
        ["info", "warn"]
            .into_iter()
            .flat_map(|log_level| kinds.map(|kind| Self { kind, log_level }))
            .collect()
    }

    /// The name `TOKEN_BENCH_ONLY` selects it by, e.g. `redeem-info`.
    pub fn key(self) -> String {
        let kind = match self.kind {
            Kind::Token(d) => d.key(),
            Kind::Dpop => "dpop",
            Kind::Redeem => "redeem",
            Kind::Register => "register",
            Kind::Seal("cades") => "seal-cades",
            Kind::Seal(_) => "seal-jades",
            Kind::Verify => "verify",
            Kind::Proof => "proof",
        };
        format!("{kind}-{}", self.log_level)
    }

    pub fn name(self) -> String {
        match self.kind {
            Kind::Token(d) => format!("POST /token client_credentials, {}", d.name()),
            Kind::Dpop => "POST /token client_credentials with DPoP proofs, reqwest".into(),
            Kind::Redeem => "POST /token authorization_code + PKCE, reqwest".into(),
            Kind::Register => "POST /admin/v1/citizens, reqwest".into(),
            Kind::Seal(f) => format!(
                "POST /seal/v1/sign {f}, {} digests a call, reqwest",
                crate::seal::BATCH
            ),
            Kind::Verify => "POST /verify/v1 (CAdES), reqwest".into(),
            Kind::Proof => format!(
                "GET /transparency/v1/proof/inclusion, {}-entry log, reqwest",
                crate::audit::SEED_ENTRIES
            ),
        }
    }

    /// What one operation is, for the summary.
    pub fn short(self) -> String {
        match self.kind {
            Kind::Token(d) => format!("client_credentials, {}", d.name()),
            Kind::Dpop => "client_credentials, DPoP, reqwest".into(),
            Kind::Redeem => "code redemption".into(),
            Kind::Register => "citizen registration".into(),
            Kind::Seal(f) => format!("sealed digests, {f}"),
            Kind::Verify => "verification".into(),
            Kind::Proof => "inclusion proof".into(),
        }
    }
}

/// A server binary under test.
pub struct Bin {
    /// `after` (this build), `before` (`TOKEN_BENCH_BEFORE`), or `this build` when alone.
    pub label: &'static str,
    pub path: PathBuf,
    /// Extra environment for the server (e.g. `CIVIS_LOG_WRITER`).
    pub env: Vec<(&'static str, &'static str)>,
}

pub struct Run {
    pub series: Series,
    /// Index into the binaries.
    pub bin: usize,
    pub points: Vec<Point>,
    pub log_lines: usize,
    pub log_bytes: u64,
}

/// One run of `series` against a fresh server of `bins[bin]`: every K in turn.
pub fn run(series: Series, bins: &[Bin], bin: usize, round: usize, measure: Duration) -> Run {
    if series.kind == Kind::Proof && round == 0 && bin == 0 {
        let n = 200_000;
        println!(
            "  audit integration, in process (sled, {n} entries, checkpoint per round): {:.0} entries/s",
            crate::audit::integration_rate(n)
        );
        let n = 64_000;
        for (way, cpu, rate) in crate::audit::append_costs(n) {
            println!(
                "  audit append, in process ({n} tokens.issued entries), {way}: {cpu:.1} µs CPU per entry, {rate:.0} entries/s"
            );
        }
    }
    let server = Server::start(&bins[bin].path, series.log_level, &bins[bin].env);
    let rt = load_runtime();
    let points = rt.block_on(async {
        let mut points = Vec::new();
        let token_client = match series.kind {
            Kind::Token(_) | Kind::Dpop => Some(register(&server).await),
            _ => None,
        };
        let sealer = match series.kind {
            Kind::Seal(_) | Kind::Verify => Some(Sealer::set_up(&server).await),
            _ => None,
        };
        let proof_size = match series.kind {
            Kind::Proof => Some(crate::audit::seed(&server).await),
            _ => None,
        };
        let rp = match series.kind {
            Kind::Redeem => Some(Arc::new(RelyingParty::set_up(&server).await)),
            _ => None,
        };
        for k in concurrency() {
            let p = match series.kind {
                Kind::Token(driver) => {
                    let (id, secret) = token_client.as_ref().expect("client registered");
                    drive(&server, driver, (id, secret), k, measure).await
                }
                Kind::Dpop => {
                    let (id, secret) = token_client.as_ref().expect("client registered");
                    crate::dpop::dpop_point(&server, (id, secret), k, measure).await
                }
                Kind::Redeem => {
                    let previous = points.last().map(|p: &Point| p.per_second);
                    let rp = rp.as_ref().expect("relying party");
                    redemption_point(&server, rp, k, measure, previous).await
                }
                Kind::Register => registration_point(&server, k, measure).await,
                Kind::Seal(format) => {
                    let sealer = sealer.as_ref().expect("sealer");
                    sealing_point(&server, sealer, format, k, measure).await
                }
                Kind::Verify => {
                    let sealer = sealer.as_ref().expect("sealer");
                    verification_point(&server, sealer, k, measure).await
                }
                Kind::Proof => {
                    let size = proof_size.expect("seeded log");
                    crate::audit::proof_point(&server, size, k, measure).await
                }
            };
            println!(
                "  {} CIVIS_LOG={} [{}, round {}] K={k:>2}: {:.0}/s ok={} errors={}{}{}",
                series.short(),
                series.log_level,
                bins[bin].label,
                round + 1,
                p.per_second,
                p.ok,
                p.errors,
                p.issued_per_second
                    .map(|r| format!(" (codes issued at {r:.0}/s)"))
                    .unwrap_or_default(),
                p.notes.iter().map(|n| format!("; {n}")).collect::<String>()
            );
            points.push(p);
        }
        points
    });
    drop(rt);
    if let Some(kib) = server.peak_rss_kib() {
        println!(
            "  {} CIVIS_LOG={} [{}, round {}]: peak server memory {:.1} MiB",
            series.short(),
            series.log_level,
            bins[bin].label,
            round + 1,
            kib as f64 / 1024.0
        );
    }
    let (log_lines, log_bytes) = server.log_stats();
    server.stop();
    Run {
        series,
        bin,
        points,
        log_lines,
        log_bytes,
    }
}
