//! [`ModelGatesConfig`]: everything the layer needs, set with `with_*` methods or read from
//! `MODELGATES_*` environment variables, and checked once by [`ModelGatesAuth::try_new`].
//!
//! The rules this module applies:
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
//!
//! [`ModelGatesAuth::try_new`]: crate::ModelGatesAuth::try_new

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use modelgates_oauth_core::{
    ChallengeMethod, ClientConfigError, DEFAULT_BASE_URL, DEFAULT_TIMEOUT,
};
use zeroize::Zeroizing;

use crate::error::ErrorPage;

/// The shortest cookie secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 64;

/// How to make a good secret, quoted by every secret error.
const MAKE_A_SECRET: &str = "make one with `openssl rand -base64 64`";

/// The key material cookies are signed and encrypted with: at least 64 random bytes.
///
/// `Debug` redacts it; it is wiped from memory on drop.
///
/// ```
/// use modelgates_axum::CookieSecret;
///
/// let secret = CookieSecret::generate();
/// let again = CookieSecret::from_base64(&secret.to_base64()).unwrap();
/// assert_eq!(format!("{again:?}"), "CookieSecret(<redacted>)");
/// assert!(CookieSecret::from_base64("c2hvcnQ=").is_err()); // too short
/// ```
#[derive(Clone)]
pub struct CookieSecret(Zeroizing<Vec<u8>>);

