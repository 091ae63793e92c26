//! example-chat: a chat page whose users pay for their own model calls through ModelGates.
//!
//! The contract (environment variables, routes, behaviour) is the one in the repository's
//! `DESIGN.md`: `GET /` shows a Connect button or the chat form, `POST /chat` answers a page
//! holding the model's reply, and the layer mounts `/login`, `/callback` and `/logout`.
//! With `MODELGATES_BASE_URL` unset, an emulator is started in-process so the app runs with no
//! network at all.

use std::net::{Ipv4Addr, SocketAddr};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use html_escape::encode_text;
use modelgates_axum::config::ConfigError;
use modelgates_axum::core::{ChatError, ChatMessage, ChatRequest};
use modelgates_axum::store::{KeyStore, MemoryStore, PostgresStore, RedisStore, SqliteStore};
use modelgates_axum::{ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::Emulator;

/// The model used when `MODELGATES_MODEL` is unset.
pub const DEFAULT_MODEL: &str = "openai/gpt-5.2";

/// The longest message accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 4000;

/// What the app needs besides the layer.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The model every chat goes to.
    pub model: String,
}

/// The app's routes with the ModelGates layer in front, keys in any store. The app's own
/// `POST /chat` sits behind the same-origin guard, so no other site (nor a sibling subdomain)
/// can make a signed-in browser spend the user's key.
pub fn app<K: KeyStore>(layer: ModelGatesAuth<K>, model: impl Into<String>) -> Router {
    routes()
        .layer(layer.same_origin())
        .layer(layer)
        .with_state(AppState {
            model: model.into(),
        })
}

/// The app's own routes without the layer, to add routes before layering.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/chat", post(chat))
}

/// Settings read from the environment, as `DESIGN.md` lists them.
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
}

impl Settings {
    /// Reads `PORT`, `PUBLIC_URL`, `MODELGATES_BASE_URL` and `MODELGATES_MODEL`.
    ///
    /// # Errors
    ///
    /// When `PORT` is not a port number.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let port = match var("PORT") {
            Some(port) => port
                .trim()
                .parse()
                .map_err(|_| format!("PORT must be a port number, not `{port}`"))?,
            None => 3000,
        };
        Ok(Self {
            port,
            public_url: var("PUBLIC_URL"),
            base_url: var("MODELGATES_BASE_URL"),
            model: var("MODELGATES_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            key_store: var("MODELGATES_KEY_STORE"),
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
    // Printed once the store is ready, so the App line means "ready to serve".
    let announce = || {
        println!("Keys kept in: {}", store_label(store));
        println!("App: {public_url} (listening on 127.0.0.1:{port})");
    };
    let model = settings.model;
    match store {
        "cookie" => {
            announce();
            serve(listener, app(layer, model)).await?;
        }
        "memory" => {
            announce();
            serve(
                listener,
                app(layer.with_store(MemoryStore::default()), model),
            )
            .await?;
        }
        url if url.starts_with("sqlite:") => {
            let store = SqliteStore::connect(url, &config).await?;
            announce();
            serve(listener, app(layer.with_store(store), model)).await?;
        }
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PostgresStore::connect(url, &config).await?;
            announce();
            serve(listener, app(layer.with_store(store), model)).await?;
        }
        url if url.starts_with("redis://") || url.starts_with("rediss://") => {
            let store = RedisStore::connect(url, &config).await?;
            announce();
            serve(listener, app(layer.with_store(store), model)).await?;
        }
        other => {
            return Err(format!(
                "MODELGATES_KEY_STORE `{other}` is not one of cookie, memory, sqlite:PATH, \
                 postgres://… or redis://…"
            )
            .into());
        }
    }
    drop(emulator);
    Ok(())
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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}\
button{font-size:1rem;padding:.45rem 1.1rem;cursor:pointer}textarea{width:100%;font:inherit;padding:.5rem;box-sizing:border-box}\
.reply{background:#f3f4f6;border-radius:.5rem;padding:.75rem 1rem;white-space:pre-wrap}\
.you{border-left:3px solid #6366f1;padding-left:.75rem;white-space:pre-wrap}\
header{display:flex;justify-content:space-between;align-items:center}small{color:#6b7280}";

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        title = encode_text(title)
    ))
}

fn signed_in_header(key: &ModelGatesKey) -> String {
    format!(
        "<header><h1>ModelGates chat</h1><form method=\"post\" action=\"/logout\">\
         <button type=\"submit\" id=\"logout\">Log out</button></form></header>\
         <p><small>Connected with key <code id=\"key\">{}</code></small></p>",
        encode_text(&key.api_key().masked())
    )
}

const CHAT_FORM: &str = "<form method=\"post\" action=\"/chat\">\
    <p><label for=\"message\">Message</label></p>\
    <textarea id=\"message\" name=\"message\" rows=\"3\" required maxlength=\"4000\"></textarea>\
    <p><button type=\"submit\" id=\"send\">Send</button></p></form>";

async fn home(key: Option<ModelGatesKey>) -> Html<String> {
    match key {
        Some(key) => page(
            "ModelGates chat",
            &format!("{}{CHAT_FORM}", signed_in_header(&key)),
        ),
        None => page(
            "ModelGates chat",
            "<h1>ModelGates chat</h1>\
             <p>Chat with a model, paid from your own ModelGates account. Connecting gives this \
             app a key you control and can revoke at any time.</p>\
             <form method=\"get\" action=\"/login\"><button type=\"submit\" id=\"connect\">Connect ModelGates</button></form>",
        ),
    }
}

/// The chat form's fields.
#[derive(Debug, serde::Deserialize)]
pub struct ChatForm {
    message: String,
}

async fn chat(
    State(state): State<AppState>,
    key: Option<ModelGatesKey>,
    headers: HeaderMap,
    Form(form): Form<ChatForm>,
) -> Response {
    let Some(key) = key else {
        return signed_out(&headers);
    };
    let message = form.message.trim();
    if message.is_empty() || message.chars().count() > MAX_MESSAGE_CHARS {
        let body = format!(
            "{}<p role=\"alert\">Please write a message of 1 to {MAX_MESSAGE_CHARS} characters.</p>{CHAT_FORM}",
            signed_in_header(&key)
        );
        return (StatusCode::BAD_REQUEST, page("ModelGates chat", &body)).into_response();
    }
    let request = ChatRequest::new(state.model, vec![ChatMessage::user(message)]);
    match key.chat(&request).await {
        Ok(reply) => {
            let text = reply.text().unwrap_or("(the model sent no text)");
            let body = format!(
                "{}<p class=\"you\" id=\"you\">{}</p><div class=\"reply\" id=\"reply\">{}</div>{CHAT_FORM}",
                signed_in_header(&key),
                encode_text(message),
                encode_text(text)
            );
            page("ModelGates chat", &body).into_response()
        }
        Err(ChatError::KeyRejected) => {
            let body = "<h1>Your key no longer works</h1><p>It was revoked or has expired. \
                        <a href=\"/login\">Connect ModelGates again</a>.</p>";
            (StatusCode::UNAUTHORIZED, page("Key rejected", body)).into_response()
        }
        Err(error) => {
            tracing::warn!(%error, "chat call failed");
            let body = format!(
                "{}<p role=\"alert\">The model could not answer: {}</p>{CHAT_FORM}",
                signed_in_header(&key),
                encode_text(&error.to_string())
            );
            (StatusCode::BAD_GATEWAY, page("ModelGates chat", &body)).into_response()
        }
    }
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
