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
//! Environment: `PORT` (3000), `PUBLIC_URL` (`http://localhost:$PORT`), `MODELGATES_BASE_URL`
//! (unset: an emulator is started in-process so the app runs with no network at all),
//! `MODELGATES_COOKIE_SECRET` (generated with a warning), `MODELGATES_MODEL`
//! (`openai/gpt-5.2`), `MODELGATES_KEY_STORE` (`cookie`), `MODELGATES_KEY_CACHE` (`on`: the
//! PostgreSQL and Redis stores behind their `CachingStore`; `off`), `MODELGATES_APP_URL` (the
//! public URL) and `MODELGATES_APP_TITLE` (`ModelGates chat example`).

use std::net::{Ipv4Addr, SocketAddr};

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use modelgates_axum::api::ApiError;
use modelgates_axum::config::ConfigError;
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use modelgates_axum::oauth_core::{KeyInfo, ModelInfo, RequestError};
use modelgates_axum::store::{KeyStore, MemoryStore, PostgresStore, RedisStore, SqliteStore};
use modelgates_axum::{ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::Emulator;

mod page;

/// The app's name, sent to ModelGates as `X-Title` unless `MODELGATES_APP_TITLE` is set.
pub const APP_TITLE: &str = "ModelGates chat example";

/// The model used when `MODELGATES_MODEL` is unset.
pub const DEFAULT_MODEL: &str = "openai/gpt-5.2";

/// The longest message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// What the app needs besides the layer.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The model chats go to unless the page picks another.
    pub model: String,
    /// ModelGates' models list, fetched once.
    models: Arc<tokio::sync::OnceCell<Vec<ModelInfo>>>,
}

impl AppState {
    /// State whose default model is `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            models: Arc::default(),
        }
    }
}

/// The app's routes with the ModelGates layer in front, keys in any store. The app's own
/// `POST /chat` sits behind the same-origin guard, so no other site (nor a sibling subdomain)
/// can make a signed-in browser spend the user's key.
pub fn app<K: KeyStore>(layer: ModelGatesAuth<K>, model: impl Into<String>) -> Router {
    routes()
        .layer(layer.same_origin())
        .layer(layer)
        .with_state(AppState::new(model))
}

/// The app's own routes without the layer, to add routes before layering.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/chat", post(chat))
        .route("/usage", get(usage))
}

/// Settings read from the environment, as the crate documentation lists them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `PORT` (default 3000; 0 picks a free port).
    pub port: u16,
    /// `PUBLIC_URL` (default `http://localhost:$PORT`).
    pub public_url: Option<String>,
    /// `MODELGATES_BASE_URL` (default: start the embedded emulator).
    pub base_url: Option<String>,
    /// `MODELGATES_MODEL` (default `openai/gpt-5.2`).
    pub model: String,
    /// `MODELGATES_KEY_STORE`: `cookie` (default), `memory`, `sqlite:PATH`, `postgres://…` or
    /// `redis://…`.
    pub key_store: Option<String>,
    /// `MODELGATES_KEY_CACHE`: `on` (default) puts a PostgreSQL or Redis store behind its
    /// `CachingStore`, which hears every instance's revocations; `off` asks the database on
    /// every request.
    pub key_cache: bool,
}

impl Settings {
    /// Reads `PORT`, `PUBLIC_URL`, `MODELGATES_BASE_URL`, `MODELGATES_MODEL`,
    /// `MODELGATES_KEY_STORE` and `MODELGATES_KEY_CACHE`.
    ///
    /// # Errors
    ///
    /// When `PORT` is not a port number or `MODELGATES_KEY_CACHE` is neither `on` nor `off`.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let port = match var("PORT") {
            Some(port) => port
                .trim()
                .parse()
                .map_err(|_| format!("PORT must be a port number, not `{port}`"))?,
            None => 3000,
        };
        let key_cache = match var("MODELGATES_KEY_CACHE").as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(format!(
                    "MODELGATES_KEY_CACHE must be `on` or `off`, not `{other}`"
                ));
            }
        };
        Ok(Self {
            port,
            public_url: var("PUBLIC_URL"),
            base_url: var("MODELGATES_BASE_URL"),
            model: var("MODELGATES_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            key_store: var("MODELGATES_KEY_STORE"),
            key_cache,
        })
    }
}

