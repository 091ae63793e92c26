//! [`Settings`]: a [`ModelGatesConfig`] checked and resolved once, when the layer is built,
//! into what every request reads: the ModelGates client, the cookie codec, the route paths,
//! the callback URL, and the two guards of the callback (the spent flows and the exchange
//! slots).
//!
//! The callback route is the callback path followed by one more path segment, the flow's
//! binding id (`/callback/<flow id>`): ModelGates is given that full URL as `callback_url`
//! and sends the browser back to it. A path segment rather than a query parameter, because it
//! survives whatever a provider does to the callback URL's query when it adds `code` to it.

use std::sync::Arc;
use std::time::Duration;

use modelgates_oauth_core::{ChallengeMethod, ModelGatesClient, Url};

use super::{ConfigError, CookieSecret, ModelGatesConfig};
use crate::cookies::CookieCodec;
use crate::return_to::is_safe_return_to;

/// Which of the layer's own routes a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Login,
    Callback,
    Logout,
}

/// Everything the layer needs, resolved and checked once.
pub(crate) struct Settings {
    pub(crate) client: ModelGatesClient,
    pub(crate) codec: CookieCodec,
    pub(crate) callback_url: Url,
    pub(crate) login_path: Arc<str>,
    pub(crate) callback_path: String,
    pub(crate) logout_path: String,
    /// The app's origin, such as `https://app.example`, for the same-origin checks.
    pub(crate) public_origin: String,
    /// The configuration as given, checked: lifetimes, redirects, challenge method, error page.
    pub(crate) config: ModelGatesConfig,
    /// Flow ids a callback has already been tried with, kept as long as a flow lives.
    pub(crate) spent_flows: moka::sync::Cache<String, ()>,
    /// One permit per key exchange in flight.
    pub(crate) exchange_slots: tokio::sync::Semaphore,
    /// Whether [`ModelGatesAuth::routes`](crate::ModelGatesAuth::routes) registered the
    /// layer's paths in a router, so that a nested router routes them to the layer.
    pub(crate) routes_registered: std::sync::atomic::AtomicBool,
}

/// How many spent flow ids are remembered at most (per layer): beyond that the oldest are
/// forgotten before their flows expire.
pub(crate) const MAX_SPENT_FLOWS: u64 = 100_000;

impl Settings {
    /// The layer's own route at `path`, if any.
    pub(crate) fn route(&self, path: &str) -> Option<Route> {
        if path == &*self.login_path {
            Some(Route::Login)
        } else if path
            .strip_prefix(&self.callback_path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            // Everything under the callback path is ours, so a malformed callback gets a
            // precise error instead of the app's 404.
            Some(Route::Callback)
        } else if path == self.logout_path {
            Some(Route::Logout)
        } else {
            None
        }
    }

    /// The flow id a callback path carries: the one segment after the callback path.
    pub(crate) fn flow_id_in<'p>(&self, path: &'p str) -> Option<&'p str> {
        let id = path.strip_prefix(&self.callback_path)?.strip_prefix('/')?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }

    /// The callback URL for one flow, for a layer mounted under `mount` (the path prefix a
    /// nesting router stripped; empty on the outermost router).
    pub(crate) fn callback_url_for(&self, mount: &str, flow_id: &str) -> Url {
        let mut url = self.callback_url.clone();
        if !mount.is_empty() {
            url.set_path(&format!("{mount}{}", self.callback_path));
        }
        url.path_segments_mut()
            .expect("an http(s) URL has a path")
            .push(flow_id);
        url
    }
}

