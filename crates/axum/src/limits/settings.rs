//! [`ExchangeLimits`], [`RateLimit`], [`ClientKey`]: how many failed key exchanges the callback
//! route allows, in all and per client (re-exported from `config`). They count abuse, not
//! people: a successful sign-in never counts.
//!
//! The rules:
//!
//! * A failure is a code ModelGates refused (its 400 or 403 for the code) or a code too
//!   malformed to send. Each counts against its client's bound and the global one.
//! * Every callback that passed the flow checks (its cookie, its flow id, its age) asks before
//!   anything is sent to ModelGates, spending nothing: a client over its own bound is answered
//!   429 `too_many_sign_ins` with `Retry-After` (the seconds until it may try again) and its
//!   flow is not spent, so the user can retry the same callback. While the layer's failures are
//!   over the global bound, so is a client with failures on record, or one that cannot be told;
//!   a client without any is let through, so a flood of made-up codes from many addresses does
//!   not lock people out.
//! * The bounds are GCRA rate limits over failures: `n` per period, with a burst. Defaults: 20
//!   per second with a burst of 50 in all; 10 per minute with a burst of 5 per client. Twelve
//!   people behind one address all sign in; one address sending made-up codes is refused after
//!   five.
//! * The client is [`ClientKey::peer_ip`] by default: the client's address by the trusted-proxy
//!   rule ([`TrustedProxies`](crate::config::TrustedProxies)): the TCP peer from axum's
//!   `ConnectInfo<SocketAddr>` (serve with
//!   `into_make_service_with_connect_info::<SocketAddr>()`), or, behind a trusted proxy, the
//!   address it reports; an IPv6 client by its /64. Or give your own function
//!   ([`ClientKey::custom`]). Without `ConnectInfo` the client cannot be told (the layer warns
//!   once): only the global bound applies.
//! * Concurrency is bounded apart (`with_max_concurrent_exchanges`, 503 `busy`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use http::request::Parts;

use crate::forwarded::Client;

/// A rate: `count` events per `period`, with bursts of up to `burst`.
///
/// ```
/// use modelgates_axum::config::RateLimit;
///
/// let limit = RateLimit::per_minute(10).with_burst(5);
/// assert_eq!(limit.burst(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    count: u32,
    period: Duration,
    burst: u32,
}

impl RateLimit {
    /// `count` per second, bursts of `count`. Zero is refused when the layer is built.
    #[must_use]
    pub const fn per_second(count: u32) -> Self {
        Self::new(count, Duration::from_secs(1))
    }

    /// `count` per minute, bursts of `count`. Zero is refused when the layer is built.
    #[must_use]
    pub const fn per_minute(count: u32) -> Self {
        Self::new(count, Duration::from_secs(60))
    }

    /// `count` per hour, bursts of `count`. Zero is refused when the layer is built.
    #[must_use]
    pub const fn per_hour(count: u32) -> Self {
        Self::new(count, Duration::from_secs(3600))
    }

    const fn new(count: u32, period: Duration) -> Self {
        Self {
            count,
            period,
            burst: count,
        }
    }

    /// Up to `burst` events at once after a quiet spell (default: the count per period).
    #[must_use]
    pub const fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst;
        self
    }

    /// Events per period.
    #[must_use]
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    #[must_use]
    pub const fn period(&self) -> Duration {
        self.period
    }

    /// The largest burst.
    #[must_use]
    pub const fn burst(&self) -> u32 {
        self.burst
    }

    /// Whether every number is above zero.
    pub(crate) fn is_valid(&self) -> bool {
        self.count > 0 && self.burst > 0 && !self.period.is_zero()
    }
}

type KeyFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;

/// Which client a request comes from, for the per-client bound of [`ExchangeLimits`].
#[derive(Clone)]
pub struct ClientKey(ClientKeyKind);

#[derive(Clone)]
enum ClientKeyKind {
    PeerIp,
    LastHeaderValue(HeaderName),
    Custom(Arc<KeyFn>),
}

impl ClientKey {
    /// The client's address by the trusted-proxy rule (the default): the TCP peer from axum's
    /// `ConnectInfo<SocketAddr>`, or behind a proxy named in
    /// [`TrustedProxies`](crate::config::TrustedProxies) the address it reports; an IPv6 client
    /// by its /64.
    #[must_use]
    pub fn peer_ip() -> Self {
        Self(ClientKeyKind::PeerIp)
    }

    /// The last value of `header` (the last element of a comma-separated list), whoever sent
    /// it: for a header of the proxy's own that it always overwrites (`CF-Connecting-IP`, say)
    /// when nothing but the proxy can reach the app. For `X-Forwarded-For` and `Forwarded`,
    /// prefer [`TrustedProxies`](crate::config::TrustedProxies), which believes them only
    /// from the proxy.
    #[must_use]
    pub fn last_header_value(header: HeaderName) -> Self {
        Self(ClientKeyKind::LastHeaderValue(header))
    }

