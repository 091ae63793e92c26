//! `cargo run -p example-chat`: a chat page whose users pay for their own model calls, on the
//! embedded ModelGates emulator unless `MODELGATES_BASE_URL` is set. The crate documentation
//! lists every variable.
//!
//! The whole app is `app` below: the app's routes (whose handlers take the signed-in user's
//! key with the `ModelGatesKey` extractor and stream replies with `key.stream_chat(…)`, see
//! `handlers.rs`), a same-origin guard on them, and the ModelGates layer in front of it all.

use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::serve::ListenerExt as _;
use example_chat::observability::{bind_metrics, health_routes, install_prometheus, serve_metrics};
use example_chat::stores::Store;
use example_chat::{AppState, Settings, routes};
use modelgates_axum::ModelGatesAuth;
use modelgates_axum::store::KeyStore;
use modelgates_emulator::Emulator;
use tower_http::trace::TraceLayer;

/// The app: its routes behind the layer, keys kept in `auth`'s store; the health probes
/// beside it.
fn app<K: KeyStore>(auth: ModelGatesAuth<K>, state: AppState) -> Router {
    // Each request a span, the layer's spans inside it; never the callback's code or flow id.
    let request_span = TraceLayer::new_for_http().make_span_with(auth.request_span());
    let chat = routes() // GET /, POST /chat, GET /usage
        .layer(auth.same_origin()) // no other site can post to /chat with the user's cookie
        .layer(auth.clone()) // mounts /login, /callback/…, /logout; tells handlers who is signed in
        .layer(request_span)
        .with_state(state);
    health_routes(auth) // GET /healthz, /readyz: outside the layer, no cookies
        .fallback_service(chat)
}

async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    // The recorder first, so that everything the layer records reaches it.
    let metrics = match settings.metrics_addr {
        Some(address) => Some((bind_metrics(address).await?, install_prometheus()?)),
        None => None,
    };
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, settings.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let port = listener.local_addr()?.port();
    let public_url = settings
        .public_url
        .unwrap_or_else(|| format!("http://localhost:{port}"));
    // No ModelGates named: run one in this process, so the app works with no network at all.
    let (emulator, base_url) = match settings.base_url {
        Some(base_url) => (None, base_url),
        None => {
            let emulator = Emulator::builder().start().await?;
            let base_url = emulator.base_url().to_owned();
            (Some(emulator), base_url)
        }
    };
    let config = example_chat::config(&public_url, &base_url)?;
    let auth = ModelGatesAuth::try_new(config.clone())?;
    let spec = settings.key_store.as_deref().unwrap_or("cookie");
    let store = Store::connect(spec, settings.key_cache, &config).await?;
    let label = store.label(spec);
    let state = AppState::new(settings.model).with_key_limit(config.key_limit());
    let streams = auth.open_streams();
    let app = match store {
        Store::Cookie => app(auth, state),
        Store::Memory(store) => app(auth.with_store(store), state),
        Store::Sqlite(store) => app(auth.with_store(store), state),
        Store::Postgres(store) => app(auth.with_store(store), state),
        Store::CachedPostgres(store) => app(auth.with_store(store), state),
        Store::Redis(store) => app(auth.with_store(store), state),
        Store::CachedRedis(store) => app(auth.with_store(store), state),
    };
    match &emulator {
        Some(_) => println!("ModelGates emulator (consent page, no real money): {base_url}"),
        None => println!("ModelGates: {base_url}"),
    }
    println!("Keys kept in: {label}");
    if let Some((listener, handle)) = metrics {
        println!("Metrics: http://{}/metrics", listener.local_addr()?);
        tokio::spawn(async move {
            if let Err(error) = serve_metrics(listener, handle).await {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
    // Printed last: the App line means "ready to serve".
    println!("App: {public_url} (listening on 127.0.0.1:{port})");
    // The client's address reaches the layer, which bounds sign-ins per client by it.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let grace = settings.shutdown_grace;
    // Each server-sent event is a small write: without TCP_NODELAY, Nagle's algorithm holds
    // it until the client acknowledges the one before, which a delayed ACK puts off by up to
    // 40 ms on a kept-alive connection.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            stop_requested().await;
            // No new connections from now on; requests under way finish, and replies still
            // streaming get `grace` before they end with an `error` event saying why.
            tracing::info!(?grace, "stopping: finishing the requests under way");
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                streams.close_all();
            });
        })
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM (what a process manager or a rolling restart sends).
async fn stop_requested() {
    #[cfg(unix)]
    {
        let Ok(mut terminate) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() {
    let exporter = match init_tracing() {
        Ok(exporter) => exporter,
        Err(message) => {
            eprintln!("example-chat: {message}");
            std::process::exit(1);
        }
    };
    let result = match Settings::from_env() {
        Ok(settings) => run(settings).await,
        Err(message) => Err(message.into()),
    };
    #[cfg(feature = "otlp")]
    if let Some(exporter) = exporter {
        // Sends the last spans; blocking, so off the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || exporter.shutdown()).await;
    }
    #[cfg(not(feature = "otlp"))]
    let _: Option<Exporter> = exporter;
    if let Err(error) = result {
        eprintln!("example-chat: {error}");
        std::process::exit(1);
    }
}

/// With the `otlp` feature: the exporter to shut down at exit, when one was started.
#[cfg(feature = "otlp")]
type Exporter = example_chat::otlp::Exporter;
/// Without the `otlp` feature there is never an exporter.
#[cfg(not(feature = "otlp"))]
type Exporter = std::convert::Infallible;

/// Logs to stderr, coloured only on a terminal (no escape codes in files and pipes), filtered
/// by `RUST_LOG` (default `info`); with the `otlp` feature and `OTEL_EXPORTER_OTLP_ENDPOINT`
/// set, spans to a collector too.
fn init_tracing() -> Result<Option<Exporter>, String> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry().with(filter).with(logs);
    #[cfg(feature = "otlp")]
    {
        let (layer, exporter) = example_chat::otlp::layer_from_env()?.unzip();
        registry.with(layer).init();
        Ok(exporter)
    }
    #[cfg(not(feature = "otlp"))]
    {
        registry.init();
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some_and(|v| !v.is_empty()) {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set, but example-chat was built without the \
                 `otlp` feature: no span is exported (cargo run -p example-chat --features otlp)"
            );
        }
        Ok(None)
    }
}
