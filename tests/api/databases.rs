//! A database of its own for each test, on SQLite, PostgreSQL or MariaDB,
//! and the tools the persistence tests use on it: reading the log directly,
//! locking the writer out, and a TCP proxy that can cut the connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use parlor::db::{self, Backend, DatabaseUrl, DbConnection};

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// Runs each named test function, which takes a `Backend`, once per backend
/// this build supports: `sqlite::name`, `postgres::name`, `mysql::name`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[actix_web::test] async fn $name() { super::$name(parlor::db::Backend::Sqlite).await })*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(#[actix_web::test] async fn $name() { super::$name(parlor::db::Backend::Postgres).await })*
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            $(#[actix_web::test] async fn $name() { super::$name(parlor::db::Backend::Mysql).await })*
        }
    };
}
pub(crate) use on_every_backend;

/// The server each backend's test databases are made on; override with
/// PARLOR_TEST_POSTGRES_URL / PARLOR_TEST_MYSQL_URL.
fn admin_url(backend: Backend) -> Option<String> {
    let (var, default) = match backend {
        Backend::Sqlite => return None,
        Backend::Postgres => ("PARLOR_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        Backend::Mysql => ("PARLOR_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
    };
    Some(std::env::var(var).unwrap_or_else(|_| default.to_string()))
}

/// Whether a backend that cannot be reached fails the run (CI) or is skipped.
fn required(backend: Backend) -> bool {
    let listed = std::env::var("PARLOR_REQUIRE_BACKENDS").unwrap_or_default();
    let name = match backend {
        Backend::Sqlite => return true,
        Backend::Postgres => "postgres",
        Backend::Mysql => "mysql",
    };
    listed.split(',').any(|b| b.trim() == name || b.trim() == "all")
}

pub fn connect(url: &str) -> DbConnection {
    db::establish(&DatabaseUrl::parse(url).expect("a valid URL")).expect("connect to the test database")
}

/// A database that exists for one test (and its restarts) and is dropped after.
pub struct TestDatabase {
    pub backend: Backend,
    /// What the app is given as DATABASE_URL.
    pub url: String,
    /// For server backends: the admin URL and the database's name, to drop it.
    server: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub fn create(backend: Backend) -> Option<Self> {
        let Some(admin) = admin_url(backend) else {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("parlor.db").display());
            return Some(Self { backend, url, server: None, _dir: Some(dir) });
        };
        let mut conn = match DatabaseUrl::parse(&admin)
            .map_err(|e| e.to_string())
            .and_then(|u| db::establish(&u).map_err(|e| e.to_string()))
        {
            Ok(conn) => conn,
            Err(e) if required(backend) => panic!("{} is required but not reachable at {admin}: {e}", backend.label()),
            Err(e) => {
                eprintln!("SKIPPED: {} is not reachable at {admin} ({e})", backend.label());
                return None;
            }
        };
        let name =
            format!("parlor_test_{}_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed), rand_suffix());
        conn.batch_execute(&format!("CREATE DATABASE {name}")).expect("create the test database");
        let (base, _) = admin.rsplit_once('/').expect("the admin URL names a database");
        Some(Self { backend, url: format!("{base}/{name}"), server: Some((admin, name)), _dir: None })
    }

    /// The same database reached through `proxy` (server backends only).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub fn url_via(&self, proxy_port: u16) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap();
        let (userinfo, hostpath) = rest.split_once('@').unwrap();
        let (_, path) = hostpath.split_once('/').unwrap();
        format!("{scheme}://{userinfo}@127.0.0.1:{proxy_port}/{path}")
    }

    pub fn connect(&self) -> DbConnection {
        connect(&self.url)
    }

    /// The ids stored for `room`, in order, read straight from the database.
    pub fn stored_ids(&self, room: &str) -> Vec<i64> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        // The room names tests use are literal and safe to inline.
        let sql = format!("SELECT id FROM messages WHERE room = '{room}' ORDER BY id");
        diesel::sql_query(sql).load::<Row>(&mut self.connect()).unwrap().into_iter().map(|r| r.id).collect()
    }

    /// (id, text) of every message stored for `room`, in id order.
    pub fn stored_messages(&self, room: &str) -> Vec<(i64, String)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            id: i64,
            #[diesel(sql_type = diesel::sql_types::Text)]
            body: String,
        }
        let sql = format!("SELECT id, body FROM messages WHERE room = '{room}' ORDER BY id");
        diesel::sql_query(sql).load::<Row>(&mut self.connect()).unwrap().into_iter().map(|r| (r.id, r.body)).collect()
    }

    /// The stored messages of `room` once there are at least `count` (or
    /// whatever there is after a while, for the caller to judge).
    pub async fn wait_for_messages(&self, room: &str, count: usize) -> Vec<(i64, String)> {
        let start = Instant::now();
        loop {
            let stored = self.stored_messages(room);
            if stored.len() >= count || start.elapsed() > Duration::from_secs(20) {
                return stored;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn has_room(&self, room: &str) -> bool {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let sql = format!("SELECT COUNT(*) AS n FROM rooms WHERE name = '{room}'");
        diesel::sql_query(sql).get_result::<Count>(&mut self.connect()).unwrap().n == 1
    }

    pub async fn wait_for_ids(&self, room: &str, want: &[i64]) {
        let start = Instant::now();
        loop {
            let got = self.stored_ids(room);
            if got == want {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "log has {got:?}, expected {want:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for_room(&self, room: &str) {
        let start = Instant::now();
        while !self.has_room(room) {
            assert!(start.elapsed() < Duration::from_secs(20), "room {room} never reached the log");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Takes a lock, on a connection of its own, that lets readers read but
    /// makes the writer wait, until `WriterLock::release`.
    pub fn lock_out_writer(&self) -> WriterLock {
        let mut conn = self.connect();
        let (lock, unlock) = match self.backend {
            Backend::Sqlite => ("BEGIN EXCLUSIVE", "COMMIT"),
            Backend::Postgres => ("BEGIN; LOCK TABLE messages IN EXCLUSIVE MODE", "COMMIT"),
            Backend::Mysql => ("LOCK TABLES messages READ", "UNLOCK TABLES"),
        };
        conn.batch_execute(lock).expect("lock the messages table");
        WriterLock { conn, unlock }
    }
}

pub struct WriterLock {
    conn: DbConnection,
    unlock: &'static str,
}

impl WriterLock {
    pub fn release(mut self) {
        self.conn.batch_execute(self.unlock).expect("unlock");
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = &self.server else { return };
        let drop_sql = match self.backend {
            // The app may still hold pooled connections.
            Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS {name}"),
        };
        // Never panic here: this may run while a failed test unwinds.
        let dropped = DatabaseUrl::parse(admin)
            .map_err(|e| e.to_string())
            .and_then(|url| db::establish(&url).map_err(|e| e.to_string()))
            .and_then(|mut conn| conn.batch_execute(&drop_sql).map_err(|e| e.to_string()));
        if let Err(e) = dropped {
            eprintln!("could not drop test database {name}: {e}");
        }
    }
}

/// A TCP proxy in front of a server (a database, Redis) that a test can cut (every
/// connection dropped, new ones refused) and restore. It runs on threads of
/// its own: Parlor connects through it synchronously at start-up, while the
/// test's runtime is busy starting Parlor.
pub struct Proxy {
    pub port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Self {
        use std::io::copy;
        use std::net::{Shutdown, TcpListener, TcpStream};

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self { port, cut: Default::default(), links: Default::default() };
        let (cut, links) = (proxy.cut.clone(), proxy.links.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                let mut guard = links.lock().unwrap();
                guard.push(client.try_clone().unwrap());
                guard.push(server.try_clone().unwrap());
                drop(guard);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let _ = copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        proxy
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            let _ = link.shutdown(std::net::Shutdown::Both);
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// The port of a backend's server, from its admin URL.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub fn server_port(backend: Backend) -> u16 {
    let url = admin_url(backend).expect("a server backend");
    let host = url.split_once('@').map_or(url.as_str(), |(_, h)| h);
    let hostport = host.split('/').next().unwrap();
    hostport.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or(match backend {
        Backend::Mysql => 3306,
        _ => 5432,
    })
}
