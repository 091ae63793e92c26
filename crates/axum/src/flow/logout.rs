//! `POST /logout`: the store forgets the session, then the key cookie is deleted. When the
//! store cannot forget it, nothing changes and the answer is 503 `sign_out_failed` with
//! `Retry-After`: the cookie stays, so the user can retry, and no copy of it outlives a
//! sign-out that looked complete.

use axum_core::body::Body;
use http::Response;

use super::{AuthError, Flow, SignOutReason, Step, record_outcome};
use crate::observe::{Outcome, SessionEnd};
use crate::response::{no_store, see_other, set_cookie};
use crate::store::{KeyStore, SessionToken, StoreError};

pub(super) async fn logout<K: KeyStore>(flow: &Flow, store: &K, step: &Step) -> Response<Body> {
    if let Some(account) = flow.app_user_of(&step.parts) {
        return disconnect(flow, store, step, account).await;
    }
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
        flow.heard_sign_out(SignOutReason::Logout, user_id, None)
            .await;
    }
    let mut response = see_other(flow.post_logout_redirect(mount));
    set_cookie(&mut response, flow.key_cookie.clear());
    response
}

/// `POST /disconnect` of a linked account: the app user's link is removed (as
/// [`forget_link`] does), and the browser goes to the post-logout page. Nobody signed in to
/// the app: 403 `not_signed_in_to_app`. The store failing: 503 `sign_out_failed`, the link kept.
async fn disconnect<K: KeyStore>(
    flow: &Flow,
    store: &K,
    step: &Step,
    account: Option<String>,
) -> Response<Body> {
    let mount = step.mount();
    let forgotten = match account {
        None => Err(AuthError::NotSignedInToApp),
        Some(account) => forget_link(flow, store, &account, SignOutReason::Disconnected)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "the key store failed to remove a link; still connected");
                AuthError::SignOutFailed(error)
            }),
    };
    match forgotten {
        Ok(was_linked) => {
            record_outcome(
                if was_linked {
                    Outcome::SignedOut
                } else {
                    Outcome::NotSignedIn
                },
                None,
            );
            see_other(flow.post_logout_redirect(mount))
        }
        Err(error) => {
            record_outcome(error.outcome(), Some(&error));
            let mut response = flow.render(&error, step.wants_page, mount);
            no_store(&mut response);
            response
        }
    }
}

/// Removes the link of the app user `account`; returns whether there was one. The store
/// announces the removal to every instance's cache; the on-sign-out hook hears `reason`.
///
/// # Errors
///
/// When the store fails to read or remove the link: it stays.
pub(crate) async fn forget_link<K: KeyStore>(
    flow: &Flow,
    store: &K,
    account: &str,
    reason: SignOutReason,
) -> Result<bool, StoreError> {
    let token = SessionToken::for_account(account);
    let Some(linked) = store.load(&token).await? else {
        return Ok(false);
    };
    store.remove(&token).await?;
    tracing::info!(
        reason = reason.as_str(),
        "ModelGates disconnected from the app user"
    );
    crate::observe::sign_out(SessionEnd::SignedOut(reason));
    flow.heard_sign_out(reason, linked.user_id, Some(account.to_owned()))
        .await;
    Ok(true)
}