/// Builds the layer's configuration: the `MODELGATES_*` variables, with the public URL and
/// base URL decided here.
///
/// # Errors
///
/// A [`ConfigError`] naming the variable to fix.
pub fn config(public_url: &str, base_url: &str) -> Result<ModelGatesConfig, ConfigError> {
    let config = ModelGatesConfig::from_lookup(|name| match name {
        "MODELGATES_PUBLIC_URL" => Some(public_url.to_owned()),
        "MODELGATES_BASE_URL" => Some(base_url.to_owned()),
        "MODELGATES_APP_TITLE" => Some(
            std::env::var(name)
                .ok()
                .filter(|title| !title.trim().is_empty())
                .unwrap_or_else(|| APP_TITLE.to_owned()),
        ),
        other => std::env::var(other).ok(),
    })?;
    Ok(config)
}

/// Runs the app until Ctrl-C: binds 127.0.0.1:`PORT`, starts the emulator when no base URL is
/// set, prints both URLs.
///
/// # Errors
///
/// A configuration or bind error, as a readable message.
pub async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, settings.port)))
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", settings.port))?;
    let port = listener.local_addr()?.port();
    let public_url = settings
        .public_url
        .unwrap_or_else(|| format!("http://localhost:{port}"));
    let (emulator, base_url) = match settings.base_url {
        Some(base_url) => (None, base_url),
        None => {
            let emulator = Emulator::builder().start().await?;
            let base_url = emulator.base_url().to_owned();
            (Some(emulator), base_url)
        }
    };
    let config = config(&public_url, &base_url)?;
    let layer = ModelGatesAuth::try_new(config.clone())?;
    match &emulator {
        Some(_) => println!("ModelGates emulator (consent page, no real money): {base_url}"),
        None => println!("ModelGates: {base_url}"),
    }
    let store = settings.key_store.as_deref().unwrap_or("cookie");
    let cached = settings.key_cache && (is_postgres(store) || is_redis(store));
    // Printed once the store is ready, so the App line means "ready to serve".
    let announce = || {
        let cache = if cached {
            ", cached (revocations heard from every instance)"
        } else {
            ""
        };
        println!("Keys kept in: {}{cache}", store_label(store));
        println!("App: {public_url} (listening on 127.0.0.1:{port})");
    };
    let model = settings.model;
    let app = match store {
        "cookie" => app(layer, model),
        "memory" => app(layer.with_store(MemoryStore::default()), model),
        url if url.starts_with("sqlite:") => app(
            layer.with_store(SqliteStore::connect(url, &config).await?),
            model,
        ),
        url if is_postgres(url) => {
            let store = PostgresStore::connect(url, &config).await?;
            if cached {
                app(layer.with_store(store.cached().await?), model)
            } else {
                app(layer.with_store(store), model)
            }
        }
        url if is_redis(url) => {
            let store = RedisStore::connect(url, &config).await?;
            if cached {
                app(layer.with_store(store.cached().await?), model)
            } else {
                app(layer.with_store(store), model)
            }
        }
        other => {
            return Err(format!(
                "MODELGATES_KEY_STORE `{other}` is not one of cookie, memory, sqlite:PATH, \
                 postgres://… or redis://…"
            )
            .into());
        }
    };
    announce();
    serve(listener, app).await?;
    drop(emulator);
    Ok(())
}

