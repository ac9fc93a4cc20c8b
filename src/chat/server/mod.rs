//! `ChatServer`: the one actor that owns every room and its members.
//!
//! It never touches the database. It gives each accepted message its room's
//! next id, fans it out, keeps it in the room's in-memory tail and hands it
//! to the writer thread. Sessions get frames through a bounded mailbox: a
//! session that cannot keep up is disconnected, so one stalled reader costs
//! bounded memory and never slows anyone else down.
//!
//! - `messages`: what it is asked and what it pushes to sessions
//! - `model`: rooms, members and connections
//! - `rooms`: joining, leaving, sending, typing, history, rooms over HTTP
//! - `revisions`: members editing, deleting and reacting to messages
//! - `moderation` and `policies`: what admins do, and the rules that follow
//! - `cluster`: rooms fed by the cluster's Redis when several nodes run

mod cluster;
mod messages;
mod model;
mod moderation;
mod policies;
mod revisions;
mod rooms;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use bytestring::ByteString;

pub use messages::{
    Account, AwaitCommitted, BanAccount, Connect, ConnectionSummary, CreateRoom, DeleteMessage, Disconnect, EndLogin,
    FetchHistory, Invite, Join, Kick, LearnRoom, Leave, LetIn, ListRooms, MemberChange, Mute, Outbox, Persisted,
    PlanHistory, PlannedHistory, Push, ReviseMessage, RoomCreated, RoomSummary, SendMessage, SessionId, SetClosed,
    SetPrivate, SetRole, Shutdown, Snapshot, StoreMessage, Stored, TakeSnapshot, Typing, UnbanAccount, Who,
};
use model::{Feed, Room, SessionEntry};
use policies::Policies;

use crate::clock::now_ms;
use crate::cluster::{encryption_tag, Event, Link};
use crate::db::chat_state::{new_epoch, ChatState};
use crate::db::writer::{QueueError, WriteOp, WriteQueue};
use crate::domain::{DisplayName, Encryption, RoomName};
use crate::error::ChatError;
use crate::metrics::Metrics;
use crate::protocol::{PresenceAction, ServerFrame};
use crate::ws::{CloseCode, CloseReason};

/// Rooms one connection may be in at once.
pub const MAX_ROOMS_PER_SESSION: usize = 100;
/// How often a busy room's presence changes go out, batched.
const PRESENCE_BATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// How the ChatServer treats rooms and sessions; from the settings.
#[derive(Debug, Clone, Copy)]
pub struct ChatSettings {
    /// Messages sent with `joined`.
    pub history_on_join: usize,
    /// Bytes of frames that may wait in one session's mailbox.
    pub max_queued_bytes: usize,
    /// Rooms with more members than this get presence in batches.
    pub presence_batch_above: usize,
    /// Senders and rooms see a message only once it is committed.
    pub durable_ack: bool,
    /// Sends are refused while the oldest uncommitted write is older.
    pub max_unwritten: Duration,
    /// How long a kicked member is kept out of the room (zero: not at all).
    pub kick_cooldown: Duration,
}

pub struct ChatServer {
    rooms: HashMap<RoomName, Room>,
    sessions: HashMap<SessionId, SessionEntry>,
    /// `None` once shutting down.
    writer: Option<WriteQueue>,
    metrics: Arc<Metrics>,
    settings: ChatSettings,
    tail_len: usize,
    /// Sessions whose mailbox overflowed during the current request.
    overflowed: Vec<SessionId>,
    /// Busy rooms' names whose presence changed since the last batch.
    presence_pending: HashMap<RoomName, Vec<DisplayName>>,
    policies: Policies,
    /// In a cluster: how to reach it, and the sends waiting for Redis to
    /// number them, by ticket.
    cluster: Option<Link>,
    numbering: HashMap<u64, cluster::Numbering>,
    next_ticket: u64,
    /// Live rooms with a read of their stream due.
    gaps: std::collections::HashSet<RoomName>,
}

impl Actor for ChatServer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(PRESENCE_BATCH_EVERY, |server, _| {
            server.flush_presence();
            server.evict_overflowed();
        });
        if self.cluster.is_some() {
            ctx.run_interval(cluster::GAP_GRACE / 2, |server, _| server.start_due_fills());
        }
    }
}

/// How the ChatServer carries out one of its messages. A single `Handler`
/// serves them all, so that every request ends the same way: sessions whose
/// mailbox overflowed while it ran are disconnected.
pub trait Request: Message + Sized {
    fn apply(self, server: &mut ChatServer) -> Self::Result;
}

impl<M: Request> Handler<M> for ChatServer {
    type Result = MessageResult<M>;

    fn handle(&mut self, msg: M, _: &mut Context<Self>) -> MessageResult<M> {
        let result = msg.apply(self);
        self.evict_overflowed();
        MessageResult(result)
    }
}

