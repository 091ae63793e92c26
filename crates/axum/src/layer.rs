//! [`ModelGatesAuth`] (the tower `Layer`), [`ModelGatesAuthService`] (its `Service`) and
//! [`ResponseFuture`].
//!
//! The rules the service applies to each request, in order:
//!
//! 1. A request whose path is the login, callback or logout path is answered by the layer
//!    itself (see the `flow` rules in the crate documentation); the inner service never sees it.
//! 2. Any other request is passed to the inner service with an extension that
//!    [`ModelGatesKey`](crate::ModelGatesKey) reads: the key when a valid key cookie is present,
//!    "signed out" otherwise.
//! 3. A key cookie that fails authentication, has expired, or names a session the store no
//!    longer knows is deleted with a `Set-Cookie` on the response. One made under a previous
//!    secret is re-issued under the current one.
//! 4. If the store fails while loading, the request is treated as signed out for this request
//!    only (the cookie is kept) and the failure is logged.
//!
//! A request without our key cookie costs one extension insert: no cryptography, no allocation
//! beyond that, no boxing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum_core::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, Uri};
use modelgates_oauth_core::{ChallengeMethod, ModelGatesClient, Url};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::{ConfigError, ModelGatesConfig};
use crate::cookies::{CookieCodec, unix_now};
use crate::error::ErrorPage;
use crate::extract::{AuthContext, ModelGatesKey};
use crate::flow::{self, Route};
use crate::return_to::is_safe_return_to;
use crate::store::{CookieStore, KeyStore, SessionToken};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything the service needs, resolved and checked once.
pub(crate) struct Core {
    pub(crate) client: ModelGatesClient,
    pub(crate) codec: CookieCodec,
    pub(crate) callback_url: Url,
    pub(crate) login_path: Arc<str>,
    pub(crate) callback_path: String,
    pub(crate) logout_path: String,
    pub(crate) challenge_method: Option<ChallengeMethod>,
    pub(crate) default_return_to: String,
    pub(crate) post_logout_redirect: String,
    pub(crate) key_max_age: Duration,
    pub(crate) flow_max_age: Duration,
    pub(crate) error_page: Option<ErrorPage>,
}

impl Core {
    fn route(&self, path: &str) -> Option<Route> {
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

    fn context(self: &Arc<Self>, key: Option<ModelGatesKey>, uri: &Uri) -> AuthContext {
        AuthContext {
            key,
            login_path: self.login_path.clone(),
            original_uri: uri.clone(),
        }
    }

    /// The signed-in key for these headers, and any `Set-Cookie` the response needs
    /// (a deletion or a rotation).
    pub(crate) async fn authenticate<K: KeyStore>(
        &self,
        store: &K,
        headers: &HeaderMap,
    ) -> (Option<ModelGatesKey>, Option<String>) {
        let Some(opened) = self.codec.open_key(headers, K::TOKEN_PROTECTION) else {
            return (None, Some(self.codec.clear_key()));
        };
        let token = SessionToken::new(opened.value);
        let now = unix_now();
        match store.load(&token).await {
            Ok(Some(stored)) if !stored.is_older_than(self.key_max_age, now) => {
                let reissue = opened.needs_reissue.then(|| {
                    let remaining =
                        self.key_max_age.as_secs() - now.saturating_sub(stored.issued_at);
                    self.codec.key_cookie(
                        token.expose_secret(),
                        K::TOKEN_PROTECTION,
                        Duration::from_secs(remaining),
                    )
                });
                let key = ModelGatesKey::new(stored.key, stored.user_id, self.client.clone());
                (Some(key), reissue)
            }
            Ok(_) => (None, Some(self.codec.clear_key())),
            Err(error) => {
                tracing::warn!(%error, "the key store failed; treating this request as signed out");
                (None, None)
            }
        }
    }
}

/// The layer: mounts the sign-in routes and makes the user's key available to handlers.
///
/// ```
/// use axum::{Router, routing::get};
/// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
///
/// async fn whoami(key: Option<ModelGatesKey>) -> String {
///     match key {
///         Some(key) => format!("signed in as {:?}", key.user_id()),
///         None => "signed out".to_owned(),
///     }
/// }
///
/// let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate());
/// let app: Router = Router::new()
///     .route("/", get(whoami))
///     .layer(ModelGatesAuth::new(config)); // mounts /login, /callback, /logout
/// ```
pub struct ModelGatesAuth<K = CookieStore> {
    core: Arc<Core>,
    store: Arc<K>,
}

impl<K> Clone for ModelGatesAuth<K> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            store: self.store.clone(),
        }
    }
}

impl<K> std::fmt::Debug for ModelGatesAuth<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelGatesAuth")
            .field("callback_url", &self.core.callback_url.as_str())
            .field("store", &std::any::type_name::<K>())
            .finish_non_exhaustive()
    }
}

impl ModelGatesAuth<CookieStore> {
    /// Builds the layer, with keys kept in encrypted cookies.
    ///
    /// # Panics
    ///
    /// When the configuration cannot work, with the [`ConfigError`] message saying what to
    /// change; a misconfigured sign-in is better refused at startup than at the first user.
    /// Use [`Self::try_new`] to handle the error instead.
    pub fn new(config: ModelGatesConfig) -> Self {
        Self::try_new(config)
            .unwrap_or_else(|error| panic!("invalid ModelGates configuration: {error}"))
    }

