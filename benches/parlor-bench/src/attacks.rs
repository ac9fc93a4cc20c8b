//! Attacks on a running server, as scenarios anyone can rerun.
//!
//! `login-flood`: many wrong logins at once, spread over several source
//! addresses so that each stays within the per-address allowance. Reports
//! the answers by status, the server's resident memory (before, at its
//! highest, after) and threads, and how long `/healthz` took meanwhile.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use crate::stats::{proc_status_kib, Histogram};

#[derive(Clone, Debug)]
pub struct LoginFloodConfig {
    pub server: SocketAddr,
    pub server_pid: Option<u32>,
    /// Logins sent at once.
    pub attempts: usize,
    /// Source addresses 127.0.0.1 .. 127.0.0.N, round robin.
    pub sources: u8,
}

#[derive(Clone, Debug, Default)]
pub struct LoginFloodReport {
    pub attempts: usize,
    /// Answers by HTTP status; 0 for no answer.
    pub statuses: BTreeMap<u16, usize>,
    /// Answers that carried `Retry-After`.
    pub with_retry_after: usize,
    pub seconds: f64,
    pub rss_before_kib: Option<u64>,
    pub rss_peak_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub threads_peak: Option<u64>,
    /// `/healthz` round trips while the flood ran, in ms.
    pub health_p50_ms: f64,
    pub health_max_ms: f64,
    pub health_checks: usize,
}

/// One HTTP/1.1 request on a connection of its own (closed after), from
/// `source`; the status, the headers and the body.
pub async fn http(server: SocketAddr, source: Option<IpAddr>, request: &[u8]) -> io::Result<(u16, String, String)> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let mut stream = socket.connect(server).await?;
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The CSRF cookie and token of the login form.
async fn login_form(server: SocketAddr) -> io::Result<(String, String)> {
    let (_, head, body) = http(server, None, &get("/login")).await?;
    let missing = || io::Error::new(io::ErrorKind::InvalidData, "the login page has no CSRF token");
    let cookie = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, value)| value.trim().split(';').next())
        .find(|pair| pair.starts_with("parlor_csrf="))
        .ok_or_else(missing)?
        .to_string();
    let token =
        body.split(r#"name="csrf" value=""#).nth(1).and_then(|rest| rest.split('"').next()).ok_or_else(missing)?;
    Ok((cookie, token.to_string()))
}

pub async fn login_flood(config: LoginFloodConfig) -> io::Result<LoginFloodReport> {
    let (cookie, token) = login_form(config.server).await?;
    let status = |field: &str| config.server_pid.and_then(|pid| proc_status_kib(pid, field));
    let mut report =
        LoginFloodReport { attempts: config.attempts, rss_before_kib: status("VmRSS:"), ..LoginFloodReport::default() };
    let started = Instant::now();
    let attempts: Vec<_> = (0..config.attempts)
        .map(|i| {
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(config.sources.max(1))) as u8));
            let form = format!("name=flood{i}&password=wrong+password&csrf={token}");
            let request = format!(
                "POST /login HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{form}",
                form.len()
            );
            tokio::task::spawn_local(async move { http(config.server, Some(source), request.as_bytes()).await })
        })
        .collect();
    // Meanwhile: how the server's memory and threads grow, and whether it
    // still answers its health check.
    let mut health = Histogram::default();
    let (mut peak, mut threads) = (None, None);
    while attempts.iter().any(|a| !a.is_finished()) {
        let asked = Instant::now();
        if let Ok(Ok((200, _, _))) =
            tokio::time::timeout(Duration::from_secs(30), http(config.server, None, &get("/healthz"))).await
        {
            health.record(asked.elapsed().as_nanos() as u64);
        }
        peak = peak.max(status("VmRSS:"));
        threads = threads.max(config.server_pid.and_then(|pid| proc_status_kib(pid, "Threads:")));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report.seconds = started.elapsed().as_secs_f64();
    for attempt in attempts {
        let (status, head, _) = attempt.await.expect("not cancelled").unwrap_or((0, String::new(), String::new()));
        *report.statuses.entry(status).or_default() += 1;
        if head.to_ascii_lowercase().contains("\r\nretry-after:") {
            report.with_retry_after += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.rss_after_kib = status("VmRSS:");
    report.rss_peak_kib = peak.max(report.rss_after_kib);
    report.threads_peak = threads;
    report.health_checks = health.count() as usize;
    report.health_p50_ms = health.quantile_ms(0.5);
    report.health_max_ms = health.max_ms();
    Ok(report)
}
