//! Many instances and store outages, over real HTTP with real PostgreSQL and Redis behind the
//! fault-injecting proxy (`modelgates_e2e::proxy`): a flow replayed on another instance, the
//! store cut while signed-in requests, sign-ins and sign-outs are under way, recovery without a
//! restart, a `TRUNCATE` of the keys table, and TLS rules judged before any connection.
//!
//! `.ci/run` starts the servers; without `MODELGATES_TEST_POSTGRES_URL` /
//! `MODELGATES_TEST_REDIS_URL` these tests say loudly that they were skipped (under `CI=true`
//! they fail). They take turns (`SERIAL`): one of them truncates the shared keys table.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use modelgates_axum::ApiError;
use modelgates_axum::oauth_core::async_openai::types::chat::{
    ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs,
};
use modelgates_axum::store::{CachingStore, KeyStore, RevocationFeed};
use modelgates_axum::testing::{self, TestApp, reqwest};
use modelgates_axum::{CookieSecret, ModelGatesAuth, ModelGatesConfig, ModelGatesKey};
use modelgates_e2e::proxy::FaultProxy;
use modelgates_emulator::{Emulator, Endpoint, Fault};
use modelgates_stores::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use modelgates_stores::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use modelgates_stores::{PostgresStore, RedisStore, StoreSettings, redis};
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore as _, Jar};
use tokio::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// How long a cached entry is trusted without hearing the feed: short, so that an outage is
/// visible to the layer quickly.
const FALLBACK: Duration = Duration::from_millis(300);
/// So long that the cache never stops trusting what it holds during a test.
const LONG_FALLBACK: Duration = Duration::from_secs(60);
/// Every wait for a state to be reached polls for at most this long.
const PATIENCE: Duration = Duration::from_secs(15);
/// How long the stores behind the fault proxy wait for their server before reporting it down:
/// the stores' own default is 3 s, and each outage test makes about ten requests while the
/// server is unreachable, each of which waits this long for its 503. The rules asserted do not
/// depend on the length.
const DATABASE_TIMEOUT: Duration = Duration::from_millis(250);

fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{var} is not set: .ci/run starts the server and sets it"
            );
            eprintln!("\n!!!!!!!! SKIPPED: {var} is not set, so this test did not run !!!!!!!!\n");
            None
        }
    }
}

/// The database at `url`, reached through a new fault proxy: the proxy and the URL to use.
async fn behind_proxy(url: &str) -> (FaultProxy, String) {
    let mut parsed = url::Url::parse(url).unwrap();
    let host = parsed.host_str().unwrap().to_owned();
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if parsed.scheme() == "redis" {
            6379
        } else {
            5432
        });
    let target: SocketAddr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = FaultProxy::start(target).await;
    parsed.set_host(Some("127.0.0.1")).unwrap();
    parsed.set_port(Some(proxy.addr().port())).unwrap();
    (proxy, parsed.to_string())
}

#[derive(Clone, Copy, Debug)]
enum Db {
    Postgres,
    Redis,
}

impl Db {
    fn url(self) -> Option<String> {
        server_url(match self {
            Self::Postgres => "MODELGATES_TEST_POSTGRES_URL",
            Self::Redis => "MODELGATES_TEST_REDIS_URL",
        })
    }
}

/// One instance of an app: its own cached store (its own pool or connection) over `url`,
/// the shared `secret`, served on its own port.
async fn instance(db: Db, url: &str, secret: &CookieSecret, emulator: &Emulator) -> TestApp {
    let settings = StoreSettings::from(&ModelGatesConfig::new("http://127.0.0.1", secret.clone()));
    match db {
        Db::Postgres => {
            let store = postgres_store(url, settings).await;
            let feed = store.revocations();
            serve(cached(store, feed, FALLBACK).await, secret, emulator).await
        }
        Db::Redis => {
            let store = redis_store(url, settings).await;
            let feed = store.revocations();
            serve(cached(store, feed, FALLBACK).await, secret, emulator).await
        }
    }
}

/// The stores' short wait is for the outage; their first connection, on a machine busy with
/// the other tests, may take longer: it is tried again, a bounded number of times.
async fn first_connection<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    database: &str,
    mut connect: impl FnMut() -> F,
) -> T {
    let mut attempts = 0;
    loop {
        match connect().await {
            Ok(connection) => return connection,
            Err(_) if attempts < 20 => attempts += 1,
            Err(error) => panic!("{database} does not answer: {error}"),
        }
    }
}

