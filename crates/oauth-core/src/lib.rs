//! The ModelGates OAuth PKCE protocol, with no web framework.
//!
//! ModelGates lets an app's users pay for their own model calls: the app sends the user to
//! ModelGates' `/auth` page, gets a one-time `code` back on its callback URL, and exchanges it
//! for a user-controlled API key. This crate is that protocol and nothing else:
//!
//! * [`Pkce`], [`CodeVerifier`], [`CodeChallenge`], [`ChallengeMethod`]: PKCE as RFC 7636
//!   defines it;
//! * [`ModelGatesClient::authorization_url`]: step 1, the `/auth` URL;
//! * [`CallbackParams::parse`]: what the redirect back to the app carries;
//! * [`ModelGatesClient::exchange_code`]: step 2, `code` to [`ApiKey`], with typed
//!   [`ExchangeError`]s;
//! * [`ModelGatesClient::chat`]: step 3, a minimal chat completions call with the key.
//!
//! Secrets are types: [`CodeVerifier`] and [`ApiKey`] never print, and no error message holds
//! one. For axum and tower apps, the `modelgates-axum` crate wraps all of this in a layer.
//!
//! ```no_run
//! use modelgates_oauth_core::{
//!     CallbackParams, ChallengeMethod, ChatMessage, ChatRequest, ModelGatesClient, Pkce,
//! };
//! use url::Url;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ModelGatesClient::new()?;
//! let pkce = Pkce::generate(ChallengeMethod::S256);
//! let callback = Url::parse("http://localhost:3000/callback")?;
//! let url = client.authorization_url(&callback, Some(&pkce.challenge()));
//! println!("open {url}");
//! # let query = "code=";
//! // ... the browser comes back to /callback?code=...
//! let CallbackParams::Code(code) = CallbackParams::parse(query)? else {
//!     return Err("the user cancelled".into());
//! };
//! let issued = client.exchange_code(&code, Some(&pkce)).await?;
//! let reply = client
//!     .chat(&issued.key, &ChatRequest::new("openai/gpt-5.2", vec![ChatMessage::user("Hello!")]))
//!     .await?;
//! println!("{}", reply.text().unwrap_or_default());
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod authorize;
mod callback;
mod chat;
mod client;
mod exchange;
mod http;
mod key;
mod pkce;

pub use callback::{CallbackError, CallbackParams, MAX_CODE_LEN};
pub use chat::{ChatChoice, ChatError, ChatMessage, ChatRequest, ChatResponse, Role, Usage};
pub use client::{
    ClientConfigError, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, ModelGatesClient, ModelGatesClientBuilder,
};
pub use exchange::{ExchangeError, IssuedKey};
pub use key::ApiKey;
pub use pkce::{
    ChallengeMethod, CodeChallenge, CodeVerifier, InvalidVerifier, MAX_VERIFIER_LEN,
    MIN_VERIFIER_LEN, Pkce, UnknownChallengeMethod,
};
pub use url::Url;
