//! The checked values of a configuration: [`PublicUrl`], [`RoutePath`], [`CookieName`] and
//! [`CookieDomain`], each made only by a constructor that applies its rules (as oauth2-rs's
//! `AuthUrl::new` does), so a value of the type is a valid one.
//!
//! The setters of [`ModelGatesConfig`](super::ModelGatesConfig) take text (or these types,
//! which turn into it) and the layer applies these constructors when it is built
//! ([`ModelGatesAuth::try_new`](crate::ModelGatesAuth::try_new)); an app that reads its settings
//! from elsewhere can call them first to report a bad value where it found it.
//!
//! The rules:
//!
//! * A public URL is `https://host[:port]`, or `http://` on a loopback host (a local app),
//!   with no path, query, fragment or credentials (oauth-core's
//!   [`parse_public_origin`](crate::oauth_core::origin::parse_public_origin)).
//! * A route path starts with a single `/`, is longer than `/`, and holds only visible ASCII:
//!   no query (`?`), fragment (`#`), space or backslash.
//! * A cookie name is letters, digits, `-` and `_`, optionally after `__Host-` (dropped: the
//!   layer adds `__Host-` itself on https, or `__Secure-` to a cookie with a Domain).
//! * A cookie domain is a host name with a dot (`example.com`, a leading `.` ignored) that the
//!   public URL's host is or is under; a `__Host-` cookie cannot have one.

use std::fmt;

use modelgates_oauth_core::Url;
use modelgates_oauth_core::origin::parse_public_origin;

use super::ConfigError;

/// The app's public origin, checked: where browsers reach it, and the base of the callback URL.
///
/// ```
/// use modelgates_axum::config::PublicUrl;
///
/// assert!(PublicUrl::new("https://app.example").is_ok());
/// assert!(PublicUrl::new("http://localhost:3000").is_ok());
/// assert!(PublicUrl::new("http://app.example").is_err()); // plain http off loopback
/// assert!(PublicUrl::new("https://app.example/path").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(Url);

impl PublicUrl {
    /// Checks `raw` by the module's rules.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPublicUrl`], saying what is wrong.
    pub fn new(raw: &str) -> Result<Self, ConfigError> {
        Ok(Self(parse_public_origin(raw)?))
    }

    /// The origin as a URL.
    #[must_use]
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// Whether browsers reach the app over https, so its cookies are `Secure` and prefixed.
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
}

impl From<PublicUrl> for String {
    fn from(url: PublicUrl) -> Self {
        url.0.as_str().trim_end_matches('/').to_owned()
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

/// A path of one of the layer's routes (or their prefix), checked.
///
/// ```
/// use modelgates_axum::config::RoutePath;
///
/// assert_eq!(RoutePath::new("/signin").unwrap().as_str(), "/signin");
/// for bad in ["signin", "//evil.example", "/", "/a?b", "/a b", "/a\\b"] {
///     assert!(RoutePath::new(bad).is_err(), "{bad}");
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePath(String);

impl RoutePath {
    /// Checks `path` by the module's rules.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidPath`].
    pub fn new(path: &str) -> Result<Self, ConfigError> {
        Self::named("a route path", path)
    }

    /// As [`Self::new`], with the error naming `what` the path is for.
    pub(crate) fn named(what: &'static str, path: &str) -> Result<Self, ConfigError> {
        let valid = path.starts_with('/')
            && !path.starts_with("//")
            && path.len() > 1
            && path
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'\\'));
        if valid {
            Ok(Self(path.to_owned()))
        } else {
            Err(ConfigError::InvalidPath {
                what,
                path: path.to_owned(),
                reason: "it must start with a single / and hold no query, fragment, space or \
                         backslash",
            })
        }
    }

    /// The path.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<RoutePath> for String {
    fn from(path: RoutePath) -> Self {
        path.0
    }
}

/// A cookie's name as the app gives it, checked; the layer prefixes it on https.
///
/// ```
/// use modelgates_axum::config::CookieName;
///
/// assert_eq!(CookieName::new("__Host-session").unwrap().as_str(), "session");
/// assert!(CookieName::new("a b").is_err());
/// assert!(CookieName::new("").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieName(String);

impl CookieName {
    /// Checks `name` by the module's rules; a `__Host-` prefix is dropped.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidCookieName`].
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        let bare = name.strip_prefix("__Host-").unwrap_or(name);
        let valid = !bare.is_empty()
            && bare
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(Self(bare.to_owned()))
        } else {
            Err(ConfigError::InvalidCookieName(name.to_owned()))
        }
    }

    /// The name without any prefix.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name a host-only cookie gets: `__Host-` on https.
    pub(crate) fn host_only(&self, secure: bool) -> String {
        if secure {
            format!("__Host-{}", self.0)
        } else {
            self.0.clone()
        }
    }

    /// The name a cookie with a Domain gets: `__Secure-` on https (which allows one).
    pub(crate) fn with_domain(&self, secure: bool) -> String {
        let bare = self.0.strip_prefix("__Secure-").unwrap_or(&self.0);
        if secure {
            format!("__Secure-{bare}")
        } else {
            bare.to_owned()
        }
    }
}

impl From<CookieName> for String {
    fn from(name: CookieName) -> Self {
        name.0
    }
}

/// The Domain of the key cookie, checked against the public URL it must cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieDomain(String);

impl CookieDomain {
    /// Checks `raw` by the module's rules for an app served at `public_url`.
    ///
    /// ```
    /// use modelgates_axum::config::{CookieDomain, PublicUrl};
    ///
    /// let public = PublicUrl::new("https://app.example.com").unwrap();
    /// assert_eq!(CookieDomain::new(".example.com", &public).unwrap().as_str(), "example.com");
    /// assert!(CookieDomain::new("other.example", &public).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidCookieDomain`], saying why.
    pub fn new(raw: &str, public_url: &PublicUrl) -> Result<Self, ConfigError> {
        let invalid = |reason| ConfigError::InvalidCookieDomain {
            domain: raw.to_owned(),
            reason,
        };
        let domain = raw.strip_prefix('.').unwrap_or(raw);
        let well_formed = !domain.is_empty()
            && domain.contains('.')
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !well_formed {
            return Err(invalid("use a host name such as example.com"));
        }
        let host = public_url.url().host_str().unwrap_or_default();
        let covered = host.eq_ignore_ascii_case(domain)
            || host
                .to_ascii_lowercase()
                .ends_with(&format!(".{}", domain.to_ascii_lowercase()));
        if !covered {
            return Err(invalid(
                "the public URL's host is not this domain or one of its subdomains",
            ));
        }
        Ok(Self(domain.to_owned()))
    }

    /// The domain, without a leading dot.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<CookieDomain> for String {
    fn from(domain: CookieDomain) -> Self {
        domain.0
    }
}
