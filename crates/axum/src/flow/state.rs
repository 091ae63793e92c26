//! The flow's state between `/login` and `/callback`: in the browser, the sealed flow cookie;
//! in this process, the flows already spent.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use modelgates_oauth_core::flow::{FlowError, FlowSealer, FlowState};

use crate::cookies::CookieSpec;

/// The flow cookie: its spec, and the sealer of the flows it carries (oauth-core's
/// [`FlowSealer`], keyed with each cookie key's encryption half and the cookie's name as
/// associated data, the format of the `cookie` crate's private cookies).
pub(crate) struct FlowCookie {
    pub(crate) spec: CookieSpec,
    sealer: FlowSealer,
}

impl FlowCookie {
    /// A flow cookie sealed with the first of `keys` and opened with any of them.
    pub(crate) fn new(spec: CookieSpec, keys: &[cookie::Key]) -> Self {
        let mut sealers = keys.iter().map(|key| {
            FlowSealer::new(
                key.encryption()
                    .try_into()
                    .expect("a cookie key's encryption half is 32 bytes"),
            )
        });
        let newest = sealers.next().expect("at least the current secret");
        Self {
            spec,
            sealer: newest.with_previous(sealers),
        }
    }

    /// `Set-Cookie` for a new flow.
    pub(crate) fn set(&self, flow: &FlowState, max_age: Duration) -> HeaderValue {
        let sealed = self.sealer.seal(flow, self.spec.name.as_bytes());
        self.spec.set(sealed, max_age)
    }

    /// The request's flow: `Ok(None)` without a flow cookie, [`FlowError::Invalid`] when none
    /// of the (at most three) flow cookies opens.
    pub(crate) fn open(&self, headers: &HeaderMap) -> Result<Option<FlowState>, FlowError> {
        let mut values = self.spec.values(headers).peekable();
        if values.peek().is_none() {
            return Ok(None);
        }
        values
            .find_map(|value| self.sealer.open(value, self.spec.name.as_bytes()).ok())
            .map(Some)
            .ok_or(FlowError::Invalid)
    }

    /// `Set-Cookie` that deletes the flow cookie.
    pub(crate) fn clear(&self) -> HeaderValue {
        self.spec.removal()
    }
}

/// What this process's record of spent flows answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalSpend {
    First,
    Replayed,
    /// The record is full of flows that have not expired: refuse (503) rather than forget one
    /// and let it be replayed. The oldest expires in this long.
    Full {
        retry_after: Duration,
    },
}

/// Flow ids a callback has already been sent with, kept as long as a flow lives (per
/// process: for stores that are not shared).
///
/// A plain expiring set: every id lives the same time, so ids expire in the order they were
/// spent, and the oldest is dropped only once expired. Nothing is evicted early, whatever an
/// attacker does (an admission policy such as TinyLFU would let ids touched often push fresh
/// ones out); when full, callbacks are refused until the oldest expires.
pub(crate) struct SpentFlows {
    lives: Duration,
    capacity: usize,
    spent: std::sync::Mutex<Spent>,
}

#[derive(Default)]
struct Spent {
    ids: std::collections::HashSet<String>,
    /// When each id may be forgotten, oldest first.
    order: std::collections::VecDeque<(std::time::Instant, String)>,
}

impl SpentFlows {
    pub(crate) fn new(flow_max_age: Duration, capacity: usize) -> Self {
        Self {
            // The flow cookie's own check refuses a flow older than its lifetime; a minute
            // more covers clock steps between the check and this record.
            lives: flow_max_age + Duration::from_secs(60),
            capacity: capacity.max(1),
            spent: std::sync::Mutex::default(),
        }
    }

    /// How long a spent id must be remembered.
    pub(crate) fn lives(&self) -> Duration {
        self.lives
    }

    /// Records `id` as spent, unless it was or the record is full.
    pub(crate) fn spend(&self, id: &str) -> LocalSpend {
        let now = std::time::Instant::now();
        let mut spent = self
            .spent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some((expiry, _)) = spent.order.front() {
            if *expiry > now {
                break;
            }
            let (_, old) = spent.order.pop_front().expect("a front entry");
            spent.ids.remove(&old);
        }
        if spent.ids.contains(id) {
            return LocalSpend::Replayed;
        }
        if spent.ids.len() >= self.capacity {
            let oldest = spent.order.front().map_or(now, |(expiry, _)| *expiry);
            return LocalSpend::Full {
                retry_after: oldest.saturating_duration_since(now),
            };
        }
        spent.ids.insert(id.to_owned());
        spent.order.push_back((now + self.lives, id.to_owned()));
        LocalSpend::First
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_record_refuses_instead_of_forgetting() {
        let spent = SpentFlows::new(Duration::from_secs(600), 3);
        for id in ["a", "b", "c"] {
            assert_eq!(spent.spend(id), LocalSpend::First);
        }
        // Touching the old ids as often as an attacker likes changes nothing.
        for _ in 0..10 {
            assert_eq!(spent.spend("a"), LocalSpend::Replayed);
        }
        let LocalSpend::Full { retry_after } = spent.spend("d") else {
            panic!("a full record must refuse");
        };
        assert!(retry_after > Duration::from_secs(600), "{retry_after:?}");
        for id in ["a", "b", "c"] {
            assert_eq!(spent.spend(id), LocalSpend::Replayed, "{id} is still spent");
        }
    }

    #[test]
    fn expired_ids_make_room() {
        let spent = SpentFlows {
            lives: Duration::ZERO,
            capacity: 1,
            spent: std::sync::Mutex::default(),
        };
        assert_eq!(spent.spend("a"), LocalSpend::First);
        assert_eq!(spent.spend("b"), LocalSpend::First, "a expired at once");
    }
}
