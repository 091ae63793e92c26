//! Where the keys live: `MODELGATES_KEY_STORE` (`cookie`, `memory`, `sqlite:PATH`,
//! `postgres://…`, `redis://…`) and `MODELGATES_KEY_CACHE` turned into a store.

use modelgates_axum::ModelGatesConfig;
use modelgates_axum::store::{CachingStore, MemoryStore, StoreError};
use modelgates_stores::{PostgresStore, RedisStore, SqliteStore};

/// The store `MODELGATES_KEY_STORE` names, connected. Each is its own type, so the app is
/// built once per kind (see `main.rs`).
pub enum Store {
    /// The encrypted cookie: no server state.
    Cookie,
    /// This process's memory.
    Memory(MemoryStore),
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// PostgreSQL, asked on every request.
    Postgres(PostgresStore),
    /// PostgreSQL behind its cache, which hears every instance's revocations.
    CachedPostgres(CachingStore<PostgresStore>),
    /// Redis, asked on every request.
    Redis(RedisStore),
    /// Redis behind its cache, which hears every instance's revocations.
    CachedRedis(CachingStore<RedisStore>),
}

/// Why the store could not be had.
#[derive(Debug, thiserror::Error)]
pub enum StoreChoiceError {
    /// The name is none of the known kinds.
    #[error(
        "MODELGATES_KEY_STORE `{0}` is not one of cookie, memory, sqlite:PATH, postgres://… or redis://…"
    )]
    Unknown(String),
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Connects the store named `spec` (`cached`: a PostgreSQL or Redis store behind its cache).
    ///
    /// # Errors
    ///
    /// An unknown kind, or a database that cannot be reached or refuses the URL.
    pub async fn connect(
        spec: &str,
        cached: bool,
        config: &ModelGatesConfig,
    ) -> Result<Self, StoreChoiceError> {
        Ok(match spec {
            "cookie" => Self::Cookie,
            "memory" => Self::Memory(MemoryStore::default()),
            url if url.starts_with("sqlite:") => {
                Self::Sqlite(SqliteStore::connect(url, config).await?)
            }
            url if is_postgres(url) => {
                let store = PostgresStore::connect(url, config).await?;
                if cached {
                    Self::CachedPostgres(store.cached().await?)
                } else {
                    Self::Postgres(store)
                }
            }
            url if is_redis(url) => {
                let store = RedisStore::connect(url, config).await?;
                if cached {
                    Self::CachedRedis(store.cached().await?)
                } else {
                    Self::Redis(store)
                }
            }
            other => return Err(StoreChoiceError::Unknown(other.to_owned())),
        })
    }

    /// Where the keys live, for the banner. Database URLs are cut at their scheme so that no
    /// password is printed.
    #[must_use]
    pub fn label(&self, spec: &str) -> String {
        let kind = match self {
            Self::Cookie => return "the encrypted cookie (no server state)".to_owned(),
            Self::Memory(_) => return "this process's memory".to_owned(),
            _ => spec.split(':').next().unwrap_or(spec),
        };
        match self {
            Self::CachedPostgres(_) | Self::CachedRedis(_) => {
                format!("{kind}, cached (revocations heard from every instance)")
            }
            _ => kind.to_owned(),
        }
    }
}

fn is_postgres(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

fn is_redis(store: &str) -> bool {
    [
        "redis://",
        "rediss://",
        "valkey://",
        "valkeys://",
        "redis+unix://",
        "valkey+unix://",
    ]
    .iter()
    .any(|scheme| store.starts_with(scheme))
}
