//! [`ModelGatesKey`]: the signed-in user's key, as an axum extractor.
//!
//! The rules: with [`ModelGatesAuth`](crate::ModelGatesAuth) in front and a valid key cookie,
//! extraction succeeds. Signed out, a browser (a request whose `Accept` prefers `text/html` to
//! `application/json`, by the crate's one negotiation rule: see the README's "Answers are JSON
//! or HTML by one rule") is redirected with a 303 to the login route: a navigation (`GET` or
//! `HEAD`) comes back to this page, a form post (any other method) to the page the form was on
//! when the `Referer` names a page of this app's origin, else to `/`. Any other request gets a
//! 401 with a JSON error. Without the layer, extraction fails with a 500 whose message names
//! `ModelGatesAuth` (a page or JSON by the same rule), since that is a bug in the app, not in
//! the request.
//! `Option<ModelGatesKey>` never rejects a signed-out request: it yields `None`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::Extensions;
use http::request::Parts;
use http::uri::PathAndQuery;
use modelgates_oauth_core::api::{KeyInfo, ModelInfo, RateLimitHeaders};
use modelgates_oauth_core::{ApiKey, ModelGatesClient, RequestError};

use crate::context::{RequestSummary, SignInRoute, original_uri, signed_out_layer};
use crate::flow::is_safe_return_to;
#[cfg(feature = "openai")]
use crate::observe::Outcome;
use crate::response::{is_reading, prefers_html};
use crate::store::{ErasedStore, SessionToken, StoredKey};

use crate::api_error::ApiError;
#[cfg(feature = "openai")]
use {
    axum::response::sse::{Event, Sse},
    futures_util::Stream,
    modelgates_oauth_core::async_openai::types::chat::CreateChatCompletionRequest,
    std::convert::Infallible,
};

/// The signed-in user's ModelGates key, with the layer's pooled HTTP clients. Cheap to clone.
///
/// ```
/// use axum::{Router, routing::post};
/// use modelgates_axum::ModelGatesKey;
/// use modelgates_axum::ApiError;
/// use modelgates_axum::oauth_core::async_openai::types::chat::{
///     ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
/// };
///
/// async fn chat(key: ModelGatesKey) -> Result<String, ApiError> {
///     let request = CreateChatCompletionRequestArgs::default()
///         .model("openai/gpt-5.2")
///         .messages([ChatCompletionRequestUserMessage::from("Hello!").into()])
///         .build()?;
///     // A revoked key (401) signs the user out on the way out, through `ApiError`.
///     let reply = key.openai().chat().create(request).await?;
///     Ok(reply.choices[0].message.content.clone().unwrap_or_default())
/// }
///
/// let app: Router = Router::new().route("/chat", post(chat));
/// ```
#[derive(Clone)]
pub struct ModelGatesKey(Arc<KeyInner>);

struct KeyInner {
    key: ApiKey,
    user_id: Option<String>,
    app_data: Option<String>,
    client: ModelGatesClient,
    /// The session's token and store, for [`Session`].
    token: SessionToken,
    store: Arc<dyn ErasedStore>,
    /// The layer's count of each session's open streams.
    streams: Arc<StreamSlots>,
    /// The `X-RateLimit-*` headers of the latest answer to this request's calls through
    /// [`ModelGatesKey::openai`] or [`ModelGatesKey::openai_stream`], which the layer passes on.
    rate_limits: Mutex<Option<RateLimitHeaders>>,
    /// A linked account's: the app user, and what unlinks the key once ModelGates rejects it.
    link: Option<Link>,
    /// What the layer saw of the request this key was loaded for, to act on its response (a
    /// sign-out's redirect, an error page): kept in the key's one allocation so that the
    /// layer's response future, which every request moves, stays small.
    seen: RequestSummary,
}

/// The app user a key is linked to, and what unlinks it when ModelGates rejects the key.
pub(crate) struct Link {
    pub(crate) account: String,
    /// Called (at most once per key) on ModelGates' 401; it unlinks in the background.
    pub(crate) on_rejected: Arc<dyn Fn(&str) + Send + Sync>,
    /// Whether `on_rejected` was called for this key already.
    pub(crate) rejected: std::sync::atomic::AtomicBool,
}

