//! ModelGates' own endpoints beside the OpenAI-compatible ones.
//!
//! * `GET /api/v1/key`: the Bearer key's `label`, `limit` (credits, `null` for none),
//!   `limit_remaining`, `limit_reset` (`null`: never), `usage` (credits spent so far: every
//!   completion charges its tokens at [`PRICE_PER_TOKEN`](crate::PRICE_PER_TOKEN)),
//!   `usage_daily`, `usage_weekly`, `usage_monthly` (the emulator's keys are young: all equal
//!   `usage`), `is_free_tier`, `expires_at` (RFC 3339 or `null`) and `include_byok_in_limit`,
//!   inside `{"data": …}`; 401 for a key that is unknown, revoked or expired.
//! * `GET /api/v1/models`: the models the emulator answers for ([`MODELS`](crate::MODELS)),
//!   inside `{"data": […]}` with `id`, `name`, `context_length` and `pricing`; no key needed.
//! * `GET /api/v1/models/user`: the same list, for the Bearer key's user (401 without one).
//! * `GET /keys/<hex SHA-256 of a key>`: a page showing that key's label, limit and usage,
//!   where the person can revoke it (`POST` to the same path).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::chat::bearer;
use crate::faults::{Endpoint, Outcome};
use crate::refusals::api_error;
use crate::state::Shared;

pub(crate) async fn key_info(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Outcome::Answer(response) = shared.faults.apply(Endpoint::KeyInfo).await {
        return response;
    }
    let Some(key) = bearer(&headers).and_then(|key| shared.accounts.live_key(key)) else {
        return api_error(StatusCode::UNAUTHORIZED, "Invalid or missing API key");
    };
    let remaining = key.limit.map(|limit| (limit - key.usage).max(0.0));
    Json(json!({"data": {
        "label": key.label,
        "limit": key.limit,
        "limit_remaining": remaining,
        "limit_reset": null,
        "usage": key.usage,
        "usage_daily": key.usage,
        "usage_weekly": key.usage,
        "usage_monthly": key.usage,
        "is_free_tier": false,
        "expires_at": key.expires_at.map(rfc3339),
        "include_byok_in_limit": false
    }}))
    .into_response()
}

/// Seconds since the Unix epoch as RFC 3339.
pub(crate) fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|unix| time::OffsetDateTime::from_unix_timestamp(unix).ok())
        .and_then(|time| {
            time.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `GET /api/v1/models/user`: the models this key's user may use (all of them here).
pub(crate) async fn user_models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if bearer(&headers)
        .and_then(|key| shared.accounts.live_key(key))
        .is_none()
    {
        return api_error(StatusCode::UNAUTHORIZED, "Invalid or missing API key");
    }
    models(State(shared)).await
}

pub(crate) async fn models(State(shared): State<Arc<Shared>>) -> Response {
    if let Outcome::Answer(response) = shared.faults.apply(Endpoint::Models).await {
        return response;
    }
    let price = format!("{:.6}", crate::PRICE_PER_TOKEN);
    let data: Vec<_> = crate::MODELS
        .iter()
        .map(|(id, name)| {
            json!({
                "id": id,
                "name": name,
                "created": 0,
                "context_length": 128_000,
                "pricing": {"prompt": price, "completion": price}
            })
        })
        .collect();
    Json(json!({ "data": data })).into_response()
}
