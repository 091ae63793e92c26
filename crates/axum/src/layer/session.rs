//! Who is signed in: the key cookie opened, the key loaded from the store, the cookie the
//! response must carry, and the sign-out a response may ask for; by the rules on
//! [`ModelGatesAuth`](crate::ModelGatesAuth#signed-in-requests).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum_core::body::Body;
use http::{HeaderMap, HeaderValue, Response};

use super::state::State;
use crate::api::BrowserPage;
use crate::extract::{AuthContext, ModelGatesKey};
use crate::primitives::{BoxError, unix_now};
use crate::response::{
    accept_header, html_error_page, is_reading, prefers_html_accept, see_other, set_cookie,
};
use crate::store::{KeyStore, SessionToken, StoreError, StoredKey};

/// The outcome of reading a request's key cookie.
pub(crate) struct Authenticated {
    /// The signed-in user's key, or `None` when signed out.
    pub(crate) key: Option<ModelGatesKey>,
    /// A `Set-Cookie` the response must carry: a deletion or a rotation.
    pub(crate) set_cookie: Option<HeaderValue>,
    /// The session's token, to forget it if the response signs the user out.
    pub(crate) token: Option<SessionToken>,
}

/// A store's `remove`, behind a trait object, so that a response future can sign a user out
/// without naming the store's type. Boxed only when a sign-out actually happens.
pub(crate) trait RemoveSession: Send + Sync + 'static {
    fn remove_boxed<'a>(
        &'a self,
        token: &'a SessionToken,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;
}

impl<K: KeyStore> RemoveSession for K {
    fn remove_boxed<'a>(
        &'a self,
        token: &'a SessionToken,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>> {
        Box::pin(self.remove(token))
    }
}

/// Everything a response future needs to sign a signed-in user out, should the response ask.
pub(crate) struct SignOutPlan {
    pub(crate) state: Arc<State>,
    pub(crate) store: Arc<dyn RemoveSession>,
    pub(crate) token: SessionToken,
    pub(crate) request: RequestSummary,
}

impl SignOutPlan {
    /// Signs the user out on the way out of `response`, after a handler asked for it with
    /// [`SignOut`](crate::api::SignOut): the store forgets the session, the key cookie is
    /// deleted, and a browser (`Accept: text/html`) is sent to sign in again, coming back
    /// where a signed-out browser would.
    pub(crate) async fn run<B>(self, response: Response<B>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        if let Err(error) = self.store.remove_boxed(&self.token).await {
            tracing::warn!(%error, "the key store failed to forget a rejected key");
        }
        tracing::info!("ModelGates rejected the key; signed out");
        let request = &self.request;
        let mut response = if request.wants_page() {
            see_other(&request.login_coming_back())
        } else {
            response.map(Body::new)
        };
        set_cookie(&mut response, self.state.flow.key_cookie.clear());
        response
    }

    /// `response`, an [`ApiError`](crate::api::ApiError)'s JSON, as the page it carries when
    /// the client is a browser: same status and headers, an HTML body saying what happened and
    /// what to do, with a link to manage the key on ModelGates.
    pub(crate) fn browser_page<B>(&self, response: Response<B>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let page = response
            .extensions()
            .get::<BrowserPage>()
            .filter(|_| self.request.wants_page())
            .cloned();
        let Some(page) = page else {
            return response.map(Body::new);
        };
        let manage = self
            .request
            .context
            .key
            .as_ref()
            .filter(|_| page.links_to_key)
            .map(ModelGatesKey::manage_url);
        let mut links = vec![("Back to the app", "/")];
        if let Some(manage) = &manage {
            links.insert(0, ("Manage this key on ModelGates", manage.as_str()));
        }
        let (mut parts, _json) = response.into_parts();
        let html = html_error_page(page.title, &page.message, &links);
        let (html_parts, body) = html.into_parts();
        parts.headers.insert(
            http::header::CONTENT_TYPE,
            html_parts.headers[http::header::CONTENT_TYPE].clone(),
        );
        parts.headers.remove(http::header::CONTENT_LENGTH);
        Response::from_parts(parts, body)
    }
}

/// What the layer keeps of a request to act on its response: cheap clones (header values
/// share the request's buffer), so that negotiating and the rest of a sign-out's work is done
/// only when one happens.
pub(crate) struct RequestSummary {
    /// Every `Accept` header, as one value.
    accept: Option<http::HeaderValue>,
    /// `GET` or `HEAD`.
    reading: bool,
    referer: Option<http::HeaderValue>,
    pub(crate) context: AuthContext,
}

impl RequestSummary {
    /// The summary of a request that carries the layer's context.
    pub(crate) fn of<B>(request: &http::Request<B>) -> Option<Self> {
        let headers = request.headers();
        Some(Self {
            accept: accept_header(headers),
            reading: is_reading(request.method()),
            referer: headers.get(http::header::REFERER).cloned(),
            context: request.extensions().get::<AuthContext>()?.clone(),
        })
    }

    /// The answer is a page: the client prefers HTML (the crate's one negotiation rule).
    pub(crate) fn wants_page(&self) -> bool {
        prefers_html_accept(self.accept.as_ref())
    }

    /// The login route a browser is sent to, coming back to the page it navigated to, or to
    /// the page its form was on.
    pub(crate) fn login_coming_back(&self) -> String {
        let navigation = self.reading;
        let referer = (!navigation).then_some(self.referer.as_ref()).flatten();
        self.context.login_coming_back(navigation, referer)
    }
}

/// The key cookie of a request, opened.
pub(crate) enum Opening {
    /// No valid cookie: signed out, and the response deletes it.
    Refused(Authenticated),
    /// An authentic token, to look up in the store.
    Token {
        token: SessionToken,
        needs_reissue: bool,
    },
}

/// Opens the key cookie in `headers` (the layer checked that there is one).
pub(crate) fn open<K: KeyStore>(state: &State, headers: &HeaderMap) -> Opening {
    let key_cookie = &state.flow.key_cookie;
    match key_cookie.open(headers, K::TOKEN_PROTECTION) {
        Some(opened) => Opening::Token {
            token: SessionToken::new(opened.value),
            needs_reissue: opened.needs_reissue,
        },
        None => Opening::Refused(Authenticated {
            key: None,
            set_cookie: Some(key_cookie.clear()),
            token: None,
        }),
    }
}

/// Who is signed in, given what the store answered for `token`.
pub(crate) fn conclude<K: KeyStore>(
    state: &State,
    token: SessionToken,
    needs_reissue: bool,
    loaded: Result<Option<StoredKey>, StoreError>,
) -> Authenticated {
    let now = unix_now();
    let flow = &state.flow;
    match loaded {
        Ok(Some(stored)) if stored.remaining(flow.key_max_age, now) > 0 => {
            let reissue = needs_reissue.then(|| {
                let remaining = stored.remaining(flow.key_max_age, now);
                flow.key_cookie.set(
                    token.expose_secret(),
                    K::TOKEN_PROTECTION,
                    Duration::from_secs(remaining),
                )
            });
            let key = ModelGatesKey::new(stored.key, stored.user_id, flow.client.clone());
            Authenticated {
                key: Some(key),
                set_cookie: reissue,
                token: Some(token),
            }
        }
        Ok(_) => Authenticated {
            key: None,
            set_cookie: Some(flow.key_cookie.clear()),
            token: None,
        },
        Err(error) => {
            tracing::warn!(%error, "the key store failed; treating this request as signed out");
            Authenticated {
                key: None,
                set_cookie: None,
                token: None,
            }
        }
    }
}
