//! What an operator sees (the `observe` module): real sign-ins, money errors, streams, sign-outs
//! and the key cache read back from a debugging recorder, and every span and field of a full
//! flow read back from a capturing subscriber, checked for secrets.
//!
//! Each test runs on a current-thread runtime with the recorder (and subscriber) set as this
//! thread's default, so the app, the emulator and every task they spawn record into this
//! test's own recorder: tests run in parallel without seeing each other's numbers.

#![cfg(feature = "openai")]

#[path = "it/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use modelgates_axum::config::{ExchangeLimits, RateLimit};
use modelgates_axum::hooks::{SignIn, SignInRejected};
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use modelgates_axum::observe;
use modelgates_axum::store::{
    CachingStore, FlowSpend, KeyStore, MemoryStore, RevocationFeed, SessionToken, StoreError,
    StoredKey, TokenProtection,
};
use modelgates_axum::{ApiError, SignOut};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::{Emulator, Endpoint, Fault};
use support::{Browser, config, emulator};
use tokio::sync::broadcast;
use tower::ServiceExt as _;

/// The message the tests send: distinctive, so that finding it in a span is a finding.
const MESSAGE: &str = "observability-message-body-4417";

fn ask() -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([ChatCompletionRequestUserMessage::from(MESSAGE).into()])
        .build()
        .unwrap()
}

async fn chat(key: ModelGatesKey) -> Result<String, ApiError> {
    let reply = key.openai().chat().create(ask()).await?;
    Ok(reply.choices[0].message.content.clone().unwrap_or_default())
}

async fn stream(key: ModelGatesKey) -> Result<impl IntoResponse, ApiError> {
    key.stream_chat(ask()).await
}

async fn me(key: Option<ModelGatesKey>) -> &'static str {
    if key.is_some() {
        "signed in"
    } else {
        "signed out"
    }
}

async fn leave() -> SignOut {
    SignOut
}

fn app<K: KeyStore>(layer: ModelGatesAuth<K>) -> Router {
    let request_span = layer.request_span();
    Router::new()
        .route("/chat", post(chat))
        .route("/stream", post(stream))
        .route("/me", get(me))
        .route("/leave", post(leave))
        .layer(layer)
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
}

/// A series: its name and its labels.
type Series = (String, Vec<(String, String)>);

/// This test's recorder, and what it has recorded so far: the debugging recorder's snapshots
/// drain its values, so they are summed here.
struct Recorded {
    snapshotter: Snapshotter,
    counters: BTreeMap<Series, u64>,
    gauges: BTreeMap<String, f64>,
    histograms: BTreeMap<Series, Vec<f64>>,
}

impl Recorded {
    fn new(recorder: &DebuggingRecorder) -> Self {
        Self {
            snapshotter: recorder.snapshotter(),
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            histograms: BTreeMap::new(),
        }
    }

    fn update(&mut self) {
        for (key, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let name = key.name().to_owned();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect::<Vec<_>>();
            match value {
                DebugValue::Counter(n) => *self.counters.entry((name, labels)).or_default() += n,
                DebugValue::Gauge(v) => *self.gauges.entry(name).or_default() += v.into_inner(),
                DebugValue::Histogram(values) => self
                    .histograms
                    .entry((name, labels))
                    .or_default()
                    .extend(values.into_iter().map(|v| v.into_inner())),
            }
        }
    }

    /// The counter `name{label=value}` (no label: `("", "")`).
    fn counter(&mut self, name: &str, label: (&str, &str)) -> u64 {
        self.update();
        let labels = if label.0.is_empty() {
            vec![]
        } else {
            vec![(label.0.to_owned(), label.1.to_owned())]
        };
        self.counters
            .get(&(name.to_owned(), labels))
            .copied()
            .unwrap_or(0)
    }

    fn gauge(&mut self, name: &str) -> f64 {
        self.update();
        self.gauges.get(name).copied().unwrap_or(0.0)
    }

    fn histogram(&mut self, name: &str, label: Option<(&str, &str)>) -> Vec<f64> {
        self.update();
        let labels = label
            .map(|(k, v)| vec![(k.to_owned(), v.to_owned())])
            .unwrap_or_default();
        self.histograms
            .get(&(name.to_owned(), labels))
            .cloned()
            .unwrap_or_default()
    }

