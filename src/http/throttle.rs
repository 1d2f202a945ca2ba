//! Per-client-IP throttling of failures and ceremony starts: a token bucket per address.
//! It slows guessing down without locking anyone out (tokens come back over time).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets of `capacity` tokens refilled at `per_second`.
#[derive(Debug)]
pub struct Throttle {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Keeps memory bounded under address-spraying: full buckets are forgotten past this size.
const MAX_TRACKED: usize = 100_000;

impl Throttle {
    /// A throttle allowing bursts of `capacity` and `per_minute` sustained.
    pub fn new(capacity: u32, per_minute: u32) -> Self {
        Self {
            capacity: f64::from(capacity.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `ip`; when none is left, returns how long until one is.
    ///
    /// # Errors
    /// The wait before the next attempt may succeed.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned lock means a panic elsewhere; fail open rather than lock everyone out.
            return Ok(());
        };
        if buckets.len() > MAX_TRACKED {
            let (cap, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < cap
            });
        }
        let (tokens, at) = buckets.entry(ip).or_insert((self.capacity, now));
        let refilled = (*tokens
            + now.saturating_duration_since(*at).as_secs_f64() * self.per_second)
            .min(self.capacity);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(Duration::from_secs_f64(
                ((1.0 - refilled) / self.per_second).ceil().max(1.0),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_throttles_then_recovers() {
        let t = Throttle::new(3, 60);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let now = Instant::now();
        for _ in 0..3 {
            assert!(t.take(ip, now).is_ok());
        }
        let wait = t.take(ip, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(t.take(other, now).is_ok(), "per address");
        assert!(
            t.take(ip, now + Duration::from_secs(1)).is_ok(),
            "tokens come back"
        );
    }
}
