//! [`PostgresStore`] (feature `postgres`): keys in PostgreSQL, shared by many app instances,
//! and [`PostgresRevocations`], the `LISTEN`/`NOTIFY` feed of its [`CachingStore`]. The rules
//! of the SQL stores are in the `sql` module beside this one.
//!
//! The schema's trigger announces every deleted row on the channel `modelgates_revoked`, with
//! the session hash as the payload, whoever deleted it: so revocations reach every instance's
//! cache even when made by SQL outside this crate.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::at_rest::StoreSettings;
use crate::batch::Batcher;
use crate::sql::{PurgeSchedule, db_error, spent_flow_row};
use crate::transport::{DATABASE_TIMEOUT, check_postgres};
use modelgates_axum::store::{
    CachingStore, FlowSpend, KeyStore, RevocationFeed, SessionToken, StoreError, StoredKey,
    TokenProtection,
};

/// The schema, in one transaction (a multi-statement simple query), serialised between
/// instances that start at the same moment by an advisory lock. Quiet: the notices of
/// `IF NOT EXISTS` ("relation … already exists, skipping") would be logged at every start.
const SCHEMA: &str = concat!(
    "SELECT pg_advisory_xact_lock(7420131);\n",
    "SET LOCAL client_min_messages = warning;\n",
    include_str!("../migrations/postgres/0001_modelgates_keys.sql"),
    include_str!("../migrations/postgres/0002_revocation_notify.sql"),
    include_str!("../migrations/postgres/0003_spent_flows_and_truncate.sql"),
    include_str!("../migrations/postgres/0004_linked_accounts.sql"),
);

/// The connections [`PostgresStore::connect`] pools.
const POOL_SIZE: u32 = 10;

/// Keys in PostgreSQL: many app instances share one table, sealed at rest, behind a signed
/// session id. [`Self::cached`] puts a cache in front that hears every instance's
/// revocations. A server off this machine must be reached over TLS (`sslmode=verify-full` or
/// `require` in the URL; `sslmode=disable` to accept plaintext explicitly).
///
/// ```no_run
/// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
/// use modelgates_axum::ModelGatesAuth;
/// use modelgates_stores::PostgresStore;
///
/// let store = PostgresStore::connect("postgres://app@127.0.0.1/app", &config).await?;
/// let layer = ModelGatesAuth::new(config).with_store(store);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    settings: StoreSettings,
    purge: std::sync::Arc<PurgeSchedule>,
    writes: std::sync::Arc<Writes>,
}

/// The batched writes of a sign-in (see the `batch` module): its spent flow, its session.
#[derive(Default)]
struct Writes {
    spends: Batcher<(String, i64), FlowSpend>,
    saves: Batcher<SessionRow, ()>,
}

/// A session's row, as the batched insert takes it.
struct SessionRow {
    hash: String,
    user_id: Option<String>,
    key_id: String,
    sealed: Vec<u8>,
    issued_at: i64,
    expires_at: i64,
}

/// Many spent flows at once; returns the hashes recorded now (a flow listed twice, or spent
/// before, is returned at most once).
const SPEND_FLOWS: &str = "INSERT INTO modelgates_spent_flows (flow_hash, expires_at) \
     SELECT * FROM UNNEST($1::text[], $2::int8[]) \
     ON CONFLICT (flow_hash) DO NOTHING RETURNING flow_hash";

/// Many sessions at once.
const INSERT_MANY: &str = "INSERT INTO modelgates_keys \
     (session_hash, user_id, key_id, sealed, issued_at, expires_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[], $5::int8[], $6::int8[])";

/// Records a batch of spent flows: each answered `First` once, `Replayed` otherwise.
async fn spend_flows(
    pool: PgPool,
    flows: Vec<(String, i64)>,
) -> Result<Vec<FlowSpend>, StoreError> {
    let (hashes, expiries): (Vec<String>, Vec<i64>) = flows.into_iter().unzip();
    let recorded: Vec<(String,)> = sqlx::query_as(SPEND_FLOWS)
        .bind(&hashes)
        .bind(&expiries)
        .fetch_all(&pool)
        .await
        .map_err(db_error("recording spent sign-in flows"))?;
    let mut first: std::collections::HashSet<String> =
        recorded.into_iter().map(|(hash,)| hash).collect();
    Ok(hashes
        .iter()
        .map(|hash| crate::flow_spend(first.remove(hash)))
        .collect())
}