    /// Every label value recorded, by label name.
    fn label_values(&mut self) -> BTreeMap<String, BTreeSet<String>> {
        self.update();
        let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let keys = self
            .counters
            .keys()
            .chain(self.histograms.keys())
            .flat_map(|(_, labels)| labels.iter().cloned());
        for (name, value) in keys {
            values.entry(name).or_default().insert(value);
        }
        values
    }
}

fn outcome(value: &str) -> (&'static str, &str) {
    ("outcome", value)
}

/// `login` up to ModelGates' `/auth` URL, without approving.
async fn auth_url(browser: &mut Browser) -> String {
    let login = browser.get("/login").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    login.location().to_owned()
}

/// The callback of an approved sign-in, path and query.
fn path_and_query(callback: &url::Url) -> String {
    format!("{}?{}", callback.path(), callback.query().unwrap_or(""))
}

#[tokio::test(flavor = "current_thread")]
async fn every_sign_in_outcome_is_counted_and_the_exchange_timed() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut recorded = Recorded::new(&recorder);
    let emu = Emulator::builder().start().await.unwrap();
    let layer = ModelGatesAuth::new(config(&emu).with_http_timeout(Duration::from_millis(300)));
    let mut browser = Browser::new(app(layer));

    // Success.
    let callback = emu.approve(&auth_url(&mut browser).await).unwrap();
    let before_visit = browser.clone();
    assert_eq!(
        browser.get(&path_and_query(&callback)).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("success")),
        1
    );
    let took = recorded.histogram(
        observe::KEY_EXCHANGE_DURATION_SECONDS,
        Some(outcome("success")),
    );
    assert_eq!(took.len(), 1, "one exchange timed");
    assert!(took[0] > 0.0 && took[0] < 10.0, "seconds: {took:?}");

    // Replay: the same callback with the flow cookie it had.
    let mut replayer = before_visit;
    let replayed = replayer.get(&path_and_query(&callback)).await;
    assert_eq!(replayed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("flow_used")),
        1
    );

    // The flow cookie missing: another browser.
    let mut stranger = Browser::new(browser.app.clone());
    stranger.get(&path_and_query(&callback)).await;
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("flow_missing")),
        1
    );

    // Another flow's callback with this browser's flow cookie.
    let mut mixed = Browser::new(browser.app.clone());
    auth_url(&mut mixed).await;
    mixed.get(&path_and_query(&callback)).await;
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("flow_mismatch")),
        1
    );

    // Deny.
    let denied = emu.deny(&auth_url(&mut browser).await).unwrap();
    assert_eq!(
        browser.get(&path_and_query(&denied)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("denied")),
        1
    );

    // ModelGates fails (5xx), then is too slow.
    emu.inject_once(Endpoint::Keys, Fault::Status(500));
    let callback = emu.approve(&auth_url(&mut browser).await).unwrap();
    assert_eq!(
        browser.get(&path_and_query(&callback)).await.status,
        StatusCode::BAD_GATEWAY
    );
    emu.inject_once(Endpoint::Keys, Fault::Delay(Duration::from_secs(3)));
    let callback = emu.approve(&auth_url(&mut browser).await).unwrap();
    assert_eq!(
        browser.get(&path_and_query(&callback)).await.status,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("upstream_error")),
        1
    );
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("timeout")),
        1
    );
    for failed in ["upstream_error", "timeout"] {
        let took = recorded.histogram(
            observe::KEY_EXCHANGE_DURATION_SECONDS,
            Some(outcome(failed)),
        );
        assert_eq!(took.len(), 1, "{failed}: one exchange timed");
    }
    assert!(
        recorded.histogram(
            observe::KEY_EXCHANGE_DURATION_SECONDS,
            Some(outcome("timeout"))
        )[0] >= 0.3,
        "the timeout's exchange lasted the client's timeout"
    );

    // ModelGates refuses the code.
    emu.inject_once(Endpoint::Keys, Fault::Status(403));
    let callback = emu.approve(&auth_url(&mut browser).await).unwrap();
    browser.get(&path_and_query(&callback)).await;
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("code_rejected")),
        1
    );

    // A wrong method on the callback route.
    browser.post(callback.path()).await;
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("method_not_allowed")),
        1
    );

    // Nothing else was counted, and every label is one of the documented set.
    let total: u64 = recorded
        .counters
        .iter()
        .filter(|((name, _), _)| name == observe::SIGN_INS_TOTAL)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(total, 9);
    assert_labels_are_documented(&mut recorded);
}

/// A key store that is down: every call fails.
struct Down;

