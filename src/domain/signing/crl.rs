//! The CA's CRL: built from the stored revocations, cached, and rebuilt after every
//! revocation in this process and at least hourly (so `nextUpdate`, a day ahead, is never
//! close; another process's revocation is seen within the hour).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use time::{Duration, OffsetDateTime};

use super::Pki;
use crate::crypto::pki::RevokedCert;
use crate::domain::{DomainError, Result};

/// How long a CRL says it is good for (`nextUpdate − thisUpdate`).
pub const CRL_VALIDITY: Duration = Duration::days(1);
/// A cached CRL older than this is rebuilt.
pub const CRL_REBUILD_AFTER: Duration = Duration::hours(1);

/// The current CRL, shared by every request of this process.
#[derive(Debug, Default)]
pub struct CrlCache {
    /// Bumped by every revocation; a cached CRL built at an older generation is stale.
    generation: AtomicU64,
    current: std::sync::Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    der: Arc<Vec<u8>>,
    number: u64,
    built_at: OffsetDateTime,
    generation: u64,
}

impl CrlCache {
    /// Marks the cached CRL stale (after a revocation has committed).
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Pki<'_> {
    /// The current CRL (DER): every revoked certificate that has not yet expired, with its
    /// revocation time. Its CRL number is the Unix time of `thisUpdate` in seconds, or one
    /// more than the previous number when that is larger, so it increases from CRL to CRL
    /// and across restarts (as long as the clock does).
    ///
    /// # Errors
    /// Storage errors; [`DomainError::Internal`] when the CA cannot sign.
    pub fn crl(&self, now: OffsetDateTime) -> Result<Arc<Vec<u8>>> {
        let mut current = self
            .crl
            .current
            .lock()
            .map_err(|_| DomainError::Internal("CRL lock poisoned".into()))?;
        // Read before the scan: a revocation committing during the build bumps it again,
        // so the CRL built here is not kept past the next request.
        let generation = self.crl.generation.load(Ordering::SeqCst);
        if let Some(c) = current.as_ref() {
            let age = now - c.built_at;
            if c.generation == generation && age >= Duration::ZERO && age < CRL_REBUILD_AFTER {
                return Ok(c.der.clone());
            }
        }
        let revoked: Vec<RevokedCert> = self
            .store
            .revocations()
            .all()?
            .into_iter()
            .filter(|r| r.not_after >= now)
            .map(|r| RevokedCert {
                serial: r.serial,
                revoked_at: r.revoked_at,
                superseded: r.superseded,
            })
            .collect();
        let this_update = now.replace_nanosecond(0).unwrap_or(now);
        let seconds = u64::try_from(this_update.unix_timestamp()).unwrap_or(0);
        let number = current
            .as_ref()
            .map_or(seconds, |c| seconds.max(c.number + 1));
        let der = Arc::new(
            self.ca
                .crl(&revoked, number, this_update, this_update + CRL_VALIDITY)
                .map_err(|e| DomainError::Internal(e.to_string()))?,
        );
        *current = Some(Cached {
            der: der.clone(),
            number,
            built_at: now,
            generation,
        });
        Ok(der)
    }
}
