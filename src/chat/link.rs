//! What a session talks to its client through: a native WebSocket, or a
//! Socket.IO connection that looks like one (native frames in and out).

use std::task::{Context, Poll};

use crate::socketio::Connection;
use crate::ws::{CloseCode, CloseReason, Event, Socket};

// Native sockets are most connections: kept inline, they cost no extra
// allocation each; the rarer Socket.IO connection is boxed.
#[allow(clippy::large_enum_variant)]
pub enum Link {
    Native(Socket),
    SocketIo(Box<Connection>),
}

impl Link {
    /// The connection's number, unique in this process.
    pub fn id(&self) -> u64 {
        match self {
            Link::Native(socket) => socket.id(),
            Link::SocketIo(connection) => connection.id(),
        }
    }

    /// Writes a native frame.
    pub fn send_text(&mut self, frame: &str) {
        match self {
            Link::Native(socket) => socket.send_text(frame),
            Link::SocketIo(connection) => connection.send_text(frame),
        }
    }

    pub fn close(&mut self, code: CloseCode, why: &str) {
        match self {
            Link::Native(socket) => socket.close(code, why),
            Link::SocketIo(connection) => connection.close(code, why),
        }
    }

    pub fn close_with(&mut self, reason: Option<CloseReason>) {
        match self {
            Link::Native(socket) => socket.close_with(reason),
            Link::SocketIo(connection) => connection.close_with(reason),
        }
    }

    /// The client's next frame, or the end of the connection.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        match self {
            Link::Native(socket) => socket.poll_event(cx),
            Link::SocketIo(connection) => connection.poll_event(cx),
        }
    }
}
