//! What the SQL stores share: the rules, the statements' text, and the rows they write and
//! read. Each backend ([`PostgresStore`](crate::PostgresStore),
//! [`SqliteStore`](crate::SqliteStore)) is a plain file of sqlx code over these; a new one
//! (MySQL, say) is one more such file and its migration.
//!
//! The rules they follow are in the crate documentation ("The SQL
//! stores").

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::at_rest::{KeySealer, SealedKey, StoreSettings};
use modelgates_axum::store::{SessionToken, StoreError, StoredKey};
use modelgates_oauth_core::__private::unix_now;

/// The statements, in the SQL PostgreSQL and SQLite share.
pub(super) const PURGE_EXPIRED: &str = "DELETE FROM modelgates_keys WHERE expires_at <= $1";
pub(super) const DELETE_SESSION: &str = "DELETE FROM modelgates_keys WHERE session_hash = $1";
/// `$2`: the session hash kept (empty: none).
pub(super) const DELETE_USER: &str =
    "DELETE FROM modelgates_keys WHERE user_id = $1 AND session_hash <> $2";
pub(super) const SELECT_LIVE: &str = "SELECT key_id, sealed FROM modelgates_keys \
     WHERE session_hash = $1 AND expires_at > $2";

/// The statements of a link (see [`KeyStore::save_link`](modelgates_axum::store::KeyStore::save_link)):
/// its key's row is replaced in the same transaction that records the account.
pub(super) const INSERT_KEY: &str = "INSERT INTO modelgates_keys \
     (session_hash, user_id, key_id, sealed, issued_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";
/// [`INSERT_KEY`] with a new row's values bound: `insert_key!(row, key)` for a
/// [`NewRow`] and its `StoredKey`. A macro, as SQLite's and PostgreSQL's queries are different
/// types.
macro_rules! insert_key {
    ($row:expr, $key:expr) => {
        sqlx::query($crate::sql::INSERT_KEY)
            .bind(&$row.hash)
            .bind($key.user_id.as_deref())
            .bind(&$row.sealed.key_id)
            .bind(&$row.sealed.sealed)
            .bind($row.issued_at)
            .bind($row.expires_at)
    };
}
pub(crate) use insert_key;
pub(super) const INSERT_LINK: &str = "INSERT INTO modelgates_links (account, session_hash) \
     VALUES ($1, $2) ON CONFLICT (account) DO NOTHING";
/// `$1` now, `$2` the account to start after (`''`: the first), `$3` the page's size.
pub(super) const SELECT_LINKED: &str = "SELECT l.account FROM modelgates_links l \
     JOIN modelgates_keys k ON k.session_hash = l.session_hash \
     WHERE k.expires_at > $1 AND l.account > $2 ORDER BY l.account LIMIT $3";
/// Links whose key's row is gone (removed, revoked, purged).
pub(super) const PURGE_LINKS: &str = "DELETE FROM modelgates_links WHERE NOT EXISTS \
     (SELECT 1 FROM modelgates_keys k WHERE k.session_hash = modelgates_links.session_hash)";

pub(super) const PURGE_SPENT_FLOWS: &str =
    "DELETE FROM modelgates_spent_flows WHERE expires_at <= $1";

/// How often a save also purges expired rows: often enough that the tables stay small, rarely
/// enough that a sign-in is one write, not three.
pub(super) const PURGE_EVERY: Duration = Duration::from_secs(60);

/// When the store last purged, so that saves purge at most once per [`PURGE_EVERY`].
#[derive(Debug, Default)]
pub(super) struct PurgeSchedule(AtomicU64);

