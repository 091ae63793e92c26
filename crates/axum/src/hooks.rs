//! The app's hooks: its own work right after ModelGates issued a key, before the user is
//! signed in (see [`ModelGatesConfig::with_on_sign_in`]), and on every sign-out (see
//! [`ModelGatesConfig::with_on_sign_out`]).
//!
//! The rules of the on-sign-in hook: it runs once per completed key exchange, with ModelGates'
//! user id, the key, its expiry and the callback request's parts (headers, cookies,
//! extensions: the app's own session, say), and can ask ModelGates for the key's label and
//! spend limit ([`SignIn::key_info`]); only when it returns `Ok` is the key stored and the key cookie set. The
//! value it returns (`()` for none) is kept with the session as JSON of at most
//! [`MAX_APP_DATA_LEN`] bytes, sealed like the key by every store, and offered to handlers by
//! [`ModelGatesKey::app_data`](crate::ModelGatesKey::app_data). When it returns
//! [`SignInRejected`], the sign-in ends with a 403 page (or JSON) showing its message, and
//! nothing is stored.
//!
//! The on-sign-out hook runs after every sign-out the layer performs, once the store has
//! forgotten the session: the logout route, ModelGates refusing the key (401), and a handler's
//! [`SignOut`](crate::extract::SignOut). It cannot stop the sign-out.
//!
//! [`ModelGatesConfig::with_on_sign_in`]: crate::ModelGatesConfig::with_on_sign_in
//! [`ModelGatesConfig::with_on_sign_out`]: crate::ModelGatesConfig::with_on_sign_out

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::request::Parts;
use modelgates_oauth_core::api::KeyInfo;
use modelgates_oauth_core::{ApiKey, ModelGatesClient, RequestError};
use serde::Serialize;

/// A function of the app's kept in the configuration (a hook, an error page): shared, and
/// shown by `Debug` as set, never as what it captured.
pub(crate) struct AppFn<F: ?Sized>(std::sync::Arc<F>);

impl<F: ?Sized> AppFn<F> {
    pub(crate) fn new(function: std::sync::Arc<F>) -> Self {
        Self(function)
    }
}

impl<F: ?Sized> Clone for AppFn<F> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<F: ?Sized> std::ops::Deref for AppFn<F> {
    type Target = F;

    fn deref(&self) -> &F {
        &self.0
    }
}

impl<F: ?Sized> std::fmt::Debug for AppFn<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<app function>")
    }
}

/// The largest value the on-sign-in hook may keep with a session, in bytes of JSON: it
/// travels in the key cookie with the cookie store, which browsers cap at 4 KiB.
pub const MAX_APP_DATA_LEN: usize = 1024;

/// What the on-sign-in hook receives: what ModelGates issued, and the callback request.
#[derive(Clone)]
#[non_exhaustive]
pub struct SignIn {
    /// ModelGates' id of the user, when it sent one. User data: the layer logs only a hash
    /// of it.
    pub user_id: Option<String>,
    /// The key just issued. It prints redacted; keep it only where keys belong.
    pub key: ApiKey,
    /// When the key stops working, in seconds since the Unix epoch, when ModelGates said; the
    /// session never outlives it.
    pub expires_at: Option<u64>,
    /// The callback request's method, URI, headers (the app's own cookies among them) and
    /// extensions, to link the ModelGates account to the app's own session. Its `Debug` shows
    /// only the method and the path: the headers hold cookies.
    pub request: Parts,
    /// The app's user this key is being linked to, in linked-account mode
    /// ([`ModelGatesConfig::with_linked_accounts`](crate::ModelGatesConfig::with_linked_accounts));
    /// `None` in login mode.
    pub account: Option<String>,
    /// The layer's client, for [`SignIn::key_info`].
    pub(crate) client: ModelGatesClient,
}

impl SignIn {
    /// What ModelGates says of the key just issued (`GET /api/v1/key`): its label, its spend
    /// limit as the person left it on the consent page (which may differ from the one asked),
    /// what is left of it, and its expiry. One request to ModelGates, made only when called;
    /// the sign-in waits for it, so a hook that stores these should not fail the sign-in when
    /// the request does.
    ///
    /// # Errors
    ///
    /// As [`ModelGatesClient::key_info`].
    pub async fn key_info(&self) -> Result<KeyInfo, RequestError> {
        self.client.key_info(&self.key).await
    }
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("user_id", &self.user_id)
            .field("key", &self.key)
            .field("expires_at", &self.expires_at)
            .field("account", &self.account)
            .field("method", &self.request.method)
            .field("path", &self.request.uri.path())
            .finish_non_exhaustive()
    }
}

