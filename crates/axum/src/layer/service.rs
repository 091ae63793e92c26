//! [`ModelGatesAuthService`]: the layer's service, by the rules on
//! [`ModelGatesAuth`](crate::ModelGatesAuth).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use axum_core::BoxError;
use axum_core::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;

use super::future::{ResponseFuture, WayOut};
use super::resolved::Resolved;
use super::signed_in::{self, Authenticated, Lookup, Opening, SignOutPlan, Unlink, conclude};
use crate::context::{RequestContext, RequestSummary, call_signed_out, mount_of};
use crate::extract::AuthContext;
use crate::flow::{self, AuthError};
use crate::response::prefers_html;
use crate::store::{CookieStore, KeyStore, SessionToken};

/// Puts what handlers see of a signed-in (or refused) request into its extensions; returns
/// what the response gets on its way out: the cookie it must carry and, for a signed-in user,
/// how to sign them out and the key whose rate limits it passes on.
fn annotate<B>(
    state: &Arc<Resolved>,
    request: &mut Request<B>,
    authenticated: Authenticated,
    mount: String,
) -> WayOut {
    let Authenticated {
        key,
        set_cookie,
        store_unavailable,
    } = authenticated;
    let sign_out = key.clone().map(|key| SignOutPlan {
        state: state.clone(),
        key,
    });
    request.extensions_mut().insert(AuthContext {
        key,
        store_unavailable,
        sign_in: state.sign_in,
        mount,
    });
    WayOut {
        set_cookie: set_cookie.map(Box::new),
        sign_out,
    }
}

/// The answer of a layer inside a nested router whose paths are not routed to it.
fn misplaced(
    state: &Resolved,
    context: &RequestContext,
    headers: &http::HeaderMap,
) -> Response<Body> {
    let error = AuthError::Misplaced {
        prefix: context.mount.clone(),
    };
    tracing::error!("{error}");
    error.render(
        prefers_html(headers),
        &state.flow.links(&context.mount),
        None,
    )
}

/// The service [`ModelGatesAuth`](crate::ModelGatesAuth) wraps around an inner service.
/// Cheap to clone: the inner service and one reference count (axum clones a route's service
/// for every request).
pub struct ModelGatesAuthService<S, K = CookieStore> {
    inner: S,
    shared: Arc<Shared<K>>,
}

/// What the layer and every clone of its services share.
pub(super) struct Shared<K> {
    pub(super) state: Arc<Resolved>,
    pub(super) store: Arc<K>,
    pub(super) unlink: Unlink,
}

impl<S, K> ModelGatesAuthService<S, K> {
    /// The layer's service around `inner`: no allocation (axum may apply a layer per request
    /// to a router that was never given its state).
    pub(super) fn new(inner: S, shared: Arc<Shared<K>>) -> Self {
        Self { inner, shared }
    }
}

impl<S: Clone, K> Clone for ModelGatesAuthService<S, K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
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
    /// Calls the (ready) inner service for a signed-out (or not connected) request, which
    /// reached the layer under `mount`: on the outermost router at the cost of a thread-local
    /// scope, with no extension and no allocation; nested, with an extension that says where
    /// the layer sits.
    #[inline(always)]
    fn signed_out<ReqBody>(
        &mut self,
        mut request: Request<ReqBody>,
        mount: Option<String>,
    ) -> ResponseFuture<S::Future, S::Error>
    where
        S: Service<Request<ReqBody>>,
    {
        if let Some(mount) = mount {
            request.extensions_mut().insert(AuthContext {
                key: None,
                store_unavailable: false,
                sign_in: self.shared.state.sign_in,
                mount,
            });
            return ResponseFuture::inner(self.inner.call(request));
        }
        // An outer layer's word does not speak for this one.
        if !request.extensions().is_empty() {
            request.extensions_mut().remove::<AuthContext>();
        }
        ResponseFuture::signed_out(call_signed_out(
            self.shared.state.sign_in,
            &mut self.inner,
            request,
        ))
    }

    /// Calls the (ready) inner service with what `authenticated` says, unboxed.
    fn call_now<ReqBody>(
        &mut self,
        mut request: Request<ReqBody>,
        authenticated: Authenticated,
        mount: String,
    ) -> ResponseFuture<S::Future, S::Error>
    where
        S: Service<Request<ReqBody>>,
    {
        let way_out = annotate(&self.shared.state, &mut request, authenticated, mount);
        ResponseFuture::signed_in(self.inner.call(request), way_out)
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
        // `None` on the outermost router: nothing allocated.
        let mount = mount_of(&request);
        if mount.is_some() && !self.shared.state.routes_registered.load(Ordering::Relaxed) {
            let context = RequestContext::at(mount);
            return ResponseFuture::ready(misplaced(
                &self.shared.state,
                &context,
                request.headers(),
            ));
        }
        if let Some(route) = self.shared.state.flow.paths.route(request.uri().path()) {
            let context = RequestContext::at(mount);
            let shared = self.shared.clone();
            let (parts, _body) = request.into_parts();
            return ResponseFuture::boxed(async move {
                let flow = &shared.state.flow;
                Ok(flow::handle(route, flow, &*shared.store, parts, context).await)
            });
        }
        let (token, lookup) = if let Some(app_user) = &self.shared.state.flow.app_user {
            // Linked accounts: the key of this request's app user, whoever held the browser
            // before.
            let (parts, body) = request.into_parts();
            let account = app_user(&parts);
            request = Request::from_parts(parts, body);
            let Some(account) = account else {
                return self.signed_out(request, mount);
            };
            (
                SessionToken::for_account(&account),
                Lookup::Link { account },
            )
        } else {
            // The fast path: no key cookie, so no cryptography, no store, no boxing.
            match signed_in::open::<K>(&self.shared.state, request.headers()) {
                Opening::Absent => return self.signed_out(request, mount),
                Opening::Token {
                    token,
                    needs_reissue,
                } => (token, Lookup::Cookie { needs_reissue }),
                Opening::Refused(signed_out) => {
                    return self.call_now(request, signed_out, mount.unwrap_or_default());
                }
            }
        };
        // A store that answers at once (the cookie, in memory, a cache hit): no boxing.
        if let Some(loaded) = self.shared.store.load_now(&token) {
            let mount = mount.unwrap_or_default();
            let seen = RequestSummary::of(&request, mount.clone());
            let authenticated = conclude::<K>(
                &self.shared.state,
                &self.shared.store,
                &self.shared.unlink,
                token,
                lookup,
                loaded,
                seen,
            );
            return self.call_now(request, authenticated, mount);
        }
        // The store must wait (a database). The ready service is the one to call; leave a
        // fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        ResponseFuture::boxed(async move {
            let Shared {
                state,
                store,
                unlink,
            } = &*shared;
            let mount = mount.unwrap_or_default();
            let seen = RequestSummary::of(&request, mount.clone());
            let loaded = store.load(&token).await;
            let authenticated = conclude::<K>(state, store, unlink, token, lookup, loaded, seen);
            let way_out = annotate(state, &mut request, authenticated, mount);
            ResponseFuture::signed_in(inner.call(request), way_out).await
        })
    }
}
