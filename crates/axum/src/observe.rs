//! What the crate tells an operator: metrics through the [`metrics`] facade and spans through
//! [`tracing`].
//!
//! # Metrics
//!
//! The crate records; the app installs the exporter it likes (Prometheus, StatsD, OTLP …).
//! Without one, every record is a no-op: no allocation, no lock. Call [`describe`] once after
//! installing it so the exporter has each series' help text and unit.
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `modelgates_sign_ins_total` | counter | `outcome` | every callback, by how it ended |
//! | `modelgates_key_exchange_duration_seconds` | histogram | `outcome` | the key exchange call to ModelGates |
//! | `modelgates_api_errors_total` | counter | `code` | failed calls with users' keys, by [`ApiError`](crate::api_error::ApiError) code |
//! | `modelgates_sign_outs_total` | counter | `reason` | sessions ended |
//! | `modelgates_open_streams` | gauge | | relayed streams open now |
//! | `modelgates_stream_first_token_seconds` | histogram | | from the stream's request to its first relayed delta |
//! | `modelgates_key_cache_requests_total` | counter | `result` | loads through a [`CachingStore`](crate::store::CachingStore) |
//! | `modelgates_revocations_heard_total` | counter | | revocations heard on the cross-instance feed |
//! | `modelgates_revocation_feed_losses_total` | counter | | subscriptions to the feed lost (cached keys then live at most the fallback TTL) |
//! | `modelgates_untrusted_forwarding_headers_total` | counter | | sign-in requests whose `Forwarded` / `X-Forwarded-*` headers were ignored because no proxy is trusted ([`TrustedProxies`](crate::config::TrustedProxies)) |
//!
//! Every label value comes from a fixed set, never from a request, a user or a message, so the
//! number of series is bounded:
//!
//! * `outcome` of a sign-in: `success`; `denied` (the user pressed Deny); `authorization_failed`
//!   (ModelGates sent another `error`); `flow_missing`, `flow_invalid`, `flow_expired`,
//!   `flow_mismatch`, `flow_used` (the flow cookie absent, forged, old, for another sign-in,
//!   or replayed); `code_missing`, `code_malformed` (the callback's query); `code_rejected`
//!   (ModelGates refused the code); `upstream_error`, `timeout` (ModelGates failed or was
//!   slow); `busy`, `rate_limited` (the layer's own bounds); `store_unavailable` (the key
//!   store failed); `hook_refused`, `hook_failed` (the app's on-sign-in hook refused, or
//!   returned a value that cannot be kept); `method_not_allowed`.
//! * `outcome` of an exchange: `success`, `code_rejected`, `upstream_error`, `timeout`.
//! * `code` of an API error: `key_rejected`, `insufficient_credits`, `key_limit_reached`,
//!   `rate_limited`, `upstream_timeout`, `upstream_error`, `invalid_request`,
//!   `too_many_streams`, `server_restarting`, and for a stream that fails after it started,
//!   `idle_timeout`. Counted where the error is made from ModelGates' answer (the `From`
//!   conversions, `stream_slot`, the relay), so an app that answers the error its own way is
//!   still counted.
//! * `reason` of a sign-out: `logout`, `key_rejected` (ModelGates refused the key), `app` (a
//!   handler returned [`SignOut`](crate::extract::SignOut)), `expired` (the key cookie came
//!   back after the key's lifetime), `session_ended` (the store no longer knows the session:
//!   revoked elsewhere, or purged after it expired).
//! * `result` of a cache request: `hit`, `miss`.
//!
//! # Spans
//!
//! Each sign-in step is a span, named `modelgates.login`, `modelgates.callback`,
//! `modelgates.logout`, with the request's `http.request.method`, `http.route`, `url.path`
//! (not for the callback: its path holds the flow id), and once answered
//! `http.response.status_code`, `outcome` and, on failure, `error.type` (the error's code).
//! The callback's exchange is a `modelgates.exchange` span inside it (`server.address`,
//! `outcome`, `error.type`), and each request oauth-core sends to ModelGates a client span
//! (`otel.kind = "client"`, `http.request.method`, `server.address`, `server.port`,
//! `url.path`, `http.response.status_code`, `error.type`; exported through
//! `tracing-opentelemetry`, it is named by its `otel.name`, the method). A stream relayed by
//! [`ModelGatesKey::stream_chat`](crate::ModelGatesKey::stream_chat) is a `modelgates.stream`
//! span (`gen_ai.operation.name`, `gen_ai.request.model`, `gen_ai.response.finish_reasons`,
//! `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, `outcome`, `error.type`) that
//! lives until the last event is sent.
//!
//! Field names follow OpenTelemetry's semantic conventions where one exists. Spans are made
//! inside the request's future, so they nest under the app's own request span (tower-http's
//! `TraceLayer`, say): give it [`ModelGatesAuth::request_span`](crate::ModelGatesAuth::request_span),
//! since its default span records the whole URI, a callback's one-time code included. No span
//! or field ever holds a key, a code, a verifier, a flow id, a cookie, a secret or a message
//! body; ModelGates' user id, which is user data, appears only as `user_hash`: the first 16 hex
//! digits of its SHA-256, enough to follow one user through the logs, not to read the id. The
//! spans of calls the app makes itself through `ModelGatesKey::openai` are the app's to make.

