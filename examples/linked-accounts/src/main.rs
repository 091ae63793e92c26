//! `cargo run -p example-linked-accounts`: a notes app with its own accounts that links
//! ModelGates to them, on the embedded emulator unless `MODELGATES_BASE_URL` is set. The crate
//! documentation lists the routes and every variable.

use std::net::{Ipv4Addr, SocketAddr};

use axum::serve::ListenerExt as _;
use example_linked_accounts::Options;
use example_linked_accounts::settings::Settings;
use modelgates_emulator::Emulator;

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn run(settings: Settings) -> Result<(), Error> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, settings.port));
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let port = listener.local_addr()?.port();
    let public_url = settings
        .public_url
        .unwrap_or_else(|| format!("http://localhost:{port}"));
    // No ModelGates named: run one in this process, so the app works with no network at all.
    let (_emulator, base_url) = match settings.base_url {
        Some(base_url) => (None, base_url),
        None => {
            let emulator = Emulator::builder().start().await?;
            let base_url = emulator.base_url().to_owned();
            println!("ModelGates emulator (consent page, no real money): {base_url}");
            (Some(emulator), base_url)
        }
    };
    let options =
        Options::new(&public_url, &base_url, &settings.database_url).with_model(&settings.model);
    let app = example_linked_accounts::build(options).await?;
    if let Some(interval) = settings.job_interval {
        tokio::spawn(example_linked_accounts::job::every(
            app.state.clone(),
            interval,
        ));
    }
    println!("Database: {}", settings.database_url);
    // Printed last: the App line means "ready to serve".
    println!("App: {public_url} (listening on 127.0.0.1:{port})");
    let service = app
        .router
        .into_make_service_with_connect_info::<SocketAddr>();
    // Each server-sent event is a small write: without TCP_NODELAY, Nagle's algorithm holds
    // it until the client acknowledges the one before, which a delayed ACK puts off by up to
    // 40 ms on a kept-alive connection.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, service)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match Settings::from_env() {
        Ok(settings) => run(settings).await,
        Err(message) => Err(message.into()),
    };
    if let Err(error) = result {
        eprintln!("example-linked-accounts: {error}");
        std::process::exit(1);
    }
}
