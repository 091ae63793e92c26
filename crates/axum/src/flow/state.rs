//! The flow's state between `/login` and `/callback`: in the browser, the sealed flow cookie;
//! in this process, the flows already spent.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use modelgates_oauth_core::{FlowError, FlowId, FlowSealer, FlowState};

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

/// How many spent flow ids are remembered at most (per layer): beyond that the oldest are
/// forgotten before their flows expire.
pub(crate) const MAX_SPENT_FLOWS: u64 = 100_000;

/// Flow ids a callback has already been tried with, kept as long as a flow lives (per
/// process).
pub(crate) struct SpentFlows(moka::sync::Cache<String, ()>);

impl SpentFlows {
    pub(crate) fn new(flow_max_age: Duration) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(MAX_SPENT_FLOWS)
                .time_to_live(flow_max_age + Duration::from_secs(60))
                .build(),
        )
    }

    /// Records `id` as spent; whether this was its first use.
    pub(crate) fn spend(&self, id: &FlowId) -> bool {
        self.0
            .entry(id.as_str().to_owned())
            .or_insert(())
            .is_fresh()
    }
}
