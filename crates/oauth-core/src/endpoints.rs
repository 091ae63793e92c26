//! ModelGates' own endpoints, beside its OpenAI-compatible API: the current key's limit and
//! usage (`GET /api/v1/key`) and the models list (`GET /api/v1/models`).
//!
//! Both answer `{"data": …}`. A 401 for the key is [`RequestError::KeyRejected`]: the user
//! revoked it or it expired. Answers are read up to 1 MiB (key info) and 16 MiB (models).

use serde::Deserialize;

use crate::error::RequestError;
use crate::http::status_error;
use crate::{ApiKey, ModelGatesClient};

const MAX_KEY_INFO_BODY: usize = 1024 * 1024;
const MAX_MODELS_BODY: usize = 16 * 1024 * 1024;

/// The current key's limit and usage, as `GET /api/v1/key` reports them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key's label on ModelGates.
    #[serde(default)]
    pub label: String,
    /// The spending limit in US dollars, `None` for unlimited.
    #[serde(default)]
    pub limit: Option<f64>,
    /// What the key has spent, in US dollars.
    #[serde(default)]
    pub usage: f64,
    /// What is left of the limit, `None` for unlimited.
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    /// Whether the account is on the free tier.
    #[serde(default)]
    pub is_free_tier: bool,
}

/// One model of `GET /api/v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The id to put in a request's `model`, such as `openai/gpt-5.2`.
    pub id: String,
    /// A name to show people.
    #[serde(default)]
    pub name: String,
    /// The context window in tokens, when known.
    #[serde(default)]
    pub context_length: Option<u64>,
}

#[derive(Deserialize)]
struct Data<T> {
    data: T,
}

impl ModelGatesClient {
    /// The limit and usage of `key`.
    ///
    /// # Errors
    ///
    /// [`RequestError::KeyRejected`] for a revoked or expired key; other variants as their
    /// names say.
    pub async fn key_info(&self, key: &ApiKey) -> Result<KeyInfo, RequestError> {
        let answer = self
            .get(
                &self.inner.key_info_url,
                Some(key.expose_secret()),
                MAX_KEY_INFO_BODY,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(status_error(&answer));
        }
        let parsed: Data<KeyInfo> = serde_json::from_slice(&answer.body)
            .map_err(|_| RequestError::MalformedResponse("not the key info object".into()))?;
        Ok(parsed.data)
    }

    /// The models ModelGates offers.
    ///
    /// # Errors
    ///
    /// As their names say.
    pub async fn models(&self) -> Result<Vec<ModelInfo>, RequestError> {
        let answer = self
            .get(&self.inner.models_url, None, MAX_MODELS_BODY)
            .await?;
        if !answer.status.is_success() {
            return Err(status_error(&answer));
        }
        let parsed: Data<Vec<ModelInfo>> = serde_json::from_slice(&answer.body)
            .map_err(|_| RequestError::MalformedResponse("not the models list".into()))?;
        Ok(parsed.data)
    }
}
