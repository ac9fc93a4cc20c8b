//! One WebSocket connection's socket and buffers, after the handshake.
//!
//! Sessions own their socket rather than streaming through the HTTP
//! layer's response body, for two measured reasons (issue 6): the HTTP
//! dispatcher keeps two 8 KiB buffers per connection for its whole life,
//! most of an idle connection's memory; and a session whose writes cannot
//! block never stalls, so a client that stops reading is found by the bytes
//! waiting for it and dropped by its own session.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use actix_codec::{AsyncRead, AsyncWrite, ReadBuf};
use actix_http::ws::{CloseReason, OpCode, Parser, ProtocolError};
use actix_web::rt::net::TcpStream;
use bytes::{Buf, BytesMut};

/// Bytes read from the socket at a time (on the stack; only a frame split
/// across reads is kept between them).
const READ_CHUNK: usize = 4096;
/// A write buffer that grew past this for a burst is given back once empty,
/// so a connection that once lagged does not keep its peak forever.
const KEEP_WRITE_CAPACITY: usize = 16 * 1024;
/// The longest frame header: 2 bytes, 8 of length, 4 of mask.
const MAX_HEADER: usize = 14;

pub struct Connection {
    stream: TcpStream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// Wakes the task that flushes, after something was queued.
    flusher: Option<Waker>,
    state: State,
    /// The kernel's send buffer was full at the last write: what waits now
    /// is waiting on the client.
    blocked: bool,
    max_frame_bytes: usize,
    max_buffered_bytes: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Open,
    /// A close frame is queued: write what is left, then end.
    Closing,
    /// Our close frame is out and our side shut: read (and ignore) what the
    /// client still sends until it closes too, so its last frames do not
    /// meet a closed socket and reset the connection.
    Draining,
    /// Nothing more will be read or written.
    Done,
}

/// A frame from the client (unmasked): its opcode, whether it is the last
/// fragment, and its payload.
pub struct Frame {
    pub fin: bool,
    pub opcode: OpCode,
    pub payload: BytesMut,
}

/// More is waiting for the client than the connection may hold.
#[derive(Debug)]
pub struct Overflow;

impl Connection {
    /// `leftover`: bytes the client sent right behind its handshake.
    pub fn new(stream: TcpStream, leftover: BytesMut, max_frame_bytes: usize, max_buffered_bytes: usize) -> Self {
        Connection {
            stream,
            read_buf: leftover,
            write_buf: BytesMut::new(),
            flusher: None,
            state: State::Open,
            blocked: false,
            max_frame_bytes,
            max_buffered_bytes,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Queues a text frame. `Err`: the client has stopped taking what it is
    /// sent and too much waits for it.
    pub fn text(&mut self, text: &[u8]) -> Result<(), Overflow> {
        self.queue(OpCode::Text, text)
    }

    pub fn ping(&mut self) -> Result<(), Overflow> {
        self.queue(OpCode::Ping, b"")
    }

    pub fn pong(&mut self, payload: &[u8]) -> Result<(), Overflow> {
        self.queue(OpCode::Pong, payload)
    }

    fn queue(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Overflow> {
        if self.state != State::Open {
            return Ok(());
        }
        Parser::write_message(&mut self.write_buf, payload, opcode, true, false);
        self.wake_flusher();
        self.check_backlog()
    }

    /// A burst (say, several `joined` answers with history) may exceed the
    /// bound for a moment while the kernel takes it; only a backlog behind
    /// a full socket means the client is not keeping up.
    fn check_backlog(&self) -> Result<(), Overflow> {
        if self.blocked && self.write_buf.len() > self.max_buffered_bytes {
            return Err(Overflow);
        }
        Ok(())
    }

    /// Queues a close frame; the connection ends once it is written.
    pub fn close(&mut self, reason: Option<CloseReason>) {
        if self.state == State::Open {
            Parser::write_close(&mut self.write_buf, reason, false);
            self.state = State::Closing;
            self.wake_flusher();
        }
    }

    /// Ends the connection without writing what is queued (the client is
    /// not reading it anyway).
    pub fn abort(&mut self) {
        self.state = State::Done;
        self.write_buf = BytesMut::new();
        self.wake_flusher();
    }

    fn wake_flusher(&mut self) {
        if let Some(waker) = self.flusher.take() {
            waker.wake();
        }
    }

    /// The next complete frame already read, if any.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ProtocolError> {
        if self.state != State::Open {
            return Ok(None);
        }
        match Parser::parse(&mut self.read_buf, true, self.max_frame_bytes)? {
            Some((fin, opcode, payload)) => Ok(Some(Frame { fin, opcode, payload: payload.unwrap_or_default() })),
            // The parser checks the size only once a frame is complete; a
            // frame announced larger than the limit must not be buffered
            // while it trickles in.
            None if self.read_buf.len() > self.max_frame_bytes + MAX_HEADER => Err(ProtocolError::Overflow),
            None => Ok(None),
        }
    }

    /// Reads what the socket has. `Ready(Ok(false))`: the client closed its
    /// side. While draining, what arrives is dropped.
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        // Uninitialised: zeroing 4 KiB on every read showed up in profiles.
        let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Ok(false)),
            Poll::Ready(Ok(())) => {
                if self.state == State::Open {
                    self.read_buf.extend_from_slice(buf.filled());
                }
                Poll::Ready(Ok(true))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes what is queued. `Ready(Ok(()))`: everything is out (and a
    /// close frame, if queued, is followed by shutting our side).
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), FlushError>> {
        while !self.write_buf.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(FlushError::Io(io::ErrorKind::WriteZero.into()))),
                Poll::Ready(Ok(n)) => {
                    self.write_buf.advance(n);
                    self.blocked = false;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(FlushError::Io(e))),
                Poll::Pending => {
                    self.blocked = true;
                    if self.state == State::Open {
                        self.check_backlog().map_err(|_| FlushError::Overflow)?;
                    }
                    self.flusher = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
        if self.write_buf.capacity() > KEEP_WRITE_CAPACITY {
            self.write_buf = BytesMut::new();
        }
        if self.read_buf.is_empty() && self.read_buf.capacity() > READ_CHUNK {
            self.read_buf = BytesMut::new();
        }
        if self.state == State::Closing {
            if Pin::new(&mut self.stream).poll_shutdown(cx).is_pending() {
                return Poll::Pending;
            }
            self.state = State::Draining;
        }
        if !self.flusher.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.flusher = Some(cx.waker().clone());
        }
        Poll::Ready(Ok(()))
    }

    /// Whether the session should keep reading the socket.
    pub fn reading(&self) -> bool {
        matches!(self.state, State::Open | State::Draining)
    }

    /// The client closed its side (or the socket failed): nothing more to do.
    pub fn finished_reading(&mut self) {
        self.state = State::Done;
    }
}

pub enum FlushError {
    /// The client stopped reading and too much waits for it.
    Overflow,
    Io(io::Error),
}
