//! What an operator sees: Prometheus metrics on their own listener (`METRICS_ADDR`), and the
//! health endpoints a load balancer probes.
//!
//! * `GET /healthz`: `200 {"status": "alive"}` while the process serves requests.
//! * `GET /readyz`: `200 {"status": "ready"}` when the key store answers
//!   ([`ModelGatesAuth::ready`]); `503 {"status": "unavailable", "reason": …}` with
//!   `Retry-After` otherwise. The configuration is checked before the app listens (it refuses
//!   to start with a setting that cannot work), so a serving instance's configuration is sound.
//!
//! Both sit outside the layer: a probe carries no cookie, gets none, and never reaches
//! ModelGates.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use modelgates_axum::ModelGatesAuth;
use modelgates_axum::store::KeyStore;
use serde_json::json;

/// The buckets of the `_seconds` histograms: from a fast exchange on loopback to a slow model's
/// first token.
const SECONDS_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How often the recorder's histograms are compacted.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// `/healthz` and `/readyz` for `auth`'s store, to merge outside the layer.
pub fn health_routes<K: KeyStore, S: Clone + Send + Sync + 'static>(
    auth: ModelGatesAuth<K>,
) -> Router<S> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "alive" })) }),
        )
        .route("/readyz", get(move || readiness(auth.clone())))
}

async fn readiness<K: KeyStore>(auth: ModelGatesAuth<K>) -> Response {
    match auth.ready().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready: the key store does not answer");
            let body = json!({
                "status": "unavailable",
                "reason": format!("the key store does not answer: {error}"),
            });
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}

/// Installs the Prometheus recorder as the process's global recorder and describes the
/// crate's series; returns the handle that renders them. Call it once, before the layer is
/// used.
///
/// # Errors
///
/// When another recorder was installed first.
pub fn install_prometheus() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &SECONDS_BUCKETS)
        .map_err(|error| error.to_string())?
        .install_recorder()
        .map_err(|error| format!("cannot install the metrics recorder: {error}"))?;
    modelgates_axum::observe::describe();
    Ok(handle)
}

/// Serves `GET /metrics` (Prometheus text format) from `handle` on `listener` until the
/// process ends, and runs the recorder's upkeep.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
) -> std::io::Result<()> {
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(UPKEEP_EVERY);
        loop {
            ticks.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    axum::serve(listener, app).await
}

/// Binds `METRICS_ADDR`.
///
/// # Errors
///
/// When the address cannot be listened on, naming it.
pub async fn bind_metrics(address: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| format!("METRICS_ADDR: cannot listen on {address}: {error}"))
}
