//! Which host the browser used, when it is not the public URL's.
//!
//! The rules: cookies belong to a host, so a sign-in started on `127.0.0.1:3000` while the
//! public URL is `http://localhost:3000` can never find its flow cookie at the callback. The
//! browser's host is `X-Forwarded-Host` when a proxy set it, else `Host` (else the URI's
//! authority). The layer acts on a mismatch only when it is sure the host is the browser's:
//! the public URL is a loopback one (development: no proxy names the app), or a proxy said so
//! with `X-Forwarded-Host`. Behind a proxy that rewrites `Host` and says nothing, every request
//! would look foreign, and redirecting would loop. Comparison ignores ASCII case and a
//! scheme's default port. A forged `X-Forwarded-Host` only sends its sender to the public URL.
//!
//! The login route's redirect to the public URL sets [`REDIRECTED_COOKIE`] (one minute, on the
//! host the browser used) and is not repeated while the browser sends it back: a development
//! proxy in front of a loopback public URL that rewrites `Host` (a dev server's proxy with
//! `changeOrigin`) costs one hop, not a redirect loop.

use http::HeaderValue;
use http::request::Parts;

/// The cookie that says the login route already sent this browser to the public URL.
pub(crate) const REDIRECTED_COOKIE: &str = "modelgates_host_redirect";

/// Whether the request carries [`REDIRECTED_COOKIE`].
pub(crate) fn was_redirected(parts: &Parts) -> bool {
    parts
        .headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .any(|pair| pair.trim().split('=').next() == Some(REDIRECTED_COOKIE))
}

/// The `Set-Cookie` of [`REDIRECTED_COOKIE`]: one minute, this login path only.
pub(crate) fn redirected_cookie(login_path: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!(
        "{REDIRECTED_COOKIE}=1; Path={login_path}; Max-Age=60; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

/// The public URL's authority and what the layer may conclude from a foreign host.
#[derive(Debug)]
pub(crate) struct PublicHost {
    /// `host[:port]` of the public URL, default port omitted, lowercase.
    authority: String,
    /// The public URL is on a loopback host: no proxy in front names the app.
    loopback: bool,
    default_port: &'static str,
}

impl PublicHost {
    /// The public host of `public_origin` (`scheme://host[:port]`, as `url` serialises an
    /// origin: default port omitted).
    pub(crate) fn new(public_origin: &str, loopback: bool) -> Self {
        let (scheme, authority) = public_origin
            .split_once("://")
            .unwrap_or(("http", public_origin));
        Self {
            authority: authority.to_ascii_lowercase(),
            loopback,
            default_port: if scheme == "https" { ":443" } else { ":80" },
        }
    }

    /// The browser's host when it is surely not the public URL's (see the module's rules).
    pub(crate) fn foreign(&self, parts: &Parts) -> Option<String> {
        let forwarded = parts
            .headers
            .get("x-forwarded-host")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .map(str::trim)
            .filter(|value| !value.is_empty());
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
        let public = PublicHost::new("http://localhost:3001", true);
        assert_eq!(
            public
                .foreign(&parts(&[("host", "127.0.0.1:3001")]))
                .as_deref(),
            Some("127.0.0.1:3001")
        );
        assert_eq!(
            public
                .foreign(&parts(&[("host", "localhost:3002")]))
                .as_deref(),
            Some("localhost:3002"),
            "another port is another origin"
        );
        assert_eq!(public.foreign(&parts(&[("host", "LOCALHOST:3001")])), None);
        assert_eq!(public.foreign(&parts(&[])), None, "no host: nothing to say");
    }

    #[test]
    fn the_redirect_is_marked_once() {
        assert!(!was_redirected(&parts(&[("cookie", "a=b")])));
        assert!(was_redirected(&parts(&[(
            "cookie",
            "a=b; modelgates_host_redirect=1"
        )])));
        let cookie = redirected_cookie("/app/login").unwrap();
        assert_eq!(
            cookie,
            "modelgates_host_redirect=1; Path=/app/login; Max-Age=60; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn behind_a_proxy_only_a_forwarded_host_is_believed() {
        let public = PublicHost::new("https://app.example", false);
        assert_eq!(
            public.foreign(&parts(&[("host", "127.0.0.1:3000")])),
            None,
            "a proxy that rewrites Host must not loop"
        );
        assert_eq!(
            public
                .foreign(&parts(&[
                    ("host", "127.0.0.1:3000"),
                    ("x-forwarded-host", "www.app.example")
                ]))
                .as_deref(),
            Some("www.app.example")
        );
        assert_eq!(
            public.foreign(&parts(&[("x-forwarded-host", "app.example:443")])),
            None,
            "the default port is the same origin"
        );
    }
}
