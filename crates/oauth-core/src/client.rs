//! [`ModelGatesClient`]: the pooled HTTP clients for every call to one ModelGates origin.
//!
//! The rules this module applies:
//!
//! * The base URL is `https`, or `http` only when its host is loopback (`localhost`,
//!   `127.0.0.0/8`, `[::1]`): keys and verifiers never cross a network in clear text.
//! * The base URL is an origin, optionally with a path prefix; queries and fragments are refused.
//! * The HTTP clients are built once and shared by clones (connection pooling), one per kind
//!   of call, because their timeouts differ: the **key exchange** has a short total timeout
//!   (10 s); **API calls** (completions, key info, models) a total timeout of minutes (10 min),
//!   since a reasoning model may think that long; **streams** no total timeout but an idle
//!   timeout between chunks (60 s). All have a connect timeout (10 s).
//! * Redirects are never followed, so a key exchange cannot be bounced to another host.
//! * Every call carries the app's attribution, as OpenRouter-style gateways read it:
//!   `HTTP-Referer` (the app's URL) and `X-Title` (its name), when configured.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::origin::is_loopback;

/// ModelGates' public origin, the default base URL.
pub const DEFAULT_BASE_URL: &str = "https://modelgates.ai";

/// The total time a key exchange may take unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The total time an API call may take unless configured otherwise.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(600);

/// The longest silence between two chunks of a stream unless configured otherwise.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The time a connection may take to open unless configured otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one ModelGates origin: builds `/auth` URLs, exchanges codes, and calls the
/// API with a user's key.
///
/// Cloning is cheap and shares the connection pool.
///
/// ```
/// use std::time::Duration;
/// use modelgates_oauth_core::ModelGatesClient;
///
/// let client = ModelGatesClient::builder()
///     .base_url("http://127.0.0.1:8090")
///     .exchange_timeout(Duration::from_secs(5))
///     .build()
///     .unwrap();
/// assert_eq!(client.base_url().as_str(), "http://127.0.0.1:8090/");
///
/// // Clear text to a remote host is refused.
/// assert!(ModelGatesClient::builder().base_url("http://example.com").build().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct ModelGatesClient {
    pub(crate) inner: Arc<ClientInner>,
}

#[derive(Debug)]
pub(crate) struct ClientInner {
    /// The key exchange: a short total timeout.
    pub(crate) http_auth: reqwest::Client,
    /// API calls: a total timeout of minutes.
    pub(crate) http_api: reqwest::Client,
    /// Streams: an idle timeout between chunks, no total timeout.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) http_stream: reqwest::Client,
    pub(crate) stream_idle_timeout: Duration,
    /// Which failed API calls are sent again.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) api_retries: crate::retry::ApiRetries,
    pub(crate) base_url: Url,
    pub(crate) keys_url: Url,
    pub(crate) auth_url: Url,
    pub(crate) key_info_url: Url,
    pub(crate) models_url: Url,
    pub(crate) user_models_url: Url,
    /// `{base}api/v1`, the OpenAI-compatible API's base, without a trailing slash.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    pub(crate) api_base: String,
}

impl ModelGatesClient {
    /// A client for `https://modelgates.ai` with the default timeout.
    ///
    /// # Errors
    ///
    /// [`ClientConfigError::HttpClient`] if the TLS backend cannot start.
    pub fn new() -> Result<Self, ClientConfigError> {
        Self::builder().build()
    }

    /// A builder to set the base URL and timeout.
    pub fn builder() -> ModelGatesClientBuilder {
        ModelGatesClientBuilder::default()
    }

    /// The longest silence allowed between two chunks of a stream.
    #[must_use]
    pub fn stream_idle_timeout(&self) -> Duration {
        self.inner.stream_idle_timeout
    }

    /// The validated base URL, always ending in `/`.
    #[must_use]
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// Where the user sees, limits or revokes `key` on ModelGates:
    /// `{base URL}keys/{lowercase hex SHA-256 of the key}`. The key itself never goes in a
    /// URL.
    ///
    /// ```
    /// use modelgates_oauth_core::{ApiKey, ModelGatesClient};
    ///
    /// let client = ModelGatesClient::new().unwrap();
    /// let url = client.manage_url(&ApiKey::new("sk-mg-v1-example"));
    /// assert!(url.starts_with("https://modelgates.ai/keys/"));
    /// assert_eq!(url.len(), "https://modelgates.ai/keys/".len() + 64);
    /// ```
    #[must_use]
    pub fn manage_url(&self, key: &crate::ApiKey) -> String {
        use sha2::{Digest as _, Sha256};
        use std::fmt::Write as _;
        let digest = Sha256::digest(key.expose_secret().as_bytes());
        let mut url = self.inner.base_url.to_string();
        url.push_str("keys/");
        for byte in digest {
            let _ = write!(url, "{byte:02x}");
        }
        url
    }
}

