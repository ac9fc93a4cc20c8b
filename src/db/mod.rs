//! The message log: a diesel connection pool, the embedded migrations, the
//! queries, and the writer thread that persists accepted messages in batches.

pub mod messages;
pub mod rooms;
pub mod schema;
pub mod writer;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub type DbConnection = SqliteConnection;
pub type DbPool = Pool<ConnectionManager<DbConnection>>;
pub type PooledDb = PooledConnection<ConnectionManager<DbConnection>>;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("unsupported DATABASE_URL '{0}': this build keeps the log in SQLite (sqlite://path)")]
    UnsupportedUrl(String),
    #[error("cannot open the SQLite database at '{path}': {source}")]
    Connect { path: String, source: diesel::ConnectionError },
    #[error("cannot apply migrations to '{path}': {source}")]
    Migrate { path: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("cannot build the connection pool for '{path}': {source}")]
    Pool { path: String, source: diesel::r2d2::PoolError },
}

/// `sqlite://parlor.db`, `sqlite:parlor.db` and a bare `parlor.db` all name
/// the file `parlor.db`; `:memory:` is refused because every pooled
/// connection would see a different database.
fn sqlite_path(url: &str) -> Result<&str, SetupError> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    if path.is_empty() || path.contains("://") || path == ":memory:" {
        return Err(SetupError::UnsupportedUrl(url.to_string()));
    }
    Ok(path)
}

/// Sets every pooled SQLite connection up for a concurrent server: WAL lets
/// readers run beside the writer, and the busy timeout makes a locked
/// database wait instead of failing at once.
#[derive(Debug, Clone, Copy)]
struct SqlitePragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Opens the database, applies pending migrations and builds the pool. Errors
/// name the file and the reason at start-up, rather than after a pool timeout.
pub fn connect(url: &str, pool_size: u32) -> Result<DbPool, SetupError> {
    let path = sqlite_path(url)?;
    let mut conn =
        DbConnection::establish(path).map_err(|source| SetupError::Connect { path: path.to_string(), source })?;
    SqlitePragmas
        .on_acquire(&mut conn)
        .map_err(|e| SetupError::Migrate { path: path.to_string(), source: Box::new(e) })?;
    conn.run_pending_migrations(MIGRATIONS).map_err(|source| SetupError::Migrate { path: path.to_string(), source })?;
    Pool::builder()
        // One more than asked: the writer thread keeps one for itself.
        .max_size(pool_size.max(1) + 1)
        .connection_timeout(Duration::from_secs(5))
        .connection_customizer(Box::new(SqlitePragmas))
        .build(ConnectionManager::new(path))
        .map_err(|source| SetupError::Pool { path: path.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn sqlite_urls() {
        assert_eq!(sqlite_path("sqlite://parlor.db").unwrap(), "parlor.db");
        assert_eq!(sqlite_path("sqlite:///var/lib/p.db").unwrap(), "/var/lib/p.db");
        assert_eq!(sqlite_path("data/p.db").unwrap(), "data/p.db");
        assert!(sqlite_path("postgres://localhost/x").is_err());
        assert!(sqlite_path("sqlite://:memory:").is_err());
    }
}
