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

use std::time::Duration;

use axum_core::body::Body;
use http::{HeaderMap, HeaderValue, Method, Response, Uri};

use crate::config::settings::Settings;
use crate::extract::{AuthContext, ModelGatesKey, login_location};
use crate::primitives::unix_now;
use crate::response::{accepts_html, see_other, set_cookie};
use crate::store::{KeyStore, SessionToken};

/// The outcome of reading a request's key cookie.
pub(crate) struct Authenticated {
    /// The signed-in user's key, or `None` when signed out.
    pub(crate) key: Option<ModelGatesKey>,
    /// A `Set-Cookie` the response must carry: a deletion or a rotation.
    pub(crate) set_cookie: Option<HeaderValue>,
    /// The session's token, to forget it if the response signs the user out.
    pub(crate) token: Option<SessionToken>,
}

/// Signs a user out after a handler asked for it with [`SignOut`](crate::api::SignOut): the
/// store forgets the session, the key cookie is deleted, and a browser (`Accept: text/html`)
/// is sent to sign in again, back to this page for a `GET`.
pub(crate) async fn sign_out<K: KeyStore, B>(
    settings: &Settings,
    store: &K,
    token: Option<&SessionToken>,
    request: &RequestSummary,
    response: Response<B>,
) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if let Some(token) = token {
        if let Err(error) = store.remove(token).await {
            tracing::warn!(%error, "the key store failed to forget a rejected key");
        }
    }
    tracing::info!("ModelGates rejected the key; signed out");
    let mut response = if request.wants_page {
        let here = (request.method == Method::GET).then_some(&request.uri);
        see_other(&login_location(&request.login_path, here))
    } else {
        response.map(Body::new)
    };
    set_cookie(&mut response, settings.codec.clear_key());
    response
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

/// Opens the key cookie in `headers` and loads its key from `store`.
pub(crate) async fn authenticate<K: KeyStore>(
    settings: &Settings,
    store: &K,
    headers: &HeaderMap,
) -> Authenticated {
    let signed_out = |set_cookie| Authenticated {
        key: None,
        set_cookie,
        token: None,
    };
    let Some(opened) = settings.codec.open_key(headers, K::TOKEN_PROTECTION) else {
        return signed_out(Some(settings.codec.clear_key()));
    };
    let token = SessionToken::new(opened.value);
    let now = unix_now();
    match store.load(&token).await {
        Ok(Some(stored)) if !stored.is_older_than(settings.config.key_max_age, now) => {
            let reissue = opened.needs_reissue.then(|| {
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
        Ok(_) => signed_out(Some(settings.codec.clear_key())),
        Err(error) => {
            tracing::warn!(%error, "the key store failed; treating this request as signed out");
            signed_out(None)
        }
    }
}