/// Inserts a batch of sessions.
async fn insert_sessions(pool: PgPool, rows: Vec<SessionRow>) -> Result<Vec<()>, StoreError> {
    let count = rows.len();
    let mut columns = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    for row in rows {
        columns.0.push(row.hash);
        columns.1.push(row.user_id);
        columns.2.push(row.key_id);
        columns.3.push(row.sealed);
        columns.4.push(row.issued_at);
        columns.5.push(row.expires_at);
    }
    sqlx::query(INSERT_MANY)
        .bind(columns.0)
        .bind(columns.1)
        .bind(columns.2)
        .bind(columns.3)
        .bind(columns.4)
        .bind(columns.5)
        .execute(&pool)
        .await
        .map_err(db_error("saving keys"))?;
    Ok(vec![(); count])
}

crate::sql::shared_methods!(
    PostgresStore,
    PgPool,
    migrate: "Creates the table, its indexes and the revocation trigger if they do not exist.",
    revoke: "Removes a session's key: its next request is signed out, on every instance."
);

impl PostgresStore {
    /// A store over an existing pool. Call [`Self::migrate`] once before use.
    #[must_use]
    pub fn new(pool: PgPool, settings: StoreSettings) -> Self {
        Self {
            pool,
            settings,
            purge: std::sync::Arc::default(),
            writes: std::sync::Arc::default(),
        }
    }

    /// Connects a pool to `url` (10 connections; a request waits at most 3 s for one, so a
    /// database that is down is reported at once, not after sqlx's default 30 s) and applies
    /// the schema. Given the layer's configuration
    /// (`&config`), keys live as long as its key cookie, sealed with its secrets.
    ///
    /// # Errors
    ///
    /// When the URL is invalid, names a server off this machine without TLS, the database
    /// cannot be reached, or the schema cannot be applied.
    pub async fn connect(
        url: &str,
        settings: impl Into<StoreSettings>,
    ) -> Result<Self, StoreError> {
        let options = check_postgres(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(DATABASE_TIMEOUT)
            // No ping before each use: it doubled the round trips of every statement, and a
            // dead connection fails its statement just as clearly (a 503, then a new one).
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db_error("connecting to the database"))?;
        let store = Self::new(pool, settings.into());
        store.migrate().await?;
        Ok(store)
    }

    /// The feed on which every instance hears this database's revocations.
    #[must_use]
    pub fn revocations(&self) -> PostgresRevocations {
        PostgresRevocations {
            pool: self.pool.clone(),
        }
    }

    /// This store behind a [`CachingStore`] with the default bounds, listening to
    /// [`Self::revocations`]. Call within a Tokio runtime.
    ///
    /// ```no_run
    /// # async fn run(config: modelgates_axum::ModelGatesConfig) -> Result<(), modelgates_axum::store::StoreError> {
    /// use modelgates_axum::ModelGatesAuth;
    /// use modelgates_stores::PostgresStore;
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

impl KeyStore for PostgresStore {
    crate::sql::shared_key_store_methods!();

    async fn save(&self, key: StoredKey) -> Result<SessionToken, StoreError> {
        let row = self.new_row(&key).await?;
        let session = SessionRow {
            hash: row.hash,
            user_id: key.user_id,
            key_id: row.sealed.key_id,
            sealed: row.sealed.sealed,
            issued_at: row.issued_at,
            expires_at: row.expires_at,
        };
        let pool = self.pool.clone();
        self.writes
            .saves
            .submit(session, move || {
                move |rows| insert_sessions(pool.clone(), rows)
            })
            .await?;
        Ok(row.token)
    }

    /// Batched with the other instances' concurrent sign-ins on this store (see the `batch`
    /// module).
    async fn spend_flow(&self, flow_id: &str, lives: Duration) -> Result<FlowSpend, StoreError> {
        let pool = self.pool.clone();
        self.writes
            .spends
            .submit(spent_flow_row(flow_id, lives), move || {
                move |flows| spend_flows(pool.clone(), flows)
            })
            .await
    }
}

/// The channel on which the schema's trigger announces deleted sessions.
const CHANNEL: &str = "modelgates_revoked";

/// The revocation feed of a [`PostgresStore`]: `LISTEN modelgates_revoked` on a connection of
/// its own, and heartbeats with `pg_notify`. Made by [`PostgresStore::revocations`].
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
