//! Who is on the other end of a request behind proxies: [`TrustedProxies`] (re-exported from
//! [`config`](crate::config)) and the rule that reads the client's address, scheme and host.
//!
//! The rules:
//!
//! * The TCP peer is the address in axum's `ConnectInfo<SocketAddr>` (serve with
//!   `into_make_service_with_connect_info::<SocketAddr>()`). Without it the client cannot be
//!   told: the layer logs one warning saying so, and the per-client bound on sign-ins is off.
//! * Forwarding headers are read only when the peer is a trusted proxy: its address is in one
//!   of the configured networks (`with_trusted_proxies`, env `MODELGATES_TRUSTED_PROXIES`,
//!   comma-separated CIDRs or addresses), or a hop count is configured. Otherwise they are
//!   ignored, since anyone can send them: a request that carries some while no proxy is
//!   trusted is counted in `modelgates_untrusted_forwarding_headers_total`, and the layer logs
//!   one warning naming the setting (as express-rate-limit refuses `X-Forwarded-For` without
//!   `trust proxy`).
//! * From a trusted peer, the chain of addresses is RFC 7239's `Forwarded: for=` when the
//!   request has that header, else `X-Forwarded-For` (every instance, in order). The client is
//!   the right-most address that is not a trusted proxy's, walking from the peer leftwards; with
//!   a hop count `n`, the `n`-th from the right (the peer being the first proxy). A chain that
//!   runs out gives its left-most address; an entry that is not an address (`unknown`, an
//!   obfuscated name) gives none: the client cannot be told.
//! * The scheme and host are the nearest proxy's: the right-most `proto=` and `host=` of
//!   `Forwarded`, else the last value of `X-Forwarded-Proto` and `X-Forwarded-Host`.
//! * IPv6 clients are keyed by their /64 for the sign-in bounds: one host usually holds a whole
//!   /64, so counting its addresses apart would multiply its allowance.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use http::HeaderMap;
use http::request::Parts;
use ipnet::IpNet;

/// The proxies whose forwarding headers (`Forwarded`, `X-Forwarded-For`, `-Proto`, `-Host`) the
/// layer believes, by the [module's rules](crate::config::TrustedProxies#the-rules): none by
/// default. Set with
/// [`ModelGatesConfig::with_trusted_proxies`](crate::ModelGatesConfig::with_trusted_proxies).
///
/// ```
/// use modelgates_axum::config::TrustedProxies;
///
/// // nginx on the same machine, and the load balancers of a private network.
/// let proxies = TrustedProxies::parse("127.0.0.1, ::1, 10.0.0.0/8").unwrap();
/// assert!(proxies.trusts("10.1.2.3".parse().unwrap()));
/// // A CDN whose addresses change: trust the one hop in front of the app, whatever it is.
/// let cdn = TrustedProxies::hops(1);
/// # let _ = cdn;
/// ```
///
/// # The rules
///
/// See the module documentation of `forwarded` in the crate's source, repeated here: forwarding
/// headers are read only from a trusted peer; the client is the right-most address of the chain
/// that is not a trusted proxy's (or the `n`-th from the right with a hop count); the scheme and
/// host are the nearest proxy's; IPv6 clients count by /64 in the sign-in bounds.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    hops: Option<usize>,
}

/// A [`TrustedProxies`] text that is not a list of networks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{entry}` is not an IP address or a CIDR network (such as 10.0.0.0/8 or ::1)")]
pub struct InvalidTrustedProxy {
    entry: String,
}

