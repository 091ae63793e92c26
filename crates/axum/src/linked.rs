//! Linked accounts: ModelGates as an account linked to the app's own users, rather than the
//! app's login.
//!
//! An app with its own users (axum-login, an OIDC login, its own session cookie) tells the
//! layer who the current user is, once, with
//! [`ModelGatesConfig::with_linked_accounts`](crate::ModelGatesConfig::with_linked_accounts):
//! a function over the request's parts (its extensions, its cookies) returning the app's id
//! of its user, or `None` when nobody is signed in to the app. The layer must then sit
//! *inside* the app's own authentication layer, so that the function finds what it reads.
//!
//! The rules of this mode:
//!
//! * The key is kept under the app's user id ([`KeyStore::save_link`]), not behind a browser
//!   cookie: no key cookie is set or read. A server-side store is needed (memory, SQLite,
//!   PostgreSQL, Redis, or a cache in front of one); the cookie store is refused when the layer
//!   is built.
//! * [`ModelGatesKey`](crate::ModelGatesKey) in a handler yields the key of the app user *of
//!   this request*, looked up by their id on every request: when another user signs in to the
//!   app on the same browser, they are not connected, and nothing of theirs reaches the previous
//!   user's key.
//! * `GET /login` (the connect route) refuses with 403 `not_signed_in_to_app` when nobody is
//!   signed in to the app. The flow it starts is bound to the app user (a hash of their id,
//!   sealed in the flow cookie); the callback refuses before anything reaches ModelGates when
//!   it comes back with no app user (403 `app_session_missing`, the page naming the usual
//!   cause: a `SameSite=Strict` app session cookie, which a browser does not send on the
//!   navigation back from ModelGates) or with another one (403 `app_user_changed`).
//! * A link lives as long as a session would: the key lifetime
//!   ([`ModelGatesConfig::with_key_max_age`](crate::ModelGatesConfig::with_key_max_age), 30 days
//!   by default) and never past the key's own expiry; raise it for links that should last.
//! * A completed connection replaces the key linked before, on every instance (database stores
//!   announce the replaced key to every cache).
//! * `POST /disconnect` (the third route's default path in this mode; same-origin only)
//!   removes the link, as does [`ModelGatesAuth::disconnect`](crate::ModelGatesAuth::disconnect).
//! * Outside any request (a background job), [`ModelGatesAuth::key_for`](crate::ModelGatesAuth::key_for)
//!   gives the [`ModelGatesKey`](crate::ModelGatesKey) of an app user, with everything it has in
//!   a handler, and [`ModelGatesAuth::linked_accounts`](crate::ModelGatesAuth::linked_accounts)
//!   pages through the linked users.
//! * A key ModelGates rejects (401) is unlinked as soon as the layer sees the refusal, in a
//!   request or outside one, through any of the key's calls; every instance's cache hears it.
//! * Every page and error the layer renders says "Connect ModelGates" and "Disconnect", not
//!   "Sign in with ModelGates".
//!
//! [`KeyStore::save_link`]: crate::store::KeyStore::save_link

use std::sync::Arc;

use http::request::Parts;
use sha2::{Digest as _, Sha256};

use crate::hooks::AppFn;
use crate::store::{KeyStore, StoreError};

/// The app's function naming the current app user.
pub(crate) type AppUser = AppFn<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// Wraps the app's function.
pub(crate) fn app_user<F>(resolve: F) -> AppUser
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    AppFn::new(Arc::new(resolve))
}

/// What a flow remembers of the app user who started it: a hash, so that the flow cookie
/// (sealed anyway) carries no id of the app's.
pub(crate) fn binding(account: &str) -> String {
    crate::hex::hex(&Sha256::digest(format!(
        "modelgates-flow-account:{account}"
    )))
}

/// What the layer is to the app: its login, or an account linked to the app's own users.
/// It decides the words of every page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Login,
    Linked,
}

impl Mode {
    /// The label of the link to the login (connect) route.
    pub(crate) const fn start_label(self) -> &'static str {
        match self {
            Self::Login => "Sign in with ModelGates",
            Self::Linked => "Connect ModelGates",
        }
    }

    /// A page title of login mode in this mode's words.
    pub(crate) const fn title(self, title: &'static str) -> &'static str {
        if matches!(self, Self::Login) {
            return title;
        }
        match title.as_bytes() {
            b"Sign-in cancelled" => "Connection cancelled",
            b"Sign-in unavailable" => "Connecting ModelGates is unavailable",
            b"Sign-out unavailable" => "Disconnecting is unavailable",
            b"Sign-in is not set up correctly" => "Connecting ModelGates is not set up correctly",
            b"Sign-in failed" => "Connecting ModelGates failed",
            b"Sign in first" => "Connect ModelGates first",
            _ => title,
        }
    }

    /// `text`, one of the layer's own messages, in this mode's words: linked mode speaks of
    /// connecting ModelGates where login mode speaks of signing in.
    pub(crate) fn words(self, text: &str) -> String {
        const LINKED: [(&str, &str); 11] = [
            ("Please sign in again", "Please connect ModelGates again"),
            ("You can sign in again", "You can connect it again"),
            ("sign in again", "connect ModelGates again"),
            ("Sign in with ModelGates first", "Connect ModelGates first"),
            ("Sign in first", "Connect ModelGates first"),
            (
                "You are not signed out yet",
                "ModelGates is not disconnected yet",
            ),
            ("end your session", "disconnect ModelGates"),
            ("Sign-out", "Disconnecting"),
            ("Sign-in", "Connecting ModelGates"),
            ("sign-ins", "connections to ModelGates"),
            ("sign-in", "connection to ModelGates"),
        ];
        match self {
            Self::Login => text.to_owned(),
            Self::Linked => LINKED
                .iter()
                .fold(text.to_owned(), |text, (from, to)| text.replace(from, to)),
        }
    }
}

/// Pages through the app users who have linked ModelGates, for a background job: made by
/// [`ModelGatesAuth::linked_accounts`](crate::ModelGatesAuth::linked_accounts).
///
/// ```no_run
/// # async fn run(auth: modelgates_axum::ModelGatesAuth<modelgates_axum::store::MemoryStore>) -> Result<(), modelgates_axum::store::StoreError> {
/// let mut pages = auth.linked_accounts(100);
/// while let Some(accounts) = pages.next_page().await? {
///     for account in accounts {
///         let Some(key) = auth.key_for(&account).await? else { continue };
///         let _ = key.key_info().await; // spend the user's own credits
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a pager does nothing until its pages are read with `next_page`"]
pub struct LinkedAccounts<K> {
    store: Arc<K>,
    page_size: usize,
    after: Option<String>,
    done: bool,
}

impl<K: KeyStore> LinkedAccounts<K> {
    pub(crate) fn new(store: Arc<K>, page_size: usize) -> Self {
        Self {
            store,
            page_size: page_size.max(1),
            after: None,
            done: false,
        }
    }

    /// The next page of app user ids (in byte order), or `None` after the last.
    ///
    /// # Errors
    ///
    /// When the store fails; the same page is asked again on the next call.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .linked_accounts(self.after.as_deref(), self.page_size)
            .await?;
        self.done = page.len() < self.page_size;
        match page.last() {
            Some(last) => {
                self.after = Some(last.clone());
                Ok(Some(page))
            }
            None => Ok(None),
        }
    }
}
