//! Several nodes as one chat server, over Redis (`--redis-url`).
//!
//! Redis gives each message its room's next id, keeps it in the room's
//! capped stream and publishes it, in one script: ids are unique and
//! increasing per room across nodes, and a message exists for everyone the
//! moment its sender is acknowledged. Each node subscribes once and fans
//! out to its own members, so Redis does work per message, not per member.
//! A node that sees a gap in a room's ids fills it from the stream before
//! delivering further. Each node writes the messages it accepted to the
//! database; the sweeper writes what a node accepted but did not live to
//! write.
//!
//! - `bus`: what a node asks Redis (send, attach, fill), in order and batched
//! - `subscriber`: what arrives from the other nodes
//! - `sweeper`: the stream's messages the database lacks, written by one node
//! - `presence`: who is where, and clearing up after a node that died
//! - `recent`: history from a room's stream
//! - `keys`, `scripts`, `wire`: where things live in Redis, and in what form
//!
//! The ChatServer hears from the cluster only through `News`, so this module
//! knows nothing of sessions or rooms' members.

mod bus;
mod keys;
mod presence;
mod recent;
mod scripts;
mod subscriber;
mod sweeper;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;

pub use bus::{Attachment, Draft, Link};
pub use presence::{Roster, ALIVE_FOR as NODE_ALIVE_FOR, BEAT as NODE_BEAT};
pub use recent::Recent;
/// The send script's source: tests play a node with it.
pub use scripts::SEND_LUA;
pub use wire::{encryption_tag, from_encryption_tag, Enforcement, Event, RosterEntry};

use crate::db::DbPool;
use crate::domain::{ChatMessage, Encryption, RoomName};
use crate::error::ChatError;
use keys::Keys;

/// How long a Redis command may take before the node treats Redis as
/// unreachable and tells the client so.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a node needs to join a cluster; from the settings.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub redis_url: String,
    /// Starts every key and channel: clusters sharing a Redis stay apart.
    pub prefix: String,
    /// Messages each room's stream keeps (about).
    pub stream_len: usize,
    /// This node's name in member lists and logs.
    pub node: String,
}

/// What the cluster tells the ChatServer.
#[derive(Message)]
#[rtype(result = "()")]
pub enum News {
    /// The answer to a send: the message as Redis numbered it, or why not.
    Sent {
        ticket: u64,
        room: RoomName,
        result: Result<Delivery, ChatError>,
    },
    /// A message from any node (this one's included), in no promised order.
    Arrived(Delivery),
    /// A room's state in Redis, for a node about to have members in it.
    Attached {
        room: RoomName,
        result: Result<Attachment, ChatError>,
    },
    /// The stream's messages after the id a gap fill asked from.
    Filled {
        room: RoomName,
        ticket: u64,
        result: Result<Vec<Delivery>, ChatError>,
    },
    /// The subscription was (re)established: anything published meanwhile
    /// was missed, so every room with members here fills from its stream.
    Resubscribed,
    /// Every room's members on every node, read whole after subscribing:
    /// it replaces what the ChatServer knew of other nodes' members.
    Roster(Roster),
    Event(Event),
}

/// A numbered message, and the connection on this node that sent it (which
/// gets its own copy, with the nonce).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Arc<ChatMessage>,
    pub epoch: String,
    pub sender: Option<u64>,
    /// The answer to a send whose nonce Redis had numbered before: the
    /// message is the one stored then, and nothing new happened.
    pub resent: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("the Redis URL is not valid: {0}")]
    Url(#[source] redis::RedisError),
}

/// A node's connection to the cluster.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ClusterSettings,
    keys: Keys,
    redis: ConnectionManager,
    client: redis::Client,
    pool: DbPool,
}