/// Checks a configuration and resolves it into [`Settings`].
pub(crate) fn resolve(config: ModelGatesConfig) -> Result<Settings, ConfigError> {
    let public_url = parse_public_url(&config.public_url)?;
    let secure = public_url.scheme() == "https";
    let prefix = config.path_prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        check_path("the path prefix", prefix)?;
    }
    let login_path = format!(
        "{prefix}{}",
        check_path("the login path", &config.login_path)?
    );
    let callback_path = format!(
        "{prefix}{}",
        check_path("the callback path", &config.callback_path)?
    );
    let logout_path = format!(
        "{prefix}{}",
        check_path("the logout path", &config.logout_path)?
    );
    for (i, a) in [&login_path, &callback_path, &logout_path]
        .into_iter()
        .enumerate()
    {
        if [&login_path, &callback_path, &logout_path]
            .into_iter()
            .skip(i + 1)
            .any(|b| a == b)
        {
            return Err(ConfigError::DuplicatePath(a.clone()));
        }
    }
    for (what, target) in [
        ("the default return_to", &config.default_return_to),
        ("the post-logout redirect", &config.post_logout_redirect),
    ] {
        if !is_safe_return_to(target) {
            return Err(ConfigError::InvalidPath {
                what,
                path: target.clone(),
                reason: "it must be a local path starting with a single /",
            });
        }
    }
    for (what, duration) in [
        ("the key cookie lifetime", config.key_max_age),
        ("the flow lifetime", config.flow_max_age),
        ("the HTTP timeout", config.http_timeout),
        ("the API timeout", config.api_timeout),
        ("the stream idle timeout", config.stream_idle_timeout),
    ] {
        if duration.is_zero() {
            return Err(ConfigError::ZeroDuration(what));
        }
    }
    let flow_name = cookie_name(&config.flow_cookie_name, secure)?;
    let domain = check_domain(&config, &public_url)?;
    let key_name = match domain {
        None => cookie_name(&config.key_cookie_name, secure)?,
        Some(_) => domain_cookie_name(&config.key_cookie_name, secure)?,
    };
    if flow_name == key_name {
        return Err(ConfigError::InvalidCookieName(key_name));
    }
    if config.max_concurrent_exchanges == 0 {
        return Err(ConfigError::ZeroLimit(
            "the number of concurrent key exchanges",
        ));
    }
    check_pkce_mode(&config)?;
    let keys = std::iter::once(&config.secret)
        .chain(&config.previous_secrets)
        .map(CookieSecret::cookie_key)
        .collect();
    let mut client = ModelGatesClient::builder()
        .base_url(config.base_url.clone())
        .timeout(config.http_timeout)
        .api_timeout(config.api_timeout)
        .stream_idle_timeout(config.stream_idle_timeout)
        .user_agent(concat!("modelgates-axum/", env!("CARGO_PKG_VERSION")))
        .app_url(
            config
                .app_url
                .as_deref()
                .unwrap_or(public_url.as_str().trim_end_matches('/')),
        );
    if let Some(title) = &config.app_title {
        client = client.app_title(title);
    }
    let client = client.build()?;
    let callback_url = public_url
        .join(&callback_path)
        .map_err(|_| ConfigError::InvalidPath {
            what: "the callback path",
            path: callback_path.clone(),
            reason: "it does not form a URL with the public URL",
        })?;
    let same_site = match config.key_cookie_same_site {
        super::SameSite::Strict => cookie::SameSite::Strict,
        _ => cookie::SameSite::Lax,
    };
    let codec = CookieCodec::new(keys, flow_name, key_name, secure)
        .with_key_attributes(same_site, domain.map(str::to_owned));
    Ok(Settings {
        client,
        codec,
        callback_url,
        login_path: login_path.into(),
        callback_path,
        logout_path,
        public_origin: public_url.origin().ascii_serialization(),
        spent_flows: moka::sync::Cache::builder()
            .max_capacity(MAX_SPENT_FLOWS)
            .time_to_live(config.flow_max_age + Duration::from_secs(60))
            .build(),
        exchange_slots: tokio::sync::Semaphore::new(config.max_concurrent_exchanges),
        routes_registered: std::sync::atomic::AtomicBool::new(false),
        config,
    })
}

/// Refuses `plain` and "no PKCE" without the opt-in, and warns loudly when they are in use.
fn check_pkce_mode(config: &ModelGatesConfig) -> Result<(), ConfigError> {
    let weak = match config.challenge_method {
        Some(ChallengeMethod::S256) => return Ok(()),
        // `plain`, and any method ModelGates may add, is weaker than S256 until proven not.
        Some(other) => other.as_str(),
        None => "none",
    };
    if !config.weak_pkce_allowed {
        return Err(ConfigError::WeakPkceNotAllowed(weak));
    }
    let warning = format!(
        "WARNING: ModelGates sign-in uses the weak PKCE mode `{weak}`: a code intercepted \
         with its /auth URL can be redeemed by whoever intercepted it. Use S256 unless \
         ModelGates requires otherwise."
    );
    tracing::warn!("{warning}");
    eprintln!("{warning}");
    Ok(())
}

pub(crate) fn parse_public_url(raw: &str) -> Result<Url, ConfigError> {
    let invalid = |reason| ConfigError::InvalidPublicUrl {
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

/// Whether a URL's host is loopback: `localhost`, an address in `127.0.0.0/8`, or `::1`.
/// Read from the host's text, because URLs of non-special schemes (`postgres://`,
/// `redis://`) keep their host as an opaque string even when it is an address.
pub(crate) fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_path<'a>(what: &'static str, path: &'a str) -> Result<&'a str, ConfigError> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() > 1
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'?' | b'#' | b'\\'));
    if ok {
        Ok(path)
    } else {
        Err(ConfigError::InvalidPath {
            what,
            path: path.to_owned(),
            reason: "it must start with a single / and hold no query, fragment, space or backslash",
        })
    }
}

/// The cookie Domain, checked: a plain host name that the public URL's host is or is under.
fn check_domain<'c>(
    config: &'c ModelGatesConfig,
    public_url: &Url,
) -> Result<Option<&'c str>, ConfigError> {
    let Some(raw) = config.cookie_domain.as_deref() else {
        return Ok(None);
    };
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
    let host = public_url.host_str().unwrap_or_default();
    if !(host.eq_ignore_ascii_case(domain)
        || host
            .to_ascii_lowercase()
            .ends_with(&format!(".{}", domain.to_ascii_lowercase())))
    {
        return Err(invalid(
            "the public URL's host is not this domain or one of its subdomains",
        ));
    }
    if config.key_cookie_name.starts_with("__Host-") {
        return Err(invalid(
            "a __Host- cookie cannot have a Domain; name the key cookie without __Host- \
             (it gets __Secure- on https)",
        ));
    }
    Ok(Some(domain))
}

/// A cookie name for a cookie with a Domain: `__Secure-` on https, which allows one.
fn domain_cookie_name(name: &str, secure: bool) -> Result<String, ConfigError> {
    let bare = cookie_name(name, false)?;
    let bare = bare.strip_prefix("__Secure-").unwrap_or(&bare);
    Ok(if secure {
        format!("__Secure-{bare}")
    } else {
        bare.to_owned()
    })
}

fn cookie_name(name: &str, secure: bool) -> Result<String, ConfigError> {
    let bare = name.strip_prefix("__Host-").unwrap_or(name);
    if bare.is_empty()
        || !bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ConfigError::InvalidCookieName(name.to_owned()));
    }
    Ok(if secure {
        format!("__Host-{bare}")
    } else {
        bare.to_owned()
    })
}

#[cfg(test)]
mod tests;
