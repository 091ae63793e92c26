//! What example-chat reads from its environment, as the crate documentation lists it.

use modelgates_axum::ModelGatesConfig;
use modelgates_axum::config::ConfigError;

use crate::{APP_TITLE, DEFAULT_MODEL};

/// Settings read from the environment, as the crate documentation lists them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `PORT` (default 3000; 0 picks a free port).
    pub port: u16,
    /// `PUBLIC_URL` (default `http://localhost:$PORT`).
    pub public_url: Option<String>,
    /// `MODELGATES_BASE_URL` (default: start the embedded emulator).
    pub base_url: Option<String>,
    /// `MODELGATES_MODEL` (default `openai/gpt-5.2`).
    pub model: String,
    /// `MODELGATES_KEY_STORE`: `cookie` (default), `memory`, `sqlite:PATH`, `postgres://…` or
    /// `redis://…`.
    pub key_store: Option<String>,
    /// `MODELGATES_KEY_CACHE`: `on` (default) puts a PostgreSQL or Redis store behind its
    /// `CachingStore`, which hears every instance's revocations; `off` asks the database on
    /// every request.
    pub key_cache: bool,
    /// `SHUTDOWN_GRACE_SECS` (default 10): on SIGTERM or Ctrl-C, how long replies still
    /// streaming may go on before they end with an `error` event saying the server restarts.
    pub shutdown_grace: std::time::Duration,
    /// `METRICS_ADDR` (e.g. `127.0.0.1:9100`): where Prometheus scrapes `/metrics`; unset, no
    /// metrics listener.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Settings {
    /// Reads `PORT`, `PUBLIC_URL`, `MODELGATES_BASE_URL`, `MODELGATES_MODEL`,
    /// `MODELGATES_KEY_STORE`, `MODELGATES_KEY_CACHE`, `SHUTDOWN_GRACE_SECS` and
    /// `METRICS_ADDR`.
    ///
    /// # Errors
    ///
    /// When `PORT` is not a port number, `MODELGATES_KEY_CACHE` is neither `on` nor `off`,
    /// `SHUTDOWN_GRACE_SECS` is not a whole number of seconds, or `METRICS_ADDR` is not an
    /// `IP:PORT` address.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let port = match var("PORT") {
            Some(port) => port
                .trim()
                .parse()
                .map_err(|_| format!("PORT must be a port number, not `{port}`"))?,
            None => 3000,
        };
        let key_cache = match var("MODELGATES_KEY_CACHE").as_deref().map(str::trim) {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(format!(
                    "MODELGATES_KEY_CACHE must be `on` or `off`, not `{other}`"
                ));
            }
        };
        let shutdown_grace = match var("SHUTDOWN_GRACE_SECS") {
            Some(secs) => secs.trim().parse().map_err(|_| {
                format!("SHUTDOWN_GRACE_SECS must be a whole number of seconds, not `{secs}`")
            })?,
            None => 10,
        };
        let metrics_addr = match var("METRICS_ADDR") {
            Some(address) => Some(address.trim().parse().map_err(|_| {
                format!("METRICS_ADDR must be an IP:PORT address such as 127.0.0.1:9100, not `{address}`")
            })?),
            None => None,
        };
        Ok(Self {
            port,
            metrics_addr,
            shutdown_grace: std::time::Duration::from_secs(shutdown_grace),
            public_url: var("PUBLIC_URL"),
            base_url: var("MODELGATES_BASE_URL"),
            model: var("MODELGATES_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            key_store: var("MODELGATES_KEY_STORE"),
            key_cache,
        })
    }
}

/// Builds the layer's configuration: the `MODELGATES_*` variables, with the public URL and
/// base URL decided by the caller.
///
/// # Errors
///
/// A [`ConfigError`] naming the variable to fix.
pub fn config(public_url: &str, base_url: &str) -> Result<ModelGatesConfig, ConfigError> {
    let config = ModelGatesConfig::from_lookup(|name| match name {
        "MODELGATES_PUBLIC_URL" => Some(public_url.to_owned()),
        "MODELGATES_BASE_URL" => Some(base_url.to_owned()),
        "MODELGATES_APP_TITLE" => Some(
            std::env::var(name)
                .ok()
                .filter(|title| !title.trim().is_empty())
                .unwrap_or_else(|| APP_TITLE.to_owned()),
        ),
        other => std::env::var(other).ok(),
    })?;
    Ok(config)
}
