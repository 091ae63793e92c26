//! The rate bounds on key exchanges, by the rules of
//! [`ExchangeLimits`](crate::config::ExchangeLimits): governor's GCRA limiters, one for the
//! layer and one keyed by client.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::request::Parts;

use super::{ClientKey, ExchangeLimits, RateLimit};

/// How many checks between two sweeps of clients whose bucket is full again.
const SWEEP_EVERY: u64 = 1024;

/// The bounds a callback must pass before its exchange is sent.
pub(crate) struct ExchangeGate {
    global: Option<DefaultDirectRateLimiter>,
    per_client: Option<DefaultKeyedRateLimiter<String>>,
    client_key: ClientKey,
    checks: AtomicU64,
}

fn quota(limit: RateLimit) -> Quota {
    let count = NonZeroU32::new(limit.count()).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limit.burst()).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(limit.period() / count.get())
        .unwrap_or_else(|| Quota::per_second(count))
        .allow_burst(burst)
}

impl ExchangeGate {
    pub(crate) fn new(limits: &ExchangeLimits) -> Self {
        Self {
            global: limits.global.map(|limit| RateLimiter::direct(quota(limit))),
            per_client: limits
                .per_client
                .map(|limit| RateLimiter::hashmap(quota(limit))),
            client_key: limits.client_key.clone(),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes a permit for the request's client and one from the global bound; without one,
    /// how long until one is free.
    pub(crate) fn admit(&self, parts: &Parts) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        if let Some(per_client) = &self.per_client {
            if let Some(client) = self.client_key.of(parts) {
                per_client
                    .check_key(&client)
                    .map_err(|not_until| not_until.wait_time_from(now))?;
                if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
                    // Clients whose bucket is full again are as good as unknown: forget them,
                    // so the map holds only clients seen within one period.
                    per_client.retain_recent();
                }
            }
        }
        if let Some(global) = &self.global {
            global
                .check()
                .map_err(|not_until| not_until.wait_time_from(now))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(ip: &str) -> Parts {
        http::Request::builder()
            .header("x-client", ip)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn gate(limits: ExchangeLimits) -> ExchangeGate {
        ExchangeGate::new(&limits.with_client_key(ClientKey::last_header_value(
            http::HeaderName::from_static("x-client"),
        )))
    }

    #[test]
    fn each_client_gets_its_burst_then_waits() {
        let gate = gate(
            ExchangeLimits::unlimited().with_per_client(RateLimit::per_minute(6).with_burst(2)),
        );
        assert!(gate.admit(&from("a")).is_ok());
        assert!(gate.admit(&from("a")).is_ok());
        let wait = gate.admit(&from("a")).unwrap_err();
        assert!(
            wait > Duration::from_secs(8) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(
            gate.admit(&from("b")).is_ok(),
            "another client is not held up"
        );
    }

    #[test]
    fn the_global_bound_holds_whoever_asks() {
        let gate = gate(ExchangeLimits::unlimited().with_global(RateLimit::per_second(3)));
        for client in ["a", "b", "c"] {
            assert!(gate.admit(&from(client)).is_ok());
        }
        assert!(gate.admit(&from("d")).is_err());
    }
}
