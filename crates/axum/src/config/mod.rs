//! [`ModelGatesConfig`]: everything the layer needs, set with `with_*` methods or read from
//! `MODELGATES_*` environment variables ([`ModelGatesConfig::from_env`]), and checked once by
//! [`ModelGatesAuth::try_new`].
//!
//! The rules the checks apply:
//!
//! * The public URL is the app's origin as browsers see it (`https://app.example`, or
//!   `http://localhost:3000` in development). The callback URL is built from it and the callback
//!   path, never from `Host` or `X-Forwarded-*` headers. `http` is accepted only on a loopback
//!   host; a path, query or fragment is refused (mount under a path with
//!   [`ModelGatesConfig::with_path_prefix`]).
//! * When the public URL is `https`, cookies are `Secure` and their names carry the `__Host-`
//!   prefix, so no subdomain or plain-http page can plant or overwrite them.
//! * The cookie secret is at least 64 random bytes ([`CookieSecret`]). Previous secrets may be
//!   listed: cookies made under them are still accepted and re-issued under the newest.
//! * Route paths start with a single `/` and hold no query, fragment, space or backslash; the
//!   three routes differ; redirect targets are safe local paths; lifetimes and timeouts are
//!   longer than zero.
//!
//! # Cookies
//!
//! The layer sets two cookies, each resolved once from this configuration:
//!
//! * **Flow cookie** (between `/login` and `/callback`): the flow (its binding id, the PKCE
//!   verifier and method, `return_to`, the issue time) sealed with AES-256-GCM by oauth-core's
//!   [`FlowSealer`](crate::oauth_core::flow::FlowSealer), the cookie's name as associated data and a
//!   purpose tag inside, so no other value of ours can stand in for it; a proxy log or HAR file
//!   that records it together with a callback URL learns nothing it can redeem. It is checked
//!   (authenticity, then age, then the flow id) before any call to ModelGates, is single use,
//!   and lives the flow lifetime.
//! * **Key cookie**: the store's token, AES-256-GCM-encrypted with the cookie's name as
//!   associated data (the `cookie` crate's private format), or HMAC-signed and purpose-tagged
//!   for stores whose token is only an opaque id; it lives the key lifetime.
//! * Both are `HttpOnly`, `Path=/`, and `Secure` with a `__Host-` name on an https public URL.
//!   The flow cookie is `SameSite=Lax` (the callback is a top-level cross-site navigation,
//!   which `Strict` would break); the key cookie is `Lax` unless configured
//!   [`Strict`](SameSite::Strict). With a [cookie domain](ModelGatesConfig::with_cookie_domain) the key
//!   cookie carries it and a `__Secure-` name instead.
//! * **Rotation**: values are made with the newest secret and opened with any configured one
//!   ([`ModelGatesConfig::with_previous_secrets`]), newest first; a key cookie opened with an older secret
//!   is re-issued under the newest.
//! * Values longer than 4096 bytes are refused before any cryptography, and at most three
//!   cookies of one name are tried, so a header stuffed with thousands of them costs a few
//!   decryptions, not thousands. The `Cookie` header is read as bytes, pair by pair: a pair
//!   that is not ours is skipped whatever bytes it holds, so a sibling subdomain's
//!   `tracker=café` does not hide our cookies.
//!
//! [`ModelGatesAuth::try_new`]: crate::ModelGatesAuth::try_new

use std::time::Duration;

use modelgates_oauth_core::ChallengeMethod;
use modelgates_oauth_core::client::{
    DEFAULT_API_TIMEOUT, DEFAULT_BASE_URL, DEFAULT_STREAM_IDLE_TIMEOUT, DEFAULT_TIMEOUT,
};
pub use modelgates_oauth_core::key::SpendLimit;

use crate::flow::{self, ErrorPage};

mod checked;
mod cookies;
mod env;
mod error;
mod hooks;
mod secret;
mod spend;

pub use crate::limits::{
    ClientKey, DEFAULT_CLIENT_EXCHANGE_RATE, DEFAULT_GLOBAL_EXCHANGE_RATE, ExchangeLimits,
    RateLimit,
};
pub use checked::{CookieDomain, CookieName, PublicUrl, RoutePath};
pub use cookies::SameSite;
pub use spend::DEFAULT_MAX_KEY_LIMIT;

pub use crate::forwarded::{InvalidTrustedProxy, TrustedProxies};
pub use crate::store::DEFAULT_KEY_MAX_AGE;
pub use error::ConfigError;
pub use secret::{CookieSecret, MIN_SECRET_LEN};

