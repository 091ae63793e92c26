//! What `GET /api/v1/key` says of the current key, in ModelGates' published schema.

use serde::{Deserialize, Deserializer};

/// The current key's limit and usage, as `GET /api/v1/key` reports them. Amounts are in
/// credits (US dollars); a field ModelGates leaves out is `None` (or empty, or zero), and
/// fields this version does not know are ignored, so a gateway that adds some breaks nothing.
///
/// Every field of the published schema is read except the deprecated ones
/// (`rate_limit`, `is_provisioning_key`), which ModelGates says to ignore.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key's label on ModelGates.
    #[serde(default)]
    pub label: String,
    /// The spend limit, `None` for unlimited. ModelGates enforces it, not the app.
    #[serde(default)]
    pub limit: Option<f64>,
    /// What is left of the limit, `None` for unlimited.
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    /// When the limit starts again (`daily`, `weekly`, `monthly`), `None` for never.
    #[serde(default)]
    pub limit_reset: Option<String>,
    /// What the key has spent in all.
    #[serde(default)]
    pub usage: f64,
    /// What the key has spent today (UTC).
    #[serde(default)]
    pub usage_daily: Option<f64>,
    /// What the key has spent this week (UTC, from Monday).
    #[serde(default)]
    pub usage_weekly: Option<f64>,
    /// What the key has spent this month (UTC).
    #[serde(default)]
    pub usage_monthly: Option<f64>,
    /// What calls through the user's own provider keys (BYOK) have cost in all.
    #[serde(default)]
    pub byok_usage: Option<f64>,
    /// The BYOK spending of today (UTC).
    #[serde(default)]
    pub byok_usage_daily: Option<f64>,
    /// The BYOK spending of this week (UTC, from Monday).
    #[serde(default)]
    pub byok_usage_weekly: Option<f64>,
    /// The BYOK spending of this month (UTC).
    #[serde(default)]
    pub byok_usage_monthly: Option<f64>,
    /// Whether the account is on the free tier.
    #[serde(default)]
    pub is_free_tier: bool,
    /// Whether this is a management key (one that manages other keys, not one for calls).
    #[serde(default)]
    pub is_management_key: bool,
    /// When the key stops working (RFC 3339), `None` for never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Whether calls with the user's own provider keys count against the limit.
    #[serde(default)]
    pub include_byok_in_limit: Option<bool>,
    /// ModelGates' id of the user who created the key: user data, to be kept as such.
    #[serde(default)]
    pub creator_user_id: Option<String>,
    /// The organisation the key belongs to, `None` for a personal key.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// The workspace the key belongs to, when the account has workspaces.
    #[serde(default)]
    pub workspace_id: Option<String>,
    /// The data regions calls with this key may be served from (`global`, `europe`, `us`);
    /// empty when ModelGates does not say.
    #[serde(default, deserialize_with = "null_as_default")]
    pub allowed_data_regions: Vec<String>,
    /// How many free-model calls are left today, when ModelGates says.
    #[serde(default)]
    pub free_model_daily_requests: Option<FreeModelDailyRequests>,
    /// Every budget ModelGates checks for calls with this key, in the order it checks them
    /// (guardrail budgets, workspace budgets, then the key's own limit); empty when nothing is
    /// budgeted. `limit` and `limit_remaining` describe the key's own limit only.
    #[serde(default, deserialize_with = "null_as_default")]
    pub budgets: Vec<KeyBudget>,
    /// The budget that refuses calls first (one already spent, else the one with the least
    /// left), `None` when nothing is budgeted: the figure to show a person as "left to spend".
    #[serde(default)]
    pub effective_budget: Option<KeyBudget>,
}

/// One budget layer that applies to calls with a key, from [`KeyInfo`]. Amounts in US dollars.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct KeyBudget {
    /// Which layer: `key_limit` (the key's own limit), `api_key`, `member`, `workspace`,
    /// `workspace_default_key`, `workspace_default_member`, or one this version does not know.
    #[serde(default)]
    pub scope: String,
    /// The limit in the current window.
    #[serde(default)]
    pub limit_usd: f64,
    /// What this layer counts as spent in the current window.
    #[serde(default)]
    pub spend_usd: f64,
    /// `limit_usd - spend_usd`: at zero or below, this layer refuses calls until it resets.
    #[serde(default)]
    pub remaining_usd: f64,
    /// `daily`, `weekly` or `monthly` (UTC, weeks from Monday), `None` for a lifetime budget.
    #[serde(default)]
    pub reset_interval: Option<String>,
    /// When the window rolls over (RFC 3339), `None` for a lifetime budget.
    #[serde(default)]
    pub resets_at: Option<String>,
    /// Whether spending through the user's own provider keys counts.
    #[serde(default)]
    pub include_byok: bool,
    /// The workspace budget's id, for the `workspace` scope.
    #[serde(default)]
    pub budget_id: Option<String>,
    /// The guardrail carrying this budget, for the guardrail scopes.
    #[serde(default)]
    pub guardrail_id: Option<String>,
}

/// The daily allowance of calls to free models, from [`KeyInfo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct FreeModelDailyRequests {
    /// Calls allowed a day.
    #[serde(default)]
    pub limit: u64,
    /// Calls left today.
    #[serde(default)]
    pub remaining: u64,
    /// Calls made today.
    #[serde(default)]
    pub used: u64,
}

/// `null` read as the type's default: the schema has some lists as "an array or `null`".
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