use std::time::Duration;

/// `modelgates_sign_ins_total{outcome}`: every callback, by how it ended.
pub const SIGN_INS_TOTAL: &str = "modelgates_sign_ins_total";
/// `modelgates_key_exchange_duration_seconds{outcome}`: the key exchange call to ModelGates.
pub const KEY_EXCHANGE_DURATION_SECONDS: &str = "modelgates_key_exchange_duration_seconds";
/// `modelgates_api_errors_total{code}`: failed calls with users' keys.
pub const API_ERRORS_TOTAL: &str = "modelgates_api_errors_total";
/// `modelgates_sign_outs_total{reason}`: sessions ended.
pub const SIGN_OUTS_TOTAL: &str = "modelgates_sign_outs_total";
/// `modelgates_open_streams`: relayed streams open now.
pub const OPEN_STREAMS: &str = "modelgates_open_streams";
/// `modelgates_stream_first_token_seconds`: from a stream's request to its first relayed delta.
pub const STREAM_FIRST_TOKEN_SECONDS: &str = "modelgates_stream_first_token_seconds";
/// `modelgates_key_cache_requests_total{result}`: loads through a caching store.
pub const KEY_CACHE_REQUESTS_TOTAL: &str = "modelgates_key_cache_requests_total";
/// `modelgates_revocations_heard_total`: revocations heard on the cross-instance feed.
pub const REVOCATIONS_HEARD_TOTAL: &str = "modelgates_revocations_heard_total";
/// `modelgates_revocation_feed_losses_total`: subscriptions to the revocation feed lost.
pub const REVOCATION_FEED_LOSSES_TOTAL: &str = "modelgates_revocation_feed_losses_total";
/// `modelgates_untrusted_forwarding_headers_total`: sign-in requests whose forwarding headers
/// were ignored because no proxy is trusted.
pub const UNTRUSTED_FORWARDING_HEADERS_TOTAL: &str =
    "modelgates_untrusted_forwarding_headers_total";