/// A PostgreSQL store as `PostgresStore::connect` makes it, waiting [`DATABASE_TIMEOUT`].
async fn postgres_store(url: &str, settings: StoreSettings) -> PostgresStore {
    let options: PgConnectOptions = url.parse().unwrap();
    let pool = first_connection("PostgreSQL", || {
        PgPoolOptions::new()
            .acquire_timeout(DATABASE_TIMEOUT)
            .test_before_acquire(false)
            .connect_with(options.clone())
    })
    .await;
    let store = PostgresStore::new(pool, settings);
    store.migrate().await.unwrap();
    store
}

/// A Redis store as `RedisStore::connect` makes it, waiting [`DATABASE_TIMEOUT`] and not
/// retrying (redis-rs waits at least 1 s, with jitter, before a retry).
async fn redis_store(url: &str, settings: StoreSettings) -> RedisStore {
    let client = redis::Client::open(url).unwrap();
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(DATABASE_TIMEOUT)
        .set_response_timeout(DATABASE_TIMEOUT)
        .set_number_of_retries(0);
    let connection = first_connection("Redis", || {
        ConnectionManager::new_with_config(client.clone(), config.clone())
    })
    .await;
    RedisStore::new(client, connection, settings)
}

/// `store` behind its cache, listening to `feed`, trusting what it holds for `fallback`.
async fn cached<S: KeyStore, F: RevocationFeed>(
    store: S,
    feed: F,
    fallback: Duration,
) -> CachingStore<S> {
    CachingStore::new(store)
        .with_fallback_ttl(fallback)
        .listen(feed)
        .await
        .unwrap()
}

/// Asserts `response` is the 503 of a sign-out that could not be completed, and that the
/// browser still holds `cookie`.
async fn assert_sign_out_failed_and_cookie_kept(
    response: reqwest::Response,
    jar: &Jar,
    app: &TestApp,
    cookie: &str,
    context: &str,
) {
    assert!(
        response.headers().get("set-cookie").is_none(),
        "{context}: the cookie is kept"
    );
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    assert_error(response, unavailable, "sign_out_failed", Some("5"), context).await;
    assert_eq!(cookies_for(jar, app).unwrap(), cookie, "{context}");
}

async fn serve<K: KeyStore>(store: K, secret: &CookieSecret, emulator: &Emulator) -> TestApp {
    let base_url = emulator.base_url().to_owned();
    let secret = secret.clone();
    testing::serve(move |public_url| {
        let config = ModelGatesConfig::new(public_url, secret).with_base_url(base_url);
        Router::new()
            .route("/public", get(|| async { "open to all" }))
            .route("/me", get(me))
            .route("/maybe", get(maybe))
            .route("/chat", post(chat))
            .layer(ModelGatesAuth::new(config).with_store(store))
    })
    .await
    .unwrap()
}

async fn me(key: ModelGatesKey) -> String {
    key.user_id().unwrap_or_default().to_owned()
}

async fn maybe(key: Option<ModelGatesKey>) -> &'static str {
    if key.is_some() {
        "signed in"
    } else {
        "signed out"
    }
}

async fn chat(key: ModelGatesKey) -> Result<String, ApiError> {
    let request = CreateChatCompletionRequestArgs::default()
        .model("openai/gpt-5.2")
        .messages([ChatCompletionRequestUserMessage::from("hi").into()])
        .build()?;
    let reply = key.openai().chat().create(request).await?;
    Ok(reply.choices[0].message.content.clone().unwrap_or_default())
}

/// A browser-like client whose cookies can be read.
fn browser() -> (Arc<Jar>, reqwest::Client) {
    let jar = Arc::new(Jar::default());
    (jar.clone(), testing::client_with_jar(jar))
}

fn cookies_for(jar: &Jar, app: &TestApp) -> Option<String> {
    jar.cookies(&app.url().parse().unwrap())
        .map(|value| value.to_str().unwrap().to_owned())
}

