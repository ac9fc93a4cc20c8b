//! Attacks on a running server, as scenarios anyone can rerun.
//!
//! `join-storm`: members who read everything sit in a room; then many
//! connections join it at once. Reports how many members were kept and how
//! long the joins took.
//!
//! `login-flood`: many wrong logins at once, spread over several source
//! addresses so that each stays within the per-address allowance. Reports
//! the answers by status, the server's resident memory (before, at its
//! highest, after) and threads, and how long `/healthz` took meanwhile.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::client::{get, http};
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

#[derive(Clone, Debug)]
pub struct JoinStormConfig {
    pub server: SocketAddr,
    pub server_pid: Option<u32>,
    /// Members in the room before the storm, each reading everything.
    pub members: usize,
    /// Connections that then join it at once.
    pub joiners: usize,
    /// Spread the connections over 127.0.0.1 .. 127.0.0.N.
    pub sources: u8,
}

#[derive(Clone, Debug, Default)]
pub struct JoinStormReport {
    pub members: usize,
    pub joiners: usize,
    /// Members who were still connected when every joiner was in.
    pub members_kept: usize,
    /// Joiners answered `joined`.
    pub joined: usize,
    /// From the first joiner's connect to the last `joined`.
    pub seconds: f64,
    pub cpu_server: Option<f64>,
    pub first_failure: Option<String>,
}

pub async fn join_storm(config: JoinStormConfig) -> io::Result<JoinStormReport> {
    use std::cell::Cell;
    use std::rc::Rc;

    use crate::client::Client;

    let room = format!("storm-{:x}", crate::stats::now_ns());
    let source = |i: usize| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(config.sources.max(1))) as u8));
    let join = |name: String| format!(r#"{{"type":"join_room","room":"{room}","name":"{name}"}}"#);
    let dropped = Rc::new(Cell::new(0usize));
    let mut readers = Vec::new();
    for i in 0..config.members {
        let mut client = Client::connect(config.server, Some(source(i)), 16 * 1024).await?;
        client.send_text(join(format!("m{i}")).as_bytes()).await?;
        until_joined(&mut client).await?;
        let dropped = dropped.clone();
        // A member who keeps up: reads everything, answers pings.
        readers.push(tokio::task::spawn_local(async move {
            loop {
                if client.handle_frames(|_| {}).await.is_err() || client.read_more().await.is_err() {
                    dropped.set(dropped.get() + 1);
                    return;
                }
            }
        }));
    }
    let watched = crate::stats::Watched { servers: config.server_pid.into_iter().collect(), redis: None };
    let cpu = crate::stats::CpuMeter::start(&watched);
    let started = Instant::now();
    let joiners: Vec<_> = (0..config.joiners)
        .map(|i| {
            let hello = join(format!("j{i}"));
            let from = source(config.members + i);
            tokio::task::spawn_local(async move {
                let mut client = Client::connect(config.server, Some(from), 16 * 1024).await?;
                client.send_text(hello.as_bytes()).await?;
                until_joined(&mut client).await?;
                // Stay in the room (and keep reading) until the storm is over.
                Ok::<_, io::Error>(client)
            })
        })
        .collect();
    let mut joined = Vec::new();
    let mut first_failure = None;
    for joiner in joiners {
        match joiner.await {
            Ok(Ok(client)) => joined.push(client),
            Ok(Err(e)) => first_failure = first_failure.or(Some(e.to_string())),
            Err(e) => first_failure = first_failure.or(Some(e.to_string())),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu.read();
    // Give evictions in flight a moment to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = JoinStormReport {
        members: config.members,
        joiners: config.joiners,
        members_kept: config.members - dropped.get(),
        joined: joined.len(),
        seconds,
        cpu_server: cpu.server,
        first_failure,
    };
    for reader in readers {
        reader.abort();
    }
    Ok(report)
}

/// Reads until the server answers `joined` (an error frame or a close
/// first is an error).
async fn until_joined(client: &mut crate::client::Client) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut answer = None;
        client
            .handle_frames(|text| {
                if answer.is_none() && text.starts_with(br#"{"type":"joined""#) {
                    answer = Some(Ok(()));
                } else if answer.is_none() && text.starts_with(br#"{"type":"error""#) {
                    answer = Some(Err(io::Error::other(String::from_utf8_lossy(text).into_owned())));
                }
            })
            .await?;
        if let Some(answer) = answer {
            return answer;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, client.read_more())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no joined within 60 s"))??;
    }
}
