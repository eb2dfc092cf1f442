//! Sign-in attempts, limited per person and per client network on the domain clock
//! (governor, as the OAuth endpoints): every password or code attempt takes a cell, so a
//! guesser gets [`PER_PERSON`] tries a minute at one account whatever address they use, and
//! [`PER_NETWORK`] a minute from one address whatever accounts they try.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::Clock as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use tessera_domain::Clock;
use tessera_http::oauth::GovernorClock;

/// Attempts per minute at one person's sign-in.
pub const PER_PERSON: u32 = 5;
/// Attempts per minute from one client network (an IPv4 address, an IPv6 /64).
pub const PER_NETWORK: u32 = 30;
/// Keys kept before old ones are dropped (a flood of names cannot grow memory unbounded).
const MAX_KEYS: usize = 50_000;

type Limiter<K> = RateLimiter<K, HashMapStateStore<K>, GovernorClock, NoOpMiddleware<Nanos>>;

pub struct SignInLimits {
    clock: GovernorClock,
    person: Limiter<String>,
    network: Limiter<IpAddr>,
}

/// Too many attempts: how long until the next one is admitted.
#[derive(Debug)]
pub struct TooMany {
    pub retry_after_secs: u64,
}

fn network_of(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(std::net::Ipv6Addr::from(o))
        }
        v4 => v4,
    }
}

impl SignInLimits {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        let clock = GovernorClock(clock);
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            person: RateLimiter::hashmap_with_clock(quota(PER_PERSON), clock.clone()),
            network: RateLimiter::hashmap_with_clock(quota(PER_NETWORK), clock.clone()),
            clock,
        }
    }

    /// Takes one attempt for `person` (a lower-case username) from `peer`.
    pub fn attempt(&self, person: &str, peer: IpAddr) -> Result<(), TooMany> {
        if self.person.len() > MAX_KEYS {
            self.person.retain_recent();
        }
        if self.network.len() > MAX_KEYS {
            self.network.retain_recent();
        }
        let now = self.clock.now();
        let wait = |n: governor::NotUntil<Nanos>| {
            let w = n.wait_time_from(now);
            TooMany {
                retry_after_secs: w.as_secs() + u64::from(w.subsec_nanos() > 0),
            }
        };
        self.network.check_key(&network_of(peer)).map_err(wait)?;
        self.person.check_key(&person.to_lowercase()).map_err(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_domain::ManualClock;

    fn t0() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn a_person_gets_five_attempts_a_minute() {
        let clock = Arc::new(ManualClock::new(t0()));
        let limits = SignInLimits::new(clock.clone());
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..PER_PERSON {
            assert!(limits.attempt("a@example.com", peer).is_ok());
        }
        assert!(limits.attempt("A@example.com", peer).is_err());
        // Another person from the same address is not held back by the first one's tries.
        assert!(limits.attempt("b@example.com", peer).is_ok());
        clock.advance(chrono::Duration::seconds(60));
        assert!(limits.attempt("a@example.com", peer).is_ok());
    }

    #[test]
    fn an_address_gets_thirty_attempts_a_minute() {
        let clock = Arc::new(ManualClock::new(t0()));
        let limits = SignInLimits::new(clock);
        let peer: IpAddr = "2001:db8::1".parse().unwrap();
        let same_net: IpAddr = "2001:db8::2".parse().unwrap();
        for i in 0..PER_NETWORK {
            assert!(limits.attempt(&format!("u{i}@example.com"), peer).is_ok());
        }
        assert!(limits.attempt("new@example.com", same_net).is_err());
    }
}