impl PurgeSchedule {
    /// Whether a purge is due now; if so, it is this caller's to run.
    pub(super) fn due(&self) -> bool {
        let now = unix_now();
        let last = self.0.load(Ordering::Relaxed);
        now.saturating_sub(last) >= PURGE_EVERY.as_secs()
            && self
                .0
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// The row of a spent flow: the SHA-256 of its id, and when it may be forgotten.
pub(super) fn spent_flow_row(flow_id: &str, lives: Duration) -> (String, i64) {
    let hash = crate::spent_flow_hash(flow_id);
    (hash, now().saturating_add(seconds(lives.as_secs()) + 1))
}

/// A database failure, as the store reports it.
pub(super) fn db_error(what: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
    move |error| StoreError::with_source(format!("{what} failed"), error)
}

/// Seconds as the tables keep them.
pub(super) fn seconds(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The time now, as the tables keep it.
pub(super) fn now() -> i64 {
    seconds(unix_now())
}

/// A row to insert for a new session.
pub(super) struct NewRow {
    pub(super) token: SessionToken,
    pub(super) hash: String,
    pub(super) sealed: SealedKey,
    pub(super) issued_at: i64,
    pub(super) expires_at: i64,
}

impl NewRow {
    /// A fresh session for `key`, sealed for its row, living `lifetime`.
    pub(super) fn new(key: &StoredKey, settings: &StoreSettings) -> Self {
        Self::for_token(SessionToken::random(), key, settings)
    }

    /// The row of `key` under `token` (a link's), sealed for it, living `lifetime`.
    pub(super) fn for_token(
        token: SessionToken,
        key: &StoredKey,
        settings: &StoreSettings,
    ) -> Self {
        let (sealer, lifetime) = (&settings.sealer, settings.lifetime);
        let hash = token.hash();
        let sealed = sealer.seal(key, &hash);
        let issued_at = seconds(key.issued_at);
        let lives = key.remaining(lifetime, key.issued_at);
        Self {
            token,
            hash,
            sealed,
            issued_at,
            expires_at: issued_at.saturating_add(seconds(lives)),
        }
    }
}

/// The key of a live row `(key_id, sealed)`, opened for its session hash.
pub(super) fn open_row(
    sealer: &KeySealer,
    hash: &str,
    row: Option<(String, Vec<u8>)>,
) -> Option<StoredKey> {
    let (key_id, sealed) = row?;
    sealer.open(&SealedKey { key_id, sealed }, hash)
}

/// What the SQL stores do not differ in but for their pool's type, written once: `Debug`, and
/// the inherent methods `migrate`, `purge_expired`, `revoke`, `pool` and `new_row`. Expanded beside each
/// store, which has `pool`, `settings` and `purge` fields and a `SCHEMA` constant in scope.
macro_rules! shared_methods {
    ($store:ident, $pool:ty, migrate: $migrate_doc:literal, revoke: $revoke_doc:literal) => {
        impl std::fmt::Debug for $store {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                $crate::fmt_store(f, stringify!($store), &self.settings)
            }
        }

        impl $store {
            #[doc = $migrate_doc]
            ///
            /// # Errors
            ///
            /// When the statements fail.
            pub async fn migrate(&self) -> Result<(), StoreError> {
                sqlx::raw_sql(SCHEMA)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::db_error("applying the schema"))?;
                Ok(())
            }

            /// Deletes expired rows (sessions and spent flows); returns how many sessions. A save
            /// does it at most once a minute.
            ///
            /// # Errors
            ///
            /// When the database fails.
            pub async fn purge_expired(&self) -> Result<u64, StoreError> {
                let done = sqlx::query($crate::sql::PURGE_EXPIRED)
                    .bind($crate::sql::now())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::db_error("purging expired keys"))?;
                sqlx::query($crate::sql::PURGE_LINKS)
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::db_error("purging removed links"))?;
                sqlx::query($crate::sql::PURGE_SPENT_FLOWS)
                    .bind($crate::sql::now())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::db_error("purging expired flows"))?;
                Ok(done.rows_affected())
            }

