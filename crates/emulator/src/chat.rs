//! `POST /api/v1/chat/completions`: OpenAI-shaped completions with an issued key.
//!
//! Rules: any method but POST is a 405; the `Authorization: Bearer` key must be one this
//! emulator issued and did not revoke, and the call must pass the rate limit, the owner's
//! credits and the key's limit (401, 429, 402, 403 otherwise, in the gateway's error shape
//! `{"error": {"code": <status>, "message": …}}`; see the `account` rules); the body must hold
//! `model` and a non-empty `messages` (400 otherwise). The answer depends only on the input, so tests can assert it:
//!
//! * with `tools` and a last message from the user, the model calls the first tool with
//!   `{"text": <that message>}` (`finish_reason: "tool_calls"`);
//! * after a `tool` message, it answers `"[model] The tool said: <its content>"`;
//! * otherwise `"[model] You said: <last user message>"`, or the builder's reply function.
//!
//! Every answer follows ModelGates' published schema (OpenRouter's OpenAPI document, the
//! revision the emulator's README names), which the official SDKs validate: completions carry
//! `id`, `object`, `created`, `model`, `system_fingerprint` (`null`),
//! `choices[].message.{role, content, refusal}` (`tool_calls` only when the model calls one),
//! `finish_reason`, `logprobs` and `usage` (tokens, `cost` in credits, `is_byok`). A field
//! the schema has as optional is left out rather than sent as `null`: chunks carry `usage`
//! only in the last one, and no `system_fingerprint`. A stream that fails midway ends with a
//! chunk whose `error` has the integer `code`, the `message` and `metadata.error_type`.
//!
//! `stream: true` answers server-sent events (the `stream` module): a keep-alive comment first
//! (`: MODELGATES PROCESSING`, as gateways send while a model thinks), a role chunk, one chunk
//! per word, a last chunk with the finish reason and usage, then `data: [DONE]`. A streamed
//! tool call is split the way OpenAI and the gateways send it: a first delta with the call's
//! `index`, `id`, `type` and function `name` (arguments empty), then the arguments in pieces of
//! [`TOOL_ARGUMENT_PIECE`] characters, each delta naming only the `index`; a client must join
//! them by index. Each completion is charged to its key ([`PRICE_PER_TOKEN`]). A stream the
//! client drops before its end is counted ([`Emulator::streams_cancelled`]).
//!
//! [`TOOL_ARGUMENT_PIECE`]: crate::stream::TOOL_ARGUMENT_PIECE
//! [`PRICE_PER_TOKEN`]: crate::PRICE_PER_TOKEN
//! [`Emulator::streams_cancelled`]: crate::Emulator::streams_cancelled

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::answer::Answer;
use crate::faults::{Endpoint, Outcome};
use crate::refusals::api_error;
use crate::state::Shared;
use crate::stream::stream_answer;

/// A chat request as the emulator read it: what a custom reply function sees.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[non_exhaustive]
pub struct ChatInput {
    /// The requested model.
    pub model: String,
    /// The conversation.
    pub messages: Vec<InputMessage>,
    /// Whether server-sent events were asked for.
    #[serde(default)]
    pub stream: bool,
    /// The tools offered to the model, as sent.
    #[serde(default)]
    pub tools: Vec<Value>,
}

/// One message of a [`ChatInput`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[non_exhaustive]
pub struct InputMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text: a string as sent, the text parts of a content array joined, or empty.
    #[serde(default, deserialize_with = "text_of")]
    pub content: String,
}

/// OpenAI content is a string, an array of parts, or null.
fn text_of<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = <Option<Value> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(match value {
        Some(Value::String(text)) => text,
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    })
}

impl ChatInput {
    /// The emulator's default reply: `"[model] You said: <last user message>"`.
    #[must_use]
    pub fn default_reply(&self) -> String {
        format!("[{}] You said: {}", self.model, self.last("user"))
    }

    fn last(&self, role: &str) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == role)
            .map_or("", |m| m.content.as_str())
    }

    /// The tool the model calls, when it calls one: the first tool offered, after a user turn.
    fn tool_to_call(&self) -> Option<&str> {
        let last = self.messages.last()?;
        if last.role != "user" {
            return None;
        }
        self.tools.first()?.pointer("/function/name")?.as_str()
    }
}

pub(crate) async fn completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut response = complete(&shared, method, &headers, body).await;
    let rate_limits = bearer(&headers).and_then(|key| shared.accounts.rate_limit_headers(key));
    for (name, value) in rate_limits.into_iter().flatten() {
        response
            .headers_mut()
            .insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
    response
}

async fn complete(
    shared: &Arc<Shared>,
    method: Method,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return api_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    shared.record_chat();
    let Some(key) = bearer(headers).filter(|k| shared.accounts.live_key(k).is_some()) else {
        return api_error(StatusCode::UNAUTHORIZED, "Invalid or missing API key");
    };
    tracing::debug!(key = %mask(key), "chat completion");
    let pace = match shared.faults.apply(Endpoint::Chat).await {
        Outcome::Answer(response) => return response,
        Outcome::Proceed(pace) => pace,
    };
    if let Some(refusal) = shared.accounts.refusal(key) {
        return refusal;
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
    if !shared.completion_delay.is_zero() {
        tokio::time::sleep(shared.completion_delay).await;
    }
    let answer = if let Some(name) = input.tool_to_call() {
        Answer::ToolCall {
            name: name.to_owned(),
            arguments: json!({"text": input.last("user")}).to_string(),
        }
    } else if input.messages.last().is_some_and(|m| m.role == "tool") {
        Answer::Text(format!(
            "[{}] The tool said: {}",
            input.model,
            input.last("tool")
        ))
    } else {
        Answer::Text(
            shared
                .reply
                .as_ref()
                .map_or_else(|| input.default_reply(), |f| f(&input)),
        )
    };
    let usage = usage(&input, &answer);
    shared
        .accounts
        .charge(key, usage["cost"].as_f64().unwrap_or(0.0));
    if input.stream {
        stream_answer(shared, &input.model, &answer, &usage, pace)
    } else {
        Json(completion(&input.model, &answer, &usage)).into_response()
    }
}

/// The Bearer key of a request.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

fn usage(input: &ChatInput, answer: &Answer) -> Value {
    let prompt_tokens: usize = input
        .messages
        .iter()
        .map(|m| m.content.split_whitespace().count())
        .sum();
    let completion_tokens = answer.tokens();
    let total_tokens = prompt_tokens + completion_tokens;
    #[allow(clippy::cast_precision_loss)] // token counts are small
    let cost = total_tokens as f64 * crate::PRICE_PER_TOKEN;
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total_tokens,
        "cost": cost,
        "is_byok": false
    })
}

fn tool_calls(name: &str, arguments: &str) -> Value {
    json!([{
        "index": 0,
        "id": "call_emulator_0",
        "type": "function",
        "function": {"name": name, "arguments": arguments}
    }])
}

fn completion(model: &str, answer: &Answer, usage: &Value) -> Value {
    let message = match answer {
        Answer::Text(text) => {
            json!({"role": "assistant", "content": text, "refusal": null})
        }
        Answer::ToolCall { name, arguments } => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": tool_calls(name, arguments)
        }),
    };
    json!({
        "id": "chatcmpl-emulator",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": answer.finish_reason(),
            "logprobs": null
        }],
        "usage": usage
    })
}

/// The first 12 characters of a key, for logs.
pub(crate) fn mask(key: &str) -> String {
    format!("{}…", key.chars().take(12).collect::<String>())
}
