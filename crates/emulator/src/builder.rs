//! [`EmulatorBuilder`]: how an emulator behaves, and starting it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::state::Shared;
use crate::{
    ChatInput, DEFAULT_CODE_LIFETIME, DEFAULT_CREDITS, DEFAULT_KEY_LIMIT, Emulator, ReplyFn,
    account, routes,
};

/// Configures and starts an emulator. Made by [`Emulator::builder`].
#[must_use = "a builder does nothing until .start() is called"]
pub struct EmulatorBuilder {
    auto_approve: bool,
    lenient_pkce: bool,
    completion_delay: Duration,
    key_limit: Option<f64>,
    initial_credits: f64,
    rate_limit: Option<account::RateLimit>,
    key_lifetime: Option<Duration>,
    code_lifetime: Duration,
    port: u16,
    reply: Option<Arc<ReplyFn>>,
}

impl std::fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("auto_approve", &self.auto_approve)
            .field("lenient_pkce", &self.lenient_pkce)
            .field("completion_delay", &self.completion_delay)
            .field("key_limit", &self.key_limit)
            .field("initial_credits", &self.initial_credits)
            .field("rate_limit", &self.rate_limit)
            .field("key_lifetime", &self.key_lifetime)
            .field("code_lifetime", &self.code_lifetime)
            .field("port", &self.port)
            .field("custom_reply", &self.reply.is_some())
            .finish()
    }
}

impl EmulatorBuilder {
    /// The defaults: consent page, 10-minute codes, any free port.
    pub(crate) fn new() -> Self {
        Self {
            auto_approve: false,
            lenient_pkce: false,
            completion_delay: Duration::ZERO,
            key_limit: Some(DEFAULT_KEY_LIMIT),
            initial_credits: DEFAULT_CREDITS,
            rate_limit: None,
            key_lifetime: None,
            code_lifetime: DEFAULT_CODE_LIFETIME,
            port: 0,
            reply: None,
        }
    }

    /// Approve every `/auth` request at once instead of showing the consent page
    /// (default: show the page).
    pub fn auto_approve(mut self, yes: bool) -> Self {
        self.auto_approve = yes;
        self
    }

    /// Accept a `code_verifier` for a code that was issued without a challenge (default:
    /// refuse it with 403, as RFC 9700 §2.1.1 requires). A lenient provider lets an attacker's
    /// challenge-less code be redeemed in a victim's PKCE flow; tests use this switch to prove
    /// that an app defends itself without relying on the provider.
    pub fn lenient_pkce(mut self, yes: bool) -> Self {
        self.lenient_pkce = yes;
        self
    }

    /// How long every chat completion waits before answering (default none), as a slow or
    /// reasoning model does.
    pub fn completion_delay(mut self, delay: Duration) -> Self {
        self.completion_delay = delay;
        self
    }

    /// The spend limit of a key whose `/auth` asked for none, in credits (default
    /// [`DEFAULT_KEY_LIMIT`]; `None` for no limit). Calls past a key's limit answer 403
    /// `Key limit exceeded`.
    pub fn key_limit(mut self, limit: Option<f64>) -> Self {
        self.key_limit = limit;
        self
    }

    /// The credits each new person starts with (default [`DEFAULT_CREDITS`]); calls by a
    /// person without credits answer 402. Change one person's with [`Emulator::set_credits`].
    pub fn initial_credits(mut self, credits: f64) -> Self {
        self.initial_credits = credits;
        self
    }

    /// At most `calls` calls per key in each `window` (default: no limit); beyond, 429 with
    /// `Retry-After` until the window ends.
    pub fn rate_limit(mut self, calls: u32, window: Duration) -> Self {
        self.rate_limit = Some(account::RateLimit { calls, window });
        self
    }

    /// Keys stop working this long after they are issued (default: never); the key exchange
    /// and `GET /api/v1/key` say when, as `expires_at`.
    pub fn key_lifetime(mut self, lifetime: Duration) -> Self {
        self.key_lifetime = Some(lifetime);
        self
    }

    /// How long an issued code may be redeemed (default 10 minutes). `Duration::ZERO` makes
    /// every code expired on arrival, which tests use to check expiry without waiting.
    pub fn code_lifetime(mut self, lifetime: Duration) -> Self {
        self.code_lifetime = lifetime;
        self
    }

    /// Listen on this port of 127.0.0.1 (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Replace the default deterministic chat reply
    /// (`"[model] You said: <last user message>"`).
    pub fn chat_reply(
        mut self,
        reply: impl Fn(&ChatInput) -> String + Send + Sync + 'static,
    ) -> Self {
        self.reply = Some(Arc::new(reply));
        self
    }

    /// Binds 127.0.0.1 and starts serving in the background.
    ///
    /// # Errors
    ///
    /// The bind error when the port is taken.
    pub async fn start(self) -> std::io::Result<Emulator> {
        let listener =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))).await?;
        let addr = listener.local_addr()?;
        let mut shared = Shared::new(
            self.auto_approve,
            self.lenient_pkce,
            self.code_lifetime,
            self.reply,
        );
        shared.completion_delay = self.completion_delay;
        shared.key_limit = self.key_limit;
        shared.accounts =
            account::Accounts::new(self.initial_credits, self.rate_limit, self.key_lifetime);
        let shared = Arc::new(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let app = routes::router(shared.clone());
        // TCP_NODELAY, as a real gateway's server sets it: a streamed chunk is a small write
        // that Nagle's algorithm would hold for the previous one's (delayed) ACK.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = serve.await {
                tracing::error!(%error, "the emulator stopped serving");
            }
        });
        Ok(Emulator {
            base_url: format!("http://{addr}"),
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }
}
