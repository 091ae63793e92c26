//! Sign users in with [ModelGates](https://modelgates.ai) in axum and tower apps.
//!
//! ModelGates lets each user of your app pay for their own model calls: the user approves your
//! app on ModelGates (OAuth PKCE) and your app receives a user-controlled API key. This crate
//! makes that one layer and one extractor:
//!
//! ```no_run
//! use axum::{Form, Router, response::IntoResponse, routing::post};
//! use modelgates_axum::api::ApiError;
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
//!    through async-openai ([`ModelGatesKey::openai`], [`ModelGatesKey::stream_chat`]). A key
//!    revoked on ModelGates signs the user out ([`api`]).
//! 5. `POST /logout` forgets the key.
//!
//! # Modules
//!
//! The root holds what every app names: [`ModelGatesAuth`], [`ModelGatesConfig`],
//! [`CookieSecret`] and [`ModelGatesKey`]. Each other concern lives in one public module whose
//! documentation states the exact rules it applies: [`config`] (settings, environment,
//! errors), [`layer`] and [`future`] (the tower layer, its service and response future),
//! [`extract`] (the extractor and its rejections), [`store`] (where keys live: cookie, memory,
//! and with features `postgres`, `sqlite` and `redis` databases with keys sealed at rest),
//! [`error`] (what a failed sign-in answers), [`return_to`] (where a user may be sent back
//! to), [`same_origin`] (the guard against cross-site posts), [`api`] (handler errors and the
//! sign-out on a revoked key), [`sse`] (streaming replies to browsers) and `testing` (feature
//! `test-util`). The rules of the sign-in routes are in [`flow`], those of the cookies in
//! [`cookies`], and how a request is recognised as signed in in [`session`].
//!
//! # Security
//!
//! Keys and verifiers never appear in logs, errors, URLs or pages. Cookies are `HttpOnly`,
//! `SameSite=Lax`, and `Secure` with a `__Host-` name on https. The callback URL comes from
//! configuration, never from request headers. See the repository's `SECURITY.md` for the
//! threat model.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api;
pub mod config;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod flow;
pub mod future;
pub mod layer;
mod mount;
mod primitives;
mod response;
pub mod return_to;
pub mod same_origin;
pub mod session;
#[cfg(feature = "openai")]
#[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
pub mod sse;
pub mod store;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;

pub use config::{CookieSecret, ModelGatesConfig};
pub use extract::ModelGatesKey;
pub use layer::ModelGatesAuth;

/// The README's examples, compiled and run as doc tests so that what it shows works.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The protocol crate, re-exported so apps need only this one dependency. (Not named `core`,
/// which would shadow the standard `core` crate for `use modelgates_axum::*;`.)
pub use modelgates_oauth_core as oauth_core;

/// Entry points for the fuzz targets in `fuzz/`, compiled only under cargo-fuzz's
/// `--cfg fuzzing`: not part of the public API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod __fuzz {
    use http::header::COOKIE;
    use http::{HeaderMap, HeaderValue};

    use crate::cookies::CookieCodec;
    use crate::store::TokenProtection;

    fn codec() -> CookieCodec {
        let keys = vec![cookie::Key::from(&[42u8; 64])];
        CookieCodec::new(keys, "f".into(), "k".into(), false)
    }

    fn headers(cookie_header: &[u8]) -> Option<HeaderMap> {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_bytes(cookie_header).ok()?);
        Some(headers)
    }

    /// Opens the flow cookie in a `Cookie` header; whether a flow came out.
    #[must_use]
    pub fn open_flow_cookie(cookie_header: &[u8]) -> bool {
        headers(cookie_header).is_some_and(|h| matches!(codec().open_flow(&h), Ok(Some(_))))
    }

    /// Opens the key cookie both ways; whether a token came out.
    #[must_use]
    pub fn open_key_cookie(cookie_header: &[u8]) -> bool {
        headers(cookie_header).is_some_and(|h| {
            let codec = codec();
            codec.open_key(&h, TokenProtection::Encrypted).is_some()
                || codec.open_key(&h, TokenProtection::Signed).is_some()
        })
    }

    /// A valid `Cookie` header holding a flow and both kinds of key cookie, to seed corpora.
    #[must_use]
    pub fn sample_cookie_header() -> String {
        let codec = codec();
        let flow = crate::cookies::FlowState {
            id: crate::cookies::FlowId::generate(),
            pkce: Some(modelgates_oauth_core::Pkce::generate(
                modelgates_oauth_core::ChallengeMethod::S256,
            )),
            return_to: "/chat".into(),
            issued_at: crate::primitives::unix_now(),
        };
        let max_age = std::time::Duration::from_secs(60);
        [
            codec.flow_cookie(&flow, max_age),
            codec.key_cookie(
                "{\"k\":\"sk\",\"t\":1}",
                TokenProtection::Encrypted,
                max_age,
            ),
        ]
        .iter()
        .map(|c| {
            let text = c.to_str().unwrap_or_default();
            text.split(';').next().unwrap_or_default().to_owned()
        })
        .collect::<Vec<_>>()
        .join("; ")
    }

    /// The callback's `code` for a query string, or the error's code.
    ///
    /// # Errors
    ///
    /// The [`AuthError::code`](crate::error::AuthError::code) of the rejection.
    pub fn callback_code(query: &str) -> Result<String, &'static str> {
        let uri = format!("/callback?{query}");
        let Ok(request) = http::Request::get(uri).body(()) else {
            return Err("not a URI");
        };
        let (parts, ()) = request.into_parts();
        crate::flow::callback_code(&parts).map_err(|e| e.code())
    }

    /// The sanitised `return_to`.
    #[must_use]
    pub fn sanitize_return_to(candidate: &str) -> &str {
        crate::return_to::sanitize(Some(candidate), "/")
    }
}
