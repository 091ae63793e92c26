//! One model of `GET /api/v1/models`, in ModelGates' published schema.

use serde::Deserialize;

use crate::key_info::null_as_default;

/// One model of `GET /api/v1/models` (or `/models/user`). Every field but `id` may be left
/// out by a gateway (it is then `None`, empty or zero), and fields this version does not know
/// are ignored.
///
/// Read: everything the published schema has except the third-party `benchmarks` and the
/// time-windowed `pricing.overrides`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ModelInfo {
    /// The id to put in a request's `model`, such as `openai/gpt-5.2`.
    pub id: String,
    /// The permanent slug of this version of the model (an `id` may move to a newer one).
    #[serde(default)]
    pub canonical_slug: Option<String>,
    /// A name to show people.
    #[serde(default)]
    pub name: String,
    /// When the model was added, in seconds since the Unix epoch.
    #[serde(default)]
    pub created: Option<i64>,
    /// What the model is for, as ModelGates describes it (Markdown).
    #[serde(default)]
    pub description: Option<String>,
    /// The context window in tokens, when known.
    #[serde(default)]
    pub context_length: Option<u64>,
    /// What goes in and comes out.
    #[serde(default)]
    pub architecture: Option<ModelArchitecture>,
    /// What a call costs.
    #[serde(default)]
    pub pricing: Option<ModelPricing>,
    /// The limits of the provider ModelGates routes to first.
    #[serde(default)]
    pub top_provider: Option<TopProvider>,
    /// Token limits per request, `None` for none.
    #[serde(default)]
    pub per_request_limits: Option<PerRequestLimits>,
    /// The request parameters the model takes (`temperature`, `tools`, …).
    #[serde(default, deserialize_with = "null_as_default")]
    pub supported_parameters: Vec<String>,
    /// The parameters used when a request leaves them out, when ModelGates says.
    #[serde(default)]
    pub default_parameters: Option<DefaultParameters>,
    /// The voices a speech model offers; empty for others.
    #[serde(default, deserialize_with = "null_as_default")]
    pub supported_voices: Vec<String>,
    /// The model's reasoning settings, for models that reason.
    #[serde(default)]
    pub reasoning: Option<ModelReasoning>,
    /// The model this id is an alias of.
    #[serde(default)]
    pub alias_target: Option<ModelAlias>,
    /// The model's id on Hugging Face, for open-weights models.
    #[serde(default)]
    pub hugging_face_id: Option<String>,
    /// The date of the model's training data, as ModelGates writes it (`2024-10-01`).
    #[serde(default)]
    pub knowledge_cutoff: Option<String>,
    /// The date the model stops being served, when one is announced.
    #[serde(default)]
    pub expiration_date: Option<String>,
    /// Where ModelGates describes the model further.
    #[serde(default)]
    pub links: Option<ModelLinks>,
}

/// What goes in and comes out of a [`ModelInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ModelArchitecture {
    /// In and out at a glance, such as `text+image->text`.
    #[serde(default)]
    pub modality: Option<String>,
    /// What it reads: `text`, `image`, `file`, `audio`, `video`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_modalities: Vec<String>,
    /// What it writes: `text`, `image`, `audio`, `embeddings`, …
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_modalities: Vec<String>,
    /// The tokenizer family (`GPT`, `Claude`, `Llama3`, …).
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// The instruction format, for models that need one.
    #[serde(default)]
    pub instruct_type: Option<String>,
}

/// What calls to a [`ModelInfo`] cost: US dollars per token (or per request, image or search),
/// as decimal strings, exactly as ModelGates sends them so that no price is rounded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ModelPricing {
    /// Per prompt token.
    #[serde(default)]
    pub prompt: String,
    /// Per completion token.
    #[serde(default)]
    pub completion: String,
    /// Per request.
    #[serde(default)]
    pub request: Option<String>,
    /// Per input image.
    #[serde(default)]
    pub image: Option<String>,
    /// Per output image.
    #[serde(default)]
    pub image_output: Option<String>,
    /// Per image token.
    #[serde(default)]
    pub image_token: Option<String>,
    /// Per input audio token.
    #[serde(default)]
    pub audio: Option<String>,
    /// Per output audio token.
    #[serde(default)]
    pub audio_output: Option<String>,
    /// Per cached input audio token.
    #[serde(default)]
    pub input_audio_cache: Option<String>,
    /// Per web search.
    #[serde(default)]
    pub web_search: Option<String>,
    /// Per reasoning token.
    #[serde(default)]
    pub internal_reasoning: Option<String>,
    /// Per token read from the prompt cache.
    #[serde(default)]
    pub input_cache_read: Option<String>,
    /// Per token written to the prompt cache.
    #[serde(default)]
    pub input_cache_write: Option<String>,
    /// Per token written to the one-hour prompt cache.
    #[serde(default)]
    pub input_cache_write_1h: Option<String>,
    /// The discount applied, as a fraction.
    #[serde(default)]
    pub discount: Option<f64>,
}

impl ModelPricing {
    /// The price of one prompt token in US dollars, `None` when it is not a number.
    #[must_use]
    pub fn prompt_per_token(&self) -> Option<f64> {
        self.prompt.parse().ok()
    }

    /// The price of one completion token in US dollars, `None` when it is not a number.
    #[must_use]
    pub fn completion_per_token(&self) -> Option<f64> {
        self.completion.parse().ok()
    }
}

/// The limits of the provider ModelGates routes a [`ModelInfo`] to first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TopProvider {
    /// Its context window in tokens.
    #[serde(default)]
    pub context_length: Option<u64>,
    /// The most tokens it writes in one completion.
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// Whether it moderates what it is sent (a refusal is then moderation's 403).
    #[serde(default)]
    pub is_moderated: bool,
}

/// Token limits of one request to a [`ModelInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct PerRequestLimits {
    /// The most prompt tokens.
    pub prompt_tokens: f64,
    /// The most completion tokens.
    pub completion_tokens: f64,
}

/// The parameters a [`ModelInfo`] uses when a request leaves them out.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct DefaultParameters {
    /// `temperature`.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// `top_p`.
    #[serde(default)]
    pub top_p: Option<f64>,
    /// `top_k`.
    #[serde(default)]
    pub top_k: Option<i64>,
    /// `frequency_penalty`.
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    /// `presence_penalty`.
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    /// `repetition_penalty`.
    #[serde(default)]
    pub repetition_penalty: Option<f64>,
}

/// The reasoning settings of a [`ModelInfo`] that reasons.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ModelReasoning {
    /// Whether reasoning cannot be turned off.
    #[serde(default)]
    pub mandatory: bool,
    /// Whether reasoning is on when a request does not say.
    #[serde(default)]
    pub default_enabled: Option<bool>,
    /// The effort used when a request turns reasoning on without one (`medium`, …).
    #[serde(default)]
    pub default_effort: Option<String>,
    /// The efforts the model takes, highest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub supported_efforts: Vec<String>,
    /// Whether a reasoning token budget (`reasoning.max_tokens`) is taken.
    #[serde(default)]
    pub supports_max_tokens: Option<bool>,
}

/// The model a [`ModelInfo`]'s id is an alias of.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ModelAlias {
    /// Its slug.
    pub slug: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// Where ModelGates describes a [`ModelInfo`] further.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct ModelLinks {
    /// The path of the model's endpoints list, such as `/api/v1/models/openai/gpt-4/endpoints`.
    #[serde(default)]
    pub details: String,
}
