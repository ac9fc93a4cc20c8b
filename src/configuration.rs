//! Settings from command-line flags, each with an environment fallback,
//! parsed once into typed values.

use std::ffi::OsStr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::Parser;

use crate::db::DatabaseUrl;
use crate::ipnet::IpNet;
use crate::tls::TlsFiles;
use crate::tokens::Secret;

#[derive(Debug, Clone, Parser)]
#[command(name = "parlor", version, about = "A real-time, room-based chat server")]
pub struct Settings {
    /// Run a command instead of the server.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on.
    #[arg(long, env = "PARLOR_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// Where the message log lives: `sqlite://path` (or a bare path),
    /// `postgres://user@host/db` or `mysql://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://parlor.db",
        global = true,
        hide_env_values = true,
        value_parser = DatabaseUrlParser
    )]
    pub database_url: DatabaseUrl,

    /// Serve HTTPS and WSS with this certificate chain (PEM; certbot's
    /// `fullchain.pem`). Needs `--tls-key`. The files are watched, and read
    /// again on SIGHUP: a renewed certificate needs no restart.
    #[arg(long, env = "PARLOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The certificate's private key (PEM; certbot's `privkey.pem`).
    #[arg(long, env = "PARLOR_TLS_KEY", requires = "tls_cert", hide_env_values = true)]
    pub tls_key: Option<std::path::PathBuf>,

    /// Seconds a member an admin kicked is kept out of that room (a guest by
    /// their address too, whatever name they come back under). 0: a kick
    /// only takes them out.
    #[arg(long, env = "PARLOR_KICK_COOLDOWN_SECS", default_value_t = 600)]
    pub kick_cooldown_secs: u64,

    /// Connections in the database pool.
    #[arg(long, env = "PARLOR_DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,

    /// Seconds to wait for a database connection before a request fails.
    #[arg(long, env = "PARLOR_DB_TIMEOUT", default_value_t = 5)]
    pub db_timeout_secs: u64,

    /// Bearer token for the admin routes; without one they are switched off.
    #[arg(long, env = "PARLOR_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// Other origins (`https://chat.example.com`) whose pages may open
    /// WebSockets, comma-separated, besides the pages Parlor serves itself
    /// (whose `Origin` names the host the request was sent to).
    #[arg(long, env = "PARLOR_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Reverse proxies (addresses or ranges like `10.0.0.0/8`,
    /// comma-separated) whose `X-Forwarded-For`, `X-Forwarded-Host`,
    /// `X-Forwarded-Proto` and `Forwarded` headers are believed. From anyone
    /// else those headers are ignored.
    #[arg(long, env = "PARLOR_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// Key that signs the session cookie (at least 32 bytes). Without one a
    /// random key is generated and cookies do not survive a restart.
    #[arg(long, env = "PARLOR_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Secret>,

    /// Whether people may chat without an account (under a display name of
    /// their choice that no registered user has).
    #[arg(long, env = "PARLOR_GUESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub guests: bool,

    /// Hours a login lasts.
    #[arg(long, env = "PARLOR_SESSION_HOURS", default_value_t = 720)]
    pub session_hours: u64,

    /// Largest message text, in bytes.
    #[arg(long, env = "PARLOR_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,

    /// Rooms with more members than this announce comings and goings in
    /// batches (`presence_batch`, a few times a second) instead of one
    /// `presence` frame per change for every member.
    #[arg(long, env = "PARLOR_PRESENCE_BATCH_ABOVE", default_value_t = 100)]
    pub presence_batch_above: usize,

    /// Messages sent with `joined` (the latest N, or N after `since`).
    #[arg(long, env = "PARLOR_HISTORY_ON_JOIN", default_value_t = 50)]
    pub history_on_join: usize,

    /// Seconds between server pings.
    #[arg(long, env = "PARLOR_HEARTBEAT_INTERVAL", default_value_t = 5)]
    pub heartbeat_interval_secs: u64,

    /// Seconds of client silence before the server drops the connection.
    #[arg(long, env = "PARLOR_CLIENT_TIMEOUT", default_value_t = 15)]
    pub client_timeout_secs: u64,

    /// WebSocket connections open at once, in all. Default: what the
    /// process's file limit leaves after 512 kept in reserve, so that pages,
    /// logins, `/healthz` and the database still have descriptors at the cap.
    #[arg(long, env = "PARLOR_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// WebSocket connections open at once from one client address (an IPv6
    /// client: its /64). 0: no cap.
    #[arg(long, env = "PARLOR_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1000)]
    pub max_connections_per_address: u32,

    /// Bytes of frames that may wait for one connection's session to take
    /// them (or behind a history lookup) before it counts as a slow consumer
    /// and is disconnected. A burst of many small frames (a join storm's
    /// presence notices) stays far below.
    #[arg(long, env = "PARLOR_SESSION_QUEUE_BYTES", default_value_t = 4 << 20)]
    pub session_queue_bytes: usize,

    /// Bytes waiting to be written to one connection (beyond what the
    /// kernel's socket buffer holds) before its client counts as a slow
    /// consumer and is disconnected.
    #[arg(long, env = "PARLOR_SESSION_BUFFER_BYTES", default_value_t = 1 << 20)]
    pub session_buffer_bytes: usize,

    /// Accepted messages waiting for the database writer before new sends
    /// are refused with `unavailable`.
    #[arg(long, env = "PARLOR_WRITE_QUEUE", default_value_t = 10_000)]
    pub write_queue: usize,

    /// Wait for the commit before a message is confirmed to its sender or
    /// delivered to its room: an acknowledged message survives a crash of
    /// Parlor (and, on PostgreSQL and MySQL, of the machine), at the cost of
    /// one commit's latency per message (group commit shares it).
    #[arg(long, env = "PARLOR_DURABLE_ACK", default_value_t = false, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true")]
    pub durable_ack: bool,

    /// Seconds the oldest uncommitted message may wait for the database
    /// before new sends are refused with `unavailable`: without
    /// `--durable-ack`, the most a crash during a database stall can lose.
    #[arg(long, env = "PARLOR_MAX_UNWRITTEN_SECS", default_value_t = 10)]
    pub max_unwritten_secs: u64,

    /// Messages one connection may send per second on average (0: no limit).
    #[arg(long, env = "PARLOR_RATE_PER_SEC", default_value_t = 10.0)]
    pub rate_per_sec: f64,

    /// Messages one connection may send in a burst above the average.
    #[arg(long, env = "PARLOR_RATE_BURST", default_value_t = 30.0)]
    pub rate_burst: f64,

    /// On shutdown, how long to wait for the message log to take the messages
    /// still queued before exiting anyway (and saying how many were lost).
    #[arg(long, env = "PARLOR_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// On SIGTERM, answer `/readyz` with 503 and refuse new WebSockets for
    /// this many seconds before closing the open ones, so that a load
    /// balancer stops sending clients here first (0: close at once).
    #[arg(long, env = "PARLOR_DRAIN_SECS", default_value_t = 0)]
    pub drain_secs: u64,

    /// Run as one node of a cluster sharing this Redis (and the same
    /// database): messages, ids and epochs go through Redis. Without it
    /// Parlor is a single process and needs no Redis.
    #[arg(long, env = "PARLOR_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Starts every Redis key and channel of this cluster: clusters (or test
    /// runs) sharing one Redis stay apart.
    #[arg(long, env = "PARLOR_REDIS_PREFIX", default_value = "parlor:")]
    pub redis_prefix: String,

    /// Messages each room's stream in Redis keeps, about: how far back a
    /// client reconnecting to another node is served from Redis, and how
    /// long a message may wait for the database before only the database
    /// can answer for it.
    #[arg(long, env = "PARLOR_REDIS_STREAM_LEN", default_value_t = 1000)]
    pub redis_stream_len: usize,

    /// This node's name in the cluster (default: a random one per start).
    #[arg(long, env = "PARLOR_NODE_NAME")]
    pub node_name: Option<String>,

    /// Folder served under /static.
    #[arg(long, env = "PARLOR_STATIC_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/static"))]
    pub static_dir: String,

    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "PARLOR_WORKERS")]
    pub workers: Option<usize>,
}

