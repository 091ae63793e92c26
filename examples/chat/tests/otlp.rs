//! Feature `otlp`: the real binary with `OTEL_EXPORTER_OTLP_ENDPOINT` pointed at a collector
//! in this test (OTLP/HTTP, protobuf, on 127.0.0.1) sends the layer's spans there after a
//! sign-in, and none of what it sends holds the code or the key.
//!
//! `cargo test -p example-chat --features otlp --test otlp` (`.ci/run` runs it).

#![cfg(feature = "otlp")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use modelgates_axum::testing;
use modelgates_emulator::Emulator;
use support::{banner_value, example_chat, serving};

/// A collector that keeps every body posted to `/v1/traces`.
async fn collector() -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| async move {
            keep.lock().unwrap().push(body);
            // An empty ExportTraceServiceResponse.
            ([("content-type", "application/x-protobuf")], Bytes::new())
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_without_secrets() {
    let emulator = Emulator::start_auto_approve().await.unwrap();
    let (endpoint, received) = collector().await;
    let (lines, _guard) = serving(
        example_chat()
            .env("MODELGATES_BASE_URL", emulator.base_url())
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", "100"),
    );
    let app = banner_value(&lines, "App: ");
    let client = testing::client();
    testing::sign_in(&client, &app, &emulator).await.unwrap();

    // Poll until the batch with the callback's spans has arrived.
    let deadline = Instant::now() + Duration::from_secs(20);
    let everything = loop {
        let everything: Vec<u8> = received.lock().unwrap().concat();
        if contains(&everything, b"modelgates.exchange") {
            break everything;
        }
        assert!(
            Instant::now() < deadline,
            "no exchange span reached the collector"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for name in [
        &b"modelgates.login"[..],
        b"modelgates.callback",
        // The exchange's client span, named by its `otel.name` ("POST").
        b"/api/v1/auth/keys",
        b"http.route",
        b"example-chat",
    ] {
        assert!(
            contains(&everything, name),
            "{} in what was sent",
            String::from_utf8_lossy(name)
        );
    }
    // The request spans (tower-http's, made by `request_span`) carry the path with the flow
    // id hidden.
    assert!(contains(&everything, b"/callback/{flow_id}"));
    let key = emulator.issued_keys().last().unwrap().key.clone();
    let code = emulator.issued_codes().last().unwrap().clone();
    for secret in [key, code] {
        assert!(
            !contains(&everything, secret.as_bytes()),
            "a secret was exported"
        );
    }
}