impl TrustedProxies {
    /// No proxy: forwarding headers are ignored (the default).
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// The proxies in these networks.
    #[must_use]
    pub fn networks(networks: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            networks: networks.into_iter().collect(),
            hops: None,
        }
    }

    /// The `count` proxies nearest the app, whatever their addresses (a CDN whose ranges
    /// change): the client is the `count`-th address from the right of the chain. Only right
    /// when every request comes through exactly that many proxies.
    #[must_use]
    pub fn hops(count: usize) -> Self {
        Self {
            networks: Vec::new(),
            hops: Some(count.max(1)),
        }
    }

    /// Networks or addresses separated by commas: `"127.0.0.1, 10.0.0.0/8, fd00::/8"`. Empty
    /// is none.
    ///
    /// # Errors
    ///
    /// An entry that is neither an address nor a CIDR network.
    pub fn parse(text: &str) -> Result<Self, InvalidTrustedProxy> {
        let networks: Vec<IpNet> = text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidTrustedProxy {
                        entry: entry.chars().take(60).collect(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::networks(networks))
    }

    /// Whether any proxy is trusted.
    #[must_use]
    pub fn any(&self) -> bool {
        self.hops.is_some() || !self.networks.is_empty()
    }

    /// Whether `address` is a trusted proxy's (by network; with a hop count, every peer is).
    #[must_use]
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.hops.is_some() || self.networks.iter().any(|net| net.contains(&address))
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hops {
            Some(hops) => write!(f, "TrustedProxies::hops({hops})"),
            None => f.debug_list().entries(&self.networks).finish(),
        }
    }
}

/// The client of a request, by the module's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Client {
    /// The client's address, when it can be told.
    pub(crate) address: Option<IpAddr>,
    /// The nearest trusted proxy's `host`, when it said.
    pub(crate) forwarded_host: Option<String>,
    /// Whether the request carried forwarding headers the layer did not believe.
    pub(crate) ignored_headers: bool,
    /// Whether the request came without `ConnectInfo`.
    pub(crate) no_peer: bool,
}

impl Client {
    /// The client of `parts` behind `proxies`.
    pub(crate) fn of(parts: &Parts, proxies: &TrustedProxies) -> Self {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip().to_canonical());
        let headers = &parts.headers;
        let Some(peer) = peer else {
            return Self {
                no_peer: true,
                ..Self::default()
            };
        };
        if !proxies.trusts(peer) {
            return Self {
                address: Some(peer),
                ignored_headers: has_forwarding_headers(headers),
                ..Self::default()
            };
        }
        let chain = forwarded_for(headers);
        Self {
            address: client_in(&chain, peer, proxies),
            forwarded_host: forwarded_host(headers),
            ..Self::default()
        }
    }

    /// The key the sign-in bounds count this client by: its address, an IPv6 one cut to /64.
    pub(crate) fn bound_key(&self) -> Option<String> {
        self.address.map(|address| match address {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        })
    }
}

fn has_forwarding_headers(headers: &HeaderMap) -> bool {
    [
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
    ]
    .iter()
    .any(|name| headers.contains_key(*name))
}

/// One entry of the chain: an address, or something that is not one.
type Hop = Option<IpAddr>;

/// The chain of addresses the proxies reported, left (the first) to right (the nearest).
fn forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    if headers.contains_key("forwarded") {
        return forwarded_elements(headers)
            .filter_map(|element| pair(element, "for"))
            .map(|value| parse_node(&value))
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| parse_node(entry.trim()))
        .collect()
}

/// The client in `chain` reported through trusted `peer`.
fn client_in(chain: &[Hop], peer: IpAddr, proxies: &TrustedProxies) -> Option<IpAddr> {
    if let Some(hops) = proxies.hops {
        // The peer is the first of `hops` proxies; each before it appended one entry.
        return match chain.len().checked_sub(hops - 1) {
            Some(0) | None => chain.first().copied().unwrap_or(Some(peer)),
            Some(end) => chain[end - 1],
        };
    }
    for hop in chain.iter().rev() {
        match hop {
            Some(address) if proxies.trusts(*address) => {}
            other => return *other,
        }
    }
    // Every entry is a trusted proxy's: the left-most is the nearest thing to a client.
    chain.first().copied().unwrap_or(Some(peer))
}

/// The host the nearest proxy reported.
fn forwarded_host(headers: &HeaderMap) -> Option<String> {
    if headers.contains_key("forwarded") {
        return forwarded_elements(headers)
            .filter_map(|element| pair(element, "host"))
            .last();
    }
    headers
        .get_all("x-forwarded-host")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(str::to_owned)
}

/// The elements of every `Forwarded` header, in order (RFC 7239: comma-separated elements of
/// semicolon-separated pairs).
fn forwarded_elements(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
}

