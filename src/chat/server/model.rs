//! Rooms, their members, and the connections the ChatServer knows.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use super::messages::{Account, ConnectionSummary, Join, Outbox, SessionId, Who};
use crate::chat::history::{HistoryPlan, HistoryQuery};
use crate::clock::format_timestamp;
use crate::cluster::Delivery;
use crate::domain::{ChatMessage, DisplayName, Encryption, RoomName};
use crate::error::ChatError;

pub struct Member {
    pub name: DisplayName,
    /// `name.skeleton()`, kept so that checking a joiner's name against a
    /// big room allocates nothing per member.
    pub skeleton: String,
    pub who: Who,
    pub admin: bool,
    /// When this connection joined the room (Unix ms).
    pub joined_at_ms: i64,
    pub outbox: Outbox,
    /// An admin watching unseen: gets the room's frames, is in no member
    /// list or count, and its coming and going is announced to no one.
    pub hidden: bool,
}

pub struct Room {
    /// The run of ids this room is in. Clients that hold ids of another
    /// epoch reload instead of trusting them.
    pub epoch: String,
    /// The epoch began in this process: no client can hold an id of it
    /// beyond `last_id`, so a `since` beyond it is not a reason to renew.
    pub epoch_is_new: bool,
    /// The last id given out; the next message gets `last_id + 1`.
    pub last_id: i64,
    /// Every id up to here is in the database.
    pub persisted_id: i64,
    pub members: HashMap<SessionId, Member>,
    /// The members that are `hidden`.
    pub hidden: HashSet<SessionId>,
    /// The latest delivered messages, oldest first: everything not yet
    /// persisted, and while the room has members at least `tail_len` more.
    pub tail: VecDeque<Arc<ChatMessage>>,
    /// With `--durable-ack`: accepted messages waiting for their commit
    /// before anyone sees them, oldest first.
    pub unconfirmed: VecDeque<Unconfirmed>,
    /// Where the room's messages come from.
    pub feed: Feed,
    /// In a cluster: the room's members on other nodes, by
    /// `(node, session)`.
    pub remote: HashMap<(String, u64), RemoteMember>,
    /// Set for an end-to-end encrypted room: it takes ciphertext only.
    pub encryption: Option<Arc<Encryption>>,
    /// Messages older than the tail changed lately, as they are now (`None`:
    /// deleted), newest last: the log may not have committed the change
    /// yet, so a lookup there could answer with the message as it was.
    pub revised: VecDeque<(i64, Option<Arc<ChatMessage>>)>,
}

/// Changes to messages older than the tail that a room remembers: far more
/// than the writer can be behind on.
const REVISED_KEPT: usize = 256;

/// A member connected to another node of the cluster.
pub struct RemoteMember {
    pub name: DisplayName,
    pub node: String,
    pub joined_at_ms: i64,
    pub guest: bool,
}

/// Where a room's messages come from: this process alone, or the cluster.
pub enum Feed {
    /// A single node: it numbers and delivers the room's messages itself.
    Local,
    /// In a cluster, no members here: the node ignores the room's traffic
    /// and knows nothing current of its ids or epoch.
    Detached,
    /// In a cluster, asking Redis for the room's epoch and last id before
    /// the first member here joins; these joins wait for the answer.
    Attaching(Vec<Join>),
    /// In a cluster, with members here: `last_id` is the last id delivered
    /// here, and messages that arrive ahead of a gap wait in `early` while
    /// the gap is filled from the room's stream.
    Live { early: BTreeMap<i64, Delivery>, fill: Fill },
}

/// Where a live room's gap filling stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Idle,
    /// To read the stream at this moment: a gap often closes by itself a
    /// moment later (a node's own answer overtaking another node's
    /// publish), and a failed read is tried again after a pause. Unless
    /// `always`, the read is skipped when no gap is left by then.
    Due {
        at: std::time::Instant,
        always: bool,
    },
    /// A read is on its way; its answer carries this ticket.
    Reading(u64),
}

/// A message accepted under `--durable-ack`, not committed yet.
pub struct Unconfirmed {
    pub message: Arc<ChatMessage>,
    /// The connection that sent it, told once it is kept.
    pub sender: Option<SessionId>,
    /// An HTTP request waiting for the same.
    pub waiter: Option<tokio::sync::oneshot::Sender<Result<(), ChatError>>>,
}

