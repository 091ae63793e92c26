//! `POST /api/v1/chat/completions`: OpenAI-shaped completions with an issued key.
//!
//! Rules: any method but POST is a 405; the `Authorization: Bearer` key must be one this
//! emulator issued and did not revoke (401 otherwise, in the documented error shape); the body
//! must hold `model` and a non-empty `messages` (400 otherwise). The answer depends only on
//! the input, so tests can assert it; `stream: true` answers server-sent events in OpenAI's
//! chunk format, ending with `data: [DONE]`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::faults::{Endpoint, Outcome};
use crate::pages::api_error;
use crate::state::Shared;

/// A chat request as the emulator read it: what a custom reply function sees.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct ChatInput {
    /// The requested model.
    pub model: String,
    /// The conversation.
    pub messages: Vec<InputMessage>,
    /// Whether server-sent events were asked for.
    #[serde(default)]
    pub stream: bool,
}

/// One message of a [`ChatInput`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct InputMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatInput {
    /// The emulator's default reply: `"[model] You said: <last user message>"`.
    #[must_use]
    pub fn default_reply(&self) -> String {
        let last = self
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map_or("", |m| m.content.as_str());
        format!("[{}] You said: {last}", self.model)
    }
}

pub(crate) async fn completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return api_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    shared.record_chat();
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(key) = key.filter(|k| shared.key_is_valid(k)) else {
        return api_error(StatusCode::UNAUTHORIZED, "Invalid or missing API key");
    };
    tracing::debug!(key = %mask(key), "chat completion");
    if let Outcome::Answer(response) = shared.faults.apply(Endpoint::Chat).await {
        return response;
    }
    let input = match serde_json::from_slice::<ChatInput>(&body) {
        Ok(input) if !input.messages.is_empty() => input,
        _ => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "Invalid request body: expected {model, messages: [{role, content}]}",
            );
        }
    };
    let reply = shared
        .reply
        .as_ref()
        .map_or_else(|| input.default_reply(), |f| f(&input));
    if input.stream {
        stream_answer(&input.model, &reply)
    } else {
        Json(completion(&input, &reply)).into_response()
    }
}

fn completion(input: &ChatInput, reply: &str) -> serde_json::Value {
    let prompt_tokens: usize = input
        .messages
        .iter()
        .map(|m| m.content.split_whitespace().count())
        .sum();
    let completion_tokens = reply.split_whitespace().count();
    serde_json::json!({
        "id": "chatcmpl-emulator",
        "object": "chat.completion",
        "created": 0,
        "model": input.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply},
            "finish_reason": "stop"
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    })
}

fn stream_answer(model: &str, reply: &str) -> Response {
    let chunk = |delta: serde_json::Value, finish: Option<&str>| {
        let event = serde_json::json!({
            "id": "chatcmpl-emulator",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        });
        format!("data: {event}\n\n")
    };
    let mut body = chunk(serde_json::json!({"role": "assistant"}), None);
    for piece in reply.split_inclusive(' ') {
        body.push_str(&chunk(serde_json::json!({"content": piece}), None));
    }
    body.push_str(&chunk(serde_json::json!({}), Some("stop")));
    body.push_str("data: [DONE]\n\n");
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The first 12 characters of a key, for logs.
fn mask(key: &str) -> String {
    format!("{}…", key.chars().take(12).collect::<String>())
}
