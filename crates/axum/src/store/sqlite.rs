//! [`SqliteStore`] (feature `sqlite`): keys in a SQLite file, for one machine.

use sqlx::Pool;
use sqlx::sqlite::SqliteQueryResult;

use super::StoreError;
use super::sql::sealed::Statement;
use super::sql::{Running, SqlBackend, SqlStore, run};

/// Keys in SQLite: the embedded choice for one machine (`sqlite:path/to/keys.db`; the file is
/// created if missing). See [`SqlStore`] for its methods and rules.
///
/// ```no_run
/// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
/// use modelgates_axum::ModelGatesAuth;
/// use modelgates_axum::store::SqliteStore;
///
/// let store = SqliteStore::connect("sqlite:keys.db", &config).await?;
/// let layer = ModelGatesAuth::new(config).with_store(store);
/// # Ok(())
/// # }
/// ```
pub type SqliteStore = SqlStore<sqlx::Sqlite>;

impl SqlBackend for sqlx::Sqlite {
    const SCHEMA: &'static str = include_str!("../../migrations/sqlite/0001_modelgates_keys.sql");

    fn connect_options(url: &str) -> Result<sqlx::sqlite::SqliteConnectOptions, StoreError> {
        let options: sqlx::sqlite::SqliteConnectOptions = url
            .parse()
            .map_err(|e| StoreError::with_source("the database URL is invalid", e))?;
        Ok(options.create_if_missing(true))
    }

    fn run<'a>(pool: &'a Pool<Self>, statement: Statement<'a>) -> Running<'a> {
        run(pool, statement, SqliteQueryResult::rows_affected)
    }
}