impl Cluster {
    /// Connects lazily: a node starts while Redis is down, and says so in
    /// `/healthz` and in the answers to sends.
    pub fn new(settings: ClusterSettings, pool: DbPool) -> Result<Self, ClusterError> {
        let client = redis::Client::open(settings.redis_url.as_str()).map_err(ClusterError::Url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let redis = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(ClusterError::Url)?;
        let keys = Keys::new(&settings.prefix);
        Ok(Self { inner: Arc::new(Inner { settings, keys, redis, client, pool }) })
    }

    pub fn node(&self) -> &str {
        &self.inner.settings.node
    }

    /// What every key and channel of this cluster starts with.
    pub fn prefix(&self) -> &str {
        &self.inner.settings.prefix
    }

    /// Starts the node's tasks; the ChatServer hears from them through `news`.
    pub fn start(&self, news: Recipient<News>) -> Link {
        subscriber::spawn(self.inner.clone(), news.clone());
        sweeper::spawn(self.inner.clone());
        presence::spawn(self.inner.clone());
        bus::spawn(self.inner.clone(), news)
    }

    /// History from the rooms' streams.
    pub fn recent(&self) -> Recent {
        Recent::new(self.inner.clone())
    }

    /// Takes a token from the cluster-wide bucket `kind`/`key` (`burst` at
    /// once, `rate` a second): limits that must hold whichever node a
    /// client reaches.
    pub async fn take_token(&self, kind: &str, key: &str, rate: f64, burst: f64) -> Result<bool, ChatError> {
        let mut redis = self.inner.redis.clone();
        let taken: i64 = scripts::TAKE
            .key(self.inner.keys.limit(kind, key))
            .arg(rate)
            .arg(burst)
            .invoke_async(&mut redis)
            .await
            .map_err(unreachable)?;
        Ok(taken == 1)
    }

    /// Whether the room exists anywhere in the cluster (in the log, or in
    /// Redis), and if so how it is encrypted. (A node that was not listening
    /// when another made a room learns of it this way, when asked about it.)
    pub async fn find_room(&self, room: &RoomName) -> Result<Option<Option<Encryption>>, ChatError> {
        // Every room a node made has its encryption decided in Redis, even
        // before its writer has put it in the log.
        if let Some(decided) = bus::decided(&self.inner, room).await? {
            return Ok(Some(decided));
        }
        let name = room.clone();
        crate::db::run(&self.inner.pool, move |conn| crate::db::rooms::encryption_of(conn, name.as_str())).await
    }

    /// Whether `room` is encrypted, for the whole cluster: as decided
    /// before, or else as `proposal` says from now on.
    pub async fn claim_room(
        &self,
        room: &RoomName,
        proposal: Option<Encryption>,
    ) -> Result<Option<Encryption>, ChatError> {
        bus::claim(&self.inner, room, proposal).await
    }

    /// Shares this node's live figures (a JSON object with `at_ms`) with the
    /// other nodes' consoles.
    pub async fn report_figures(&self, figures: &serde_json::Value) -> Result<(), ChatError> {
        let mut redis = self.inner.redis.clone();
        let json = figures.to_string();
        redis.hset::<_, _, _, ()>(self.inner.keys.stats(), self.node(), json).await.map_err(unreachable)
    }

    /// Every node's latest figures, by node name, from those that reported
    /// within `fresh`; figures of nodes gone for long are cleared away.
    pub async fn figures_of_nodes(&self, fresh: std::time::Duration) -> Result<Vec<serde_json::Value>, ChatError> {
        let mut redis = self.inner.redis.clone();
        let all: std::collections::HashMap<String, String> =
            redis.hgetall(self.inner.keys.stats()).await.map_err(unreachable)?;
        let now = crate::clock::now_ms();
        let fresh = i64::try_from(fresh.as_millis()).unwrap_or(i64::MAX);
        let mut nodes = Vec::new();
        for (node, json) in all {
            let figures: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
            let age = now - figures["at_ms"].as_i64().unwrap_or(0);
            if age <= fresh {
                nodes.push(serde_json::json!({ "node": node, "figures": figures }));
            } else if age > 60 * fresh {
                let _: Result<(), _> = redis.hdel(self.inner.keys.stats(), &node).await;
            }
        }
        nodes.sort_by(|a, b| a["node"].as_str().cmp(&b["node"].as_str()));
        Ok(nodes)
    }

    /// Whether Redis answers, for `/healthz`.
    pub async fn ping(&self) -> Result<(), ChatError> {
        let mut redis = self.inner.redis.clone();
        redis::cmd("PING").query_async::<()>(&mut redis).await.map_err(unreachable)
    }
}

/// Every Redis failure reaches clients as this: nothing was done, try again.
fn unreachable(e: redis::RedisError) -> ChatError {
    crate::warn_throttled!("redis: {e}");
    redis_down()
}

fn redis_down() -> ChatError {
    ChatError::Unavailable("the cluster's Redis is not reachable; nothing was stored, try again shortly".into())
}
