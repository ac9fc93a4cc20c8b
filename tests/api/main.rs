//! End-to-end tests: the real server on a free port, real TCP, real
//! WebSocket and HTTP clients, a real SQLite file per test.

mod accounts;
mod admin;
mod bad_input;
mod binary;
mod chat;
mod cluster;
mod databases;
mod durability;
mod encrypted_rooms;
mod helpers;
mod hostile;
mod http;
mod load;
mod persistence;
mod promises;
mod revisions;
mod slow_clients;
mod socketio;
mod tls;
mod transport;