/// Gives the installed recorder each series' help text and unit (Prometheus' `# HELP` and
/// `# TYPE` lines). Call it once, after installing the recorder; without one it does nothing.
///
/// ```
/// let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
/// let handle = recorder.handle();
/// metrics::set_global_recorder(recorder).expect("the first recorder");
/// modelgates_axum::observe::describe();
/// // Once the layer has recorded a sign-in, the exporter renders the series with its help:
/// # metrics::counter!(modelgates_axum::observe::SIGN_INS_TOTAL, "outcome" => "success").increment(1);
/// assert!(handle.render().contains("# HELP modelgates_sign_ins_total Sign-in callbacks"));
/// ```
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        SIGN_INS_TOTAL,
        Unit::Count,
        "Sign-in callbacks, by how they ended (outcome)."
    );
    describe_histogram!(
        KEY_EXCHANGE_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of the key exchange call to ModelGates, by outcome."
    );
    describe_counter!(
        API_ERRORS_TOTAL,
        Unit::Count,
        "Failed calls to ModelGates with users' keys, by error code."
    );
    describe_counter!(SIGN_OUTS_TOTAL, Unit::Count, "Sessions ended, by reason.");
    describe_gauge!(OPEN_STREAMS, Unit::Count, "Relayed streams open now.");
    describe_histogram!(
        STREAM_FIRST_TOKEN_SECONDS,
        Unit::Seconds,
        "Time from a stream's request to its first relayed delta."
    );
    describe_counter!(
        KEY_CACHE_REQUESTS_TOTAL,
        Unit::Count,
        "Key loads through the caching store, by result (hit, miss)."
    );
    describe_counter!(
        REVOCATIONS_HEARD_TOTAL,
        Unit::Count,
        "Revocations heard on the cross-instance feed."
    );
    describe_counter!(
        REVOCATION_FEED_LOSSES_TOTAL,
        Unit::Count,
        "Subscriptions to the revocation feed lost."
    );
    describe_counter!(
        UNTRUSTED_FORWARDING_HEADERS_TOTAL,
        Unit::Count,
        "Sign-in requests whose forwarding headers were ignored: no proxy is trusted."
    );
}

// The recording functions take labels from the fixed sets the module docs list (the enums
// below, `ApiError::code`): no label value is ever made from a request.

/// How a sign-in step (`/login`, the callback, `/logout`), a key exchange or a relayed stream
/// ended: the `outcome` label of the sign-in metrics and the `outcome` field of every span of
/// the crate. The sign-in and exchange metrics use the subsets the module docs list; the rest
/// name how `/login`, `/logout` and streams end, on their spans only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    /// `/login` sent the browser to ModelGates.
    Started,
    /// `/login` sent the browser to the public URL's host first.
    OtherHost,
    /// A callback whose flow another tab's sign-in already ended, from a signed-in browser:
    /// sent on, nothing exchanged.
    AlreadySignedIn,
    /// `/logout` ended a session.
    SignedOut,
    /// `/logout` found no session to end.
    NotSignedIn,
    Denied,
    AuthorizationFailed,
    FlowMissing,
    FlowInvalid,
    FlowExpired,
    FlowMismatch,
    FlowUsed,
    CodeMissing,
    CodeMalformed,
    CodeRejected,
    UpstreamError,
    Timeout,
    Busy,
    RateLimited,
    StoreUnavailable,
    HookRefused,
    HookFailed,
    MethodNotAllowed,
    CrossSite,
    InvalidLimit,
    SignOutFailed,
    LayerMisplaced,
    /// Linked accounts: no app user to connect, disconnect or come back to.
    NoAppUser,
    /// Linked accounts: the callback came back with another app user than the one who
    /// started the connection.
    AppUserChanged,
    /// A relayed stream ended with its last event sent.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    Completed,
    /// A relayed stream failed after it started (an `error` event ended it).
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    Failed,
    /// A stream was refused before it started.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    Refused,
    /// The client went away before a relayed stream ended.
    #[cfg_attr(not(feature = "openai"), allow(dead_code))]
    ClientGone,
}

impl Outcome {
    /// The label.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Started => "started",
            Self::OtherHost => "other_host",
            Self::AlreadySignedIn => "already_signed_in",
            Self::SignedOut => "signed_out",
            Self::NotSignedIn => "not_signed_in",
            Self::Denied => "denied",
            Self::AuthorizationFailed => "authorization_failed",
            Self::FlowMissing => "flow_missing",
            Self::FlowInvalid => "flow_invalid",
            Self::FlowExpired => "flow_expired",
            Self::FlowMismatch => "flow_mismatch",
            Self::FlowUsed => "flow_used",
            Self::CodeMissing => "code_missing",
            Self::CodeMalformed => "code_malformed",
            Self::CodeRejected => "code_rejected",
            Self::UpstreamError => "upstream_error",
            Self::Timeout => "timeout",
            Self::Busy => "busy",
            Self::RateLimited => "rate_limited",
            Self::StoreUnavailable => "store_unavailable",
            Self::HookRefused => "hook_refused",
            Self::HookFailed => "hook_failed",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::CrossSite => "cross_site",
            Self::InvalidLimit => "invalid_limit",
            Self::SignOutFailed => "sign_out_failed",
            Self::LayerMisplaced => "layer_misplaced",
            Self::NoAppUser => "no_app_user",
            Self::AppUserChanged => "app_user_changed",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Refused => "refused",
            Self::ClientGone => "client_gone",
        }
    }
}

