//! Rules of the service, free of HTTP and of storage formats.
//!
//! Every function that depends on the time takes `now` as an argument (callers read it from
//! a [`Clock`]), and every function that needs randomness takes a [`Rng`], so tests control
//! both.

pub mod attestation;
pub mod audit;
pub mod citizens;
pub mod clients;
mod error;
pub mod integrator;
pub mod oidc;
pub mod passkeys;
pub mod signing;
pub mod transparency;
pub mod validate;

pub use error::{DomainError, FieldError, Refusal};

/// Result type of the domain layer.
pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// Source of the current time, injected so that the domain never reads a clock itself and
/// tests can move time instead of editing stored records.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> time::OffsetDateTime;
}

/// The system's clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }
}

/// The system's clock moved forward by a settable offset: what the integration tests use
/// (through a route that exists only in debug builds started with `CIVIS_TEST_CLOCK=1`) to
/// let codes, ceremonies and sessions expire without waiting.
#[derive(Debug, Default)]
pub struct OffsetClock {
    seconds: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    /// Moves this clock forward by `by` (backwards for a negative duration).
    pub fn advance(&self, by: time::Duration) {
        self.seconds
            .fetch_add(by.whole_seconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> time::OffsetDateTime {
        let offset = self.seconds.load(std::sync::atomic::Ordering::SeqCst);
        time::OffsetDateTime::now_utc() + time::Duration::seconds(offset)
    }
}

/// Source of cryptographic randomness, injected so tests can be deterministic.
pub trait Rng: Send + Sync {
    /// Fills `buf` with random bytes.
    ///
    /// # Errors
    /// [`DomainError::Internal`] if the operating system's generator fails.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
}

/// The operating system's generator, through ring.
#[derive(Debug)]
pub struct SystemRng(ring::rand::SystemRandom);

impl SystemRng {
    /// The system generator.
    pub fn new() -> Self {
        Self(ring::rand::SystemRandom::new())
    }
}

impl Default for SystemRng {
    fn default() -> Self {
        Self::new()
    }
}

impl Rng for SystemRng {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        use ring::rand::SecureRandom;
        self.0
            .fill(buf)
            .map_err(|_| DomainError::Internal("system random generator failed".into()))
    }
}

/// `N` random bytes.
///
/// # Errors
/// As [`Rng::fill`].
pub fn random_bytes<const N: usize>(rng: &dyn Rng) -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    rng.fill(&mut buf)?;
    Ok(buf)
}

/// `t` in RFC 3339, in UTC (`…Z`), as entries, evidence and answers show times.
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| utc.to_string())
}

/// A random identifier in UUID v4 form (122 random bits).
///
/// # Errors
/// As [`Rng::fill`].
pub fn new_id(rng: &dyn Rng) -> Result<String> {
    let bytes = random_bytes::<16>(rng)?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}
