//! The set of token-signing keys and their rotation: `token.key` plus the keys `civis keys
//! rotate` adds under `token-keys/`. Every key is published at `jwks_uri`; a rotated key
//! signs only once its activation time (creation + lead) has passed, so relying parties see
//! it before any token carries it, and superseded keys stay published for verification.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::keys::{KeyError, TOKEN_KEY, read_private_key, write_new};
use super::signer::{EcdsaFileKey, Signer};

/// Directory (inside the keys dir) of rotated token keys, named `<unix seconds>.key`.
pub const ROTATED_DIR: &str = "token-keys";
/// Default time between a key's creation and its first signature.
pub const DEFAULT_LEAD: Duration = Duration::hours(1);
/// A superseded key stays published at least this long (far beyond any token lifetime).
pub const RETENTION: Duration = Duration::days(1);

/// One key and when it starts signing.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key.
    pub key: Arc<dyn Signer>,
    /// From when it may sign.
    pub activates_at: OffsetDateTime,
    /// Its file.
    pub path: PathBuf,
}

/// All token keys: `token.key`, which always exists (so there is always a key that signs),
/// and the rotated ones, sorted by activation.
#[derive(Debug, Clone)]
pub struct TokenKeys {
    base: Entry,
    rotated: Vec<Entry>,
}

fn created_at(path: &Path) -> Option<OffsetDateTime> {
    let stem = path.file_stem()?.to_str()?;
    OffsetDateTime::from_unix_timestamp(stem.parse().ok()?).ok()
}

impl TokenKeys {
    /// Loads `token.key` (active since forever) and every `token-keys/<ts>.key` (active from
    /// `ts + lead`).
    ///
    /// # Errors
    /// [`KeyError`] naming a missing or malformed key file.
    pub fn load(dir: &Path, lead: Duration) -> Result<Self, KeyError> {
        let base = dir.join(TOKEN_KEY);
        let base = Entry {
            key: Arc::new(parse(&base)?),
            activates_at: OffsetDateTime::UNIX_EPOCH,
            path: base,
        };
        let mut rotated_entries = Vec::new();
        let rotated = dir.join(ROTATED_DIR);
        if rotated.is_dir() {
            let listing = fs::read_dir(&rotated).map_err(|source| KeyError::Io {
                path: rotated.clone(),
                source,
            })?;
            for item in listing {
                let path = item
                    .map_err(|source| KeyError::Io {
                        path: rotated.clone(),
                        source,
                    })?
                    .path();
                if path.extension().and_then(|e| e.to_str()) != Some("key") {
                    continue;
                }
                let created = created_at(&path).ok_or_else(|| KeyError::Invalid {
                    path: path.clone(),
                    reason: "rotated key files are named <unix seconds>.key".into(),
                })?;
                rotated_entries.push(Entry {
                    key: Arc::new(parse(&path)?),
                    activates_at: created + lead,
                    path,
                });
            }
        }
        rotated_entries.sort_by_key(|e| e.activates_at);
        Ok(Self {
            base,
            rotated: rotated_entries,
        })
    }

    /// The key that signs at `now`: the most recently activated one (`token.key` until a
    /// rotated key activates).
    pub fn signing(&self, now: OffsetDateTime) -> &dyn Signer {
        self.rotated
            .iter()
            .rev()
            .find(|e| e.activates_at <= now)
            .unwrap_or(&self.base)
            .key
            .as_ref()
    }

    /// A published key by `kid`.
    pub fn by_kid(&self, kid: &str) -> Option<&dyn Signer> {
        self.entries()
            .find(|e| e.key.key_id() == kid)
            .map(|e| e.key.as_ref())
    }

    /// The public key with `kid` as the candidate list [`super::jwt::verify`] takes: empty
    /// when the kid is missing or unknown.
    pub fn candidates(&self, kid: Option<&str>) -> Vec<super::PublicKey> {
        kid.and_then(|k| self.by_kid(k))
            .map(|s| s.public_key().clone())
            .into_iter()
            .collect()
    }

    /// All keys, for `jwks_uri`.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.entries().map(|e| e.key.public_jwk()).collect::<Vec<_>>() })
    }

    /// The entries, oldest activation first (`token.key` first).
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        std::iter::once(&self.base).chain(&self.rotated)
    }

    /// The kids, for change detection.
    pub fn kids(&self) -> Vec<String> {
        self.entries().map(|e| e.key.key_id().to_owned()).collect()
    }
}

fn parse(path: &Path) -> Result<EcdsaFileKey, KeyError> {
    EcdsaFileKey::from_pkcs8(read_private_key(path)?.expose()).map_err(|reason| KeyError::Invalid {
        path: path.to_owned(),
        reason,
    })
}

/// What `civis keys rotate` did.
#[derive(Debug)]
pub struct Rotation {
    /// The new key's file.
    pub path: PathBuf,
    /// Its kid.
    pub kid: String,
    /// When it starts signing.
    pub activates_at: OffsetDateTime,
    /// Superseded keys removed because their successor has signed for longer than
    /// [`RETENTION`].
    pub pruned: Vec<PathBuf>,
}

/// Adds a new token key under `token-keys/` (mode 0600) and prunes long-superseded rotated
/// keys (`token.key` itself is never deleted).
///
/// # Errors
/// I/O and generation errors.
pub fn rotate(dir: &Path, lead: Duration, now: OffsetDateTime) -> Result<Rotation, KeyError> {
    let rotated = dir.join(ROTATED_DIR);
    fs::create_dir_all(&rotated).map_err(|source| KeyError::Io {
        path: rotated.clone(),
        source,
    })?;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    let path = rotated.join(format!("{}.key", now.unix_timestamp()));
    write_new(
        &path,
        zeroize::Zeroizing::new(pair.serialize_pem()).as_bytes(),
        0o600,
    )?;
    let keys = TokenKeys::load(dir, lead)?;
    let entries: Vec<&Entry> = keys.entries().collect();
    let mut pruned = Vec::new();
    for pair in entries.windows(2) {
        let (old, next) = (&pair[0], &pair[1]);
        if old.path.parent() == Some(rotated.as_path()) && next.activates_at + RETENTION < now {
            fs::remove_file(&old.path).map_err(|source| KeyError::Io {
                path: old.path.clone(),
                source,
            })?;
            pruned.push(old.path.clone());
        }
    }
    let kid = parse(&path)?.key_id().to_owned();
    Ok(Rotation {
        path,
        kid,
        activates_at: now + lead,
        pruned,
    })
}
