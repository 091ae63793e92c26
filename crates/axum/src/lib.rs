//! Sign users in with [ModelGates](https://modelgates.ai) in axum and tower apps.
//!
//! ModelGates lets each user of your app pay for their own model calls: the user approves your
//! app on ModelGates (OAuth PKCE) and your app receives a user-controlled API key. This crate
//! makes that one layer and one extractor:
//!
//! ```no_run
//! use axum::{Form, Router, response::IntoResponse, routing::post};
//! use modelgates_axum::ApiError;
//! use modelgates_axum::oauth_core::async_openai::types::chat::{
//!     ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
//! };
//! use modelgates_axum::{ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
//!
//! #[derive(serde::Deserialize)]
//! struct Ask { message: String }
//!
//! /// Streams the reply to the browser as server-sent events, paid by the signed-in user.
//! async fn chat(key: ModelGatesKey, Form(ask): Form<Ask>) -> Result<impl IntoResponse, ApiError> {
//!     let request = CreateChatCompletionRequestArgs::default()
//!         .model("openai/gpt-5.2")
//!         .messages([ChatCompletionRequestUserMessage::from(ask.message).into()])
//!         .build()?;
//!     key.stream_chat(request).await
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ModelGatesConfig::from_env()?; // MODELGATES_PUBLIC_URL, MODELGATES_COOKIE_SECRET, ...
//! let auth = ModelGatesAuth::new(config);
//! let app: Router = Router::new()
//!     .route("/chat", post(chat))
//!     .layer(auth.same_origin()) // no other site can post here with the user's cookie
//!     .layer(auth); // mounts /login, /callback, /logout
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! // With each connection's address, so that the sign-in bounds tell clients apart.
//! let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
//! axum::serve(listener, app).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # The flow
//!
//! 1. `GET /login?return_to=/chat` makes a flow id and a PKCE verifier, keeps them in an
//!    encrypted flow cookie, and redirects to ModelGates' `/auth` with the S256 challenge and
//!    the callback URL `/callback/<flow id>`.
//! 2. The user approves; ModelGates redirects to `/callback/<flow id>?code=…`.
//! 3. The layer checks the flow cookie and the flow id, exchanges the code and the verifier for
//!    the key, keeps the key in the [`KeyStore`](store::KeyStore) (by default an encrypted
//!    cookie) and redirects to `/chat`.
//! 4. Handlers take [`ModelGatesKey`] (or `Option<ModelGatesKey>`) and call ModelGates with it
//!    through async-openai (`ModelGatesKey::openai`, `ModelGatesKey::stream_chat`; feature
//!    `openai`). A key revoked on ModelGates signs the user out ([`ApiError`]).
//! 5. `POST /logout` forgets the key.
//!
//! # Modules
//!
//! The root holds what every app names: [`ModelGatesAuth`] (its documentation states the
//! rules of the sign-in routes and of signed-in requests), [`ModelGatesConfig`] (and the rules
//! of the cookies), [`CookieSecret`], [`ModelGatesKey`], [`ApiError`] (a failed call with the
//! user's key, named), [`SignOut`] (a handler ending the session), [`AuthError`] (what a failed
//! sign-in answers) and [`is_safe_return_to`] (where a user may be sent back to). Each other
//! concern lives in one public module whose documentation states the exact rules it applies:
//! [`config`] (settings, their checked values, environment, errors), [`hooks`] (the app's
//! functions on sign-in and sign-out), [`layer`] (the tower layer, its service and response
//! future), [`extract`] (the extractor, the session handle, the rejections), [`api_error`]
//! (how ModelGates' refusals become answers, and the sign-out on a revoked key), `sse` (the
//! events of a streamed reply, feature `openai`), [`store`] (where keys live: the contract,
//! the cookie and memory stores, and the cache in front of a shared one; the database stores
//! are the `modelgates-stores` crate's), [`same_origin`] (the guard against cross-site posts),
//! [`observe`] (metrics and spans) and `testing` (feature `test-util`). Every error the crate
//! answers is rendered in one place, by one negotiation rule (a page for a browser, JSON
//! otherwise). What needs no web framework (PKCE, the flow state and its sealing, the key
//! exchange) is in [`oauth_core`].
//!
//! # Security
//!
//! Keys and verifiers never appear in logs, errors, URLs or pages. Cookies are `HttpOnly`,
//! `SameSite=Lax`, and `Secure` with a `__Host-` name on https. The callback URL comes from
//! configuration, never from request headers. See the repository's `SECURITY.md` for the
//! threat model.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(fuzzing)]
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;
pub mod api_error;
pub mod config;
mod context;
mod cookies;
pub mod extract;
mod flow;
mod forwarded;
mod hex;
pub mod hooks;
pub mod layer;
mod limits;
pub mod linked;
pub mod observe;
mod response;
pub mod same_origin;
#[cfg(feature = "openai")]
#[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
pub mod sse;
pub mod store;
mod stream_slots;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use api_error::ApiError;
pub use config::{CookieSecret, ModelGatesConfig};
pub use extract::{ModelGatesKey, SignOut};
pub use flow::{AuthError, is_safe_return_to};
pub use layer::ModelGatesAuth;
pub use response::prefers_html;

/// The crate's README (its crates.io page), compiled as a doc test so that what it shows works.
/// The project's README is doc-tested by the workspace's `modelgates-e2e` crate.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The protocol crate, re-exported so apps need only this one dependency. (Not named `core`,
/// which would shadow the standard `core` crate for `use modelgates_axum::*;`.)
pub use modelgates_oauth_core as oauth_core;

/// The `metrics` facade the crate records through ([`observe`]), so the app installs its
/// exporter against the same version.
pub use metrics;
