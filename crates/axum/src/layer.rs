//! [`ModelGatesAuth`] (the tower `Layer`) and [`ModelGatesAuthService`] (its `Service`).
//!
//! The rules the service applies to each request, in order:
//!
//! 1. A request whose path is the login, callback or logout path is answered by the layer
//!    itself (see the `flow` rules in the crate documentation); the inner service never sees it.
//! 2. Any other request is passed to the inner service with an extension that
//!    [`ModelGatesKey`] reads: the key when a valid key cookie is present,
//!    "signed out" otherwise.
//! 3. A key cookie that fails authentication, has expired, or names a session the store no
//!    longer knows is deleted with a `Set-Cookie` on the response. One made under a previous
//!    secret is re-issued under the current one.
//! 4. If the store fails while loading, the request is treated as signed out for this request
//!    only (the cookie is kept) and the failure is logged.
//! 5. A response carrying [`SignOut`](crate::api::SignOut) (ModelGates refused the user's key)
//!    signs the user out: the store forgets the key, the cookie is deleted, and a browser is
//!    sent to sign in again.
//!
//! A request without our key cookie costs one extension insert: no cryptography, no allocation
//! beyond that, no boxing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use axum_core::body::Body;
use bytes::Bytes;
use http::{Request, Response, Uri};
use modelgates_oauth_core::{ModelGatesClient, Url};
use tower_layer::Layer;
use tower_service::Service;

use crate::config::settings::{Settings, resolve};
use crate::config::{ConfigError, ModelGatesConfig};
use crate::cookies::CookieCodec;
use crate::error::AuthError;
use crate::extract::{AuthContext, ModelGatesKey};
use crate::flow;
use crate::future::ResponseFuture;
use crate::mount::Mount;
use crate::response::json_error;
use crate::same_origin::SameOriginLayer;
use crate::session::{
    self, Authenticated, Opening, RemoveSession, RequestSummary, SignOutPlan, conclude,
};
use crate::store::{CookieStore, KeyStore};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What handlers see of this request: the key, or how to sign in.
fn context(
    settings: &Settings,
    key: Option<ModelGatesKey>,
    uri: &Uri,
    mount: Option<&Mount>,
) -> AuthContext {
    match mount {
        None => AuthContext {
            key,
            login_path: settings.login_path.clone(),
            original_uri: uri.clone(),
        },
        Some(mount) => AuthContext {
            key,
            login_path: format!("{}{}", mount.prefix, settings.login_path).into(),
            original_uri: mount.original.clone(),
        },
    }
}

/// Puts what handlers see of a signed-in (or refused) request into its extensions; returns
/// the cookie the response must carry and, for a signed-in user, how to sign them out.
fn annotate<K: KeyStore, B>(
    settings: &Arc<Settings>,
    store: &Arc<K>,
    request: &mut Request<B>,
    authenticated: Authenticated,
    mount: Option<Mount>,
) -> (Option<http::HeaderValue>, Option<SignOutPlan>) {
    let Authenticated {
        key,
        set_cookie,
        token,
    } = authenticated;
    let signed_in = key.is_some();
    let context = context(settings, key, request.uri(), mount.as_ref());
    request.extensions_mut().insert(context);
    let plan = token.filter(|_| signed_in).and_then(|token| {
        Some(SignOutPlan {
            settings: settings.clone(),
            store: store.clone() as Arc<dyn RemoveSession>,
            token,
            request: RequestSummary::of(request)?,
        })
    });
    (set_cookie, plan)
}

/// The answer of a layer inside a nested router whose paths are not routed to it.
fn misplaced(settings: &Settings, mount: &Mount, headers: &http::HeaderMap) -> Response<Body> {
    let error = AuthError::Misplaced {
        prefix: mount.prefix.clone(),
    };
    tracing::error!("{error}");
    error.render(headers, &settings.login_path, None)
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
    settings: Arc<Settings>,
    store: Arc<K>,
}

impl<K> Clone for ModelGatesAuth<K> {
    fn clone(&self) -> Self {
        Self {
            settings: self.settings.clone(),
            store: self.store.clone(),
        }
    }
}

impl<K> std::fmt::Debug for ModelGatesAuth<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelGatesAuth")
            .field("callback_url", &self.settings.callback_url.as_str())
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
            settings: Arc::new(resolve(config)?),
            store: Arc::new(CookieStore),
        })
    }
}

impl<K: KeyStore> ModelGatesAuth<K> {
    /// Keeps keys in `store` instead, such as [`MemoryStore`](crate::store::MemoryStore) or a
    /// database store.
    pub fn with_store<K2: KeyStore>(self, store: K2) -> ModelGatesAuth<K2> {
        ModelGatesAuth {
            settings: self.settings,
            store: Arc::new(store),
        }
    }

    /// The callback URL: the public URL plus the callback path. Each sign-in sends ModelGates
    /// this URL followed by one more path segment, its flow id.
    #[must_use]
    pub fn callback_url(&self) -> &Url {
        &self.settings.callback_url
    }

    /// The URL of the login route, coming back to `return_to` (a local path; anything else is
    /// dropped), for pages that link to the sign-in instead of hard-coding it. Inside a nested
    /// router, add the nesting prefix, or use
    /// [`ModelGatesKeyRejection::login_url`](crate::extract::ModelGatesKeyRejection::login_url),
    /// which knows it.
    ///
    /// ```
    /// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig};
    ///
    /// let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
    ///     .with_path_prefix("/auth");
    /// let auth = ModelGatesAuth::new(config);
    /// assert_eq!(auth.login_url("/chat"), "/auth/login?return_to=%2Fchat");
    /// assert_eq!(auth.login_url("https://evil.example"), "/auth/login");
    /// ```
    #[must_use]
    pub fn login_url(&self, return_to: &str) -> String {
        crate::extract::login_url(&self.settings.login_path, return_to)
    }

