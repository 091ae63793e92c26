//! The URL rules an app and this crate share: which hosts count as loopback, and what an app's
//! public origin may be.
//!
//! The rules:
//!
//! * A host is loopback when it is `localhost` (any case), an address in `127.0.0.0/8`, or
//!   `::1`. It is read from the URL's text, so that URLs of schemes the URL standard does not
//!   know (`postgres://127.0.0.1`, `redis://[::1]`) are judged like `http://` ones.
//! * ModelGates' base URL is an `https` origin (or `http` on a loopback host, the emulator),
//!   without credentials, query or fragment; a path is kept and ends in `/`.
//! * A public origin is `https://host[:port]`, or `http://` on a loopback host (a local app);
//!   it holds no path, query, fragment or credentials. Callback URLs are built from it, never
//!   from a request's `Host` or `X-Forwarded-*` headers.

use url::Url;

/// Whether a URL's host is loopback: `localhost`, an address in `127.0.0.0/8`, or `::1`.
///
/// ```
/// use modelgates_oauth_core::Url;
/// use modelgates_oauth_core::origin::is_loopback;
///
/// assert!(is_loopback(&Url::parse("http://localhost:3000").unwrap()));
/// assert!(is_loopback(&Url::parse("postgres://127.0.0.2/db").unwrap()));
/// assert!(!is_loopback(&Url::parse("http://192.0.2.1").unwrap()));
/// ```
#[must_use]
pub fn is_loopback(url: &Url) -> bool {
    url.host_str().is_some_and(is_loopback_host)
}

/// Whether `host` (a name or an IP address, IPv6 with or without brackets) stays on this
/// machine: `localhost`, `127.0.0.0/8` or `::1`.
///
/// ```
/// use modelgates_oauth_core::origin::is_loopback_host;
///
/// assert!(is_loopback_host("127.0.0.1") && is_loopback_host("[::1]") && is_loopback_host("::1"));
/// assert!(!is_loopback_host("192.0.2.2") && !is_loopback_host("localhost.example"));
/// ```
#[must_use]
#[doc(hidden)]
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A URL that cannot be an app's public origin, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid public URL `{url}`: {reason}")]
#[non_exhaustive]
pub struct InvalidPublicUrl {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it, and what to use instead.
    pub reason: &'static str,
}

/// Parses an app's public origin by the module's rules.
///
/// ```
/// use modelgates_oauth_core::origin::parse_public_origin;
///
/// assert!(parse_public_origin("https://app.example").is_ok());
/// assert!(parse_public_origin("http://localhost:3000").is_ok());
/// assert!(parse_public_origin("http://app.example").is_err());
/// assert!(parse_public_origin("https://app.example/chat").is_err());
/// ```
///
/// # Errors
///
/// [`InvalidPublicUrl`] saying what to change.
pub fn parse_public_origin(raw: &str) -> Result<Url, InvalidPublicUrl> {
    let invalid = |reason| InvalidPublicUrl {
        url: raw.to_owned(),
        reason,
    };
    let url = Url::parse(raw)
        .map_err(|_| invalid("it is not an absolute URL such as https://app.example"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(invalid(
                "http is allowed only on localhost, 127.0.0.1 or [::1]; use https",
            ));
        }
        _ => return Err(invalid("the scheme must be https (or http on localhost)")),
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(invalid(
            "it must be an origin without path, query or fragment; mount the routes under a path with with_path_prefix",
        ));
    }
    Ok(url)
}
