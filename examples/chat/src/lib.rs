//! example-chat: a chat page whose users pay for their own model calls through ModelGates.
//!
//! The contract:
//!
//! * `GET /` shows a Connect button, or the chat: the key (masked) with its usage and limit,
//!   a model picked from ModelGates' models list, and the conversation so far.
//! * `POST /chat` (form fields `message`, and `model` and `history` from the page) answers the
//!   page again with the model's whole reply, HTML-escaped; with `Accept: text/event-stream`
//!   it answers server-sent events whose unnamed events carry `{"delta": "…"}` in order and
//!   end with an event named `done` (see `modelgates_axum::sse`). The page uses the second
//!   form when JavaScript runs and the first when it does not.
//! * The conversation is kept in the page (a hidden `history` field), never on the server.
//! * The layer mounts `/login`, `/callback/…` and `/logout`; `POST /chat` is guarded against
//!   cross-site posts; a key revoked on ModelGates signs the user out.
//!
//! `main.rs` is the app at a glance: the router, the layer and the store. The rest is
//! [`settings`] (the environment), [`stores`] (where keys live), [`handlers`] and the page.
//!
//! Environment: `PORT` (3000), `PUBLIC_URL` (`http://localhost:$PORT`), `MODELGATES_BASE_URL`
//! (unset: an emulator is started in-process so the app runs with no network at all),
//! `MODELGATES_COOKIE_SECRET` (generated with a warning), `MODELGATES_MODEL`
//! (`openai/gpt-5.2`), `MODELGATES_KEY_STORE` (`cookie`), `MODELGATES_KEY_CACHE` (`on`: the
//! PostgreSQL and Redis stores behind their `CachingStore`; `off`), `MODELGATES_KEY_LIMIT` (the
//! spend limit the connect page offers; none), `MODELGATES_MAX_KEY_LIMIT` (the most a user may
//! choose; 1000), `MODELGATES_KEY_LABEL` (the key's label; the app title),
//! `MODELGATES_TRUSTED_PROXIES` (the proxies in front whose forwarding headers are believed;
//! none), `MODELGATES_FAILED_SIGN_INS_PER_CLIENT` and `MODELGATES_FAILED_SIGN_INS_GLOBAL` (the
//! bounds on failed sign-ins; `10/min,burst=5` and `20/s,burst=50`), `MODELGATES_APP_URL` (the
//! public URL), `MODELGATES_APP_TITLE` (`ModelGates chat example`), `SHUTDOWN_GRACE_SECS` (10:
//! on SIGTERM or Ctrl-C, how long replies still streaming may go on before they end with an
//! `error` event saying the server restarts) and `METRICS_ADDR` (unset: none; `IP:PORT`:
//! Prometheus text at `http://METRICS_ADDR/metrics`, see [`observability`]). `GET /healthz`
//! and `GET /readyz` answer outside the layer. Built with the feature `otlp`,
//! `OTEL_EXPORTER_OTLP_ENDPOINT` sends every span to an OpenTelemetry collector (`otlp`).

use std::sync::Arc;

use modelgates_axum::config::SpendLimit;
use modelgates_axum::oauth_core::api::ModelInfo;

pub mod handlers;
pub mod observability;
#[cfg(feature = "otlp")]
pub mod otlp;
mod page;
pub mod settings;
pub mod stores;

pub use handlers::{ChatForm, MAX_HISTORY_BYTES, MAX_TURNS, Turn};
pub use settings::{Settings, config};

/// The app's name, sent to ModelGates as `X-Title` unless `MODELGATES_APP_TITLE` is set.
pub const APP_TITLE: &str = "ModelGates chat example";

/// The model used when `MODELGATES_MODEL` is unset.
pub const DEFAULT_MODEL: &str = "openai/gpt-5.2";

/// The longest message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// What the handlers share besides the layer.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The model chats go to unless the page picks another.
    pub model: String,
    /// The spend limit the connect page offers (`MODELGATES_KEY_LIMIT`).
    pub key_limit: Option<SpendLimit>,
    /// ModelGates' models list, fetched once.
    models: Arc<tokio::sync::OnceCell<Vec<ModelInfo>>>,
}

impl AppState {
    /// State whose default model is `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            key_limit: None,
            models: Arc::default(),
        }
    }

    /// The spend limit the connect page offers.
    #[must_use]
    pub fn with_key_limit(mut self, limit: Option<SpendLimit>) -> Self {
        self.key_limit = limit;
        self
    }
}

/// The app's own routes, without the layer: what `main.rs` puts behind it, and what tests
/// extend with routes of their own.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(handlers::home))
        .route("/chat", post(handlers::chat))
        .route("/usage", get(handlers::usage))
}
