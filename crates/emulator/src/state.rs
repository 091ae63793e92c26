//! What the emulator remembers: pending consents, live codes, issued keys, and the records
//! tests read.
//!
//! Rules: a code is removed from the table the moment it is looked up for redemption (one
//! lock, so eight concurrent redemptions of one code see it once); expired codes and consents
//! are purged on every insert, so memory stays bounded by what is live; test records keep the
//! newest [`MAX_RECORDS`] entries.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::ReplyFn;
use crate::account::KeyAsk;
use crate::faults::Faults;
use crate::random::random_token;

/// How many codes, keys and exchanges the test records keep.
pub(crate) const MAX_RECORDS: usize = 65_536;

/// The PKCE method a code was bound to at `/auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    S256,
    Plain,
}

impl Method {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "S256" => Some(Self::S256),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }
}

/// A challenge and its method, as given at `/auth`.
#[derive(Debug, Clone)]
pub(crate) struct Challenge {
    pub(crate) value: String,
    pub(crate) method: Method,
}

/// An `/auth` request waiting for Approve or Deny.
#[derive(Debug, Clone)]
pub(crate) struct Consent {
    /// `None`: a headless sign-in, whose code is shown on the page.
    pub(crate) callback_url: Option<url::Url>,
    pub(crate) challenge: Option<Challenge>,
    pub(crate) ask: KeyAsk,
    expires_at: Instant,
}

/// What an approval grants: a key for this person, with this limit and label.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) user_id: String,
    pub(crate) ask: KeyAsk,
}

/// A code waiting to be redeemed.
#[derive(Debug)]
pub(crate) struct CodeEntry {
    pub(crate) challenge: Option<Challenge>,
    pub(crate) grant: Grant,
    expires_at: Instant,
}

impl CodeEntry {
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }
}

/// A key the emulator issued, as tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedKeyRecord {
    /// The code it was issued for.
    pub code: String,
    /// The key itself (the emulator's own test data: printing it in a test is fine).
    pub key: String,
    /// The user id sent with it.
    pub user_id: String,
}

/// One request to `/api/v1/auth/keys`, as tests read it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExchangeRecord {
    /// The HTTP method it used.
    pub method: String,
    /// Its body as JSON, or `None` when the body was not JSON.
    pub json: Option<serde_json::Value>,
    /// Its raw body, lossily decoded.
    pub raw: String,
}

/// The attribution headers one request to an `/api/v1` endpoint carried, as tests read them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttributionRecord {
    /// The path, such as `/api/v1/auth/keys`.
    pub path: String,
    /// `HTTP-Referer`, when sent.
    pub referer: Option<String>,
    /// `X-Title`, when sent.
    pub title: Option<String>,
}

#[derive(Default)]
struct Tables {
    consents: HashMap<String, Consent>,
    codes: HashMap<String, CodeEntry>,
    issued_codes: VecDeque<String>,
    issued_keys: VecDeque<IssuedKeyRecord>,
    exchange_count: usize,
    last_exchange: Option<ExchangeRecord>,
    chat_count: usize,
    attributions: VecDeque<AttributionRecord>,
    streams_cancelled: usize,
}

