//! Builds the application: database, ChatServer, writer and HTTP server. The
//! binary and the tests start Parlor through the same `Application::build`.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext};
use actix_http::HttpService;
use actix_server::{Server, ServerHandle};
use actix_service::{fn_factory, fn_service, map_config, ServiceFactory};
use actix_web::cookie::Key;
use actix_web::dev::AppConfig;
use actix_web::{middleware, web, App};
use tera::Tera;

use crate::accounts::NameRegistry;
use crate::chat::server::{self, ChatServer, Persisted};
use crate::chat::session::SessionSettings;
use crate::configuration::Settings;
use crate::db::{self, writer, DbPool};
use crate::domain::RoomName;
use crate::rate_limit::KeyedLimiter;
use crate::routes;

/// The largest message limit allowed: every backend's text column holds it.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// How long shutdown waits for sessions to close.
const SESSIONS_CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// What every handler can reach.
pub struct AppState {
    pub chat: Addr<ChatServer>,
    pub pool: DbPool,
    pub key: Key,
    pub templates: Tera,
    pub limits: Arc<SessionSettings>,
    pub admin_token: Option<String>,
    pub allowed_origins: Vec<String>,
    pub accounts: AccountSettings,
}

/// How people log in.
pub struct AccountSettings {
    pub registry: Arc<NameRegistry>,
    pub session_ttl: Duration,
    /// Login attempts per account: 5 at once, then one every 12 seconds.
    pub attempts_per_name: KeyedLimiter<String>,
    /// Log-in and sign-up attempts per address: 20 at once, then one every 3
    /// seconds (an office behind one address has several people).
    pub attempts_per_ip: KeyedLimiter<std::net::IpAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] db::SetupError),
    #[error("cannot read the message log: {0}")]
    Load(#[from] diesel::result::Error),
    #[error("cannot get a database connection: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    #[error("the message size limit must be 1 to {0} bytes")]
    MessageLimit(usize),
    #[error("PARLOR_SECRET_KEY must be at least 32 bytes long")]
    WeakSecret,
    #[error("cannot load the page templates: {0}")]
    Templates(#[from] tera::Error),
}

pub struct Application {
    address: SocketAddr,
    server: ServerHandle,
    running: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    chat: Addr<ChatServer>,
    /// Running WebSocket sessions (`SessionSettings::running`).
    sessions: Arc<AtomicUsize>,
    writer: JoinHandle<()>,
    flush_timeout: Duration,
}

impl Application {
    /// Opens the database, starts the ChatServer and the writer, and binds.
    /// Call it inside an actix system (`#[actix_web::main]` or `::test`).
    /// Port 0 in `settings.bind` picks a free port; see `address()`.
    pub fn build(settings: Settings) -> Result<Self, StartupError> {
        let key = signing_key(settings.secret_key.as_deref())?;
        if !(1..=MAX_MESSAGE_BYTES).contains(&settings.max_message_bytes) {
            return Err(StartupError::MessageLimit(MAX_MESSAGE_BYTES));
        }
        let pool = db::connect(&settings.database_url, settings.db_pool_size, settings.db_timeout())?;
        let known_rooms = load_rooms(&pool)?;
        let registry = NameRegistry::new(db::accounts::all_name_keys(&mut *pool.get()?)?);
        let policies = server::RoomPolicies {
            banned: db::accounts::banned_keys(&mut *pool.get()?)?,
            closed: db::moderation::closed_rooms(&mut *pool.get()?)?
                .into_iter()
                .filter_map(|name| RoomName::parse(&name).ok())
                .collect(),
            private: db::moderation::private_rooms(&mut *pool.get()?)?
                .into_iter()
                .filter_map(|(name, keys)| Some((RoomName::parse(&name).ok()?, keys)))
                .collect(),
            mutes: db::moderation::live_mutes(&mut *pool.get()?, crate::chat::message::now_ms())?
                .into_iter()
                .filter_map(|(room, key, until)| Some((RoomName::parse(&room).ok()?, key, until)))
                .collect(),
        };
        let shown = db::DatabaseUrl::parse(&settings.database_url).map(|u| u.display()).unwrap_or_default();
        log::info!("message log: {shown} ({} rooms)", known_rooms.len());

        let (write_queue, history_on_join) = (settings.write_queue, settings.history_on_join);
        let mut writer_thread = None;
        let chat = ChatServer::create(|ctx| {
            let addr = ctx.address();
            let (tx, handle) = writer::spawn(pool.clone(), write_queue, move |marks| addr.do_send(Persisted(marks)));
            writer_thread = Some(handle);
            ChatServer::new(known_rooms, policies, tx, history_on_join)
        });

        let registry = Arc::new(registry);
        let sessions = Arc::new(AtomicUsize::new(0));
        let state = web::Data::new(AppState {
            chat: chat.clone(),
            pool,
            key,
            templates: routes::pages::templates()?,
            limits: Arc::new(SessionSettings {
                guests: settings.guests,
                registry: registry.clone(),
                running: sessions.clone(),
                max_message_bytes: settings.max_message_bytes,
                max_frame_bytes: settings.max_frame_bytes(),
                max_buffered_bytes: settings.session_buffer_bytes.max(1),
                heartbeat_interval: settings.heartbeat_interval(),
                client_timeout: settings.client_timeout(),
                outbound_queue: settings.session_queue.max(1),
                rate_per_sec: settings.rate_per_sec,
                rate_burst: settings.rate_burst,
            }),
            admin_token: settings.admin_token.clone().filter(|t| !t.is_empty()),
            accounts: AccountSettings {
                registry,
                session_ttl: settings.session_ttl(),
                attempts_per_name: KeyedLimiter::new(1.0 / 12.0, 5.0),
                attempts_per_ip: KeyedLimiter::new(1.0 / 3.0, 20.0),
            },
            allowed_origins: settings
                .allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .collect(),
        });

        let listener = TcpListener::bind(&settings.bind)
            .map_err(|source| StartupError::Bind { addr: settings.bind.clone(), source })?;
        let address =
            listener.local_addr().map_err(|source| StartupError::Bind { addr: settings.bind.clone(), source })?;
        let server = http_server(state, listener, &settings)
            .map_err(|source| StartupError::Bind { addr: settings.bind.clone(), source })?;
        let handle = server.handle();
        Ok(Self {
            address,
            server: handle,
            running: actix_web::rt::spawn(server),
            chat,
            sessions,
            writer: writer_thread.expect("ChatServer::create runs its closure at once"),
            flush_timeout: Duration::from_secs(settings.shutdown_timeout_secs),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGINT or SIGTERM, then stops gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        wait_for_signal().await?;
        log::info!("shutting down: closing connections and flushing the message log");
        self.stop().await;
        Ok(())
    }

    /// Stops accepting, closes every WebSocket (1001), waits for connections
    /// to finish, and returns once every accepted message is in the log.
    pub async fn stop(self) {
        // No new connections from here on; the ChatServer closes any that
        // were accepted but had not registered yet.
        self.server.pause().await;
        let _ = self.chat.send(server::Shutdown).await;
        // Sessions live outside the HTTP server's connection count: give
        // their close frames a moment to go out (a session that cannot
        // write its frame gives up after its own one-second grace).
        let deadline = std::time::Instant::now() + SESSIONS_CLOSE_WITHIN;
        while self.sessions.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
            actix_web::rt::time::sleep(Duration::from_millis(10)).await;
        }
        self.server.stop(true).await;
        let _ = self.running.await;
        let writer = self.writer;
        match actix_web::rt::time::timeout(self.flush_timeout, web::block(move || writer.join())).await {
            Ok(Ok(Ok(()))) => {}
            Ok(_) => log::error!("the message log writer ended abnormally"),
            Err(_) => log::error!(
                "the message log did not take the queued messages within {:?}; exiting without them",
                self.flush_timeout
            ),
        }
    }
}

fn http_server(state: web::Data<AppState>, listener: TcpListener, settings: &Settings) -> std::io::Result<Server> {
    let static_dir = settings.static_dir.clone();
    let make_app = move |state: web::Data<AppState>| {
        map_config(
            App::new()
                .app_data(state)
                .wrap(middleware::Logger::new("%a \"%r\" %s %b %Dms").exclude("/healthz"))
                .configure(routes::configure)
                .service(actix_files::Files::new("/static", &static_dir)),
            |_| AppConfig::default(),
        )
    };
    let mut server = Server::build();
    if let Some(workers) = settings.workers {
        server = server.workers(workers.max(1));
    }
    let server = server
        .disable_signals()
        .shutdown_timeout(5)
        .listen("parlor", listener, move || {
            let upgrade_state = state.clone();
            let upgrade_app = make_app.clone();
            // Upgrade requests reach `routes::ws::upgrade` with their
            // connection; it runs them through this worker's own app.
            let upgrade = fn_factory(move || {
                let state = upgrade_state.clone();
                let app = upgrade_app(state.clone());
                async move {
                    let app = std::rc::Rc::new(app.new_service(()).await.map_err(|_| ())?);
                    Ok::<_, ()>(fn_service(move |(req, framed)| {
                        routes::ws::upgrade(req, framed, app.clone(), state.clone())
                    }))
                }
            });
            HttpService::build()
                .client_disconnect_timeout(Duration::from_secs(1))
                .upgrade(upgrade)
                .h1(make_app(state.clone()))
                .tcp()
        })?
        .run();
    Ok(server)
}

fn signing_key(secret: Option<&str>) -> Result<Key, StartupError> {
    match secret {
        Some(secret) if secret.len() >= 32 => Ok(Key::derive_from(secret.as_bytes())),
        Some(_) => Err(StartupError::WeakSecret),
        None => {
            log::warn!("PARLOR_SECRET_KEY is not set: using a random key, so name cookies end with this process");
            Ok(Key::generate())
        }
    }
}

/// Every room in the log with its highest message id, so ids continue where
/// they stopped.
fn load_rooms(pool: &DbPool) -> Result<Vec<(RoomName, i64)>, StartupError> {
    let mut conn = pool.get()?;
    let mut rooms: std::collections::HashMap<String, i64> =
        db::rooms::all_names(&mut conn)?.into_iter().map(|name| (name, 0)).collect();
    for (room, last) in db::messages::last_ids(&mut conn)? {
        rooms.insert(room, last.unwrap_or(0));
    }
    Ok(rooms
        .into_iter()
        .filter_map(|(name, last)| match RoomName::parse(&name) {
            Ok(room) => Some((room, last)),
            Err(_) => {
                log::warn!("ignoring room {name:?} in the log: not a valid room name");
                None
            }
        })
        .collect())
}

async fn wait_for_signal() -> std::io::Result<()> {
    use actix_web::rt::signal;
    #[cfg(unix)]
    {
        let mut term = signal::unix::signal(signal::unix::SignalKind::terminate())?;
        let interrupt = Box::pin(signal::ctrl_c());
        let terminate = Box::pin(term.recv());
        futures_util::future::select(interrupt, terminate).await;
        Ok(())
    }
    #[cfg(not(unix))]
    signal::ctrl_c().await
}
