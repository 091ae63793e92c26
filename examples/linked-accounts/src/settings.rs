//! What example-linked-accounts reads from its environment, as the crate documentation lists it.

use std::time::Duration;

use crate::DEFAULT_MODEL;

/// Settings read from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `PORT` (default 3000; 0 picks a free port).
    pub port: u16,
    /// `PUBLIC_URL` (default `http://localhost:$PORT`).
    pub public_url: Option<String>,
    /// `MODELGATES_BASE_URL` (default: start the embedded emulator).
    pub base_url: Option<String>,
    /// `DATABASE_URL` (default `sqlite:linked-accounts.db`, created if missing).
    pub database_url: String,
    /// `MODELGATES_MODEL` (default `openai/gpt-5.2`).
    pub model: String,
    /// `JOB_INTERVAL_SECS` (default 300): how often the summarising job runs; `None` (0) runs it
    /// only on `POST /jobs/summarise`.
    pub job_interval: Option<Duration>,
}

/// The variable `name`, unless unset or blank.
pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn whole_number<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String> {
    match var(name) {
        Some(value) => value
            .trim()
            .parse()
            .map_err(|_| format!("{name} must be a whole number, not `{value}`")),
        None => Ok(default),
    }
}

impl Settings {
    /// Reads `PORT`, `PUBLIC_URL`, `MODELGATES_BASE_URL`, `DATABASE_URL`, `MODELGATES_MODEL`
    /// and `JOB_INTERVAL_SECS` (the layer reads its own `MODELGATES_*` variables).
    ///
    /// # Errors
    ///
    /// When `PORT` or `JOB_INTERVAL_SECS` is not a whole number, or `DATABASE_URL` is not a
    /// SQLite URL.
    pub fn from_env() -> Result<Self, String> {
        let database_url =
            var("DATABASE_URL").unwrap_or_else(|| "sqlite:linked-accounts.db".to_owned());
        if !database_url.starts_with("sqlite:") {
            return Err(format!(
                "DATABASE_URL must be a SQLite URL such as sqlite:linked-accounts.db, not `{database_url}`"
            ));
        }
        let interval = whole_number("JOB_INTERVAL_SECS", 300)?;
        Ok(Self {
            port: whole_number("PORT", 3000)?,
            public_url: var("PUBLIC_URL"),
            base_url: var("MODELGATES_BASE_URL"),
            database_url,
            model: var("MODELGATES_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            job_interval: (interval > 0).then(|| Duration::from_secs(interval)),
        })
    }
}