impl ChatServer {
    /// Starts from what the log holds: its rooms (ids continue where they
    /// stopped, in the epoch the log gives) and what admins decided.
    pub fn new(
        mut saved: ChatState,
        writer: WriteQueue,
        settings: ChatSettings,
        metrics: Arc<Metrics>,
        cluster: Option<Link>,
    ) -> Self {
        let in_cluster = cluster.is_some();
        let rooms = std::mem::take(&mut saved.rooms)
            .into_iter()
            .map(|r| (r.name, Room::new(r.epoch, r.last_id, new_feed(in_cluster), r.encryption)))
            .collect();
        Self {
            cluster,
            numbering: HashMap::new(),
            next_ticket: 0,
            gaps: Default::default(),
            rooms,
            sessions: HashMap::new(),
            writer: Some(writer),
            metrics,
            settings,
            tail_len: settings.history_on_join.max(100),
            overflowed: Vec::new(),
            presence_pending: HashMap::new(),
            policies: Policies::from_saved(saved),
        }
    }

    /// Hands a session something; a full mailbox marks it a slow consumer.
    fn push(&mut self, session: SessionId, push: Push) {
        if let Some(entry) = self.sessions.get(&session) {
            offer(&mut self.overflowed, self.settings.max_queued_bytes, session, &entry.outbox, push);
        }
    }

    /// The error of `command` about `room`.
    fn push_error(&mut self, session: SessionId, err: &ChatError, command: &str, room: &RoomName, nonce: Option<&str>) {
        let frame = ServerFrame::error(err, Some(command), Some(room.as_str()), nonce);
        self.push(session, Push::Frame(frame));
    }

    /// Sends `frame` to every member of `room` except `skip`.
    fn broadcast(&mut self, room: &RoomName, frame: &ByteString, skip: Option<SessionId>) {
        let Some(room) = self.rooms.get(room) else { return };
        let recipients = room.members.len() - usize::from(skip.is_some_and(|s| room.members.contains_key(&s)));
        self.metrics.deliveries.inc_by(recipients as u64);
        self.metrics.bytes_out.inc_by((recipients * frame.len()) as u64);
        for (id, member) in &room.members {
            if Some(*id) != skip {
                offer(
                    &mut self.overflowed,
                    self.settings.max_queued_bytes,
                    *id,
                    &member.outbox,
                    Push::Frame(frame.clone()),
                );
            }
        }
    }

    /// Disconnects sessions that overflowed, which may in turn overflow others
    /// with the `leave` notices it sends.
    fn evict_overflowed(&mut self) {
        while let Some(session) = self.overflowed.pop() {
            crate::warn_throttled!("session {session}: too much queued for it; disconnecting a slow consumer");
            self.metrics.slow_consumers.inc();
            self.disconnect(session, "slow consumer");
        }
    }

    /// Closes a connection (1008 with `why`) and takes it out of its rooms.
    /// `do_send` passes the mailbox bound, and a session's own writes never
    /// block it, so even a session behind on its mailbox acts on this.
    fn disconnect(&mut self, session: SessionId, why: &str) {
        if let Some(entry) = self.forget(session) {
            let reason = CloseReason { code: CloseCode::Policy, description: Some(why.into()) };
            entry.outbox.addr.do_send(Push::Close(reason));
        }
    }

    /// Takes a connection out of its rooms and forgets it.
    fn forget(&mut self, session: SessionId) -> Option<SessionEntry> {
        let entry = self.sessions.remove(&session)?;
        for room in &entry.rooms {
            self.remove_member(session, room);
        }
        Some(entry)
    }