impl CookieSecret {
    /// Reads a secret from base64 (standard or URL-safe, padded or not).
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretNotBase64`] or [`ConfigError::SecretTooShort`], whose messages say
    /// how to make a good one.
    pub fn from_base64(encoded: &str) -> Result<Self, ConfigError> {
        let encoded = encoded.trim();
        let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(encoded).ok())
            .ok_or(ConfigError::SecretNotBase64)?;
        Self::from_bytes(bytes)
    }

    /// Uses raw bytes as the secret.
    ///
    /// # Errors
    ///
    /// [`ConfigError::SecretTooShort`] below 64 bytes.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, ConfigError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_LEN {
            return Err(ConfigError::SecretTooShort(bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// 64 fresh bytes from the operating system's random generator. A server using a
    /// generated secret signs everyone out whenever it restarts.
    #[must_use]
    pub fn generate() -> Self {
        Self(Zeroizing::new(
            modelgates_oauth_core::random_bytes::<64>().to_vec(),
        ))
    }

    /// The secret as standard base64, to store it in `MODELGATES_COOKIE_SECRET`.
    #[must_use]
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_slice())
    }

    /// The raw secret, for key derivation inside this crate.
    #[cfg_attr(
        not(any(feature = "postgres", feature = "sqlite", feature = "redis")),
        allow(dead_code)
    )]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub(crate) fn cookie_key(&self) -> cookie::Key {
        // `Key::from` takes the first 64 bytes: 32 to sign, 32 to encrypt.
        cookie::Key::from(&self.0[..MIN_SECRET_LEN])
    }
}

impl fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSecret(<redacted>)")
    }
}

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
#[derive(Clone)]
#[must_use = "a configuration does nothing until given to ModelGatesAuth::new"]
pub struct ModelGatesConfig {
    pub(crate) public_url: String,
    pub(crate) secret: CookieSecret,
    pub(crate) previous_secrets: Vec<CookieSecret>,
    pub(crate) base_url: String,
    pub(crate) path_prefix: String,
    pub(crate) login_path: String,
    pub(crate) callback_path: String,
    pub(crate) logout_path: String,
    pub(crate) challenge_method: Option<ChallengeMethod>,
    pub(crate) default_return_to: String,
    pub(crate) post_logout_redirect: String,
    pub(crate) key_max_age: Duration,
    pub(crate) flow_max_age: Duration,
    pub(crate) http_timeout: Duration,
    pub(crate) flow_cookie_name: String,
    pub(crate) key_cookie_name: String,
    pub(crate) error_page: Option<ErrorPage>,
}

impl fmt::Debug for ModelGatesConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelGatesConfig")
            .field("public_url", &self.public_url)
            .field("secret", &self.secret)
            .field("previous_secrets", &self.previous_secrets.len())
            .field("base_url", &self.base_url)
            .field("path_prefix", &self.path_prefix)
            .field("login_path", &self.login_path)
            .field("callback_path", &self.callback_path)
            .field("logout_path", &self.logout_path)
            .field("challenge_method", &self.challenge_method)
            .field("default_return_to", &self.default_return_to)
            .field("post_logout_redirect", &self.post_logout_redirect)
            .field("key_max_age", &self.key_max_age)
            .field("flow_max_age", &self.flow_max_age)
            .field("http_timeout", &self.http_timeout)
            .field("flow_cookie_name", &self.flow_cookie_name)
            .field("key_cookie_name", &self.key_cookie_name)
            .field("custom_error_page", &self.error_page.is_some())
            .finish()
    }
}

/// Default key cookie lifetime: 30 days.
pub const DEFAULT_KEY_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default time allowed between `/login` and `/callback`: 10 minutes, as long as a code lives.
pub const DEFAULT_FLOW_MAX_AGE: Duration = Duration::from_secs(600);

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
            logout_path: "/logout".to_owned(),
            challenge_method: Some(ChallengeMethod::S256),
            default_return_to: "/".to_owned(),
            post_logout_redirect: "/".to_owned(),
            key_max_age: DEFAULT_KEY_MAX_AGE,
            flow_max_age: DEFAULT_FLOW_MAX_AGE,
            http_timeout: DEFAULT_TIMEOUT,
            flow_cookie_name: "modelgates_flow".to_owned(),
            key_cookie_name: "modelgates_key".to_owned(),
            error_page: None,
        }
    }

    /// Reads the configuration from the environment:
    ///
    /// | variable | meaning | default |
    /// | --- | --- | --- |
    /// | `MODELGATES_PUBLIC_URL` | the app's public origin | required |
    /// | `MODELGATES_COOKIE_SECRET` | base64 of at least 64 random bytes | generated, with a warning, for a loopback `http` public URL only |
    /// | `MODELGATES_PREVIOUS_COOKIE_SECRETS` | older secrets, comma-separated, still accepted | none |
    /// | `MODELGATES_BASE_URL` | ModelGates' origin | `https://modelgates.ai` |
    /// | `MODELGATES_CHALLENGE_METHOD` | `S256`, `plain` or `none` | `S256` |
    /// | `MODELGATES_HTTP_TIMEOUT_SECS` | timeout of calls to ModelGates | `10` |
    /// | `MODELGATES_KEY_MAX_AGE_SECS` | lifetime of the key cookie | `2592000` (30 days) |
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the variable and the fix.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any lookup function, for tests and for other sources of settings.
    ///
    /// # Errors
    ///
    /// As [`Self::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let public_url = get("MODELGATES_PUBLIC_URL").ok_or(ConfigError::MissingVar {
            name: "MODELGATES_PUBLIC_URL",
            hint: "set it to the app's public origin, such as https://app.example or http://localhost:3000",
        })?;
        let secret = match get("MODELGATES_COOKIE_SECRET") {
            Some(encoded) => CookieSecret::from_base64(&encoded)
                .map_err(|e| e.for_var("MODELGATES_COOKIE_SECRET"))?,
            None => development_secret(&public_url)?,
        };
        let mut config = Self::new(public_url, secret);
        if let Some(list) = get("MODELGATES_PREVIOUS_COOKIE_SECRETS") {
            for encoded in list.split(',').filter(|s| !s.trim().is_empty()) {
                let previous = CookieSecret::from_base64(encoded)
                    .map_err(|e| e.for_var("MODELGATES_PREVIOUS_COOKIE_SECRETS"))?;
                config.previous_secrets.push(previous);
            }
        }
        if let Some(base_url) = get("MODELGATES_BASE_URL") {
            config.base_url = base_url;
        }
        if let Some(method) = get("MODELGATES_CHALLENGE_METHOD") {
            config.challenge_method = match method.trim() {
                "none" => None,
                other => Some(other.parse().map_err(|_| ConfigError::InvalidVar {
                    name: "MODELGATES_CHALLENGE_METHOD",
                    reason: "use S256 (recommended), plain or none".to_owned(),
                })?),
            };
        }
        if let Some(secs) = get("MODELGATES_HTTP_TIMEOUT_SECS") {
            config.http_timeout = parse_secs("MODELGATES_HTTP_TIMEOUT_SECS", &secs)?;
        }
        if let Some(secs) = get("MODELGATES_KEY_MAX_AGE_SECS") {
            config.key_max_age = parse_secs("MODELGATES_KEY_MAX_AGE_SECS", &secs)?;
        }
        Ok(config)
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

    /// The path of the sign-out route (default `/logout`, POST only).
    pub fn with_logout_path(mut self, path: impl Into<String>) -> Self {
        self.logout_path = path.into();
        self
    }

    /// A prefix for all three routes, such as `/auth` for `/auth/login`, `/auth/callback` and
    /// `/auth/logout`.
    pub fn with_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = prefix.into();
        self
    }

    /// The PKCE challenge method (default S256, the only recommended one).
    pub fn with_challenge_method(mut self, method: ChallengeMethod) -> Self {
        self.challenge_method = Some(method);
        self
    }

    /// Sends no PKCE challenge at all: ModelGates' weakest mode, where an intercepted code is
    /// enough to obtain a key and nothing binds the callback to the browser that started the
    /// sign-in except the flow cookie. Use only when ModelGates requires it.
    pub fn without_pkce(mut self) -> Self {
        self.challenge_method = None;
        self
    }

    /// Where to send the user after sign-in when `/login` got no valid `return_to`
    /// (default `/`). Must be a local path.
    pub fn with_default_return_to(mut self, path: impl Into<String>) -> Self {
        self.default_return_to = path.into();
        self
    }

    /// Where to send the user after sign-out (default `/`). Must be a local path.
    pub fn with_post_logout_redirect(mut self, path: impl Into<String>) -> Self {
        self.post_logout_redirect = path.into();
        self
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

    /// The timeout of each call to ModelGates (default 10 s).
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// The cookie names (default `modelgates_flow` and `modelgates_key`). On an https public
    /// URL the `__Host-` prefix is added when missing.
    pub fn with_cookie_names(mut self, flow: impl Into<String>, key: impl Into<String>) -> Self {
        self.flow_cookie_name = flow.into();
        self.key_cookie_name = key.into();
        self
    }

    /// Replaces the HTML error page. The function gets the error (its status, a stable code
    /// and a message safe to show) and returns the response; the layer then sets the error's
    /// status and adds its own headers and cookie changes. JSON clients keep the JSON error.
    pub fn with_error_page<F>(mut self, page: F) -> Self
    where
        F: Fn(&crate::AuthError) -> http::Response<axum_core::body::Body> + Send + Sync + 'static,
    {
        self.error_page = Some(Arc::new(page));
        self
    }
}

