//! One WebSocket connection after the handshake: the socket and its
//! buffers, and everything RFC 6455 asks of an endpoint (frames, fragments,
//! pings and pongs, the close handshake, a heartbeat). The session that owns
//! it sees only whole messages and the end of the connection.
//!
//! Writes never block: what the kernel does not take at once waits in the
//! write buffer, and a client that lets too much wait there is dropped, so
//! one reader that stopped reading costs bounded memory and stalls no one.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use actix_codec::{AsyncRead, AsyncWrite, ReadBuf};
use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser};
use bytes::{Buf, BytesMut};
use bytestring::ByteString;
use tokio::time::Sleep;

use super::frames::{Decoded, Decoder};
use super::live::Registered;
use crate::tls::Stream;

/// Bytes read from the socket at a time (on the stack; only a frame split
/// across reads is kept between them).
const READ_CHUNK: usize = 4096;
/// Reads handled in one turn before other connections get their chance.
const READS_PER_TURN: u8 = 16;
/// A write buffer that grew past this for a burst is given back once empty,
/// so a connection that once lagged does not keep its peak forever.
const KEEP_WRITE_CAPACITY: usize = 16 * 1024;
/// How long a closing connection may take to write its close frame and
/// hear the client's (or, on long-polling, its client to fetch the close).
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The head of a final, unmasked text frame of `len` bytes, as a server
/// writes it (RFC 6455 section 5.2).
fn text_frame_head(buf: &mut BytesMut, len: usize) {
    buf.reserve(len + 10);
    buf.extend_from_slice(&[0x81]);
    match len {
        0..=125 => buf.extend_from_slice(&[len as u8]),
        126..=0xffff => {
            buf.extend_from_slice(&[126]);
            buf.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            buf.extend_from_slice(&[127]);
            buf.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// A new connection number, unique in this process (for connections on
/// other transports too, so that log lines never confuse two).
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What every connection is held to; built once from the settings.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest message, whole or reassembled from fragments (1009 above).
    pub max_frame_bytes: usize,
    /// Bytes that may wait to be written to one connection, beyond what
    /// the kernel's socket buffer holds, before its client counts as too
    /// slow and is dropped.
    pub max_buffered_bytes: usize,
    /// How often the server pings.
    pub heartbeat_interval: Duration,
    /// Silence after which a client is closed (1001).
    pub client_timeout: Duration,
}

/// What a connection has for its session.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A whole text message (reassembled when it came in fragments).
    Text(ByteString),
    /// A whole binary message; its content is not kept.
    Binary,
    /// The connection began to close: the client closed or went away,
    /// broke the protocol or fell silent, fell too far behind, or the
    /// session closed it. Comes once; nothing more is read after it.
    Closing,
    /// The connection is over.
    Closed,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Open,
    /// A close frame is queued: write what is left, then shut our side.
    Closing,
    /// Our close frame is out and our side shut: read (and ignore) what the
    /// client still sends until it closes too, so its last frames do not
    /// meet a closed socket and reset the connection.
    Draining,
    /// Nothing more will be read or written.
    Done,
}

pub struct Socket {
    /// Unique in this process; names the connection in logs.
    id: u64,
    stream: Stream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// Wakes the task that flushes, after something was queued.
    flusher: Option<Waker>,
    state: State,
    /// `Event::Closing` was handed out.
    told_closing: bool,
    /// The kernel's send buffer was full at the last write: what waits now
    /// is waiting on the client.
    blocked: bool,
    decoder: Decoder,
    limits: Arc<Limits>,
    last_heard: Instant,
    /// While open, the next heartbeat; once closing, the end of the grace
    /// period. One timer for both keeps an idle connection small.
    timer: Pin<Box<Sleep>>,
    reads_this_turn: u8,
    /// Sent as a text message instead of a ping frame, for protocols on top
    /// that ping in their own messages (Engine.IO's `2`).
    ping_text: Option<&'static str>,
    /// Its place among the open connections, where it reports what waits
    /// in `write_buf`.
    registered: Registered,
}

impl Socket {
    /// `leftover`: bytes the client sent right behind its handshake.
    pub(super) fn new(stream: Stream, leftover: BytesMut, limits: Arc<Limits>, registered: Registered) -> Self {
        let heartbeat = limits.heartbeat_interval;
        Socket {
            id: next_id(),
            stream,
            read_buf: leftover,
            write_buf: BytesMut::new(),
            flusher: None,
            state: State::Open,
            told_closing: false,
            blocked: false,
            decoder: Decoder::default(),
            limits,
            last_heard: Instant::now(),
            timer: Box::pin(tokio::time::sleep(heartbeat)),
            reads_this_turn: 0,
            ping_text: None,
            registered,
        }
    }

    /// This connection's number, unique in this process.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Pings by sending `text` as a text message from now on: the protocol
    /// on top pings in its own messages, and its client answers those.
    pub fn ping_with_text(&mut self, text: &'static str) {
        self.ping_text = Some(text);
    }

    /// Queues a text message. A client too far behind to take it is dropped
    /// (it is not reading, so a close frame would never reach it either).
    pub fn send_text(&mut self, text: &str) {
        self.queue(OpCode::Text, text.as_bytes());
    }

    /// Closes with `code` and `why`; see `close_with`.
    pub fn close(&mut self, code: CloseCode, why: &str) {
        self.close_with(Some(CloseReason { code, description: Some(why.to_string()) }));
    }

    /// Queues a close frame; the connection ends once it is written and the
    /// client has closed too, or after a grace period if the client does
    /// not take it.
    pub fn close_with(&mut self, reason: Option<CloseReason>) {
        if self.state == State::Open {
            Parser::write_close(&mut self.write_buf, reason, false);
            self.state = State::Closing;
            self.timer.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
            self.wake_flusher();
        }
    }

    /// Reads, writes and keeps the connection alive until there is
    /// something for the session.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        loop {
            if self.state != State::Open && !self.told_closing {
                self.told_closing = true;
                return Poll::Ready(Event::Closing);
            }
            if self.state == State::Done {
                return Poll::Ready(Event::Closed);
            }
            let before = self.state;
            if let Some(message) = self.next_message() {
                return Poll::Ready(message);
            }
            self.poll_timers(cx);
            if self.state != before || self.read(cx) || self.flush(cx) {
                continue;
            }
            if self.reads_this_turn >= READS_PER_TURN {
                // More may be waiting: come back after the others had a turn.
                cx.waker().wake_by_ref();
            }
            self.reads_this_turn = 0;
            return Poll::Pending;
        }
    }

    /// Queues a text message made of `parts` one after the other, without
    /// putting them together first (a protocol on top that wraps every
    /// frame of a busy room saves a copy per delivery).
    pub fn send_text_parts(&mut self, parts: &[&str]) {
        if self.state != State::Open {
            return;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        text_frame_head(&mut self.write_buf, len);
        parts.iter().for_each(|part| self.write_buf.extend_from_slice(part.as_bytes()));
        self.queued();
    }

    fn queue(&mut self, opcode: OpCode, payload: &[u8]) {
        if self.state != State::Open {
            return;
        }
        Parser::write_message(&mut self.write_buf, payload, opcode, true, false);
        self.queued();
    }

    /// After a message went into the write buffer.
    fn queued(&mut self) {
        self.wake_flusher();
        // A burst (say, several `joined` answers with history) may exceed
        // the bound for a moment while the kernel takes it; only a backlog
        // behind a full socket means the client is not keeping up.
        if self.blocked && self.write_buf.len() > self.limits.max_buffered_bytes {
            self.drop_slow_consumer();
        }
    }

    /// Ends the connection without writing what is queued: the client is
    /// not reading it anyway.
    fn drop_slow_consumer(&mut self) {
        crate::warn_throttled!("connection {}: too much waiting to be written; disconnecting a slow consumer", self.id);
        self.state = State::Done;
        self.write_buf = BytesMut::new();
        self.wake_flusher();
    }

    fn wake_flusher(&mut self) {
        if let Some(waker) = self.flusher.take() {
            waker.wake();
        }
    }

    /// The next whole message among the frames already read, answering
    /// control frames on the way.
    fn next_message(&mut self) -> Option<Event> {
        while self.state == State::Open {
            match self.decoder.decode(&mut self.read_buf, self.limits.max_frame_bytes)? {
                Decoded::Text(text) => return Some(Event::Text(text)),
                Decoded::Binary => return Some(Event::Binary),
                Decoded::Ping(payload) => self.queue(OpCode::Pong, &payload),
                Decoded::Close(reason) => self.close_with(reason),
                Decoded::Fail(code, why) => self.close(code, &why),
            }
        }
        None
    }

    /// Pings on schedule, closes a client that fell silent, and ends a close
    /// that took longer than its grace.
    fn poll_timers(&mut self, cx: &mut Context<'_>) {
        while self.timer.as_mut().poll(cx).is_ready() {
            if self.state != State::Open {
                self.state = State::Done;
                return;
            }
            self.timer.as_mut().reset(tokio::time::Instant::now() + self.limits.heartbeat_interval);
            if self.last_heard.elapsed() > self.limits.client_timeout {
                log::info!("connection {}: no sign of life from the client; disconnecting", self.id);
                self.close(CloseCode::Away, "heartbeat timeout");
            } else {
                match self.ping_text {
                    Some(text) => self.queue(OpCode::Text, text.as_bytes()),
                    None => self.queue(OpCode::Ping, b""),
                }
            }
        }
    }

    /// Reads what the socket has. True when something arrived or the state
    /// changed: look again.
    fn read(&mut self, cx: &mut Context<'_>) -> bool {
        if !matches!(self.state, State::Open | State::Draining) || self.reads_this_turn >= READS_PER_TURN {
            return false;
        }
        // Uninitialised: zeroing 4 KiB on every read showed up in profiles.
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                // The client closed its side: what is queued for it still
                // goes out, followed by our close frame.
                if self.state == State::Open {
                    self.close_with(None);
                } else {
                    self.state = State::Done;
                }
            }
            Poll::Ready(Ok(())) => {
                self.reads_this_turn += 1;
                self.last_heard = Instant::now();
                if self.state == State::Open {
                    self.read_buf.extend_from_slice(buf.filled());
                }
            }
            Poll::Ready(Err(_)) => self.state = State::Done,
            Poll::Pending => return false,
        }
        true
    }

    /// Writes what is queued, then (closing) shuts our side. True when the
    /// state changed: look again.
    fn flush(&mut self, cx: &mut Context<'_>) -> bool {
        while !self.write_buf.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    self.write_buf.advance(n);
                    self.blocked = false;
                }
                Poll::Ready(_) => {
                    self.state = State::Done;
                    return true;
                }
                Poll::Pending => {
                    self.blocked = true;
                    if self.state == State::Open && self.write_buf.len() > self.limits.max_buffered_bytes {
                        self.drop_slow_consumer();
                        return true;
                    }
                    self.registered.report_buffered(self.write_buf.len());
                    self.flusher = Some(cx.waker().clone());
                    return false;
                }
            }
        }
        // TLS may hold records the kernel did not take yet.
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => {
                self.state = State::Done;
                return true;
            }
            Poll::Pending => {
                self.blocked = true;
                self.flusher = Some(cx.waker().clone());
                return false;
            }
        }
        self.registered.report_buffered(0);
        if self.write_buf.capacity() > KEEP_WRITE_CAPACITY {
            self.write_buf = BytesMut::new();
        }
        if self.read_buf.is_empty() && self.read_buf.capacity() > READ_CHUNK {
            self.read_buf = BytesMut::new();
        }
        if !self.flusher.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.flusher = Some(cx.waker().clone());
        }
        if self.state == State::Closing {
            if Pin::new(&mut self.stream).poll_shutdown(cx).is_pending() {
                return false;
            }
            self.state = State::Draining;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_written_in_parts_is_the_frame_written_whole() {
        for len in [0, 1, 125, 126, 0xffff, 0x10000] {
            let payload = "x".repeat(len);
            let mut whole = BytesMut::new();
            Parser::write_message(&mut whole, payload.as_bytes(), OpCode::Text, true, false);
            let mut parts = BytesMut::new();
            text_frame_head(&mut parts, len);
            parts.extend_from_slice(payload.as_bytes());
            assert_eq!(parts, whole, "a frame of {len} bytes");
        }
    }
}