/// Parses `--database-url` without echoing it: clap's own error would
/// repeat the value, password and all.
#[derive(Clone)]
struct DatabaseUrlParser;

impl clap::builder::TypedValueParser for DatabaseUrlParser {
    type Value = DatabaseUrl;

    fn parse_ref(&self, cmd: &clap::Command, _: Option<&clap::Arg>, value: &OsStr) -> Result<DatabaseUrl, clap::Error> {
        let refuse = |why: String| clap::Error::raw(ErrorKind::ValueValidation, format!("{why}\n")).with_cmd(cmd);
        let url = value.to_str().ok_or_else(|| refuse("the database URL is not valid UTF-8".into()))?;
        DatabaseUrl::parse(url).map_err(|e| refuse(e.to_string()))
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Manage accounts from the command line.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Create an admin account (or make an existing account an admin with a
    /// new password). The password is read from standard input.
    Create {
        /// The account's name.
        name: String,
    },
}

impl Settings {
    /// Defaults as if no flag and no environment variable were given; tests
    /// start from here and change what they need.
    pub fn defaults() -> Self {
        use clap::{builder::Resettable, CommandFactory, FromArgMatches};
        // Environment variables are ignored here, so a developer's shell
        // cannot change what tests run with.
        let matches = Self::command().mut_args(|arg| arg.env(Resettable::Reset)).get_matches_from(["parlor"]);
        Self::from_arg_matches(&matches).expect("the defaults are valid settings")
    }

    /// `--max-connections`, or what the file limit leaves after the reserve.
    pub fn max_connections(&self) -> usize {
        const RESERVE: usize = 512;
        self.max_connections
            .unwrap_or_else(|| open_file_limit().map_or(10_000, |limit| limit.saturating_sub(RESERVE).max(1)))
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_hours * 3600)
    }

    pub fn max_unwritten(&self) -> Duration {
        Duration::from_secs(self.max_unwritten_secs.max(1))
    }

    /// The certificate and key to serve TLS with, when both are given.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles { cert: self.tls_cert.clone()?, key: self.tls_key.clone()? })
    }

