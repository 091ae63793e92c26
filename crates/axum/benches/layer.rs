//! The layer's per-request cost, side by side with what users would build instead.
//!
//! ```text
//! cargo bench -p modelgates-axum --bench layer
//! ```
//!
//! Every request goes through `tower::ServiceExt::oneshot` on an axum `Router`, on a
//! current-thread tokio runtime. Groups:
//!
//! 1. `signed_out`: a request without cookies through the layer, against the same router
//!    without it.
//! 2. `signed_in`: a request with a key cookie, the `ModelGatesKey` extractor used, against the
//!    same work by hand with axum-extra's `PrivateCookieJar`, and against tower-sessions with
//!    its `MemoryStore` holding the key.
//! 3. `signed_in_metrics`: the signed-in request again, with no metrics recorder and with
//!    metrics-exporter-prometheus' recorder installed (as this thread's recorder), on the
//!    cookie store and on a `CachingStore` over a `MemoryStore` (which counts a cache hit on
//!    every request).
//! 4. `flow`: `GET /login`, and `GET /callback` (with its key exchange over loopback HTTP to an
//!    in-process emulator).
//!
//! Before the timings, the bench prints the heap allocations of one request of each kind,
//! counted by `allocation-counter`.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::routing::get;
use axum_extra::extract::cookie::{Key, PrivateCookieJar};
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use http::Request;
use modelgates_axum::ModelGatesAuth;
use modelgates_axum::oauth_core::ApiKey;
use modelgates_emulator::Emulator;
use tower::ServiceExt as _;
use tower_sessions::{MemoryStore, Session, SessionManagerLayer};

mod support;

/// The key the hand-written alternatives hold.
const KEY: &str = "sk-mg-v1-benchmarkbenchmarkbenchmarkbenchmark0";
use support::{
    allocations, config, cookie_pair, get_request, runtime, sign_in, start_sign_in, with_key,
};

async fn ok() -> &'static str {
    "ok"
}

#[derive(Clone)]
struct JarState {
    key: Key,
}

impl FromRef<JarState> for Key {
    fn from_ref(state: &JarState) -> Self {
        state.key.clone()
    }
}

async fn with_private_jar(jar: PrivateCookieJar) -> Result<&'static str, http::StatusCode> {
    let cookie = jar.get("key").ok_or(http::StatusCode::UNAUTHORIZED)?;
    std::hint::black_box(ApiKey::new(cookie.value()));
    Ok("ok")
}

async fn with_session(session: Session) -> Result<&'static str, http::StatusCode> {
    let key: Option<String> = session
        .get("key")
        .await
        .map_err(|_| http::StatusCode::INTERNAL_SERVER_ERROR)?;
    let key = key.ok_or(http::StatusCode::UNAUTHORIZED)?;
    std::hint::black_box(ApiKey::new(key));
    Ok("ok")
}

async fn store_session_key(session: Session) -> &'static str {
    session.insert("key", KEY).await.unwrap();
    "ok"
}

/// Every router and cookie the benches need.
struct Setup {
    bare: Router,
    noop_layered: Router,
    layered: Router,
    wrapped: modelgates_axum::layer::ModelGatesAuthService<Router>,
    key_cookie: String,
    jar: Router,
    jar_cookie: String,
    sessions: Router,
    session_cookie: String,
}

fn setup(rt: &tokio::runtime::Runtime, emulator: &Emulator) -> Setup {
    let bare = Router::new().route("/", get(ok));
    // The cost of any layer applied with `Router::layer`: axum boxes each route's service.
    let noop_layered = Router::new()
        .route("/", get(ok))
        .layer(tower::util::MapRequestLayer::new(
            |request: Request<Body>| request,
        ));
    let wrapped = tower_layer::Layer::layer(
        &ModelGatesAuth::new(config(emulator.base_url())),
        bare.clone(),
    );
    let layered = Router::new()
        .route("/", get(ok))
        .route("/me", get(with_key))
        .layer(ModelGatesAuth::new(config(emulator.base_url())));
    let key_cookie = rt.block_on(sign_in(&layered));

    let jar_key = Key::generate();
    let jar = Router::new()
        .route("/me", get(with_private_jar))
        .with_state(JarState {
            key: jar_key.clone(),
        });
    let jar_cookie = {
        let mut jar = cookie::CookieJar::new();
        jar.private_mut(&jar_key)
            .add(cookie::Cookie::new("key", KEY));
        format!("key={}", jar.get("key").unwrap().value())
    };

    let sessions = Router::new()
        .route("/me", get(with_session))
        .route("/store", get(store_session_key))
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false));
    let session_cookie = rt.block_on(async {
        let response = sessions
            .clone()
            .oneshot(get_request("/store", None))
            .await
            .unwrap();
        cookie_pair(&response, "id")
    });
    Setup {
        bare,
        noop_layered,
        layered,
        wrapped,
        key_cookie,
        jar,
        jar_cookie,
        sessions,
        session_cookie,
    }
}

