//! Parlor: a real-time, room-based chat server.
//!
//! Imports run one way, from the top of this list down:
//!
//! - `startup`, `configuration`: how the pieces are put together
//! - `routes`: HTTP pages, the JSON API and the WebSocket handshake
//! - `socketio`: Socket.IO clients' wire format (Engine.IO v4, Socket.IO v5)
//! - `chat`: the ChatServer actor (rooms, fan-out) and one session per WebSocket
//! - `ws`: the WebSocket transport, which knows nothing of chat
//! - `tls`: HTTPS and WSS on the listening port, and certificate reloads
//! - `accounts`: passwords, logins and bot tokens
//! - `protocol`: the JSON frames of the public wire protocol
//! - `db`: the message log (diesel) and its batching writer
//! - `domain`: validated names, texts and messages
//! - `error`, `clock`, `tokens`, `rate_limit`, `ipnet`, `metrics`: small pieces every layer uses
//! - `terminal`: reading a secret from whoever runs a command

pub mod accounts;
pub mod chat;
pub mod clock;
pub mod cluster;
pub mod configuration;
pub mod db;
pub mod domain;
pub mod error;
pub mod ipnet;
pub mod metrics;
pub mod protocol;
pub mod rate_limit;
pub mod routes;
pub mod socketio;
pub mod startup;
pub mod terminal;
pub mod tls;
pub mod tokens;
pub mod ws;
