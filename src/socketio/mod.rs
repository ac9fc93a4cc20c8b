//! Socket.IO clients (Engine.IO v4, Socket.IO v5) beside the native
//! protocol, in the same rooms: the wire codec (`packet`), events as native
//! frames (`events`), acknowledgements (`acks`), the long-polling transport
//! (`polling`), and one client's connection on top of either transport
//! (`connection`). The HTTP side is `routes::socketio`.

pub mod acks;
mod connection;
pub mod events;
pub mod packet;
pub mod polling;

pub use connection::{Connection, EngineSettings};