impl Link {
    pub(crate) fn new(account: String, on_rejected: Arc<dyn Fn(&str) + Send + Sync>) -> Self {
        Self {
            account,
            on_rejected,
            rejected: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl fmt::Debug for ModelGatesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelGatesKey")
            .field("key", &self.0.key)
            .field("user_id", &self.0.user_id)
            .field("account", &self.account())
            .finish_non_exhaustive()
    }
}

impl ModelGatesKey {
    pub(crate) fn new(
        stored: StoredKey,
        client: ModelGatesClient,
        token: SessionToken,
        store: Arc<dyn ErasedStore>,
        streams: Arc<StreamSlots>,
        link: Option<Link>,
        seen: RequestSummary,
    ) -> Self {
        Self(Arc::new(KeyInner {
            key: stored.key,
            user_id: stored.user_id,
            app_data: stored.app_data,
            client,
            token,
            store,
            streams,
            rate_limits: Mutex::new(None),
            link,
            seen,
        }))
    }

    /// What the layer saw of the request this key was loaded for.
    pub(crate) fn seen(&self) -> &RequestSummary {
        &self.0.seen
    }

    /// The app's user this key is linked to, in linked-account mode
    /// ([`ModelGatesConfig::with_linked_accounts`](crate::ModelGatesConfig::with_linked_accounts));
    /// `None` in login mode.
    #[must_use]
    pub fn account(&self) -> Option<&str> {
        self.0.link.as_ref().map(|link| link.account.as_str())
    }

    /// Unlinks a linked account's key once ModelGates rejected it (in the background: the
    /// caller gets ModelGates' answer at once).
    fn heard_status(inner: &KeyInner, status: u16) {
        use std::sync::atomic::Ordering;
        let Some(link) = &inner.link else { return };
        if status == 401 && !link.rejected.swap(true, Ordering::AcqRel) {
            (link.on_rejected)(&link.account);
        }
    }

    /// For a linked account's key: unlinks it in the background (unless that was done already)
    /// and answers `true`. `false` for a key of login mode.
    pub(crate) fn unlink_rejected(&self) -> bool {
        Self::heard_status(&self.0, 401);
        self.0.link.is_some()
    }

    /// `result`, after unlinking a linked account's key that ModelGates rejected.
    fn heard<T>(&self, result: Result<T, RequestError>) -> Result<T, RequestError> {
        if let Err(RequestError::KeyRejected) = &result {
            Self::heard_status(&self.0, 401);
        }
        result
    }

    /// Adds the `X-RateLimit-*` headers of this request's latest call to ModelGates to
    /// `headers`, unless the handler set any of them itself.
    pub(crate) fn pass_on_rate_limits(&self, headers: &mut http::HeaderMap) {
        let latest = self
            .0
            .rate_limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(latest) = latest else { return };
        if RateLimitHeaders::NAMES
            .iter()
            .any(|name| headers.contains_key(*name))
        {
            return;
        }
        for (name, value) in latest.pairs() {
            headers.insert(http::HeaderName::from_static(name), value.into());
        }
    }

    /// Keeps each answer's rate-limit headers for [`Self::pass_on_rate_limits`], and unlinks
    /// a linked account's key that ModelGates rejected; for the OpenAI clients.
    #[cfg(feature = "openai")]
    fn observer(
        &self,
    ) -> impl Fn(&modelgates_oauth_core::openai::Answered) + Send + Sync + 'static {
        let inner = Arc::clone(&self.0);
        move |answered| {
            if let Some(headers) = answered.rate_limits {
                *inner
                    .rate_limits
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(headers);
            }
            Self::heard_status(&inner, answered.status);
        }
    }

    /// One of the streams this session may hold open at once
    /// ([`ModelGatesConfig::with_max_streams_per_session`](crate::ModelGatesConfig::with_max_streams_per_session)),
    /// for a handler that relays a stream itself: keep the slot with the stream, so that it is
    /// freed when the stream ends. [`Self::stream_chat`] takes one on its own.
    ///
    /// # Errors
    ///
    /// [`ApiError::TooManyStreams`] (429) when the session holds every slot,
    /// [`ApiError::ServerRestarting`] (503) once the server closed its streams for a
    /// shutdown: start nothing.
    pub fn stream_slot(&self) -> Result<StreamSlot, ApiError> {
        self.0
            .streams
            .take(self.0.token.digest())
            .map_err(|refused| {
                match refused {
                    NoSlot::Full => ApiError::TooManyStreams {
                        max: self.0.streams.max(),
                    },
                    NoSlot::Closing => ApiError::ServerRestarting,
                }
                .counted()
            })
    }

