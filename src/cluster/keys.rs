//! Where the cluster keeps things in Redis. Every key and channel starts
//! with the configured prefix, so that several clusters (or test runs) can
//! share one Redis.

use crate::domain::RoomName;

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_string() }
    }

    /// The last id given out in the room.
    pub fn seq(&self, room: &RoomName) -> String {
        format!("{}room:{}:seq", self.prefix, room.as_str())
    }

    /// The room's epoch: the run its ids belong to.
    pub fn epoch(&self, room: &RoomName) -> String {
        format!("{}room:{}:epoch", self.prefix, room.as_str())
    }

    /// Whether the room is end-to-end encrypted (`wire::encryption_tag`):
    /// set once, by the first node to decide, and what every node goes by.
    pub fn encryption(&self, room: &RoomName) -> String {
        format!("{}room:{}:e2e", self.prefix, room.as_str())
    }

    /// The capped stream of the room's latest messages, entry id `<id>-0`.
    pub fn log(&self, room: &RoomName) -> String {
        format!("{}room:{}:log", self.prefix, room.as_str())
    }

    /// The room's members on every node: field `<node>:<session>`, value a
    /// `RosterEntry`.
    pub fn members(&self, room: &str) -> String {
        format!("{}room:{room}:members", self.prefix)
    }

    /// Rooms that have (or lately had) members somewhere.
    pub fn present(&self) -> String {
        format!("{}present", self.prefix)
    }

    /// Each node's latest live figures (field: the node), for the console.
    pub fn stats(&self) -> String {
        format!("{}stats", self.prefix)
    }

    /// Nodes that have announced themselves.
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// Exists while the node is alive: it renews it, and it expires.
    pub fn alive(&self, node: &str) -> String {
        format!("{}node:{node}:alive", self.prefix)
    }

    /// The rooms a node has had members in, for clearing up after it.
    pub fn node_rooms(&self, node: &str) -> String {
        format!("{}node:{node}:rooms", self.prefix)
    }

    /// Held by the node clearing up after a dead one.
    pub fn reaper_lock(&self, node: &str) -> String {
        format!("{}node:{node}:reaper", self.prefix)
    }

    /// A limit's token bucket, shared by every node.
    pub fn limit(&self, kind: &str, key: &str) -> String {
        format!("{}limit:{kind}:{key}", self.prefix)
    }

    /// The run id of the Redis process that keeps the cluster's rooms.
    pub fn redis_run(&self) -> String {
        format!("{}redis-run", self.prefix)
    }

    /// Every room's epoch key, as a `KEYS` pattern.
    pub fn all_epochs(&self) -> String {
        format!("{}room:*:epoch", self.prefix)
    }

    /// The id a message with this nonce from this author got.
    pub fn nonce(&self, room: &RoomName, author: &str, nonce: &str) -> String {
        format!("{}room:{}:nonce:{author}:{nonce}", self.prefix, room.as_str())
    }

    /// Rooms whose stream holds messages the sweeper has not checked yet.
    pub fn dirty(&self) -> String {
        format!("{}dirty", self.prefix)
    }

    /// Per room, the id up to which the sweeper found everything in the
    /// database.
    pub fn swept(&self) -> String {
        format!("{}swept", self.prefix)
    }

    /// Held by the one node sweeping at a time.
    pub fn sweeper_lock(&self) -> String {
        format!("{}sweeper", self.prefix)
    }

    pub fn messages_channel(&self) -> String {
        format!("{}messages", self.prefix)
    }

    pub fn events_channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    /// The latest decisions and changes to messages (`Enforce` and
    /// `Revised` events), a capped stream: a node that lost its
    /// subscription reads what it missed from here.
    pub fn events_log(&self) -> String {
        format!("{}events:log", self.prefix)
    }
}
