//! `polling`: many idle Socket.IO clients on Engine.IO's long-polling
//! transport, held open: each keeps a `GET` waiting on one keep-alive
//! connection and answers the server's pings with a `POST` on another, as
//! socket.io-client does in a browser that cannot upgrade. How many the
//! server holds, what each costs it in memory, and the CPU it spends on
//! them while they are held (the pings: a `GET` answered and a `POST` per
//! client per ping interval).

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{get, http, open, Io, HANDSHAKE_TIMEOUT};
use crate::conns::{ConnsConfig, ConnsReport};
use crate::stats::{rss_kib, CpuMeter, Failures, Watched};

/// One keep-alive HTTP/1.1 connection, opened again when the server closed
/// it (as it does to one idle past its keep-alive), as browsers do.
struct Http {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    server: SocketAddr,
    source: IpAddr,
}

impl Http {
    async fn open(server: SocketAddr, source: IpAddr) -> io::Result<Self> {
        Ok(Self { stream: open(server, Some(source)).await?, buf: Vec::with_capacity(512), server, source })
    }

    /// Sends a request and reads its answer: the status and the body.
    async fn request(&mut self, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
        match self.try_request(method, path, body).await {
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                self.stream = open(self.server, Some(self.source)).await?;
                self.try_request(method, path, body).await
            }
            answer => answer,
        }
    }

    async fn try_request(&mut self, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain;charset=UTF-8\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.write_all(request.as_bytes()).await?;
        self.buf.clear();
        let mut chunk = [0u8; 2048];
        loop {
            if let Some(head_end) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
                let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .ok_or_else(|| io::Error::other("an answer without Content-Length"))?;
                while self.buf.len() < head_end + 4 + length {
                    self.read(&mut chunk).await?;
                }
                let body = String::from_utf8_lossy(&self.buf[head_end + 4..head_end + 4 + length]).into_owned();
                return Ok((status, body));
            }
            self.read(&mut chunk).await?;
        }
    }

    async fn read(&mut self, chunk: &mut [u8]) -> io::Result<()> {
        let n = self.stream.read(chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// A polling client, handshaken and connected to the default namespace:
/// its two connections and its session's path.
struct Client {
    polls: Http,
    posts: Http,
    path: String,
}

async fn connect(server: SocketAddr, source: IpAddr) -> io::Result<Client> {
    let mut polls = Http::open(server, source).await?;
    let (status, open) = polls.request("GET", "/socket.io/?EIO=4&transport=polling", "").await?;
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .filter(|_| status == 200)
        .ok_or_else(|| io::Error::other(format!("handshake refused: {status} {open}")))?;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let mut posts = Http::open(server, source).await?;
    posts.request("POST", &path, "40").await?;
    let (_, answer) = polls.request("GET", &path, "").await?;
    if !answer.starts_with("40{") {
        return Err(io::Error::other(format!("CONNECT not answered: {answer}")));
    }
    Ok(Client { polls, posts, path })
}

pub async fn run(config: ConnsConfig) -> io::Result<ConnsReport> {
    let rss_before_kib = config.server_pid.and_then(rss_kib);
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
            let connecting = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect(config.server, source));
            pending.push(tokio::task::spawn_local(connecting));
        }
        for task in pending.drain(..) {
            match task.await.expect("connect tasks are not cancelled") {
                Ok(Ok(client)) => held.push(tokio::task::spawn_local(hold(client, dropped.clone()))),
                Ok(Err(e)) => failures.note(&e),
                Err(_) => failures.note(&io::Error::new(io::ErrorKind::TimedOut, "polling handshake timed out")),
            }
        }
        next = end;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let connected = held.len();
    // The CPU of holding them, not of connecting them.
    let cpu = CpuMeter::start(&Watched { servers: config.server_pid.into_iter().collect(), redis: None });
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

/// Keeps one polling client alive: polls, and answers each ping with a
/// pong; notes the session's end.
async fn hold(mut client: Client, dropped: Rc<Cell<usize>>) {
    loop {
        let alive = match client.polls.request("GET", &client.path, "").await {
            Ok((200, packets)) => {
                let pings = packets.split('\u{1e}').filter(|p| *p == "2").count();
                let pongs = vec!["3"; pings].join("\u{1e}");
                pings == 0 || matches!(client.posts.request("POST", &client.path, &pongs).await, Ok((200, _)))
            }
            _ => false,
        };
        if !alive {
            dropped.set(dropped.get() + 1);
            return;
        }
    }
}
