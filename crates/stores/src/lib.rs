//! Database key stores for [`modelgates-axum`](modelgates_axum): PostgreSQL, SQLite and Redis.
//!
//! Each backend is a feature: `postgres` (`PostgresStore`, with `PostgresRevocations`),
//! `sqlite` (`SqliteStore`) and `redis` (`RedisStore`, with `RedisRevocations`). Without
//! any, the crate is [`KeySealer`] and [`StoreSettings`] alone: keys sealed at rest the way
//! these stores do it, for a store of your own.
//!
//! ```no_run
//! # #[cfg(feature = "postgres")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use modelgates_axum::{ModelGatesAuth, ModelGatesConfig};
//! use modelgates_stores::PostgresStore;
//!
//! let config = ModelGatesConfig::from_env()?;
//! // Rows live as long as the key cookie, sealed with the cookie secrets.
//! let store = PostgresStore::connect("postgres://app@127.0.0.1/app", &config).await?;
//! // Every instance's cache hears every instance's revocations.
//! let layer = ModelGatesAuth::new(config).with_store(store.cached().await?);
//! # Ok(())
//! # }
//! ```
//!
//! # The rules every store here follows
//!
//! * Keys are sealed at rest ([`KeySealer`]): AES-256-GCM under a key derived from the cookie
//!   secret, bound to the row; previous secrets still open older rows.
//! * The browser carries only a random session id in a signed cookie; the database holds only
//!   its SHA-256 hash. A dump holds neither usable keys nor usable cookies.
//! * Every session has an expiry (its key cookie's lifetime, never past the key's own); an
//!   expired session is never returned.
//! * Spent sign-in flows are kept (a hash of the flow id, until the flow would have expired),
//!   so that a callback is single-use across every instance
//!   ([`KeyStore::spend_flow`](modelgates_axum::store::KeyStore::spend_flow)).
//! * A database off this machine is reached over TLS or not at all, unless the URL asks for
//!   plaintext explicitly (the `transport` rules: `connect` checks the options the client
//!   will really use, before any connection).
//! * Each store passes the conformance suite of `modelgates_axum::store::testing`.
//!
//! # The SQL stores
//!
//! `PostgresStore` and `SqliteStore` share their statements, rows and the methods that do
//! not differ (`sql` module): every row has an expiry, expired rows are purged by a save at
//! most once a minute (and by `purge_expired`); logout deletes the row; `revoke` and
//! `revoke_user` delete rows on demand. PostgreSQL batches the writes of concurrent sign-ins
//! into multi-row statements. The schema ships with the crate (`migrations/`) and is applied,
//! idempotently, by `migrate` (called by `connect`). A new backend (MySQL, say) is one more
//! file of sqlx code over the `sql` module, and its migration.
//!
//! # Why one crate with a feature per backend
//!
//! tower-sessions-stores keeps one crate per backend. The backends here share more than its
//! do: the sealing at rest, the SQL statements and rows, the TLS rules for network databases.
//! One crate lets them share that code without a fourth crate, and a feature per backend keeps
//! each app's dependency tree to the database it uses (sqlx only for `postgres` or `sqlite`,
//! the redis client only for `redis`). The contract they implement
//! ([`KeyStore`](modelgates_axum::store::KeyStore)), the cookie and memory stores and the
//! cache stay in `modelgates-axum`, so an app without a database never builds a driver.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod at_rest;
#[cfg(feature = "postgres")]
mod batch;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis_store;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod transport;

pub use at_rest::{KeySealer, SealedKey, StoreSettings};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{PostgresRevocations, PostgresStore};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_store::{RedisRevocations, RedisStore};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;

/// The README's example, compiled as a doc test so that what it shows works.
#[cfg(all(doctest, feature = "postgres"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The sqlx the SQL stores are built with, so the app's own queries on `store.pool()` use the
/// same version without pinning it by hand.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "postgres", feature = "sqlite"))))]
pub use sqlx;

/// The redis crate [`RedisStore`] is built with, for `RedisStore::new(client, connection,
/// settings)` and the app's own commands.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis;

/// The name under which a store keeps a spent flow: the hex SHA-256 of its id.
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
fn spent_flow_hash(flow_id: &str) -> String {
    hex(&<sha2::Sha256 as sha2::Digest>::digest(flow_id))
}

/// [`FlowSpend::First`] when this call recorded the flow, [`FlowSpend::Replayed`] when it was
/// there already.
///
/// [`FlowSpend::First`]: modelgates_axum::store::FlowSpend::First
/// [`FlowSpend::Replayed`]: modelgates_axum::store::FlowSpend::Replayed
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
fn flow_spend(first: bool) -> modelgates_axum::store::FlowSpend {
    use modelgates_axum::store::FlowSpend;
    if first {
        FlowSpend::First
    } else {
        FlowSpend::Replayed
    }
}

/// How every store prints: its sealer (key ids only) and the session lifetime; never its
/// connection, whose URL may hold a password.
#[cfg(any(feature = "postgres", feature = "sqlite", feature = "redis"))]
fn fmt_store(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    settings: &StoreSettings,
) -> std::fmt::Result {
    f.debug_struct(name)
        .field("sealer", &settings.sealer)
        .field("lifetime", &settings.lifetime)
        .finish_non_exhaustive()
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}
