//! [`Resolved`]: a [`ModelGatesConfig`] checked and resolved once, when the layer is built, into
//! the only thing request code reads: every path with its prefix, every lifetime, redirect,
//! hook and error page, the cookies' specs and keys, the ModelGates client, and the guards of
//! the callback. The checks' rules are documented on [`ModelGatesConfig`].

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use modelgates_oauth_core::{ChallengeMethod, KeyRequest, ModelGatesClient, Url};

use crate::config::{
    ConfigError, CookieDomain, CookieName, CookieSecret, ModelGatesConfig, PublicUrl, RoutePath,
    SameSite,
};
use crate::context::SignInRoute;
use crate::cookies::{CookieSpec, KeyCookie};
use crate::flow::{Flow, FlowCookie, Paths, PublicHost, SpentFlows, Warned, is_safe_return_to};
use crate::limits::ExchangeGate;
use crate::linked::Mode;
use crate::stream_slots::StreamSlots;

/// The layer's resolved runtime state.
pub(crate) struct Resolved {
    /// What the sign-in routes read; signed-in requests read its key cookie, key lifetime
    /// and client too.
    pub(crate) flow: Flow,
    /// What a signed-out request's rejection needs of the layer.
    pub(crate) sign_in: &'static SignInRoute,
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
    let public = PublicUrl::new(&config.public_url)?;
    let public_url = public.url().clone();
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
    let (flow_spec, key_spec) = cookie_specs(&config, &public)?;
    let keys: Vec<cookie::Key> = std::iter::once(&config.secret)
        .chain(&config.previous_secrets)
        .map(CookieSecret::cookie_key)
        .collect();
    let public_origin: Arc<str> = public_url.origin().ascii_serialization().into();
    let client = client(&config, &public_url)?;
    let flow = Flow {
        auth_url: client.prepare_auth_url(&paths.callback_url_for("")),
        client,
        paths,
        public_host: PublicHost::new(&public_url),
        public_origin,
        flow_cookie: FlowCookie::new(flow_spec, &keys, config.flow_max_age),
        key_cookie: KeyCookie::new(key_spec, keys),
        flow_max_age: config.flow_max_age,
        key_max_age: config.key_max_age,
        challenge_method: config.challenge_method,
        spent: SpentFlows::new(config.flow_max_age, config.max_spent_flows),
        exchange_gate: ExchangeGate::new(&config.exchange_limits),
        client_key: config.exchange_limits.client_key.clone(),
        trusted_proxies: config.trusted_proxies.clone(),
        warned: Warned::default(),
        exchange_slots: tokio::sync::Semaphore::new(config.max_concurrent_exchanges),
        key_request: KeyRequest::new(config.key_limit, key_label),
        max_key_limit: config.max_key_limit,
        default_return_to: config.default_return_to,
        post_logout_redirect: config.post_logout_redirect,
        on_sign_in: config.on_sign_in,
        on_sign_out: config.on_sign_out,
        error_page: config.error_page,
        mode: if config.linked.is_some() {
            Mode::Linked
        } else {
            Mode::Login
        },
        app_user: config.linked,
    };
    let sign_in = SignInRoute {
        login: flow.paths.login.clone(),
        public_origin: flow.public_origin.clone(),
        mode: flow.mode,
    }
    .interned();
    Ok(Resolved {
        flow,
        sign_in,
        routes_registered: AtomicBool::new(false),
        known_mount: std::sync::OnceLock::new(),
        streams: Arc::new(StreamSlots::new(config.max_streams_per_session)),
    })
}

/// The three routes with the configured prefix, checked, and the callback URL.
fn resolve_paths(config: &ModelGatesConfig, public_url: &Url) -> Result<Paths, ConfigError> {
    let prefix = config.path_prefix.trim_end_matches('/');
    if !prefix.is_empty() {
        RoutePath::named("the path prefix", prefix)?;
    }
    let route = |what, path: &str| -> Result<String, ConfigError> {
        Ok(format!(
            "{prefix}{}",
            RoutePath::named(what, path)?.as_str()
        ))
    };
    let login = route("the login path", &config.login_path)?;
    let callback = route("the callback path", &config.callback_path)?;
    let logout_default = if config.linked.is_some() {
        "/disconnect"
    } else {
        "/logout"
    };
    let logout = route(
        "the logout path",
        config.logout_path.as_deref().unwrap_or(logout_default),
    )?;
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
    public: &PublicUrl,
) -> Result<(CookieSpec, CookieSpec), ConfigError> {
    let secure = public.is_https();
    let flow_name = CookieName::new(&config.flow_cookie_name)?.host_only(secure);
    let domain = match config.cookie_domain.as_deref() {
        None => None,
        Some(raw) => Some(cookie_domain(raw, public, &config.key_cookie_name)?),
    };
    let key_name = CookieName::new(&config.key_cookie_name)?;
    let key_name = match domain {
        None => key_name.host_only(secure),
        Some(_) => key_name.with_domain(secure),
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
        domain: domain.map(String::from),
        secure,
    };
    Ok((CookieSpec::host_only(flow_name, secure), key))
}

/// The key cookie's Domain, checked; a `__Host-` key cookie cannot have one.
fn cookie_domain(
    raw: &str,
    public: &PublicUrl,
    key_cookie_name: &str,
) -> Result<CookieDomain, ConfigError> {
    let domain = CookieDomain::new(raw, public)?;
    if key_cookie_name.starts_with("__Host-") {
        return Err(ConfigError::InvalidCookieDomain {
            domain: raw.to_owned(),
            reason: "a __Host- cookie cannot have a Domain; name the key cookie without __Host- \
                     (it gets __Secure- on https)",
        });
    }
    Ok(domain)
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

#[cfg(test)]
mod tests;