impl Room {
    pub fn new(epoch: String, last_id: i64, feed: Feed, encryption: Option<Encryption>) -> Self {
        Self {
            feed,
            epoch,
            epoch_is_new: false,
            last_id,
            persisted_id: last_id,
            members: HashMap::new(),
            hidden: HashSet::new(),
            tail: VecDeque::new(),
            unconfirmed: VecDeque::new(),
            remote: HashMap::new(),
            encryption: encryption.map(Arc::new),
            revised: VecDeque::new(),
        }
    }

    /// Message `id` as this room last knew it changed, if it did lately:
    /// `Some(None)` when it was deleted.
    pub fn lately_revised(&self, id: i64) -> Option<Option<Arc<ChatMessage>>> {
        self.revised.iter().rev().find(|(i, _)| *i == id).map(|(_, m)| m.clone())
    }

    /// Remembers message `id` as it is now (`None`: deleted).
    pub fn note_revised(&mut self, id: i64, now: Option<Arc<ChatMessage>>) {
        if self.revised.len() == REVISED_KEPT {
            self.revised.pop_front();
        }
        self.revised.push_back((id, now));
    }

    /// Members here and, in a cluster, on every other node.
    pub fn member_count(&self) -> usize {
        self.members.len().saturating_sub(self.hidden.len()) + self.remote.len()
    }

    /// What the room can answer of `query` from memory, and from where on
    /// the database must help.
    pub fn is_live(&self) -> bool {
        matches!(self.feed, Feed::Local | Feed::Live { .. })
    }

    pub fn plan(&self, name: &RoomName, query: HistoryQuery) -> HistoryPlan {
        if matches!(self.feed, Feed::Detached | Feed::Attaching(_)) {
            // Nothing current here: the cluster's stream and the database answer.
            return query.plan(name, std::iter::empty(), i64::MAX);
        }
        // An empty tail means everything delivered is in the database (or,
        // in a cluster, in the room's stream).
        let db_below = self.tail.front().map_or(self.persisted_id + 1, |m| m.id);
        query.plan(name, self.tail.iter(), db_below)
    }

    /// Drops persisted messages beyond what the tail keeps; an empty room
    /// keeps only what is not persisted yet.
    pub fn trim(&mut self, tail_len: usize) {
        let keep = if self.members.is_empty() { 0 } else { tail_len };
        while self.tail.len() > keep && self.tail.front().is_some_and(|m| m.id <= self.persisted_id) {
            self.tail.pop_front();
        }
    }

    /// Every connection in the room, oldest first; `node` names the node
    /// of each in a cluster (`here` for this one).
    pub fn connections(&self, here: Option<&str>) -> Vec<ConnectionSummary> {
        let visible = self.members.values().filter(|m| !m.hidden);
        let local = visible.map(|m| (m.joined_at_ms, &m.name, here, matches!(m.who, Who::Guest(_))));
        let remote = self.remote.values().map(|m| (m.joined_at_ms, &m.name, Some(m.node.as_str()), m.guest));
        let mut all: Vec<_> = local.chain(remote).collect();
        all.sort_by_key(|(since, ..)| *since);
        all.into_iter()
            .map(|(since, name, node, guest)| ConnectionSummary {
                name: name.clone(),
                since: format_timestamp(since),
                node: node.map(str::to_string),
                guest,
            })
            .collect()
    }

    pub fn member_names(&self) -> Vec<DisplayName> {
        self.first_member_names(usize::MAX)
    }

    /// The first `limit` member names in order: a busy room's `joined`
    /// lists a page of them, not thousands, in time linear in the room.
    pub fn first_member_names(&self, limit: usize) -> Vec<DisplayName> {
        let here = self.members.values().filter(|m| !m.hidden).map(|m| m.name.clone());
        let mut names: Vec<_> = here.chain(self.remote.values().map(|m| m.name.clone())).collect();
        let by_name = |a: &DisplayName, b: &DisplayName| a.as_str().cmp(b.as_str());
        if names.len() > limit {
            names.select_nth_unstable_by(limit, by_name);
            names.truncate(limit);
        }
        names.sort_by(by_name);
        names
    }
}

/// A connection, and the rooms it is in.
pub struct SessionEntry {
    pub outbox: Outbox,
    pub rooms: HashSet<RoomName>,
    pub account: Option<Account>,
    /// A guest's address.
    pub address: Option<std::net::IpAddr>,
}