impl KeyStore for Down {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    async fn save(&self, _: StoredKey) -> Result<SessionToken, StoreError> {
        Err(StoreError::new("down"))
    }

    async fn load(&self, _: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        Err(StoreError::new("down"))
    }

    async fn remove(&self, _: &SessionToken) -> Result<(), StoreError> {
        Err(StoreError::new("down"))
    }

    async fn spend_flow(&self, _: &str, _: Duration) -> Result<FlowSpend, StoreError> {
        Err(StoreError::new("down"))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Err(StoreError::new("down"))
    }
}

/// A memory store whose keys all come back expired (ModelGates said they expire at the epoch).
#[derive(Default)]
struct Expired(MemoryStore);

impl KeyStore for Expired {
    const TOKEN_PROTECTION: TokenProtection = MemoryStore::TOKEN_PROTECTION;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        self.0.save(key).await
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        let key = self.0.load(token).await?;
        Ok(key.map(|key| key.with_expires_at(Some(1))))
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        self.0.remove(token).await
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_key_past_its_lifetime_is_counted_as_expired() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut recorded = Recorded::new(&recorder);
    let emu = emulator().await;
    let layer = ModelGatesAuth::new(config(&emu)).with_store(Expired::default());
    let mut browser = Browser::new(app(layer));
    browser.sign_in("/login").await;
    assert_eq!(browser.get("/me").await.body, "signed out");
    assert_eq!(
        recorded.counter(observe::SIGN_OUTS_TOTAL, ("reason", "expired")),
        1
    );
    assert_eq!(
        recorded.counter(observe::SIGN_OUTS_TOTAL, ("reason", "session_ended")),
        0
    );
}

/// The app's hook refusing, the layer's rate bound, and a store that is down, each counted
/// under its own outcome; and a store that is down is not ready.
#[tokio::test(flavor = "current_thread")]
async fn refusals_by_the_hook_the_rate_bound_and_the_store_are_counted() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut recorded = Recorded::new(&recorder);
    let emu = emulator().await;
    let config = config(&emu)
        .with_exchange_limits(
            ExchangeLimits::unlimited().with_global(RateLimit::per_minute(1).with_burst(1)),
        )
        .with_on_sign_in(|_: SignIn| async { Err::<(), _>(SignInRejected::new("No.")) });
    let mut browser = Browser::new(app(ModelGatesAuth::new(config)));
    assert_eq!(
        browser.sign_in("/login").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("hook_refused")),
        1
    );
    // A made-up code fills the bound (only failures count); served without ConnectInfo, this
    // browser cannot be told from others, so the next sign-in waits.
    let callback = browser.start_sign_in("/login").await;
    let made_up = format!("{}?code=made-up", support::path_of(&callback));
    assert_eq!(browser.get(&made_up).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        browser.sign_in("/login").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("rate_limited")),
        1
    );

    let down = ModelGatesAuth::new(support::config(&emu)).with_store(Down);
    assert!(
        down.ready().await.is_err(),
        "a store that is down is not ready"
    );
    let mut browser = Browser::new(app(down));
    assert_eq!(
        browser.sign_in("/login").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        recorded.counter(observe::SIGN_INS_TOTAL, outcome("store_unavailable")),
        1
    );
    assert_eq!(
        emu.exchange_count(),
        2,
        "only the hook's sign-in and the made-up code reached ModelGates"
    );
    assert_labels_are_documented(&mut recorded);
}

