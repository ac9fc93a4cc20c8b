//! The live part of Parlor: one `ChatServer` actor owns every room, one
//! `WsSession` actor per WebSocket connection speaks the protocol.

pub mod connection;
pub mod history;
pub mod message;
pub mod server;
pub mod session;

pub use message::ChatMessage;
pub use server::ChatServer;
