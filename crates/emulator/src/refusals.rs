//! ModelGates' error answers: its documented body, and the refusals of the money rules.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// ModelGates' documented error body: `{"error": {"code": N, "message": "..."}}`.
pub(crate) fn api_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": status.as_u16(), "message": message}});
    (status, Json(body)).into_response()
}

/// The error body with `metadata`: `{"error": {"code": N, "message": "...", "metadata": {...}}}`.
fn api_error_with_metadata(
    status: StatusCode,
    message: &str,
    metadata: serde_json::Value,
) -> Response {
    let body = serde_json::json!({
        "error": {"code": status.as_u16(), "message": message, "metadata": metadata}
    });
    (status, Json(body)).into_response()
}

/// 402 naming the key's limit, as OpenRouter answers a call with a key past its limit.
pub(crate) fn key_limit_spent() -> Response {
    api_error(
        StatusCode::PAYMENT_REQUIRED,
        "Key limit exceeded (total limit). Raise this key's limit to continue.",
    )
}

/// 403 from a guardrail of the account (not about money).
pub(crate) fn guardrail_blocked() -> Response {
    api_error(
        StatusCode::FORBIDDEN,
        "Request blocked by your organization's guardrail: this model is not allowed.",
    )
}

/// 403 from moderation, with what it flagged in `metadata.reasons`.
pub(crate) fn moderation_flagged(reasons: &[String]) -> Response {
    api_error_with_metadata(
        StatusCode::FORBIDDEN,
        "Your input was flagged by moderation.",
        serde_json::json!({
            "reasons": reasons,
            "flagged_input": "…",
            "provider_name": "emulator",
            "model_slug": "emulator/moderated",
        }),
    )
}

/// 402, as ModelGates answers a call from an account without credits.
pub(crate) fn insufficient_credits() -> Response {
    api_error(
        StatusCode::PAYMENT_REQUIRED,
        "Insufficient credits. Add more credits to your ModelGates account to continue.",
    )
}

/// 403, as ModelGates answers a call with a key past its limit.
pub(crate) fn key_limit_exceeded() -> Response {
    api_error(StatusCode::FORBIDDEN, "Key limit exceeded")
}

/// 429 with `Retry-After` in whole seconds (at least 1).
pub(crate) fn rate_limited(wait: Duration) -> Response {
    with_retry_after(
        api_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded"),
        wait,
    )
}

/// 503 with `Retry-After` in whole seconds (at least 1).
pub(crate) fn unavailable(wait: Duration) -> Response {
    with_retry_after(
        api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable: no provider can serve this model right now.",
        ),
        wait,
    )
}

fn with_retry_after(mut response: Response, wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}
