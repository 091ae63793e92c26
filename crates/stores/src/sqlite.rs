//! [`SqliteStore`] (feature `sqlite`): keys in a SQLite file, for one machine. The rules of
//! the SQL stores are in the `sql` module beside this one.

use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::SqliteConnectOptions;

use crate::at_rest::StoreSettings;
use crate::sql::{PurgeSchedule, db_error, spent_flow_row};
use modelgates_axum::store::{
    FlowSpend, KeyStore, SessionToken, StoreError, StoredKey, TokenProtection,
};

/// Rows affected: 1 when the flow is spent now, 0 when it was spent before.
const SPEND_FLOW: &str = "INSERT INTO modelgates_spent_flows (flow_hash, expires_at) \
     VALUES ($1, $2) ON CONFLICT (flow_hash) DO NOTHING";

const SCHEMA: &str = concat!(
    include_str!("../migrations/sqlite/0001_modelgates_keys.sql"),
    include_str!("../migrations/sqlite/0002_spent_flows.sql"),
    include_str!("../migrations/sqlite/0003_linked_accounts.sql"),
);

/// Keys in SQLite: the embedded choice for one machine (`sqlite:path/to/keys.db`; the file is
/// created if missing), sealed at rest, behind a signed session id.
///
/// ```no_run
/// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
/// use modelgates_axum::ModelGatesAuth;
/// use modelgates_stores::SqliteStore;
///
/// let store = SqliteStore::connect("sqlite:keys.db", &config).await?;
/// let layer = ModelGatesAuth::new(config).with_store(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    settings: StoreSettings,
    purge: std::sync::Arc<PurgeSchedule>,
}

crate::sql::shared_methods!(
    SqliteStore,
    SqlitePool,
    migrate: "Creates the table and its indexes if they do not exist.",
    revoke: "Removes a session's key: its next request is signed out."
);

impl SqliteStore {
    /// A store over an existing pool. Call [`Self::migrate`] once before use.
    #[must_use]
    pub fn new(pool: SqlitePool, settings: StoreSettings) -> Self {
        Self {
            pool,
            settings,
            purge: std::sync::Arc::default(),
        }
    }

    /// Connects a pool to `url` and applies the schema. Given the layer's configuration
    /// (`&config`), keys live as long as its key cookie, sealed with its secrets.
    ///
    /// # Errors
    ///
    /// When the URL is invalid, the database cannot be opened, or the schema cannot be
    /// applied.
    pub async fn connect(
        url: &str,
        settings: impl Into<StoreSettings>,
    ) -> Result<Self, StoreError> {
        let options: SqliteConnectOptions = url
            .parse()
            .map_err(|e| StoreError::with_source("the database URL is invalid", e))?;
        let options = options.create_if_missing(true);
        let pool = SqlitePool::connect_with(options)
            .await
            .map_err(db_error("connecting to the database"))?;
        let store = Self::new(pool, settings.into());
        store.migrate().await?;
        Ok(store)
    }
}

impl KeyStore for SqliteStore {
    crate::sql::shared_key_store_methods!();

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        let row = self.new_row(&key).await?;
        // One session (PostgreSQL batches its inserts instead: `postgres.rs`).
        crate::sql::insert_key!(row, key)
            .execute(&self.pool)
            .await
            .map_err(db_error("saving a key"))?;
        Ok(row.token)
    }

    async fn spend_flow(&self, flow_id: &str, lives: Duration) -> Result<FlowSpend, StoreError> {
        let (hash, expires_at) = spent_flow_row(flow_id, lives);
        let done = sqlx::query(SPEND_FLOW)
            .bind(hash)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(db_error("recording a spent sign-in flow"))?;
        Ok(crate::flow_spend(done.rows_affected() == 1))
    }
}