    pub fn db_timeout(&self) -> Duration {
        Duration::from_secs(self.db_timeout_secs.max(1))
    }

    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval_secs)
    }

    pub fn client_timeout(&self) -> Duration {
        Duration::from_secs(self.client_timeout_secs)
    }

    /// The WebSocket transport's frame limit. It leaves room for JSON escaping
    /// of a maximal text (up to 6 bytes per character) so that an oversize
    /// text gets a `too_large` answer, and only absurd frames are cut at the
    /// transport with close code 1009.
    pub fn max_frame_bytes(&self) -> usize {
        (self.max_message_bytes * 6 + 1024).max(64 * 1024)
    }
}

/// The process's soft limit on open files (Linux: from `/proc/self/limits`).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut settings = Settings::defaults();
        settings.admin_token = Some("hunter2-admin".into());
        settings.secret_key = Some("hunter2-signing-key-that-is-long-enough".into());
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Secret(***)"));
    }

    #[test]
    fn a_bad_database_url_is_refused_when_parsed_without_its_password() {
        let err = Settings::try_parse_from(["parlor", "--database-url", "postgress://u:hunter2@h/db"]).unwrap_err();
        let shown = err.to_string();
        assert!(shown.contains("unsupported DATABASE_URL 'postgress://u:***@h/db'"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let settings = Settings::try_parse_from(["parlor", "--database-url", "sqlite://x.db"]).unwrap();
        assert_eq!(settings.database_url.as_str(), "sqlite://x.db");
    }
}