fn is_postgres(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

fn is_redis(store: &str) -> bool {
    store.starts_with("redis://") || store.starts_with("rediss://")
}

/// Where the keys live, for the banner; database URLs are cut at their scheme so no password
/// is printed.
fn store_label(store: &str) -> &str {
    match store {
        "cookie" => "the encrypted cookie (no server state)",
        "memory" => "this process's memory",
        url => url.split(':').next().unwrap_or(url),
    }
}

async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}

/// One turn of the conversation, as the page keeps it in its `history` field.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Turn {
    /// `user` or `assistant`.
    pub role: String,
    /// What was said.
    pub content: String,
}

/// The most turns a conversation sent back by the page may hold.
pub const MAX_TURNS: usize = 50;
/// The most bytes the `history` field may hold.
pub const MAX_HISTORY_BYTES: usize = 100_000;

/// The models to offer: ModelGates' list, fetched once; the configured model alone while the
/// list cannot be had.
async fn models(state: &AppState, key: &ModelGatesKey) -> Vec<ModelInfo> {
    if let Some(models) = state.models.get() {
        return models.clone();
    }
    match key.models().await {
        Ok(models) if !models.is_empty() => {
            state.models.get_or_init(|| async { models }).await.clone()
        }
        Ok(_) => vec![fallback_model(&state.model)],
        Err(error) => {
            tracing::warn!(%error, "the models list is unavailable");
            vec![fallback_model(&state.model)]
        }
    }
}

fn fallback_model(id: &str) -> ModelInfo {
    serde_json::from_value(serde_json::json!({ "id": id, "name": id })).expect("a model object")
}

async fn home(
    State(state): State<AppState>,
    key: Option<ModelGatesKey>,
) -> Result<Response, ApiError> {
    let Some(key) = key else {
        return Ok(page::connect().into_response());
    };
    Ok(render(&state, &key, &state.model, &[], None)
        .await?
        .into_response())
}

/// The key's usage line, for the page to refresh after a streamed reply.
async fn usage(key: ModelGatesKey) -> Result<String, ApiError> {
    Ok(page::usage_line(key_info(&key).await?.as_ref()))
}

/// The key's limit and usage; `None` when ModelGates cannot say. A revoked key is an
/// [`ApiError::KeyRejected`], which signs the user out on its way through the layer.
async fn key_info(key: &ModelGatesKey) -> Result<Option<KeyInfo>, ApiError> {
    match key.key_info().await {
        Ok(info) => Ok(Some(info)),
        Err(RequestError::KeyRejected) => Err(ApiError::KeyRejected),
        Err(error) => {
            tracing::warn!(%error, "the key's usage is unavailable");
            Ok(None)
        }
    }
}

/// The chat form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct ChatForm {
    message: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    history: Option<String>,
}

impl ChatForm {
    /// The earlier turns, checked: at most [`MAX_TURNS`] of `user` and `assistant`.
    fn history(&self) -> Result<Vec<Turn>, &'static str> {
        let Some(raw) = self.history.as_deref().filter(|h| !h.trim().is_empty()) else {
            return Ok(Vec::new());
        };
        if raw.len() > MAX_HISTORY_BYTES {
            return Err("The conversation is too long; reload the page to start a new one.");
        }
        let turns: Vec<Turn> = serde_json::from_str(raw)
            .map_err(|_| "The conversation could not be read; reload the page.")?;
        let valid = turns.len() <= MAX_TURNS
            && turns
                .iter()
                .all(|t| t.role == "user" || t.role == "assistant");
        if valid {
            Ok(turns)
        } else {
            Err("The conversation could not be read; reload the page.")
        }
    }

    /// The model asked for, if it looks like a model id; the default otherwise.
    fn model<'a>(&'a self, default: &'a str) -> &'a str {
        self.model
            .as_deref()
            .filter(|m| {
                !m.is_empty()
                    && m.len() <= 100
                    && m.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/._:-".contains(&b))
            })
            .unwrap_or(default)
    }
}