/// The configuration of [`ModelGatesAuth`](crate::ModelGatesAuth).
///
/// ```
/// use std::time::Duration;
/// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig};
///
/// let config = ModelGatesConfig::new("https://app.example", CookieSecret::generate())
///     .with_base_url("https://modelgates.ai")
///     .with_path_prefix("/auth")
///     .with_default_return_to("/chat")
///     .with_key_max_age(Duration::from_secs(7 * 24 * 3600));
/// let layer = ModelGatesAuth::try_new(config).unwrap();
/// assert_eq!(layer.callback_url().as_str(), "https://app.example/auth/callback");
/// ```
///
#[derive(Clone, Debug)]
#[must_use = "a configuration does nothing until given to ModelGatesAuth::new"]
pub struct ModelGatesConfig {
    pub(crate) public_url: String,
    pub(crate) secret: CookieSecret,
    pub(crate) previous_secrets: Vec<CookieSecret>,
    pub(crate) base_url: String,
    pub(crate) path_prefix: String,
    pub(crate) login_path: String,
    pub(crate) callback_path: String,
    /// `None`: `/logout`, or `/disconnect` for linked accounts.
    pub(crate) logout_path: Option<String>,
    pub(crate) challenge_method: Option<ChallengeMethod>,
    /// `None`: the root of the router the layer sits in (`/`, or `/app` inside `nest("/app")`).
    pub(crate) default_return_to: Option<String>,
    /// `None`: as `default_return_to`.
    pub(crate) post_logout_redirect: Option<String>,
    pub(crate) key_max_age: Duration,
    pub(crate) flow_max_age: Duration,
    pub(crate) http_timeout: Duration,
    pub(crate) flow_cookie_name: String,
    pub(crate) key_cookie_name: String,
    pub(crate) error_page: Option<ErrorPage>,
    pub(crate) weak_pkce_allowed: bool,
    pub(crate) max_concurrent_exchanges: usize,
    pub(crate) exchange_limits: ExchangeLimits,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) max_spent_flows: usize,
    pub(crate) max_streams_per_session: usize,
    pub(crate) app_url: Option<String>,
    pub(crate) app_title: Option<String>,
    pub(crate) api_timeout: Duration,
    pub(crate) stream_idle_timeout: Duration,
    pub(crate) on_sign_in: Option<flow::OnSignIn>,
    pub(crate) on_sign_out: Option<flow::OnSignOut>,
    pub(crate) key_cookie_same_site: SameSite,
    pub(crate) cookie_domain: Option<String>,
    pub(crate) key_limit: Option<SpendLimit>,
    pub(crate) max_key_limit: SpendLimit,
    pub(crate) key_label: Option<String>,
    pub(crate) linked: Option<crate::linked::AppUser>,
}

/// Default time allowed between `/login` and `/callback`: 10 minutes, as long as a code lives.
pub const DEFAULT_FLOW_MAX_AGE: Duration = Duration::from_secs(600);
/// Default bound on key exchanges in flight at once, per layer.
pub const DEFAULT_MAX_CONCURRENT_EXCHANGES: usize = 256;
/// Default number of spent sign-in flows a layer remembers in its process (for stores that
/// keep none): 100,000.
pub const DEFAULT_MAX_SPENT_FLOWS: usize = 100_000;
/// Default number of streams one session may have open at once: 8.
pub const DEFAULT_MAX_STREAMS_PER_SESSION: usize = 8;