/// The hook's refusal: the sign-in ends and the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignInRejected(String);

impl SignInRejected {
    /// A refusal whose `message` is shown to the user: say what happened and what to do,
    /// without internal details.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// What the stored hook answers: the app data as JSON (`None`: none), or the refusal.
pub(crate) type HookOutcome = Result<Option<AppDataJson>, HookFailure>;

/// The app's value as JSON text, checked against [`MAX_APP_DATA_LEN`].
pub(crate) type AppDataJson = String;

/// Why the hook ended the sign-in.
pub(crate) enum HookFailure {
    /// The app refused it.
    Rejected(SignInRejected),
    /// The app's value cannot be kept: the app's bug, said to its developer.
    AppData(String),
}

type HookFuture = Pin<Box<dyn Future<Output = HookOutcome> + Send>>;

/// The stored hook.
pub(crate) type OnSignIn = AppFn<dyn Fn(SignIn) -> HookFuture + Send + Sync>;

/// Boxes an async function as the stored hook; its value becomes JSON here.
pub(crate) fn boxed<F, Fut, T>(hook: F) -> OnSignIn
where
    F: Fn(SignIn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, SignInRejected>> + Send + 'static,
    T: Serialize + Send + 'static,
{
    AppFn::new(Arc::new(move |sign_in| {
        let outcome = hook(sign_in);
        Box::pin(async move {
            let value = outcome.await.map_err(HookFailure::Rejected)?;
            app_data_json(&value).map_err(HookFailure::AppData)
        })
    }))
}

/// `value` as the JSON kept with a session: `None` for `()` (and anything that serialises to
/// `null`), an error naming the limit when it is too large.
fn app_data_json<T: Serialize>(value: &T) -> Result<Option<AppDataJson>, String> {
    let json = serde_json::to_string(value)
        .map_err(|error| format!("the on-sign-in hook's value is not JSON: {error}"))?;
    if json == "null" {
        return Ok(None);
    }
    if json.len() > MAX_APP_DATA_LEN {
        return Err(format!(
            "the on-sign-in hook's value is {} bytes of JSON; at most {MAX_APP_DATA_LEN} are kept \
             with a session: keep an id and look the rest up",
            json.len()
        ));
    }
    Ok(Some(json))
}

/// Why a user was signed out, as the on-sign-out hook hears it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignOutReason {
    /// The user posted to the logout route.
    Logout,
    /// ModelGates refused the key (401): revoked or expired on ModelGates' side.
    KeyRejected,
    /// A handler returned [`SignOut`](crate::extract::SignOut).
    App,
    /// Linked accounts: the app user disconnected ModelGates (the disconnect route, or
    /// [`ModelGatesAuth::disconnect`](crate::ModelGatesAuth::disconnect)).
    Disconnected,
}

impl SignOutReason {
    /// A stable name: `logout`, `key_rejected`, `app`, `disconnected`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::KeyRejected => "key_rejected",
            Self::App => "app",
            Self::Disconnected => "disconnected",
        }
    }
}

/// What the on-sign-out hook receives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignedOut {
    /// Why the user was signed out.
    pub reason: SignOutReason,
    /// ModelGates' id of the user, when known (a logout whose session the store no longer
    /// had, or could not read, does not know it).
    pub user_id: Option<String>,
    /// The app's user whose link ended, in linked-account mode; `None` in login mode.
    pub account: Option<String>,
}

type SignOutFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The stored on-sign-out hook.
pub(crate) type OnSignOut = AppFn<dyn Fn(SignedOut) -> SignOutFuture + Send + Sync>;

/// Boxes an async function as the stored on-sign-out hook.
pub(crate) fn boxed_sign_out<F, Fut>(hook: F) -> OnSignOut
where
    F: Fn(SignedOut) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    AppFn::new(Arc::new(move |signed_out| Box::pin(hook(signed_out))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_keeps_nothing_and_values_are_capped() {
        assert_eq!(app_data_json(&()), Ok(None));
        assert_eq!(app_data_json(&Some(7)).unwrap().as_deref(), Some("7"));
        assert_eq!(app_data_json(&None::<u8>), Ok(None));
        let big = "x".repeat(MAX_APP_DATA_LEN);
        let error = app_data_json(&big).unwrap_err();
        assert!(error.contains("at most 1024"), "{error}");
    }
}
