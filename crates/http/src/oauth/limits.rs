//! Per (client network, clientId) rate limits of the OAuth endpoints, on the domain clock.

use super::*;

/// Adapts the domain clock to governor, so rate-limit windows move with the same clock as
/// everything else (tests move it; nothing sleeps).
#[derive(Clone)]
pub struct GovernorClock(pub Arc<dyn Clock>);

impl GovClockTrait for GovernorClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let ns = self.0.now().timestamp_nanos_opt().unwrap_or(0);
        Nanos::from(u64::try_from(ns).unwrap_or(0))
    }
}

/// (client network, client id). Unparsable ids share one bucket per network, so junk ids
/// cannot grow the limiter; IPv6 clients are keyed by their /64, which one host controls.
pub(super) type Key = (IpAddr, Option<ClientId>);

pub(super) fn limit_key(peer: IpAddr, client_id: &str) -> Key {
    let net = match peer {
        IpAddr::V6(v6) => {
            let mut o = v6.octets();
            o[8..].fill(0);
            IpAddr::V6(std::net::Ipv6Addr::from(o))
        }
        v4 => v4,
    };
    (net, ClientId::parse(client_id).ok())
}
pub(super) type Limiter =
    RateLimiter<Key, HashMapStateStore<Key>, GovernorClock, NoOpMiddleware<Nanos>>;

/// Per (client address, clientId) limits on the token and revocation endpoints.
pub struct OAuthLimits {
    per_minute: u32,
    clock: GovernorClock,
    pub(super) token: Option<Limiter>,
    pub(super) revoke: Option<Limiter>,
    pub(super) introspect: Option<Limiter>,
}

impl OAuthLimits {
    /// `per_minute == 0` turns the limit off.
    pub fn new(per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        let clock = GovernorClock(clock);
        let make = || {
            NonZeroU32::new(per_minute)
                .map(|n| RateLimiter::hashmap_with_clock(Quota::per_minute(n), clock.clone()))
        };
        Self {
            per_minute,
            token: make(),
            revoke: make(),
            introspect: make(),
            clock,
        }
    }

    pub(super) fn check(
        &self,
        limiter: &Option<Limiter>,
        path: &'static str,
        key: Key,
    ) -> Result<(), OAuthError> {
        let Some(l) = limiter else { return Ok(()) };
        l.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            OAuthError::RateLimited {
                path,
                limit: self.per_minute,
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }

    /// Forgets idle keys so the limiter's memory stays bounded.
    pub fn prune(&self) {
        for l in [&self.token, &self.revoke, &self.introspect]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
        }
    }
}