    /// This sign-in's session in the layer's key store: revoke it, or sign the user out
    /// everywhere else.
    #[must_use]
    pub fn session(&self) -> Session<'_> {
        Session { inner: &self.0 }
    }

    /// The session's token and store, for the layer's sign-out.
    pub(crate) fn session_parts(&self) -> (&SessionToken, &dyn ErasedStore) {
        (&self.0.token, &*self.0.store)
    }

    /// The value the app's on-sign-in hook kept with this session
    /// ([`ModelGatesConfig::with_on_sign_in`](crate::ModelGatesConfig::with_on_sign_in)):
    /// `Ok(None)` when it kept none (or there is no hook).
    ///
    /// # Errors
    ///
    /// When the kept JSON does not read as `T` (the hook returned another type).
    pub fn app_data<T: serde::de::DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        self.0
            .app_data
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
    }

    /// The user-controlled key. Send it only to ModelGates.
    #[must_use]
    pub fn api_key(&self) -> &ApiKey {
        &self.0.key
    }

    /// ModelGates' id of the user, when it sent one.
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        self.0.user_id.as_deref()
    }

    /// The layer's ModelGates client (shared connection pools).
    #[must_use]
    pub fn client(&self) -> &ModelGatesClient {
        &self.0.client
    }

    /// An `async_openai::Client` for ModelGates' OpenAI-compatible API with this key, for
    /// calls that answer whole (total timeout: [`ModelGatesConfig::with_api_timeout`]). See
    /// [`ModelGatesClient::openai`].
    ///
    /// [`ModelGatesConfig::with_api_timeout`]: crate::ModelGatesConfig::with_api_timeout
    #[cfg(feature = "openai")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
    #[must_use]
    pub fn openai(
        &self,
    ) -> modelgates_oauth_core::async_openai::Client<
        modelgates_oauth_core::async_openai::config::OpenAIConfig,
    > {
        self.0.client.openai_observed(&self.0.key, self.observer())
    }

    /// An `async_openai::Client` for streams with this key: no total timeout, an idle timeout
    /// between chunks ([`ModelGatesConfig::with_stream_idle_timeout`]). See
    /// [`sse`](crate::sse) to relay a stream to a browser.
    ///
    /// [`ModelGatesConfig::with_stream_idle_timeout`]: crate::ModelGatesConfig::with_stream_idle_timeout
    #[cfg(feature = "openai")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
    #[must_use]
    pub fn openai_stream(
        &self,
    ) -> modelgates_oauth_core::async_openai::Client<
        modelgates_oauth_core::async_openai::config::OpenAIConfig,
    > {
        self.0
            .client
            .openai_stream_observed(&self.0.key, self.observer())
    }

    /// This key's limit and usage (`GET /api/v1/key`).
    ///
    /// # Errors
    ///
    /// [`RequestError::KeyRejected`] when the key was revoked; convert it into
    /// [`ApiError`] with `?` to sign the user out.
    pub async fn key_info(&self) -> Result<KeyInfo, RequestError> {
        self.heard(self.0.client.key_info(&self.0.key).await)
    }

    /// The models this user's settings on ModelGates allow (`GET /api/v1/models/user`).
    ///
    /// # Errors
    ///
    /// As [`ModelGatesClient::models_for_user`].
    pub async fn models_for_user(&self) -> Result<Vec<ModelInfo>, RequestError> {
        self.heard(self.0.client.models_for_user(&self.0.key).await)
    }

    /// Where the user sees, limits or revokes this key on ModelGates:
    /// `{base URL}/keys/{lowercase hex SHA-256 of the key}`. The key itself never goes in a
    /// URL.
    ///
    /// ```
    /// # fn show(key: modelgates_axum::ModelGatesKey) {
    /// let link = format!("<a href=\"{}\">Manage this key on ModelGates</a>", key.manage_url());
    /// # }
    /// ```
    #[must_use]
    pub fn manage_url(&self) -> String {
        self.0.client.manage_url(&self.0.key)
    }

    /// The models ModelGates offers (`GET /api/v1/models`).
    ///
    /// # Errors
    ///
    /// As [`ModelGatesClient::models`].
    pub async fn models(&self) -> Result<Vec<ModelInfo>, RequestError> {
        self.0.client.models().await
    }

    /// Starts a streamed completion with this key and relays it as server-sent events (see
    /// [`sse`](crate::sse)). `stream: true` is set on the request.
    ///
    /// # Errors
    ///
    /// An [`ApiError`] when ModelGates refuses to start the stream;
    /// returned from a handler, [`ApiError::KeyRejected`]
    /// signs the user out.
    #[cfg(feature = "openai")]
    #[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
    pub async fn stream_chat(
        &self,
        mut request: CreateChatCompletionRequest,
    ) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>> + Send + use<>>, ApiError> {
        use tracing::Instrument as _;
        request.stream = Some(true);
        let started = std::time::Instant::now();
        let span = crate::sse::stream_span(&request.model);
        let started_stream = async {
            let slot = self.stream_slot()?;
            let upstream = self
                .0
                .client
                .chat_stream_observed(&self.0.key, request, self.observer())
                .await?;
            Ok((slot, upstream))
        }
        .instrument(span.clone())
        .await;
        let (slot, upstream) = started_stream.inspect_err(|error: &ApiError| {
            span.record("outcome", Outcome::Refused.as_str());
            span.record("error.type", error.code());
        })?;
        Ok(crate::sse::relay(
            upstream,
            self.client().stream_idle_timeout(),
            slot,
            crate::sse::Timing { span, started },
        ))
    }

    /// The key from a request's extensions, for tower services without axum's extractors:
    /// `Ok(Some(key))` signed in, `Ok(None)` signed out. Call it where the service is called
    /// or its future polled, as an extractor is (a signed-out request carries no extension:
    /// see [`ModelGatesAuth`](crate::ModelGatesAuth#signed-in-requests)).
    ///
    /// # Errors
    ///
    /// [`RejectionKind::MissingLayer`] when `ModelGatesAuth` did not see the request,
    /// [`RejectionKind::StoreUnavailable`] when the request carries a key cookie but
    /// the key store failed to answer (both respond in JSON: the extensions do not say what
    /// the client prefers).
    pub fn from_extensions(
        extensions: &Extensions,
    ) -> Result<Option<Self>, ModelGatesKeyRejection> {
        match AuthSeen::of(extensions) {
            Some(AuthSeen::Context(context)) if context.store_unavailable => {
                Err(ModelGatesKeyRejection::store_unavailable(false))
            }
            Some(AuthSeen::Context(context)) => Ok(context.key.clone()),
            Some(AuthSeen::SignedOut(_)) => Ok(None),
            None => Err(ModelGatesKeyRejection::missing_layer(false)),
        }
    }
}