    /// The app's own function of the request (a signed header of its CDN, say). `None`: the
    /// client cannot be told, and only the global bound applies.
    #[must_use]
    pub fn custom(key: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        Self(ClientKeyKind::Custom(Arc::new(key)))
    }

    /// Whether this is [`Self::peer_ip`], which needs `ConnectInfo`.
    pub(crate) fn is_peer_ip(&self) -> bool {
        matches!(self.0, ClientKeyKind::PeerIp)
    }

    /// The client of `parts`, if it can be told; `client` is its address by the trusted-proxy
    /// rule.
    pub(crate) fn of(&self, parts: &Parts, client: &Client) -> Option<String> {
        match &self.0 {
            ClientKeyKind::PeerIp => client.bound_key(),
            ClientKeyKind::LastHeaderValue(header) => parts
                .headers
                .get_all(header)
                .iter()
                .next_back()
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.rsplit(',').next())
                .map(str::trim)
                .filter(|value| !value.is_empty())
                .map(str::to_owned),
            ClientKeyKind::Custom(key) => key(parts),
        }
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ClientKeyKind::PeerIp => f.write_str("ClientKey::peer_ip()"),
            ClientKeyKind::LastHeaderValue(header) => {
                write!(f, "ClientKey::last_header_value({header})")
            }
            ClientKeyKind::Custom(_) => f.write_str("ClientKey::custom(..)"),
        }
    }
}

/// The bounds on failed key exchanges, by the module's rules.
/// Set with [`ModelGatesConfig::with_exchange_limits`](crate::ModelGatesConfig::with_exchange_limits).
///
/// ```
/// use axum::http::HeaderName;
/// use modelgates_axum::config::{ClientKey, ExchangeLimits, RateLimit};
///
/// // Behind a CDN that always sets its own header with the client's address.
/// let limits = ExchangeLimits::default()
///     .with_global(RateLimit::per_second(50).with_burst(100))
///     .with_client_key(ClientKey::last_header_value(HeaderName::from_static("cf-connecting-ip")));
/// # let _ = limits;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ExchangeLimits {
    pub(crate) global: Option<RateLimit>,
    pub(crate) per_client: Option<RateLimit>,
    pub(crate) client_key: ClientKey,
}

/// The default global bound: 20 failed exchanges per second, bursts of 50.
pub const DEFAULT_GLOBAL_EXCHANGE_RATE: RateLimit = RateLimit::per_second(20).with_burst(50);
/// The default per-client bound: 10 failed exchanges per minute, bursts of 5.
pub const DEFAULT_CLIENT_EXCHANGE_RATE: RateLimit = RateLimit::per_minute(10).with_burst(5);

impl Default for ExchangeLimits {
    fn default() -> Self {
        Self {
            global: Some(DEFAULT_GLOBAL_EXCHANGE_RATE),
            per_client: Some(DEFAULT_CLIENT_EXCHANGE_RATE),
            client_key: ClientKey::peer_ip(),
        }
    }
}

impl ExchangeLimits {
    /// No rate bound at all (load tests; an app with its own limiter in front of the
    /// callback route). Concurrency stays bounded.
    pub fn unlimited() -> Self {
        Self {
            global: None,
            per_client: None,
            client_key: ClientKey::peer_ip(),
        }
    }

    /// The bound on all exchanges of this layer.
    pub fn with_global(mut self, limit: RateLimit) -> Self {
        self.global = Some(limit);
        self
    }

    /// No global bound.
    pub fn without_global(mut self) -> Self {
        self.global = None;
        self
    }

    /// The bound on each client's exchanges.
    pub fn with_per_client(mut self, limit: RateLimit) -> Self {
        self.per_client = Some(limit);
        self
    }

    /// No per-client bound.
    pub fn without_per_client(mut self) -> Self {
        self.per_client = None;
        self
    }

    /// How a request's client is told (default [`ClientKey::peer_ip`]).
    pub fn with_client_key(mut self, client_key: ClientKey) -> Self {
        self.client_key = client_key;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn the_last_header_value_is_the_proxys() {
        let key = ClientKey::last_header_value(HeaderName::from_static("x-forwarded-for"));
        let forged = parts(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9")]);
        let none = Client::default();
        assert_eq!(key.of(&forged, &none).as_deref(), Some("203.0.113.9"));
        let two_headers = parts(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.7"),
        ]);
        assert_eq!(key.of(&two_headers, &none).as_deref(), Some("203.0.113.7"));
        assert_eq!(key.of(&parts(&[]), &none), None);
    }

    #[test]
    fn the_peer_ip_is_the_client_by_the_trusted_proxy_rule() {
        let mut with_peer = parts(&[]);
        with_peer
            .extensions
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [192, 0, 2, 4],
                5000,
            ))));
        let proxies = crate::config::TrustedProxies::none();
        let client = Client::of(&with_peer, &proxies);
        assert_eq!(
            ClientKey::peer_ip().of(&with_peer, &client).as_deref(),
            Some("192.0.2.4")
        );
        let without = parts(&[]);
        let unknown = Client::of(&without, &proxies);
        assert_eq!(ClientKey::peer_ip().of(&without, &unknown), None);
    }
}
