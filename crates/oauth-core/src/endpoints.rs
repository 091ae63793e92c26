//! ModelGates' own endpoints, beside its OpenAI-compatible API: the current key's limit and
//! usage (`GET /api/v1/key`), the models list (`GET /api/v1/models`) and the models the user's
//! settings allow (`GET /api/v1/models/user`).
//!
//! Both answer `{"data": …}`. A 401 for the key is [`RequestError::KeyRejected`]: the user
//! revoked it or it expired. Answers are read up to 1 MiB (key info) and 16 MiB (models).

use serde::Deserialize;

use crate::error::RequestError;
use crate::http::status_error;
use crate::key_info::KeyInfo;
use crate::model_info::ModelInfo;
use crate::{ApiKey, ModelGatesClient};

const MAX_KEY_INFO_BODY: usize = 1024 * 1024;
const MAX_MODELS_BODY: usize = 16 * 1024 * 1024;

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