/// The value of `name=` in a `Forwarded` element, unquoted.
fn pair(element: &str, name: &str) -> Option<String> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// An address as a proxy reports it: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`,
/// `2001:db8::1`; `None` for anything else.
fn parse_node(node: &str) -> Hop {
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    if let Ok(socket) = node.parse::<SocketAddr>() {
        return Some(socket.ip().to_canonical());
    }
    let bracketed = node.strip_prefix('[')?.split_once(']')?.0;
    bracketed.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(peer: &str, headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::builder();
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut parts = request.body(()).unwrap().into_parts().0;
        parts.extensions.insert(axum::extract::ConnectInfo(
            format!("{peer}:40000").parse::<SocketAddr>().unwrap(),
        ));
        parts
    }

    fn client(peer: &str, headers: &[(&str, &str)], proxies: &TrustedProxies) -> Option<String> {
        Client::of(&parts(peer, headers), proxies)
            .address
            .map(|a| a.to_string())
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored_and_noticed() {
        let none = TrustedProxies::none();
        let spoofed = Client::of(
            &parts("203.0.113.9", &[("x-forwarded-for", "1.1.1.1")]),
            &none,
        );
        assert_eq!(spoofed.address, Some("203.0.113.9".parse().unwrap()));
        assert!(spoofed.ignored_headers);
        let nginx = TrustedProxies::parse("127.0.0.1").unwrap();
        assert_eq!(
            client("198.51.100.7", &[("x-forwarded-for", "1.1.1.1")], &nginx).as_deref(),
            Some("198.51.100.7"),
            "a client that is not the proxy cannot pose as one"
        );
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let proxies = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8").unwrap();
        // The client wrote 6.6.6.6 itself; the edge proxy appended the real address.
        let forged = [("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.0.0.2")];
        assert_eq!(
            client("127.0.0.1", &forged, &proxies).as_deref(),
            Some("203.0.113.5")
        );
        let forwarded = [(
            "forwarded",
            r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https;host=app.example, for=10.0.0.2"#,
        )];
        let parsed = Client::of(&parts("127.0.0.1", &forwarded), &proxies);
        assert_eq!(parsed.address, Some("2001:db8::7".parse().unwrap()));
        assert_eq!(parsed.forwarded_host.as_deref(), Some("app.example"));
        assert_eq!(
            client(
                "127.0.0.1",
                &[("x-forwarded-for", "unknown, 10.0.0.2")],
                &proxies
            ),
            None,
            "an obfuscated client cannot be told"
        );
        assert_eq!(
            client("127.0.0.1", &[], &proxies).as_deref(),
            Some("127.0.0.1"),
            "no chain: the peer"
        );
    }

    #[test]
    fn a_hop_count_picks_that_many_from_the_right() {
        let chain = [("x-forwarded-for", "6.6.6.6, 203.0.113.5, 198.51.100.1")];
        let one = TrustedProxies::hops(1);
        assert_eq!(
            client("192.0.2.1", &chain, &one).as_deref(),
            Some("198.51.100.1")
        );
        let two = TrustedProxies::hops(2);
        assert_eq!(
            client("192.0.2.1", &chain, &two).as_deref(),
            Some("203.0.113.5")
        );
        let many = TrustedProxies::hops(9);
        assert_eq!(
            client("192.0.2.1", &chain, &many).as_deref(),
            Some("6.6.6.6")
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a = Client::of(&parts("[2001:db8:1:2::a]", &[]), &TrustedProxies::none());
        let b = Client::of(
            &parts("[2001:db8:1:2:ffff::b]", &[]),
            &TrustedProxies::none(),
        );
        assert_eq!(a.bound_key(), b.bound_key());
        assert_eq!(a.bound_key().as_deref(), Some("2001:db8:1:2::/64"));
        let mapped = Client::of(&parts("[::ffff:192.0.2.1]", &[]), &TrustedProxies::none());
        assert_eq!(mapped.bound_key().as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn parse_refuses_what_is_not_a_network() {
        assert!(TrustedProxies::parse("").unwrap() == TrustedProxies::none());
        assert!(TrustedProxies::parse("10.0.0.0/8, ::1").unwrap().any());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("proxy.internal").is_err());
    }
}
