//! Reading key files and writing new ones: create-new, then the mode, then fsync; never
//! overwrite.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::KeyError;
use crate::crypto::Secret;

pub(super) fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    fs::read(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}

pub(super) fn invalid(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::Invalid {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

pub(crate) fn read_private_key(path: &Path) -> Result<Secret, KeyError> {
    let pem = secret_file(path)?;
    match PrivateKeyDer::from_pem_slice(pem.expose()) {
        Ok(PrivateKeyDer::Pkcs8(k)) => Ok(Secret::new(k.secret_pkcs8_der().to_vec())),
        Ok(_) => Err(invalid(path, "expected a PKCS#8 \"PRIVATE KEY\" PEM block")),
        Err(e) => Err(invalid(path, format!("no private key found ({e})"))),
    }
}

pub(super) fn secret_file(path: &Path) -> Result<Secret, KeyError> {
    Ok(Secret::new(read(path)?))
}

pub(super) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, KeyError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path, format!("bad PEM ({e})")))?;
    if certs.is_empty() {
        return Err(invalid(path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

/// Creates `path` exclusively with `mode` (so a racing writer cannot be overwritten).
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_owned(),
                }
            } else {
                io(e)
            }
        })?;
    // The umask may have narrowed the mode; set it exactly.
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}