/// Builds a [`ModelGatesClient`]. Made by [`ModelGatesClient::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build() is called"]
pub struct ModelGatesClientBuilder {
    base_url: String,
    timeout: Duration,
    api_timeout: Duration,
    stream_idle_timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
    app_url: Option<String>,
    app_title: Option<String>,
    api_retries: crate::retry::ApiRetries,
}

impl Default for ModelGatesClientBuilder {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: DEFAULT_TIMEOUT,
            api_timeout: DEFAULT_API_TIMEOUT,
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            user_agent: concat!("modelgates-oauth-core/", env!("CARGO_PKG_VERSION")).to_owned(),
            app_url: None,
            app_title: None,
            api_retries: crate::retry::ApiRetries::default(),
        }
    }
}

impl ModelGatesClientBuilder {
    /// The ModelGates origin (default `https://modelgates.ai`). Checked by [`Self::build`].
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The total time a key exchange may take, connection included (default 10 s). It bounds
    /// only the exchange (and ModelGates' own small endpoints); API calls have
    /// [`Self::api_timeout`] and streams [`Self::stream_idle_timeout`].
    pub fn exchange_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The old name of [`Self::exchange_timeout`], which says what it bounds.
    #[deprecated(
        since = "0.1.0",
        note = "renamed `exchange_timeout`: it bounds only the key exchange"
    )]
    pub fn timeout(self, timeout: Duration) -> Self {
        self.exchange_timeout(timeout)
    }

    /// The total time an API call that is not a stream may take (default 10 minutes).
    pub fn api_timeout(mut self, timeout: Duration) -> Self {
        self.api_timeout = timeout;
        self
    }

    /// The longest silence between two chunks of a stream (default 60 s); a stream has no
    /// total timeout.
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = timeout;
        self
    }

    /// The time a connection may take to open, for every kind of call (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The app's URL, sent with every call as `HTTP-Referer`: ModelGates asks apps to
    /// identify themselves so. For a local app use `http://localhost:3000`; in production a
    /// public URL (the app's site or its repository).
    pub fn app_url(mut self, app_url: impl Into<String>) -> Self {
        self.app_url = Some(app_url.into());
        self
    }

    /// The app's name, sent with every call as `X-Title`.
    pub fn app_title(mut self, app_title: impl Into<String>) -> Self {
        self.app_title = Some(app_title.into());
        self
    }

    /// Which failed calls of the OpenAI-compatible API are sent again (default
    /// [`ApiRetries::default`](crate::retry::ApiRetries::default): a 429 asking to wait at most 5 s
    /// and connections that could not be opened, at most twice; never a 5xx).
    pub fn api_retries(mut self, retries: crate::retry::ApiRetries) -> Self {
        self.api_retries = retries;
        self
    }

    /// The `User-Agent` sent with every call.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Validates the base URL and builds the pooled HTTP client.
    ///
    /// # Errors
    ///
    /// [`ClientConfigError`] when the base URL is malformed, not https on a non-loopback host,
    /// carries a query or fragment, or the HTTP client cannot be built.
    pub fn build(self) -> Result<ModelGatesClient, ClientConfigError> {
        let base_url = parse_base_url(&self.base_url)?;
        if base_url.scheme() == "https" && !cfg!(any(feature = "rustls", feature = "native-tls")) {
            return Err(ClientConfigError::NoTls(self.base_url));
        }
        let headers = self.attribution_headers()?;
        let http = |configure: &dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder| {
            configure(
                reqwest::Client::builder()
                    .connect_timeout(self.connect_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .user_agent(&self.user_agent)
                    .default_headers(headers.clone()),
            )
            .build()
            .map_err(|e| ClientConfigError::HttpClient(e.to_string()))
        };
        let join = |path: &str| {
            base_url
                .join(path)
                .expect("a relative path joins onto a base URL")
        };
        let inner = ClientInner {
            http_auth: http(&|b| b.timeout(self.timeout))?,
            http_api: http(&|b| b.timeout(self.api_timeout))?,
            http_stream: http(&|b| b.read_timeout(self.stream_idle_timeout))?,
            stream_idle_timeout: self.stream_idle_timeout,
            api_retries: self.api_retries,
            keys_url: join("api/v1/auth/keys"),
            auth_url: join("auth"),
            key_info_url: join("api/v1/key"),
            models_url: join("api/v1/models"),
            user_models_url: join("api/v1/models/user"),
            api_base: join("api/v1").as_str().trim_end_matches('/').to_owned(),
            base_url,
        };
        Ok(ModelGatesClient {
            inner: Arc::new(inner),
        })
    }
}