/// As [`allocations`], for the layer wrapped around the whole router.
fn allocations_wrapped(
    rt: &tokio::runtime::Runtime,
    service: &modelgates_axum::layer::ModelGatesAuthService<Router>,
) -> u64 {
    let send = || {
        rt.block_on(service.clone().oneshot(get_request("/", None)))
            .unwrap()
    };
    let _ = send();
    allocation_counter::measure(|| {
        std::hint::black_box(send());
    })
    .count_total
}

fn report_allocations(rt: &tokio::runtime::Runtime, s: &Setup) {
    let empty = allocations(rt, &s.bare, "/", None);
    let rows = [
        ("signed-out, no layer", empty),
        (
            "signed-out, no-op layer (Router::layer)",
            allocations(rt, &s.noop_layered, "/", None),
        ),
        (
            "signed-out, ModelGatesAuth (Router::layer)",
            allocations(rt, &s.layered, "/", None),
        ),
        (
            "signed-out, ModelGatesAuth around the Router",
            allocations_wrapped(rt, &s.wrapped),
        ),
        (
            "signed-in, ModelGatesAuth + ModelGatesKey",
            allocations(rt, &s.layered, "/me", Some(&s.key_cookie)),
        ),
        (
            "signed-in, PrivateCookieJar by hand",
            allocations(rt, &s.jar, "/me", Some(&s.jar_cookie)),
        ),
        (
            "signed-in, tower-sessions MemoryStore",
            allocations(rt, &s.sessions, "/me", Some(&s.session_cookie)),
        ),
        ("GET /login", allocations(rt, &s.layered, "/login", None)),
    ];
    println!("\nheap allocations per request (one request after a warm-up):");
    for (name, count) in rows {
        println!(
            "  {name:<45} {count:>4}  ({:+} vs. the bare router)",
            count as i64 - empty as i64
        );
    }
    println!();
}

