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

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};

use super::sealed::{KeySealer, SealedKey};
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

/// A statement on its way.
pub(super) type Running<'a> =
    Pin<Box<dyn Future<Output = Result<Outcome, sqlx::Error>> + Send + 'a>>;

/// What differs between the databases: the schema, how a URL becomes connect options, and
/// the call into the one generic statement runner. Implemented for `sqlx::Postgres` and
/// `sqlx::Sqlite` only (the trait is sealed).
pub trait SqlBackend: Database + sealed::Sealed {
    /// The schema, applied by [`SqlStore::migrate`].
    #[doc(hidden)]
    const SCHEMA: &'static str;

    /// Connect options for `url`, after the transport rules of the store module.
    #[doc(hidden)]
    fn connect_options(
        url: &str,
    ) -> Result<<Self::Connection as sqlx::Connection>::Options, StoreError>;

    /// Runs one statement by calling the generic runner with this database's types.
    #[doc(hidden)]
    fn run<'a>(pool: &'a Pool<Self>, statement: sealed::Statement<'a>) -> Running<'a>;
}

pub(super) mod sealed {
    /// Implemented by the supported databases only.
    pub trait Sealed {}

    /// A statement with its parameters, in order.
    pub struct Statement<'a> {
        pub(in crate::store) sql: &'static str,
        pub(in crate::store) params: Vec<Param<'a>>,
        pub(in crate::store) kind: Kind,
    }

    /// How to run a statement and what it gives back.
    #[derive(Clone, Copy)]
    pub(crate) enum Kind {
        /// Several statements without parameters (the schema).
        Script,
        /// Changes rows; gives back how many.
        Change,
        /// Fetches at most one `(key_id, sealed)` row.
        FetchRow,
    }

    /// One parameter.
    pub(crate) enum Param<'a> {
        Int(i64),
        Text(&'a str),
        OptionalText(Option<&'a str>),
        Bytes(&'a [u8]),
    }

    /// What a statement gave back.
    pub enum Outcome {
        RowsAffected(u64),
        Row(Option<(String, Vec<u8>)>),
    }
}

use sealed::{Kind, Outcome, Param, Statement};

#[cfg(feature = "postgres")]
impl sealed::Sealed for sqlx::Postgres {}
#[cfg(feature = "sqlite")]
impl sealed::Sealed for sqlx::Sqlite {}

/// The one piece of generic sqlx code: binds the parameters and runs the statement.
pub(super) fn run<'a, DB>(
    pool: &'a Pool<DB>,
    statement: Statement<'a>,
    rows_affected: fn(&DB::QueryResult) -> u64,
) -> Running<'a>
where
    DB: Database,
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
    Box::pin(async move {
        let mut query = sqlx::query::<DB>(statement.sql);
        for param in statement.params {
            query = match param {
                Param::Int(value) => query.bind(value),
                Param::Text(value) => query.bind(value),
                Param::OptionalText(value) => query.bind(value),
                Param::Bytes(value) => query.bind(value),
            };
        }
        match statement.kind {
            Kind::Script => {
                let done = sqlx::raw_sql(statement.sql).execute(pool).await?;
                Ok(Outcome::RowsAffected(rows_affected(&done)))
            }
            Kind::Change => {
                let done = pool.execute(query).await?;
                Ok(Outcome::RowsAffected(rows_affected(&done)))
            }
            Kind::FetchRow => {
                let row = query.fetch_optional(pool).await?;
                let row = row.map(|row| sqlx::FromRow::from_row(&row)).transpose()?;
                Ok(Outcome::Row(row))
            }
        }
    })
}

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

impl<DB: SqlBackend> SqlStore<DB> {
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
    /// When the URL is invalid, names a PostgreSQL server off this machine without TLS (see
    /// [`PostgresStore`](super::PostgresStore)), the database cannot be reached, or the schema
    /// cannot be applied.
    pub async fn connect(url: &str, config: &ModelGatesConfig) -> Result<Self, StoreError> {
        let options = DB::connect_options(url)?;
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
        self.execute(DB::SCHEMA, Kind::Script, Vec::new(), "applying the schema")
            .await?;
        Ok(())
    }

    /// Deletes expired rows; returns how many.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now = Param::Int(seconds(unix_now()));
        self.execute(
            PURGE_EXPIRED,
            Kind::Change,
            vec![now],
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
        let hash = token.hash();
        let params = vec![Param::Text(&hash)];
        self.execute(DELETE_SESSION, Kind::Change, params, "revoking a session")
            .await?;
        Ok(())
    }

    /// Removes every key of a ModelGates user, on every device; returns how many.
    ///
    /// # Errors
    ///
    /// When the database fails.
    pub async fn revoke_user(&self, user_id: &str) -> Result<u64, StoreError> {
        let params = vec![Param::Text(user_id)];
        self.execute(DELETE_USER, Kind::Change, params, "revoking a user's keys")
            .await
    }

    /// The pool, for the app's own queries.
    #[must_use]
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Runs a statement that changes rows; returns how many.
    async fn execute(
        &self,
        sql: &'static str,
        kind: Kind,
        params: Vec<Param<'_>>,
        what: &str,
    ) -> Result<u64, StoreError> {
        let statement = Statement { sql, params, kind };
        match DB::run(&self.pool, statement)
            .await
            .map_err(db_error(what))?
        {
            Outcome::RowsAffected(rows) => Ok(rows),
            Outcome::Row(_) => Ok(0),
        }
    }

    /// The sealed key of a live row.
    async fn fetch_live(&self, hash: &str) -> Result<Option<SealedKey>, StoreError> {
        let statement = Statement {
            sql: SELECT_LIVE,
            params: vec![Param::Text(hash), Param::Int(seconds(unix_now()))],
            kind: Kind::FetchRow,
        };
        let outcome = DB::run(&self.pool, statement)
            .await
            .map_err(db_error("loading a key"))?;
        Ok(match outcome {
            Outcome::Row(row) => row.map(|(key_id, sealed)| SealedKey { key_id, sealed }),
            Outcome::RowsAffected(_) => None,
        })
    }
}

impl<DB: SqlBackend> KeyStore for SqlStore<DB> {
    const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        self.purge_expired().await?;
        let token = SessionToken::random();
        let hash = token.hash();
        let sealed = self.sealer.seal(&key, &hash);
        let issued_at = seconds(key.issued_at);
        let params = vec![
            Param::Text(&hash),
            Param::OptionalText(key.user_id.as_deref()),
            Param::Text(&sealed.key_id),
            Param::Bytes(&sealed.sealed),
            Param::Int(issued_at),
            Param::Int(issued_at.saturating_add(seconds(self.lifetime.as_secs()))),
        ];
        self.execute(INSERT, Kind::Change, params, "saving a key")
            .await?;
        Ok(token)
    }

    async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
        let hash = token.hash();
        let sealed = self.fetch_live(&hash).await?;
        Ok(sealed.and_then(|sealed| self.sealer.open(&sealed, &hash)))
    }

    async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
        self.revoke(token).await
    }
}
