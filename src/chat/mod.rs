//! The live part of Parlor: one `ChatServer` actor owns every room
//! (`server/`), one `WsSession` actor per WebSocket connection speaks the
//! protocol (`session.rs`), and history answers come from a room's
//! in-memory tail and the log below it (`history.rs`).

pub mod history;
pub mod server;
pub mod session;

pub use server::ChatServer;
