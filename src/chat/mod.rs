//! The live part of Parlor: one `ChatServer` actor owns every room
//! (`server/`), one `WsSession` actor per connection speaks the protocol
//! (`session.rs`) through its link to the client, a native WebSocket or a
//! Socket.IO connection (`link.rs`), and history answers come from a
//! room's in-memory tail and the log below it (`history.rs`).

pub mod history;
pub mod link;
pub mod server;
pub mod session;

pub use server::ChatServer;