impl ModelGatesClientBuilder {
    /// `HTTP-Referer` and `X-Title`, checked as header values.
    fn attribution_headers(&self) -> Result<HeaderMap, ClientConfigError> {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("http-referer", &self.app_url),
            ("x-title", &self.app_title),
        ] {
            let Some(value) = value else { continue };
            let value = HeaderValue::from_str(value).map_err(|_| {
                ClientConfigError::InvalidAttribution(format!(
                    "{name} `{value}` is not a valid header value (printable ASCII only)"
                ))
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }
        Ok(headers)
    }
}

/// A client that cannot be built as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientConfigError {
    /// The base URL does not parse or is not a plain origin.
    #[error("invalid ModelGates base URL `{url}`: {reason}")]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The base URL is `http` on a host that is not loopback.
    #[error(
        "refusing ModelGates base URL `{0}`: keys would travel in clear text; \
         use https, or http only on localhost, 127.0.0.1 or [::1]"
    )]
    InsecureBaseUrl(String),
    /// The HTTP client (TLS backend) could not be built.
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
    /// An https base URL, but the crate was built without a TLS backend.
    #[error(
        "cannot reach `{0}`: this build has no TLS; enable the `rustls` (default) or \
         `native-tls` feature of modelgates-oauth-core or modelgates-axum"
    )]
    NoTls(String),
    /// The app URL or title cannot be sent as a header.
    #[error("invalid attribution: {0}")]
    InvalidAttribution(String),
}

/// Parses and checks a ModelGates base URL; the result always ends in `/`.
pub(crate) fn parse_base_url(raw: &str) -> Result<Url, ClientConfigError> {
    let mut url = Url::parse(raw).map_err(|e| ClientConfigError::InvalidBaseUrl {
        url: raw.to_owned(),
        reason: e.to_string(),
    })?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(ClientConfigError::InvalidBaseUrl {
            url: raw.to_owned(),
            reason: "it must be an origin such as https://modelgates.ai, without credentials, \
                     query or fragment"
                .to_owned(),
        });
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(ClientConfigError::InsecureBaseUrl(raw.to_owned()));
        }
        other => {
            return Err(ClientConfigError::InvalidBaseUrl {
                url: raw.to_owned(),
                reason: format!("scheme `{other}` is not http or https"),
            });
        }
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::parse_base_url;
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://modelgates.ai",
            "https://gateway.example.com/prefix",
            "http://localhost:8090",
            "http://127.0.0.1:1",
            "http://127.10.0.3",
            "http://[::1]:9000",
            "http://LOCALHOST",
        ] {
            assert!(parse_base_url(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn clear_text_to_remote_hosts_is_refused() {
        for bad in [
            "http://modelgates.ai",
            "http://10.0.0.1",
            "http://localhost.evil.example",
        ] {
            let err = parse_base_url(bad).unwrap_err();
            assert!(
                matches!(err, ClientConfigError::InsecureBaseUrl(_)),
                "{bad}"
            );
            assert!(err.to_string().contains("use https"), "{err}");
        }
    }

    #[test]
    fn non_origins_are_refused() {
        for bad in [
            "not a url",
            "ftp://modelgates.ai",
            "https://a.example/?x=1",
            "https://a.example/#f",
            "https://u:p@a.example",
        ] {
            assert!(
                matches!(
                    parse_base_url(bad),
                    Err(ClientConfigError::InvalidBaseUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn endpoints_join_under_a_path_prefix() {
        let client = ModelGatesClient::builder()
            .base_url("https://gw.example/mg")
            .build()
            .unwrap();
        assert_eq!(
            client.inner.keys_url.as_str(),
            "https://gw.example/mg/api/v1/auth/keys"
        );
        assert_eq!(client.inner.auth_url.as_str(), "https://gw.example/mg/auth");
    }
}
