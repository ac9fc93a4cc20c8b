//! Socket.IO clients (Engine.IO v4, Socket.IO v5) beside the native
//! protocol. So far the wire codec only: `packet`.

pub mod packet;
