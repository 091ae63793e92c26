//! A signed-in request through the layer on each key store.
//!
//! ```text
//! cargo bench -p modelgates-axum --bench stores
//! ```
//!
//! Each request goes through `tower::ServiceExt::oneshot` on an axum `Router` whose handler
//! uses the `ModelGatesKey` extractor, on a current-thread tokio runtime, with a key cookie from
//! a real sign-in against an in-process emulator. The database stores run against the servers
//! `.ci/run` starts on loopback (`MODELGATES_TEST_POSTGRES_URL`, `MODELGATES_TEST_REDIS_URL`,
//! defaulting to the URLs `.ci/run` uses); a store whose server cannot be reached is skipped
//! with a message. SQLite uses a file in the temporary directory.
//!
//! Before the timings, the bench prints the heap allocations of one request on each store.
//!
//! The `linked_job` group is a background job of linked accounts on each server-side store:
//! 1,000 app users linked (`KeyStore::save_link`), then one iteration pages through them
//! (`ModelGatesAuth::linked_accounts(100)`) and looks up each one's key
//! (`ModelGatesAuth::key_for`), calling nothing on ModelGates. Divide its time by 1,000 for the
//! cost of one key lookup.

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use modelgates_axum::ModelGatesAuth;
use modelgates_axum::oauth_core::ApiKey;
use modelgates_axum::store::{CachingStore, KeyStore, MemoryStore, StoredKey};
use modelgates_emulator::Emulator;
use modelgates_stores::{PostgresStore, RedisStore, SqliteStore};
use tower::ServiceExt as _;

mod support;
use support::{allocations, config, get_request, runtime, sign_in, with_key};

const POSTGRES: &str = "postgres://modelgates:modelgates@127.0.0.1:5432/modelgates";
const REDIS: &str = "redis://127.0.0.1:6379/";

/// A router with `store` behind the layer, and a signed-in key cookie for it.
struct Case {
    name: &'static str,
    app: Router,
    cookie: String,
}

async fn case<K: KeyStore>(
    name: &'static str,
    store: K,
    config: modelgates_axum::ModelGatesConfig,
) -> Case {
    let app = Router::new()
        .route("/me", get(with_key))
        .layer(ModelGatesAuth::new(config).with_store(store));
    let cookie = sign_in(&app).await;
    Case { name, app, cookie }
}

