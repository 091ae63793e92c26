//! The sign-in flow: the three routes the layer answers itself (`/login`, `/callback/…`,
//! `/logout`), the flow's state between them, its errors, and where a user may be sent back
//! to. The rules these routes apply are documented once, on
//! [`ModelGatesAuth`](crate::ModelGatesAuth#routes).
//!
//! Each route gets one [`Step`]: the request, the [`RequestContext`] the service worked out
//! once, and whether an error is answered as a page (negotiated once). What needs no web
//! framework (the flow state, its sealing, the check of a callback against it, the kind of
//! each exchange failure) is oauth-core's; this module is the HTTP around it (the status of
//! each failure included) and the spent-flow registry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum_core::body::Body;
use http::request::Parts;
use http::{Method, Response};
use modelgates_oauth_core::key::SpendLimit;
use modelgates_oauth_core::{ChallengeMethod, KeyRequest, ModelGatesClient, PreparedAuthUrl, Url};
use tracing::Instrument as _;

use crate::context::RequestContext;
use crate::cookies::KeyCookie;
use crate::forwarded::{Client, TrustedProxies};
use crate::limits::{ClientKey, ExchangeGate};
use crate::linked::{AppUser, Mode};
use crate::observe::Outcome;
use crate::response::{no_store, prefers_html};
use crate::same_origin::is_cross_site;
use crate::store::KeyStore;

mod callback;
mod error;
mod host;
mod login;
mod logout;
mod return_to;
mod state;

pub(crate) use crate::hooks::{
    HookFailure, OnSignIn, OnSignOut, SignIn, SignInRejected, SignOutReason, SignedOut,
    boxed as boxed_hook, boxed_sign_out,
};
#[cfg(fuzzing)]
pub(crate) use callback::callback_code;
pub use error::AuthError;
pub(crate) use error::ErrorPage;
pub(crate) use host::PublicHost;
pub(crate) use logout::forget_link;
pub use return_to::is_safe_return_to;
pub(crate) use return_to::sanitize;
pub(crate) use state::{FlowCookie, SpentFlows};

/// Which of the layer's own routes a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Login,
    Callback,
    Logout,
}

/// The layer's three paths, configured prefix included, and the callback URL they make.
///
/// The callback route is the callback path followed by one more path segment, the flow's id
/// (`/callback/<flow id>`); everything under the callback path is the layer's, so that a
/// malformed callback gets a precise error instead of the app's 404.
#[derive(Debug)]
pub(crate) struct Paths {
    pub(crate) login: Arc<str>,
    pub(crate) callback: String,
    pub(crate) logout: String,
    /// The public URL joined with the callback path.
    pub(crate) callback_url: Url,
}

impl Paths {
    /// The layer's own route at `path`, if any.
    #[inline]
    pub(crate) fn route(&self, path: &str) -> Option<Route> {
        if path == &*self.login {
            Some(Route::Login)
        } else if path
            .strip_prefix(&self.callback)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        {
            Some(Route::Callback)
        } else if path == self.logout {
            Some(Route::Logout)
        } else {
            None
        }
    }

    /// The flow id a callback path carries: the one segment after the callback path.
    pub(crate) fn flow_id_in<'p>(&self, path: &'p str) -> Option<&'p str> {
        let id = path.strip_prefix(&self.callback)?.strip_prefix('/')?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }

    /// The callback URL for a layer mounted under `mount` (the path prefix a nesting router
    /// stripped; empty on the outermost router).
    pub(crate) fn callback_url_for(&self, mount: &str) -> Url {
        let mut url = self.callback_url.clone();
        if !mount.is_empty() {
            url.set_path(&format!("{mount}{}", self.callback));
        }
        url
    }

    /// The login route as a browser reaches it under `mount`.
    pub(crate) fn login_for(&self, mount: &str) -> String {
        format!("{mount}{}", self.login)
    }
}

