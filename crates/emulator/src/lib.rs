//! A faithful local ModelGates, for examples and tests that must not reach the real service.
//!
//! It is a real HTTP server on `127.0.0.1` that behaves as ModelGates documents its OAuth PKCE
//! flow:
//!
//! * `GET /auth` checks `callback_url`, `code_challenge` and `code_challenge_method`, then shows
//!   a consent page with **Approve** and **Deny** (or approves at once in auto-approve mode) and
//!   redirects to the callback with `code=…` (or `error=access_denied`);
//! * `POST /api/v1/auth/keys` redeems a code once, within its lifetime, for the verifier that
//!   matches its challenge, answering exactly the documented errors;
//! * `POST /api/v1/chat/completions` checks the Bearer key and answers deterministically, as JSON
//!   or as server-sent events when `stream` is true.
//!
//! Tests read what it saw and inject faults through this library, never through HTTP routes
//! the real service lacks.
//!
//! ```
//! use modelgates_emulator::{Emulator, Endpoint, Fault};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let emulator = Emulator::builder().auto_approve(true).start().await?;
//! assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
//!
//! // The next key exchange answers 502, later ones behave again.
//! emulator.inject_once(Endpoint::Keys, Fault::Status(502));
//! assert_eq!(emulator.exchange_count(), 0);
//! emulator.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod account;
mod answer;
mod api;
mod auth;
mod builder;
mod chat;
mod faults;
mod keys;
mod manage;
mod pages;
mod random;
mod refusals;
mod routes;
mod state;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use account::KeyRecord;
pub use auth::InvalidAuthUrl;
pub use builder::EmulatorBuilder;
pub use chat::{ChatInput, InputMessage};
pub use faults::{Endpoint, Fault};
use state::Shared;
pub use state::{AttributionRecord, ExchangeRecord, IssuedKeyRecord};

/// How long a code lives unless configured otherwise, as ModelGates documents it.
pub const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(600);

/// The prefix of every key the emulator issues.
pub const KEY_PREFIX: &str = "sk-mg-v1-";

/// What each prompt or completion token costs, in US dollars.
pub const PRICE_PER_TOKEN: f64 = 0.000_001;

/// The spend limit of a key whose `/auth` asked for none, unless configured, in credits.
pub const DEFAULT_KEY_LIMIT: f64 = 10.0;

/// The credits a new person starts with, unless configured.
pub const DEFAULT_CREDITS: f64 = 100.0;

/// The models `GET /api/v1/models` lists: id and display name. Completions answer for any
/// model id.
pub const MODELS: [(&str, &str); 3] = [
    ("openai/gpt-5.2", "OpenAI: GPT-5.2"),
    (
        "anthropic/claude-sonnet-4.5",
        "Anthropic: Claude Sonnet 4.5",
    ),
    ("meta-llama/llama-4-maverick", "Meta: Llama 4 Maverick"),
];

/// A custom chat reply (see [`EmulatorBuilder::chat_reply`]).
type ReplyFn = dyn Fn(&ChatInput) -> String + Send + Sync;

