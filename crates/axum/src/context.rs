//! Where a request met the layer: [`mount_of`] (the prefix a nesting router stripped), worked
//! out once in its service and handed down to the sign-in routes ([`RequestContext`]), the
//! extractor and the response future; the URI the browser sent ([`original_uri`]); and what a
//! signed-out request's rejection needs of the layer ([`SignInRoute`]).
//!
//! The rules of the mount: axum's `Router::nest("/app", …)` strips `/app` from the request's
//! path and keeps the whole URI in `OriginalUri`. The layer matches its own routes against
//! the path it sees, and builds every URL it sends out (the login link, `return_to`, the
//! callback URL given to ModelGates) from the original URI, so a layer inside
//! `nest("/app", …)` sends users to `/app/login` and back to `/app/…`. A nested router routes
//! the layer's paths only when they are registered in it:
//! [`ModelGatesAuth::routes`](crate::ModelGatesAuth::routes) does that, and without it a nested
//! layer refuses every request with a message that says so.
//!
//! How the extractor knows the layer saw a signed-out request: a request with a key (or one
//! the layer refused, or one whose store failed) carries an extension; a signed-out one
//! carries nothing, so that it costs no allocation. Instead the layer's [`SignInRoute`] is a
//! thread-local value while the inner service is called and while its future is polled
//! ([`call_signed_out`]): extractors and [`ModelGatesKey::from_extensions`] run inside one or
//! the other, on the thread that polls the request's task, so they find it. A service that
//! moves the request's handling to another task (a `tokio::spawn` between the layer and the
//! handler) leaves that scope: the extractor there answers 500 "missing layer", as it would
//! without the layer.
//!
//! [`ModelGatesKey::from_extensions`]: crate::ModelGatesKey::from_extensions

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::extract::OriginalUri;
use http::uri::PathAndQuery;
use http::{HeaderValue, Request, Uri};
use tower_service::Service;

use crate::linked::Mode;
use crate::response::{is_reading, prefers_html};

/// What a signed-out request's rejection needs of the layer that saw it: the login route as
/// the outermost router reaches it, the app's public origin (to recognise its own pages in a
/// `Referer`), and whose words to speak. One per distinct route, shared by every layer that
/// has it ([`SignInRoute::interned`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SignInRoute {
    /// The login route on the outermost router.
    pub(crate) login: Arc<str>,
    /// The app's public origin.
    pub(crate) public_origin: Arc<str>,
    /// A sign-in, or a linked account's connection.
    pub(crate) mode: Mode,
}

impl SignInRoute {
    /// The login route for a request that reached the layer under `mount` (empty on the
    /// outermost router).
    pub(crate) fn login_path(&self, mount: &str) -> String {
        format!("{mount}{}", self.login)
    }

    /// This route for the life of the process, so that a layer's scope is a plain reference in
    /// a thread-local cell: no reference count to touch per request. Routes are kept once per
    /// distinct value (layers built again with the same login route, origin and mode share
    /// one), so rebuilding layers does not grow the set.
    pub(crate) fn interned(self) -> &'static Self {
        static ROUTES: Mutex<Vec<&'static SignInRoute>> = Mutex::new(Vec::new());
        let mut routes = ROUTES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = routes.iter().find(|known| ***known == self) {
            return known;
        }
        let route: &'static Self = Box::leak(Box::new(self));
        routes.push(route);
        route
    }
}

thread_local! {
    /// The layer that saw the signed-out request being handled on this thread, if any (see
    /// the module docs).
    static SIGNED_OUT: Cell<Option<&'static SignInRoute>> = const { Cell::new(None) };
}

/// While alive, `route` is the signed-out request's layer on this thread; dropping it (also
/// when unwinding) restores the one before, so that scopes nest.
struct Scope(Option<&'static SignInRoute>);

impl Scope {
    #[inline]
    fn enter(route: &'static SignInRoute) -> Self {
        Self(SIGNED_OUT.replace(Some(route)))
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        SIGNED_OUT.set(self.0);
    }
}

pin_project_lite::pin_project! {
    /// A signed-out request's future, polled in its layer's scope.
    pub(crate) struct SignedOutScope<F> {
        route: &'static SignInRoute,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for SignedOutScope<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _scope = Scope::enter(this.route);
        this.future.poll(cx)
    }
}

/// Calls `service` with `request` and wraps the future it returns, so that both run with
/// `route` as the signed-out request's layer.
#[inline]
pub(crate) fn call_signed_out<S: Service<R>, R>(
    route: &'static SignInRoute,
    service: &mut S,
    request: R,
) -> SignedOutScope<S::Future> {
    let scope = Scope::enter(route);
    let future = service.call(request);
    drop(scope);
    SignedOutScope { route, future }
}

/// The layer of the signed-out request being handled, if one is in scope.
pub(crate) fn signed_out_layer() -> Option<&'static SignInRoute> {
    SIGNED_OUT.get()
}

