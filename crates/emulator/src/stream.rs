//! A completion streamed as server-sent events, as the chat module's documentation describes:
//! the keep-alive comment, the role chunk, the answer's chunks (a tool call split into pieces),
//! the last chunk with the usage, `[DONE]`; paced, stalled or failing midway as a fault asks.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::answer::Answer;
use crate::faults::StreamPace;
use crate::state::Shared;

/// The longest piece of a streamed tool call's arguments, in characters.
pub(crate) const TOOL_ARGUMENT_PIECE: usize = 8;

/// The deltas of a streamed tool call: its header (name, empty arguments), then its arguments
/// in pieces, each naming only the call's index.
fn tool_call_deltas(name: &str, arguments: &str) -> Vec<Value> {
    let header = json!({"tool_calls": [{
        "index": 0,
        "id": "call_emulator_0",
        "type": "function",
        "function": {"name": name, "arguments": ""}
    }]});
    let chars: Vec<char> = arguments.chars().collect();
    let pieces = chars.chunks(TOOL_ARGUMENT_PIECE).map(|piece| {
        let piece: String = piece.iter().collect();
        json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    });
    std::iter::once(header).chain(pieces).collect()
}

/// One chunk of a stream. `usage` is left out, not `null`, when there is none: the published
/// schema has it as an object or absent, and strict clients refuse `null`.
fn chunk(model: &str, delta: &Value, finish: Option<&str>, usage: Option<&Value>) -> Bytes {
    let mut event = json!({
        "id": "chatcmpl-emulator",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]
    });
    if let Some(usage) = usage {
        event["usage"] = usage.clone();
    }
    Bytes::from(format!("data: {event}\n\n"))
}

/// The chunks of a streamed answer, after the keep-alive and before `[DONE]`.
fn chunks(model: &str, answer: &Answer, usage: &Value) -> Vec<Bytes> {
    let mut chunks = vec![chunk(model, &json!({"role": "assistant"}), None, None)];
    match answer {
        Answer::Text(text) => chunks.extend(
            text.split_inclusive(' ')
                .map(|piece| chunk(model, &json!({"content": piece}), None, None)),
        ),
        Answer::ToolCall { name, arguments } => chunks.extend(
            tool_call_deltas(name, arguments)
                .iter()
                .map(|delta| chunk(model, delta, None, None)),
        ),
    }
    chunks.push(chunk(
        model,
        &json!({}),
        Some(answer.finish_reason()),
        Some(usage),
    ));
    chunks
}

/// The chunk a gateway sends when a streamed call fails midway: its error (with the
/// published schema's `metadata.error_type`), and `finish_reason: "error"`.
fn error_chunk(code: u16) -> Bytes {
    let (message, error_type) = match code {
        402 => (
            "Insufficient credits. Add more credits to your ModelGates account to continue.",
            "payment_required",
        ),
        403 => ("Key limit exceeded", "permission_denied"),
        429 => ("Rate limit exceeded", "rate_limit_exceeded"),
        _ => (
            "The provider failed while answering",
            "provider_unavailable",
        ),
    };
    failing_chunk(&json!({
        "code": code,
        "message": message,
        "metadata": {"error_type": error_type}
    }))
}

/// Moderation's mid-stream refusal: code 403 with what it flagged.
fn flagged_chunk() -> Bytes {
    failing_chunk(&json!({
        "code": 403,
        "message": "The output was flagged by moderation.",
        "metadata": {
            "error_type": "content_policy_violation",
            "reasons": ["harassment"],
            "provider_name": "emulator"
        }
    }))
}

/// The chunk that ends a stream with `error` and `finish_reason: "error"`.
fn failing_chunk(error: &Value) -> Bytes {
    let event = json!({
        "id": "chatcmpl-emulator",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "emulator",
        "error": error,
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
    });
    Bytes::from(format!("data: {event}\n\n"))
}

/// Counts the stream as cancelled if it is dropped before its last chunk was sent.
struct CancelWatch {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.record_stream_cancelled();
        }
    }
}

pub(crate) fn stream_answer(
    shared: &Arc<Shared>,
    model: &str,
    answer: &Answer,
    usage: &Value,
    pace: StreamPace,
) -> Response {
    let chunks = chunks(model, answer, usage);
    let watch = CancelWatch {
        shared: shared.clone(),
        finished: false,
    };
    let body = futures_util::stream::unfold(
        (chunks.into_iter().enumerate(), watch, false),
        move |(mut chunks, mut watch, done)| async move {
            if done {
                return None;
            }
            let Some((index, chunk)) = chunks.next() else {
                watch.finished = true;
                let end = Bytes::from_static(b"data: [DONE]\n\n");
                return Some((Ok::<_, Infallible>(end), (chunks, watch, true)));
            };
            match pace {
                StreamPace::Normal => {}
                StreamPace::Slow(pause) => tokio::time::sleep(pause).await,
                // The role chunk and the first text chunk go out; then nothing, ever.
                StreamPace::Stall if index >= 2 => {
                    std::future::pending::<()>().await;
                }
                StreamPace::Stall => {}
                // The role chunk and the first text chunk go out; then the error, then the end.
                StreamPace::FailMidway(_) | StreamPace::FlaggedMidway if index >= 2 => {
                    watch.finished = true;
                    let failed = match pace {
                        StreamPace::FailMidway(code) => error_chunk(code),
                        _ => flagged_chunk(),
                    };
                    return Some((
                        Ok(failed),
                        (Vec::new().into_iter().enumerate(), watch, false),
                    ));
                }
                StreamPace::FailMidway(_) | StreamPace::FlaggedMidway => {}
            }
            Some((Ok(chunk), (chunks, watch, false)))
        },
    );
    let keep_alive = futures_util::stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b": MODELGATES PROCESSING\n\n"))
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(futures_util::StreamExt::chain(keep_alive, body)),
    )
        .into_response()
}