#[tokio::test(flavor = "current_thread")]
async fn money_errors_streams_and_sign_outs_are_counted() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut recorded = Recorded::new(&recorder);
    let emu = emulator().await;
    let layer = ModelGatesAuth::new(config(&emu)).with_store(MemoryStore::default());
    let mut browser = Browser::new(app(layer));
    browser.sign_in("/login").await;

    // Each money error, named.
    for (fault, code) in [
        (Fault::InsufficientCredits, "insufficient_credits"),
        (Fault::KeyLimitExceeded, "key_limit_reached"),
        (Fault::RateLimited(Duration::from_secs(60)), "rate_limited"),
        (Fault::Status(500), "upstream_error"),
    ] {
        emu.inject_once(Endpoint::Chat, fault);
        let answer = browser
            .send(
                Request::post("/chat").header(header::ACCEPT, "application/json"),
                Body::empty(),
            )
            .await;
        assert!(answer.body.contains(code), "{code}: {}", answer.body);
        assert_eq!(
            recorded.counter(observe::API_ERRORS_TOTAL, ("code", code)),
            1
        );
    }

    // A stream: open while its body is read, its first token timed, closed once read.
    let response = browser
        .app
        .clone()
        .oneshot(
            Request::post("/stream")
                .header(header::COOKIE, browser.cookie_header())
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(recorded.gauge(observe::OPEN_STREAMS), 1.0);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("event: done"));
    assert_eq!(recorded.gauge(observe::OPEN_STREAMS), 0.0);
    let first = recorded.histogram(observe::STREAM_FIRST_TOKEN_SECONDS, None);
    assert_eq!(first.len(), 1, "one first token");

    // A stream that fails midway is counted by its code.
    emu.inject_once(Endpoint::Chat, Fault::StreamFailsMidway(402));
    let failed = browser.post("/stream").await;
    assert!(failed.body.contains("event: error"), "{}", failed.body);
    assert_eq!(
        recorded.counter(observe::API_ERRORS_TOTAL, ("code", "insufficient_credits")),
        2
    );
    assert_eq!(recorded.gauge(observe::OPEN_STREAMS), 0.0);

    // Sign-outs: a second sign-in ends the first session (its copy is then unknown), the app
    // signs out, ModelGates refuses the key, the user logs out.
    let old_copy = browser.clone();
    browser.sign_in("/login").await;
    let mut old_copy = old_copy;
    assert_eq!(old_copy.get("/me").await.body, "signed out");
    assert_eq!(
        recorded.counter(observe::SIGN_OUTS_TOTAL, ("reason", "session_ended")),
        1
    );
    browser.post("/leave").await;
    assert_eq!(
        recorded.counter(observe::SIGN_OUTS_TOTAL, ("reason", "app")),
        1
    );
    browser.sign_in("/login").await;
    let key = emu.issued_keys().last().unwrap().key.clone();
    emu.revoke_key(&key);
    browser.post("/chat").await;
    assert_eq!(
        recorded.counter(observe::SIGN_OUTS_TOTAL, ("reason", "key_rejected")),
        1
    );
    assert_eq!(
        recorded.counter(observe::API_ERRORS_TOTAL, ("code", "key_rejected")),
        1
    );
    browser.sign_in("/login").await;
    browser.post("/logout").await;
    assert_eq!(
        recorded.counter(observe::SIGN_OUTS_TOTAL, ("reason", "logout")),
        1
    );
    assert_labels_are_documented(&mut recorded);
}

/// An in-process feed that the test feeds and can end.
#[derive(Clone)]
struct Bus(broadcast::Sender<String>);

impl RevocationFeed for Bus {
    type Subscription = broadcast::Receiver<String>;

    async fn subscribe(&self) -> Result<Self::Subscription, StoreError> {
        Ok(self.0.subscribe())
    }

    async fn next(&self, subscription: &mut Self::Subscription) -> Option<String> {
        let message = subscription.recv().await.ok()?;
        (message != "lose").then_some(message)
    }

    async fn publish(&self, message: &str) -> Result<(), StoreError> {
        let _ = self.0.send(message.to_owned());
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn key_cache_hits_misses_revocations_and_feed_losses_are_counted() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut recorded = Recorded::new(&recorder);
    let emu = emulator().await;
    let bus = Bus(broadcast::channel(64).0);
    let store = CachingStore::new(MemoryStore::default())
        .listen(bus.clone())
        .await
        .unwrap();
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu)).with_store(store)));
    browser.sign_in("/login").await;
    let hits_before = recorded.counter(observe::KEY_CACHE_REQUESTS_TOTAL, ("result", "hit"));
    for _ in 0..3 {
        assert_eq!(browser.get("/me").await.body, "signed in");
    }
    assert_eq!(
        recorded.counter(observe::KEY_CACHE_REQUESTS_TOTAL, ("result", "hit")) - hits_before,
        3,
        "each request after the sign-in is served from the cache"
    );

    // A revocation heard empties this entry: the next request misses, then hits again.
    let misses = recorded.counter(observe::KEY_CACHE_REQUESTS_TOTAL, ("result", "miss"));
    bus.publish("*").await.unwrap();
    wait_for(&mut recorded, observe::REVOCATIONS_HEARD_TOTAL, 1).await;
    assert_eq!(browser.get("/me").await.body, "signed in");
    assert_eq!(
        recorded.counter(observe::KEY_CACHE_REQUESTS_TOTAL, ("result", "miss")),
        misses + 1
    );

    // The subscription is lost (and taken again).
    bus.publish("lose").await.unwrap();
    wait_for(&mut recorded, observe::REVOCATION_FEED_LOSSES_TOTAL, 1).await;
    assert_labels_are_documented(&mut recorded);
}

