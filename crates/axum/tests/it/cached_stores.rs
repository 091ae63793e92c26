//! The cached database stores against real PostgreSQL and Redis servers on loopback (`.ci/run`
//! starts them; see `stores.rs` for the skip rules): the conformance suite, revocations made on
//! one instance refused on the other within a second (logout, `revoke`, `revoke_user`, and the
//! sign-out after ModelGates refused a key), and a notification connection killed mid-test.
//!
//! Two "instances" are two layers, each with its own `CachingStore` over its own connection
//! pool. The tests in this file take turns (`SERIAL`), because killing a notification
//! connection is done by the server for a whole class of clients.

#![cfg(feature = "openai")]

use crate::support;
use modelgates_stores::{redis, sqlx};

use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse as _;
use axum::routing::get;
use modelgates_axum::ApiError;
use modelgates_axum::oauth_core::ApiKey;
use modelgates_axum::store::testing::conformance;
use modelgates_axum::store::{
    CachingStore, KeyStore, RevocationFeed, SessionToken, StoreError, StoredKey,
};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::Emulator;
use modelgates_stores::{PostgresStore, RedisStore};
use support::{Browser, server_url};
use tokio::sync::Mutex;
use tokio::time::Instant;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// A revocation on one instance is refused on the other within this (issue #16's target).
const BOUND: Duration = Duration::from_secs(1);
/// So long that only a revocation heard on the feed explains a refusal within [`BOUND`].
const LONG_FALLBACK: Duration = Duration::from_secs(60);

/// What the scenarios need of a database store.
trait Database: KeyStore + Clone {
    type Feed: RevocationFeed;
    fn feed(&self) -> Self::Feed;
    async fn revoke(&self, token: &SessionToken) -> Result<(), StoreError>;
}

impl Database for PostgresStore {
    type Feed = modelgates_stores::PostgresRevocations;
    fn feed(&self) -> Self::Feed {
        self.revocations()
    }
    async fn revoke(&self, token: &SessionToken) -> Result<(), StoreError> {
        PostgresStore::revoke(self, token).await
    }
}