    /// Takes `session` out of `room`: it is told with `frame`, the others
    /// see it leave.
    fn eject(&mut self, session: SessionId, room: &RoomName, frame: &ByteString) {
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry.rooms.remove(room);
        }
        self.push(session, Push::Frame(frame.clone()));
        self.remove_member(session, room);
    }

    fn remove_member(&mut self, session: SessionId, room_name: &RoomName) {
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        let Some(member) = room.members.remove(&session) else { return };
        room.trim(self.tail_len);
        self.metrics.leaves.inc();
        if room.hidden.remove(&session) {
            self.detach_if_empty(room_name);
            return;
        }
        self.announce(room_name, &member.name, PresenceAction::Leave, None);
        self.share_presence(room_name, session);
        self.detach_if_empty(room_name);
    }

    /// Tells the members of `room` (but `skip`) that `name` came or went.
    fn announce(&mut self, room: &RoomName, name: &DisplayName, action: PresenceAction, skip: Option<SessionId>) {
        self.announce_counting(room, name, action, skip, 0);
    }

    /// Like `announce`, with `uncounted` members of the map left out of the
    /// count that goes with it.
    fn announce_counting(
        &mut self,
        room: &RoomName,
        name: &DisplayName,
        action: PresenceAction,
        skip: Option<SessionId>,
        uncounted: usize,
    ) {
        let Some(count) = self.rooms.get(room).map(|r| r.member_count() - uncounted) else { return };
        // A busy room gets one batch a moment instead of a frame per change
        // for every member: a thousand joins would be a million frames.
        if count > self.settings.presence_batch_above || self.presence_pending.contains_key(room) {
            self.presence_pending.entry(room.clone()).or_default().push(name.clone());
            return;
        }
        let frame =
            ServerFrame::Presence { room: room.as_str(), user: name.as_str(), action, members: count }.to_text();
        self.broadcast(room, &frame, skip);
    }

    /// Sends each busy room's batch: every name whose presence changed,
    /// with whether it is in the room now. As state rather than events, a
    /// batch is right whatever its receiver saw before (its own `joined`
    /// included).
    fn flush_presence(&mut self) {
        for (room_name, mut names) in std::mem::take(&mut self.presence_pending) {
            let Some(room) = self.rooms.get(&room_name) else { continue };
            let here = room.members.values().filter(|m| !m.hidden).map(|m| m.name.as_str());
            let present: std::collections::HashSet<&str> =
                here.chain(room.remote.values().map(|m| m.name.as_str())).collect();
            names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            names.dedup();
            let (joined, left): (Vec<&str>, Vec<&str>) =
                names.iter().map(DisplayName::as_str).partition(|name| present.contains(name));
            let members = room.member_count();
            let frame = ServerFrame::PresenceBatch { room: room_name.as_str(), joined, left, members }.to_text();
            self.broadcast(&room_name, &frame, None);
        }
    }

    fn sessions_where(&self, matches: impl Fn(&Account) -> bool) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, entry)| entry.account.as_ref().is_some_and(&matches))
            .map(|(id, _)| *id)
            .collect()
    }

    fn member_name(&self, session: SessionId, room: &RoomName) -> Option<DisplayName> {
        Some(self.rooms.get(room)?.members.get(&session)?.name.clone())
    }

    fn is_member(&self, session: SessionId, room: &RoomName) -> bool {
        self.rooms.get(room).is_some_and(|r| r.members.contains_key(&session))
    }

    /// Makes `name` unless it exists; says whether it did. `decided`: in a cluster, Redis has
    /// decided `encryption` for the room (so the other nodes hear it);
    /// otherwise the room is taken for a plain one until its attach says.
    fn ensure_room(
        &mut self,
        name: &RoomName,
        created_by: Option<&DisplayName>,
        encryption: Option<Encryption>,
        decided: bool,
    ) -> Result<bool, ChatError> {
        if self.rooms.contains_key(name) {
            return Ok(false);
        }
        let epoch = new_epoch();
        self.enqueue(WriteOp::CreateRoom {
            name: name.clone(),
            created_at_ms: now_ms(),
            created_by: created_by.map(|n| n.as_str().into()),
            epoch: epoch.clone(),
            encryption: encryption.clone(),
        })?;
        let mut room = Room::new(epoch, 0, new_feed(self.cluster.is_some()), encryption.clone());
        room.epoch_is_new = true;
        self.rooms.insert(name.clone(), room);
        if let Some(link) = &self.cluster {
            let node = link.node().into();
            let encryption = decided.then(|| encryption_tag(encryption.as_ref()));
            link.publish(Event::RoomCreated { room: name.as_str().into(), node, encryption });
        }
        Ok(true)
    }

    /// Hands a change to the writer; refused when its queue is full.
    fn enqueue(&self, op: WriteOp) -> Result<(), ChatError> {
        let writer = self.writer.as_ref().ok_or_else(shutting_down)?;
        writer.try_send(op).map_err(|e| match e {
            QueueError::Full => {
                ChatError::Unavailable("the message log is behind; nothing was stored, try again shortly".into())
            }
            QueueError::Closed => shutting_down(),
        })
    }

    /// Refuses new messages while the message log has not been able to
    /// commit for longer than the configured bound: what a crash could lose
    /// stays bounded in time, not only in count.
    fn check_log_keeps_up(&self) -> Result<(), ChatError> {
        let writer = self.writer.as_ref().ok_or_else(shutting_down)?;
        let waited = writer.oldest_unwritten();
        if waited > self.settings.max_unwritten {
            return Err(ChatError::Unavailable(format!(
                "the message log has not been able to write for {} s; nothing was stored, try again shortly",
                waited.as_secs()
            )));
        }
        Ok(())
    }
}

/// Delivers to a session's mailbox, unless more than `max_bytes` of frames
/// already wait there: then the session goes on the list of slow consumers
/// to disconnect. A burst of small frames (a join storm's presence notices)
/// is no reason to drop anyone who keeps up.
fn offer(overflowed: &mut Vec<SessionId>, max_bytes: usize, session: SessionId, outbox: &Outbox, push: Push) {
    let size = match &push {
        Push::Frame(frame) => frame.len(),
        _ => 0,
    };
    let waiting = outbox.queued_bytes.fetch_add(size, Ordering::Relaxed);
    if waiting + size > max_bytes {
        outbox.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        overflowed.push(session);
        return;
    }
    outbox.addr.do_send(push);
}

fn new_feed(in_cluster: bool) -> Feed {
    if in_cluster {
        Feed::Detached
    } else {
        Feed::Local
    }
}

/// What every session is closed with when the server stops.
fn shutdown_close() -> CloseReason {
    CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) }
}

fn shutting_down() -> ChatError {
    ChatError::Unavailable("the server is shutting down".into())
}

fn unknown_room(room: &RoomName) -> ChatError {
    ChatError::UnknownRoom(room.to_string())
}
