//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use actix_web::cookie::Key;
use tera::Tera;

use super::client::TrustedProxies;
use crate::accounts::{Hasher, NameRegistry};
use crate::chat::session::SessionSettings;
use crate::chat::ChatServer;
use crate::db::DbPool;
use crate::metrics::Metrics;
use crate::rate_limit::KeyedLimiter;
use crate::tokens::Secret;
use crate::ws::LiveConnections;

pub struct AppState {
    pub chat: Addr<ChatServer>,
    pub pool: DbPool,
    /// Where history below the rooms' tails comes from.
    pub log: crate::chat::history::MessageLog,
    /// This node's connection to the cluster, when it is one.
    pub cluster: Option<crate::cluster::Cluster>,
    /// Signs the cookies.
    pub key: Key,
    pub templates: Tera,
    pub sessions: Arc<SessionSettings>,
    pub admin_token: Option<Secret>,
    /// Other sites' pages that may open WebSockets, besides Parlor's own.
    pub allowed_origins: Vec<String>,
    pub proxies: TrustedProxies,
    /// The open WebSockets, capped in all and per client address.
    pub connections: LiveConnections,
    /// Socket.IO clients on the long-polling transport, by sid.
    pub polling: Arc<crate::socketio::polling::PollingSessions>,
    /// What Socket.IO clients are promised and held to.
    pub engine: Arc<crate::socketio::EngineSettings>,
    pub accounts: AccountSettings,
    pub metrics: Arc<Metrics>,
    /// `/healthz` says `degraded` once the oldest uncommitted message is older.
    pub degraded_after: Duration,
    /// Set once the server is stopping: `/readyz` says so, and new
    /// WebSockets are refused, while the open ones finish.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

/// How people log in.
pub struct AccountSettings {
    pub registry: Arc<NameRegistry>,
    pub hasher: Hasher,
    pub session_ttl: Duration,
    /// Login attempts per account from browsers that never logged in to it:
    /// 5 at once, then one every 12 seconds.
    pub attempts_per_name: KeyedLimiter<String>,
    /// The same, per browser that did (its device cookie), so that guessing
    /// cannot lock the owner out.
    pub attempts_per_device: KeyedLimiter<String>,
    /// Log-in and sign-up attempts per address: 20 at once, then one every 3
    /// seconds (an office behind one address has several people).
    pub attempts_per_ip: KeyedLimiter<std::net::IpAddr>,
    /// In a cluster, the limits above are kept in Redis, shared by every
    /// node (this node's own serve while Redis does not answer).
    pub cluster: Option<crate::cluster::Cluster>,
}

impl AccountSettings {
    /// Takes one attempt from `key`'s allowance under `limiter`: in a cluster
    /// the allowance every node shares, otherwise (or while Redis does not
    /// answer) this node's.
    pub async fn attempt<K>(&self, limiter: &KeyedLimiter<K>, kind: &str, key: &K, now: std::time::Instant) -> bool
    where
        K: std::hash::Hash + Eq + Clone + std::fmt::Display,
    {
        if let Some(cluster) = &self.cluster {
            let (rate, burst) = limiter.allowance();
            match cluster.take_token(kind, &key.to_string(), rate, burst).await {
                Ok(taken) => return taken,
                Err(e) => crate::warn_throttled!("login limits: this node's own while Redis is away: {e}"),
            }
        }
        limiter.take(key, now)
    }
}
