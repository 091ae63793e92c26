//! The flow's state between `/login` and `/callback`: in the browser, the sealed flow cookie;
//! in this process, the flows already spent.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use modelgates_oauth_core::flow::{FlowError, FlowSealer, FlowState};

use crate::cookies::{CookieSpec, cookie_pairs, values_named};

/// The most sign-ins a browser may have pending at once (one per tab, say); a new one drops
/// the oldest.
pub(crate) const MAX_PENDING_FLOWS: usize = 4;
/// The most bytes the pending flows' cookies may hold in all, so that the `Cookie` header stays
/// well within what servers and proxies accept (8 KiB at many); a new flow drops the oldest
/// until it fits.
pub(crate) const MAX_PENDING_FLOW_BYTES: usize = 6 * 1024;

/// The flow cookies: one per pending sign-in, named `<name>.<flow id>` so that the callback
/// (whose path carries the id) finds its own; their spec, and the sealer of the flows they
/// carry (oauth-core's [`FlowSealer`], keyed with each cookie key's encryption half and the
/// cookie's whole name as associated data, the format of the `cookie` crate's private
/// cookies).
pub(crate) struct FlowCookie {
    pub(crate) spec: CookieSpec,
    sealer: FlowSealer,
    /// What follows `name=value` in each `Set-Cookie` (`; HttpOnly; SameSite=…; Max-Age=…`),
    /// rendered once by the `cookie` crate: every flow cookie has the same.
    attributes: String,
}

/// A pending flow's cookie in a request: its name, its size, and when its flow was issued
/// (`None` when it does not open).
struct Pending<'h> {
    name: &'h str,
    len: usize,
    issued_at: Option<u64>,
}

impl FlowCookie {
    /// Flow cookies sealed with the first of `keys` and opened with any of them.
    pub(crate) fn new(spec: CookieSpec, keys: &[cookie::Key], max_age: Duration) -> Self {
        let mut sealers = keys.iter().map(|key| {
            FlowSealer::new(
                key.encryption()
                    .try_into()
                    .expect("a cookie key's encryption half is 32 bytes"),
            )
        });
        let newest = sealers.next().expect("at least the current secret");
        Self {
            attributes: spec.attributes(max_age),
            spec,
            sealer: newest.with_previous(sealers),
        }
    }

    /// The cookie name of the flow `id`.
    fn name_of(&self, id: &str) -> String {
        [self.spec.name.as_str(), ".", id].concat()
    }

    /// `Set-Cookie` for a new flow, under its own name.
    pub(crate) fn set(&self, flow: &FlowState) -> HeaderValue {
        let name = self.name_of(flow.id.as_str());
        let sealed = self.sealer.seal(flow, name.as_bytes());
        HeaderValue::try_from([name.as_str(), "=", &sealed, &self.attributes].concat())
            .expect("cookie names are checked at startup and sealed flows are base64")
    }

    /// The flow of the callback for flow `id`: `Ok(None)` without its cookie,
    /// [`FlowError::Invalid`] when none of its (at most three) values opens. An id that is not
    /// an id has no cookie.
    pub(crate) fn open(
        &self,
        headers: &HeaderMap,
        id: &str,
    ) -> Result<Option<FlowState>, FlowError> {
        if !is_flow_id(id) {
            return Ok(None);
        }
        let name = self.name_of(id);
        let mut values = values_named(headers, &name).peekable();
        if values.peek().is_none() {
            return Ok(None);
        }
        values
            .find_map(|value| self.sealer.open(value, name.as_bytes()).ok())
            .map(Some)
            .ok_or(FlowError::Invalid)
    }

    /// Whether the request carries any flow cookie at all: a callback without its own then
    /// belongs to another of this browser's sign-ins.
    pub(crate) fn any_pending(&self, headers: &HeaderMap) -> bool {
        self.pending_names(headers).next().is_some()
    }

    /// The names of the request's flow cookies.
    fn pending_names<'h>(&'h self, headers: &'h HeaderMap) -> impl Iterator<Item = &'h str> {
        cookie_pairs(headers)
            .map(|(name, _)| name)
            .filter(|name| self.is_flow_cookie(name))
    }

    /// Whether `name` is a flow cookie's: `<name>.<flow id>`.
    fn is_flow_cookie(&self, name: &str) -> bool {
        name.strip_prefix(self.spec.name.as_str())
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(is_flow_id)
    }

    /// The `Set-Cookie` deletions that make room for a new flow whose cookie is `new_len`
    /// bytes: the oldest pending flows go (those that do not open first) until at most
    /// [`MAX_PENDING_FLOWS`] remain with the new one and all fit [`MAX_PENDING_FLOW_BYTES`].
    pub(crate) fn make_room(&self, headers: &HeaderMap, new_len: usize) -> Vec<HeaderValue> {
        let mut pending: Vec<Pending<'_>> = cookie_pairs(headers)
            .filter(|(name, _)| self.is_flow_cookie(name))
            .map(|(name, value)| Pending {
                name,
                len: name.len() + value.len(),
                issued_at: self
                    .sealer
                    .open(value, name.as_bytes())
                    .ok()
                    .map(|flow| flow.issued_at),
            })
            .collect();
        // Oldest first; a cookie that does not open is older than any.
        pending.sort_by_key(|flow| flow.issued_at);
        let mut total: usize = new_len + pending.iter().map(|flow| flow.len).sum::<usize>();
        let mut removals = Vec::new();
        for flow in &pending {
            let count = pending.len() - removals.len() + 1;
            if count <= MAX_PENDING_FLOWS && total <= MAX_PENDING_FLOW_BYTES {
                break;
            }
            total -= flow.len;
            removals.push(self.spec.renamed(flow.name.to_owned()).removal());
        }
        removals
    }

    /// `Set-Cookie` that deletes the cookie of flow `id`; `None` for what is not an id (it came
    /// from a URL, and must not reach a header).
    pub(crate) fn clear(&self, id: &str) -> Option<HeaderValue> {
        is_flow_id(id).then(|| self.spec.renamed(self.name_of(id)).removal())
    }

    /// `Set-Cookie` deletions of every flow cookie the request carries: a completed sign-in
    /// ends the browser's other pending ones, whose callbacks then find the browser signed in.
    pub(crate) fn clear_all(&self, headers: &HeaderMap) -> Vec<HeaderValue> {
        let mut names: Vec<&str> = self.pending_names(headers).collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|name| self.spec.renamed(name.to_owned()).removal())
            .collect()
    }
}

/// Whether `id` has the shape of a flow id (22 base64url characters), so that it may be part of
/// a cookie name.
fn is_flow_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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