/// Asserts `response` is the JSON error `code` with `status` and, when `retry_after` is given,
/// that `Retry-After`.
async fn assert_error(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
    retry_after: Option<&str>,
    context: &str,
) {
    let got = response.status();
    let waits = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    assert_eq!(
        (got, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{context}: {text}"
    );
    if retry_after.is_some() {
        assert_eq!(waits.as_deref(), retry_after, "{context}");
    }
}

/// Polls `probe` until it answers `want`, failing after [`PATIENCE`]; how long it took.
async fn until<F, Fut>(what: &str, want: StatusCode, mut probe: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StatusCode>,
{
    let started = Instant::now();
    loop {
        let status = probe().await;
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: still {status} after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_flow_is_single_use_across_instances_sharing_a_store() {
    let _turn = SERIAL.lock().await;
    for db in [Db::Postgres, Db::Redis] {
        let Some(url) = db.url() else { continue };
        let emulator = Emulator::start_auto_approve().await.unwrap();
        let secret = CookieSecret::generate();
        let a = instance(db, &url, &secret, &emulator).await;
        let b = instance(db, &url, &secret, &emulator).await;
        let (jar, client) = browser();
        let callback = testing::start_sign_in(&client, a.url(), &emulator)
            .await
            .unwrap();
        let flow_cookie = cookies_for(&jar, &a).unwrap();
        assert_eq!(
            client.get(&callback).send().await.unwrap().status(),
            StatusCode::SEE_OTHER
        );
        let exchanges = emulator.exchange_count();
        // The attacker replays the callback URL and the flow cookie on instance B.
        let path = callback.strip_prefix(a.url()).unwrap();
        let replayed = reqwest::Client::new()
            .get(format!("{}{path}", b.url()))
            .header("cookie", &flow_cookie)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let context = format!("{db:?}");
        assert_error(
            replayed,
            StatusCode::BAD_REQUEST,
            "flow_used",
            None,
            &context,
        )
        .await;
        assert_eq!(
            emulator.exchange_count(),
            exchanges,
            "{db:?}: the replay never reached ModelGates"
        );
    }
}

#[tokio::test]
async fn a_store_outage_answers_503_never_signed_out_and_recovers_without_a_restart() {
    let _turn = SERIAL.lock().await;
    for db in [Db::Postgres, Db::Redis] {
        let Some(url) = db.url() else { continue };
        let (proxy, url) = behind_proxy(&url).await;
        let emulator = Emulator::start_auto_approve().await.unwrap();
        let secret = CookieSecret::generate();
        let app = instance(db, &url, &secret, &emulator).await;
        let (jar, client) = browser();
        testing::sign_in(&client, app.url(), &emulator)
            .await
            .unwrap();
        let me = format!("{}/me", app.url());
        let json = |url: String| {
            let client = client.clone();
            async move {
                client
                    .get(url)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(json(me.clone()).await.status(), StatusCode::OK);

        proxy.refuse();
        // Within the fallback TTL the cache may answer; after it, the store must: 503.
        until(
            &format!("{db:?}: load during the outage"),
            StatusCode::SERVICE_UNAVAILABLE,
            || async {
                let status = json(me.clone()).await.status();
                assert!(
                    status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
                    "{db:?}: only 200 (cached) or 503 during an outage, got {status}"
                );
                status
            },
        )
        .await;
        let context = format!("{db:?}");
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        let response = json(me.clone()).await;
        assert_error(
            response,
            unavailable,
            "store_unavailable",
            Some("5"),
            &context,
        )
        .await;
        // A browser gets a page, not a redirect to sign in; `Option<ModelGatesKey>` is not
        // "signed out"; a route without the key is served; the cookie is kept.
        let page = client
            .get(&me)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            page.headers().get("set-cookie").is_none(),
            "the cookie is kept"
        );
        assert!(page.text().await.unwrap().contains("try again in a moment"));
        let maybe = json(format!("{}/maybe", app.url())).await;
        assert_eq!(maybe.status(), StatusCode::SERVICE_UNAVAILABLE);
        let public = json(format!("{}/public", app.url())).await;
        assert_eq!(public.status(), StatusCode::OK);

        // A sign-in during the outage: refused before the exchange, so no key is issued.
        let (_, newcomer) = browser();
        let callback = testing::start_sign_in(&newcomer, app.url(), &emulator)
            .await
            .unwrap();
        let exchanges = emulator.exchange_count();
        let refused = newcomer
            .get(&callback)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_error(
            refused,
            unavailable,
            "store_unavailable",
            Some("5"),
            &context,
        )
        .await;
        assert_eq!(
            emulator.exchange_count(),
            exchanges,
            "{db:?}: no key issued during the outage"
        );

        // A logout during the outage fails closed: 503, and the cookie stays.
        let cookie_before = cookies_for(&jar, &app).unwrap();
        let logout = client
            .post(format!("{}/logout", app.url()))
            .header("origin", app.url())
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_sign_out_failed_and_cookie_kept(logout, &jar, &app, &cookie_before, &context).await;

        proxy.restore();
        let recovered = until(&format!("{db:?}: recovery"), StatusCode::OK, || async {
            json(me.clone()).await.status()
        })
        .await;
        eprintln!(
            "{db:?}: signed-in requests served again {recovered:?} after the store came back"
        );
        // The refused sign-in completes with the same callback: its flow was not spent.
        let completed = newcomer.get(&callback).send().await.unwrap();
        assert_eq!(completed.status(), StatusCode::SEE_OTHER, "{db:?}");
        assert_eq!(emulator.exchange_count(), exchanges + 1);
        // The logout completes now, and the old cookie stops working.
        let logout = client
            .post(format!("{}/logout", app.url()))
            .header("origin", app.url())
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::SEE_OTHER);
        let copy = reqwest::Client::new()
            .get(&me)
            .header("cookie", &cookie_before)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(copy.status(), StatusCode::UNAUTHORIZED, "{db:?}");
    }
}

#[tokio::test]
async fn the_sign_out_after_a_rejected_key_fails_closed_during_an_outage() {
    let _turn = SERIAL.lock().await;
    let Some(url) = Db::Postgres.url() else {
        return;
    };
    let (proxy, url) = behind_proxy(&url).await;
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let secret = CookieSecret::generate();
    // A long fallback: the key is served from the cache while the store is down.
    let settings = StoreSettings::from(&ModelGatesConfig::new("http://127.0.0.1", secret.clone()));
    let store = postgres_store(&url, settings).await;
    let feed = store.revocations();
    let app = serve(cached(store, feed, LONG_FALLBACK).await, &secret, &emulator).await;
    let (jar, client) = browser();
    testing::sign_in(&client, app.url(), &emulator)
        .await
        .unwrap();
    let cookie = cookies_for(&jar, &app).unwrap();
    proxy.refuse();
    emulator.inject_once(Endpoint::Chat, Fault::Status(401));
    let chat = client
        .post(format!("{}/chat", app.url()))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_sign_out_failed_and_cookie_kept(chat, &jar, &app, &cookie, "after a 401").await;
    proxy.restore();
    emulator.inject_once(Endpoint::Chat, Fault::Status(401));
    let chat = until(
        "the sign-out after 401, once the store is back",
        StatusCode::UNAUTHORIZED,
        || async {
            let response = client
                .post(format!("{}/chat", app.url()))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            let status = response.status();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                emulator.inject_once(Endpoint::Chat, Fault::Status(401));
            }
            status
        },
    )
    .await;
    eprintln!("signed out after the store came back, in {chat:?}");
    let me = client
        .get(format!("{}/me", app.url()))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_truncate_of_the_keys_table_empties_every_instances_cache() {
    let _turn = SERIAL.lock().await;
    let Some(url) = Db::Postgres.url() else {
        return;
    };
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let secret = CookieSecret::generate();
    let settings = StoreSettings::from(&ModelGatesConfig::new("http://127.0.0.1", secret.clone()));
    let mut apps = Vec::new();
    let mut admin = None;
    for _ in 0..2 {
        let store = PostgresStore::connect(&url, settings.clone())
            .await
            .unwrap();
        // Long bounds: only the TRUNCATE announcement explains a refusal.
        let feed = store.revocations();
        admin = Some(store.clone());
        apps.push(serve(cached(store, feed, LONG_FALLBACK).await, &secret, &emulator).await);
    }
    let client = testing::client();
    testing::sign_in(&client, apps[0].url(), &emulator)
        .await
        .unwrap();
    for app in &apps {
        let me = client
            .get(format!("{}/me", app.url()))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK, "cached on both instances");
    }
    modelgates_stores::sqlx::query("TRUNCATE modelgates_keys")
        .execute(admin.unwrap().pool())
        .await
        .unwrap();
    for app in &apps {
        let took = until(
            "a session truncated away",
            StatusCode::UNAUTHORIZED,
            || async {
                client
                    .get(format!("{}/me", app.url()))
                    .header("accept", "application/json")
                    .send()
                    .await
                    .unwrap()
                    .status()
            },
        )
        .await;
        assert!(
            took < Duration::from_secs(1),
            "refused {took:?} after the TRUNCATE"
        );
    }
}

/// This machine's address on its network (not loopback), where a fake server can listen and
/// the TLS rules must treat it as another machine; `None` without one.
fn own_network_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn database_urls_that_would_go_out_in_clear_text_are_refused_before_connecting() {
    let Some(ip) = own_network_ip() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI has a network address"
        );
        eprintln!("\n!!!!!!!! SKIPPED: no network address to stand for another machine !!!!!!!!\n");
        return;
    };
    // A fake database on this machine's network address: it counts whoever connects.
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = connections.clone();
    let fake = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let settings = StoreSettings::from(&ModelGatesConfig::new(
        "http://127.0.0.1",
        CookieSecret::generate(),
    ));
    for url in [
        format!("postgres://app:pw@127.0.0.1:5432/m?host={ip}&port={port}"),
        format!("postgres://app:pw@{ip}:{port}/m?sslmode=require&sslmode=prefer"),
        format!("postgres://app:pw@{ip}:{port}/m?sslmode=verify-full&ssl-mode=disable"),
        format!("postgres://app:pw@localhost:{port}/m?hostaddr={ip}"),
        format!("postgres://app:pw@{ip}:{port}/m"),
    ] {
        let error = PostgresStore::connect(&url, settings.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("clear text") || error.contains("more than once"),
            "{url}: {error}"
        );
        assert!(!error.contains("pw"), "no password in the message: {error}");
    }
    for url in [
        format!("redis://{ip}:{port}/"),
        format!("valkey://{ip}:{port}/"),
        format!("rediss://{ip}:{port}/#insecure"),
    ] {
        let error = RedisStore::connect(&url, settings.clone())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("clear text"), "{url}: {error}");
    }
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing connected"
    );
    // The probe can see a connection: the explicit plaintext request does connect.
    let explicit = format!("postgres://app:pw@{ip}:{port}/m?sslmode=disable");
    assert!(PostgresStore::connect(&explicit, settings).await.is_err());
    assert!(connections.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    fake.abort();
}

