//! Step 3 of the flow: use the key. A small typed client for
//! `POST {base}/api/v1/chat/completions` in the OpenAI shape.
//!
//! The key travels only in `Authorization: Bearer`. A 401 becomes [`ChatError::KeyRejected`]:
//! the user revoked the key or it expired, and the user must sign in again.

use serde::{Deserialize, Serialize};

use crate::http::{CallError, error_message};
use crate::{ApiKey, ModelGatesClient};

/// The largest completion answer read.
const MAX_CHAT_BODY: usize = 8 * 1024 * 1024;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The person using the app.
    User,
    /// The model.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// What it says.
    pub content: String,
}

impl ChatMessage {
    /// A message from the user.
    #[must_use]
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// A system instruction.
    #[must_use]
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }
}

/// A chat completion request.
///
/// ```
/// use modelgates_oauth_core::{ChatMessage, ChatRequest};
///
/// let request = ChatRequest::new("openai/gpt-5.2", vec![ChatMessage::user("Hello!")]);
/// assert_eq!(
///     serde_json::to_string(&request).unwrap(),
///     r#"{"model":"openai/gpt-5.2","messages":[{"role":"user","content":"Hello!"}]}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The model, such as `openai/gpt-5.2`.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
}

impl ChatRequest {
    /// A request for `model` over `messages`.
    #[must_use]
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
        }
    }
}

/// A chat completion answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The completion's id.
    #[serde(default)]
    pub id: String,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// The answers; usually one.
    pub choices: Vec<ChatChoice>,
    /// Token counts, when sent.
    #[serde(default)]
    pub usage: Option<Usage>,
}

impl ChatResponse {
    /// The first choice's text, if any.
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        self.choices.first().map(|c| c.message.content.as_str())
    }
}

/// One answer of a completion.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ChatChoice {
    /// Its position.
    #[serde(default)]
    pub index: u32,
    /// The model's message.
    pub message: ChatMessage,
    /// Why generation stopped, such as `stop` or `length`.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// Token counts of a completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// Tokens in the request.
    pub prompt_tokens: u64,
    /// Tokens in the answer.
    pub completion_tokens: u64,
    /// Both.
    pub total_tokens: u64,
}

impl ModelGatesClient {
    /// Sends a chat completion request on the user's behalf.
    ///
    /// # Errors
    ///
    /// [`ChatError::KeyRejected`] on 401; other failures as their variants say.
    pub async fn chat(
        &self,
        key: &ApiKey,
        request: &ChatRequest,
    ) -> Result<ChatResponse, ChatError> {
        let answer = self
            .post_json(
                &self.inner.chat_url,
                Some(key.expose_secret()),
                request,
                MAX_CHAT_BODY,
            )
            .await
            .map_err(|e| match e {
                CallError::Timeout => ChatError::Timeout,
                CallError::Transport(e) => ChatError::Transport(e),
                CallError::TooLarge(limit) => {
                    ChatError::MalformedResponse(format!("the answer is larger than {limit} bytes"))
                }
            })?;
        tracing::debug!(
            status = answer.status.as_u16(),
            "ModelGates answered a chat completion"
        );
        if answer.status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ChatError::KeyRejected);
        }
        if !answer.status.is_success() {
            return Err(ChatError::Status {
                status: answer.status.as_u16(),
                message: error_message(answer.status, &answer.body),
            });
        }
        serde_json::from_slice(&answer.body).map_err(|_| {
            ChatError::MalformedResponse("the answer is not an OpenAI-shaped completion".into())
        })
    }
}

/// Why a chat call failed. Each message says what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// 401: the key was revoked or has expired.
    #[error("ModelGates rejected the key (401): it was revoked or has expired; sign in again")]
    KeyRejected,
    /// Any other non-success status, such as 402 for an account out of credit.
    #[error("ModelGates answered {status} ({message})")]
    Status {
        /// The HTTP status.
        status: u16,
        /// ModelGates' `error.message`, or the reason phrase.
        message: String,
    },
    /// No answer within the client's timeout.
    #[error("ModelGates did not answer in time; try again, or raise the client's timeout")]
    Timeout,
    /// The connection failed.
    #[error(
        "the connection to ModelGates failed ({0}); check the base URL and the network, then try again"
    )]
    Transport(#[source] reqwest::Error),
    /// A success status whose body is not a completion.
    #[error("ModelGates sent a malformed answer: {0}; try again later")]
    MalformedResponse(String),
}
