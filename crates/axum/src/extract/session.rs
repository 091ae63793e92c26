//! [`Session`] and [`SignOut`]: the signed-in session a request belongs to (one browser's key
//! cookie and the store's entry for it), ended now through the handle, or with the response.

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use http::StatusCode;

use super::KeyInner;
use crate::store::{SessionToken, StoreError};

/// The signed-in session a request belongs to, in the layer's key store: end it now, or sign
/// its user out of every other device. From [`ModelGatesKey::session`](crate::ModelGatesKey::session).
///
/// To sign the user out of this browser as part of a response (cookie deleted, the app's
/// response kept), return [`SignOut`](crate::extract::SignOut) instead of calling [`Self::revoke`].
///
/// ```
/// use axum::response::{IntoResponse, Redirect, Response};
/// use modelgates_axum::ModelGatesKey;
/// use modelgates_axum::SignOut;
///
/// /// "Sign out everywhere": every other device now, this browser with the response.
/// async fn sign_out_everywhere(key: ModelGatesKey) -> Response {
///     match key.session().revoke_others().await {
///         Ok(_count) => (SignOut, Redirect::to("/")).into_response(),
///         Err(error) if error.is_unsupported() => {
///             "Signing out other devices needs a server-side key store.".into_response()
///         }
///         Err(_) => "Please try again in a moment.".into_response(),
///     }
/// }
/// ```
#[derive(Clone, Copy)]
pub struct Session<'k> {
    pub(super) inner: &'k KeyInner,
}

impl fmt::Debug for Session<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token", &self.inner.token)
            .field("user_id", &self.inner.user_id)
            .finish_non_exhaustive()
    }
}

impl Session<'_> {
    /// This session's token (its `Debug` is redacted), to compare with one kept elsewhere.
    #[must_use]
    pub fn token(&self) -> &SessionToken {
        &self.inner.token
    }

    /// Makes the store forget this session now: a copy of its cookie stops working (on every
    /// instance, with a shared store). With [`CookieStore`](crate::store::CookieStore) there is
    /// nothing to forget: the key lives in the cookie, which only [`SignOut`](crate::extract::SignOut)
    /// deletes.
    ///
    /// # Errors
    ///
    /// When the store fails.
    pub async fn revoke(&self) -> Result<(), StoreError> {
        self.inner.store.remove_boxed(&self.inner.token).await
    }

    /// Signs the user out of every other device and browser: every session of this user but
    /// this one is forgotten. Returns how many.
    ///
    /// # Errors
    ///
    /// When the store fails; [`StoreError::is_unsupported`] with
    /// [`CookieStore`](crate::store::CookieStore), or without a ModelGates user id (ModelGates
    /// sent none: the user's other sessions cannot be found).
    pub async fn revoke_others(&self) -> Result<u64, StoreError> {
        let Some(user_id) = &self.inner.user_id else {
            return Err(StoreError::unsupported(
                "ModelGates sent no user id with this key, so the user's other sessions cannot \
                 be found",
            ));
        };
        self.inner
            .store
            .revoke_user_boxed(user_id, Some(&self.inner.token))
            .await
    }
}

/// Returned with a handler's response (or put in its extensions) to have
/// [`ModelGatesAuth`](crate::ModelGatesAuth) sign the user out on its way out: the store
/// forgets the session, the key cookie is deleted, the on-sign-out hook hears
/// [`SignOutReason::App`](crate::hooks::SignOutReason::App), and the handler's response is
/// sent as it is (a redirect goes where the app says).
///
/// ```
/// use axum::response::{IntoResponse, Redirect, Response};
/// use modelgates_axum::SignOut;
///
/// async fn account_closed() -> Response {
///     (SignOut, Redirect::to("/goodbye")).into_response()
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignOut;

impl axum_core::response::IntoResponseParts for SignOut {
    type Error = std::convert::Infallible;

    fn into_response_parts(
        self,
        mut parts: axum_core::response::ResponseParts,
    ) -> Result<axum_core::response::ResponseParts, Self::Error> {
        parts.extensions_mut().insert(self);
        Ok(parts)
    }
}

impl IntoResponse for SignOut {
    /// An empty `204 No Content` that signs the user out.
    fn into_response(self) -> Response {
        // Not `(StatusCode::NO_CONTENT, self)`: that tuple takes `self` as the body and calls
        // this again, without end.
        let mut response = StatusCode::NO_CONTENT.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_sign_out_is_an_empty_204_that_signs_out() {
        let response = SignOut.into_response();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(response.extensions().get::<SignOut>(), Some(&SignOut));
    }
}
