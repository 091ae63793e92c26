//! [`PostgresStore`] (feature `postgres`): keys in PostgreSQL, shared by many app instances.

use sqlx::Pool;
use sqlx::postgres::PgQueryResult;

use super::StoreError;
use super::sql::sealed::Statement;
use super::sql::{Running, SqlBackend, SqlStore, run};
use super::transport::check_postgres;

/// Keys in PostgreSQL: many app instances share one table. See [`SqlStore`] for its methods
/// and rules. A server off this machine must be reached over TLS (`sslmode=verify-full` or
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
    const SCHEMA: &'static str = include_str!("../../migrations/postgres/0001_modelgates_keys.sql");

    fn connect_options(url: &str) -> Result<sqlx::postgres::PgConnectOptions, StoreError> {
        check_postgres(url)?;
        url.parse()
            .map_err(|e| StoreError::with_source("the database URL is invalid", e))
    }

    fn run<'a>(pool: &'a Pool<Self>, statement: Statement<'a>) -> Running<'a> {
        run(pool, statement, PgQueryResult::rows_affected)
    }
}
