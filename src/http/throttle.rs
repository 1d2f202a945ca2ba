//! Per-client-network throttling of failures and of requests that park records: a token
//! bucket per purpose and address. It slows guessing and flooding down without locking
//! anyone out (tokens come back over time), and one purpose never spends another's tokens:
//! failed admin logins or client authentications do not stop passkey logins from the same
//! office.
//!
//! Failure buckets are charged by refusals only (a wrong assertion, an unknown passkey, a
//! bad enrolment code, a wrong admin token or client secret), so citizens who succeed never
//! use them up; while one is empty, the attempts it guards are refused before they run.
//! A successful ceremony start still parks a record (5 minutes, not flushed), so starts are
//! bounded too — by their own per-network buckets, [`TRAFFIC_FACTOR`] times the failure
//! burst and rate like authorization requests: at the defaults 120 in a burst and 120 a
//! minute, so one network holds at most about 720 pending ceremonies, while a citizen who
//! signs in even once a second never meets the limit. A global cap was rejected: one
//! flooding network could then lock every citizen out.
//!
//! Addresses are grouped as the networks they are handed out in: an IPv4 address is its own
//! bucket, an IPv6 address shares one with its whole /64 (one subscriber's prefix), so that
//! rotating through a prefix's 2^64 addresses buys nothing.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a token is taken for; each has its own buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Refused passkey logins.
    Login,
    /// Started passkey logins (each parks a ceremony record).
    LoginStart,
    /// Refused enrolment links, codes and enrolments.
    Enrolment,
    /// Started enrolments (each parks a ceremony record).
    EnrolmentStart,
    /// A wrong admin token.
    AdminFailure,
    /// A failed OAuth client authentication.
    ClientAuthFailure,
    /// An authorization request (each one parks a record until it expires).
    Authorize,
}

const PURPOSES: [Purpose; 7] = [
    Purpose::Login,
    Purpose::LoginStart,
    Purpose::Enrolment,
    Purpose::EnrolmentStart,
    Purpose::AdminFailure,
    Purpose::ClientAuthFailure,
    Purpose::Authorize,
];

/// Authorization requests and ceremony starts are legitimate traffic (every citizen's
/// sign-in makes one of each, and many citizens may share an office's address), so their
/// buckets are this many times larger and faster than the failure buckets.
pub const TRAFFIC_FACTOR: u32 = 4;

impl Purpose {
    /// How many times the configured burst and rate this purpose's buckets get.
    fn factor(self) -> u32 {
        match self {
            Self::Authorize | Self::LoginStart | Self::EnrolmentStart => TRAFFIC_FACTOR,
            Self::Login | Self::Enrolment | Self::AdminFailure | Self::ClientAuthFailure => 1,
        }
    }
}

/// Keeps memory bounded under address-spraying: full buckets are forgotten past this size.
const MAX_TRACKED: usize = 100_000;

/// One purpose's buckets of `capacity` tokens refilled at `per_second`, one per key (a
/// client network, or an agency client's id).
#[derive(Debug)]
struct Buckets<K> {
    capacity: f64,
    per_second: f64,
    by_key: Mutex<HashMap<K, (f64, Instant)>>,
}

/// The buckets of every purpose, and each agency client's request quota.
#[derive(Debug)]
pub struct Throttle {
    buckets: Vec<(Purpose, Buckets<IpAddr>)>,
    /// Requests of each authenticated client (`--client-rate-per-second`; `None`: off).
    /// Taken only after the client authenticated, so no one else can spend a client's
    /// quota and lock it out.
    clients: Option<Buckets<String>>,
}

/// The network an address is throttled as: itself for IPv4 (also when written as an
/// IPv4-mapped IPv6 address), its /64 for IPv6.
pub fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl<K: std::hash::Hash + Eq + Clone> Buckets<K> {
    fn new(capacity: u32, per_minute: u32) -> Self {
        Self {
            capacity: f64::from(capacity.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            by_key: Mutex::new(HashMap::new()),
        }
    }

    fn wait_for(&self, refilled: f64) -> Duration {
        Duration::from_secs_f64(((1.0 - refilled) / self.per_second).ceil().max(1.0))
    }

    /// Like [`Buckets::take`] without taking: never records anything (so probing costs no
    /// memory either).
    fn check(&self, net: &K, now: Instant) -> Result<(), Duration> {
        let Ok(buckets) = self.by_key.lock() else {
            return Ok(());
        };
        match buckets.get(net) {
            None => Ok(()),
            Some((tokens, at)) => {
                let refilled = (*tokens
                    + now.saturating_duration_since(*at).as_secs_f64() * self.per_second)
                    .min(self.capacity);
                if refilled >= 1.0 {
                    Ok(())
                } else {
                    Err(self.wait_for(refilled))
                }
            }
        }
    }

    fn take(&self, net: &K, now: Instant) -> Result<(), Duration> {
        let Ok(mut buckets) = self.by_key.lock() else {
            // A poisoned lock means a panic elsewhere; fail open rather than lock everyone out.
            return Ok(());
        };
        if buckets.len() > MAX_TRACKED {
            let (cap, rate) = (self.capacity, self.per_second);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < cap
            });
        }
        let (tokens, at) = buckets.entry(net.clone()).or_insert((self.capacity, now));
        let refilled = (*tokens
            + now.saturating_duration_since(*at).as_secs_f64() * self.per_second)
            .min(self.capacity);
        *at = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            Ok(())
        } else {
            *tokens = refilled;
            Err(self.wait_for(refilled))
        }
    }
}

