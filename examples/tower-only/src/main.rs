//! `cargo run -p example-tower-only`: the layer around a plain tower service on
//! http://localhost:3001, on the embedded emulator unless `MODELGATES_BASE_URL` is set.

use modelgates_axum::{ModelGatesAuth, ModelGatesConfig};
use modelgates_emulator::Emulator;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3001);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let public_url = format!("http://localhost:{}", listener.local_addr()?.port());
    let emulator = match std::env::var("MODELGATES_BASE_URL") {
        Ok(_) => None,
        Err(_) => Some(Emulator::builder().start().await?),
    };
    let base_url = emulator.as_ref().map_or_else(
        || std::env::var("MODELGATES_BASE_URL").unwrap_or_default(),
        |e| e.base_url().to_owned(),
    );
    let config = ModelGatesConfig::from_lookup(|name| match name {
        "MODELGATES_PUBLIC_URL" => Some(public_url.clone()),
        "MODELGATES_BASE_URL" => Some(base_url.clone()),
        other => std::env::var(other).ok(),
    })?;
    println!("ModelGates: {base_url}\nApp: {public_url}");
    tokio::select! {
        () = example_tower_only::serve(listener, ModelGatesAuth::try_new(config)?) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