/// The request for ModelGates: the earlier turns, then the new message.
fn completion_request(
    model: &str,
    history: &[Turn],
    message: &str,
) -> Result<CreateChatCompletionRequest, ApiError> {
    let mut messages: Vec<ChatCompletionRequestMessage> = Vec::with_capacity(history.len() + 1);
    for turn in history {
        messages.push(if turn.role == "assistant" {
            ChatCompletionRequestAssistantMessageArgs::default()
                .content(turn.content.as_str())
                .build()?
                .into()
        } else {
            ChatCompletionRequestUserMessage::from(turn.content.as_str()).into()
        });
    }
    messages.push(ChatCompletionRequestUserMessage::from(message).into());
    Ok(CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages(messages)
        .build()?)
}

async fn chat(
    State(state): State<AppState>,
    key: Option<ModelGatesKey>,
    headers: HeaderMap,
    Form(form): Form<ChatForm>,
) -> Result<Response, ApiError> {
    let Some(key) = key else {
        return Ok(signed_out(&headers));
    };
    let streaming = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let message = form.message.trim();
    let model = form.model(&state.model).to_owned();
    let history = form.history();
    let problem = match &history {
        Err(problem) => Some(*problem),
        Ok(_) if message.is_empty() || message.chars().count() > MAX_MESSAGE_CHARS => {
            Some("Please write a message of 1 to 4000 characters.")
        }
        Ok(_) => None,
    };
    let mut history = history.unwrap_or_default();
    if let Some(problem) = problem {
        return refuse(&state, &key, &model, &history, streaming, problem).await;
    }
    let request = completion_request(&model, &history, message)?;
    if streaming {
        return Ok(key.stream_chat(request).await?.into_response());
    }
    history.push(Turn {
        role: "user".into(),
        content: message.to_owned(),
    });
    match key.openai().chat().create(request).await {
        Ok(reply) => {
            let text = reply
                .choices
                .first()
                .and_then(|c| c.message.content.clone())
                .unwrap_or_else(|| "(the model sent no text)".to_owned());
            history.push(Turn {
                role: "assistant".into(),
                content: text,
            });
            Ok(render(&state, &key, &model, &history, None)
                .await
                .into_response())
        }
        Err(error) => {
            let error = ApiError::from(error);
            if let ApiError::KeyRejected = error {
                return Err(error);
            }
            tracing::warn!(%error, "chat call failed");
            let alert = format!("The model could not answer: {error}");
            let page = render(&state, &key, &model, &history, Some(&alert)).await?;
            Ok((error.status(), page).into_response())
        }
    }
}

/// The chat page with the key's usage and the models list.
async fn render(
    state: &AppState,
    key: &ModelGatesKey,
    model: &str,
    history: &[Turn],
    alert: Option<&str>,
) -> Result<Html<String>, ApiError> {
    let (usage, models) = tokio::join!(key_info(key), models(state, key));
    Ok(page::ChatPage {
        key,
        usage: usage?.as_ref(),
        models: &models,
        model,
        history,
        alert,
    }
    .render())
}

/// A message that cannot be sent: 400, as JSON for a script, or the page again.
async fn refuse(
    state: &AppState,
    key: &ModelGatesKey,
    model: &str,
    history: &[Turn],
    streaming: bool,
    problem: &str,
) -> Result<Response, ApiError> {
    if streaming {
        let body = serde_json::json!({"error": {"status": 400, "code": "bad_message", "message": problem}});
        return Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
    }
    let page = render(state, key, model, history, Some(problem)).await?;
    Ok((StatusCode::BAD_REQUEST, page).into_response())
}

/// A signed-out chat post: browsers go to sign in, other clients get a 401.
fn signed_out(headers: &HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if wants_html {
        Redirect::to("/login?return_to=%2F").into_response()
    } else {
        let body = r#"{"error":{"status":401,"code":"not_signed_in","message":"Sign in with ModelGates first."}}"#;
        (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()
    }
}
