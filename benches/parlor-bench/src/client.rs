//! A minimal WebSocket client (RFC 6455) for load generation. It does only
//! what a Parlor client needs: the upgrade handshake, masked text frames out,
//! unfragmented frames in, and pong replies, so that the generator spends its
//! core on the server's frames rather than on framing machinery.
//!
//! With `use_socketio`, every client is a Socket.IO client on the WebSocket
//! transport instead: it connects to `/socket.io/`, answers Engine.IO's
//! pings, and its native frames travel as Socket.IO events (translated here
//! both ways, so the scenarios stay the same).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

pub const OP_TEXT: u8 = 0x1;
/// How long a connection may take to be set up.
pub const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;

/// A connection to the server, over TLS or not.
pub trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// Set once, from `--tls-ca`: then every connection is TLS, to a server
/// whose certificate that authority issued for `localhost`.
static TLS: OnceLock<TlsConnector> = OnceLock::new();

/// Every connection from here on speaks TLS, trusting only the CA in
/// `ca_pem`. `resume`: whether a reconnecting client may resume an earlier
/// session (browsers do); without it every handshake is a full one.
pub fn use_tls(ca_pem: &Path, resume: bool) -> io::Result<()> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).map_err(io::Error::other)? {
        roots.add(cert.map_err(io::Error::other)?).map_err(io::Error::other)?;
    }
    // ring, as Parlor serves it (see the server's `tls` module).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    let _ = TLS.set(TlsConnector::from(Arc::new(config)));
    Ok(())
}

pub fn tls_on() -> bool {
    TLS.get().is_some()
}

/// Set once, from `--socketio`.
static SOCKETIO: AtomicBool = AtomicBool::new(false);

/// Every connection from here on is a Socket.IO client.
pub fn use_socketio() {
    SOCKETIO.store(true, Ordering::Relaxed);
}

fn socketio_on() -> bool {
    SOCKETIO.load(Ordering::Relaxed)
}

/// A connection to `addr` from `source` (when given), through TLS when
/// `use_tls` was called: connected, and with TLS, past its handshake.
pub async fn open(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<Box<dyn Io>> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    // A server out of file descriptors leaves connections in its
    // listen backlog, never answered: give up rather than wait forever.
    let timed_out = |what: &str| io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"));
    let tcp =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, socket.connect(addr)).await.map_err(|_| timed_out("connect"))??;
    tcp.set_nodelay(true)?;
    let Some(tls) = TLS.get() else { return Ok(Box::new(tcp)) };
    let name = ServerName::try_from("localhost").expect("a valid name");
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.connect(name, tcp))
        .await
        .map_err(|_| timed_out("TLS handshake"))??;
    Ok(Box::new(stream))
}

pub struct Client {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    out: Vec<u8>,
    mask: [u8; 4],
    /// Speaks Socket.IO (see `use_socketio`).
    socketio: bool,
    /// A native frame turned into a Socket.IO event.
    event: Vec<u8>,
}

/// One frame from the server, borrowed from the client's buffer.
pub struct Frame<'a> {
    pub opcode: u8,
    pub payload: &'a [u8],
}