    /// Builds the layer, or says what is wrong with the configuration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] saying which setting to change and how.
    pub fn try_new(config: ModelGatesConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            core: Arc::new(resolve(config)?),
            store: Arc::new(CookieStore),
        })
    }
}

impl<K: KeyStore> ModelGatesAuth<K> {
    /// Keeps keys in `store` instead, such as [`MemoryStore`](crate::MemoryStore) or a
    /// database store.
    pub fn with_store<K2: KeyStore>(self, store: K2) -> ModelGatesAuth<K2> {
        ModelGatesAuth {
            core: self.core,
            store: Arc::new(store),
        }
    }

    /// The callback URL sent to ModelGates: the public URL plus the callback path.
    #[must_use]
    pub fn callback_url(&self) -> &Url {
        &self.core.callback_url
    }

    /// The layer's ModelGates client, sharing its connection pool.
    #[must_use]
    pub fn client(&self) -> &ModelGatesClient {
        &self.core.client
    }
}

impl<S, K> Layer<S> for ModelGatesAuth<K> {
    type Service = ModelGatesAuthService<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        ModelGatesAuthService {
            inner,
            core: self.core.clone(),
            store: self.store.clone(),
        }
    }
}

/// The service [`ModelGatesAuth`] wraps around an inner service. Cheap to clone.
pub struct ModelGatesAuthService<S, K = CookieStore> {
    inner: S,
    core: Arc<Core>,
    store: Arc<K>,
}

impl<S: Clone, K> Clone for ModelGatesAuthService<S, K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            core: self.core.clone(),
            store: self.store.clone(),
        }
    }
}

impl<S: std::fmt::Debug, K> std::fmt::Debug for ModelGatesAuthService<S, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelGatesAuthService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, K, ReqBody, ResBody> Service<Request<ReqBody>> for ModelGatesAuthService<S, K>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    K: KeyStore,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if let Some(route) = self.core.route(request.uri().path()) {
            let (core, store) = (self.core.clone(), self.store.clone());
            let (parts, _body) = request.into_parts();
            return ResponseFuture::boxed(async move {
                Ok(flow::handle(route, &core, &*store, parts).await)
            });
        }
        // The fast path: no key cookie, so no cryptography, no store, no boxing.
        if !CookieCodec::is_present(request.headers(), &self.core.codec.key_name) {
            let context = self.core.context(None, request.uri());
            request.extensions_mut().insert(context);
            return ResponseFuture::inner(self.inner.call(request));
        }
        // The ready service is the one to call; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (core, store) = (self.core.clone(), self.store.clone());
        ResponseFuture::boxed(async move {
            let (key, set_cookie) = core.authenticate(&*store, request.headers()).await;
            let context = core.context(key, request.uri());
            request.extensions_mut().insert(context);
            let mut response = inner.call(request).await?.map(Body::new);
            if let Some(value) = set_cookie.and_then(|v| HeaderValue::try_from(v).ok()) {
                response
                    .headers_mut()
                    .append(http::header::SET_COOKIE, value);
            }
            Ok(response)
        })
    }
}

type BoxedResponse<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The response future of [`ModelGatesAuthService`].
    pub struct ResponseFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Inner { #[pin] future: F },
        Boxed { future: BoxedResponse<E> },
    }
}

impl<F, E> ResponseFuture<F, E> {
    fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    fn boxed(future: impl Future<Output = Result<Response<Body>, E>> + Send + 'static) -> Self {
        Self {
            kind: Kind::Boxed {
                future: Box::pin(future),
            },
        }
    }
}

impl<F, E, B> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => {
                Poll::Ready(ready!(future.poll(cx)).map(|r| r.map(Body::new)))
            }
            KindProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, E> std::fmt::Debug for ResponseFuture<F, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

/// Checks a configuration and resolves it into a [`Core`].
fn resolve(config: ModelGatesConfig) -> Result<Core, ConfigError> {
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
        .map(crate::CookieSecret::cookie_key)
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
    Ok(Core {
        client,
        codec: CookieCodec::new(keys, flow_name, key_name, secure),
        callback_url,
        login_path: login_path.into(),
        callback_path,
        logout_path,
        challenge_method: config.challenge_method,
        default_return_to: config.default_return_to,
        post_logout_redirect: config.post_logout_redirect,
        key_max_age: config.key_max_age,
        flow_max_age: config.flow_max_age,
        error_page: config.error_page,
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
        "http" if modelgates_oauth_core::is_loopback(&url) => {}
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
    use crate::CookieSecret;

    fn config(public_url: &str) -> ModelGatesConfig {
        ModelGatesConfig::new(public_url, CookieSecret::generate())
    }

    #[test]
    fn https_public_urls_get_secure_host_cookies() {
        let core = resolve(config("https://app.example")).unwrap();
        assert_eq!(core.codec.key_name, "__Host-modelgates_key");
        assert_eq!(core.codec.flow_name, "__Host-modelgates_flow");
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
        let core = resolve(config("https://app.example").with_path_prefix("/auth/")).unwrap();
        assert_eq!(&*core.login_path, "/auth/login");
        assert_eq!(
            core.callback_url.as_str(),
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
        let core =
            resolve(config("https://app.example").with_cookie_names("f", "__Host-k")).unwrap();
        assert_eq!(core.codec.flow_name, "__Host-f");
        assert_eq!(core.codec.key_name, "__Host-k");
        assert!(resolve(config("https://app.example").with_cookie_names("a b", "k")).is_err());
        assert!(resolve(config("https://app.example").with_cookie_names("same", "same")).is_err());
    }
}
