//! ModelGates' own endpoints, beside its OpenAI-compatible API: the current key's limit and
//! usage (`GET /api/v1/key`), the models list (`GET /api/v1/models`) and the models the user's
//! settings allow (`GET /api/v1/models/user`).
//!
//! Both answer `{"data": …}`. A 401 for the key is [`RequestError::KeyRejected`]: the user
//! revoked it or it expired. Answers are read up to 1 MiB (key info) and 16 MiB (models).

use serde::Deserialize;

use crate::error::RequestError;
use crate::http::status_error;
use crate::{ApiKey, ModelGatesClient};

const MAX_KEY_INFO_BODY: usize = 1024 * 1024;
const MAX_MODELS_BODY: usize = 16 * 1024 * 1024;

/// The current key's limit and usage, as `GET /api/v1/key` reports them. Amounts are in
/// credits (US dollars); a field ModelGates leaves out is `None` (or empty, or zero).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key's label on ModelGates.
    #[serde(default)]
    pub label: String,
    /// The spend limit, `None` for unlimited. ModelGates enforces it, not the app.
    #[serde(default)]
    pub limit: Option<f64>,
    /// What is left of the limit, `None` for unlimited.
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    /// When the limit starts again (`daily`, `weekly`, `monthly`), `None` for never.
    #[serde(default)]
    pub limit_reset: Option<String>,
    /// What the key has spent in all.
    #[serde(default)]
    pub usage: f64,
    /// What the key has spent today (UTC).
    #[serde(default)]
    pub usage_daily: Option<f64>,
    /// What the key has spent this week (UTC, from Monday).
    #[serde(default)]
    pub usage_weekly: Option<f64>,
    /// What the key has spent this month (UTC).
    #[serde(default)]
    pub usage_monthly: Option<f64>,
    /// Whether the account is on the free tier.
    #[serde(default)]
    pub is_free_tier: bool,
    /// When the key stops working (RFC 3339), `None` for never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Whether calls with the user's own provider keys count against the limit.
    #[serde(default)]
    pub include_byok_in_limit: Option<bool>,
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

    /// The models this user's settings on ModelGates allow (`GET /api/v1/models/user`), a
    /// subset of [`Self::models`].
    ///
    /// # Errors
    ///
    /// [`RequestError::KeyRejected`] for a revoked or expired key; others as their names say.
    pub async fn models_for_user(&self, key: &ApiKey) -> Result<Vec<ModelInfo>, RequestError> {
        self.models_from(&self.inner.user_models_url, Some(key))
            .await
    }

    /// The models ModelGates offers.
    ///
    /// # Errors
    ///
    /// As their names say.
    pub async fn models(&self) -> Result<Vec<ModelInfo>, RequestError> {
        self.models_from(&self.inner.models_url, None).await
    }

    async fn models_from(
        &self,
        url: &url::Url,
        key: Option<&ApiKey>,
    ) -> Result<Vec<ModelInfo>, RequestError> {
        let bearer = key.map(ApiKey::expose_secret);
        let answer = self.get(url, bearer, MAX_MODELS_BODY).await?;
        if !answer.status.is_success() {
            return Err(status_error(&answer));
        }
        let parsed: Data<Vec<ModelInfo>> = serde_json::from_slice(&answer.body)
            .map_err(|_| RequestError::MalformedResponse("not the models list".into()))?;
        Ok(parsed.data)
    }
}