pub(crate) struct Shared {
    pub(crate) auto_approve: bool,
    /// How long every completion waits before answering.
    pub(crate) completion_delay: Duration,
    /// The spend limit of a key whose `/auth` asked for none, in credits.
    pub(crate) key_limit: Option<f64>,
    /// People, credits, keys, limits and usage.
    pub(crate) accounts: crate::account::Accounts,
    /// Accept a `code_verifier` for a code issued without a challenge (RFC 9700 §2.1.1 says
    /// a server must refuse it).
    pub(crate) lenient_pkce: bool,
    code_lifetime: Duration,
    pub(crate) reply: Option<Arc<ReplyFn>>,
    pub(crate) faults: Faults,
    tables: Mutex<Tables>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("auto_approve", &self.auto_approve)
            .field("lenient_pkce", &self.lenient_pkce)
            .field("code_lifetime", &self.code_lifetime)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        auto_approve: bool,
        lenient_pkce: bool,
        code_lifetime: Duration,
        reply: Option<Arc<ReplyFn>>,
    ) -> Self {
        Self {
            auto_approve,
            completion_delay: Duration::ZERO,
            key_limit: Some(crate::DEFAULT_KEY_LIMIT),
            accounts: crate::account::Accounts::new(crate::DEFAULT_CREDITS, None, None),
            lenient_pkce,
            code_lifetime,
            reply,
            faults: Faults::default(),
            tables: Mutex::new(Tables::default()),
        }
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the tables half-updated in a way that
        // matters to an emulator, so keep serving.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers an `/auth` request until Approve or Deny; returns its id.
    pub(crate) fn add_consent(
        &self,
        callback_url: Option<url::Url>,
        challenge: Option<Challenge>,
        ask: KeyAsk,
    ) -> String {
        let id = random_token(24);
        let now = Instant::now();
        let mut tables = self.tables();
        tables.consents.retain(|_, c| c.expires_at > now);
        let expires_at = now + self.code_lifetime.max(Duration::from_secs(600));
        tables.consents.insert(
            id.clone(),
            Consent {
                callback_url,
                challenge,
                ask,
                expires_at,
            },
        );
        id
    }

    /// Takes a pending consent (each may be decided once).
    pub(crate) fn take_consent(&self, id: &str) -> Option<Consent> {
        let now = Instant::now();
        self.tables()
            .consents
            .remove(id)
            .filter(|c| c.expires_at > now)
    }

    /// Issues a code bound to `challenge`, granting `grant`.
    pub(crate) fn issue_code(&self, challenge: Option<Challenge>, grant: Grant) -> String {
        let code = random_token(32);
        let now = Instant::now();
        let mut tables = self.tables();
        tables.codes.retain(|_, entry| !entry.is_expired(now));
        tables.codes.insert(
            code.clone(),
            CodeEntry {
                challenge,
                grant,
                expires_at: now + self.code_lifetime,
            },
        );
        push_bounded(&mut tables.issued_codes, code.clone());
        code
    }

    /// Removes a code for redemption; `None` when unknown, used or expired.
    pub(crate) fn take_code(&self, code: &str) -> Option<CodeEntry> {
        let now = Instant::now();
        self.tables()
            .codes
            .remove(code)
            .filter(|entry| !entry.is_expired(now))
    }

    /// Issues a key for a redeemed code, with the limit and label its approval granted.
    pub(crate) fn issue_key(&self, code: &str, grant: &Grant) -> String {
        let key = format!("{}{}", crate::KEY_PREFIX, random_token(32));
        let limit = grant.ask.limit.or(self.key_limit);
        let label = grant
            .ask
            .label
            .as_deref()
            .unwrap_or("ModelGates emulator key");
        self.accounts.open_key(&key, &grant.user_id, limit, label);
        push_bounded(
            &mut self.tables().issued_keys,
            IssuedKeyRecord {
                code: code.to_owned(),
                key: key.clone(),
                user_id: grant.user_id.clone(),
            },
        );
        key
    }

    pub(crate) fn record_attribution(&self, record: AttributionRecord) {
        push_bounded(&mut self.tables().attributions, record);
    }

    pub(crate) fn attributions(&self) -> Vec<AttributionRecord> {
        self.tables().attributions.iter().cloned().collect()
    }

    pub(crate) fn record_stream_cancelled(&self) {
        self.tables().streams_cancelled += 1;
    }

    pub(crate) fn streams_cancelled(&self) -> usize {
        self.tables().streams_cancelled
    }

    pub(crate) fn record_exchange(&self, record: ExchangeRecord) {
        let mut tables = self.tables();
        tables.exchange_count += 1;
        tables.last_exchange = Some(record);
    }

    pub(crate) fn record_chat(&self) {
        self.tables().chat_count += 1;
    }

    pub(crate) fn issued_codes(&self) -> Vec<String> {
        self.tables().issued_codes.iter().cloned().collect()
    }

    pub(crate) fn issued_keys(&self) -> Vec<IssuedKeyRecord> {
        self.tables().issued_keys.iter().cloned().collect()
    }

    pub(crate) fn exchanges(&self) -> (usize, Option<ExchangeRecord>) {
        let tables = self.tables();
        (tables.exchange_count, tables.last_exchange.clone())
    }

    pub(crate) fn chat_count(&self) -> usize {
        self.tables().chat_count
    }

    pub(crate) fn pending_code_count(&self) -> usize {
        let now = Instant::now();
        let mut tables = self.tables();
        tables.codes.retain(|_, entry| !entry.is_expired(now));
        tables.codes.len()
    }
}

fn push_bounded<T>(records: &mut VecDeque<T>, item: T) {
    if records.len() == MAX_RECORDS {
        records.pop_front();
    }
    records.push_back(item);
}
