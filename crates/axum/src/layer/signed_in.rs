//! Who is signed in: the key cookie opened, the key loaded from the store, the cookie the
//! response must carry, and the sign-out a response may ask for; by the rules on
//! [`ModelGatesAuth`](crate::ModelGatesAuth#signed-in-requests).

use std::sync::Arc;
use std::time::Duration;

use axum_core::BoxError;
use axum_core::body::Body;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Response};

use super::resolved::Resolved;
use crate::api_error::ApiProblem;
use crate::context::{Back, RequestSummary};
use crate::cookies::Unopened;
use crate::extract::{ComingBack, Link, ModelGatesKey, login_coming_back};
use crate::flow::{AuthError, SignOutReason};
use crate::linked::Mode;
use crate::observe::SessionEnd;
use crate::response::{no_store, see_other, set_cookie};
use crate::store::{ErasedStore, KeyStore, SessionToken, StoreError, StoredKey};
use modelgates_oauth_core::__private::unix_now;

/// The outcome of reading a request's key cookie.
pub(crate) struct Authenticated {
    /// The signed-in user's key (with its session), or `None` when signed out.
    pub(crate) key: Option<ModelGatesKey>,
    /// A `Set-Cookie` the response must carry: a deletion or a rotation.
    pub(crate) set_cookie: Option<HeaderValue>,
    /// The key store failed to answer for the request's cookie: neither signed in nor out.
    pub(crate) store_unavailable: bool,
}

/// Everything a response future needs to sign a signed-in user out, should the response ask,
/// or to show a browser an [`ApiError`](crate::ApiError) as a page.
pub(crate) struct SignOutPlan {
    pub(crate) state: Arc<Resolved>,
    /// The request's key, whose session a sign-out ends; it keeps what the layer saw of the
    /// request ([`ModelGatesKey::seen`]), so that the response future stays small.
    pub(crate) key: ModelGatesKey,
}

/// Who asked for a sign-out on the way out of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignOutAsked {
    /// ModelGates refused the key (an `ApiError::KeyRejected`): a browser is sent to sign in
    /// again.
    KeyRejected,
    /// The handler returned [`SignOut`](crate::extract::SignOut): its response is kept.
    App,
}

impl SignOutPlan {
    /// Signs the user out on the way out of `response`: the store forgets the session, the
    /// key cookie is deleted, and the on-sign-out hook hears it. After the app's
    /// [`SignOut`](crate::extract::SignOut) the handler's response is kept; after ModelGates
    /// refused the key, a browser (by the negotiation rule) is sent to sign in again, coming
    /// back where a signed-out browser would.
    pub(crate) async fn run<B>(self, response: Response<B>, asked: SignOutAsked) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let request = self.key.seen();
        let key = &self.key;
        let reason = match asked {
            SignOutAsked::KeyRejected => SignOutReason::KeyRejected,
            SignOutAsked::App => SignOutReason::App,
        };
        // A linked key ModelGates rejected is unlinked by the layer's unlinker, once.
        if !(asked == SignOutAsked::KeyRejected && key.unlink_rejected()) {
            let (token, store) = key.session_parts();
            if let Err(error) = store.remove_boxed(token).await {
                // Fail closed, as logout does: the cookie stays, so the next request (or the
                // next 401) signs out again.
                tracing::warn!(%error, reason = reason.as_str(), "the key store failed to forget a session at sign-out; the user stays signed in");
                return self.sign_out_failed(error);
            }
            let what = match asked {
                SignOutAsked::KeyRejected => "ModelGates rejected the key; signed out",
                SignOutAsked::App => "the app signed the user out",
            };
            tracing::info!(reason = reason.as_str(), "{what}");
            crate::observe::sign_out(SessionEnd::SignedOut(reason));
            self.state
                .flow
                .heard_sign_out(
                    reason,
                    key.user_id().map(str::to_owned),
                    key.account().map(str::to_owned),
                )
                .await;
        }
        let mut response = if asked == SignOutAsked::KeyRejected && request.wants_page {
            see_other(&self.login_coming_back())
        } else {
            response.map(Body::new)
        };
        if self.state.flow.mode == Mode::Login {
            set_cookie(&mut response, self.state.flow.key_cookie.clear());
        }
        response
    }

    /// The answer when the store could not forget the session: 503 `sign_out_failed` with
    /// `Retry-After`, negotiated, the cookie kept.
    fn sign_out_failed(&self, error: crate::store::StoreError) -> Response<Body> {
        let flow = &self.state.flow;
        let mut response = AuthError::SignOutFailed(error).render(
            self.key.seen().wants_page,
            &flow.links(self.mount()),
            flow.error_page.as_ref(),
        );
        no_store(&mut response);
        response
    }

    /// The prefix of the router the layer sits in, as this request reached it.
    fn mount(&self) -> &str {
        &self.key.seen().mount
    }

    /// The login route a browser is sent to, coming back to the page it navigated to, or to
    /// the page its form was on.
    fn login_coming_back(&self) -> String {
        let sign_in = &self.state.sign_in;
        let back = match &self.key.seen().back {
            Back::Navigation(path_and_query) => {
                ComingBack::Navigation(path_and_query.as_ref().map_or("/", PathAndQuery::as_str))
            }
            Back::FormPost(referer) => ComingBack::FormPost(referer.as_ref()),
        };
        login_coming_back(
            &sign_in.login_path(self.mount()),
            &sign_in.public_origin,
            back,
        )
    }

    /// `response`, an [`ApiError`](crate::ApiError)'s JSON, as a page when the client is a
    /// browser: the same problem rendered as HTML by the one renderer, same headers, with a link
    /// to manage the key on ModelGates when the user can act there.
    pub(crate) fn browser_page<B>(&self, response: Response<B>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let api = response
            .extensions()
            .get::<ApiProblem>()
            .filter(|_| self.key.seen().wants_page)
            .cloned();
        let Some(api) = api else {
            return response.map(Body::new);
        };
        let manage = api.links_to_key.then(|| self.key.manage_url());
        let home = self.state.flow.default_return_to(self.mount());
        let mut links = vec![("Back to the app", home)];
        if let Some(manage) = &manage {
            links.insert(0, ("Manage this key on ModelGates", manage.as_str()));
        }
        let (mut parts, _json) = response.into_parts();
        let (page, body) = api.problem.render(true, &links).into_parts();
        // The handler's own headers stay; the body's change with it.
        parts.headers.remove(http::header::CONTENT_LENGTH);
        parts.headers.remove(http::header::X_CONTENT_TYPE_OPTIONS);
        parts.headers.extend(page.headers);
        Response::from_parts(parts, body)
    }
}

