//! `polling`: many idle Socket.IO clients on Engine.IO's long-polling
//! transport, held open: each keeps a `GET` waiting on one keep-alive
//! connection and answers the server's pings with a `POST` on another, as
//! socket.io-client does in a browser that cannot upgrade. How many the
//! server holds, what each costs it in memory, and the CPU it spends on
//! them while they are held (the pings: a `GET` answered and a `POST` per
//! client per ping interval).

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::{open, Io};
use crate::conns::{hold_many, ConnsConfig, ConnsReport, Measure};

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
    let server = config.server;
    hold_many(&config, move |source| connect(server, source), hold, Measure::WhileHeld).await
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
