//! The message log: one connection type over SQLite, PostgreSQL and
//! MySQL/MariaDB (chosen by the database URL's scheme), a connection pool,
//! the embedded migrations, the queries (one file per area, models beside
//! them), and the writer thread that persists accepted messages in batches.
//!
//! It knows the domain's values and nothing of chat, sessions or HTTP.

/// `INSERT` that skips rows whose primary key exists, and only those: any
/// other refusal (a constraint, a value the column cannot hold) is still an
/// error. SQLite spells it `INSERT OR IGNORE`; PostgreSQL and MySQL take
/// diesel's `ON CONFLICT DO NOTHING` (MySQL's `ON DUPLICATE KEY UPDATE` of
/// the key to itself: its `INSERT IGNORE` would turn every error into a
/// warning and store a truncated value, or none).
macro_rules! insert_ignoring_existing {
    ($conn:expr, $table:expr, $rows:expr) => {{
        use diesel::RunQueryDsl;
        match $conn {
            $crate::db::DbConnection::Sqlite(c) => diesel::insert_or_ignore_into($table).values($rows).execute(c),
            #[cfg(feature = "postgres")]
            $crate::db::DbConnection::Postgresql(c) => {
                diesel::insert_into($table).values($rows).on_conflict_do_nothing().execute(c)
            }
            #[cfg(feature = "mysql")]
            $crate::db::DbConnection::Mysql(c) => {
                diesel::insert_into($table).values($rows).on_conflict_do_nothing().execute(c)
            }
        }
    }};
}

pub mod accounts;
pub mod chat_state;
pub mod dead_letters;
pub mod messages;
pub mod moderation;
pub mod revisions;
pub mod rooms;
pub mod schema;
pub mod server_state;
mod url;
pub mod writer;

pub use url::{Backend, DatabaseUrl};

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, ConnectionError};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::ChatError;

/// A connection to whichever backend the URL names. Queries written once
/// against it run on all three; the few that differ (inserts that skip
/// existing rows, migrations) match on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    #[cfg(feature = "postgres")]
    Postgresql(diesel::PgConnection),
    #[cfg(feature = "mysql")]
    Mysql(diesel::MysqlConnection),
    Sqlite(diesel::SqliteConnection),
}

pub type DbPool = Pool<Manager>;
pub type PooledDb = PooledConnection<Manager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
#[cfg(feature = "postgres")]
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
#[cfg(feature = "mysql")]
const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("unsupported DATABASE_URL '{0}': use sqlite://path, postgres://... or mysql://...")]
    UnsupportedUrl(String),
    #[error("this build has no {0} support: build it with `--features {1}` (see the README)")]
    NotCompiledIn(&'static str, &'static str),
    #[error("cannot connect to {backend} at {url}: {source}")]
    Connect { backend: &'static str, url: String, source: ConnectionError },
    #[error("cannot apply migrations to the {backend} database at {url}: {source}")]
    Migrate { backend: &'static str, url: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("cannot build the connection pool for {url}: {source}")]
    Pool { url: String, source: diesel::r2d2::PoolError },
}

/// Opens one connection to the backend the URL names, set up for a server.
pub fn establish(url: &DatabaseUrl) -> Result<DbConnection, ConnectionError> {
    match url.backend {
        Backend::Sqlite => {
            let mut conn = diesel::SqliteConnection::establish(url.target())?;
            // WAL lets readers run beside the writer; the busy timeout makes
            // a locked database wait instead of failing at once. NORMAL
            // syncs at checkpoints, not every commit: committed messages
            // survive a crash of Parlor, not necessarily of the machine.
            conn.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(DbConnection::Sqlite(conn))
        }
        #[cfg(feature = "postgres")]
        Backend::Postgres => {
            Ok(DbConnection::Postgresql(diesel::PgConnection::establish(&with_link_timeouts(url.target()))?))
        }
        #[cfg(feature = "mysql")]
        Backend::Mysql => Ok(DbConnection::Mysql(diesel::MysqlConnection::establish(url.target())?)),
        #[allow(unreachable_patterns)]
        other => Err(ConnectionError::BadConnection(format!("{} is not compiled in", other.label()))),
    }
}

/// A PostgreSQL URL with timeouts for its link, unless the URL sets them:
/// a server that does not answer fails the connection in 5 s, and TCP
/// keepalives (and the unacknowledged-data timeout) notice a link dropped
/// silently within about 20 s, instead of a query waiting forever.
#[cfg(feature = "postgres")]
fn with_link_timeouts(url: &str) -> String {
    const TIMEOUTS: [(&str, &str); 5] = [
        ("connect_timeout", "5"),
        ("keepalives_idle", "5"),
        ("keepalives_interval", "5"),
        ("keepalives_count", "3"),
        ("tcp_user_timeout", "20000"),
    ];
    let mut url = url.to_string();
    for (key, value) in TIMEOUTS {
        if !url.contains(&format!("{key}=")) {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&format!("{key}={value}"));
        }
    }
    url
}

/// Applies the backend's pending migrations.
pub fn run_migrations(conn: &mut DbConnection) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(drop),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(drop),
        #[cfg(feature = "mysql")]
        DbConnection::Mysql(c) => c.run_pending_migrations(MYSQL_MIGRATIONS).map(drop),
    }
}

/// Reverts every migration (what `diesel migration revert --all` does).
pub fn revert_migrations(conn: &mut DbConnection) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match conn {
        DbConnection::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(drop),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(drop),
        #[cfg(feature = "mysql")]
        DbConnection::Mysql(c) => c.revert_all_migrations(MYSQL_MIGRATIONS).map(drop),
    }
}

/// Makes pooled connections with `establish`, so every one of them gets the
/// backend's set-up.
#[derive(Debug)]
pub struct Manager(DatabaseUrl);

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        establish(&self.0).map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1").map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Connects, applies pending migrations and builds the pool. A wrong URL or a
/// server that refuses is reported at once, naming the backend and the
/// reason, rather than after a pool timeout.
pub fn connect(url: &DatabaseUrl, pool_size: u32, timeout: Duration) -> Result<DbPool, SetupError> {
    let (backend, shown) = (url.backend.label(), url.to_string());
    let mut conn = establish(url).map_err(|source| SetupError::Connect { backend, url: shown.clone(), source })?;
    run_migrations(&mut conn).map_err(|source| SetupError::Migrate { backend, url: shown.clone(), source })?;
    Pool::builder()
        .max_size(pool_size.max(1))
        .min_idle(Some(1))
        .connection_timeout(timeout)
        .build(Manager(url.clone()))
        .map_err(|source| SetupError::Pool { url: shown, source })
}

/// Runs `query` with a pooled connection on a blocking thread, off the
/// async workers; the one way handlers reach the database.
pub async fn run<T, E>(
    pool: &DbPool,
    query: impl FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
) -> Result<T, ChatError>
where
    T: Send + 'static,
    E: Send + 'static,
    ChatError: From<E>,
{
    let pool = pool.clone();
    actix_web::web::block(move || {
        let mut conn = pool.get()?;
        query(&mut conn).map_err(ChatError::from)
    })
    .await?
}