/// The URI the browser sent for the request whose parts these are: `OriginalUri` (the whole
/// one, which axum's outermost `Router` keeps) or, outside axum's routers, the request's own.
pub(crate) fn original_uri<'a>(uri: &'a Uri, extensions: &'a http::Extensions) -> &'a Uri {
    extensions
        .get::<OriginalUri>()
        .map_or(uri, |OriginalUri(original)| original)
}

/// What the layer knows of one request it answers itself (a sign-in route).
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    /// The prefix a nesting router stripped before the layer saw the request; empty (and not
    /// allocated) on the outermost router.
    pub(crate) mount: String,
}

impl RequestContext {
    /// The context of a request that reached the layer under `mount` ([`mount_of`]).
    pub(crate) fn at(mount: Option<String>) -> Self {
        Self {
            mount: mount.unwrap_or_default(),
        }
    }
}

/// The prefix a nesting router stripped from `request`; `None` on the outermost router (or
/// outside axum).
#[inline]
pub(crate) fn mount_of<B>(request: &Request<B>) -> Option<String> {
    let OriginalUri(original) = request.extensions().get::<OriginalUri>()?;
    let (full, seen) = (original.path(), request.uri().path());
    if full == seen {
        return None;
    }
    // The nested router's own root is `/`, reached as `/app` or `/app/`.
    let prefix = full
        .strip_suffix(seen)
        .or_else(|| (seen == "/").then(|| full.trim_end_matches('/')))?;
    (!prefix.is_empty()).then(|| prefix.to_owned())
}

/// The root of the router `request` reached: its nesting prefix, or `/`.
pub(crate) fn root_of<B>(request: &Request<B>) -> String {
    mount_of(request).unwrap_or_else(|| "/".to_owned())
}

/// The root of a router nested at `prefix` (empty on the outermost router: `/`).
pub(crate) fn root(prefix: &str) -> &str {
    if prefix.is_empty() { "/" } else { prefix }
}

/// What the layer keeps of a signed-in request to act on its response: flags and cheap
/// clones, so that the work of a sign-out is done only when one happens.
pub(crate) struct RequestSummary {
    /// The client prefers HTML: a browser (the crate's one negotiation rule).
    pub(crate) wants_page: bool,
    /// Where a browser signed out on the way out comes back to after signing in again.
    pub(crate) back: Back,
    /// The prefix a nesting router stripped before the layer saw the request.
    pub(crate) mount: String,
}

/// Where a browser comes back to (see [`ComingBack`](crate::extract::ComingBack)), kept past
/// the request.
pub(crate) enum Back {
    /// A `GET` or `HEAD`: the page itself (the original path and query); `None` for a client
    /// that is not a browser, which is not sent anywhere.
    Navigation(Option<PathAndQuery>),
    /// A browser's form post: its `Referer`.
    FormPost(Option<HeaderValue>),
}

impl RequestSummary {
    /// The summary of `request`, which reached the layer under `mount` (empty on top).
    pub(crate) fn of<B>(request: &http::Request<B>, mount: String) -> Self {
        let headers = request.headers();
        let wants_page = prefers_html(headers);
        let back = match (wants_page, is_reading(request.method())) {
            (false, _) => Back::Navigation(None),
            (true, true) => Back::Navigation(
                original_uri(request.uri(), request.extensions())
                    .path_and_query()
                    .cloned(),
            ),
            (true, false) => Back::FormPost(headers.get(http::header::REFERER).cloned()),
        };
        Self {
            wants_page,
            back,
            mount,
        }
    }

    /// The summary for a key loaded outside any request (a background job's): not a
    /// browser, nowhere to come back to, on the outermost router.
    pub(crate) fn no_request() -> Self {
        Self {
            wants_page: false,
            back: Back::Navigation(None),
            mount: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(full: &str, seen: &str) -> Option<String> {
        let mut request = Request::get(seen).body(()).unwrap();
        request
            .extensions_mut()
            .insert(OriginalUri(full.parse().unwrap()));
        mount_of(&request)
    }

    #[test]
    fn prefixes() {
        assert_eq!(nested("/app/me?x=1", "/me?x=1").as_deref(), Some("/app"));
        assert_eq!(nested("/a/b/login", "/login").as_deref(), Some("/a/b"));
        assert_eq!(nested("/app", "/").as_deref(), Some("/app"));
        assert_eq!(nested("/app/", "/").as_deref(), Some("/app"));
        assert_eq!(nested("/me", "/me"), None);
        assert_eq!(mount_of(&Request::get("/me").body(()).unwrap()), None);
    }
}