/// example-chat's `/readyz` on a store behind the proxy: ready, then 503 with `Retry-After`
/// and the reason while the store refuses connections, then ready again without a restart;
/// `/healthz` answers throughout.
#[tokio::test]
async fn readyz_is_unavailable_while_the_store_is_down_and_ready_again_after() {
    let _serial = SERIAL.lock().await;
    for db in [Db::Postgres, Db::Redis] {
        let Some(url) = db.url() else { continue };
        let (proxy, proxied) = behind_proxy(&url).await;
        let secret = CookieSecret::generate();
        let settings =
            StoreSettings::from(&ModelGatesConfig::new("http://127.0.0.1", secret.clone()));
        let app = match db {
            Db::Postgres => {
                let store = postgres_store(&proxied, settings).await;
                serve_health(store, &secret).await
            }
            Db::Redis => {
                let store = redis_store(&proxied, settings).await;
                serve_health(CachingStore::new(store), &secret).await
            }
        };
        let client = testing::client();
        let probe = |path: &'static str| client.get(format!("{}{path}", app.url())).send();

        assert_eq!(probe("/readyz").await.unwrap().status(), 200, "{db:?}");
        proxy.refuse();
        let down = probe("/readyz").await.unwrap();
        assert_eq!(down.status(), 503, "{db:?}");
        assert_eq!(down.headers()["retry-after"], "5", "{db:?}");
        let body: serde_json::Value = down.json().await.unwrap();
        assert_eq!(body["status"], "unavailable", "{db:?}");
        let reason = body["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("the key store does not answer"),
            "{reason}"
        );
        assert!(
            !reason.contains(&proxied),
            "no URL (and no password) in the reason"
        );
        assert_eq!(probe("/healthz").await.unwrap().status(), 200, "{db:?}");

        proxy.restore();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if probe("/readyz").await.unwrap().status() == 200 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{db:?}: ready again after the outage"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// example-chat's health routes for a layer keeping keys in `store`, served.
async fn serve_health<K: KeyStore>(store: K, secret: &CookieSecret) -> TestApp {
    let secret = secret.clone();
    testing::serve(move |public_url| {
        let auth = ModelGatesAuth::new(ModelGatesConfig::new(public_url, secret));
        example_chat::observability::health_routes::<_, ()>(auth.with_store(store))
    })
    .await
    .unwrap()
}
