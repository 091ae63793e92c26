//! The setters of the app's own functions: the hooks on sign-in and sign-out (their types and
//! rules are in [`hooks`](crate::hooks)) and the HTML error page.

use std::sync::Arc;

use super::ModelGatesConfig;
use crate::flow;
use crate::hooks::{SignIn, SignInRejected, SignedOut};

impl ModelGatesConfig {
    /// Runs the app's own work right after ModelGates issued a key and before the user is
    /// signed in, such as creating the app's user record or linking the ModelGates account to
    /// the app's own session ([`SignIn::request`] holds the callback request's headers,
    /// cookies and extensions). Returning [`SignInRejected`] ends the sign-in with a 403 page
    /// showing its message, and nothing is stored.
    ///
    /// The value it returns is kept with the session (serde JSON, at most
    /// [`MAX_APP_DATA_LEN`](crate::hooks::MAX_APP_DATA_LEN) bytes, sealed like the key in every store) and read in handlers
    /// with [`ModelGatesKey::app_data`](crate::ModelGatesKey::app_data), so no request has to
    /// look the user up again; return `()` to keep nothing. A value too large ends the sign-in
    /// with a 500 that says so, before anything is stored.
    ///
    /// ```
    /// use modelgates_axum::hooks::{SignIn, SignInRejected};
    /// use modelgates_axum::{CookieSecret, ModelGatesConfig, ModelGatesKey};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Account {
    ///     id: u64,
    /// }
    ///
    /// let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
    ///     .with_on_sign_in(|sign_in: SignIn| async move {
    ///         let Some(_user_id) = sign_in.user_id else {
    ///             return Err(SignInRejected::new("ModelGates did not say who you are."));
    ///         };
    ///         // Create or find the app's user record here (the app's own session cookie is in
    ///         // `sign_in.request.headers`), and keep its id with the session.
    ///         Ok(Account { id: 42 })
    ///     });
    ///
    /// async fn handler(key: ModelGatesKey) -> String {
    ///     match key.app_data::<Account>() {
    ///         Ok(Some(account)) => format!("account {}", account.id),
    ///         _ => "no account".to_owned(),
    ///     }
    /// }
    /// ```
    pub fn with_on_sign_in<F, Fut, T>(mut self, hook: F) -> Self
    where
        F: Fn(SignIn) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<T, SignInRejected>> + Send + 'static,
        T: serde::Serialize + Send + 'static,
    {
        self.on_sign_in = Some(flow::boxed_hook(hook));
        self
    }

    /// Runs after every sign-out the layer performs, once the store has forgotten the
    /// session: the logout route ([`SignOutReason::Logout`](crate::hooks::SignOutReason::Logout)), ModelGates refusing the key
    /// ([`SignOutReason::KeyRejected`](crate::hooks::SignOutReason::KeyRejected)), and a handler's [`SignOut`](crate::extract::SignOut)
    /// ([`SignOutReason::App`](crate::hooks::SignOutReason::App)). The response waits for it; it cannot stop the sign-out.
    ///
    /// ```
    /// use modelgates_axum::hooks::{SignOutReason, SignedOut};
    /// use modelgates_axum::{CookieSecret, ModelGatesConfig};
    ///
    /// let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
    ///     .with_on_sign_out(|signed_out: SignedOut| async move {
    ///         if signed_out.reason == SignOutReason::KeyRejected {
    ///             // the user revoked the app's key on ModelGates: note it in the app's records
    ///         }
    ///     });
    /// ```
    pub fn with_on_sign_out<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(SignedOut) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.on_sign_out = Some(flow::boxed_sign_out(hook));
        self
    }

    /// Makes ModelGates an account linked to the app's own users instead of the app's login
    /// (see [`linked`](crate::linked) for the rules): `app_user` names the app's user of a
    /// request (the app's id, from the request's extensions or cookies), or `None` when
    /// nobody is signed in to the app. Put the layer inside the app's authentication layer, so
    /// that what `app_user` reads is there, and give it a server-side store.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use modelgates_axum::store::MemoryStore;
    /// use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
    ///
    /// /// What the app's own authentication puts in each request (axum-login's `AuthSession`,
    /// /// say).
    /// #[derive(Clone)]
    /// struct CurrentUser {
    ///     id: i64,
    /// }
    ///
    /// let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
    ///     .with_linked_accounts(|parts| {
    ///         let user = parts.extensions.get::<CurrentUser>()?;
    ///         Some(user.id.to_string())
    ///     })
    ///     // /modelgates/login, /modelgates/callback/…, /modelgates/disconnect
    ///     .with_path_prefix("/modelgates");
    /// let auth = ModelGatesAuth::new(config).with_store(MemoryStore::default());
    /// let app: Router = Router::new()
    ///     .route("/ai", get(|key: ModelGatesKey| async move { key.manage_url() }))
    ///     .layer(auth);
    ///     // .layer(the app's own authentication layer), outside this one
    /// ```
    pub fn with_linked_accounts<F>(mut self, app_user: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    {
        self.linked = Some(crate::linked::app_user(app_user));
        self
    }

    /// Replaces the HTML error page. The function gets the error (its status, a stable code
    /// and a message) and returns the response; the layer then sets the error's status and
    /// adds its own headers and cookie changes. JSON clients keep the JSON error.
    ///
    /// The message is **untrusted text**: [`AuthError::AuthorizationFailed`] carries the
    /// `error` value of the callback's query, which anyone can put in a link (it is reduced to
    /// RFC 6749's characters, but may hold `<`, `>` and `&`). Escape it, as the built-in page
    /// does.
    ///
    /// [`AuthError::AuthorizationFailed`]: crate::AuthError::AuthorizationFailed
    pub fn with_error_page<F>(mut self, page: F) -> Self
    where
        F: Fn(&crate::AuthError) -> http::Response<axum_core::body::Body> + Send + Sync + 'static,
    {
        self.error_page = Some(crate::hooks::AppFn::new(Arc::new(page)));
        self
    }
}