/// Polls (yielding to the feed's task) until the label-less counter `name` reaches `value`.
async fn wait_for(recorded: &mut Recorded, name: &str, value: u64) {
    for _ in 0..1000 {
        if recorded.counter(name, ("", "")) >= value {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("{name} never reached {value}");
}

/// Every label value recorded is one of the sets the `observe` module documents.
fn assert_labels_are_documented(recorded: &mut Recorded) {
    let documented: BTreeMap<&str, &[&str]> = BTreeMap::from([
        (
            "outcome",
            &[
                "success",
                "denied",
                "authorization_failed",
                "flow_missing",
                "flow_invalid",
                "flow_expired",
                "flow_mismatch",
                "flow_used",
                "code_missing",
                "code_malformed",
                "code_rejected",
                "upstream_error",
                "timeout",
                "busy",
                "rate_limited",
                "store_unavailable",
                "hook_refused",
                "hook_failed",
                "method_not_allowed",
            ][..],
        ),
        (
            "code",
            &[
                "key_rejected",
                "insufficient_credits",
                "key_limit_reached",
                "rate_limited",
                "upstream_timeout",
                "upstream_error",
                "invalid_request",
                "too_many_streams",
                "server_restarting",
                "idle_timeout",
            ][..],
        ),
        (
            "reason",
            &["logout", "key_rejected", "app", "expired", "session_ended"][..],
        ),
        ("result", &["hit", "miss"][..]),
    ]);
    for (label, values) in recorded.label_values() {
        let allowed = documented
            .get(label.as_str())
            .unwrap_or_else(|| panic!("undocumented label {label}"));
        for value in values {
            assert!(allowed.contains(&value.as_str()), "{label}={value}");
        }
    }
}

/// Every span opened and every field recorded on spans and events, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<CapturedInner>>);

/// A span as captured: its name, its parent's name, its fields.
type CapturedSpan = (String, Option<String>, BTreeMap<String, String>);

#[derive(Default)]
struct CapturedInner {
    /// Every span opened.
    spans: Vec<CapturedSpan>,
    /// Span id → its index in `spans` (the subscriber reuses the ids of closed spans).
    open: BTreeMap<u64, usize>,
    /// Every field value of every event.
    event_fields: Vec<String>,
}

struct FieldText<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for FieldText<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// The process's one subscriber, at every level, handing what it sees to the capture of the
/// thread it happens on. (A subscriber per test, set as the thread's default, would race with
/// the other tests over tracing's per-callsite cache of interest and miss spans.)
struct Forward;

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

fn current() -> Option<Captured> {
    CURRENT.with(|current| current.borrow().clone())
}

impl Captured {
    /// Captures what this thread (a current-thread test runtime) traces from now on.
    fn start() -> Self {
        use tracing_subscriber::layer::SubscriberExt as _;
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Forward))
                .expect("the only global subscriber of this test binary");
        });
        let captured = Self::default();
        CURRENT.with(|current| *current.borrow_mut() = Some(captured.clone()));
        captured
    }
}

impl<S> tracing_subscriber::Layer<S> for Forward
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(captured) = current() else { return };
        let mut fields = BTreeMap::new();
        attrs.record(&mut FieldText(&mut fields));
        let parent = ctx
            .span(id)
            .and_then(|span| span.parent())
            .map(|parent| parent.name().to_owned());
        let mut inner = captured.0.lock().unwrap();
        let index = inner.spans.len();
        inner
            .spans
            .push((attrs.metadata().name().to_owned(), parent, fields));
        inner.open.insert(id.into_u64(), index);
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(captured) = current() else { return };
        let mut inner = captured.0.lock().unwrap();
        if let Some(&index) = inner.open.get(&id.into_u64()) {
            values.record(&mut FieldText(&mut inner.spans[index].2));
        }
    }

    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let Some(captured) = current() else { return };
        // The crate's own events (the emulator's are the provider's business).
        if !event.metadata().target().starts_with("modelgates_axum")
            && !event
                .metadata()
                .target()
                .starts_with("modelgates_oauth_core")
        {
            return;
        }
        let mut fields = BTreeMap::new();
        event.record(&mut FieldText(&mut fields));
        captured
            .0
            .lock()
            .unwrap()
            .event_fields
            .extend(fields.into_values());
    }
}