impl Throttle {
    /// Failure buckets allowing bursts of `capacity` and `per_minute` sustained;
    /// authorization requests and ceremony starts get [`TRAFFIC_FACTOR`] times both.
    pub fn new(capacity: u32, per_minute: u32) -> Self {
        let buckets = PURPOSES
            .iter()
            .map(|&p| {
                let factor = p.factor();
                (
                    p,
                    Buckets::new(
                        capacity.saturating_mul(factor),
                        per_minute.saturating_mul(factor),
                    ),
                )
            })
            .collect();
        Self {
            buckets,
            clients: None,
        }
    }

    /// Adds a quota of `per_second` requests (and as many in a burst) for each
    /// authenticated client; 0 leaves clients without one.
    #[must_use]
    pub fn with_client_rate(mut self, per_second: u32) -> Self {
        self.clients =
            (per_second > 0).then(|| Buckets::new(per_second, per_second.saturating_mul(60)));
        self
    }

    /// Takes one request of `client_id`'s quota; when it is spent, returns how long until
    /// the next request may go.
    ///
    /// # Errors
    /// The wait.
    pub fn take_client(&self, client_id: &str, now: Instant) -> Result<(), Duration> {
        match &self.clients {
            Some(b) => b.take(&client_id.to_owned(), now),
            None => Ok(()),
        }
    }

    /// Takes one `purpose` token for `ip`'s network; when none is left, returns how long
    /// until one is.
    ///
    /// # Errors
    /// The wait before the next attempt may succeed.
    pub fn take(&self, purpose: Purpose, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.buckets.iter().find(|(p, _)| *p == purpose) {
            Some((_, b)) => b.take(&network(ip), now),
            None => Ok(()),
        }
    }

    /// Whether `ip`'s network has a `purpose` token left, without taking it: for attempts
    /// that are charged only if they fail.
    ///
    /// # Errors
    /// The wait before a token is back.
    pub fn check(&self, purpose: Purpose, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.buckets.iter().find(|(p, _)| *p == purpose) {
            Some((_, b)) => b.check(&network(ip), now),
            None => Ok(()),
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
            assert!(t.take(Purpose::Login, ip, now).is_ok());
        }
        let wait = t.take(Purpose::Login, ip, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(t.take(Purpose::Login, other, now).is_ok(), "per address");
        assert!(
            t.take(Purpose::Login, ip, now + Duration::from_secs(1))
                .is_ok(),
            "tokens come back"
        );
    }

    #[test]
    fn purposes_do_not_share_tokens() {
        let t = Throttle::new(2, 60);
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let now = Instant::now();
        for _ in 0..2 {
            assert!(t.take(Purpose::AdminFailure, ip, now).is_ok());
        }
        assert!(t.take(Purpose::AdminFailure, ip, now).is_err());
        assert!(t.take(Purpose::Login, ip, now).is_ok());
        assert!(t.take(Purpose::ClientAuthFailure, ip, now).is_ok());
        for p in [
            Purpose::Authorize,
            Purpose::LoginStart,
            Purpose::EnrolmentStart,
        ] {
            for _ in 0..(2 * TRAFFIC_FACTOR) {
                assert!(t.take(p, ip, now).is_ok(), "{p:?}");
            }
            assert!(t.take(p, ip, now).is_err(), "{p:?}");
        }
        assert!(
            t.check(Purpose::Login, ip, now).is_ok(),
            "one Login token left"
        );
    }

    #[test]
    fn checking_takes_nothing() {
        let t = Throttle::new(1, 60);
        let ip: IpAddr = "192.0.2.3".parse().unwrap();
        let now = Instant::now();
        for _ in 0..5 {
            assert!(t.check(Purpose::Login, ip, now).is_ok());
        }
        assert!(t.take(Purpose::Login, ip, now).is_ok());
        assert_eq!(
            t.check(Purpose::Login, ip, now),
            Err(Duration::from_secs(1))
        );
        assert!(
            t.check(Purpose::Login, ip, now + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn an_ipv6_slash_64_is_one_bucket() {
        let t = Throttle::new(2, 60);
        let now = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(t.take(Purpose::Login, a, now).is_ok());
        assert!(t.take(Purpose::Login, b, now).is_ok());
        assert!(t.take(Purpose::Login, a, now).is_err(), "same /64");
        assert!(t.take(Purpose::Login, elsewhere, now).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(network(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn each_client_has_its_own_quota_and_zero_means_none() {
        let t = Throttle::new(1, 1).with_client_rate(2);
        let now = Instant::now();
        assert!(t.take_client("a", now).is_ok());
        assert!(t.take_client("a", now).is_ok());
        assert_eq!(t.take_client("a", now), Err(Duration::from_secs(1)));
        assert!(t.take_client("b", now).is_ok(), "per client");
        let later = now + Duration::from_millis(500);
        assert!(t.take_client("a", later).is_ok(), "two a second come back");
        let off = Throttle::new(1, 1).with_client_rate(0);
        for _ in 0..100 {
            assert!(off.take_client("a", now).is_ok());
        }
    }
}
