//! The tower layer, tower-http style: [`ModelGatesAuth`] (the `Layer`), its service
//! [`ModelGatesAuthService`] and their [`ResponseFuture`], with what the layer does for a
//! request that carries a key cookie (`signed_in`) and the configuration resolved once at
//! startup (`resolved`), the only thing request code reads.
//! The rules the service applies are documented on [`ModelGatesAuth`].

use std::sync::Arc;
use std::sync::atomic::Ordering;

use modelgates_oauth_core::Url;
use tower_layer::Layer;

use crate::config::{ConfigError, ModelGatesConfig};
use crate::context::{RequestSummary, root_of};
use crate::extract::ModelGatesKey;
use crate::extract::login_url;
use crate::linked::{LinkedAccounts, Mode};
use crate::response::{Problem, prefers_html};
use crate::same_origin::SameOrigin;
use crate::store::{CookieStore, KeyStore, SessionToken, StoreError, TokenProtection};

mod future;
mod resolved;
mod service;
mod signed_in;

pub use future::ResponseFuture;
use resolved::{Resolved, resolve};
pub use service::ModelGatesAuthService;
use service::Shared;
use signed_in::{Lookup, conclude, unlinker};

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
///
/// # Routes
///
/// The layer answers its three routes itself (the inner service never sees them), each
/// failure a precise 4xx/5xx ([`AuthError`](crate::AuthError)):
///
/// * `GET /login[?return_to=/path]`: `return_to` is kept only if
///   [`is_safe_return_to`](crate::is_safe_return_to) (the default otherwise); a fresh flow
///   (oauth-core's [`FlowState`](crate::oauth_core::flow::FlowState): flow id, PKCE verifier and
///   challenge) is sealed in the flow cookie (with the default `return_to` instead when the
///   requested one would make the cookie larger than 4096 bytes); the answer is a 303 to
///   ModelGates' `/auth` whose `callback_url` is the callback URL followed by the flow id
///   (`/callback/<flow id>`).
/// * `GET /callback/<flow id>`, checked in this order, before anything reaches ModelGates: the
///   flow cookie is present, authentic and younger than the flow lifetime; the flow id in the
///   path equals the one in the cookie (constant time), so a code pushed into someone else's
///   browser (login CSRF, even against a provider that ignores PKCE) is refused; the query
///   holds exactly one well-formed `code` (`error=access_denied` is "you cancelled"); the
///   exchange rate bounds, in all and per client, have a permit (429 with `Retry-After`
///   otherwise; see [`ExchangeLimits`](crate::config::ExchangeLimits)); a key-exchange slot
///   is free (503 with `Retry-After: 1` otherwise); the flow is recorded as spent, once: in the
///   key store when it keeps spent flows ([`KeyStore::spend_flow`]:
///   the database stores, so a callback replayed on any instance is refused), else in this
///   process (a record that refuses with 503 when full, never forgets early). A store that
///   fails to record it is a 503 with `Retry-After` and nothing is sent, so no key is issued
///   that could not be kept. Then the code is exchanged with the flow's PKCE values, the app's
///   on-sign-in hook runs (its refusal is a 403 and stores nothing), the key goes to the store
///   (a failing save is retried for 1.3 s, then a 503 with `Retry-After`), the key cookie is
///   set, and the answer is a 303 to the flow's `return_to`. The flow cookie is deleted with
///   every answer but those asking to retry (429, 503), so the same callback can be retried;
///   every answer carries `Referrer-Policy: no-referrer`.
/// * `POST /logout`: refused with 403 when it comes from another site (see
///   [`same_origin`](crate::same_origin)); otherwise the store forgets the key, the key
///   cookie is deleted, the on-sign-out hook hears it, and the answer is a 303 to the
///   post-logout page. When the store fails to forget it, nothing changes: the answer is a
///   503 `sign_out_failed` with `Retry-After`, and the cookie stays so the user can retry.
/// * `GET /login` on another host than the public URL's (when the layer can be sure of it: a
///   loopback public URL, or `X-Forwarded-Host`) is first a 303 to the same path and query on
///   the public URL, once: the flow cookie must be set where the callback will come back.
/// * Any other method on these paths is a 405 naming the right one.
///
/// # Signed-in requests
///
/// Every other request goes to the inner service with what [`ModelGatesKey`] reads: the key
/// when a valid key cookie is present, "signed out" otherwise.
///
/// * A key cookie that fails authentication, has outlived the key lifetime, or names a session
///   the store no longer knows means signed out, and the response deletes the cookie. One made
///   under a previous secret is re-issued under the current one, for the rest of its lifetime.
/// * If the store fails while loading, the request goes on without its key but not signed
///   out: the cookie is kept, and [`ModelGatesKey`] (also as an `Option`) answers 503
///   `store_unavailable` with `Retry-After`, never 401 or a redirect to sign in. Handlers
///   that do not ask for the key are served as usual.
/// * A handler's [`ApiError::KeyRejected`](crate::api_error::ApiError::KeyRejected) (ModelGates
///   refused the key) signs the user out on its way out: the store forgets the session, the
///   key cookie is deleted, and a browser is sent to sign in again. A response carrying
///   [`SignOut`](crate::extract::SignOut) signs the user out the same way but is sent as the
///   handler made it. Either way the on-sign-out hook hears why. When the store fails to
///   forget the session, the answer is instead a 503 `sign_out_failed` with `Retry-After`
///   and the cookie stays (the next request tries again).
/// * A browser is a request whose `Accept` prefers `text/html` to `application/json` by
///   q-value; every answer of the crate is a page for it and JSON otherwise (the README's "Answers
///   are JSON or HTML by one rule").
/// * A request without our key cookie costs a scan of its `Cookie` headers: no cryptography,
///   no allocation, no boxing, no reference count. It carries no extension: [`ModelGatesKey`]
///   (and [`ModelGatesKey::from_extensions`]) find the layer through a thread-local value set
///   while the inner service is called and while its future is polled, so an extractor that
///   runs on another task than the layer's (a `tokio::spawn` between the two) answers "missing
///   layer" for a signed-out request.
///
/// Every answer that sets a cookie is `Cache-Control: private, no-store` with `Vary: Cookie`.
///
/// [`ModelGatesKey`]: crate::ModelGatesKey
/// [`ModelGatesKey::from_extensions`]: crate::ModelGatesKey::from_extensions
pub struct ModelGatesAuth<K = CookieStore> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for ModelGatesAuth<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K: KeyStore> ModelGatesAuth<K> {
    fn with_parts(state: Arc<Resolved>, store: Arc<K>) -> Self {
        let unlink = unlinker(&state, &store);
        Self {
            shared: Arc::new(Shared {
                state,
                store,
                unlink,
            }),
        }
    }
}

