//! Parlor: a real-time, room-based chat server.
//!
//! - `chat`: the ChatServer actor (rooms, fan-out) and one session per WebSocket
//! - `protocol`: the JSON frames of the public wire protocol
//! - `db`: the message log (diesel + SQLite) and its batching writer
//! - `routes`: HTTP pages and the JSON API
//! - `domain`: validated names and texts
//! - `startup` / `configuration`: how the pieces are put together

pub mod accounts;
pub mod chat;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod error;
pub mod identity;
pub mod protocol;
pub mod rate_limit;
pub mod routes;
pub mod startup;
