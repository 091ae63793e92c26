//! One conformance suite on every key store, against real servers: the in-memory and cookie
//! stores, SQLite on a temporary file, PostgreSQL and Redis on loopback (`.ci/run` installs and
//! starts them and sets `MODELGATES_TEST_POSTGRES_URL` and `MODELGATES_TEST_REDIS_URL`). Without
//! those variables the server tests say loudly that they were skipped; under `CI=true` they fail.
//! Also: keys are sealed at rest, revocation, expiry, and two app instances sharing one store.

use crate::support;
use modelgates_stores::{redis, sqlx};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use modelgates_axum::oauth_core::ApiKey;
use modelgates_axum::store::testing::conformance;
use modelgates_axum::store::{CookieStore, KeyStore, MemoryStore, SessionToken, StoredKey};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_emulator::Emulator;
use modelgates_stores::{PostgresStore, RedisStore, SqliteStore, StoreSettings};
use support::{Browser, server_url};

fn config() -> ModelGatesConfig {
    ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", SessionToken::random().expose_secret())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn expired_key(lifetime: Duration) -> StoredKey {
    let mut key = StoredKey::new(ApiKey::new(unique("sk-expired")), None);
    key.issued_at = now() - lifetime.as_secs() - 10;
    key
}

#[tokio::test]
async fn cookie_store_conforms() {
    conformance(&CookieStore).await;
}

#[tokio::test]
async fn memory_store_conforms() {
    conformance(&MemoryStore::default()).await;
}

