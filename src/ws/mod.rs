//! The WebSocket transport (RFC 6455): taking a connection over from HTTP
//! (`upgrade`), the socket each session owns afterwards (`socket`) with its
//! frame decoder (`frames`), and the open connections, capped and counted
//! (`live`).
//!
//! A session sees whole text messages and the end of the connection,
//! nothing of frames, and nothing here knows about chat: replacing the
//! transport touches this folder only.

pub mod frames;
mod live;
mod socket;
mod upgrade;

pub use actix_http::ws::{CloseCode, CloseReason};
pub use live::{LiveConnections, Refused, Registered};
pub use socket::{next_id, Event, Limits, Socket, CLOSE_GRACE};
pub use upgrade::{handshake, http_service, Handshake};
