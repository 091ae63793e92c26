//! [`PostgresStore`] (feature `postgres`): keys in PostgreSQL, shared by many app instances,
//! and [`PostgresRevocations`], the `LISTEN`/`NOTIFY` feed of its [`CachingStore`].
//!
//! The schema's trigger announces every deleted row on the channel `modelgates_revoked`, with
//! the session hash as the payload, whoever deleted it: so revocations reach every instance's
//! cache even when made by SQL outside this crate.

use sqlx::postgres::{PgListener, PgQueryResult};
use sqlx::{PgPool, Pool};

use super::sql::sealed::Statement;
use super::sql::{Running, SqlBackend, SqlStore, run};
use super::transport::check_postgres;
use super::{CachingStore, RevocationFeed, StoreError};

/// Keys in PostgreSQL: many app instances share one table. See [`SqlStore`] for its methods
/// and rules; [`SqlStore::cached`] puts a cache in front that hears every instance's
/// revocations. A server off this machine must be reached over TLS (`sslmode=verify-full` or
/// `require` in the URL; `sslmode=disable` to accept plaintext explicitly).
///
/// ```no_run
/// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
/// use modelgates_axum::ModelGatesAuth;
/// use modelgates_axum::store::PostgresStore;
///
/// let store = PostgresStore::connect("postgres://app@127.0.0.1/app", &config).await?;
/// let layer = ModelGatesAuth::new(config).with_store(store);
/// # Ok(())
/// # }
/// ```
pub type PostgresStore = SqlStore<sqlx::Postgres>;

impl SqlBackend for sqlx::Postgres {
    // One transaction (a multi-statement simple query), serialised between instances that
    // start at the same moment by an advisory lock.
    const SCHEMA: &'static str = concat!(
        "SELECT pg_advisory_xact_lock(7420131);\n",
        include_str!("../../migrations/postgres/0001_modelgates_keys.sql"),
        include_str!("../../migrations/postgres/0002_revocation_notify.sql"),
    );

    fn connect_options(url: &str) -> Result<sqlx::postgres::PgConnectOptions, StoreError> {
        check_postgres(url)?;
        url.parse()
            .map_err(|e| StoreError::with_source("the database URL is invalid", e))
    }

    fn run<'a>(pool: &'a Pool<Self>, statement: Statement<'a>) -> Running<'a> {
        run(pool, statement, PgQueryResult::rows_affected)
    }
}

/// The channel on which the schema's trigger announces deleted sessions.
const CHANNEL: &str = "modelgates_revoked";

/// The revocation feed of a [`PostgresStore`]: `LISTEN modelgates_revoked` on a connection of
/// its own, and heartbeats with `pg_notify`. Made by [`SqlStore::revocations`].
#[derive(Clone)]
pub struct PostgresRevocations {
    pool: PgPool,
}

impl std::fmt::Debug for PostgresRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRevocations")
            .field("channel", &CHANNEL)
            .finish_non_exhaustive()
    }
}

impl RevocationFeed for PostgresRevocations {
    type Subscription = PgListener;

    async fn subscribe(&self) -> Result<PgListener, StoreError> {
        let failed = |e| StoreError::with_source("listening for revocations failed", e);
        let mut listener = PgListener::connect_with(&self.pool).await.map_err(failed)?;
        listener.listen(CHANNEL).await.map_err(failed)?;
        Ok(listener)
    }

    async fn next(&self, listener: &mut PgListener) -> Option<String> {
        // `try_recv` reports a lost connection as `Ok(None)`; `recv` would reconnect silently
        // and hide the notifications lost meanwhile.
        match listener.try_recv().await {
            Ok(Some(notification)) => Some(notification.payload().to_owned()),
            Ok(None) | Err(_) => None,
        }
    }

    async fn publish(&self, message: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(message)
            .execute(&self.pool)
            .await
            .map_err(|e| StoreError::with_source("publishing on the revocation feed failed", e))?;
        Ok(())
    }
}

impl SqlStore<sqlx::Postgres> {
    /// The feed on which every instance hears this database's revocations.
    #[must_use]
    pub fn revocations(&self) -> PostgresRevocations {
        PostgresRevocations {
            pool: self.pool().clone(),
        }
    }

    /// This store behind a [`CachingStore`] with the default bounds, listening to
    /// [`Self::revocations`]. Call within a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
    /// use modelgates_axum::ModelGatesAuth;
    /// use modelgates_axum::store::PostgresStore;
    ///
    /// let store = PostgresStore::connect("postgres://app@127.0.0.1/app", &config).await?;
    /// let layer = ModelGatesAuth::new(config).with_store(store.cached().await?);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When `LISTEN` fails.
    pub async fn cached(&self) -> Result<CachingStore<Self>, StoreError> {
        CachingStore::new(self.clone())
            .listen(self.revocations())
            .await
    }
}
