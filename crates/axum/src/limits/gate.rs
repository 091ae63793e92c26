//! The bounds on failed key exchanges, by the rules of
//! [`ExchangeLimits`](crate::config::ExchangeLimits): a GCRA over failures, one for the layer
//! and one per client, asked before an exchange without spending anything.
//!
//! Written here rather than with `governor`, whose limiters spend a permit to answer: these
//! must be asked before the exchange ("may this client try?") and charged only after it, when
//! ModelGates refused the code.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{ExchangeLimits, RateLimit};

/// How many clients the per-client record holds at most; past it, a client with no record
/// counts as one with failures (the global bound applies to it), and the oldest records go at
/// the next sweep.
const MAX_CLIENTS: usize = 100_000;
/// How many failures between two sweeps of clients whose record has run out.
const SWEEP_EVERY: u64 = 1024;

/// A GCRA ("generic cell rate algorithm") over failures: each failure pushes a theoretical
/// arrival time (TAT) one interval further; a try is allowed while the TAT is at most
/// `tolerance` ahead of now, so `burst` failures in a row are allowed, then one per interval.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    interval: Duration,
    tolerance: Duration,
}

impl Gcra {
    fn new(limit: RateLimit) -> Self {
        let interval = limit.period() / limit.count().max(1);
        Self {
            interval,
            tolerance: interval * limit.burst().max(1).saturating_sub(1),
        }
    }

    /// How long until a try is allowed, if it is not now.
    fn wait(self, tat: Instant, now: Instant) -> Option<Duration> {
        let allowed_at = tat.checked_sub(self.tolerance).unwrap_or(now);
        (allowed_at > now).then(|| allowed_at - now)
    }

    /// The TAT after a failure at `now`.
    fn charge(self, tat: Option<Instant>, now: Instant) -> Instant {
        tat.map_or(now, |tat| tat.max(now)) + self.interval
    }
}

/// The per-client record: each client's TAT, while it is in the future.
struct Clients {
    tats: HashMap<String, Instant>,
    failures: u64,
}

/// The bounds a callback must pass before its exchange is sent.
pub(crate) struct ExchangeGate {
    global: Option<(Gcra, Mutex<Option<Instant>>)>,
    per_client: Option<(Gcra, Mutex<Clients>)>,
}

/// Why a callback may not try now: how long until it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotYet(pub(crate) Duration);

impl ExchangeGate {
    pub(crate) fn new(limits: &ExchangeLimits) -> Self {
        Self {
            global: limits
                .global
                .map(|limit| (Gcra::new(limit), Mutex::new(None))),
            per_client: limits.per_client.map(|limit| {
                (
                    Gcra::new(limit),
                    Mutex::new(Clients {
                        tats: HashMap::new(),
                        failures: 0,
                    }),
                )
            }),
        }
    }

    /// Whether `client` (`None`: it cannot be told) may try an exchange now. Nothing is spent:
    /// only a failure counts ([`Self::failed`]). A client over its own bound waits; a client
    /// with failures on record (or one that cannot be told) also waits while the layer's
    /// failures are over the global bound; a client without any is let through, so a flood of
    /// made-up codes from many addresses does not lock people out.
    pub(crate) fn admit(&self, client: Option<&str>) -> Result<(), NotYet> {
        let now = Instant::now();
        let mut suspect = client.is_none();
        if let (Some((gcra, clients)), Some(client)) = (&self.per_client, client) {
            let clients = clients.lock().unwrap_or_else(PoisonError::into_inner);
            match clients.tats.get(client) {
                Some(tat) => {
                    if let Some(wait) = gcra.wait(*tat, now) {
                        return Err(NotYet(wait));
                    }
                    suspect = *tat > now;
                }
                None => suspect = clients.tats.len() >= MAX_CLIENTS,
            }
        }
        if let (true, Some((gcra, tat))) = (suspect, &self.global) {
            let tat = tat.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(wait) = tat.and_then(|tat| gcra.wait(tat, now)) {
                return Err(NotYet(wait));
            }
        }
        Ok(())
    }

    /// Counts a failed exchange (a code ModelGates refused, a malformed one) against `client`
    /// and the layer.
    pub(crate) fn failed(&self, client: Option<&str>) {
        let now = Instant::now();
        if let Some((gcra, tat)) = &self.global {
            let mut tat = tat.lock().unwrap_or_else(PoisonError::into_inner);
            *tat = Some(gcra.charge(*tat, now));
        }
        let (Some((gcra, clients)), Some(client)) = (&self.per_client, client) else {
            return;
        };
        let mut clients = clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.failures += 1;
        if clients.failures % SWEEP_EVERY == 0 || clients.tats.len() >= MAX_CLIENTS {
            // A client whose TAT has passed is as good as unknown: forget it.
            clients.tats.retain(|_, tat| *tat > now);
        }
        if let Some(tat) = clients.tats.get_mut(client) {
            *tat = gcra.charge(Some(*tat), now);
        } else if clients.tats.len() < MAX_CLIENTS {
            clients
                .tats
                .insert(client.to_owned(), gcra.charge(None, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(limits: ExchangeLimits) -> ExchangeGate {
        ExchangeGate::new(&limits)
    }

    #[test]
    fn only_failures_count_and_each_client_gets_its_burst_of_them() {
        let gate = gate(
            ExchangeLimits::unlimited().with_per_client(RateLimit::per_minute(6).with_burst(2)),
        );
        for _ in 0..20 {
            assert!(gate.admit(Some("a")).is_ok(), "asking spends nothing");
        }
        gate.failed(Some("a"));
        assert!(gate.admit(Some("a")).is_ok());
        gate.failed(Some("a"));
        let NotYet(wait) = gate.admit(Some("a")).unwrap_err();
        assert!(
            wait > Duration::from_secs(8) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        assert!(
            gate.admit(Some("b")).is_ok(),
            "another client is not held up"
        );
    }

    #[test]
    fn the_global_bound_holds_clients_with_failures_and_lets_clean_ones_through() {
        let gate = gate(
            ExchangeLimits::unlimited()
                .with_global(RateLimit::per_second(3))
                .with_per_client(RateLimit::per_minute(10).with_burst(5)),
        );
        for client in ["a", "b", "c"] {
            gate.failed(Some(client));
        }
        assert!(
            gate.admit(Some("a")).is_err(),
            "a failed, and the layer is over"
        );
        assert!(gate.admit(None).is_err(), "an unknown client is held too");
        assert!(
            gate.admit(Some("newcomer")).is_ok(),
            "a clean client gets through"
        );
    }
}
