//! Loading a key set from a directory, and the checks made on it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::files::{invalid, read, read_certs, read_private_key, secret_file};
use super::{
    AUDIT_KEY, CA_CERT, CA_KEY, CaKeys, DEV_MARKER, HMAC_KEY, KEK_KEY, KeyError, KeySet,
    KeyedHashes, TLS_CERT, TLS_KEY, TOKEN_KEY, TlsKeys, TokenKeyring,
};
use crate::crypto::Secret;
use crate::crypto::kek::Kek;
use crate::crypto::token_keys::{DEFAULT_LEAD, TokenKeys};

impl KeySet {
    /// Loads a key set from `dir`; the admin token comes from `admin_token_file`.
    ///
    /// # Errors
    /// [`KeyError`] naming the first missing or malformed file.
    pub fn load(dir: &Path, admin_token_file: &Path) -> Result<Self, KeyError> {
        let ca_path = dir.join(CA_CERT);
        let ca_cert_pem =
            String::from_utf8(read(&ca_path)?).map_err(|_| invalid(&ca_path, "not UTF-8 PEM"))?;
        read_certs(&ca_path)?;
        let ca_key = read_private_key(&dir.join(CA_KEY))?;
        let tls_chain = read_certs(&dir.join(TLS_CERT))?;
        let tls_key = read_private_key(&dir.join(TLS_KEY))?;
        let token_keys = TokenKeys::load(dir, DEFAULT_LEAD)?;
        let raw_token = secret_file(admin_token_file)?;
        let trimmed = std::str::from_utf8(raw_token.expose())
            .map_err(|_| invalid(admin_token_file, "admin token must be UTF-8 text"))?
            .trim();
        if trimmed.len() < 32 {
            return Err(invalid(
                admin_token_file,
                "admin token must be at least 32 characters",
            ));
        }
        let admin_token = Secret::new(trimmed.as_bytes().to_vec());
        let hmac_path = dir.join(HMAC_KEY);
        let hmac_key = random_key_file(&hmac_path)?;
        if hmac_key.expose().len() < 32 {
            return Err(invalid(&hmac_path, "expected at least 32 bytes"));
        }
        let kek_path = dir.join(KEK_KEY);
        // Optional: a key set made before signing existed still starts (signing keys then
        // answer 503 naming the file).
        let kek =
            if kek_path.exists() {
                let raw = random_key_file(&kek_path)?;
                Some(Kek::from_bytes(raw.expose()).map_err(|_| {
                    invalid(&kek_path, "expected base64url of exactly 32 random bytes")
                })?)
            } else {
                None
            };
        // Optional too: a key set made before the audit log existed still starts (entries
        // are written; checkpoints wait for the key).
        let audit_path = dir.join(AUDIT_KEY);
        let audit = if audit_path.exists() {
            Some(read_private_key(&audit_path)?)
        } else {
            None
        };
        Ok(Self {
            dir: dir.to_owned(),
            development: dir.join(DEV_MARKER).exists(),
            ca: CaKeys {
                cert_pem: ca_cert_pem,
                key: ca_key,
            },
            tls: TlsKeys {
                chain: tls_chain,
                key: tls_key,
                key_path: dir.join(TLS_KEY),
            },
            token_keys: TokenKeyring {
                dir: dir.to_owned(),
                current: RwLock::new(Arc::new(token_keys)),
                lead: DEFAULT_LEAD,
            },
            admin_token,
            hashes: KeyedHashes::new(hmac_key),
            kek,
            audit,
        })
    }

    /// Sets the activation lead of rotated keys and reloads them.
    ///
    /// # Errors
    /// As [`TokenKeyring::reload`].
    pub fn with_token_key_lead(mut self, lead: time::Duration) -> Result<Self, KeyError> {
        self.token_keys.lead = lead;
        self.token_keys.reload()?;
        Ok(self)
    }

    /// Private key files readable by group or others (ignored for development keys).
    pub fn loose_permissions(&self, admin_token_file: &Path) -> Vec<PathBuf> {
        if self.development {
            return Vec::new();
        }
        [
            self.dir.join(CA_KEY),
            self.dir.join(TLS_KEY),
            self.dir.join(TOKEN_KEY),
            self.dir.join(HMAC_KEY),
            self.dir.join(KEK_KEY),
            self.dir.join(AUDIT_KEY),
            admin_token_file.to_owned(),
        ]
        .into_iter()
        .filter(|p| {
            fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o077 != 0)
                .unwrap_or(false)
        })
        .collect()
    }
}

/// A secret key file: one line of base64url (what `keys init` writes for `hmac.key` and
/// `kek.key`).
fn random_key_file(path: &Path) -> Result<Secret, KeyError> {
    use base64::Engine;
    let raw = secret_file(path)?;
    let text = std::str::from_utf8(raw.expose()).unwrap_or_default().trim();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| invalid(path, "expected base64url of 32 random bytes"))?;
    Ok(Secret::new(bytes))
}