impl Client {
    /// Connects to `ws://{addr}/ws`, from `source` when given (so that tens
    /// of thousands of connections fit in the ephemeral port range).
    pub async fn connect(addr: SocketAddr, source: Option<IpAddr>, buf_size: usize) -> io::Result<Client> {
        let stream = open(addr, source).await?;
        let seed = crate::stats::now_ns();
        let mut client = Client {
            stream,
            buf: vec![0; buf_size.max(1024)],
            start: 0,
            end: 0,
            out: Vec::with_capacity(256),
            mask: (seed as u32 | 1).to_le_bytes(),
            socketio: socketio_on(),
            event: Vec::new(),
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, client.handshake(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer to the WebSocket handshake"))??;
        if client.socketio {
            tokio::time::timeout(HANDSHAKE_TIMEOUT, client.connect_namespace())
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer to Socket.IO's CONNECT"))??;
        }
        Ok(client)
    }

    /// Socket.IO's own handshake after the WebSocket's: the Engine.IO open
    /// packet, then CONNECT to the default namespace and its answer.
    async fn connect_namespace(&mut self) -> io::Result<()> {
        let (mut opened, mut connecting) = (false, false);
        loop {
            while let Some((opcode, at)) = self.next_frame_at() {
                let payload = &self.buf[at];
                if opcode != OP_TEXT {
                    continue;
                }
                if payload.starts_with(b"0{") {
                    opened = true;
                } else if payload.starts_with(b"40{") {
                    return Ok(());
                } else if payload.starts_with(b"44") {
                    return Err(io::Error::other(format!("CONNECT refused: {}", String::from_utf8_lossy(payload))));
                }
            }
            if opened && !connecting {
                connecting = true;
                self.encode(OP_TEXT, b"40");
                self.stream.write_all(&self.out).await?;
            }
            self.read_more().await?;
        }
    }

    async fn handshake(&mut self, addr: SocketAddr) -> io::Result<()> {
        let path = if self.socketio { "/socket.io/?EIO=4&transport=websocket" } else { "/ws" };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: cGFybG9yLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        self.stream.write_all(request.as_bytes()).await?;
        loop {
            if let Some(head_end) = memchr::memmem::find(&self.buf[..self.end], b"\r\n\r\n") {
                let head = &self.buf[..head_end];
                if !head.starts_with(b"HTTP/1.1 101") {
                    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
                    return Err(io::Error::other(format!("upgrade refused: {}", String::from_utf8_lossy(line))));
                }
                self.start = head_end + 4;
                return Ok(());
            }
            self.read_more().await?;
        }
    }

    /// Reads whatever the socket has; the server closing it is an error.
    /// Cancel-safe, so it can sit in a `select!` beside a send timer.
    pub async fn read_more(&mut self) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start == 0 {
                // One frame larger than the buffer (a long `joined` list).
                let len = self.buf.len();
                self.buf.resize(len * 2, 0);
            } else {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// Handles every complete frame already read: text goes to `on_text`,
    /// a ping is answered. A close frame from the server is an error.
    pub async fn handle_frames(&mut self, mut on_text: impl FnMut(&[u8])) -> io::Result<()> {
        let mut pong = None;
        let mut engine_pong = false;
        while let Some((opcode, at)) = self.next_frame_at() {
            match opcode {
                OP_TEXT if self.socketio => {
                    let payload = &self.buf[at];
                    if payload == b"2" {
                        engine_pong = true;
                    } else if payload.starts_with(b"42[") {
                        // Read as it is (see `frame_type`): copying every
                        // event back into a native frame would load the
                        // generator, and the latency it measures, more than
                        // the native run's.
                        on_text(payload);
                    }
                }
                OP_TEXT => on_text(&self.buf[at]),
                OP_PING => pong = Some(self.buf[at].to_vec()),
                OP_CLOSE => return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the server closed")),
                _ => {}
            }
        }
        if engine_pong {
            self.encode(OP_TEXT, b"3");
            self.stream.write_all(&self.out).await?;
        }
        match pong {
            Some(payload) => self.pong(&payload).await,
            None => Ok(()),
        }
    }

    /// The next complete frame already read, if any.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        let (opcode, at) = self.next_frame_at()?;
        Some(Frame { opcode, payload: &self.buf[at] })
    }

    /// The same, as the opcode and where the payload is in `buf`.
    fn next_frame_at(&mut self) -> Option<(u8, std::ops::Range<usize>)> {
        let bytes = &self.buf[self.start..self.end];
        if bytes.len() < 2 {
            return None;
        }
        let opcode = bytes[0] & 0x0f;
        let (len, header) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 if bytes.len() >= 10 => {
                let mut len = [0; 8];
                len.copy_from_slice(&bytes[2..10]);
                (usize::try_from(u64::from_be_bytes(len)).ok()?, 10)
            }
            126 | 127 => return None,
            short => (usize::from(short), 2),
        };
        if bytes.len() < header + len {
            return None;
        }
        let at = self.start + header..self.start + header + len;
        self.start += header + len;
        Some((opcode, at))
    }

    /// Sends a native frame (as a Socket.IO event, for a Socket.IO client).
    pub async fn send_text(&mut self, text: &[u8]) -> io::Result<()> {
        if self.socketio {
            let mut event = std::mem::take(&mut self.event);
            to_event(text, &mut event);
            self.encode(OP_TEXT, &event);
            self.event = event;
        } else {
            self.encode(OP_TEXT, text);
        }
        self.stream.write_all(&self.out).await
    }

    async fn pong(&mut self, payload: &[u8]) -> io::Result<()> {
        self.encode(0xA, payload);
        self.stream.write_all(&self.out).await
    }

    fn encode(&mut self, opcode: u8, payload: &[u8]) {
        self.out.clear();
        self.out.push(0x80 | opcode);
        match payload.len() {
            len @ 0..=125 => self.out.push(0x80 | len as u8),
            len @ 126..=0xffff => {
                self.out.push(0x80 | 126);
                self.out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                self.out.push(0x80 | 127);
                self.out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        self.out.extend_from_slice(&self.mask);
        let mask = self.mask;
        self.out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    }
}

/// A native frame, `{"type":"x",...}`, as the Socket.IO event packet
/// `42["x",{...}]`.
fn to_event(frame: &[u8], event: &mut Vec<u8>) {
    event.clear();
    let rest = frame.strip_prefix(br#"{"type":""#).expect("the generator's frames start with their type");
    let quote = memchr::memchr(b'"', rest).expect("a closed type");
    event.extend_from_slice(b"42[\"");
    event.extend_from_slice(&rest[..quote]);
    event.extend_from_slice(b"\",{");
    let fields = &rest[quote + 1..];
    event.extend_from_slice(fields.strip_prefix(b",").unwrap_or(b"}"));
    event.push(b']');
}

/// The type of a server frame: `x` of a native `{"type":"x",...}`, or of a
/// Socket.IO event `42["x",{...}]` (the rest, the frame's fields, is the
/// same in both).
pub fn frame_type(text: &[u8]) -> &[u8] {
    let rest = text.strip_prefix(br#"{"type":""#).or_else(|| text.strip_prefix(br#"42[""#)).unwrap_or_default();
    memchr::memchr(b'"', rest).map_or(&[], |end| &rest[..end])
}

/// One HTTP/1.1 request on a connection of its own (closed after), from
/// `source`; the status, the headers and the body.
pub async fn http(server: SocketAddr, source: Option<IpAddr>, request: &[u8]) -> io::Result<(u16, String, String)> {
    let mut stream = open(server, source).await?;
    stream.write_all(request).await?;
    let mut answer = Vec::new();
    // Over TLS the server may end without a close_notify: what came counts.
    if let Err(e) = stream.read_to_end(&mut answer).await {
        if answer.is_empty() {
            return Err(e);
        }
    }
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

/// A `GET` of `path` that closes the connection after.
pub fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_frames_become_socketio_events_and_both_tell_their_type() {
        let mut event = Vec::new();
        to_event(br#"{"type":"send_message","room":"r","text":"hi"}"#, &mut event);
        assert_eq!(event, br#"42["send_message",{"room":"r","text":"hi"}]"#);
        assert_eq!(frame_type(br#"42["message",{"room":"r","id":1}]"#), b"message");
        assert_eq!(frame_type(br#"{"type":"joined","room":"r"}"#), b"joined");
        assert_eq!(frame_type(b"2"), b"");
    }
}