impl<K> std::fmt::Debug for ModelGatesAuth<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelGatesAuth")
            .field(
                "callback_url",
                &self.shared.state.flow.paths.callback_url.as_str(),
            )
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
        Ok(Self::with_parts(
            Arc::new(resolve(config)?),
            Arc::new(CookieStore),
        ))
    }
}

impl<K: KeyStore> ModelGatesAuth<K> {
    /// Keeps keys in `store` instead, such as [`MemoryStore`](crate::store::MemoryStore) or a
    /// database store.
    pub fn with_store<K2: KeyStore>(self, store: K2) -> ModelGatesAuth<K2> {
        ModelGatesAuth::with_parts(self.shared.state.clone(), Arc::new(store))
    }

    /// The key of the app user `account` (linked accounts, see [`linked`](crate::linked)),
    /// outside any request: for a background job that spends each user's own credits. It has
    /// everything it has in a handler (`openai()`, `stream_chat`, `key_info`, `manage_url`,
    /// `models_for_user`, the typed money errors), and the same rule for a key ModelGates
    /// rejects: it is unlinked, on every instance. `Ok(None)`: not connected (or the link
    /// outlived the key lifetime).
    ///
    /// ```no_run
    /// # async fn run(auth: modelgates_axum::ModelGatesAuth<modelgates_axum::store::MemoryStore>) -> Result<(), Box<dyn std::error::Error>> {
    /// if let Some(key) = auth.key_for("42").await? {
    ///     let info = key.key_info().await?;
    ///     println!("{} credits left", info.limit_remaining.unwrap_or_default());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the store fails: say so and try later, never "not connected".
    pub async fn key_for(&self, account: &str) -> Result<Option<ModelGatesKey>, StoreError> {
        let token = SessionToken::for_account(account);
        // The store's own error, not the request path's "unavailable" flag.
        let loaded = self.shared.store.load(&token).await?;
        let lookup = Lookup::Link {
            account: account.to_owned(),
        };
        let concluded = conclude(
            &self.shared.state,
            &self.shared.store,
            &self.shared.unlink,
            token,
            lookup,
            Ok(loaded),
            RequestSummary::no_request(),
        );
        Ok(concluded.key)
    }

