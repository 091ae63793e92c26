//! `POST /logout`: the store forgets the session, then the key cookie is deleted. When the
//! store cannot forget it, nothing changes and the answer is 503 `sign_out_failed` with
//! `Retry-After`: the cookie stays, so the user can retry, and no copy of it outlives a
//! sign-out that looked complete.

use axum_core::body::Body;
use http::Response;

use super::{AuthError, Flow, SignOutReason, Step, record_outcome};
use crate::observe::{Outcome, SessionEnd};
use crate::response::{no_store, see_other, set_cookie};
use crate::store::KeyStore;

pub(super) async fn logout<K: KeyStore>(flow: &Flow, store: &K, step: &Step) -> Response<Body> {
    let (parts, mount) = (&step.parts, step.mount());
    let mut user_id = None;
    let mut signed_in = false;
    if let Some(opened) = flow.key_cookie.open(&parts.headers, K::TOKEN_PROTECTION) {
        let token = opened.value;
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
            // Fail closed: clearing the cookie now would leave any copy of it working.
            tracing::warn!(%error, "the key store failed to forget a session at logout; the user stays signed in and is asked to retry");
            let error = AuthError::SignOutFailed(error);
            record_outcome(error.outcome(), Some(&error));
            let mut response = flow.render(&error, step.wants_page, mount);
            no_store(&mut response);
            return response;
        }
    }
    tracing::info!(reason = SignOutReason::Logout.as_str(), "signed out");
    record_outcome(
        if signed_in {
            Outcome::SignedOut
        } else {
            Outcome::NotSignedIn
        },
        None,
    );
    if signed_in {
        crate::observe::sign_out(SessionEnd::SignedOut(SignOutReason::Logout));
        flow.heard_sign_out(SignOutReason::Logout, user_id).await;
    }
    let mut response = see_other(flow.post_logout_redirect(mount));
    set_cookie(&mut response, flow.key_cookie.clear());
    response
}
