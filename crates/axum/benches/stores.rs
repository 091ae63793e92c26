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

use axum::Router;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use modelgates_axum::ModelGatesAuth;
use modelgates_axum::store::{CachingStore, KeyStore, MemoryStore};
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

criterion_group!(stores, benches);
criterion_main!(stores);
