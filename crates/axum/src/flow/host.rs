//! Which host the browser used, when it is not the public URL's.
//!
//! The rules: cookies belong to a host, so a sign-in started on `127.0.0.1:3000` while the
//! public URL is `http://localhost:3000` can never find its flow cookie at the callback. The
//! browser's host is the one a trusted proxy reported (`Forwarded: host=` or
//! `X-Forwarded-Host`, by [`TrustedProxies`](crate::config::TrustedProxies)' rules), else
//! `Host` (else the URI's authority). The layer acts on a mismatch only when it is sure the host
//! is the browser's: the public URL is a loopback one (development: no proxy names the app), or
//! a trusted proxy said so. Behind a proxy that rewrites `Host` and says nothing, every request
//! would look foreign, and redirecting would loop. Comparison ignores ASCII case and a
//! scheme's default port. A forwarded host from a peer that is not a trusted proxy is ignored.
//!
//! The login route's redirect to the public URL sets [`REDIRECTED_COOKIE`] (one minute, on the
//! host the browser used) and is not repeated while the browser sends it back: a development
//! proxy in front of a loopback public URL that rewrites `Host` (a dev server's proxy with
//! `changeOrigin`) costs one hop, not a redirect loop.

use std::time::Duration;

use http::HeaderValue;
use http::request::Parts;
use modelgates_oauth_core::Url;
use modelgates_oauth_core::origin::is_loopback;

use crate::cookies::CookieSpec;

/// The cookie that says the login route already sent this browser to the public URL.
pub(crate) const REDIRECTED_COOKIE: &str = "modelgates_host_redirect";

/// How long the login route does not redirect a browser to the public URL again.
const REDIRECTED_FOR: Duration = Duration::from_secs(60);

/// The public URL's authority and what the layer may conclude from a foreign host.
#[derive(Debug)]
pub(crate) struct PublicHost {
    /// `host[:port]` of the public URL, default port omitted, lowercase.
    authority: String,
    /// `:443` or `:80`: the scheme's default port, which a `Host` may name or omit.
    default_port: &'static str,
    /// The public URL is on a loopback host: no proxy in front names the app.
    loopback: bool,
    /// [`REDIRECTED_COOKIE`], set on the foreign host (not `Secure`: it may be plain http).
    redirected: CookieSpec,
}

impl PublicHost {
    /// The host of the public URL `public`.
    pub(crate) fn new(public: &Url) -> Self {
        let host = public.host_str().unwrap_or_default().to_ascii_lowercase();
        Self {
            authority: match public.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            },
            default_port: if public.scheme() == "https" {
                ":443"
            } else {
                ":80"
            },
            loopback: is_loopback(public),
            redirected: CookieSpec::host_only(REDIRECTED_COOKIE.to_owned(), false),
        }
    }

    /// Whether the login route already sent this browser to the public URL.
    pub(crate) fn was_redirected(&self, parts: &Parts) -> bool {
        self.redirected.is_present(&parts.headers)
    }

    /// The `Set-Cookie` that marks a browser as sent to the public URL, for a minute.
    pub(crate) fn redirected_cookie(&self) -> HeaderValue {
        self.redirected.set("1".to_owned(), REDIRECTED_FOR)
    }

    /// The browser's host when it is surely not the public URL's (see the module's rules);
    /// `forwarded` is the host a trusted proxy reported.
    pub(crate) fn foreign(&self, parts: &Parts, forwarded: Option<&str>) -> Option<String> {
        if forwarded.is_none() && !self.loopback {
            return None;
        }
        let host = forwarded
            .or_else(|| {
                parts
                    .headers
                    .get(http::header::HOST)
                    .and_then(|value| value.to_str().ok())
            })
            .or_else(|| parts.uri.authority().map(http::uri::Authority::as_str))?;
        let host = host.to_ascii_lowercase();
        let normalised = host.strip_suffix(self.default_port).unwrap_or(&host);
        (normalised != self.authority).then_some(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&'static str, &'static str)]) -> Parts {
        let mut request = http::Request::get("/login?return_to=%2Fa");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_loopback_public_url_knows_the_browser_used_another_host() {
        let public = PublicHost::new(&Url::parse("http://localhost:3001").unwrap());
        assert_eq!(
            public
                .foreign(&parts(&[("host", "127.0.0.1:3001")]), None)
                .as_deref(),
            Some("127.0.0.1:3001")
        );
        assert_eq!(
            public
                .foreign(&parts(&[("host", "localhost:3002")]), None)
                .as_deref(),
            Some("localhost:3002"),
            "another port is another origin"
        );
        assert_eq!(
            public.foreign(&parts(&[("host", "LOCALHOST:3001")]), None),
            None
        );
        assert_eq!(
            public.foreign(&parts(&[]), None),
            None,
            "no host: nothing to say"
        );
    }

    #[test]
    fn the_redirect_is_marked_once() {
        let public = PublicHost::new(&Url::parse("http://localhost:3001").unwrap());
        assert!(!public.was_redirected(&parts(&[("cookie", "a=b")])));
        assert!(public.was_redirected(&parts(&[("cookie", "a=b; modelgates_host_redirect=1")])));
        let cookie = public.redirected_cookie();
        let cookie = cookie.to_str().unwrap();
        assert!(
            cookie.starts_with("modelgates_host_redirect=1;"),
            "{cookie}"
        );
        assert!(
            cookie.contains("Max-Age=60") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        assert!(!cookie.contains("Secure"), "{cookie}");
    }

    #[test]
    fn behind_a_proxy_only_a_trusted_proxys_host_is_believed() {
        let public = PublicHost::new(&Url::parse("https://app.example").unwrap());
        assert_eq!(
            public.foreign(&parts(&[("host", "127.0.0.1:3000")]), None),
            None,
            "a proxy that rewrites Host must not loop"
        );
        assert_eq!(
            public
                .foreign(
                    &parts(&[("host", "127.0.0.1:3000")]),
                    Some("www.app.example")
                )
                .as_deref(),
            Some("www.app.example")
        );
        assert_eq!(
            public.foreign(&parts(&[]), Some("app.example:443")),
            None,
            "the default port is the same origin"
        );
    }
}
