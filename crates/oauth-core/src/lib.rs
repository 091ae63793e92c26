//! The ModelGates OAuth PKCE protocol, with no web framework.
//!
//! ModelGates lets an app's users pay for their own model calls: the app sends the user to
//! ModelGates' `/auth` page, gets a one-time `code` back on its callback URL, and exchanges it
//! for a user-controlled API key. This crate is that protocol, and the way to use the key:
//!
//! * [`Pkce`], [`CodeVerifier`], [`CodeChallenge`], [`ChallengeMethod`]: PKCE as RFC 7636
//!   defines it;
//! * [`ModelGatesClient::authorization_url`]: step 1, the `/auth` URL;
//! * [`CallbackParams::parse`]: what the redirect back to the app carries;
//! * [`FlowState`], [`FlowSealer`], [`FlowId`]: what a web app remembers between the redirect
//!   and the callback, sealed for the browser, and the check of a callback against it (binding
//!   and age), with [`ExchangeError::http_status`] saying what each failure answers;
//! * [`parse_public_origin`], [`is_loopback`], [`is_loopback_host`], [`random_token`]: the URL rules and the token
//!   helper both this crate and an app's own routes need;
//! * [`LoopbackReceiver`] (feature `loopback`): the callback of a command-line tool, on
//!   `127.0.0.1` with a random path (RFC 8252);
//! * [`ModelGatesClient::exchange_code`]: step 2, `code` to [`ApiKey`], with typed
//!   [`ExchangeError`]s;
//! * step 3, the API: [`ModelGatesClient::openai`] (feature `openai`, on by default) gives an
//!   `async_openai::Client` set up for ModelGates and the user's key, and
//!   [`ModelGatesClient::key_info`] and [`ModelGatesClient::models`] call ModelGates' own
//!   endpoints.
//!
//! Every call carries the app's attribution (`HTTP-Referer`, `X-Title`) when configured with
//! [`ModelGatesClientBuilder::app_url`] and [`ModelGatesClientBuilder::app_title`]. Secrets are types: [`CodeVerifier`] and [`ApiKey`]
//! never print, and no error message holds one. For axum and tower apps, the `modelgates-axum`
//! crate wraps all of this in a layer.
//!
//! The example uses nothing but this crate (its re-exports of `async_openai` and `Url` keep
//! the versions matched), so it compiles pasted into a crate that depends on this one alone.
//! A command-line tool receives the callback with [`LoopbackReceiver`] (feature `loopback`).
//!
//! ```no_run
//! use modelgates_oauth_core::async_openai::types::chat::{
//!     ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
//! };
//! use modelgates_oauth_core::{CallbackParams, ChallengeMethod, ModelGatesClient, Pkce, Url};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ModelGatesClient::builder()
//!     .app_url("https://github.com/me/my-tool")
//!     .app_title("My tool")
//!     .build()?;
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
//! let request = CreateChatCompletionRequestArgs::default()
//!     .model("openai/gpt-5.2")
//!     .messages([ChatCompletionRequestUserMessage::from("Hello!").into()])
//!     .build()?;
//! let reply = client.openai(&issued.key).chat().create(request).await?;
//! println!("{:?}", reply.choices[0].message.content);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authorize;
mod callback;
mod client;
mod endpoints;
mod error;
mod exchange;
mod flow;
mod http;
mod key;
mod limit;
#[cfg(feature = "loopback")]
#[cfg_attr(docsrs, doc(cfg(feature = "loopback")))]
mod loopback;
#[cfg(feature = "openai")]
#[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
pub mod openai;
mod origin;
mod pkce;
mod random;
mod retry;

pub use callback::{CallbackError, CallbackParams, MAX_CODE_LEN};
pub use client::{
    ClientConfigError, DEFAULT_API_TIMEOUT, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_STREAM_IDLE_TIMEOUT, DEFAULT_TIMEOUT, ModelGatesClient, ModelGatesClientBuilder,
};
pub use endpoints::{KeyInfo, ModelInfo};
pub use error::{GatewayError, RequestError, TransportError};
pub use exchange::{ExchangeError, IssuedKey};
pub use flow::{
    FlowError, FlowId, FlowSealer, FlowState, MAX_SEALED_FLOW_LEN, SecretTooShort, unix_now,
};
pub use key::ApiKey;
pub use limit::{InvalidSpendLimit, KeyRequest, SpendLimit};
#[cfg(feature = "loopback")]
#[cfg_attr(docsrs, doc(cfg(feature = "loopback")))]
pub use loopback::{LoopbackError, LoopbackReceiver};
pub use origin::{InvalidPublicUrl, is_loopback, is_loopback_host, parse_public_origin};
pub use pkce::{
    ChallengeMethod, CodeChallenge, CodeVerifier, InvalidVerifier, MAX_VERIFIER_LEN,
    MIN_VERIFIER_LEN, Pkce, UnknownChallengeMethod,
};
pub use random::{random_bytes, random_token};
pub use retry::ApiRetries;
pub use url::Url;

/// The OpenAI client crate, re-exported so its version always matches.
#[cfg(feature = "openai")]
#[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
pub use async_openai;

#[cfg(test)]
mod docs_tests {
    /// The crate's examples must compile in a user's crate that depends on this one alone:
    /// every `use` goes through this crate (or std), never through its own dependencies.
    #[test]
    fn examples_use_only_this_crate() {
        let sources = [
            include_str!("lib.rs"),
            include_str!("client.rs"),
            include_str!("loopback.rs"),
            include_str!("openai.rs"),
            include_str!("flow.rs"),
            include_str!("authorize.rs"),
            include_str!("callback.rs"),
            include_str!("endpoints.rs"),
            include_str!("exchange.rs"),
            include_str!("key.rs"),
            include_str!("limit.rs"),
            include_str!("origin.rs"),
            include_str!("pkce.rs"),
            include_str!("random.rs"),
            include_str!("retry.rs"),
            include_str!("error.rs"),
        ];
        for source in sources {
            for line in source.lines() {
                let Some(used) = line
                    .trim_start()
                    .strip_prefix("//! use ")
                    .or_else(|| line.trim_start().strip_prefix("/// use "))
                else {
                    continue;
                };
                assert!(
                    used.starts_with("modelgates_oauth_core") || used.starts_with("std::"),
                    "an example uses a dependency directly: {line}"
                );
            }
        }
    }
}
