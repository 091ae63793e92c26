//! The money: people and their credits, keys and their limits and usage, and the rate limit.
//!
//! The rules a call with a key goes through, in order (each refusal in ModelGates' error
//! shape, integer `code`):
//!
//! 1. The key must be one the emulator issued, not revoked and not expired: otherwise 401.
//! 2. With a rate limit ([`EmulatorBuilder::rate_limit`]), at most that many calls per key in
//!    each window: otherwise 429 with `Retry-After` (whole seconds until the window ends).
//!    Every answer to a chat call then carries `X-RateLimit-Limit`, `X-RateLimit-Remaining`
//!    and `X-RateLimit-Reset` (the window's end, in milliseconds since the Unix epoch).
//! 3. The key's owner must have credits left: otherwise 402 `Insufficient credits`.
//! 4. The key's usage must be below its limit (the `limit` asked at `/auth`, possibly changed
//!    on the consent page, else [`EmulatorBuilder::key_limit`]): otherwise 402
//!    `Key limit exceeded`, as OpenRouter answers a spent key limit.
//!
//! A completion then charges its tokens at [`PRICE_PER_TOKEN`] to the key's usage and the
//! owner's credits. A person is remembered by the consent page's cookie, so a second approval
//! in one browser is the same user with the same credits.
//!
//! [`EmulatorBuilder::rate_limit`]: crate::EmulatorBuilder::rate_limit
//! [`EmulatorBuilder::key_limit`]: crate::EmulatorBuilder::key_limit
//! [`PRICE_PER_TOKEN`]: crate::PRICE_PER_TOKEN

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use axum::response::Response;

use crate::random::random_token;
use crate::refusals::{api_error, insufficient_credits, key_limit_spent, rate_limited};

/// What `/auth` asked for besides the callback: the key's spend limit and label.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct KeyAsk {
    /// Credits; `None`: the emulator's default limit.
    pub(crate) limit: Option<f64>,
    pub(crate) label: Option<String>,
}

/// How calls with keys are limited: at most `calls` per key in each `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimit {
    pub(crate) calls: u32,
    pub(crate) window: Duration,
}

/// A key, as `GET /api/v1/key` and tests see it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KeyRecord {
    /// The key's owner.
    pub user_id: String,
    /// The label asked at `/auth` (`key_label`), or the emulator's.
    pub label: String,
    /// The spend limit in credits, `None` for none.
    pub limit: Option<f64>,
    /// What the key has spent, in credits.
    pub usage: f64,
    /// When the key stops working, in seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// Whether the key was revoked.
    pub revoked: bool,
}

struct KeyEntry {
    record: KeyRecord,
    window_start: Instant,
    calls_in_window: u32,
}

#[derive(Default)]
struct Books {
    /// User id → credits left.
    credits: HashMap<String, f64>,
    keys: HashMap<String, KeyEntry>,
    users: u64,
}

/// The emulator's accounts.
pub(crate) struct Accounts {
    books: Mutex<Books>,
    pub(crate) initial_credits: f64,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) key_lifetime: Option<Duration>,
}

