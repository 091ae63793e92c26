//! The on-sign-in hook: the app's own work right after ModelGates issued a key, before the
//! user is signed in (see [`ModelGatesConfig::with_on_sign_in`]).
//!
//! The rules: the hook runs once per completed key exchange, with ModelGates' user id and the
//! key; only when it returns `Ok` is the key stored and the key cookie set. When it returns
//! [`SignInRejected`], the sign-in ends with a 403 page (or JSON) showing its message, and
//! nothing is stored.
//!
//! [`ModelGatesConfig::with_on_sign_in`]: crate::ModelGatesConfig::with_on_sign_in

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use modelgates_oauth_core::ApiKey;

/// What the on-sign-in hook receives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignIn {
    /// ModelGates' id of the user, when it sent one.
    pub user_id: Option<String>,
    /// The key just issued. It prints redacted; keep it only where keys belong.
    pub key: ApiKey,
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

type HookFuture = Pin<Box<dyn Future<Output = Result<(), SignInRejected>> + Send>>;

/// The stored hook.
pub(crate) type OnSignIn = Arc<dyn Fn(SignIn) -> HookFuture + Send + Sync>;

/// Boxes an async function as the stored hook.
pub(crate) fn boxed<F, Fut>(hook: F) -> OnSignIn
where
    F: Fn(SignIn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), SignInRejected>> + Send + 'static,
{
    Arc::new(move |sign_in| Box::pin(hook(sign_in)))
}
