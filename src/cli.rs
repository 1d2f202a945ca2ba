//! The `civis` command line: `serve`, `keys`, `openapi`, `evidence`, `audit`, `store`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ServeArgs};

/// civis: electronic identification and signing service.
#[derive(Debug, Parser)]
#[command(name = "civis", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start; the size does not matter"
)]
enum Command {
    /// Run the service (HTTPS on 127.0.0.1:8443 with the development keys by default).
    Serve(ServeArgs),
    /// Manage key material.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI description (the source of spec/openapi.json).
    Openapi,
    /// Signing evidence.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Storage.
    #[command(subcommand)]
    Store(StoreCommand),
}

/// Where a command finds the database instead of a data dir.
#[derive(Debug, clap::Args)]
struct DatabaseArgs {
    /// PostgreSQL URL (as `serve --database-url`).
    #[arg(long, env = "CIVIS_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// PEM roots for the database server's certificate. [default: the system's roots]
    #[arg(long, env = "CIVIS_DATABASE_CA", value_name = "FILE")]
    database_ca: Option<PathBuf>,
}

impl DatabaseArgs {
    /// Opens the database when a URL was given.
    fn open(&self) -> Option<Result<crate::store::Store, String>> {
        let url = self.database_url.clone()?;
        let mut options = crate::store::postgres::PgOptions::new(url);
        options.ca_file.clone_from(&self.database_ca);
        options.pool_size = 4;
        Some(crate::store::Store::open_postgres(&options).map_err(|e| e.to_string()))
    }
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy a whole sled store into an empty PostgreSQL database (moving a deployment to
    /// several processes): every record byte for byte, the audit log included. Refuses a
    /// database that holds any civis record. Stop the service on the data dir first.
    Copy {
        /// sled data directory to copy from.
        #[arg(long, env = "CIVIS_DATA_DIR", value_name = "DIR")]
        data_dir: PathBuf,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit log offline: recompute every leaf and the Merkle tree, check every
    /// stored checkpoint's signature and root. Exit 0 printing the size and root verified,
    /// 1 naming the first entry that was changed, removed or reordered, 2 when the store
    /// cannot be read.
    Verify {
        /// The PostgreSQL database to check instead of a data dir; the service may be
        /// running on it (the check covers the log as of its latest checkpoint).
        #[command(flatten)]
        database: DatabaseArgs,
        /// sled data directory (the service must not be running on it).
        #[arg(
            long,
            env = "CIVIS_DATA_DIR",
            value_name = "DIR",
            default_value = "data"
        )]
        data_dir: PathBuf,
        /// Check the checkpoints against this keys dir's audit.key instead of trusting the
        /// verifier key recorded in the store.
        #[arg(long, value_name = "DIR")]
        keys_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Check a signing-evidence bundle (the answer of GET /sign/v1/requests/{id}/evidence)
    /// offline: exit 0 printing what was verified, 1 naming the failed check.
    Verify {
        /// The bundle (JSON).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a fresh, complete key set (CA, TLS certificate, token key, admin token).
    /// Refuses to overwrite existing files; private keys are written with mode 0600.
    Init {
        /// Directory to create the keys in.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Host names and IP addresses for the TLS certificate (repeatable).
        #[arg(long = "host", value_name = "HOST", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])]
        hosts: Vec<String>,
        /// Organisation named in the CA certificate.
        #[arg(long, default_value = "civis")]
        organisation: String,
        /// Mark the set as public development keys (civis will warn when it uses them).
        #[arg(long)]
        development: bool,
    },
    /// Add a new token-signing key. It is published at once (a running server picks it up
    /// within 30 s) and signs only after the activation lead; superseded keys stay published
    /// and are pruned a day after their successor took over.
    Rotate {
        /// Keys directory.
        #[arg(
            long,
            env = "CIVIS_KEYS_DIR",
            default_value = "keys-dev",
            value_name = "DIR"
        )]
        keys_dir: PathBuf,
        /// Seconds between creation and first signature (must match the server's
        /// `--token-key-activation-seconds`).
        #[arg(
            long,
            env = "CIVIS_TOKEN_KEY_ACTIVATION_SECONDS",
            default_value_t = 3600,
            value_name = "SECONDS"
        )]
        token_key_activation_seconds: u32,
    },
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = match Config::resolve(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let _log_guard = match crate::logging::init() {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("error: cannot start the log writer: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(crate::app::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys(KeysCommand::Init {
            dir,
            hosts,
            organisation,
            development,
        }) => {
            let opts = crate::crypto::keys::InitOptions {
                hosts,
                organisation,
                development,
            };
            match crate::crypto::keys::init(&dir, &opts) {
                Ok(()) => {
                    println!("created key set in {}", dir.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys(KeysCommand::Rotate {
            keys_dir,
            token_key_activation_seconds,
        }) => {
            let lead = time::Duration::seconds(i64::from(token_key_activation_seconds));
            match crate::crypto::token_keys::rotate(
                &keys_dir,
                lead,
                time::OffsetDateTime::now_utc(),
            ) {
                Ok(r) => {
                    println!(
                        "new token key {} in {}; published now, signs from {}",
                        r.kid,
                        r.path.display(),
                        r.activates_at
                    );
                    for p in r.pruned {
                        println!("pruned superseded key {}", p.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Evidence(EvidenceCommand::Verify { file }) => {
            let bytes = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            match crate::domain::signing::evidence::verify(&bytes) {
                Ok(lines) => {
                    for l in lines {
                        println!("ok: {l}");
                    }
                    println!("evidence verified");
                    ExitCode::SUCCESS
                }
                Err(failed) => {
                    eprintln!("FAILED: {failed}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Audit(AuditCommand::Verify {
            database,
            data_dir,
            keys_dir,
        }) => audit_verify(&database, &data_dir, keys_dir.as_deref()),
        Command::Store(StoreCommand::Copy { data_dir, database }) => {
            store_copy(&data_dir, &database)
        }
        Command::Openapi => {
            print!("{}", crate::http::openapi::json());
            ExitCode::SUCCESS
        }
    }
}

fn store_copy(data_dir: &std::path::Path, database: &DatabaseArgs) -> ExitCode {
    if !data_dir.is_dir() {
        eprintln!("error: no data dir at {}", data_dir.display());
        return ExitCode::from(2);
    }
    let Some(opened) = database.open() else {
        eprintln!("error: --database-url is required");
        return ExitCode::from(2);
    };
    let copied = opened.and_then(|to| {
        let from = crate::store::Store::open_sled(data_dir).map_err(|e| e.to_string())?;
        crate::store::copy::copy(&from, &to).map_err(|e| e.to_string())
    });
    match copied {
        Ok(counts) => {
            let total: u64 = counts.iter().map(|(_, n)| n).sum();
            for (tree, n) in counts.iter().filter(|(_, n)| *n > 0) {
                println!("{tree}: {n}");
            }
            println!("copied {total} records from {}", data_dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn audit_verify(
    database: &DatabaseArgs,
    data_dir: &std::path::Path,
    keys_dir: Option<&std::path::Path>,
) -> ExitCode {
    let pinned = match keys_dir
        .map(crate::crypto::keys::audit_verifier_key)
        .transpose()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let opened = database.open().unwrap_or_else(|| {
        if data_dir.is_dir() {
            crate::store::Store::open_sled(data_dir).map_err(|e| e.to_string())
        } else {
            Err(format!("no data dir at {}", data_dir.display()))
        }
    });
    let store = match opened {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match crate::domain::transparency::verify(&store, pinned.as_deref()) {
        Ok(Ok(v)) => {
            use base64::Engine as _;
            println!(
                "audit log intact: {} entries, {} checkpoints verified; size {} root {}",
                v.entries,
                v.checkpoints,
                v.size,
                base64::engine::general_purpose::STANDARD.encode(v.root)
            );
            ExitCode::SUCCESS
        }
        Ok(Err(damage)) => {
            eprintln!("FAILED: {damage}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