/// Everything the sign-in routes read, resolved once when the layer is built.
pub(crate) struct Flow {
    pub(crate) client: ModelGatesClient,
    pub(crate) paths: Paths,
    /// The `/auth` URLs of sign-ins started on the outermost router, prepared once.
    pub(crate) auth_url: PreparedAuthUrl,
    /// The app's origin, such as `https://app.example`, for the same-origin check of logout.
    pub(crate) public_origin: Arc<str>,
    /// The public URL's host, to recognise a browser on another one.
    pub(crate) public_host: PublicHost,
    pub(crate) flow_cookie: FlowCookie,
    pub(crate) key_cookie: KeyCookie,
    pub(crate) flow_max_age: Duration,
    pub(crate) key_max_age: Duration,
    /// `None`: no PKCE challenge at all (an explicit, weak opt-in).
    pub(crate) challenge_method: Option<ChallengeMethod>,
    /// `None`: the root of the router the layer sits in.
    pub(crate) default_return_to: Option<String>,
    /// `None`: the default return_to.
    pub(crate) post_logout_redirect: Option<String>,
    /// The spend limit and label asked for every key, unless the user picks a limit.
    pub(crate) key_request: KeyRequest,
    /// The most a user may pick.
    pub(crate) max_key_limit: SpendLimit,
    pub(crate) on_sign_in: Option<OnSignIn>,
    pub(crate) on_sign_out: Option<OnSignOut>,
    pub(crate) error_page: Option<ErrorPage>,
    pub(crate) spent: SpentFlows,
    /// The bounds on failed key exchanges.
    pub(crate) exchange_gate: ExchangeGate,
    /// How the bounds tell clients apart.
    pub(crate) client_key: ClientKey,
    /// The proxies whose forwarding headers are believed.
    pub(crate) trusted_proxies: TrustedProxies,
    /// The warnings said once per layer.
    pub(crate) warned: Warned,
    /// One permit per key exchange in flight.
    pub(crate) exchange_slots: tokio::sync::Semaphore,
    /// The layer's login, or an account linked to the app's users: the words of its pages.
    pub(crate) mode: Mode,
    /// Linked accounts: the app's function naming the app user of a request.
    pub(crate) app_user: Option<AppUser>,
}

impl Flow {
    /// The response for `error` to `step`: JSON, the app's page, or the built-in page linking
    /// to the login route and the app's home as the browser reaches them.
    fn render(&self, error: &AuthError, wants_page: bool, mount: &str) -> Response<Body> {
        error.render(wants_page, &self.links(mount), self.error_page.as_ref())
    }

    /// The app user of a request, in linked-account mode: `None` in login mode, `Some(None)`
    /// when nobody is signed in to the app.
    pub(crate) fn app_user_of(&self, parts: &Parts) -> Option<Option<String>> {
        self.app_user.as_ref().map(|app_user| app_user(parts))
    }

    /// The links a built-in page offers under `mount`.
    pub(crate) fn links(&self, mount: &str) -> PageLinks {
        PageLinks {
            login: self.paths.login_for(mount),
            home: self.default_return_to(mount).to_owned(),
            mode: self.mode,
        }
    }

    /// Where a sign-in goes without a valid `return_to`: the configured path, else the root of
    /// the router the layer sits in (`mount`, or `/` on the outermost router).
    pub(crate) fn default_return_to<'a>(&'a self, mount: &'a str) -> &'a str {
        self.default_return_to
            .as_deref()
            .unwrap_or_else(|| crate::context::root(mount))
    }

    /// Tells the app's on-sign-out hook, if any, that a user was signed out.
    pub(crate) async fn heard_sign_out(
        &self,
        reason: SignOutReason,
        user_id: Option<String>,
        account: Option<String>,
    ) {
        if let Some(hook) = &self.on_sign_out {
            hook(SignedOut {
                reason,
                user_id,
                account,
            })
            .await;
        }
    }

    /// Where logout sends the browser under `mount`.
    pub(crate) fn post_logout_redirect<'a>(&'a self, mount: &'a str) -> &'a str {
        self.post_logout_redirect
            .as_deref()
            .unwrap_or_else(|| self.default_return_to(mount))
    }
}

/// The links of a built-in error page, as the browser reaches them.
#[derive(Debug, Clone)]
pub(crate) struct PageLinks {
    /// The login route.
    pub(crate) login: String,
    /// The app's home: the default `return_to`.
    pub(crate) home: String,
    /// Whose words the page speaks.
    pub(crate) mode: Mode,
}

/// One request to a sign-in route: its parts, what the layer worked out of it once
/// ([`RequestContext`]), and whether an error is answered as a page (the crate's one
/// negotiation rule, asked once for the request).
pub(crate) struct Step {
    pub(crate) parts: Parts,
    pub(crate) context: RequestContext,
    pub(crate) wants_page: bool,
    /// The client by the trusted-proxy rule.
    pub(crate) client: Client,
}

/// The warnings a layer says once: about a deployment, not a request.
#[derive(Debug, Default)]
pub(crate) struct Warned {
    untrusted_headers: AtomicBool,
    no_peer: AtomicBool,
}