fn development_secret(public_url: &str) -> Result<CookieSecret, ConfigError> {
    let is_local_http = url::Url::parse(public_url)
        .is_ok_and(|url| url.scheme() == "http" && modelgates_oauth_core::is_loopback(&url));
    if !is_local_http {
        return Err(ConfigError::MissingVar {
            name: "MODELGATES_COOKIE_SECRET",
            hint: "set it to base64 of at least 64 random bytes (make one with \
                   `openssl rand -base64 64`); a secret is generated only for http://localhost",
        });
    }
    tracing::warn!(
        "MODELGATES_COOKIE_SECRET is not set: using a random secret for this run only. \
         Every restart signs all users out. Set it to the output of `openssl rand -base64 64`."
    );
    Ok(CookieSecret::generate())
}

fn parse_secs(name: &'static str, value: &str) -> Result<Duration, ConfigError> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| ConfigError::InvalidVar {
            name,
            reason: format!("`{value}` is not a positive whole number of seconds"),
        })
}

/// A configuration that cannot work. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required environment variable is not set.
    #[error("{name} is not set: {hint}")]
    MissingVar {
        /// The variable.
        name: &'static str,
        /// How to set it.
        hint: &'static str,
    },
    /// An environment variable has a value that cannot be used.
    #[error("{name} is invalid: {reason}")]
    InvalidVar {
        /// The variable.
        name: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The cookie secret is not base64.
    #[error("the cookie secret is not valid base64; {MAKE_A_SECRET}")]
    SecretNotBase64,
    /// The cookie secret is shorter than 64 bytes.
    #[error("the cookie secret has {0} bytes, at least 64 are needed; {MAKE_A_SECRET}")]
    SecretTooShort(usize),
    /// The public URL cannot serve as the app's origin.
    #[error("invalid public URL `{url}`: {reason}")]
    InvalidPublicUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A route path or redirect target is not a usable local path.
    #[error("invalid path `{path}` for {what}: {reason}")]
    InvalidPath {
        /// Which setting.
        what: &'static str,
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two routes share a path.
    #[error("the login, callback and logout paths must differ; `{0}` is used twice")]
    DuplicatePath(String),
    /// A cookie name is not a valid cookie token.
    #[error("invalid cookie name `{0}`: use letters, digits, `-` and `_`")]
    InvalidCookieName(String),
    /// A lifetime or timeout is zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// The ModelGates base URL or the HTTP client is unusable.
    #[error(transparent)]
    Client(#[from] ClientConfigError),
}

impl ConfigError {
    fn for_var(self, name: &'static str) -> Self {
        Self::InvalidVar {
            name,
            reason: self.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn secret_must_be_long_enough_and_says_how_to_make_one() {
        let short = CookieSecret::from_bytes(vec![1; 63]).unwrap_err();
        assert_eq!(short, ConfigError::SecretTooShort(63));
        assert!(short.to_string().contains("openssl rand -base64 64"));
        assert!(CookieSecret::from_bytes(vec![1; 64]).is_ok());
        assert_eq!(
            CookieSecret::from_base64("!!!").unwrap_err(),
            ConfigError::SecretNotBase64
        );
        let secret = CookieSecret::generate();
        let url_safe = URL_SAFE_NO_PAD.encode(secret.0.as_slice());
        assert!(CookieSecret::from_base64(&url_safe).is_ok());
    }

    #[test]
    fn from_env_reads_every_variable() {
        let secret = CookieSecret::generate().to_base64();
        let old = CookieSecret::generate().to_base64();
        let previous = format!("{old},{}", CookieSecret::generate().to_base64());
        let config = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", &secret),
            ("MODELGATES_PREVIOUS_COOKIE_SECRETS", &previous),
            ("MODELGATES_BASE_URL", "http://127.0.0.1:8090"),
            ("MODELGATES_CHALLENGE_METHOD", "plain"),
            ("MODELGATES_HTTP_TIMEOUT_SECS", "3"),
            ("MODELGATES_KEY_MAX_AGE_SECS", "60"),
        ]))
        .unwrap();
        assert_eq!(config.public_url, "https://app.example");
        assert_eq!(config.previous_secrets.len(), 2);
        assert_eq!(config.base_url, "http://127.0.0.1:8090");
        assert_eq!(config.challenge_method, Some(ChallengeMethod::Plain));
        assert_eq!(config.http_timeout, Duration::from_secs(3));
        assert_eq!(config.key_max_age, Duration::from_secs(60));

        let none = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", &secret),
            ("MODELGATES_CHALLENGE_METHOD", "none"),
        ]))
        .unwrap();
        assert_eq!(none.challenge_method, None);
    }

    #[test]
    fn from_env_errors_name_the_variable_and_the_fix() {
        let missing = ModelGatesConfig::from_lookup(lookup(&[])).unwrap_err();
        assert!(missing.to_string().contains("MODELGATES_PUBLIC_URL"));

        let production = ModelGatesConfig::from_lookup(lookup(&[(
            "MODELGATES_PUBLIC_URL",
            "https://app.example",
        )]))
        .unwrap_err();
        assert!(
            production.to_string().contains("MODELGATES_COOKIE_SECRET"),
            "{production}"
        );
        assert!(production.to_string().contains("openssl rand"));

        let short = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", "c2hvcnQ="),
        ]))
        .unwrap_err();
        assert!(
            short
                .to_string()
                .starts_with("MODELGATES_COOKIE_SECRET is invalid"),
            "{short}"
        );
        assert!(short.to_string().contains("at least 64"));

        let secret = CookieSecret::generate().to_base64();
        let method = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", &secret),
            ("MODELGATES_CHALLENGE_METHOD", "S512"),
        ]))
        .unwrap_err();
        assert!(method.to_string().contains("MODELGATES_CHALLENGE_METHOD"));

        let timeout = ModelGatesConfig::from_lookup(lookup(&[
            ("MODELGATES_PUBLIC_URL", "https://app.example"),
            ("MODELGATES_COOKIE_SECRET", &secret),
            ("MODELGATES_HTTP_TIMEOUT_SECS", "soon"),
        ]))
        .unwrap_err();
        assert!(timeout.to_string().contains("MODELGATES_HTTP_TIMEOUT_SECS"));
    }

    #[test]
    fn development_generates_a_secret_for_localhost_only() {
        assert!(
            ModelGatesConfig::from_lookup(lookup(&[(
                "MODELGATES_PUBLIC_URL",
                "http://localhost:3000"
            )]))
            .is_ok()
        );
        assert!(
            ModelGatesConfig::from_lookup(lookup(&[(
                "MODELGATES_PUBLIC_URL",
                "http://app.example"
            )]))
            .is_err()
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = ModelGatesConfig::new("https://app.example", CookieSecret::generate());
        let printed = format!("{config:?}");
        assert!(printed.contains("CookieSecret(<redacted>)"));
    }
}
