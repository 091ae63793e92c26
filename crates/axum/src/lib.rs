//! Sign users in with [ModelGates](https://modelgates.ai) in axum and tower apps.
//!
//! ModelGates lets each user of your app pay for their own model calls: the user approves your
//! app on ModelGates (OAuth PKCE) and your app receives a user-controlled API key. This crate
//! makes that one layer and one extractor:
//!
//! ```no_run
//! use axum::{Form, Router, routing::post};
//! use modelgates_axum::{ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
//! use modelgates_oauth_core::{ChatMessage, ChatRequest};
//!
//! #[derive(serde::Deserialize)]
//! struct Ask { message: String }
//!
//! async fn chat(key: ModelGatesKey, Form(ask): Form<Ask>) -> String {
//!     let request = ChatRequest::new("openai/gpt-5.2", vec![ChatMessage::user(ask.message)]);
//!     match key.chat(&request).await {
//!         Ok(reply) => reply.text().unwrap_or_default().to_owned(),
//!         Err(error) => error.to_string(),
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ModelGatesConfig::from_env()?; // MODELGATES_PUBLIC_URL, MODELGATES_COOKIE_SECRET, ...
//! let app: Router = Router::new()
//!     .route("/chat", post(chat))
//!     .layer(ModelGatesAuth::new(config)); // mounts /login, /callback, /logout
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The flow
//!
//! 1. `GET /login?return_to=/chat` makes a PKCE verifier, keeps it in a signed flow cookie,
//!    and redirects to ModelGates' `/auth` with the S256 challenge.
//! 2. The user approves; ModelGates redirects to `/callback?code=…`.
//! 3. The layer checks the flow cookie, exchanges the code and the verifier for the key, keeps
//!    the key in the [`KeyStore`] (by default an encrypted cookie) and redirects to `/chat`.
//! 4. Handlers take [`ModelGatesKey`] (or `Option<ModelGatesKey>`) and call ModelGates with it.
//! 5. `POST /logout` forgets the key.
//!
//! # Modules
//!
//! Each concern lives in one module whose documentation states the exact rules it applies:
//! configuration (`config`), the layer and its service (`layer`), the three routes (`flow`),
//! cookies and rotation (`cookies`), storage (`store`), the extractor (`extract`), errors
//! (`error`) and `return_to` (`return_to`).
//!
//! # Security
//!
//! Keys and verifiers never appear in logs, errors, URLs or pages. Cookies are `HttpOnly`,
//! `SameSite=Lax`, and `Secure` with a `__Host-` name on https. The callback URL comes from
//! configuration, never from request headers. See the repository's `SECURITY.md` for the
//! threat model.

#![forbid(unsafe_code)]

mod config;
mod cookies;
mod error;
mod extract;
mod flow;
mod layer;
mod return_to;
mod store;

pub use config::{
    ConfigError, CookieSecret, DEFAULT_FLOW_MAX_AGE, DEFAULT_KEY_MAX_AGE, MIN_SECRET_LEN,
    ModelGatesConfig,
};
pub use error::AuthError;
pub use extract::{ModelGatesKey, ModelGatesKeyRejection};
pub use layer::{ModelGatesAuth, ModelGatesAuthService, ResponseFuture};
pub use return_to::is_safe_return_to;
pub use store::{
    CookieStore, KeyStore, MemoryStore, SessionToken, StoreError, StoredKey, TokenProtection,
};

/// The protocol crate, re-exported so apps need only this one dependency.
pub use modelgates_oauth_core as core;