async fn sqlite(path: &std::path::Path, config: &ModelGatesConfig) -> SqliteStore {
    SqliteStore::connect(&format!("sqlite:{}", path.display()), config)
        .await
        .unwrap()
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("modelgates-{}-{name}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test]
async fn sqlite_store_conforms_seals_at_rest_revokes_and_purges() {
    let path = temp_db("conformance");
    let secret = CookieSecret::generate();
    let config = ModelGatesConfig::new("http://localhost:3000", secret.clone())
        .with_key_max_age(Duration::from_secs(3600));
    let store = sqlite(&path, &config).await;
    conformance(&store).await;

    let secret_key = unique("sk-mg-v1-at-rest");
    let token = store
        .save(StoredKey::new(ApiKey::new(&secret_key), Some("u1".into())))
        .await
        .unwrap();
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT session_hash, sealed FROM modelgates_keys")
            .fetch_all(store.pool())
            .await
            .unwrap();
    for (hash, sealed) in &rows {
        assert_ne!(
            hash,
            token.expose_secret(),
            "only the hash of the session id is stored"
        );
        assert!(
            !String::from_utf8_lossy(sealed).contains(&secret_key),
            "sealed at rest"
        );
    }
    let file = std::fs::read(&path).unwrap();
    assert!(
        !String::from_utf8_lossy(&file).contains(&secret_key),
        "not in the database file"
    );

    store
        .save(StoredKey::new(ApiKey::new(unique("sk")), Some("u1".into())))
        .await
        .unwrap();
    assert_eq!(store.revoke_user("u1", None).await.unwrap(), 2);
    assert!(store.load(&token).await.unwrap().is_none());

    let stale = store
        .save(expired_key(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(
        store.load(&stale).await.unwrap().is_none(),
        "expired rows are never returned"
    );
    assert!(store.purge_expired().await.unwrap() >= 1, "and are purged");

    // A store reopened with a rotated secret still opens keys sealed under the old one.
    let kept = store
        .save(StoredKey::new(ApiKey::new("sk-rotated"), None))
        .await
        .unwrap();
    let rotated = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
        .with_previous_secrets([secret]);
    let reopened = sqlite(&path, &rotated).await;
    assert_eq!(
        reopened.load(&kept).await.unwrap().unwrap().key,
        ApiKey::new("sk-rotated")
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn postgres_store_conforms_seals_at_rest_revokes_and_purges() {
    let Some(url) = server_url("MODELGATES_TEST_POSTGRES_URL") else {
        return;
    };
    let store = PostgresStore::connect(&url, &config().with_key_max_age(Duration::from_secs(3600)))
        .await
        .unwrap();
    conformance(&store).await;

    let secret_key = unique("sk-mg-v1-at-rest");
    let user = unique("pg-user");
    let token = store
        .save(StoredKey::new(ApiKey::new(&secret_key), Some(user.clone())))
        .await
        .unwrap();
    let (hash, sealed): (String, Vec<u8>) =
        sqlx::query_as("SELECT session_hash, sealed FROM modelgates_keys WHERE user_id = $1")
            .bind(&user)
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_ne!(hash, token.expose_secret());
    assert!(!String::from_utf8_lossy(&sealed).contains(&secret_key));

    store
        .save(StoredKey::new(
            ApiKey::new(unique("sk")),
            Some(user.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(store.revoke_user(&user, None).await.unwrap(), 2);
    assert!(store.load(&token).await.unwrap().is_none());

    let stale = store
        .save(expired_key(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert!(store.load(&stale).await.unwrap().is_none());
    assert!(store.purge_expired().await.unwrap() >= 1);
}

/// The PostgreSQL store over TLS (sqlx with rustls): Debian's cluster serves TLS with its
/// self-signed certificate, which `sslmode=require` accepts without verifying.
/// Every start applies the schema again; PostgreSQL's "already exists, skipping" notices
/// (logged by sqlx at INFO) must not be the noise of every start.
#[tokio::test]
async fn postgres_migrations_are_quiet_on_an_existing_schema() {
    let Some(url) = server_url("MODELGATES_TEST_POSTGRES_URL") else {
        return;
    };
    let store = PostgresStore::connect(&url, &config()).await.unwrap();
    let logs = support::Logs::capture();
    store.migrate().await.unwrap();
    PostgresStore::connect(&url, &config()).await.unwrap();
    let logged = logs.text();
    assert!(!logged.contains("already exists"), "{logged}");
    assert!(!logged.contains("notice"), "{logged}");
}

#[tokio::test]
async fn postgres_store_works_over_tls() {
    let Some(url) = server_url("MODELGATES_TEST_POSTGRES_URL") else {
        return;
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let store = PostgresStore::connect(&format!("{url}{separator}sslmode=require"), &config())
        .await
        .expect("the server speaks TLS, as .ci/run sets it up");
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(encrypted, "the connection is encrypted");
    conformance(&store).await;
}

/// Databases off this machine without TLS are refused before any connection is made.
#[tokio::test]
async fn plaintext_databases_off_this_machine_are_refused() {
    for url in [
        "postgres://app@db.example/app",
        "postgres://app@db.example/app?sslmode=prefer",
    ] {
        let error = PostgresStore::connect(url, &config()).await.unwrap_err();
        assert!(error.to_string().contains("without TLS"), "{url}: {error}");
    }
    let error = RedisStore::connect("redis://cache.example/", &config())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("rediss://"), "{error}");
    // rediss:// is understood: the store's Redis client is built with TLS.
    assert!(redis::Client::open("rediss://cache.example/").is_ok());
}

#[tokio::test]
async fn redis_store_conforms_seals_at_rest_revokes_and_expires() {
    let Some(url) = server_url("MODELGATES_TEST_REDIS_URL") else {
        return;
    };
    let lifetime = Duration::from_secs(3600);
    let store = RedisStore::connect(&url, &config().with_key_max_age(lifetime))
        .await
        .unwrap();
    conformance(&store).await;

    let secret_key = unique("sk-mg-v1-at-rest");
    let user = unique("redis-user");
    let token = store
        .save(StoredKey::new(ApiKey::new(&secret_key), Some(user.clone())))
        .await
        .unwrap();
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // Other tests and programs share this server: look at this session's entry only.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("modelgates:session:{}*", &token.hash()[..16]))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        keys,
        [format!("modelgates:session:{}", token.hash())],
        "the entry is named by the session's hash only"
    );
    for key in &keys {
        assert!(!key.contains(token.expose_secret()));
        let value: Option<String> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(
            !value.unwrap_or_default().contains(&secret_key),
            "sealed at rest"
        );
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 3600, "the entry expires: TTL {ttl}");
    }

    store
        .save(StoredKey::new(
            ApiKey::new(unique("sk")),
            Some(user.clone()),
        ))
        .await
        .unwrap();
    assert_eq!(store.revoke_user(&user, None).await.unwrap(), 2);
    assert_eq!(
        store.revoke_user(&user, None).await.unwrap(),
        0,
        "a user without sessions"
    );
    assert!(store.load(&token).await.unwrap().is_none());
    assert!(
        store.save(expired_key(lifetime)).await.is_err(),
        "an expired key is not stored"
    );
}

async fn which_key(key: ModelGatesKey) -> String {
    key.api_key().expose_secret().to_owned()
}

fn instance<K: KeyStore>(layer: ModelGatesAuth<K>) -> Router {
    Router::new().route("/me", get(which_key)).layer(layer)
}

/// Sign in through one instance, use the key and log out through the other.
async fn two_instances_share<K: KeyStore>(
    emulator: &Emulator,
    a: ModelGatesAuth<K>,
    b: ModelGatesAuth<K>,
) {
    let (app_a, app_b) = (instance(a), instance(b));
    let mut browser = Browser::new(app_a.clone());
    let landed = browser.sign_in("/login").await;
    assert_eq!(
        landed.status,
        http::StatusCode::SEE_OTHER,
        "{}",
        landed.body
    );
    let issued = emulator.issued_keys().pop().unwrap().key;

    let cookies = browser.cookies.clone();
    browser.app = app_b.clone();
    assert_eq!(
        browser.get("/me").await.body,
        issued,
        "instance B sees the key"
    );
    let logout = browser.post("/logout").await;
    assert_eq!(logout.status, http::StatusCode::SEE_OTHER);

    // Even a copy of the cookie taken before logout is signed out, on both instances.
    for app in [app_a, app_b] {
        let mut copy = Browser::new(app);
        copy.cookies = cookies.clone();
        assert_eq!(
            copy.get_json("/me").await.status,
            http::StatusCode::UNAUTHORIZED
        );
    }
}

/// Two layers, each with its own connection to one store made by `connect`.
async fn two_instances_over<K, F>(connect: impl Fn(ModelGatesConfig) -> F)
where
    K: KeyStore,
    F: std::future::Future<Output = K>,
{
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let config = ModelGatesConfig::new("http://localhost:3000", CookieSecret::generate())
        .with_base_url(emulator.base_url());
    let a = ModelGatesAuth::new(config.clone()).with_store(connect(config.clone()).await);
    let b = ModelGatesAuth::new(config.clone()).with_store(connect(config).await);
    two_instances_share(&emulator, a, b).await;
}

#[tokio::test]
async fn two_instances_share_postgres() {
    let Some(url) = server_url("MODELGATES_TEST_POSTGRES_URL") else {
        return;
    };
    two_instances_over(|config| {
        let url = url.clone();
        async move { PostgresStore::connect(&url, &config).await.unwrap() }
    })
    .await;
}

#[tokio::test]
async fn two_instances_share_redis() {
    let Some(url) = server_url("MODELGATES_TEST_REDIS_URL") else {
        return;
    };
    two_instances_over(|config| {
        let url = url.clone();
        async move { RedisStore::connect(&url, &config).await.unwrap() }
    })
    .await;
}

#[tokio::test]
async fn two_instances_share_sqlite() {
    let path = temp_db("instances");
    two_instances_over(|config| {
        let path = path.clone();
        async move { sqlite(&path, &config).await }
    })
    .await;
    let _ = std::fs::remove_file(&path);
}

/// An app that already has its pool or Redis connection gives it to the store with `new`
/// (after `migrate` for the SQL stores), with settings made from its configuration.
#[tokio::test]
async fn stores_over_the_apps_own_connections_conform() {
    use modelgates_stores::StoreSettings;
    let settings = || StoreSettings::from(&config());

    let path = temp_db("own-pool");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let sqlite = SqliteStore::new(pool, settings());
    sqlite.migrate().await.unwrap();

    let mut postgres = None;
    if let Some(url) = server_url("MODELGATES_TEST_POSTGRES_URL") {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let store = PostgresStore::new(pool, settings());
        store.migrate().await.unwrap();
        postgres = Some(store);
    }
    let mut redis = None;
    if let Some(url) = server_url("MODELGATES_TEST_REDIS_URL") {
        let client = redis::Client::open(url.as_str()).unwrap();
        let connection = redis::aio::ConnectionManager::new(client.clone())
            .await
            .unwrap();
        redis = Some(RedisStore::new(client, connection, settings()));
    }
    // Side by side: each waits a second or two for a session to expire.
    tokio::join!(
        conformance(&sqlite),
        async {
            if let Some(store) = &postgres {
                conformance(store).await;
            }
        },
        async {
            if let Some(store) = &redis {
                conformance(store).await;
            }
        },
    );
    let _ = std::fs::remove_file(&path);
}

/// SQLite locked by another writer: logout fails closed (503 `sign_out_failed`, the cookie
/// kept), signed-in handlers that need the key answer 503, and both work once the lock is gone.
#[tokio::test]
async fn a_locked_sqlite_store_fails_closed_then_recovers() {
    let path = temp_db("locked");
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let config = support::config(&emulator);
    // As `SqliteStore::connect` makes it, but waiting 200 ms for a lock rather than sqlx's 5 s.
    let options = format!("sqlite:{}", path.display())
        .parse::<sqlx::sqlite::SqliteConnectOptions>()
        .unwrap()
        .create_if_missing(true)
        .busy_timeout(Duration::from_millis(200));
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let store = SqliteStore::new(pool, StoreSettings::from(&config));
    store.migrate().await.unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|key: ModelGatesKey| async move { key.user_id().unwrap_or_default().to_owned() }),
        )
        .layer(ModelGatesAuth::new(config).with_store(store));
    let mut browser = Browser::new(app);
    assert_eq!(
        browser.sign_in("/login").await.status,
        http::StatusCode::SEE_OTHER
    );

    // Another process holds the write lock, longer than the store's busy timeout.
    let mut locker = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite:{}",
        path.display()
    ))
    .await
    .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut locker)
        .await
        .unwrap();
    let logout = browser.post("/logout").await;
    assert_eq!(
        logout.status,
        http::StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        logout.body
    );
    assert!(logout.body.contains("sign_out_failed"), "{}", logout.body);
    assert!(logout.headers.contains_key(http::header::RETRY_AFTER));
    assert!(logout.set_cookies().is_empty(), "the cookie is kept");
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();

    assert_eq!(
        browser.get_json("/me").await.status,
        http::StatusCode::OK,
        "still signed in"
    );
    assert_eq!(
        browser.post("/logout").await.status,
        http::StatusCode::SEE_OTHER
    );
    assert_eq!(
        browser.get_json("/me").await.status,
        http::StatusCode::UNAUTHORIZED
    );
    let _ = std::fs::remove_file(&path);
}