/// One `GET path` through a clone of `service` (as axum clones a route's service per
/// request), polled to completion without a runtime: for services that answer at once.
fn answer_at_once<S>(service: &S, path: &str) -> Result<S::Response, S::Error>
where
    S: tower::Service<Request<Body>> + Clone,
{
    service
        .clone()
        .oneshot(get_request(path, None))
        .now_or_never()
        .expect("the service answers without a runtime")
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let emulator = rt.block_on(Emulator::start_auto_approve()).unwrap();
    let s = setup(&rt, &emulator);
    report_allocations(&rt, &s);

    let mut group = c.benchmark_group("signed_out");
    group.bench_function("no_layer", |b| {
        b.to_async(&rt)
            .iter(|| s.bare.clone().oneshot(get_request("/", None)));
    });
    group.bench_function("noop_layer", |b| {
        b.to_async(&rt)
            .iter(|| s.noop_layered.clone().oneshot(get_request("/", None)));
    });
    group.bench_function("modelgates_auth", |b| {
        b.to_async(&rt)
            .iter(|| s.layered.clone().oneshot(get_request("/", None)));
    });
    group.bench_function("modelgates_auth_around_router", |b| {
        b.to_async(&rt)
            .iter(|| s.wrapped.clone().oneshot(get_request("/", None)));
    });
    group.finish();

    // The layer alone, around a service that answers at once: polled to completion without a
    // runtime, so the difference is the layer's own work.
    let mut group = c.benchmark_group("signed_out_isolated");
    let answer = tower::service_fn(|_request: Request<Body>| {
        std::future::ready(Ok::<_, std::convert::Infallible>(http::Response::new(
            Body::empty(),
        )))
    });
    let guarded =
        tower_layer::Layer::layer(&ModelGatesAuth::new(config(emulator.base_url())), answer);
    group.bench_function("inner_service_alone", |b| {
        b.iter(|| answer_at_once(&answer, "/"));
    });
    // The floor of any layer with shared state: a pass-through that holds an `Arc`, cloned
    // per request as axum clones a route's service (and as the layer's own bench below is).
    let shared = std::sync::Arc::new(());
    let pass_through = tower::util::MapRequestLayer::new(move |request: Request<Body>| {
        let _shared = &shared;
        request
    });
    let passed = tower_layer::Layer::layer(&pass_through, answer);
    group.bench_function("shared_state_pass_through_around_it", |b| {
        b.iter(|| answer_at_once(&passed, "/"));
    });
    group.bench_function("modelgates_auth_around_it", |b| {
        b.iter(|| answer_at_once(&guarded, "/"));
    });
    group.bench_function("login_without_runtime", |b| {
        b.iter(|| answer_at_once(&guarded, "/login"));
    });
    group.finish();

    let mut group = c.benchmark_group("signed_in");
    group.bench_function("modelgates_auth", |b| {
        b.to_async(&rt).iter(|| {
            s.layered
                .clone()
                .oneshot(get_request("/me", Some(&s.key_cookie)))
        });
    });
    group.bench_function("private_cookie_jar", |b| {
        b.to_async(&rt).iter(|| {
            s.jar
                .clone()
                .oneshot(get_request("/me", Some(&s.jar_cookie)))
        });
    });
    group.bench_function("tower_sessions_memory_store", |b| {
        b.to_async(&rt).iter(|| {
            s.sessions
                .clone()
                .oneshot(get_request("/me", Some(&s.session_cookie)))
        });
    });
    group.finish();

    signed_in_metrics(c, &rt, &emulator, &s);

    let mut group = c.benchmark_group("flow");
    group.bench_function("login", |b| {
        b.to_async(&rt)
            .iter(|| s.layered.clone().oneshot(get_request("/login", None)));
    });
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("callback_with_exchange", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let app = s.layered.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (flow, callback) = start_sign_in(&app).await;
                    let request = get_request(&callback, Some(&flow));
                    let started = Instant::now();
                    let response = app.clone().oneshot(request).await.unwrap();
                    total += started.elapsed();
                    assert_eq!(response.status(), http::StatusCode::SEE_OTHER);
                }
                total
            }
        });
    });
    group.finish();
}

/// The signed-in request without a recorder and with the Prometheus recorder, on the cookie
/// store and on a cached memory store.
fn signed_in_metrics(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    emulator: &Emulator,
    s: &Setup,
) {
    let store =
        modelgates_axum::store::CachingStore::new(modelgates_axum::store::MemoryStore::default());
    let cached = Router::new()
        .route("/me", get(with_key))
        .layer(ModelGatesAuth::new(config(emulator.base_url())).with_store(store));
    let cached_cookie = rt.block_on(sign_in(&cached));
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let cases = [
        ("cookie_store", &s.layered, &s.key_cookie),
        ("cached_memory_store", &cached, &cached_cookie),
    ];
    let mut group = c.benchmark_group("signed_in_metrics");
    for (name, router, cookie) in cases {
        group.bench_function(format!("{name}/no_recorder"), |b| {
            b.to_async(rt)
                .iter(|| router.clone().oneshot(get_request("/me", Some(cookie))));
        });
        // The runtime is current-thread: every poll happens on this thread, under this guard.
        let _recorder = metrics::set_default_local_recorder(&prometheus);
        group.bench_function(format!("{name}/prometheus"), |b| {
            b.to_async(rt)
                .iter(|| router.clone().oneshot(get_request("/me", Some(cookie))));
        });
    }
    group.finish();
    let rendered = prometheus.handle().render();
    // Empty when a filter left these benchmarks out (the later groups still run).
    assert!(
        rendered.trim().is_empty()
            || rendered.contains("modelgates_key_cache_requests_total{result=\"hit\"}"),
        "the recorder saw the cache hits: {rendered}"
    );
}

criterion_group!(layer, benches);
criterion_main!(layer);
