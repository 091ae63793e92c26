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

use std::time::Duration;

use http::{HeaderMap, HeaderValue};

use crate::config::settings::Settings;
use crate::extract::ModelGatesKey;
use crate::primitives::unix_now;
use crate::store::{KeyStore, SessionToken};

/// The outcome of reading a request's key cookie.
pub(crate) struct Authenticated {
    /// The signed-in user's key, or `None` when signed out.
    pub(crate) key: Option<ModelGatesKey>,
    /// A `Set-Cookie` the response must carry: a deletion or a rotation.
    pub(crate) set_cookie: Option<HeaderValue>,
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
            }
        }
        Ok(_) => signed_out(Some(settings.codec.clear_key())),
        Err(error) => {
            tracing::warn!(%error, "the key store failed; treating this request as signed out");
            signed_out(None)
        }
    }
}
