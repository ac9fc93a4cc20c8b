//! One WebSocket connection's socket and buffers, after the handshake.
//!
//! Sessions own their socket rather than streaming through the HTTP
//! layer's response body, for two measured reasons (issue 6): the HTTP
//! dispatcher keeps two 8 KiB buffers per connection for its whole life,
//! most of an idle connection's memory; and a session whose writes cannot
//! block never stalls, so a client that stops reading is found by the bytes
//! waiting for it and dropped by its own session.

use std::io;
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

pub struct Connection {
    stream: TcpStream,
    read_buf: BytesMut,
    write_buf: BytesMut,
    /// Wakes the task that flushes, after something was queued.
    flusher: Option<Waker>,
    state: State,
    max_frame_bytes: usize,
    max_buffered_bytes: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Open,
    /// A close frame is queued: write what is left, then end.
    Closing,
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

/// More is waiting to be written than the connection may hold.
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
            max_frame_bytes,
            max_buffered_bytes,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Queues a text frame. `Err` means the client is too far behind.
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
        if self.write_buf.len() > self.max_buffered_bytes {
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
        let parsed = Parser::parse(&mut self.read_buf, true, self.max_frame_bytes)?;
        Ok(parsed.map(|(fin, opcode, payload)| Frame { fin, opcode, payload: payload.unwrap_or_default() }))
    }

    /// Reads what the socket has into the read buffer. `Ready(Ok(false))`:
    /// the client closed its side.
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        // Uninitialised: zeroing 4 KiB on every read showed up in profiles.
        let mut chunk = [std::mem::MaybeUninit::<u8>::uninit(); READ_CHUNK];
        let mut buf = ReadBuf::uninit(&mut chunk);
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Ok(false)),
            Poll::Ready(Ok(())) => {
                self.read_buf.extend_from_slice(buf.filled());
                Poll::Ready(Ok(true))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes what is queued. `Ready(Ok(()))`: everything is out.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.write_buf.is_empty() {
            match Pin::new(&mut self.stream).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.write_buf.advance(n),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
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
            let _ = Pin::new(&mut self.stream).poll_shutdown(cx);
            self.state = State::Done;
            return Poll::Ready(Ok(()));
        }
        if !self.flusher.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.flusher = Some(cx.waker().clone());
        }
        Poll::Ready(Ok(()))
    }
}