/// What the layer tells handlers about a request that has a key, was refused one, or whose
/// store failed to answer (a signed-out request gets none: see [`crate::context`]).
#[derive(Clone)]
pub(crate) struct AuthContext {
    pub(crate) key: Option<ModelGatesKey>,
    /// The request carries a key cookie but the key store failed to answer: handlers that
    /// need the key answer 503, never "signed out".
    pub(crate) store_unavailable: bool,
    /// The layer's sign-in route.
    pub(crate) sign_in: &'static SignInRoute,
    /// The prefix a nesting router stripped before the layer saw the request (empty, and not
    /// allocated, on the outermost router).
    pub(crate) mount: String,
}

/// What the layer told the handler of a request, as the extractors find it.
enum AuthSeen<'a> {
    /// The request's extension.
    Context(&'a AuthContext),
    /// No extension, inside the scope of a layer that saw a signed-out request.
    SignedOut(&'static SignInRoute),
}

impl<'a> AuthSeen<'a> {
    /// `None` when no `ModelGatesAuth` saw the request.
    fn of(extensions: &'a Extensions) -> Option<Self> {
        match extensions.get::<AuthContext>() {
            Some(context) => Some(Self::Context(context)),
            None => signed_out_layer().map(Self::SignedOut),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ModelGatesKey {
    type Rejection = ModelGatesKeyRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match AuthSeen::of(&parts.extensions) {
            Some(AuthSeen::Context(context)) => match &context.key {
                Some(key) => Ok(key.clone()),
                None if context.store_unavailable => Err(
                    ModelGatesKeyRejection::store_unavailable(prefers_html(&parts.headers)),
                ),
                None => Err(signed_out(parts, context.sign_in, &context.mount)),
            },
            Some(AuthSeen::SignedOut(sign_in)) => Err(signed_out(parts, sign_in, "")),
            None => Err(ModelGatesKeyRejection::missing_layer(prefers_html(
                &parts.headers,
            ))),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for ModelGatesKey {
    type Rejection = ModelGatesKeyRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match AuthSeen::of(&parts.extensions) {
            Some(AuthSeen::Context(context)) if context.store_unavailable => Err(
                ModelGatesKeyRejection::store_unavailable(prefers_html(&parts.headers)),
            ),
            Some(AuthSeen::Context(context)) => Ok(context.key.clone()),
            Some(AuthSeen::SignedOut(_)) => Ok(None),
            None => Err(ModelGatesKeyRejection::missing_layer(prefers_html(
                &parts.headers,
            ))),
        }
    }
}

/// The rejection of a signed-out request that reached the layer under `mount`.
fn signed_out(parts: &Parts, sign_in: &SignInRoute, mount: &str) -> ModelGatesKeyRejection {
    let login_path = sign_in.login_path(mount);
    let login = prefers_html(&parts.headers).then(|| {
        let back = if is_reading(&parts.method) {
            let uri = original_uri(&parts.uri, &parts.extensions);
            ComingBack::Navigation(uri.path_and_query().map_or("/", PathAndQuery::as_str))
        } else {
            ComingBack::FormPost(parts.headers.get(http::header::REFERER))
        };
        login_coming_back(&login_path, &sign_in.public_origin, back)
    });
    ModelGatesKeyRejection::signed_out(login, login_path, sign_in.mode)
}

/// Where a browser that must sign in first comes back to.
pub(crate) enum ComingBack<'a> {
    /// After a navigation: the page itself (its path and query), as the browser asked for it.
    Navigation(&'a str),
    /// After a form post: the page the form was on, when the `Referer` is a page of this
    /// app's origin; else `/`.
    FormPost(Option<&'a http::HeaderValue>),
}

/// The login route `login_path` for a browser that must sign in first, coming back as `back`
/// says (a `Referer` counts when it starts with `public_origin`).
pub(crate) fn login_coming_back(
    login_path: &str,
    public_origin: &str,
    back: ComingBack<'_>,
) -> String {
    let back = match back {
        ComingBack::Navigation(path_and_query) => path_and_query,
        ComingBack::FormPost(referer) => referer
            .and_then(|referer| referer.to_str().ok())
            .and_then(|referer| referer.strip_prefix(public_origin))
            .filter(|path| path.starts_with('/'))
            .and_then(|path| path.split('#').next())
            .unwrap_or("/"),
    };
    login_url(login_path, back)
}

/// `login_path` with `return_to`, when `return_to` is a safe local target (see
/// [`is_safe_return_to`]); `login_path` alone otherwise.
pub(crate) fn login_url(login_path: &str, return_to: &str) -> String {
    if is_safe_return_to(return_to) {
        let encoded: String = form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        format!("{login_path}?return_to={encoded}")
    } else {
        login_path.to_owned()
    }
}

mod rejection;
mod session;

use crate::stream_slots::{NoSlot, StreamSlots};
pub use crate::stream_slots::{OpenStreams, StreamSlot};
/// The connection's peer address, which the layer reads to tell clients apart (with
/// [`TrustedProxies`](crate::config::TrustedProxies) behind proxies). axum inserts it when the
/// app is served with `into_make_service_with_connect_info::<SocketAddr>()`; a server that is
/// not axum's inserts `ConnectInfo(peer)` into each request's extensions itself.
pub use axum::extract::ConnectInfo;
pub use rejection::{ModelGatesKeyRejection, RejectionKind};
pub use session::{Session, SignOut};