    /// Disconnects the app user `account` (linked accounts): their link is removed, on every
    /// instance, and the on-sign-out hook hears [`SignOutReason::Disconnected`](crate::hooks::SignOutReason::Disconnected).
    /// Returns whether they were connected. The disconnect route does the same for the
    /// request's app user.
    ///
    /// # Errors
    ///
    /// When the store fails: the link stays.
    pub async fn disconnect(&self, account: &str) -> Result<bool, StoreError> {
        let reason = crate::hooks::SignOutReason::Disconnected;
        crate::flow::forget_link(
            &self.shared.state.flow,
            &*self.shared.store,
            account,
            reason,
        )
        .await
    }

    /// The app users who have linked ModelGates, `page_size` at a time, in byte order of
    /// their ids (linked accounts; see [`LinkedAccounts`]).
    pub fn linked_accounts(&self, page_size: usize) -> LinkedAccounts<K> {
        LinkedAccounts::new(self.shared.store.clone(), page_size)
    }

    /// Whether the layer can sign users in and serve them now: its key store answers
    /// ([`KeyStore::ping`]). For a readiness probe (`/readyz`); it never calls ModelGates.
    ///
    /// ```
    /// use axum::{Router, http::StatusCode, routing::get};
    /// use modelgates_axum::{ModelGatesAuth, ModelGatesConfig};
    ///
    /// # fn config() -> ModelGatesConfig { ModelGatesConfig::new("http://localhost:3000", modelgates_axum::CookieSecret::generate()) }
    /// let auth = ModelGatesAuth::new(config());
    /// let probe = auth.clone();
    /// // Outside the layer: a load balancer's probe carries no cookie to look at.
    /// let health: Router = Router::new().route(
    ///     "/readyz",
    ///     get(move || async move {
    ///         match probe.ready().await {
    ///             Ok(()) => (StatusCode::OK, "ready".to_owned()),
    ///             Err(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
    ///         }
    ///     }),
    /// );
    /// let app: Router = Router::new().layer(auth).merge(health);
    /// ```
    ///
    /// # Errors
    ///
    /// The store's error when it does not answer.
    pub async fn ready(&self) -> Result<(), crate::store::StoreError> {
        self.shared.store.ping().await
    }