impl Captured {
    /// The fields of the spans named `name`, with their parent's name.
    fn spans(&self, name: &str) -> Vec<(Option<String>, BTreeMap<String, String>)> {
        self.0
            .lock()
            .unwrap()
            .spans
            .iter()
            .filter(|(span, _, _)| span == name)
            .map(|(_, parent, fields)| (parent.clone(), fields.clone()))
            .collect()
    }

    /// Every value of every span field and event field.
    fn all_values(&self) -> Vec<String> {
        let inner = self.0.lock().unwrap();
        inner
            .spans
            .iter()
            .flat_map(|(_, _, fields)| fields.values().cloned())
            .chain(inner.event_fields.iter().cloned())
            .collect()
    }
}

/// A full flow with a capturing subscriber (at TRACE) and a recorder: the spans are those
/// documented, nested under tower-http's request span (made by `request_span`), with
/// OpenTelemetry's field names; no span field, no event field of the crates and no metric
/// label holds a key, a code, a verifier, a flow id, a cookie, the cookie secret or a message
/// body.
#[tokio::test(flavor = "current_thread")]
async fn spans_follow_the_conventions_and_no_field_or_label_holds_a_secret() {
    let captured = Captured::start();
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut recorded = Recorded::new(&recorder);

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA";
    let emu = emulator().await;
    let config = ModelGatesConfig::new(
        "http://localhost:3000",
        CookieSecret::from_base64(SECRET).unwrap(),
    )
    .with_base_url(emu.base_url());
    let mut browser = Browser::new(app(ModelGatesAuth::new(config)));
    let callback = browser.start_sign_in("/login").await;
    let mut secrets = vec![SECRET.to_owned(), MESSAGE.to_owned()];
    secrets.extend(browser.cookies.values().cloned()); // the flow cookie
    secrets.push(support::code_of(&callback));
    let flow_id = support::path_of(&callback)
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    secrets.push(flow_id);
    assert_eq!(browser.get(&callback).await.status, StatusCode::SEE_OTHER);
    let exchange = emu.last_exchange().unwrap().json.unwrap();
    secrets.push(exchange["code_verifier"].as_str().unwrap().to_owned());
    secrets.push(emu.issued_keys().last().unwrap().key.clone());
    // ModelGates' user id is user data: only its hash may be logged.
    let user_id = emu.issued_keys().last().unwrap().user_id.clone();
    secrets.push(user_id.clone());
    secrets.extend(browser.cookies.values().cloned()); // the key cookie
    let streamed = browser.post("/stream").await;
    assert!(streamed.body.contains("event: done"), "{}", streamed.body);
    browser.post("/chat").await;
    emu.inject_once(Endpoint::Chat, Fault::InsufficientCredits);
    browser.post("/chat").await;
    browser
        .send(
            Request::post("/logout").header(header::ORIGIN, "http://localhost:3000"),
            Body::empty(),
        )
        .await;

    let values = captured.all_values();
    assert!(values.len() > 20, "the flow was captured: {values:?}");
    let user_hash = {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(user_id.as_bytes());
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(
        values.iter().any(|value| value.contains(&user_hash)),
        "the key issued event names the user by the hash of their id"
    );
    for secret in &secrets {
        assert!(secret.len() >= 8, "a real secret: {secret}");
        for value in &values {
            assert!(!value.contains(secret.as_str()), "{value} holds a secret");
        }
        for (label, label_values) in recorded.label_values() {
            for value in label_values {
                assert!(!value.contains(secret.as_str()), "label {label}={value}");
            }
        }
    }

    // The documented spans and fields, nested under the request span of tower-http.
    let [(parent, login)] = &captured.spans("modelgates.login")[..] else {
        panic!("one login span");
    };
    assert_eq!(parent.as_deref(), Some("request"));
    assert_eq!(login["http.request.method"], "GET");
    assert_eq!(login["url.path"], "/login");
    assert_eq!(login["http.response.status_code"], "303");
    assert_eq!(login["outcome"], "started");
    let [(parent, callback)] = &captured.spans("modelgates.callback")[..] else {
        panic!("one callback span");
    };
    assert_eq!(parent.as_deref(), Some("request"));
    assert_eq!(callback["http.route"], "/callback/{flow_id}");
    assert!(!callback.contains_key("url.path"));
    assert_eq!(callback["http.response.status_code"], "303");
    assert_eq!(callback["outcome"], "success");
    let requests = captured.spans("request");
    assert!(
        requests
            .iter()
            .any(|(_, fields)| fields["url.path"] == "/callback/{flow_id}"),
        "the request span hides the flow id: {requests:?}"
    );
    let [(parent, exchange)] = &captured.spans("modelgates.exchange")[..] else {
        panic!("one exchange span");
    };
    assert_eq!(parent.as_deref(), Some("modelgates.callback"));
    assert_eq!(exchange["server.address"], "127.0.0.1");
    assert_eq!(exchange["outcome"], "success");
    let posts: Vec<_> = captured
        .spans("modelgates.http")
        .into_iter()
        .filter(|(parent, _)| parent.as_deref() == Some("modelgates.exchange"))
        .collect();
    let [(_, post)] = &posts[..] else {
        panic!("one request in the exchange: {posts:?}");
    };
    assert_eq!(post["otel.kind"], "client");
    assert_eq!(post["http.request.method"], "POST");
    assert_eq!(post["url.path"], "/api/v1/auth/keys");
    assert_eq!(post["http.response.status_code"], "200");
    let [(parent, stream)] = &captured.spans("modelgates.stream")[..] else {
        panic!("one stream span");
    };
    assert_eq!(parent.as_deref(), Some("request"));
    assert_eq!(stream["gen_ai.operation.name"], "chat");
    assert_eq!(stream["gen_ai.request.model"], "openai/gpt-5.2");
    assert_eq!(stream["gen_ai.response.finish_reasons"], "stop");
    assert!(stream["gen_ai.usage.output_tokens"].parse::<u32>().unwrap() > 0);
    assert_eq!(stream["outcome"], "completed");
    let [(_, logout)] = &captured.spans("modelgates.logout")[..] else {
        panic!("one logout span");
    };
    assert_eq!(logout["outcome"], "signed_out");
    assert_eq!(logout["http.response.status_code"], "303");
}

/// A callback refused before the handler (wrong method) still names its outcome on the span.
#[tokio::test(flavor = "current_thread")]
async fn a_refused_step_names_its_error_type() {
    let captured = Captured::start();
    let emu = emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    let mut json = browser.clone();
    assert_eq!(
        json.get_json("/callback/abc?code=x").await.status,
        StatusCode::BAD_REQUEST
    );
    browser.get("/login?limit=nope").await;
    let [(_, callback)] = &captured.spans("modelgates.callback")[..] else {
        panic!("one callback span");
    };
    assert_eq!(callback["outcome"], "flow_missing");
    assert_eq!(callback["error.type"], "flow_missing");
    assert_eq!(callback["http.response.status_code"], "400");
    let logins = captured.spans("modelgates.login");
    let [(_, login)] = &logins[..] else {
        panic!("one login span: {logins:?}");
    };
    assert_eq!(login["error.type"], "invalid_limit");
}

/// A deployment the layer cannot see clients in is said out loud, once each: served without
/// `ConnectInfo`, and behind a proxy that sends forwarding headers no setting trusts (also
/// counted, every time).
#[tokio::test(flavor = "current_thread")]
async fn clients_the_layer_cannot_tell_apart_are_warned_about_once() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);
    let mut recorded = Recorded::new(&recorder);
    let logs = support::Logs::capture();
    let emu = emulator().await;
    let mut browser = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    for _ in 0..2 {
        browser.sign_in("/login").await;
    }
    let text = logs.text();
    assert_eq!(
        text.matches("into_make_service_with_connect_info").count(),
        1,
        "{text}"
    );

    let mut proxied = Browser::new(app(ModelGatesAuth::new(config(&emu))));
    for _ in 0..3 {
        proxied
            .send(
                Request::get("/login")
                    .header("x-forwarded-for", "203.0.113.4")
                    .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                        [127, 0, 0, 1],
                        40000,
                    )))),
                Body::empty(),
            )
            .await;
    }
    let text = logs.text();
    assert_eq!(
        text.matches("MODELGATES_TRUSTED_PROXIES").count(),
        1,
        "{text}"
    );
    assert_eq!(
        recorded.counter(observe::UNTRUSTED_FORWARDING_HEADERS_TOTAL, ("", "")),
        3
    );
}