/// A running emulator. Dropping it stops the server; [`Emulator::shutdown`] also waits for it.
#[derive(Debug)]
pub struct Emulator {
    base_url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// A builder with the defaults: consent page, 10-minute codes, any free port.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::new()
    }

    /// Starts an auto-approving emulator on any free port: the usual choice for tests.
    ///
    /// # Errors
    ///
    /// As [`EmulatorBuilder::start`].
    pub async fn start_auto_approve() -> std::io::Result<Self> {
        Self::builder().auto_approve(true).start().await
    }

    /// The origin to use as ModelGates' base URL, such as `http://127.0.0.1:41234`.
    #[must_use]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The socket address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every code issued so far, redeemed or not, oldest first.
    #[must_use]
    pub fn issued_codes(&self) -> Vec<String> {
        self.shared.issued_codes()
    }

    /// Every key issued so far with the code it was issued for, oldest first.
    #[must_use]
    pub fn issued_keys(&self) -> Vec<IssuedKeyRecord> {
        self.shared.issued_keys()
    }

    /// How many requests reached `/api/v1/auth/keys`, whatever their outcome.
    #[must_use]
    pub fn exchange_count(&self) -> usize {
        self.shared.exchanges().0
    }

    /// The body of the last request to `/api/v1/auth/keys`, as JSON when it parsed.
    #[must_use]
    pub fn last_exchange(&self) -> Option<ExchangeRecord> {
        self.shared.exchanges().1
    }

    /// How many chat completion requests arrived, whatever their outcome.
    #[must_use]
    pub fn chat_count(&self) -> usize {
        self.shared.chat_count()
    }

    /// How many unredeemed, unexpired codes are held: stays bounded because expired codes are
    /// purged.
    #[must_use]
    pub fn pending_code_count(&self) -> usize {
        self.shared.pending_code_count()
    }

    /// Answers an `/auth` URL as a user pressing **Approve** would: the URL is checked by the
    /// same rules as `GET /auth`, a code bound to its challenge is issued, and the callback URL
    /// with `code` added is returned: where ModelGates would send the browser next. Tests use
    /// it to sign in without driving a consent page.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let emulator = modelgates_emulator::Emulator::builder().start().await?;
    /// let auth = format!("{}/auth?callback_url=http%3A%2F%2Flocalhost%3A3000%2Fcallback", emulator.base_url());
    /// let callback = emulator.approve(&auth)?;
    /// assert!(callback.as_str().starts_with("http://localhost:3000/callback?code="));
    /// assert!(emulator.approve("https://elsewhere.example/login").is_err());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`InvalidAuthUrl`] when `GET /auth` would answer 400, or the URL is not an `/auth` URL.
    pub fn approve(&self, auth_url: &str) -> Result<url::Url, InvalidAuthUrl> {
        auth::decide_url(&self.shared, auth_url, Some(None))
    }

    /// [`Self::approve`] as the person `user_id` (one user signing in again, or on a second
    /// device), who must have approved before.
    ///
    /// # Errors
    ///
    /// As [`Self::approve`], and when the emulator knows no such person.
    pub fn approve_as(&self, auth_url: &str, user_id: &str) -> Result<url::Url, InvalidAuthUrl> {
        if !self.shared.accounts.knows(user_id) {
            return Err(InvalidAuthUrl::new(format!(
                "no person {user_id} approved before"
            )));
        }
        auth::decide_url(&self.shared, auth_url, Some(Some(user_id.to_owned())))
    }

    /// Sets the credits a person has left; at zero or below, their calls answer 402.
    pub fn set_credits(&self, user_id: &str, credits: f64) {
        self.shared.accounts.set_credits(user_id, credits);
    }

    /// The credits a person has left, `None` for a person the emulator does not know.
    #[must_use]
    pub fn credits(&self, user_id: &str) -> Option<f64> {
        self.shared.accounts.credits(user_id)
    }

    /// What the emulator knows of an issued key: owner, label, limit, usage, expiry.
    #[must_use]
    pub fn key(&self, key: &str) -> Option<KeyRecord> {
        self.shared.accounts.key(key)
    }

    /// Adds `credits` to a key's usage as if it had been spent, to bring it to its limit.
    pub fn add_usage(&self, key: &str, credits: f64) {
        self.shared.accounts.add_usage(key, credits);
    }

    /// Answers an `/auth` URL as a user pressing **Deny** would: the callback URL with
    /// `error=access_denied` added.
    ///
    /// # Errors
    ///
    /// As [`Emulator::approve`].
    pub fn deny(&self, auth_url: &str) -> Result<url::Url, InvalidAuthUrl> {
        auth::decide_url(&self.shared, auth_url, None)
    }

    /// A headless `/auth` URL (no `callback_url`: a tool on a machine without a browser)
    /// approved as a new person, as on the consent page: the code the page then shows, for the
    /// test to paste into the tool.
    ///
    /// # Errors
    ///
    /// [`InvalidAuthUrl`] when `GET /auth` would answer 400 (a headless URL whose challenge is
    /// not S256, say), or the URL has a `callback_url` (use [`Self::approve`]).
    pub fn approve_headless(&self, auth_url: &str) -> Result<String, InvalidAuthUrl> {
        auth::approve_headless(&self.shared, auth_url)
    }

    /// The attribution headers (`HTTP-Referer`, `X-Title`) of every request to an `/api/v1`
    /// endpoint so far, oldest first.
    #[must_use]
    pub fn attributions(&self) -> Vec<AttributionRecord> {
        self.shared.attributions()
    }

    /// How many streamed completions the client dropped before their end.
    #[must_use]
    pub fn streams_cancelled(&self) -> usize {
        self.shared.streams_cancelled()
    }

    /// Revokes a key it issued: later chat calls with it get 401.
    pub fn revoke_key(&self, key: &str) {
        self.shared.accounts.revoke(key);
    }

    /// Applies `fault` to every request to `endpoint` until [`Emulator::clear_faults`].
    pub fn inject(&self, endpoint: Endpoint, fault: Fault) {
        self.shared.faults.always(endpoint, fault);
    }

    /// Applies `fault` to the next request to `endpoint` only.
    pub fn inject_once(&self, endpoint: Endpoint, fault: Fault) {
        self.inject_in_turn(endpoint, [fault]);
    }

    /// Applies `faults` to the next requests to `endpoint`, one each, in turn; later requests
    /// behave again. Replaces whatever was planned for `endpoint`.
    ///
    /// ```
    /// use modelgates_emulator::{Emulator, Endpoint, Fault};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let emulator = Emulator::start_auto_approve().await?;
    /// // The next chat call is out of credits, the one after it rate limited.
    /// emulator.inject_in_turn(
    ///     Endpoint::Chat,
    ///     [Fault::InsufficientCredits, Fault::RateLimited(std::time::Duration::from_secs(1))],
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn inject_in_turn(&self, endpoint: Endpoint, faults: impl IntoIterator<Item = Fault>) {
        self.shared
            .faults
            .in_turn(endpoint, faults.into_iter().collect());
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// Stops accepting connections, lets requests in flight finish, and waits for the server.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The hidden `consent_id` of a consent page, for tests that press Approve or Deny with an
/// HTTP client instead of a browser (`POST /auth/consent` with `consent_id` and
/// `decision=approve|deny`).
///
/// ```
/// let page = r#"<input type="hidden" name="consent_id" value="abc123">"#;
/// assert_eq!(modelgates_emulator::consent_id(page), Some("abc123"));
/// ```
#[must_use]
pub fn consent_id(page: &str) -> Option<&str> {
    let (_, rest) = page.split_once(r#"name="consent_id" value=""#)?;
    rest.split('"').next()
}
