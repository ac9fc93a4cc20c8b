//! Socket.IO clients (Engine.IO v4, Socket.IO v5) beside the native
//! protocol. So far the wire codec (`packet`) and the mapping of events to
//! and from native frames (`events`); neither is served yet.

pub mod events;
pub mod packet;
