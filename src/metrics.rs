//! What operators watch: counters, gauges and histograms, served by
//! `GET /metrics` in Prometheus' text format. One `Metrics` per running
//! application (tests run several in one process). Figures that are state
//! rather than events (rooms, queue depth, memory) are sampled when scraped.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Why something was refused or ended: a protocol error code, or a cap.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: &'static str,
}

/// Which kind of connection: `guest` or `account`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub connections: Family<Kind, Gauge>,
    pub connections_refused: Family<Reason, Counter>,
    pub joins: Counter,
    pub leaves: Counter,
    pub messages_accepted: Counter,
    pub messages_refused: Family<Reason, Counter>,
    pub deliveries: Counter,
    pub bytes_out: Counter,
    pub slow_consumers: Counter,
    pub resends: Counter,
    pub commit_batch_size: Histogram,
    pub commit_seconds: Histogram,
    pub database_errors: Counter,
    pub dead_letters: Counter,
    pub login_attempts: Counter,
    pub login_refusals: Family<Reason, Counter>,
    pub rooms: Gauge,
    pub members: Gauge,
    pub session_queue_bytes: Gauge,
    pub socket_buffer_bytes: Gauge,
    pub polling_sessions: Gauge,
    pub writer_queue_depth: Gauge,
    pub oldest_unwritten_seconds: Gauge<f64, AtomicU64>,
    pub resident_memory_bytes: Gauge,
    pub open_fds: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("parlor");
        let m = Self {
            registry: Registry::default(),
            connections: Family::default(),
            connections_refused: Family::default(),
            joins: Counter::default(),
            leaves: Counter::default(),
            messages_accepted: Counter::default(),
            messages_refused: Family::default(),
            deliveries: Counter::default(),
            bytes_out: Counter::default(),
            slow_consumers: Counter::default(),
            resends: Counter::default(),
            // 1 to 1024 rows.
            commit_batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            // 0.25 ms to about 4 s.
            commit_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 15)),
            database_errors: Counter::default(),
            dead_letters: Counter::default(),
            login_attempts: Counter::default(),
            login_refusals: Family::default(),
            rooms: Gauge::default(),
            members: Gauge::default(),
            session_queue_bytes: Gauge::default(),
            socket_buffer_bytes: Gauge::default(),
            polling_sessions: Gauge::default(),
            writer_queue_depth: Gauge::default(),
            oldest_unwritten_seconds: Gauge::default(),
            resident_memory_bytes: Gauge::default(),
            open_fds: Gauge::default(),
        };
        r.register("connections", "Open WebSocket connections", m.connections.clone());
        r.register(
            "connections_refused",
            "WebSocket handshakes refused by a connection cap",
            m.connections_refused.clone(),
        );
        r.register("joins", "Rooms joined", m.joins.clone());
        r.register("leaves", "Rooms left (by leaving, disconnecting or being sent out)", m.leaves.clone());
        r.register("messages_accepted", "Messages accepted (given an id)", m.messages_accepted.clone());
        r.register("messages_refused", "Sends refused, by error code", m.messages_refused.clone());
        r.register("deliveries", "Frames handed to sessions for their clients", m.deliveries.clone());
        r.register("delivered_bytes", "Bytes of the frames handed to sessions", m.bytes_out.clone());
        r.register("slow_consumers", "Connections closed for falling behind", m.slow_consumers.clone());
        r.register("resends", "Sends recognised as resends of a stored message", m.resends.clone());
        r.register("commit_batch_size", "Writes per message log commit", m.commit_batch_size.clone());
        r.register("commit_seconds", "Time to commit one batch to the message log", m.commit_seconds.clone());
        r.register("database_errors", "Failed message log writes (each retried)", m.database_errors.clone());
        r.register("dead_letters", "Writes the database refused, set aside", m.dead_letters.clone());
        r.register("login_attempts", "Password logins tried", m.login_attempts.clone());
        r.register("login_refusals", "Password logins refused, by reason", m.login_refusals.clone());
        r.register("rooms", "Rooms with members", m.rooms.clone());
        r.register("members", "Room memberships (a connection in two rooms counts twice)", m.members.clone());
        r.register(
            "session_queue_bytes",
            "Bytes of frames waiting for sessions to take them",
            m.session_queue_bytes.clone(),
        );
        r.register(
            "socketio_polling_sessions",
            "Socket.IO clients on long-polling (not yet upgraded to WebSocket)",
            m.polling_sessions.clone(),
        );
        r.register(
            "socket_buffer_bytes",
            "Bytes waiting in sockets' write buffers for slow clients (beyond the kernel's)",
            m.socket_buffer_bytes.clone(),
        );
        r.register("writer_queue_depth", "Writes waiting for the message log", m.writer_queue_depth.clone());
        r.register(
            "oldest_unwritten_seconds",
            "Age of the oldest write the message log has not committed (0: none)",
            m.oldest_unwritten_seconds.clone(),
        );
        r.register("process_resident_memory_bytes", "Resident memory", m.resident_memory_bytes.clone());
        r.register("process_open_fds", "Open file descriptors", m.open_fds.clone());
        Self { registry: r, ..m }
    }

    /// The text exposition, with the process figures sampled now.
    pub fn encode(&self) -> String {
        if let Some(bytes) = resident_memory() {
            self.resident_memory_bytes.set(bytes);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(i64::try_from(dir.count()).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    pub fn refused(&self, reason: &'static str) {
        self.messages_refused.get_or_create(&Reason { reason }).inc();
    }
}

/// Resident set size from `/proc/self/statm` (Linux), in bytes.
fn resident_memory() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
