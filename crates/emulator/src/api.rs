//! ModelGates' own endpoints beside the OpenAI-compatible ones, in the published schema.
//!
//! * `GET /api/v1/key`: inside `{"data": …}`, every field the schema requires: the Bearer key's
//!   `label`, `limit` (credits, `null` for none), `limit_remaining`, `limit_reset` (`null`:
//!   never), `usage` (credits spent so far: every completion charges its tokens at
//!   [`PRICE_PER_TOKEN`](crate::PRICE_PER_TOKEN)), `usage_daily`, `usage_weekly`,
//!   `usage_monthly` (the emulator's keys are young: all equal `usage`), the `byok_usage*`
//!   amounts (0: the emulator has no provider keys of the user's own), `is_free_tier`,
//!   `is_management_key` and `is_provisioning_key` (false), `include_byok_in_limit`,
//!   `creator_user_id` (the key's owner), `organization_id` and `workspace_id` (`null`),
//!   `allowed_data_regions` (`["global"]`), `free_model_daily_requests`, `budgets` and
//!   `effective_budget` (the key's limit as its one `key_limit` layer), the deprecated
//!   `rate_limit` (the emulator's rate limit, when it has one), and `expires_at` (RFC 3339 or
//!   `null`); 401 for a key that is unknown, revoked or expired.
//! * `GET /api/v1/models`: the models the emulator answers for ([`MODELS`](crate::MODELS)) as
//!   complete model objects (`id`, `canonical_slug`, `name`, `created`, `description`,
//!   `context_length`, `architecture`, `pricing`, `top_provider`, `per_request_limits`,
//!   `supported_parameters`, `default_parameters`, `supported_voices`, `links`), with
//!   `total_count` and `links.next`; `offset` and `limit` page it as the schema says (both
//!   omitted: the whole list); no key needed.
//! * `GET /api/v1/models/user`: the same list, for the Bearer key's user (401 without one).
//! * `GET /keys/<hex SHA-256 of a key>`: a page showing that key's label, limit and usage,
//!   where the person can revoke it (`POST` to the same path).

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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
    let rate_limit = shared.accounts.rate_limit.map_or(
        json!({"requests": -1, "interval": "10s", "note": DEPRECATED_RATE_LIMIT}),
        |limit| {
            json!({
                "requests": limit.calls,
                "interval": format!("{}s", limit.window.as_secs().max(1)),
                "note": DEPRECATED_RATE_LIMIT
            })
        },
    );
    // The key's own limit is its one budget layer: the emulator has no guardrail or
    // workspace budgets.
    let budgets: Vec<Value> = key
        .limit
        .map(|limit| {
            json!({
                "scope": "key_limit",
                "budget_id": null,
                "guardrail_id": null,
                "include_byok": false,
                "limit_usd": limit,
                "spend_usd": key.usage,
                "remaining_usd": limit - key.usage,
                "reset_interval": null,
                "resets_at": null
            })
        })
        .into_iter()
        .collect();
    Json(json!({"data": {
        "label": key.label,
        "limit": key.limit,
        "limit_remaining": remaining,
        "limit_reset": null,
        "usage": key.usage,
        "usage_daily": key.usage,
        "usage_weekly": key.usage,
        "usage_monthly": key.usage,
        "byok_usage": 0.0,
        "byok_usage_daily": 0.0,
        "byok_usage_weekly": 0.0,
        "byok_usage_monthly": 0.0,
        "is_free_tier": false,
        "is_management_key": false,
        "is_provisioning_key": false,
        "include_byok_in_limit": false,
        "creator_user_id": key.user_id,
        "organization_id": null,
        "workspace_id": null,
        "allowed_data_regions": ["global"],
        "free_model_daily_requests": {
            "limit": FREE_MODEL_DAILY_REQUESTS,
            "remaining": FREE_MODEL_DAILY_REQUESTS,
            "used": 0
        },
        "rate_limit": rate_limit,
        "effective_budget": budgets.first(),
        "budgets": budgets,
        "expires_at": key.expires_at.map(rfc3339)
    }}))
    .into_response()
}

/// The note ModelGates puts in the deprecated `rate_limit` of `GET /api/v1/key`.
const DEPRECATED_RATE_LIMIT: &str = "This field is deprecated and safe to ignore.";

/// Free-model requests a day for an account that bought credits, as OpenRouter documents.
const FREE_MODEL_DAILY_REQUESTS: u32 = 1000;

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
pub(crate) async fn user_models(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    if bearer(&headers)
        .and_then(|key| shared.accounts.live_key(key))
        .is_none()
    {
        return api_error(StatusCode::UNAUTHORIZED, "Invalid or missing API key");
    }
    models(State(shared), query).await
}

/// `offset` and `limit`, as `GET /api/v1/models` takes them.
#[derive(Debug, Default)]
struct Page {
    offset: Option<usize>,
    limit: Option<usize>,
}

impl Page {
    /// The page a query asks for; otherwise the reason for a 400.
    fn parse(query: Option<&str>) -> Result<Self, String> {
        let mut page = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match name.as_ref() {
                "offset" => &mut page.offset,
                "limit" => &mut page.limit,
                _ => continue,
            };
            *slot = Some(
                value
                    .parse()
                    .map_err(|_| format!("{name} must be a whole number"))?,
            );
        }
        if page
            .limit
            .is_some_and(|limit| !(1..=MAX_PAGE).contains(&limit))
        {
            return Err("limit must be between 1 and 1000".into());
        }
        Ok(page)
    }
}

/// The most models one page may hold, as the schema says.
const MAX_PAGE: usize = 1000;

pub(crate) async fn models(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Outcome::Answer(response) = shared.faults.apply(Endpoint::Models).await {
        return response;
    }
    let page = match Page::parse(query.as_deref()) {
        Ok(page) => page,
        Err(reason) => return api_error(StatusCode::BAD_REQUEST, &reason),
    };
    let total = crate::MODELS.len();
    let offset = page.offset.unwrap_or(0).min(total);
    let (limit, paged) = match (page.offset, page.limit) {
        (None, None) => (total, false),
        (_, limit) => (limit.unwrap_or(500), true),
    };
    let end = offset.saturating_add(limit).min(total);
    let data: Vec<Value> = crate::MODELS[offset..end]
        .iter()
        .map(|(id, name)| model(id, name))
        .collect();
    let next = (paged && end < total).then(|| format!("/api/v1/models?offset={end}&limit={limit}"));
    Json(json!({ "data": data, "total_count": total, "links": {"next": next} })).into_response()
}

/// A model object as the published schema has it.
fn model(id: &str, name: &str) -> Value {
    let price = format!("{:.6}", crate::PRICE_PER_TOKEN);
    json!({
        "id": id,
        "canonical_slug": id,
        "name": name,
        "created": 1_767_225_600,
        "description": format!("{name}, as the ModelGates emulator answers it: deterministic replies, no provider behind."),
        "context_length": 128_000,
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": null
        },
        "pricing": {"prompt": price, "completion": price, "request": "0", "image": "0"},
        "top_provider": {
            "context_length": 128_000,
            "max_completion_tokens": 16_384,
            "is_moderated": false
        },
        "per_request_limits": null,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice"],
        "default_parameters": null,
        "supported_voices": null,
        "knowledge_cutoff": null,
        "expiration_date": null,
        "links": {"details": format!("/api/v1/models/{id}/endpoints")}
    })
}
