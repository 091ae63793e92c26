//! Key stores on SQL databases through sqlx: [`PostgresStore`] (feature `postgres`) for many
//! app instances, [`SqliteStore`] (feature `sqlite`) for one machine.
//!
//! The rules: keys are sealed at rest (see [`KeySealer`]); the browser carries only a random
//! session id in a signed cookie, and the table holds only its SHA-256 hash; every row has an
//! expiry, expired rows are never returned and are purged on every save (and by
//! `purge_expired`); logout deletes the row; `revoke` and `revoke_user` delete rows on demand.
//! The schema ships with the crate (`migrations/`) and is applied, idempotently, by `migrate`
//! (called by `connect`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::sealed::{KeySealer, SealedKey, session_hash};
use crate::store::{KeyStore, SessionToken, StoreError, StoredKey, TokenProtection};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn db_error(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |error| StoreError::with_source(format!("{what} failed"), error)
}

/// Generates one store type over one sqlx driver; the SQL is the same for both.
macro_rules! sql_store {
    ($(#[$doc:meta])* $name:ident, $pool:ty, $options:ty, $migration:literal, |$o:ident| $prepare:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            pool: $pool,
            sealer: KeySealer,
            lifetime: Duration,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("sealer", &self.sealer)
                    .field("lifetime", &self.lifetime)
                    .finish_non_exhaustive()
            }
        }

        impl $name {
            /// A store over an existing pool. Call [`Self::migrate`] once before use.
            #[must_use]
            pub fn new(pool: $pool, sealer: KeySealer, lifetime: Duration) -> Self {
                Self { pool, sealer, lifetime }
            }

            /// Connects a pool to `url`, applies the schema, and keeps keys as long as the
            /// layer's key cookie lives, sealed with its secrets.
            ///
            /// # Errors
            ///
            /// When the database cannot be reached or the schema cannot be applied.
            pub async fn connect(url: &str, config: &crate::ModelGatesConfig) -> Result<Self, StoreError> {
                let $o: $options = url
                    .parse()
                    .map_err(|e| StoreError::with_source("the database URL is invalid", e))?;
                let options = $prepare;
                let pool = <$pool>::connect_with(options).await.map_err(db_error("connecting to the database"))?;
                let store = Self::new(pool, KeySealer::from_config(config), config.key_max_age);
                store.migrate().await?;
                Ok(store)
            }

            /// Creates the table and indexes if they do not exist.
            ///
            /// # Errors
            ///
            /// When the statements fail.
            pub async fn migrate(&self) -> Result<(), StoreError> {
                sqlx::raw_sql(include_str!($migration))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error("applying the schema"))?;
                Ok(())
            }

            /// Deletes expired rows; returns how many.
            ///
            /// # Errors
            ///
            /// When the database fails.
            pub async fn purge_expired(&self) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM modelgates_keys WHERE expires_at <= $1")
                    .bind(now())
                    .execute(&self.pool)
                    .await
                    .map_err(db_error("purging expired keys"))?;
                Ok(done.rows_affected())
            }

            /// Removes a session's key: its next request is signed out.
            ///
            /// # Errors
            ///
            /// When the database fails.
            pub async fn revoke(&self, token: &SessionToken) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM modelgates_keys WHERE session_hash = $1")
                    .bind(session_hash(token))
                    .execute(&self.pool)
                    .await
                    .map_err(db_error("revoking a session"))?;
                Ok(())
            }

            /// Removes every key of a ModelGates user, on every device; returns how many.
            ///
            /// # Errors
            ///
            /// When the database fails.
            pub async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM modelgates_keys WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await
                    .map_err(db_error("revoking a user's keys"))?;
                Ok(done.rows_affected())
            }

            /// The pool, for the app's own queries.
            #[must_use]
            pub fn pool(&self) -> &$pool {
                &self.pool
            }
        }

        impl KeyStore for $name {
            const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

            async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
                self.purge_expired().await?;
                let token = SessionToken::random();
                let hash = session_hash(&token);
                let sealed = self.sealer.seal(&key, &hash);
                let issued_at = i64::try_from(key.issued_at).unwrap_or(i64::MAX);
                let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
                sqlx::query(
                    "INSERT INTO modelgates_keys \
                     (session_hash, user_id, key_id, sealed, issued_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&hash)
                .bind(key.user_id.as_deref())
                .bind(&sealed.key_id)
                .bind(&sealed.sealed)
                .bind(issued_at)
                .bind(issued_at.saturating_add(lifetime))
                .execute(&self.pool)
                .await
                .map_err(db_error("saving a key"))?;
                Ok(token)
            }

            async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
                let hash = session_hash(token);
                let row: Option<(String, Vec<u8>)> = sqlx::query_as(
                    "SELECT key_id, sealed FROM modelgates_keys WHERE session_hash = $1 AND expires_at > $2",
                )
                .bind(&hash)
                .bind(now())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error("loading a key"))?;
                Ok(row.and_then(|(key_id, sealed)| self.sealer.open(&SealedKey { key_id, sealed }, &hash)))
            }

            async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
                self.revoke(token).await
            }
        }
    };
}

#[cfg(feature = "postgres")]
sql_store!(
    /// Keys in PostgreSQL: many app instances share one table.
    ///
    /// ```no_run
    /// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::StoreError> {
    /// use modelgates_axum::{ModelGatesAuth, PostgresStore};
    ///
    /// let store = PostgresStore::connect("postgres://app@127.0.0.1/app", &config).await?;
    /// let layer = ModelGatesAuth::new(config).with_store(store);
    /// # Ok(())
    /// # }
    /// ```
    PostgresStore,
    sqlx::PgPool,
    sqlx::postgres::PgConnectOptions,
    "../migrations/postgres/0001_modelgates_keys.sql",
    |options| options
);

#[cfg(feature = "sqlite")]
sql_store!(
    /// Keys in SQLite: the embedded choice for one machine (`sqlite:path/to/keys.db`; the file
    /// is created if missing).
    ///
    /// ```no_run
    /// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::StoreError> {
    /// use modelgates_axum::{ModelGatesAuth, SqliteStore};
    ///
    /// let store = SqliteStore::connect("sqlite:keys.db", &config).await?;
    /// let layer = ModelGatesAuth::new(config).with_store(store);
    /// # Ok(())
    /// # }
    /// ```
    SqliteStore,
    sqlx::SqlitePool,
    sqlx::sqlite::SqliteConnectOptions,
    "../migrations/sqlite/0001_modelgates_keys.sql",
    |options| options.create_if_missing(true)
);