    /// A [`SameOriginLayer`] for this app's public origin, to put on the app's own
    /// state-changing routes (see [`same_origin`](crate::same_origin)).
    #[must_use]
    pub fn same_origin(&self) -> SameOriginLayer {
        SameOriginLayer::for_origin(self.settings.public_origin.clone())
    }

    /// The layer's own paths as routes of a `Router`, to merge into a router that is nested
    /// (`Router::nest`) before this layer is put on it: a nested router sends a path to the
    /// layer only when it is one of its routes. On the outermost router it is not needed.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig};
    ///
    /// let auth = ModelGatesAuth::new(ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate()));
    /// let app: Router = Router::new().nest(
    ///     "/app",
    ///     Router::new()
    ///         .route("/", get(|| async { "home" }))
    ///         .merge(auth.routes()) // /app/login, /app/callback/…, /app/logout
    ///         .layer(auth),
    /// );
    /// ```
    ///
    /// The routes answer 500 naming the layer if a request ever reaches them: the layer in
    /// front answers them itself.
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> axum::Router<S> {
        self.settings
            .routes_registered
            .store(true, Ordering::Relaxed);
        let unreachable = axum::routing::any(|| async {
            tracing::error!(
                "a request reached ModelGatesAuth::routes() without the layer in front"
            );
            json_error(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "layer_missing",
                "ModelGatesAuth::routes() answered a request the layer never saw: put \
                 `.layer(auth)` on the router after `.merge(auth.routes())`",
            )
        });
        let callback = &self.settings.callback_path;
        axum::Router::new()
            .route(&self.settings.login_path, unreachable.clone())
            .route(callback, unreachable.clone())
            .route(&format!("{callback}/{{*flow}}"), unreachable.clone())
            .route(&self.settings.logout_path, unreachable)
    }

    /// The layer's ModelGates client, sharing its connection pool.
    #[must_use]
    pub fn client(&self) -> &ModelGatesClient {
        &self.settings.client
    }
}

impl<S, K> Layer<S> for ModelGatesAuth<K> {
    type Service = ModelGatesAuthService<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        ModelGatesAuthService {
            inner,
            settings: self.settings.clone(),
            store: self.store.clone(),
        }
    }
}

/// The service [`ModelGatesAuth`] wraps around an inner service. Cheap to clone.
pub struct ModelGatesAuthService<S, K = CookieStore> {
    inner: S,
    settings: Arc<Settings>,
    store: Arc<K>,
}

impl<S: Clone, K> Clone for ModelGatesAuthService<S, K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            settings: self.settings.clone(),
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

impl<S, K: KeyStore> ModelGatesAuthService<S, K> {
    /// Calls the (ready) inner service with what `authenticated` says, unboxed.
    fn call_now<ReqBody>(
        &mut self,
        mut request: Request<ReqBody>,
        authenticated: Authenticated,
        mount: Option<Mount>,
    ) -> ResponseFuture<S::Future, S::Error>
    where
        S: Service<Request<ReqBody>>,
    {
        let (cookie, plan) = annotate(
            &self.settings,
            &self.store,
            &mut request,
            authenticated,
            mount,
        );
        ResponseFuture::signed_in(self.inner.call(request), cookie, plan)
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
        let mount = Mount::of(&request);
        if let Some(mount) = &mount {
            if !self.settings.routes_registered.load(Ordering::Relaxed) {
                return ResponseFuture::ready(misplaced(&self.settings, mount, request.headers()));
            }
        }
        if let Some(route) = self.settings.route(request.uri().path()) {
            let (settings, store) = (self.settings.clone(), self.store.clone());
            let (parts, _body) = request.into_parts();
            let prefix = mount.map(|m| m.prefix).unwrap_or_default();
            return ResponseFuture::boxed(async move {
                Ok(flow::handle(route, &settings, &*store, parts, &prefix).await)
            });
        }
        // The fast path: no key cookie, so no cryptography, no store, no boxing.
        if !CookieCodec::is_present(request.headers(), &self.settings.codec.key_name) {
            let context = context(&self.settings, None, request.uri(), mount.as_ref());
            request.extensions_mut().insert(context);
            return ResponseFuture::inner(self.inner.call(request));
        }
        let (token, needs_reissue) = match session::open::<K>(&self.settings, request.headers()) {
            Opening::Token {
                token,
                needs_reissue,
            } => (token, needs_reissue),
            Opening::Refused(signed_out) => return self.call_now(request, signed_out, mount),
        };
        // A store that answers at once (the cookie, in memory, a cache hit): no boxing.
        if let Some(loaded) = self.store.load_now(&token) {
            let authenticated = conclude::<K>(&self.settings, token, needs_reissue, loaded);
            return self.call_now(request, authenticated, mount);
        }
        // The store must wait (a database). The ready service is the one to call; leave a
        // fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (settings, store) = (self.settings.clone(), self.store.clone());
        ResponseFuture::boxed(async move {
            let loaded = store.load(&token).await;
            let authenticated = conclude::<K>(&settings, token, needs_reissue, loaded);
            let (cookie, plan) = annotate(&settings, &store, &mut request, authenticated, mount);
            ResponseFuture::signed_in(inner.call(request), cookie, plan).await
        })
    }
}