impl ModelGatesConfig {
    /// A configuration for an app served at `public_url`, with cookies keyed by `secret`.
    /// Everything else has its default; nothing is checked until the layer is built.
    pub fn new(public_url: impl Into<String>, secret: CookieSecret) -> Self {
        Self {
            public_url: public_url.into(),
            secret,
            previous_secrets: Vec::new(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            path_prefix: String::new(),
            login_path: "/login".to_owned(),
            callback_path: "/callback".to_owned(),
            logout_path: None,
            challenge_method: Some(ChallengeMethod::S256),
            default_return_to: None,
            post_logout_redirect: None,
            key_max_age: DEFAULT_KEY_MAX_AGE,
            flow_max_age: DEFAULT_FLOW_MAX_AGE,
            http_timeout: DEFAULT_TIMEOUT,
            flow_cookie_name: "modelgates_flow".to_owned(),
            key_cookie_name: "modelgates_key".to_owned(),
            error_page: None,
            weak_pkce_allowed: false,
            max_concurrent_exchanges: DEFAULT_MAX_CONCURRENT_EXCHANGES,
            exchange_limits: ExchangeLimits::default(),
            trusted_proxies: TrustedProxies::none(),
            max_spent_flows: DEFAULT_MAX_SPENT_FLOWS,
            max_streams_per_session: DEFAULT_MAX_STREAMS_PER_SESSION,
            app_url: None,
            app_title: None,
            api_timeout: DEFAULT_API_TIMEOUT,
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            on_sign_in: None,
            on_sign_out: None,
            key_cookie_same_site: SameSite::Lax,
            cookie_domain: None,
            key_limit: None,
            max_key_limit: DEFAULT_MAX_KEY_LIMIT,
            key_label: None,
            linked: None,
        }
    }

    /// ModelGates' origin (default `https://modelgates.ai`): `https`, or `http` on loopback
    /// for the emulator.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Older secrets whose cookies are still accepted; cookies they made are re-issued under
    /// the current secret. Drop a secret from this list once its cookies have expired.
    pub fn with_previous_secrets(
        mut self,
        secrets: impl IntoIterator<Item = CookieSecret>,
    ) -> Self {
        self.previous_secrets = secrets.into_iter().collect();
        self
    }

    /// The path of the sign-in route (default `/login`).
    pub fn with_login_path(mut self, path: impl Into<String>) -> Self {
        self.login_path = path.into();
        self
    }

    /// The path ModelGates redirects back to (default `/callback`).
    pub fn with_callback_path(mut self, path: impl Into<String>) -> Self {
        self.callback_path = path.into();
        self
    }

    /// The path of the sign-out route (default `/logout`, POST only; with
    /// [`Self::with_linked_accounts`], the disconnect route, default `/disconnect`).
    pub fn with_logout_path(mut self, path: impl Into<String>) -> Self {
        self.logout_path = Some(path.into());
        self
    }

    /// A prefix for all three routes, such as `/auth` for `/auth/login`, `/auth/callback` and
    /// `/auth/logout`.
    pub fn with_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = prefix.into();
        self
    }

    /// The PKCE challenge method (default S256, the only recommended one). `plain` also needs
    /// [`Self::allow_weak_pkce`].
    pub fn with_challenge_method(mut self, method: ChallengeMethod) -> Self {
        self.challenge_method = Some(method);
        self
    }

    /// Sends no PKCE challenge at all: ModelGates' weakest mode, where an intercepted code is
    /// enough to obtain a key. The per-flow binding still ties each callback to the browser
    /// that started it. Needs [`Self::allow_weak_pkce`]; use only when ModelGates requires it.
    pub fn without_pkce(mut self) -> Self {
        self.challenge_method = None;
        self
    }

    /// Accepts the `plain` challenge method or no PKCE at all, which the layer otherwise
    /// refuses at startup (environment: `MODELGATES_ALLOW_WEAK_PKCE=true`). The layer logs a
    /// loud warning at startup whenever a weak mode is in use.
    pub fn allow_weak_pkce(mut self) -> Self {
        self.weak_pkce_allowed = true;
        self
    }

    /// How many key exchanges may be in flight at once (default 256); a callback beyond that
    /// is answered 503 with `Retry-After: 1`, so neither the app nor ModelGates can be flooded
    /// through the callback route.
    pub fn with_max_concurrent_exchanges(mut self, limit: usize) -> Self {
        self.max_concurrent_exchanges = limit;
        self
    }

    /// The bounds on failed key exchanges, in all and per client (default: 20 per second,
    /// bursts of 50; 10 per minute per client, bursts of 5). A successful sign-in never counts;
    /// a client over its bound is answered 429 with `Retry-After` and nothing is sent. The rules
    /// are in [`ExchangeLimits`]' module. Behind a proxy, say which
    /// ([`Self::with_trusted_proxies`]), so that the client is told by its own address.
    pub fn with_exchange_limits(mut self, limits: ExchangeLimits) -> Self {
        self.exchange_limits = limits;
        self
    }

    /// The proxies whose forwarding headers (`Forwarded`, `X-Forwarded-For`, `-Proto`,
    /// `-Host`) the layer believes, for the client's address (the per-client bound, logs) and
    /// host (default: none; env `MODELGATES_TRUSTED_PROXIES`). Behind a reverse proxy, load
    /// balancer or CDN, name it: otherwise every sign-in counts as the proxy's, and the layer
    /// says so once in a warning. The rules are in [`TrustedProxies`]' docs.
    ///
    /// ```
    /// use modelgates_axum::config::TrustedProxies;
    /// use modelgates_axum::{CookieSecret, ModelGatesConfig};
    ///
    /// // nginx on the same machine.
    /// let config = ModelGatesConfig::new("https://app.example", CookieSecret::generate())
    ///     .with_trusted_proxies(TrustedProxies::parse("127.0.0.1, ::1").unwrap());
    /// # let _ = config;
    /// ```
    pub fn with_trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// How many spent sign-in flows this process remembers at most (default 100,000), for key
    /// stores that keep none (the cookie and memory stores; the database stores keep them
    /// themselves, for every instance). A flow is remembered its lifetime and never forgotten
    /// early: when the record is full, callbacks are answered 503 with `Retry-After` until the
    /// oldest expires. The default exchange rate bound fills at most 12,000 in a flow lifetime.
    pub fn with_max_spent_flows(mut self, max: usize) -> Self {
        self.max_spent_flows = max;
        self
    }