    /// A span for every request, for tower-http's `TraceLayer::make_span_with`, that never
    /// holds what a sign-in must keep to itself: named `request` with `http.request.method`
    /// and `url.path`, no query (the callback's query holds the one-time code) and the
    /// callback's flow id replaced by `{flow_id}`. tower-http's default span records the
    /// whole URI, query included. The layer's own spans nest under it
    /// ([`observe`](crate::observe#spans)).
    ///
    /// ```
    /// use axum::Router;
    /// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig};
    /// use tower_http::trace::TraceLayer;
    ///
    /// let auth = ModelGatesAuth::new(ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate()));
    /// let app: Router = Router::new()
    ///     .layer(auth.clone())
    ///     .layer(TraceLayer::new_for_http().make_span_with(auth.request_span()));
    /// ```
    pub fn request_span<B>(
        &self,
    ) -> impl Fn(&http::Request<B>) -> tracing::Span + Clone + Send + Sync + 'static {
        let callback: Arc<str> = format!("{}/", self.shared.state.flow.paths.callback).into();
        move |request: &http::Request<B>| {
            let path = request.uri().path();
            let path = match path.find(&*callback) {
                Some(at) => {
                    std::borrow::Cow::Owned(format!("{}{{flow_id}}", &path[..at + callback.len()]))
                }
                None => std::borrow::Cow::Borrowed(path),
            };
            tracing::info_span!(
                "request",
                "http.request.method" = request.method().as_str(),
                "url.path" = &*path,
            )
        }
    }

    /// Every stream this layer relays (with [`ModelGatesKey::stream_chat`](crate::ModelGatesKey::stream_chat)),
    /// to end them at the end of a graceful shutdown ([`OpenStreams::close_all`](crate::extract::OpenStreams::close_all)).
    #[must_use]
    pub fn open_streams(&self) -> crate::extract::OpenStreams {
        crate::stream_slots::OpenStreams(self.shared.state.streams.clone())
    }

    /// The callback URL: the public URL plus the callback path. Each sign-in sends ModelGates
    /// this URL followed by one more path segment, its flow id.
    #[must_use]
    pub fn callback_url(&self) -> &Url {
        &self.shared.state.flow.paths.callback_url
    }

    /// The URL of the login route, coming back to `return_to` (a local path; anything else is
    /// dropped), for pages that link to the sign-in instead of hard-coding it.
    ///
    /// It carries the nesting prefix when the layer knows it before any request: after
    /// [`nest`](Self::nest) (the first prefix given, if nested twice), and with
    /// [`with_path_prefix`](crate::ModelGatesConfig::with_path_prefix). A layer nested by hand
    /// (`Router::nest` + [`routes`](Self::routes)) learns its prefix only from requests, so
    /// there this returns the path on the outermost router (`/login?…`); in a handler,
    /// [`ModelGatesKeyRejection::login_url`](crate::extract::ModelGatesKeyRejection::login_url)
    /// always knows it.
    ///
    /// ```
    /// use axum::Router;
    /// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig};
    ///
    /// let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
    ///     .with_path_prefix("/auth");
    /// let auth = ModelGatesAuth::new(config);
    /// assert_eq!(auth.login_url("/chat"), "/auth/login?return_to=%2Fchat");
    /// assert_eq!(auth.login_url("https://evil.example"), "/auth/login");
    ///
    /// let nested = ModelGatesAuth::new(ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate()));
    /// let app: Router = nested.nest("/app", Router::new());
    /// assert_eq!(nested.login_url("/app/chat"), "/app/login?return_to=%2Fapp%2Fchat");
    /// ```
    #[must_use]
    pub fn login_url(&self, return_to: &str) -> String {
        match self.shared.state.known_mount.get() {
            Some(mount) => login_url(&self.shared.state.flow.paths.login_for(mount), return_to),
            None => login_url(&self.shared.state.flow.paths.login, return_to),
        }
    }

    /// `router` nested under `prefix`, with the layer's routes registered in it and the layer
    /// on it: the one call that puts a sign-in under a path (`/app/login`, `/app/callback/…`,
    /// `/app/logout`), so the layer can be neither missing nor misplaced. Merge the result
    /// into the app's outer router. Every link, redirect and default the layer makes then
    /// carries the prefix, and [`login_url`](Self::login_url) knows it.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
    ///
    /// let auth = ModelGatesAuth::new(ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate()));
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "the public home page" }))
    ///     .merge(auth.nest(
    ///         "/app",
    ///         Router::new().route("/", get(|_key: ModelGatesKey| async { "signed in" })),
    ///     ));
    /// ```
    ///
    /// # Panics
    ///
    /// As `Router::nest` does: when `prefix` is empty, `/`, or contains a wildcard.
    pub fn nest<S>(&self, prefix: &str, router: axum::Router<S>) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let _ = self
            .shared
            .state
            .known_mount
            .set(prefix.trim_end_matches('/').to_owned());
        axum::Router::new().nest(prefix, router.merge(self.routes()).layer(self.clone()))
    }

    /// A [`SameOrigin`] layer for this app's public origin, to put on the app's own
    /// state-changing routes (see [`same_origin`](crate::same_origin)).
    #[must_use]
    pub fn same_origin(&self) -> SameOrigin {
        SameOrigin::for_origin(self.shared.state.flow.public_origin.clone())
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
        self.shared
            .state
            .routes_registered
            .store(true, Ordering::Relaxed);
        let unreachable = axum::routing::any(|request: axum::extract::Request| async move {
            tracing::error!(
                "a request reached ModelGatesAuth::routes() without the layer in front"
            );
            let home = root_of(&request);
            Problem::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "missing_layer",
                "Sign-in is not set up correctly",
                "ModelGatesAuth::routes() answered a request the layer never saw: put \
                 `.layer(auth)` on the router after `.merge(auth.routes())`",
            )
            .render(prefers_html(request.headers()), &[("Home", &home)])
        });
        let paths = &self.shared.state.flow.paths;
        axum::Router::new()
            .route(&paths.login, unreachable.clone())
            .route(&paths.callback, unreachable.clone())
            .route(
                &format!("{}/{{*flow}}", paths.callback),
                unreachable.clone(),
            )
            .route(&paths.logout, unreachable)
    }
}

impl<S, K: KeyStore> Layer<S> for ModelGatesAuth<K> {
    type Service = ModelGatesAuthService<S, K>;

    /// # Panics
    ///
    /// With linked accounts and the cookie store, which has nowhere to keep a key but a
    /// browser: give the layer a server-side store with [`ModelGatesAuth::with_store`].
    fn layer(&self, inner: S) -> Self::Service {
        assert!(
            !(self.shared.state.flow.mode == Mode::Linked
                && K::TOKEN_PROTECTION == TokenProtection::Encrypted),
            "ModelGatesConfig::with_linked_accounts keeps each app user's key on the server: give \
             the layer a server-side store with `.with_store(...)` (MemoryStore, SqliteStore, \
             PostgresStore, RedisStore)"
        );
        ModelGatesAuthService::new(inner, self.shared.clone())
    }
}