impl Database for RedisStore {
    type Feed = modelgates_stores::RedisRevocations;
    fn feed(&self) -> Self::Feed {
        self.revocations()
    }
    async fn revoke(&self, token: &SessionToken) -> Result<(), StoreError> {
        RedisStore::revoke(self, token).await
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", SessionToken::random().expose_secret())
}

async fn cached<D: Database>(store: D, fallback: Duration) -> CachingStore<D> {
    let feed = store.feed();
    CachingStore::new(store)
        .with_fallback_ttl(fallback)
        .listen(feed)
        .await
        .unwrap()
}

/// Polls `b` until it refuses `token`; panics if that takes longer than `bound`.
async fn refused_within<D: Database>(
    b: &CachingStore<D>,
    token: &SessionToken,
    bound: Duration,
    what: &str,
) {
    let started = Instant::now();
    while b.load(token).await.unwrap().is_some() {
        assert!(
            started.elapsed() < bound,
            "{what}: still served by the other instance after {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A session saved through `a`, served from `b`'s cache.
async fn cached_on_both<D: Database>(
    a: &CachingStore<D>,
    b: &CachingStore<D>,
    user: &str,
) -> SessionToken {
    let key = StoredKey::new(ApiKey::new(unique("sk-mg-v1")), Some(user.to_owned()));
    let token = a.save(key).await.unwrap();
    assert!(b.load(&token).await.unwrap().is_some(), "a miss on B");
    let hits = b.stats().hits;
    assert!(b.load(&token).await.unwrap().is_some());
    assert_eq!(b.stats().hits, hits + 1, "B serves the key from its cache");
    token
}

/// Logout, `revoke` and `revoke_user` on A are refused on B within the bound.
async fn store_revocations_reach_the_other_instance<D: Database>(connect: impl AsyncFn() -> D) {
    let a = cached(connect().await, LONG_FALLBACK).await;
    let b = cached(connect().await, LONG_FALLBACK).await;

    let user = unique("user");
    let token = cached_on_both(&a, &b, &user).await;
    a.remove(&token).await.unwrap();
    refused_within(&b, &token, BOUND, "logout").await;

    let token = cached_on_both(&a, &b, &user).await;
    a.inner().revoke(&token).await.unwrap();
    refused_within(&b, &token, BOUND, "revoke").await;
    assert!(a.load(&token).await.unwrap().is_none(), "A itself heard it");

    let (first, second) = (
        cached_on_both(&a, &b, &user).await,
        cached_on_both(&a, &b, &user).await,
    );
    assert_eq!(a.inner().revoke_user(&user, None).await.unwrap(), 2);
    refused_within(&b, &first, BOUND, "revoke_user").await;
    refused_within(&b, &second, BOUND, "revoke_user").await;
    assert!(b.stats().revocations_heard >= 4);
}

async fn which_key(key: ModelGatesKey) -> String {
    key.api_key().expose_secret().to_owned()
}

async fn rejected(_key: ModelGatesKey) -> axum::response::Response {
    ApiError::KeyRejected.into_response()
}

/// One app instance over `store`: `/me` answers the key, `/rejected` as if ModelGates refused it.
fn app_instance<K: KeyStore>(config: &ModelGatesConfig, store: K) -> Router {
    Router::new()
        .route("/me", get(which_key))
        .route("/rejected", get(rejected))
        .layer(ModelGatesAuth::new(config.clone()).with_store(store))
}

/// ModelGates refuses the key on A: A signs the user out, and a copy of the cookie is refused
/// on B within the bound.
async fn a_rejected_key_on_one_instance_signs_out_everywhere<D: Database>(
    connect: impl AsyncFn() -> D,
) {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
        .with_base_url(emulator.base_url());
    let instance = |store| app_instance(&config, store);
    let b_store = cached(connect().await, LONG_FALLBACK).await;
    let app_a = instance(cached(connect().await, LONG_FALLBACK).await);
    let app_b = instance(b_store.clone());

    let mut on_a = Browser::new(app_a);
    assert_eq!(
        on_a.sign_in("/login").await.status,
        http::StatusCode::SEE_OTHER
    );
    let mut on_b = Browser::new(app_b);
    on_b.cookies = on_a.cookies.clone();
    assert_eq!(on_b.get_json("/me").await.status, http::StatusCode::OK);
    let hits = b_store.stats().hits;
    assert_eq!(on_b.get_json("/me").await.status, http::StatusCode::OK);
    assert_eq!(b_store.stats().hits, hits + 1, "B serves from its cache");

    let signed_out = on_a.get_json("/rejected").await;
    assert_eq!(signed_out.status, http::StatusCode::UNAUTHORIZED);
    assert!(on_a.cookies.is_empty(), "A deleted the key cookie");

    let started = Instant::now();
    while on_b.get_json("/me").await.status == http::StatusCode::OK {
        assert!(started.elapsed() < BOUND, "B still serves the rejected key");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A second sign-in in the browser on A ends its first session: a copy of the first cookie is
/// refused on B within the bound (the removal announced through the feed).
async fn a_second_sign_in_ends_the_first_session_everywhere<D: Database>(
    connect: impl AsyncFn() -> D,
) {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
        .with_base_url(emulator.base_url());
    let instance = |store| app_instance(&config, store);
    let app_a = instance(cached(connect().await, LONG_FALLBACK).await);
    let app_b = instance(cached(connect().await, LONG_FALLBACK).await);
    let mut on_a = Browser::new(app_a);
    on_a.sign_in("/login").await;
    let mut copy_on_b = Browser::new(app_b);
    copy_on_b.cookies = on_a.cookies.clone();
    assert_eq!(copy_on_b.get_json("/me").await.status, http::StatusCode::OK);

    on_a.sign_in("/login").await;
    assert_eq!(on_a.get_json("/me").await.status, http::StatusCode::OK);
    let started = Instant::now();
    while copy_on_b.get_json("/me").await.status == http::StatusCode::OK {
        assert!(
            started.elapsed() < BOUND,
            "B still serves the first session"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The notification connection is killed: B notices, a revocation made meanwhile is refused
/// on B within the fallback TTL at the latest, and B subscribes again and hears the next one.
async fn a_killed_notification_connection_falls_back_then_recovers<D: Database>(
    connect: impl AsyncFn() -> D,
    kill: impl AsyncFn(),
) {
    let fallback = Duration::from_secs(1);
    let a = cached(connect().await, LONG_FALLBACK).await;
    let b = cached(connect().await, fallback).await;
    let user = unique("user");
    let token = cached_on_both(&a, &b, &user).await;

    kill().await;
    let started = Instant::now();
    while b.stats().feed_losses == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B never noticed"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    a.inner().revoke(&token).await.unwrap();
    refused_within(
        &b,
        &token,
        fallback + BOUND,
        "revoke while the feed was down",
    )
    .await;

    let started = Instant::now();
    while !b.stats().subscribed {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B never came back"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let token = cached_on_both(&a, &b, &user).await;
    a.inner().revoke(&token).await.unwrap();
    refused_within(&b, &token, BOUND, "revoke after the feed came back").await;
}

fn postgres_url() -> Option<String> {
    server_url("MODELGATES_TEST_POSTGRES_URL")
}

fn redis_url() -> Option<String> {
    server_url("MODELGATES_TEST_REDIS_URL")
}

fn config() -> ModelGatesConfig {
    ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
}

#[tokio::test]
async fn cached_postgres_and_redis_stores_conform() {
    let _turn = SERIAL.lock().await;
    let config = config();
    // Side by side: each waits a second or two for a session to expire.
    tokio::join!(
        async {
            if let Some(url) = postgres_url() {
                let store = PostgresStore::connect(&url, &config).await.unwrap();
                conformance(&store.cached().await.unwrap()).await;
            }
        },
        async {
            if let Some(url) = redis_url() {
                let store = RedisStore::connect(&url, &config).await.unwrap();
                conformance(&store.cached().await.unwrap()).await;
            }
        },
    );
}

#[tokio::test]
async fn postgres_revocations_reach_the_other_instance_within_a_second() {
    let _turn = SERIAL.lock().await;
    let Some(url) = postgres_url() else { return };
    let config = config();
    let connect = async || PostgresStore::connect(&url, &config).await.unwrap();
    store_revocations_reach_the_other_instance(&connect).await;
    a_rejected_key_on_one_instance_signs_out_everywhere(&connect).await;
    a_second_sign_in_ends_the_first_session_everywhere(&connect).await;
}

#[tokio::test]
async fn redis_revocations_reach_the_other_instance_within_a_second() {
    let _turn = SERIAL.lock().await;
    let Some(url) = redis_url() else { return };
    let config = config();
    let connect = async || RedisStore::connect(&url, &config).await.unwrap();
    store_revocations_reach_the_other_instance(&connect).await;
    a_rejected_key_on_one_instance_signs_out_everywhere(&connect).await;
    a_second_sign_in_ends_the_first_session_everywhere(&connect).await;
}

#[tokio::test]
async fn a_killed_postgres_listener_falls_back_then_recovers() {
    let _turn = SERIAL.lock().await;
    let Some(url) = postgres_url() else { return };
    // Tagged, so that only this test's connections are killed.
    let name = unique("modelgates-test").replace(['-', '_'], "");
    let separator = if url.contains('?') { '&' } else { '?' };
    let tagged = format!("{url}{separator}application_name={}", &name[..40]);
    let config = config();
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    let kill = async || {
        let killed: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND query ILIKE 'LISTEN%'",
        )
        .bind(&name[..40])
        .fetch_all(&admin)
        .await
        .unwrap();
        assert!(!killed.is_empty(), "a listener was killed");
    };
    let connect = async || PostgresStore::connect(&tagged, &config).await.unwrap();
    a_killed_notification_connection_falls_back_then_recovers(&connect, &kill).await;
}

#[tokio::test]
async fn a_killed_redis_subscription_falls_back_then_recovers() {
    let _turn = SERIAL.lock().await;
    let Some(url) = redis_url() else { return };
    let config = config();
    let admin = redis::Client::open(url.as_str()).unwrap();
    let kill = async || {
        let mut connection = admin.get_multiplexed_async_connection().await.unwrap();
        let killed: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(killed > 0, "a subscription was killed");
    };
    let connect = async || RedisStore::connect(&url, &config).await.unwrap();
    a_killed_notification_connection_falls_back_then_recovers(&connect, &kill).await;
}
