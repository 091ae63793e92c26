//! `POST /logout`: the store forgets the session, the key cookie is deleted.

use axum_core::body::Body;
use http::Response;
use http::request::Parts;

use super::Flow;
use crate::response::{see_other, set_cookie};
use crate::store::{KeyStore, SessionToken};

pub(super) async fn logout<K: KeyStore>(flow: &Flow, store: &K, parts: &Parts) -> Response<Body> {
    if let Some(opened) = flow.key_cookie.open(&parts.headers, K::TOKEN_PROTECTION) {
        let token = SessionToken::new(opened.value);
        if let Err(error) = store.remove(&token).await {
            tracing::warn!(%error, "the key store failed to forget a key at logout");
        }
    }
    tracing::info!("signed out");
    let mut response = see_other(&flow.post_logout_redirect);
    set_cookie(&mut response, flow.key_cookie.clear());
    response
}
