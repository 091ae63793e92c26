//! ModelGates' own endpoints beside the OpenAI-compatible ones.
//!
//! * `GET /api/v1/key`: the Bearer key's `label`, `limit` (US dollars, `null` for none),
//!   `usage` (dollars spent so far: every completion charges its tokens at
//!   [`PRICE_PER_TOKEN`](crate::PRICE_PER_TOKEN)), `limit_remaining` and `is_free_tier`,
//!   inside `{"data": …}`; 401 for a key that is unknown or revoked.
//! * `GET /api/v1/models`: the models the emulator answers for ([`MODELS`](crate::MODELS)),
//!   inside `{"data": […]}` with `id`, `name`, `context_length` and `pricing`; no key needed.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::chat::bearer;
use crate::faults::{Endpoint, Outcome};
use crate::pages::api_error;
use crate::state::Shared;

pub(crate) async fn key_info(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Outcome::Answer(response) = shared.faults.apply(Endpoint::KeyInfo).await {
        return response;
    }
    let Some(usage) = bearer(&headers).and_then(|key| shared.key_usage(key)) else {
        return api_error(StatusCode::UNAUTHORIZED, "Invalid or missing API key");
    };
    let remaining = shared.key_limit.map(|limit| (limit - usage.usage).max(0.0));
    Json(json!({"data": {
        "label": "ModelGates emulator key",
        "limit": shared.key_limit,
        "usage": usage.usage,
        "limit_remaining": remaining,
        "is_free_tier": false
    }}))
    .into_response()
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
