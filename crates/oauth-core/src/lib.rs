//! The ModelGates OAuth PKCE protocol, with no web framework.
//!
//! ModelGates lets an app's users pay for their own model calls: the app sends the user to
//! ModelGates' `/auth` page, gets a one-time `code` back on its callback URL, and exchanges it
//! for a user-controlled API key. This crate is that protocol, and the way to use the key:
//!
//! # The root and the modules
//!
//! The root holds the names a sign-in needs first: [`ModelGatesClient`] (and its builder),
//! [`Pkce`] and [`ChallengeMethod`], [`KeyRequest`], [`CallbackParams`], [`ApiKey`],
//! [`IssuedKey`], [`ExchangeError`], [`RequestError`] and [`Url`]. Each step has a module whose
//! documentation states the rules it applies:
//!
//! * [`pkce`]: PKCE as RFC 7636 defines it (verifier, challenge, method);
//! * [`client`]: the client, its builder, its defaults and configuration errors; step 1, the
//!   `/auth` URL, is [`ModelGatesClient::authorization_url`];
//! * [`flow`]: what a web app remembers between the redirect and the callback, sealed for the
//!   browser ([`flow::FlowState`], [`flow::FlowSealer`]), the check of a callback against it
//!   (binding and age), and what the callback's query carries ([`CallbackParams`]);
//! * [`exchange`]: step 2, `code` to [`ApiKey`] ([`ModelGatesClient::exchange_code`]), with
//!   typed errors and the kind of each failure ([`exchange::ExchangeFailure`]), from which an
//!   adapter chooses its own answer;
//! * [`key`]: the key and what a sign-in asks for it (spend limit, label);
//! * [`api`]: step 3, ModelGates' own endpoints ([`ModelGatesClient::key_info`],
//!   [`ModelGatesClient::models`]), the typed errors of every API call and their retries;
//!   [`openai`] (feature `openai`, on by default) gives an `async_openai::Client` set up for
//!   ModelGates and the user's key;
//! * [`origin`] and [`random`]: the URL rules (loopback hosts, an app's public origin) and the
//!   random tokens both this crate and an app's own routes need;
//! * `loopback` (feature `loopback`): the callback of a command-line tool, on `127.0.0.1`
//!   with a random path (RFC 8252); [`headless`]: a tool's sign-in on a machine with no
//!   browser, where the person pastes the code ModelGates shows.
//!
//! Every call carries the app's attribution (`HTTP-Referer`, `X-Title`) when configured with
//! [`ModelGatesClientBuilder::app_url`] and [`ModelGatesClientBuilder::app_title`]. Secrets
//! are types: [`pkce::CodeVerifier`] and [`ApiKey`] never print, and no error message holds
//! one. For axum and tower apps, the `modelgates-axum` crate wraps all of this in a layer.
//!
//! The example uses nothing but this crate (its re-exports of `async_openai` and `Url` keep
//! the versions matched), so it compiles pasted into a crate that depends on this one alone.
//! A command-line tool receives the callback with `loopback::LoopbackReceiver` (feature `loopback`).
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
pub mod client;
mod endpoints;
mod error;
pub mod exchange;
pub mod flow;
pub mod headless;
mod http;
pub mod key;
mod key_info;
mod limit;
#[cfg(feature = "loopback")]
#[cfg_attr(docsrs, doc(cfg(feature = "loopback")))]
pub mod loopback;
mod model_info;
#[cfg(feature = "openai")]
#[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
pub mod openai;
pub mod origin;
pub mod pkce;
pub mod random;
mod rate_limit;
mod retry;

pub mod api {
    //! Step 3, the API with the user's key: ModelGates' own endpoints
    //! ([`ModelGatesClient::key_info`](crate::ModelGatesClient::key_info),
    //! [`ModelGatesClient::models`](crate::ModelGatesClient::models)), the typed errors of
    //! every API call, and how plain calls are retried. The OpenAI-compatible calls go through
    //! async-openai ([`crate::openai`], feature `openai`).

    pub use crate::error::{GatewayError, RequestError, TransportError};
    pub use crate::key_info::{FreeModelDailyRequests, KeyBudget, KeyInfo};
    pub use crate::model_info::{
        DefaultParameters, ModelAlias, ModelArchitecture, ModelInfo, ModelLinks, ModelPricing,
        ModelReasoning, PerRequestLimits, TopProvider,
    };
    pub use crate::rate_limit::RateLimitHeaders;
    pub use crate::retry::ApiRetries;
}

pub use authorize::PreparedAuthUrl;
pub use callback::CallbackParams;
pub use client::{ModelGatesClient, ModelGatesClientBuilder};
pub use error::RequestError;
pub use exchange::{ExchangeError, IssuedKey};
pub use key::ApiKey;
pub use limit::KeyRequest;
pub use pkce::{ChallengeMethod, Pkce};
pub use url::Url;

/// Helpers the framework adapters of this workspace share (`modelgates-axum`, the emulator):
/// not part of the API, and free to change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::flow::unix_now;
    pub use crate::key::secret_string;
    pub use crate::origin::is_loopback_host;
    pub use crate::random::random_bytes;
}

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