    /// How many streams ([`ModelGatesKey::stream_chat`](crate::ModelGatesKey::stream_chat),
    /// [`ModelGatesKey::stream_slot`](crate::ModelGatesKey::stream_slot)) one session may have
    /// open at once (default 8); one more is refused with 429 `too_many_streams`.
    pub fn with_max_streams_per_session(mut self, max: usize) -> Self {
        self.max_streams_per_session = max;
        self
    }

    /// Where to send the user after sign-in when `/login` got no valid `return_to`. Must be a
    /// local path, taken as it is (a nesting prefix is not added to it). Unset, it is the root
    /// of the router the layer is on: `/`, or `/app` for a layer inside `Router::nest("/app", …)`;
    /// the built-in error pages' "Home" link goes there too.
    pub fn with_default_return_to(mut self, path: impl Into<String>) -> Self {
        self.default_return_to = Some(path.into());
        self
    }

    /// Where to send the user after sign-out. Must be a local path, taken as it is. Unset, it
    /// is the default `return_to` (see [`with_default_return_to`](Self::with_default_return_to)).
    pub fn with_post_logout_redirect(mut self, path: impl Into<String>) -> Self {
        self.post_logout_redirect = Some(path.into());
        self
    }

    /// The cookie secrets, newest first: the current one, then the previous ones that still
    /// open older cookies ([`with_previous_secrets`](Self::with_previous_secrets)). A database
    /// store derives its key for sealing keys at rest from them.
    pub fn cookie_secrets(&self) -> impl Iterator<Item = &CookieSecret> {
        std::iter::once(&self.secret).chain(&self.previous_secrets)
    }

    /// How long a session lives: the key cookie's lifetime
    /// ([`with_key_max_age`](Self::with_key_max_age)), which a database store gives its rows.
    #[must_use]
    pub fn key_max_age(&self) -> Duration {
        self.key_max_age
    }

    /// How long the key cookie lasts (default 30 days).
    pub fn with_key_max_age(mut self, max_age: Duration) -> Self {
        self.key_max_age = max_age;
        self
    }

    /// How long a sign-in may take between `/login` and `/callback` (default 10 minutes).
    pub fn with_flow_max_age(mut self, max_age: Duration) -> Self {
        self.flow_max_age = max_age;
        self
    }

    /// The timeout of the key exchange (default 10 s). API calls have their own timeouts.
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// The total time an API call that is not a stream may take (default 10 minutes: a
    /// reasoning model may think that long).
    pub fn with_api_timeout(mut self, timeout: Duration) -> Self {
        self.api_timeout = timeout;
        self
    }

    /// The longest silence between two chunks of a streamed completion (default 60 s); a
    /// stream has no total timeout.
    pub fn with_stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = timeout;
        self
    }

    /// The app's URL, sent to ModelGates with every call as `HTTP-Referer` (default: the
    /// public URL). ModelGates asks local apps to use `http://localhost:3000` and production
    /// apps a public URL (their site or repository).
    pub fn with_app_url(mut self, url: impl Into<String>) -> Self {
        self.app_url = Some(url.into());
        self
    }

    /// The app's name, sent to ModelGates with every call as `X-Title` (default: none).
    pub fn with_app_title(mut self, title: impl Into<String>) -> Self {
        self.app_title = Some(title.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::SignInRejected;

    #[test]
    fn debug_hides_the_secret() {
        let config = ModelGatesConfig::new("https://app.example", CookieSecret::generate());
        let previous = CookieSecret::generate();
        let captured = String::from("a-value-the-hook-captured");
        let config = config
            .with_previous_secrets([previous.clone()])
            .with_on_sign_in(move |_| {
                let _ = &captured;
                async { Ok::<_, SignInRejected>(()) }
            });
        let printed = format!("{config:?}");
        assert!(printed.contains("CookieSecret(<redacted>)"), "{printed}");
        assert!(
            printed.contains("on_sign_in: Some(<app function>)"),
            "{printed}"
        );
        for secret in [config.secret.to_base64(), previous.to_base64()] {
            assert!(!printed.contains(&secret), "{printed}");
        }
        assert!(!printed.contains("a-value-the-hook-captured"), "{printed}");
    }
}