/// The key cookie of a request, opened.
pub(crate) enum Opening {
    /// No key cookie: signed out, nothing to delete.
    Absent,
    /// No valid cookie: signed out, and the response deletes it.
    Refused(Authenticated),
    /// An authentic token, to look up in the store.
    Token {
        token: SessionToken,
        needs_reissue: bool,
    },
}

/// Opens the key cookie in `headers`, in one scan of them.
pub(crate) fn open<K: KeyStore>(state: &Resolved, headers: &HeaderMap) -> Opening {
    let key_cookie = &state.flow.key_cookie;
    match key_cookie.read(headers, K::TOKEN_PROTECTION) {
        Ok(opened) => Opening::Token {
            token: opened.value,
            needs_reissue: opened.needs_reissue,
        },
        Err(Unopened::Absent) => Opening::Absent,
        Err(Unopened::Refused) => Opening::Refused(Authenticated {
            key: None,
            set_cookie: Some(key_cookie.clear()),
            store_unavailable: false,
        }),
    }
}

/// How a request's key was looked up.
pub(crate) enum Lookup {
    /// By its key cookie's token, re-issued under the current secret when `needs_reissue`.
    Cookie { needs_reissue: bool },
    /// By the app user of the request (linked accounts): no cookie to set or clear.
    Link { account: String },
}

/// Who is signed in, given what the store answered for `token`, looked up as `lookup` says.
pub(crate) fn conclude<K: KeyStore>(
    state: &Resolved,
    store: &Arc<K>,
    unlink: &Unlink,
    token: SessionToken,
    lookup: Lookup,
    loaded: Result<Option<StoredKey>, StoreError>,
    seen: RequestSummary,
) -> Authenticated {
    let now = unix_now();
    let flow = &state.flow;
    let by_cookie = matches!(lookup, Lookup::Cookie { .. });
    match loaded {
        Ok(Some(stored)) if stored.remaining(flow.key_max_age, now) > 0 => {
            let (reissue, link) = match lookup {
                Lookup::Cookie { needs_reissue } => {
                    let reissue = needs_reissue.then(|| {
                        let remaining = stored.remaining(flow.key_max_age, now);
                        flow.key_cookie.set(
                            token.expose_secret(),
                            K::TOKEN_PROTECTION,
                            Duration::from_secs(remaining),
                        )
                    });
                    (reissue, None)
                }
                Lookup::Link { account } => (None, Some(Link::new(account, unlink.clone()))),
            };
            let store = store.clone() as Arc<dyn ErasedStore>;
            let key = ModelGatesKey::new(
                stored,
                flow.client.clone(),
                token,
                store,
                state.streams.clone(),
                link,
                seen,
            );
            Authenticated {
                key: Some(key),
                set_cookie: reissue,
                store_unavailable: false,
            }
        }
        Ok(ended) => {
            // The session is over: its key outlived its lifetime, or the store forgot it
            // (revoked elsewhere, or purged once expired). A linked account without a link is
            // simply not connected.
            if by_cookie {
                crate::observe::sign_out(if ended.is_some() {
                    SessionEnd::Expired
                } else {
                    SessionEnd::Forgotten
                });
            }
            Authenticated {
                key: None,
                set_cookie: by_cookie.then(|| flow.key_cookie.clear()),
                store_unavailable: false,
            }
        }
        Err(error) => {
            // Not "signed out": the cookie is kept, and handlers that need the key answer 503.
            tracing::warn!(%error, "the key store failed to load a session; the request goes on without its key");
            Authenticated {
                key: None,
                set_cookie: None,
                store_unavailable: true,
            }
        }
    }
}

/// What unlinks a linked account whose key ModelGates rejected, in the background: made once
/// per layer (see [`unlinker`]).
pub(crate) type Unlink = Arc<dyn Fn(&str) + Send + Sync>;

/// The layer's [`Unlink`]: removes the app user's link (announced to every instance's cache)
/// and tells the on-sign-out hook, in a task of its own, so that whoever heard the 401 gets
/// ModelGates' answer at once. A store that fails leaves the link: the next call hears the 401
/// again and tries again.
pub(crate) fn unlinker<K: KeyStore>(state: &Arc<Resolved>, store: &Arc<K>) -> Unlink {
    let (state, store) = (Arc::downgrade(state), Arc::downgrade(store));
    Arc::new(move |account: &str| {
        let (Some(state), Some(store)) = (state.upgrade(), store.upgrade()) else {
            return;
        };
        let account = account.to_owned();
        tokio::spawn(async move {
            let reason = SignOutReason::KeyRejected;
            if let Err(error) =
                crate::flow::forget_link(&state.flow, &*store, &account, reason).await
            {
                tracing::warn!(%error, "ModelGates rejected a linked key, and the key store failed to unlink it");
            }
        });
    })
}
