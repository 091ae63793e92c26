//! Who is signed in: the key cookie opened, the key loaded from the store, and the cookie the
//! response must carry.
//!
//! The rules, for a request that carries our key cookie:
//!
//! * A cookie that fails authentication, has outlived the key lifetime, or names a session the
//!   store no longer knows means signed out, and the response deletes the cookie.
//! * A cookie made under a previous secret is re-issued under the current one, for the rest
//!   of its lifetime.
//! * If the store fails, the request is signed out for this request only: the cookie is kept
//!   and the failure logged.
//! * A response carrying [`SignOut`](crate::api::SignOut) (a handler's
//!   [`ApiError::KeyRejected`](crate::api::ApiError::KeyRejected): ModelGates refused the
//!   key) signs the user out on its way out: the store forgets the session, the key cookie is
//!   deleted, and a browser (`Accept: text/html`) is sent to sign in again, back to the page
//!   it asked for on a `GET`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum_core::body::Body;
use http::{HeaderMap, HeaderValue, Method, Response, Uri};

use crate::config::settings::Settings;
use crate::extract::{AuthContext, ModelGatesKey, login_location};
use crate::primitives::unix_now;
use crate::response::{accepts_html, see_other, set_cookie};
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
    pub(crate) settings: Arc<Settings>,
    pub(crate) store: Arc<dyn RemoveSession>,
    pub(crate) token: SessionToken,
    pub(crate) request: RequestSummary,
}

impl SignOutPlan {
    /// Signs the user out on the way out of `response`, after a handler asked for it with
    /// [`SignOut`](crate::api::SignOut): the store forgets the session, the key cookie is
    /// deleted, and a browser (`Accept: text/html`) is sent to sign in again, back to this page
    /// for a `GET`.
    pub(crate) async fn run<B>(self, response: Response<B>) -> Response<Body>
    where
        B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if let Err(error) = self.store.remove_boxed(&self.token).await {
            tracing::warn!(%error, "the key store failed to forget a rejected key");
        }
        tracing::info!("ModelGates rejected the key; signed out");
        let request = &self.request;
        let mut response = if request.wants_page {
            let here = (request.method == Method::GET).then_some(&request.uri);
            see_other(&login_location(&request.login_path, here))
        } else {
            response.map(Body::new)
        };
        set_cookie(&mut response, self.settings.codec.clear_key());
        response
    }
}

/// What the layer keeps of a request to act on its response.
pub(crate) struct RequestSummary {
    pub(crate) method: Method,
    /// The whole URI, as the browser asked for it.
    pub(crate) uri: Uri,
    /// The login route as the browser reaches it.
    pub(crate) login_path: std::sync::Arc<str>,
    /// The client asked for HTML: a browser.
    pub(crate) wants_page: bool,
}

impl RequestSummary {
    /// The summary of a request that carries the layer's context.
    pub(crate) fn of<B>(request: &http::Request<B>) -> Option<Self> {
        let context = request.extensions().get::<AuthContext>()?;
        Some(Self {
            method: request.method().clone(),
            uri: context.original_uri.clone(),
            login_path: context.login_path.clone(),
            wants_page: accepts_html(request.headers()),
        })
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
pub(crate) fn open<K: KeyStore>(settings: &Settings, headers: &HeaderMap) -> Opening {
    match settings.codec.open_key(headers, K::TOKEN_PROTECTION) {
        Some(opened) => Opening::Token {
            token: SessionToken::new(opened.value),
            needs_reissue: opened.needs_reissue,
        },
        None => Opening::Refused(Authenticated {
            key: None,
            set_cookie: Some(settings.codec.clear_key()),
            token: None,
        }),
    }
}

/// Who is signed in, given what the store answered for `token`.
pub(crate) fn conclude<K: KeyStore>(
    settings: &Settings,
    token: SessionToken,
    needs_reissue: bool,
    loaded: Result<Option<StoredKey>, StoreError>,
) -> Authenticated {
    let now = unix_now();
    match loaded {
        Ok(Some(stored)) if !stored.is_older_than(settings.config.key_max_age, now) => {
            let reissue = needs_reissue.then(|| {
                let age = now.saturating_sub(stored.issued_at);
                let remaining = settings.config.key_max_age.as_secs().saturating_sub(age);
                settings.codec.key_cookie(
                    token.expose_secret(),
                    K::TOKEN_PROTECTION,
                    Duration::from_secs(remaining),
                )
            });
            let key = ModelGatesKey::new(stored.key, stored.user_id, settings.client.clone());
            Authenticated {
                key: Some(key),
                set_cookie: reissue,
                token: Some(token),
            }
        }
        Ok(_) => Authenticated {
            key: None,
            set_cookie: Some(settings.codec.clear_key()),
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
