//! Builds the application: database, ChatServer, writer and HTTP server. The
//! binary and the tests start Parlor through the same `Application::build`.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext};
use actix_server::{Server, ServerHandle};
use actix_service::map_config;
use actix_web::cookie::Key;
use actix_web::dev::AppConfig;
use actix_web::{middleware, web, App};

use crate::accounts::{Hasher, NameRegistry};
use crate::chat::history::MessageLog;
use crate::chat::server::{ChatSettings, Persisted, Shutdown};
use crate::chat::session::SessionSettings;
use crate::chat::ChatServer;
use crate::clock::now_ms;
use crate::cluster::{Cluster, ClusterError, ClusterSettings};
use crate::configuration::Settings;
use crate::db::{self, writer};
use crate::metrics::Metrics;
use crate::rate_limit::KeyedLimiter;
use crate::routes::client::TrustedProxies;
use crate::routes::{self, AccountSettings, AppState};
use crate::socketio::EngineSettings;
use crate::tls::{Tls, TlsError};
use crate::tokens::Secret;
use crate::ws::{self, LiveConnections};

/// The largest message limit allowed: every backend's text column holds it.
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// `/healthz` reports `degraded` once a message has waited this long for the
/// database (or less, when `--max-unwritten-secs` is shorter).
const DEGRADED_AFTER: Duration = Duration::from_secs(2);

/// How long shutdown waits for WebSocket connections to close.
const SESSIONS_CLOSE_WITHIN: Duration = Duration::from_secs(2);

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
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("--durable-ack and --redis-url cannot be combined yet: in a cluster an acknowledged message is kept by Redis (see README, Run several nodes)")]
    DurableAckInCluster,
}

pub struct Application {
    address: SocketAddr,
    server: ServerHandle,
    running: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    chat: Addr<ChatServer>,
    connections: LiveConnections,
    writer: JoinHandle<()>,
    pool: db::DbPool,
    /// Set when stopping begins; see `AppState::draining`.
    draining: Arc<AtomicBool>,
    /// How long to drain before closing the open connections.
    drain: Duration,
    /// Redis keeps the epochs: no clean stop to record.
    in_cluster: bool,
    flush_timeout: Duration,
    /// Reloads the certificate when its files change, with TLS on.
    watching_certificate: Option<actix_web::rt::task::JoinHandle<()>>,
    tls: bool,
}

