//! The OpenAI-compatible API through [`async_openai`] (feature `openai`, on by default).
//!
//! ModelGates serves OpenAI's API under `{base}/api/v1`; Rust apps call such APIs with
//! `async-openai`, so this crate does not grow a client of its own. [`ModelGatesClient::openai`]
//! and [`ModelGatesClient::openai_stream`] return an `async_openai::Client` set up with that
//! base, the user's key, the attribution headers and this client's connection pool: chat,
//! streaming, tools, structured output and embeddings all come from it.
//!
//! ModelGates-only request fields go through async-openai's bring-your-own-types methods
//! (`create_byot`, `create_stream_byot`): turn on async-openai's `byot` feature in your own
//! `Cargo.toml`. It changes the typed `create_stream` too: with it on, a streamed request must
//! set `stream: true` itself, so set it always.
//!
//! The two differ only in their timeouts: `openai()` bounds each call's total time (10 minutes
//! by default), `openai_stream()` bounds the silence between chunks (60 s) and not the total.
//!
//! [`is_key_rejected`] tells whether an error means the key was revoked (a 401), also when the
//! gateway's error body carries a numeric `code`, which async-openai cannot parse.
//!
//! ```no_run
//! use async_openai::types::chat::{
//!     ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
//! };
//! use modelgates_oauth_core::{ApiKey, ModelGatesClient};
//!
//! # async fn run(key: ApiKey) -> Result<(), Box<dyn std::error::Error>> {
//! let client = ModelGatesClient::new()?;
//! let request = CreateChatCompletionRequestArgs::default()
//!     .model("openai/gpt-5.2")
//!     .messages([ChatCompletionRequestUserMessage::from("Hello!").into()])
//!     .build()?;
//! let reply = client.openai(&key).chat().create(request).await?;
//! println!("{:?}", reply.choices[0].message.content);
//! # Ok(())
//! # }
//! ```

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;

use crate::{ApiKey, ModelGatesClient};

impl ModelGatesClient {
    /// An `async_openai::Client` for calls that answer whole, with `key`.
    #[must_use]
    pub fn openai(&self, key: &ApiKey) -> async_openai::Client<OpenAIConfig> {
        async_openai::Client::build(self.inner.http_api.clone(), self.openai_config(key))
    }

    /// An `async_openai::Client` for streams (`create_stream`), with `key`: no total
    /// timeout, an idle timeout between chunks.
    #[must_use]
    pub fn openai_stream(&self, key: &ApiKey) -> async_openai::Client<OpenAIConfig> {
        async_openai::Client::build(self.inner.http_stream.clone(), self.openai_config(key))
    }

    fn openai_config(&self, key: &ApiKey) -> OpenAIConfig {
        // Explicit empty organisation and project: the defaults read OPENAI_* variables,
        // which must not leak into calls to ModelGates.
        OpenAIConfig::new()
            .with_api_base(&self.inner.api_base)
            .with_api_key(key.expose_secret())
            .with_org_id("")
            .with_project_id("")
    }
}

/// Whether `error` means ModelGates refused the key (401): it was revoked or has expired, and
/// the user must sign in again.
#[must_use]
pub fn is_key_rejected(error: &OpenAIError) -> bool {
    match error {
        OpenAIError::ApiError(response) => response.status_code.as_u16() == 401,
        // Gateways send `{"error": {"code": 401, …}}`; async-openai expects a string code and
        // reports the body it could not parse.
        OpenAIError::JSONDeserialize(_, body) => serde_json::from_str::<serde_json::Value>(body)
            .is_ok_and(|value| {
                value
                    .pointer("/error/code")
                    .and_then(serde_json::Value::as_u64)
                    == Some(401)
            }),
        _ => false,
    }
}

/// Whether `error` is the total timeout of a call made through [`ModelGatesClient::openai`].
///
/// A stream's idle timeout cannot be told this way: async-openai reports every failure of a
/// stream's connection as text (`StreamError`). `modelgates-axum`'s SSE relay names it by when
/// it comes.
#[must_use]
pub fn is_timeout(error: &OpenAIError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = source {
        if error
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
            || error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        source = error.source();
    }
    false
}
