//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::cookie::Key;
use tera::Tera;

use crate::accounts::NameRegistry;
use crate::chat::session::SessionSettings;
use crate::chat::ChatServer;
use crate::db::DbPool;
use crate::rate_limit::KeyedLimiter;
use crate::tokens::Secret;

pub struct AppState {
    pub chat: Addr<ChatServer>,
    pub pool: DbPool,
    /// Signs the cookies.
    pub key: Key,
    pub templates: Tera,
    pub sessions: Arc<SessionSettings>,
    pub admin_token: Option<Secret>,
    pub allowed_origins: Vec<String>,
    pub accounts: AccountSettings,
}

/// How people log in.
pub struct AccountSettings {
    pub registry: Arc<NameRegistry>,
    pub session_ttl: Duration,
    /// Login attempts per account: 5 at once, then one every 12 seconds.
    pub attempts_per_name: KeyedLimiter<String>,
    /// Log-in and sign-up attempts per address: 20 at once, then one every 3
    /// seconds (an office behind one address has several people).
    pub attempts_per_ip: KeyedLimiter<std::net::IpAddr>,
}