/// Why a session ended: the `reason` label of `modelgates_sign_outs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The layer signed the user out, for a reason the on-sign-out hook hears too.
    SignedOut(crate::hooks::SignOutReason),
    /// The key cookie came back after the key's lifetime.
    Expired,
    /// The store no longer knows the session: revoked elsewhere, or purged once expired.
    Forgotten,
}

impl SessionEnd {
    /// The label.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::SignedOut(reason) => reason.as_str(),
            Self::Expired => "expired",
            Self::Forgotten => "session_ended",
        }
    }
}

/// ModelGates' user id as logs and spans carry it: the first 16 hex digits of its SHA-256.
pub(crate) fn user_hash(user_id: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let mut hash = crate::hex::hex(&Sha256::digest(user_id.as_bytes()));
    hash.truncate(16);
    hash
}

/// A callback ended with `outcome`.
pub(crate) fn sign_in(outcome: Outcome) {
    metrics::counter!(SIGN_INS_TOTAL, "outcome" => outcome.as_str()).increment(1);
}

/// The key exchange ended with `outcome` after `took`.
pub(crate) fn key_exchange(outcome: Outcome, took: Duration) {
    metrics::histogram!(KEY_EXCHANGE_DURATION_SECONDS, "outcome" => outcome.as_str()).record(took);
}

/// A call with a user's key failed with the `ApiError` code `code`.
pub(crate) fn api_error(code: &'static str) {
    metrics::counter!(API_ERRORS_TOTAL, "code" => code).increment(1);
}

/// A sign-in request carried forwarding headers that no trusted proxy vouches for.
pub(crate) fn untrusted_forwarding_headers() {
    metrics::counter!(UNTRUSTED_FORWARDING_HEADERS_TOTAL).increment(1);
}

/// A session ended, for `reason`.
pub(crate) fn sign_out(reason: SessionEnd) {
    metrics::counter!(SIGN_OUTS_TOTAL, "reason" => reason.as_str()).increment(1);
}

/// A relayed stream opened (`+1`) or closed (`-1`).
pub(crate) fn stream_opened(opened: bool) {
    let gauge = metrics::gauge!(OPEN_STREAMS);
    if opened {
        gauge.increment(1.0);
    } else {
        gauge.decrement(1.0);
    }
}

/// A stream's first delta was relayed `took` after its request.
#[cfg(feature = "openai")]
pub(crate) fn first_token(took: Duration) {
    metrics::histogram!(STREAM_FIRST_TOKEN_SECONDS).record(took);
}

/// A load through the caching store hit or missed. On every signed-in request, so each arm
/// names its label literally: the key is a `static`, nothing is allocated.
pub(crate) fn key_cache(hit: bool) {
    if hit {
        metrics::counter!(KEY_CACHE_REQUESTS_TOTAL, "result" => "hit").increment(1);
    } else {
        metrics::counter!(KEY_CACHE_REQUESTS_TOTAL, "result" => "miss").increment(1);
    }
}

/// A revocation was heard on the feed.
pub(crate) fn revocation_heard() {
    metrics::counter!(REVOCATIONS_HEARD_TOTAL).increment(1);
}

/// The subscription to the revocation feed was lost.
pub(crate) fn revocation_feed_lost() {
    metrics::counter!(REVOCATION_FEED_LOSSES_TOTAL).increment(1);
}
