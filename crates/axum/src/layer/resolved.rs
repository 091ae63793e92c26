//! [`Resolved`]: a [`ModelGatesConfig`] checked and resolved once, when the layer is built, into
//! the only thing request code reads: every path with its prefix, every lifetime, redirect,
//! hook and error page, the cookies' specs and keys, the ModelGates client, and the guards of
//! the callback. The checks' rules are documented on [`ModelGatesConfig`].

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use modelgates_oauth_core::origin::parse_public_origin;
use modelgates_oauth_core::{ChallengeMethod, KeyRequest, ModelGatesClient, Url};

use crate::config::{ConfigError, CookieSecret, ModelGatesConfig, SameSite};
use crate::cookies::{CookieSpec, KeyCookie};
use crate::flow::{Flow, FlowCookie, Paths, PublicHost, SpentFlows, is_safe_return_to};
use crate::limits::ExchangeGate;
use crate::stream_slots::StreamSlots;

/// The layer's resolved runtime state.
pub(crate) struct Resolved {
    /// What the sign-in routes read; signed-in requests read its key cookie, key lifetime
    /// and client too.
    pub(crate) flow: Flow,
    /// Whether [`ModelGatesAuth::routes`](crate::ModelGatesAuth::routes) registered the
    /// layer's paths in a router, so that a nested router routes them to the layer.
    pub(crate) routes_registered: AtomicBool,
    /// The prefix [`ModelGatesAuth::nest`](crate::ModelGatesAuth::nest) put the layer under.
    pub(crate) known_mount: std::sync::OnceLock<String>,
    /// Each session's open streams.
    pub(crate) streams: Arc<StreamSlots>,
}

/// Checks a configuration and resolves it into the layer's [`Resolved`].
pub(crate) fn resolve(config: ModelGatesConfig) -> Result<Resolved, ConfigError> {
    let public_url = parse_public_origin(&config.public_url)?;
    let secure = public_url.scheme() == "https";
    let paths = resolve_paths(&config, &public_url)?;
    for (what, target) in [
        ("the default return_to", &config.default_return_to),
        ("the post-logout redirect", &config.post_logout_redirect),
    ] {
        let Some(target) = target else { continue };
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
    if config.max_concurrent_exchanges == 0 {
        return Err(ConfigError::ZeroLimit(
            "the number of concurrent key exchanges",
        ));
    }
    for (what, limit) in [
        (
            "the number of spent flows remembered",
            config.max_spent_flows,
        ),
        (
            "the number of streams per session",
            config.max_streams_per_session,
        ),
    ] {
        if limit == 0 {
            return Err(ConfigError::ZeroLimit(what));
        }
    }
    let limits = &config.exchange_limits;
    for (what, limit) in [
        ("the global exchange rate", limits.global),
        ("the per-client exchange rate", limits.per_client),
    ] {
        if limit.is_some_and(|limit| !limit.is_valid()) {
            return Err(ConfigError::ZeroLimit(what));
        }
    }
    check_pkce_mode(&config)?;
    if let Some(limit) = config
        .key_limit
        .filter(|limit| *limit > config.max_key_limit)
    {
        return Err(ConfigError::KeyLimitAboveMax {
            limit: limit.to_string(),
            max: config.max_key_limit.to_string(),
        });
    }
    let key_label = config
        .key_label
        .clone()
        .or_else(|| config.app_title.clone());
    let (flow_spec, key_spec) = cookie_specs(&config, &public_url, secure)?;
    let keys: Vec<cookie::Key> = std::iter::once(&config.secret)
        .chain(&config.previous_secrets)
        .map(CookieSecret::cookie_key)
        .collect();
    let public_origin: Arc<str> = public_url.origin().ascii_serialization().into();
    let flow = Flow {
        client: client(&config, &public_url)?,
        paths,
        public_host: PublicHost::new(&public_url),
        public_origin,
        flow_cookie: FlowCookie::new(flow_spec, &keys),
        key_cookie: KeyCookie::new(key_spec, keys),
        flow_max_age: config.flow_max_age,
        key_max_age: config.key_max_age,
        challenge_method: config.challenge_method,
        spent: SpentFlows::new(config.flow_max_age, config.max_spent_flows),
        exchange_gate: ExchangeGate::new(&config.exchange_limits),
        exchange_slots: tokio::sync::Semaphore::new(config.max_concurrent_exchanges),
        key_request: KeyRequest::new(config.key_limit, key_label),
        max_key_limit: config.max_key_limit,
        default_return_to: config.default_return_to,
        post_logout_redirect: config.post_logout_redirect,
        on_sign_in: config.on_sign_in,
        on_sign_out: config.on_sign_out,
        error_page: config.error_page,
    };
    Ok(Resolved {
        flow,
        routes_registered: AtomicBool::new(false),
        known_mount: std::sync::OnceLock::new(),
        streams: Arc::new(StreamSlots::new(config.max_streams_per_session)),
    })
}

/// The three routes with the configured prefix, checked, and the callback URL.
fn resolve_paths(config: &ModelGatesConfig, public_url: &Url) -> Result<Paths, ConfigError> {
    let prefix = config.path_prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        check_path("the path prefix", prefix)?;
    }
    let login = format!(
        "{prefix}{}",
        check_path("the login path", &config.login_path)?
    );
    let callback = format!(
        "{prefix}{}",
        check_path("the callback path", &config.callback_path)?
    );
    let logout = format!(
        "{prefix}{}",
        check_path("the logout path", &config.logout_path)?
    );
    if login == callback || login == logout {
        return Err(ConfigError::DuplicatePath(login));
    }
    if callback == logout {
        return Err(ConfigError::DuplicatePath(callback));
    }
    let callback_url = public_url
        .join(&callback)
        .map_err(|_| ConfigError::InvalidPath {
            what: "the callback path",
            path: callback.clone(),
            reason: "it does not form a URL with the public URL",
        })?;
    Ok(Paths {
        login: login.into(),
        callback,
        logout,
        callback_url,
    })
}

/// The flow and key cookies' specs: names checked and prefixed, attributes as configured.
fn cookie_specs(
    config: &ModelGatesConfig,
    public_url: &Url,
    secure: bool,
) -> Result<(CookieSpec, CookieSpec), ConfigError> {
    let flow_name = cookie_name(&config.flow_cookie_name, secure)?;
    let domain = check_domain(config, public_url)?;
    let key_name = match domain {
        None => cookie_name(&config.key_cookie_name, secure)?,
        Some(_) => domain_cookie_name(&config.key_cookie_name, secure)?,
    };
    if flow_name == key_name {
        return Err(ConfigError::InvalidCookieName(key_name));
    }
    let key = CookieSpec {
        name: key_name,
        same_site: match config.key_cookie_same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            _ => cookie::SameSite::Lax,
        },
        domain: domain.map(str::to_owned),
        secure,
    };
    Ok((CookieSpec::host_only(flow_name, secure), key))
}

/// The one pooled ModelGates client of the layer.
fn client(config: &ModelGatesConfig, public_url: &Url) -> Result<ModelGatesClient, ConfigError> {
    let mut client = ModelGatesClient::builder()
        .base_url(config.base_url.clone())
        .exchange_timeout(config.http_timeout)
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
    Ok(client.build()?)
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