impl Application {
    /// Opens the database, starts the ChatServer and the writer, and binds.
    /// Call it inside an actix system (`#[actix_web::main]` or `::test`).
    /// Port 0 in `settings.bind` picks a free port; see `address()`.
    pub fn build(settings: Settings) -> Result<Self, StartupError> {
        let key = signing_key(settings.secret_key.as_ref())?;
        let tls = settings.tls_files().map(Tls::load).transpose()?.map(Arc::new);
        if !(1..=MAX_MESSAGE_BYTES).contains(&settings.max_message_bytes) {
            return Err(StartupError::MessageLimit(MAX_MESSAGE_BYTES));
        }
        let pool = db::connect(&settings.database_url, settings.db_pool_size, settings.db_timeout())?;
        let cluster = match &settings.redis_url {
            Some(url) => {
                if settings.durable_ack {
                    return Err(StartupError::DurableAckInCluster);
                }
                let node = settings.node_name.clone().unwrap_or_else(|| format!("{:08x}", rand::random::<u32>()));
                let cluster_settings = ClusterSettings {
                    redis_url: url.clone(),
                    prefix: settings.redis_prefix.clone(),
                    stream_len: settings.redis_stream_len.max(1),
                    node,
                };
                Some(Cluster::new(cluster_settings, pool.clone())?)
            }
            None => None,
        };
        let (saved, registered) = {
            let mut conn = pool.get()?;
            (db::chat_state::load(&mut conn, now_ms(), cluster.is_some())?, db::accounts::all_names(&mut conn)?)
        };
        if let Some(cluster) = &cluster {
            log::info!("cluster node {} over Redis (keys under {:?})", cluster.node(), settings.redis_prefix);
        }
        log::info!("message log: {} ({} rooms)", settings.database_url, saved.rooms.len());

        let write_queue = settings.write_queue;
        let chat_settings = ChatSettings {
            history_on_join: settings.history_on_join,
            max_queued_bytes: settings.session_queue_bytes.max(1),
            presence_batch_above: settings.presence_batch_above,
            durable_ack: settings.durable_ack,
            max_unwritten: settings.max_unwritten(),
            kick_cooldown: Duration::from_secs(settings.kick_cooldown_secs),
        };
        let metrics = Arc::new(Metrics::new());
        let mut writer_thread = None;
        let chat = ChatServer::create(|ctx| {
            let addr = ctx.address();
            let url = settings.database_url.clone();
            let on_commit = move |committed| addr.do_send(Persisted(committed));
            let (queue, handle) = writer::spawn(url, write_queue, metrics.clone(), on_commit);
            writer_thread = Some(handle);
            let link = cluster.as_ref().map(|c| c.start(ctx.address().recipient()));
            ChatServer::new(saved, queue, chat_settings, metrics.clone(), link)
        });

        if let Some(cluster) = &cluster {
            actix_web::rt::spawn(routes::admin::report_figures(chat.clone(), metrics.clone(), cluster.clone()));
        }
        let registry = Arc::new(NameRegistry::new(registered));
        let draining = Arc::new(AtomicBool::new(false));
        let connections = LiveConnections::new(settings.max_connections(), settings.max_connections_per_address);
        let state = web::Data::new(AppState {
            chat: chat.clone(),
            log: MessageLog { pool: pool.clone(), recent: cluster.as_ref().map(Cluster::recent) },
            cluster: cluster.clone(),
            pool,
            key,
            templates: routes::pages::templates()?,
            sessions: Arc::new(SessionSettings {
                guests: settings.guests,
                registry: registry.clone(),
                max_message_bytes: settings.max_message_bytes,
                max_queued_bytes: settings.session_queue_bytes.max(1),
                rate_per_sec: settings.rate_per_sec,
                rate_burst: settings.rate_burst,
                metrics: metrics.clone(),
            }),
            admin_token: settings.admin_token.clone().filter(|t| !t.expose().is_empty()),
            accounts: AccountSettings {
                registry,
                hasher: Hasher::for_this_machine(),
                session_ttl: settings.session_ttl(),
                attempts_per_name: KeyedLimiter::new(1.0 / 12.0, 5.0),
                attempts_per_device: KeyedLimiter::new(1.0 / 12.0, 5.0),
                attempts_per_ip: KeyedLimiter::new(1.0 / 3.0, 20.0),
                cluster,
            },
            proxies: TrustedProxies::new(settings.trusted_proxies.clone(), tls.is_some()),
            connections: connections.clone(),
            polling: Arc::default(),
            engine: Arc::new(EngineSettings {
                ping_interval: settings.heartbeat_interval(),
                ping_timeout: settings
                    .client_timeout()
                    .saturating_sub(settings.heartbeat_interval())
                    .max(Duration::from_secs(1)),
                max_payload: settings.max_frame_bytes(),
                max_buffered: settings.session_buffer_bytes.max(1),
            }),
            allowed_origins: settings
                .allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .collect(),
            metrics,
            degraded_after: DEGRADED_AFTER.min(settings.max_unwritten()),
            draining: draining.clone(),
        });

        let listener = TcpListener::bind(&settings.bind)
            .map_err(|source| StartupError::Bind { addr: settings.bind.clone(), source })?;
        let address =
            listener.local_addr().map_err(|source| StartupError::Bind { addr: settings.bind.clone(), source })?;
        let pool = state.pool.clone();
        let server = http_server(state, listener, &settings, tls.as_ref().map(|t| t.acceptor()))
            .map_err(|source| StartupError::Bind { addr: settings.bind.clone(), source })?;
        Ok(Self {
            address,
            server: server.handle(),
            running: actix_web::rt::spawn(server),
            chat,
            connections,
            writer: writer_thread.expect("ChatServer::create runs its closure at once"),
            pool,
            draining,
            drain: Duration::from_secs(settings.drain_secs),
            in_cluster: settings.redis_url.is_some(),
            flush_timeout: Duration::from_secs(settings.shutdown_timeout_secs),
            watching_certificate: tls.clone().map(|tls| actix_web::rt::spawn(tls.watch())),
            tls: tls.is_some(),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Where it serves: `https://…` with TLS on, else `http://…`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.address)
    }

    /// Serves until SIGINT or SIGTERM, then stops gracefully; a second
    /// signal meanwhile ends the process at once. Answers whether every
    /// accepted message reached the log.
    pub async fn run_until_stopped(self) -> std::io::Result<bool> {
        wait_for_signal().await?;
        actix_web::rt::spawn(async {
            if wait_for_signal().await.is_ok() {
                log::warn!("second signal: exiting at once, without what the message log had not taken");
                std::process::exit(130);
            }
        });
        self.draining.store(true, Ordering::Relaxed);
        if !self.drain.is_zero() {
            log::info!("draining for {:?}: /readyz answers 503 and new WebSockets are refused", self.drain);
            actix_web::rt::time::sleep(self.drain).await;
        }
        log::info!("shutting down: closing connections and flushing the message log (a second Ctrl-C exits at once)");
        Ok(self.stop().await)
    }

    /// Stops accepting, closes every WebSocket (1001), waits for connections
    /// to finish, and returns once every accepted message is in the log
    /// (`true`), or once `--shutdown-timeout-secs` passed without that
    /// (`false`: the writer is still trying, and the process should exit).
    pub async fn stop(self) -> bool {
        self.draining.store(true, Ordering::Relaxed);
        // No new connections from here on; the ChatServer closes any that
        // were accepted but had not registered yet.
        self.server.pause().await;
        let _ = self.chat.send(Shutdown).await;
        // WebSockets live outside the HTTP server's connection count: give
        // their close frames a moment to go out (a socket that cannot write
        // its frame gives up after its own one-second grace).
        if !self.connections.all_ended(SESSIONS_CLOSE_WITHIN).await {
            log::warn!("{} WebSocket connections had not closed; stopping anyway", self.connections.count());
        }
        self.server.stop(true).await;
        let _ = self.running.await;
        if let Some(watching) = &self.watching_certificate {
            watching.abort();
        }
        let writer = self.writer;
        match actix_web::rt::time::timeout(self.flush_timeout, web::block(move || writer.join())).await {
            Ok(Ok(Ok(()))) if self.in_cluster => true,
            Ok(Ok(Ok(()))) => {
                // Everything handed out is in the log: the next start may
                // keep every room's epoch.
                let ended = db::run(&self.pool, |conn| db::server_state::end_run(conn, now_ms())).await;
                if let Err(e) = ended {
                    log::warn!("cannot record the clean stop (the next start will renew every epoch): {e}");
                }
                true
            }
            Ok(_) => {
                log::error!("the message log writer ended abnormally");
                false
            }
            Err(_) => {
                log::error!(
                    "the message log did not take the queued messages within {:?}; exiting without them",
                    self.flush_timeout
                );
                false
            }
        }
    }
}

fn http_server(
    state: web::Data<AppState>,
    listener: TcpListener,
    settings: &Settings,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<Server> {
    let hsts = tls.is_some();
    let static_dir = settings.static_dir.clone();
    let limits = Arc::new(ws::Limits {
        max_frame_bytes: settings.max_frame_bytes(),
        max_buffered_bytes: settings.session_buffer_bytes.max(1),
        heartbeat_interval: settings.heartbeat_interval(),
        client_timeout: settings.client_timeout(),
    });
    let mut server = Server::build();
    if let Some(workers) = settings.workers {
        server = server.workers(workers.max(1));
    }
    let server = server
        .disable_signals()
        .shutdown_timeout(5)
        .listen("parlor", listener, move || {
            let (app_state, static_dir) = (state.clone(), static_dir.clone());
            let make_app = move || {
                map_config(
                    App::new()
                        .app_data(app_state.clone())
                        .wrap(routes::security_headers(hsts))
                        .wrap(
                            middleware::Logger::new("%{client}xi \"%r\" %s %b %Dms")
                                .custom_request_replace("client", client_for_log)
                                .exclude("/healthz"),
                        )
                        .configure(routes::configure)
                        .service(actix_files::Files::new("/static", &static_dir)),
                    |_| AppConfig::default(),
                )
            };
            let state = state.clone();
            let start_session = move |socket, accepted| routes::ws::take_socket(&state, socket, accepted);
            ws::http_service(make_app, routes::UPGRADE_PATHS, limits.clone(), tls.clone(), start_session)
        })?
        .run();
    Ok(server)
}

/// The client's address for the access log, through trusted proxies only.
fn client_for_log(req: &actix_web::dev::ServiceRequest) -> String {
    let proxies = req.app_data::<web::Data<AppState>>().map(|state| &state.proxies);
    proxies.and_then(|p| p.client_ip(req.request())).map_or_else(|| "-".into(), |ip| ip.to_string())
}

fn signing_key(secret: Option<&Secret>) -> Result<Key, StartupError> {
    match secret.map(Secret::expose) {
        Some(secret) if secret.len() >= 32 => Ok(Key::derive_from(secret.as_bytes())),
        Some(_) => Err(StartupError::WeakSecret),
        None => {
            log::warn!("PARLOR_SECRET_KEY is not set: using a random key, so name cookies end with this process");
            Ok(Key::generate())
        }
    }
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
