//! `parlor-bench`: a load generator for Parlor. Every connection is a real
//! WebSocket over TCP speaking the public protocol (`docs/protocol.md`), or
//! a real Socket.IO client (`--socketio` on WebSocket, `polling` on HTTP).

pub mod attacks;
pub mod client;
pub mod conns;
pub mod handshakes;
pub mod load;
pub mod polling;
pub mod report;
pub mod server_metrics;
pub mod stats;
