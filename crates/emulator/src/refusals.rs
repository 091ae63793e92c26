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
    let mut response = api_error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}
