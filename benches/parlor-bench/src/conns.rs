//! `conns`: many idle WebSocket connections, held open; how fast they
//! connect and what each costs the server in resident memory.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::client::{get, http, Client, HANDSHAKE_TIMEOUT};
use crate::stats::{rss_kib, CpuMeter, CpuUse, Failures, Watched};

#[derive(Clone, Debug)]
pub struct ConnsConfig {
    pub server: SocketAddr,
    pub server_pid: Option<u32>,
    pub connections: usize,
    /// Source addresses 127.0.0.1 .. 127.0.0.N, round robin.
    pub sources: u8,
    /// Handshakes in progress at once.
    pub concurrency: usize,
    pub hold_seconds: f64,
}

#[derive(Clone, Debug)]
pub struct ConnsReport {
    pub attempted: usize,
    pub connected: usize,
    pub failures: usize,
    pub first_failure: Option<String>,
    pub connect_seconds: f64,
    pub connects_per_sec: f64,
    /// Connections the server closed while they were held.
    pub dropped: usize,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub cpu: CpuUse,
    /// A `/healthz` round trip while the connections were held, in ms
    /// (`None`: no answer within 10 s).
    pub health_ms: Option<f64>,
}

impl ConnsReport {
    pub fn rss_per_connection_kib(&self) -> Option<f64> {
        let (before, after) = (self.rss_before_kib?, self.rss_after_kib?);
        (self.connected > 0).then(|| (after.saturating_sub(before)) as f64 / self.connected as f64)
    }
}

pub async fn run(config: ConnsConfig) -> io::Result<ConnsReport> {
    let server = config.server;
    hold_many(&config, move |source| Client::connect(server, Some(source), 1024), hold, Measure::Throughout).await
}

/// Which part of a run the server's CPU is measured over.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Connecting and holding.
    Throughout,
    /// Holding only (what idle clients cost while they are held).
    WhileHeld,
}

/// Opens `config.connections` clients with `connect` (from source
/// addresses in turn, `concurrency` at a time), keeps each with `hold`
/// (which notes a client the server dropped), then reports.
pub async fn hold_many<T, C, F, H, G>(
    config: &ConnsConfig,
    connect: C,
    hold: H,
    measure: Measure,
) -> io::Result<ConnsReport>
where
    T: 'static,
    C: Fn(IpAddr) -> F,
    F: Future<Output = io::Result<T>> + 'static,
    H: Fn(T, Rc<Cell<usize>>) -> G,
    G: Future<Output = ()> + 'static,
{
    let rss_before_kib = config.server_pid.and_then(rss_kib);
    let watched = Watched { servers: config.server_pid.into_iter().collect(), redis: None };
    let mut cpu = CpuMeter::start(&watched);
    let dropped = Rc::new(Cell::new(0usize));
    let failures = Failures::default();
    let mut held = Vec::with_capacity(config.connections);
    let started = Instant::now();
    let mut next = 0;
    let mut pending = Vec::with_capacity(config.concurrency);
    while next < config.connections {
        pending.clear();
        let end = (next + config.concurrency.max(1)).min(config.connections);
        for index in next..end {
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (index % usize::from(config.sources.max(1))) as u8));
            pending.push(tokio::task::spawn_local(tokio::time::timeout(HANDSHAKE_TIMEOUT, connect(source))));
        }
        for task in pending.drain(..) {
            match task.await.expect("connect tasks are not cancelled") {
                Ok(Ok(client)) => held.push(tokio::task::spawn_local(hold(client, dropped.clone()))),
                Ok(Err(e)) => failures.note(&e),
                Err(_) => failures.note(&io::Error::new(io::ErrorKind::TimedOut, "connecting timed out")),
            }
        }
        next = end;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let connected = held.len();
    if measure == Measure::WhileHeld {
        cpu = CpuMeter::start(&watched);
    }
    let asked = Instant::now();
    let health = tokio::time::timeout(Duration::from_secs(10), http(config.server, None, &get("/healthz"))).await;
    let health_ms = matches!(health, Ok(Ok((200, _, _)))).then(|| asked.elapsed().as_secs_f64() * 1e3);
    tokio::time::sleep(Duration::from_secs_f64(config.hold_seconds)).await;
    let rss_after_kib = config.server_pid.and_then(rss_kib);
    let cpu = cpu.read();
    for task in &held {
        task.abort();
    }
    Ok(ConnsReport {
        attempted: config.connections,
        connected,
        failures: failures.count() as usize,
        first_failure: failures.first(),
        connect_seconds,
        connects_per_sec: connected as f64 / connect_seconds.max(1e-9),
        dropped: dropped.get(),
        rss_before_kib,
        rss_after_kib,
        cpu,
        health_ms,
    })
}

/// Keeps one connection open: answers pings, notes a close.
async fn hold(mut client: Client, dropped: Rc<Cell<usize>>) {
    loop {
        if client.handle_frames(|_| {}).await.is_err() || client.read_more().await.is_err() {
            dropped.set(dropped.get() + 1);
            return;
        }
    }
}