impl Flow {
    /// The client of `parts`, by the trusted-proxy rule; says once (and counts) when the layer
    /// cannot tell clients apart.
    fn client_of(&self, parts: &Parts) -> Client {
        let client = Client::of(parts, &self.trusted_proxies);
        if client.ignored_headers && !self.trusted_proxies.any() {
            crate::observe::untrusted_forwarding_headers();
            if !self.warned.untrusted_headers.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "sign-in requests carry Forwarded or X-Forwarded-* headers, but no proxy is \
                     trusted: they are ignored, and every client behind the proxy counts as the \
                     proxy's address; name the proxy with MODELGATES_TRUSTED_PROXIES \
                     (ModelGatesConfig::with_trusted_proxies)"
                );
            }
        }
        if client.no_peer
            && self.client_key.is_peer_ip()
            && !self.warned.no_peer.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "the layer cannot tell clients apart: the app is served without ConnectInfo; \
                 serve it with `into_make_service_with_connect_info::<SocketAddr>()`, or the \
                 per-client bound on sign-ins is off"
            );
        }
        client
    }
}

impl Step {
    /// The prefix of the router the layer sits in, as this request reached it.
    fn mount(&self) -> &str {
        &self.context.mount
    }
}

/// Answers a request for one of the layer's routes, in the route's span (see
/// [`observe`](crate::observe#spans)).
pub(crate) async fn handle<K: KeyStore>(
    route: Route,
    flow: &Flow,
    store: &K,
    parts: Parts,
    context: RequestContext,
) -> Response<Body> {
    let client = flow.client_of(&parts);
    let span = step_span(route, flow, &parts, &client);
    let step = Step {
        wants_page: prefers_html(&parts.headers),
        parts,
        context,
        client,
    };
    let response = answer(route, flow, store, step)
        .instrument(span.clone())
        .await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// The span of one sign-in step. The callback's path holds the flow id, so only its route is
/// recorded.
fn step_span(route: Route, flow: &Flow, parts: &Parts, client: &Client) -> tracing::Span {
    use tracing::field::Empty;
    let method = parts.method.as_str();
    let client = client.address.map(tracing::field::display);
    match route {
        Route::Login => tracing::info_span!(
            "modelgates.login",
            "http.request.method" = method,
            "client.address" = client,
            "http.route" = &*flow.paths.login,
            "url.path" = parts.uri.path(),
            "http.response.status_code" = Empty,
            outcome = Empty,
            "error.type" = Empty,
        ),
        Route::Callback => tracing::info_span!(
            "modelgates.callback",
            "http.request.method" = method,
            "client.address" = client,
            "http.route" = format_args!("{}/{{flow_id}}", flow.paths.callback),
            "http.response.status_code" = Empty,
            outcome = Empty,
            "error.type" = Empty,
        ),
        Route::Logout => tracing::info_span!(
            "modelgates.logout",
            "http.request.method" = method,
            "client.address" = client,
            "http.route" = flow.paths.logout.as_str(),
            "url.path" = parts.uri.path(),
            "http.response.status_code" = Empty,
            outcome = Empty,
            "error.type" = Empty,
        ),
    }
}

/// Records how a step ended on its span: `outcome`, and for a failure `error.type`.
fn record_outcome(outcome: Outcome, error: Option<&AuthError>) {
    let span = tracing::Span::current();
    span.record("outcome", outcome.as_str());
    if let Some(error) = error {
        span.record("error.type", error.code());
    }
}

/// The route's answer.
async fn answer<K: KeyStore>(route: Route, flow: &Flow, store: &K, step: Step) -> Response<Body> {
    let parts = &step.parts;
    let allowed = match route {
        Route::Login | Route::Callback => Method::GET,
        Route::Logout => Method::POST,
    };
    let refusal = if parts.method != allowed {
        Some(AuthError::MethodNotAllowed {
            method: parts.method.clone(),
            allow: if allowed == Method::GET {
                "GET"
            } else {
                "POST"
            },
        })
    } else if route == Route::Logout && is_cross_site(&parts.headers, &flow.public_origin) {
        tracing::warn!("refused a cross-site logout");
        Some(AuthError::CrossSite)
    } else {
        None
    };
    if let Some(error) = refusal {
        record_outcome(error.outcome(), Some(&error));
        if route == Route::Callback {
            crate::observe::sign_in(error.outcome());
        }
        let mut response = flow.render(&error, step.wants_page, step.mount());
        no_store(&mut response);
        return response;
    }
    match route {
        Route::Login => login::login(flow, &step).await,
        Route::Callback => callback::callback(flow, store, step).await,
        Route::Logout => logout::logout(flow, store, &step).await,
    }
}