            #[doc = $revoke_doc]
            ///
            /// # Errors
            ///
            /// When the database fails.
            pub async fn revoke(&self, token: &SessionToken) -> Result<(), StoreError> {
                sqlx::query($crate::sql::DELETE_SESSION)
                    .bind(token.hash())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql::db_error("revoking a session"))?;
                Ok(())
            }

            /// The pool, for the app's own queries.
            #[must_use]
            pub fn pool(&self) -> &$pool {
                &self.pool
            }

            /// The row of a new session for `key`, after purging expired rows when due.
            async fn new_row(&self, key: &StoredKey) -> Result<$crate::sql::NewRow, StoreError> {
                if self.purge.due() {
                    self.purge_expired().await?;
                }
                Ok($crate::sql::NewRow::new(key, &self.settings))
            }
        }
    };
}
pub(crate) use shared_methods;

/// The [`KeyStore`](modelgates_axum::store::KeyStore) items the SQL stores have alike: signed
/// tokens, `load`, `remove`, `ping` and `revoke_user`. Expanded inside each store's `KeyStore`
/// impl (its `pool` and `settings` fields, and [`shared_methods!`]'s `revoke`).
macro_rules! shared_key_store_methods {
    () => {
        const TOKEN_PROTECTION: TokenProtection = TokenProtection::Signed;

        async fn load(&self, token: &SessionToken) -> Result<Option<StoredKey>, StoreError> {
            let hash = token.hash();
            let row = sqlx::query_as($crate::sql::SELECT_LIVE)
                .bind(&hash)
                .bind($crate::sql::now())
                .fetch_optional(&self.pool)
                .await
                .map_err($crate::sql::db_error("loading a key"))?;
            Ok($crate::sql::open_row(&self.settings.sealer, &hash, row))
        }

        async fn remove(&self, token: &SessionToken) -> Result<(), StoreError> {
            self.revoke(token).await
        }

        /// `SELECT 1` on a pooled connection.
        async fn ping(&self) -> Result<(), StoreError> {
            sqlx::query("SELECT 1")
                .execute(&self.pool)
                .await
                .map_err($crate::sql::db_error("checking the database"))?;
            Ok(())
        }

        /// One transaction: the key's row replaced (the old one deleted, which PostgreSQL's
        /// trigger announces), the account recorded.
        async fn save_link(&self, account: &str, key: StoredKey) -> Result<(), StoreError> {
            if self.purge.due() {
                self.purge_expired().await?;
            }
            let token = SessionToken::for_account(account);
            let row = $crate::sql::NewRow::for_token(token, &key, &self.settings);
            let failed = $crate::sql::db_error("saving a link");
            let mut transaction = self.pool.begin().await.map_err(&failed)?;
            sqlx::query($crate::sql::DELETE_SESSION)
                .bind(&row.hash)
                .execute(&mut *transaction)
                .await
                .map_err(&failed)?;
            $crate::sql::insert_key!(row, key)
                .execute(&mut *transaction)
                .await
                .map_err(&failed)?;
            sqlx::query($crate::sql::INSERT_LINK)
                .bind(account)
                .bind(&row.hash)
                .execute(&mut *transaction)
                .await
                .map_err(&failed)?;
            transaction.commit().await.map_err(failed)?;
            Ok(())
        }

        async fn linked_accounts(
            &self,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<String>, StoreError> {
            let accounts: Vec<(String,)> = sqlx::query_as($crate::sql::SELECT_LINKED)
                .bind($crate::sql::now())
                .bind(after.unwrap_or_default())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err($crate::sql::db_error("listing linked accounts"))?;
            Ok(accounts.into_iter().map(|(account,)| account).collect())
        }

        async fn revoke_user(
            &self,
            user_id: &str,
            keep: Option<&SessionToken>,
        ) -> Result<u64, StoreError> {
            let done = sqlx::query($crate::sql::DELETE_USER)
                .bind(user_id)
                .bind(keep.map(SessionToken::hash).unwrap_or_default())
                .execute(&self.pool)
                .await
                .map_err($crate::sql::db_error("revoking a user's keys"))?;
            Ok(done.rows_affected())
        }
    };
}
pub(crate) use shared_key_store_methods;
