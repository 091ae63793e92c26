//! The app's own tables in SQLite: its users and their notes. (Sessions and ModelGates links
//! live in the same database, in the tables of tower-sessions-sqlx-store and modelgates-stores.)

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users (id),
    text TEXT NOT NULL,
    -- The summary, once made; the error code and message that stopped the last try.
    summary TEXT,
    summary_error TEXT,
    summary_error_message TEXT
);
CREATE INDEX IF NOT EXISTS notes_to_summarise ON notes (user_id) WHERE summary IS NULL;
";

/// Opens (creating if missing) the database at `url` and creates the app's tables.
///
/// # Errors
///
/// When the URL is invalid or the database cannot be opened or written.
pub async fn connect(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options: SqliteConnectOptions = url.parse()?;
    // WAL: readers do not wait for the writer, so a page loads while the job writes.
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true);
    let pool = SqlitePool::connect_with(options).await?;
    sqlx::raw_sql(SCHEMA).execute(&pool).await?;
    Ok(pool)
}