impl Accounts {
    pub(crate) fn new(
        initial_credits: f64,
        rate_limit: Option<RateLimit>,
        key_lifetime: Option<Duration>,
    ) -> Self {
        Self {
            books: Mutex::default(),
            initial_credits,
            rate_limit,
            key_lifetime,
        }
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.books
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A user id for a new person, with the initial credits.
    pub(crate) fn new_user(&self) -> String {
        let mut books = self.books();
        books.users += 1;
        let user_id = format!("user_{:06}_{}", books.users, random_token(6));
        books.credits.insert(user_id.clone(), self.initial_credits);
        user_id
    }

    /// Whether `user_id` is a person the emulator knows.
    pub(crate) fn knows(&self, user_id: &str) -> bool {
        self.books().credits.contains_key(user_id)
    }

    pub(crate) fn set_credits(&self, user_id: &str, credits: f64) {
        self.books().credits.insert(user_id.to_owned(), credits);
    }

    pub(crate) fn credits(&self, user_id: &str) -> Option<f64> {
        self.books().credits.get(user_id).copied()
    }

    /// Records a key issued to `user_id` with its limit and label.
    pub(crate) fn open_key(&self, key: &str, user_id: &str, limit: Option<f64>, label: &str) {
        let expires_at = self
            .key_lifetime
            .map(|lifetime| unix_now() + lifetime.as_secs());
        self.books().keys.insert(
            key.to_owned(),
            KeyEntry {
                record: KeyRecord {
                    user_id: user_id.to_owned(),
                    label: label.to_owned(),
                    limit,
                    usage: 0.0,
                    expires_at,
                    revoked: false,
                },
                window_start: Instant::now(),
                calls_in_window: 0,
            },
        );
    }

    /// A key that may be used: issued, not revoked, not expired.
    pub(crate) fn live_key(&self, key: &str) -> Option<KeyRecord> {
        let books = self.books();
        let record = &books.keys.get(key)?.record;
        let expired = record.expires_at.is_some_and(|at| unix_now() >= at);
        (!record.revoked && !expired).then(|| record.clone())
    }

    pub(crate) fn key(&self, key: &str) -> Option<KeyRecord> {
        self.books().keys.get(key).map(|entry| entry.record.clone())
    }

    /// The refusal of a call with `key` by the module's rules; `None`: it may go ahead.
    pub(crate) fn refusal(&self, key: &str) -> Option<Response> {
        let mut books = self.books();
        let Some(entry) = books.keys.get_mut(key) else {
            return Some(api_error(
                StatusCode::UNAUTHORIZED,
                "Invalid or missing API key",
            ));
        };
        if let Some(limit) = self.rate_limit {
            let now = Instant::now();
            if now.duration_since(entry.window_start) >= limit.window {
                entry.window_start = now;
                entry.calls_in_window = 0;
            }
            if entry.calls_in_window >= limit.calls {
                let left = limit
                    .window
                    .saturating_sub(now.duration_since(entry.window_start));
                return Some(rate_limited(left));
            }
            entry.calls_in_window += 1;
        }
        let record = entry.record.clone();
        if books.credits.get(&record.user_id).copied().unwrap_or(0.0) <= 0.0 {
            return Some(insufficient_credits());
        }
        record
            .limit
            .is_some_and(|limit| record.usage >= limit)
            .then(key_limit_spent)
    }

    /// The `X-RateLimit-*` headers of an answer to a call with `key`, under a rate limit.
    pub(crate) fn rate_limit_headers(&self, key: &str) -> Option<[(&'static str, u64); 3]> {
        let limit = self.rate_limit?;
        let books = self.books();
        let entry = books.keys.get(key)?;
        let now = Instant::now();
        let window_left = limit
            .window
            .saturating_sub(now.duration_since(entry.window_start));
        let reset = SystemTime::now()
            .checked_add(window_left)
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            });
        Some([
            ("x-ratelimit-limit", u64::from(limit.calls)),
            (
                "x-ratelimit-remaining",
                u64::from(limit.calls.saturating_sub(entry.calls_in_window)),
            ),
            ("x-ratelimit-reset", reset),
        ])
    }

    /// Charges `credits` to a key's usage and its owner's credits.
    pub(crate) fn charge(&self, key: &str, credits: f64) {
        let mut books = self.books();
        let Some(entry) = books.keys.get_mut(key) else {
            return;
        };
        entry.record.usage += credits;
        let owner = entry.record.user_id.clone();
        if let Some(left) = books.credits.get_mut(&owner) {
            *left -= credits;
        }
    }

    /// The key whose lowercase hex SHA-256 is `hash`, and its record.
    pub(crate) fn key_by_hash(&self, hash: &str) -> Option<(String, KeyRecord)> {
        use sha2::{Digest as _, Sha256};
        let books = self.books();
        books.keys.iter().find_map(|(key, entry)| {
            let digest = Sha256::digest(key.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            (hex == hash).then(|| (key.clone(), entry.record.clone()))
        })
    }

    /// Adds `credits` to a key's usage without a call (tests reach a limit this way).
    pub(crate) fn add_usage(&self, key: &str, credits: f64) {
        if let Some(entry) = self.books().keys.get_mut(key) {
            entry.record.usage += credits;
        }
    }

    pub(crate) fn revoke(&self, key: &str) {
        if let Some(entry) = self.books().keys.get_mut(key) {
            entry.record.revoked = true;
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
