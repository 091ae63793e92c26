//! [`Settings`]: a [`ModelGatesConfig`] checked and resolved once, when the layer is built,
//! into what every request reads: the ModelGates client, the cookie codec, the route paths
//! and the callback URL.

use std::sync::Arc;

use modelgates_oauth_core::{ModelGatesClient, Url};
use url::Host;

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
    /// The configuration as given, checked: lifetimes, redirects, challenge method, error page.
    pub(crate) config: ModelGatesConfig,
}

impl Settings {
    /// The layer's own route at `path`, if any.
    pub(crate) fn route(&self, path: &str) -> Option<Route> {
        if path == &*self.login_path {
            Some(Route::Login)
        } else if path == self.callback_path {
            Some(Route::Callback)
        } else if path == self.logout_path {
            Some(Route::Logout)
        } else {
            None
        }
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
    ] {
        if duration.is_zero() {
            return Err(ConfigError::ZeroDuration(what));
        }
    }
    let flow_name = cookie_name(&config.flow_cookie_name, secure)?;
    let key_name = cookie_name(&config.key_cookie_name, secure)?;
    if flow_name == key_name {
        return Err(ConfigError::InvalidCookieName(key_name));
    }
    let keys = std::iter::once(&config.secret)
        .chain(&config.previous_secrets)
        .map(CookieSecret::cookie_key)
        .collect();
    let client = ModelGatesClient::builder()
        .base_url(config.base_url.clone())
        .timeout(config.http_timeout)
        .user_agent(concat!("modelgates-axum/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let callback_url = public_url
        .join(&callback_path)
        .map_err(|_| ConfigError::InvalidPath {
            what: "the callback path",
            path: callback_path.clone(),
            reason: "it does not form a URL with the public URL",
        })?;
    Ok(Settings {
        client,
        codec: CookieCodec::new(keys, flow_name, key_name, secure),
        callback_url,
        login_path: login_path.into(),
        callback_path,
        logout_path,
        config,
    })
}

fn parse_public_url(raw: &str) -> Result<Url, ConfigError> {
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
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
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
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(public_url: &str) -> ModelGatesConfig {
        ModelGatesConfig::new(public_url, CookieSecret::generate())
    }

    #[test]
    fn https_public_urls_get_secure_host_cookies() {
        let settings = resolve(config("https://app.example")).unwrap();
        assert_eq!(settings.codec.key_name, "__Host-modelgates_key");
        assert_eq!(settings.codec.flow_name, "__Host-modelgates_flow");
        let local = resolve(config("http://localhost:3000")).unwrap();
        assert_eq!(local.codec.key_name, "modelgates_key");
        assert_eq!(
            local.callback_url.as_str(),
            "http://localhost:3000/callback"
        );
    }

    #[test]
    fn public_url_rules() {
        for bad in [
            "http://app.example",
            "https://app.example/app",
            "https://app.example/?a=1",
            "ftp://app.example",
            "app.example",
        ] {
            let error = resolve(config(bad)).err().unwrap();
            assert!(
                matches!(error, ConfigError::InvalidPublicUrl { .. }),
                "{bad}: {error}"
            );
        }
        assert!(resolve(config("http://127.0.0.1:8080")).is_ok());
        assert!(resolve(config("http://[::1]:8080")).is_ok());
    }

    #[test]
    fn paths_prefix_and_conflicts() {
        let settings = resolve(config("https://app.example").with_path_prefix("/auth/")).unwrap();
        assert_eq!(&*settings.login_path, "/auth/login");
        assert_eq!(
            settings.callback_url.as_str(),
            "https://app.example/auth/callback"
        );
        let dup = resolve(config("https://app.example").with_logout_path("/login"))
            .err()
            .unwrap();
        assert_eq!(dup, ConfigError::DuplicatePath("/login".into()));
        for bad in ["login", "//login", "/log in", "/login?x", "/"] {
            assert!(
                resolve(config("https://app.example").with_login_path(bad)).is_err(),
                "{bad}"
            );
        }
        assert!(
            resolve(config("https://app.example").with_default_return_to("//evil.example"))
                .is_err()
        );
        assert!(resolve(config("https://app.example").with_key_max_age(Duration::ZERO)).is_err());
    }

    #[test]
    fn insecure_base_url_is_refused() {
        let error =
            resolve(config("https://app.example").with_base_url("http://modelgates.example"))
                .err()
                .unwrap();
        assert!(matches!(error, ConfigError::Client(_)), "{error}");
        assert!(error.to_string().contains("use https"));
    }

    #[test]
    fn cookie_names() {
        let settings =
            resolve(config("https://app.example").with_cookie_names("f", "__Host-k")).unwrap();
        assert_eq!(settings.codec.flow_name, "__Host-f");
        assert_eq!(settings.codec.key_name, "__Host-k");
        assert!(resolve(config("https://app.example").with_cookie_names("a b", "k")).is_err());
        assert!(resolve(config("https://app.example").with_cookie_names("same", "same")).is_err());
    }
}
