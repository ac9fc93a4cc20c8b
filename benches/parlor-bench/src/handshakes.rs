//! `handshakes`: new TLS connections as fast as the server completes them,
//! each a full handshake (no session resumption) and closed at once: what
//! a reconnect storm over TLS costs the server, per second of its core.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::client::open;
use crate::stats::{CpuMeter, CpuUse, Failures, Watched};

#[derive(Clone, Debug)]
pub struct HandshakesConfig {
    pub server: SocketAddr,
    pub server_pid: Option<u32>,
    pub seconds: f64,
    /// Handshakes in progress at once.
    pub concurrency: usize,
    /// Source addresses 127.0.0.1 .. 127.0.0.N, round robin (closed
    /// connections hold their ports in TIME_WAIT for a minute).
    pub sources: u8,
}

#[derive(Clone, Debug)]
pub struct HandshakesReport {
    pub handshakes: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
    pub seconds: f64,
    pub per_sec: f64,
    pub cpu: CpuUse,
}

pub async fn run(config: HandshakesConfig) -> io::Result<HandshakesReport> {
    let done = Rc::new(Cell::new(0u64));
    let failures = Rc::new(Failures::default());
    let cpu = CpuMeter::start(&Watched { servers: config.server_pid.into_iter().collect(), redis: None });
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(config.seconds);
    let sources = usize::from(config.sources.max(1));
    let workers: Vec<_> = (0..config.concurrency.max(1))
        .map(|worker| {
            let (done, failures) = (done.clone(), failures.clone());
            tokio::task::spawn_local(async move {
                let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (worker % sources) as u8));
                while Instant::now() < until {
                    match open(config.server, Some(source)).await {
                        // Dropped at once: the handshake is what is measured.
                        Ok(_) => done.set(done.get() + 1),
                        Err(e) => failures.note(&e),
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("handshake workers are not cancelled");
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(HandshakesReport {
        handshakes: done.get(),
        failures: failures.count(),
        first_failure: failures.first(),
        seconds,
        per_sec: done.get() as f64 / seconds,
        cpu: cpu.read(),
    })
}
