//! `POST /logout`: the store forgets the session, the key cookie is deleted.

use axum_core::body::Body;
use http::Response;
use http::request::Parts;

use super::{Flow, SignOutReason};
use crate::response::{see_other, set_cookie};
use crate::store::{KeyStore, SessionToken};

pub(super) async fn logout<K: KeyStore>(
    flow: &Flow,
    store: &K,
    parts: &Parts,
    mount: &str,
) -> Response<Body> {
    let mut user_id = None;
    let mut signed_in = false;
    if let Some(opened) = flow.key_cookie.open(&parts.headers, K::TOKEN_PROTECTION) {
        let token = SessionToken::new(opened.value);
        signed_in = true;
        if flow.on_sign_out.is_some() {
            // Only the hook needs to know whose session this was.
            user_id = store
                .load(&token)
                .await
                .ok()
                .flatten()
                .and_then(|key| key.user_id);
        }
        if let Err(error) = store.remove(&token).await {
            tracing::warn!(%error, "the key store failed to forget a key at logout");
        }
    }
    tracing::info!(reason = SignOutReason::Logout.as_str(), "signed out");
    if signed_in {
        flow.heard_sign_out(SignOutReason::Logout, user_id).await;
    }
    let mut response = see_other(flow.post_logout_redirect(mount));
    set_cookie(&mut response, flow.key_cookie.clear());
    response
}
