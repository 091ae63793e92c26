//! [`SqlStore`]: keys in a SQL database through sqlx. [`PostgresStore`](super::PostgresStore)
//! (feature `postgres`) serves many app instances, [`SqliteStore`](super::SqliteStore)
//! (feature `sqlite`) one machine; both are this one type over their sqlx driver.
//!
//! The rules: keys are sealed at rest (see [`KeySealer`]); the browser carries only a random
//! session id in a signed cookie, and the table holds only its SHA-256 hash; every row has an
//! expiry, expired rows are never returned and are purged on every save (and by
//! [`SqlStore::purge_expired`]); logout deletes the row; [`SqlStore::revoke`] and
//! [`SqlStore::revoke_user`] delete rows on demand. The schema ships with the crate
//! (`migrations/`) and is applied, idempotently, by [`SqlStore::migrate`] (called by
//! [`SqlStore::connect`]).

use std::time::Duration;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::sealed::{KeySealer, SealedKey, session_hash};
use super::{KeyStore, SessionToken, StoreError, StoredKey, TokenProtection};
use crate::config::ModelGatesConfig;
use crate::primitives::unix_now;

/// The statements, in the SQL PostgreSQL and SQLite share.
const PURGE_EXPIRED: &str = "DELETE FROM modelgates_keys WHERE expires_at <= $1";
const DELETE_SESSION: &str = "DELETE FROM modelgates_keys WHERE session_hash = $1";
const DELETE_USER: &str = "DELETE FROM modelgates_keys WHERE user_id = $1";
const INSERT: &str = "INSERT INTO modelgates_keys \
     (session_hash, user_id, key_id, sealed, issued_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const SELECT_LIVE: &str = "SELECT key_id, sealed FROM modelgates_keys \
     WHERE session_hash = $1 AND expires_at > $2";

/// What differs between the databases: the schema and how a URL becomes connect options.
/// Implemented for `sqlx::Postgres` and `sqlx::Sqlite`; not meant for other types.
pub trait SqlBackend: Database + sealed::Sealed {
    /// The schema, applied by [`SqlStore::migrate`].
    #[doc(hidden)]
    const SCHEMA: &'static str;

    /// Connect options for `url`.
    #[doc(hidden)]
    fn connect_options(
        url: &str,
    ) -> Result<<Self::Connection as sqlx::Connection>::Options, sqlx::Error>;

    /// How many rows a statement changed.
    #[doc(hidden)]
    fn rows_affected(result: &Self::QueryResult) -> u64;
}

mod sealed {
    pub trait Sealed {}
}

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}
#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}

/// Keys in a SQL database; use it as [`PostgresStore`](super::PostgresStore) or
/// [`SqliteStore`](super::SqliteStore).
pub struct SqlStore<DB: Database> {
    pool: Pool<DB>,
    sealer: KeySealer,
    lifetime: Duration,
}

impl<DB: Database> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            sealer: self.sealer.clone(),
            lifetime: self.lifetime,
        }
    }
}

impl<DB: Database> std::fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &DB::NAME)
            .field("sealer", &self.sealer)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

fn db_error(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |error| StoreError::with_source(format!("{what} failed"), error)
}

fn seconds(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl<DB> SqlStore<DB>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// A store over an existing pool. Call [`Self::migrate`] once before use.
    #[must_use]
    pub fn new(pool: Pool<DB>, sealer: KeySealer, lifetime: Duration) -> Self {
        Self {
            pool,
            sealer,
            lifetime,
        }
    }

    /// Connects a pool to `url`, applies the schema, and keeps keys as long as the layer's
    /// key cookie lives, sealed with its secrets.
    ///
    /// # Errors
    ///
    /// When the URL is invalid, the database cannot be reached or the schema cannot be
    /// applied.
    pub async fn connect(url: &str, config: &ModelGatesConfig) -> Result<Self, StoreError> {
        let options = DB::connect_options(url)
            .map_err(|e| StoreError::with_source("the database URL is invalid", e))?;
        let pool = Pool::<DB>::connect_with(options)
            .await
            .map_err(db_error("connecting to the database"))?;
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
        sqlx::raw_sql(DB::SCHEMA)
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
        self.delete(
            PURGE_EXPIRED,
            Bind::Int(seconds(unix_now())),
            "purging expired keys",
        )
        .await
    }

    /// Removes a session's key: its next request is signed out.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn revoke(&self, token: &SessionToken) -> Result<(), StoreError> {
        let hash = session_hash(token);
        self.delete(DELETE_SESSION, Bind::Text(&hash), "revoking a session")
            .await?;
        Ok(())
    }

    /// Removes every key of a ModelGates user, on every device; returns how many.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        self.delete(DELETE_USER, Bind::Text(user_id), "revoking a user's keys")
            .await
    }

    /// The pool, for the app's own queries.
    #[must_use]
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    async fn delete(
        &self,
        sql: &'static str,
        bind: Bind<'_>,
        what: &str,
    ) -> Result<u64, StoreError> {
        let query = sqlx::query::<DB>(sql);
        let query = match bind {
            Bind::Int(value) => query.bind(value),
            Bind::Text(value) => query.bind(value),
        };
        let done = self.pool.execute(query).await.map_err(db_error(what))?;
        Ok(DB::rows_affected(&done))
    }
}

/// The one parameter of a `DELETE`.
enum Bind<'a> {
    Int(i64),
    Text(&'a str),
}

impl<DB> KeyStore for SqlStore<DB>
where
    DB: SqlBackend,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> Vec<u8>: Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        self.purge_expired().await?;
        let token = SessionToken::random();
        let hash = session_hash(&token);
        let sealed = self.sealer.seal(&key, &hash);
        let issued_at = seconds(key.issued_at);
        let query = sqlx::query::<DB>(INSERT)
            .bind(hash.as_str())
            .bind(key.user_id.as_deref())
            .bind(sealed.key_id.as_str())
            .bind(sealed.sealed.as_slice())
            .bind(issued_at)
            .bind(issued_at.saturating_add(seconds(self.lifetime.as_secs())));
        self.pool
            .execute(query)
            .await
            .map_err(db_error("saving a key"))?;
        Ok(token)
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        let hash = session_hash(token);
        let row: Option<(String, Vec<u8>)> = sqlx::query_as::<DB, _>(SELECT_LIVE)
            .bind(hash.as_str())
            .bind(seconds(unix_now()))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("loading a key"))?;
        Ok(row.and_then(|(key_id, sealed)| self.sealer.open(&SealedKey { key_id, sealed }, &hash)))
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        self.revoke(token).await
    }
}