fn url(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// Every store that can be reached here.
async fn cases(emulator: &Emulator) -> Vec<Case> {
    let base = emulator.base_url();
    let mut cases = vec![
        case("cookie", modelgates_axum::store::CookieStore, config(base)).await,
        case("memory", MemoryStore::default(), config(base)).await,
    ];
    let sqlite = std::env::temp_dir().join(format!("modelgates-bench-{}.db", std::process::id()));
    let config_sqlite = config(base);
    let store = SqliteStore::connect(&format!("sqlite:{}", sqlite.display()), &config_sqlite)
        .await
        .expect("a SQLite file in the temporary directory");
    cases.push(case("sqlite", store.clone(), config_sqlite.clone()).await);
    // One machine: the cache without a feed.
    cases.push(case("sqlite_cached", CachingStore::new(store), config_sqlite).await);

    let config_pg = config(base);
    let postgres = url("MODELGATES_TEST_POSTGRES_URL", POSTGRES);
    match PostgresStore::connect(&postgres, &config_pg).await {
        Ok(store) => {
            let cached = store.cached().await.expect("LISTEN");
            cases.push(case("postgres", store, config_pg.clone()).await);
            cases.push(case("postgres_cached", cached, config_pg).await);
        }
        Err(error) => eprintln!("skipping postgres: {error}"),
    }
    let config_redis = config(base);
    let redis = url("MODELGATES_TEST_REDIS_URL", REDIS);
    match RedisStore::connect(&redis, &config_redis).await {
        Ok(store) => {
            let cached = store.cached().await.expect("SUBSCRIBE");
            cases.push(case("redis", store, config_redis.clone()).await);
            cases.push(case("redis_cached", cached, config_redis).await);
        }
        Err(error) => eprintln!("skipping redis: {error}"),
    }
    cases
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let emulator = rt.block_on(Emulator::start_auto_approve()).unwrap();
    let cases = rt.block_on(cases(&emulator));

    println!("\nheap allocations per signed-in request (one request after a warm-up):");
    for case in &cases {
        let count = allocations(&rt, &case.app, "/me", Some(&case.cookie));
        println!("  {:<20} {count:>4}", case.name);
    }
    println!();

    let mut group = c.benchmark_group("signed_in_by_store");
    for case in &cases {
        group.bench_function(case.name, |b| {
            b.to_async(&rt).iter(|| {
                case.app
                    .clone()
                    .oneshot(get_request("/me", Some(&case.cookie)))
            });
        });
    }
    group.finish();
}

/// The app users of the linked-job bench.
const LINKED_USERS: usize = 1_000;

/// A linked-mode layer on one store, with [`LINKED_USERS`] users linked.
type Job = Box<dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = usize>>>>;

struct LinkedCase {
    name: &'static str,
    /// One pass of the job: how many keys it found.
    run: Job,
    /// Disconnects the case's users (a shared database keeps links for the key lifetime).
    clean: Job,
}

async fn linked_case<K: KeyStore>(
    name: &'static str,
    store: K,
    config: modelgates_axum::ModelGatesConfig,
) -> LinkedCase {
    // A prefix per run, so that a shared database's earlier runs are not paged through.
    let prefix = format!("bench-{}-{name}-", std::process::id());
    for user in 0..LINKED_USERS {
        let key = StoredKey::new(ApiKey::new(format!("sk-mg-v1-bench-{user:04}")), None);
        store
            .save_link(&format!("{prefix}{user:04}"), key)
            .await
            .expect("save_link");
    }
    let auth = ModelGatesAuth::new(config.with_linked_accounts(|_| None)).with_store(store);
    let (cleaned, clean_prefix) = (auth.clone(), prefix.clone());
    let clean = move || {
        let (auth, prefix) = (cleaned.clone(), clean_prefix.clone());
        Box::pin(async move {
            for user in 0..LINKED_USERS {
                let account = format!("{prefix}{user:04}");
                auth.disconnect(&account).await.expect("disconnect");
            }
            LINKED_USERS
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = usize>>>
    };
    let run = move || {
        let (auth, prefix) = (auth.clone(), prefix.clone());
        Box::pin(async move { linked_job(&auth, &prefix).await })
            as std::pin::Pin<Box<dyn std::future::Future<Output = usize>>>
    };
    LinkedCase {
        name,
        run: Box::new(run),
        clean: Box::new(clean),
    }
}

/// Pages through the users under `prefix` and looks up each one's key: how many were found.
async fn linked_job<K: KeyStore>(auth: &ModelGatesAuth<K>, prefix: &str) -> usize {
    let mut found = 0;
    let mut pages = auth.linked_accounts(100);
    while let Some(page) = pages.next_page().await.expect("linked_accounts") {
        for account in page.iter().filter(|account| account.starts_with(prefix)) {
            let key = auth.key_for(account).await.expect("key_for");
            found += usize::from(std::hint::black_box(key).is_some());
        }
    }
    found
}

async fn linked_cases(emulator: &Emulator) -> Vec<LinkedCase> {
    let base = emulator.base_url();
    let mut cases = vec![linked_case("memory", MemoryStore::default(), config(base)).await];
    let sqlite = std::env::temp_dir().join(format!("modelgates-linked-{}.db", std::process::id()));
    let config_sqlite = config(base);
    let store = SqliteStore::connect(&format!("sqlite:{}", sqlite.display()), &config_sqlite)
        .await
        .expect("a SQLite file in the temporary directory");
    cases.push(linked_case("sqlite", store.clone(), config_sqlite.clone()).await);
    cases.push(linked_case("sqlite_cached", CachingStore::new(store), config_sqlite).await);
    let config_pg = config(base);
    match PostgresStore::connect(&url("MODELGATES_TEST_POSTGRES_URL", POSTGRES), &config_pg).await {
        Ok(store) => {
            let cached = store.cached().await.expect("LISTEN");
            cases.push(linked_case("postgres", store, config_pg.clone()).await);
            cases.push(linked_case("postgres_cached", cached, config_pg).await);
        }
        Err(error) => eprintln!("skipping postgres: {error}"),
    }
    let config_redis = config(base);
    match RedisStore::connect(&url("MODELGATES_TEST_REDIS_URL", REDIS), &config_redis).await {
        Ok(store) => {
            let cached = store.cached().await.expect("SUBSCRIBE");
            cases.push(linked_case("redis", store, config_redis.clone()).await);
            cases.push(linked_case("redis_cached", cached, config_redis).await);
        }
        Err(error) => eprintln!("skipping redis: {error}"),
    }
    cases
}

fn linked(c: &mut Criterion) {
    let rt = runtime();
    let emulator = rt.block_on(Emulator::start_auto_approve()).unwrap();
    let cases = rt.block_on(linked_cases(&emulator));
    let mut group = c.benchmark_group("linked_job");
    group.sample_size(10);
    for case in &cases {
        assert_eq!(rt.block_on((case.run)()), LINKED_USERS, "{}", case.name);
        group.bench_function(case.name, |b| b.to_async(&rt).iter(|| (case.run)()));
    }
    group.finish();
    for case in &cases {
        rt.block_on((case.clean)());
    }
}

criterion_group!(stores, benches, linked);
criterion_main!(stores);
