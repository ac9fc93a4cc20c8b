//! Rooms fed by the cluster. Redis numbers every message; each node
//! delivers a room's messages to its own members in id order, whichever
//! way they reach it (the answer to its own send, or the subscription), and
//! fills a gap from the room's stream before going on.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::messages::{Join, LearnRoom, NumberedAnswer, Push, SessionId};
use super::model::{Feed, Fill, RemoteMember, Room};
use super::{ChatServer, Request};
use crate::cluster::{from_encryption_tag, Attachment, Delivery, Event, News, Roster, RosterEntry};
use crate::db::writer::WriteOp;
use crate::domain::{DisplayName, RoomName};
use crate::error::ChatError;
use crate::protocol::PresenceAction;
use crate::ws::{CloseCode, CloseReason};

/// How long a gap may close by itself before the stream is read.
pub(super) const GAP_GRACE: Duration = Duration::from_millis(20);
/// How long after a failed read it is tried again.
const FILL_RETRY: Duration = Duration::from_secs(1);

/// A send waiting for Redis to number it.
pub struct Numbering {
    pub sender: Option<SessionId>,
    pub nonce: Option<String>,
    /// `POST /store_message` waiting for the numbered message and its epoch.
    pub waiter: Option<tokio::sync::oneshot::Sender<NumberedAnswer>>,
}

impl Request for News {
    fn apply(self, server: &mut ChatServer) {
        match self {
            News::Sent { ticket, room, result } => server.numbered(ticket, &room, result),
            News::Arrived(delivery) => server.offer(delivery),
            News::Attached { room, result } => server.attached(&room, result),
            News::Filled { room, ticket, result } => server.filled(&room, ticket, result),
            News::Resubscribed => {
                // Whatever was published meanwhile is only in the streams;
                // and if Redis lost this node's members, they are back.
                let live: Vec<RoomName> = server
                    .rooms
                    .iter()
                    .filter(|(_, r)| matches!(r.feed, Feed::Live { .. }))
                    .map(|(n, _)| n.clone())
                    .collect();
                for room in live {
                    server.fill_soon(&room, Duration::ZERO);
                    let sessions: Vec<SessionId> =
                        server.rooms.get(&room).map_or_else(Vec::new, |r| r.members.keys().copied().collect());
                    for session in sessions {
                        server.share_presence(&room, session);
                    }
                }
            }
            News::Event(Event::Enforce { enforcement, node }) => {
                if server.is_another_node(&node) {
                    server.enforce_here(enforcement);
                }
            }
            News::Event(Event::Revised { room, id, revision, node }) => {
                if let (true, Ok(room)) = (server.is_another_node(&node), RoomName::parse(&room)) {
                    server.revise_here(&room, id, &revision);
                }
            }
            News::Event(Event::Presence { room, session, member, node }) => {
                if server.is_another_node(&node) {
                    server.remote_presence(&room, (node, session), member);
                }
            }
            News::Roster(roster) => server.take_roster(roster),
            News::Event(Event::RoomCreated { room, node, encryption }) => {
                if let (true, Ok(name)) = (server.is_another_node(&node), RoomName::parse(&room)) {
                    let room = server.rooms.entry(name).or_insert_with(detached);
                    // Without it the creator did not know yet (a join made
                    // the room): attaching will tell.
                    if let Some(tag) = encryption {
                        room.encryption = from_encryption_tag(&tag).map(Arc::new);
                    }
                }
            }
        }
    }
}

impl ChatServer {
    /// Whether an event came from another node (this node's own were
    /// carried out when it made them).
    fn is_another_node(&self, node: &str) -> bool {
        self.cluster.as_ref().is_some_and(|link| link.node() != node)
    }

    /// Tells the other nodes that `session` is now in `room` under its
    /// name, or no longer in it.
    pub(super) fn share_presence(&self, room_name: &RoomName, session: SessionId) {
        let Some(link) = &self.cluster else { return };
        // An unseen admin is on no node's roster.
        let visible = self.rooms.get(room_name).and_then(|r| r.members.get(&session)).filter(|m| !m.hidden);
        let member = visible.map(|m| RosterEntry {
            name: m.name.as_str().into(),
            node: link.node().into(),
            since: m.joined_at_ms,
            guest: matches!(m.who, super::messages::Who::Guest(_)),
        });
        let (room, node) = (room_name.as_str().into(), link.node().into());
        link.publish(Event::Presence { room, session, member, node });
    }

    /// A member on another node came, changed its name, or went.
    fn remote_presence(&mut self, room: &str, key: (String, u64), member: Option<RosterEntry>) {
        let Ok(room_name) = RoomName::parse(room) else { return };
        let room = self.rooms.entry(room_name.clone()).or_insert_with(detached);
        match member.and_then(remote_member) {
            Some(member) => {
                let name = member.name.clone();
                match room.remote.insert(key, member) {
                    None => self.announce(&room_name, &name, PresenceAction::Join, None),
                    Some(old) if old.name != name => {
                        self.announce_counting(&room_name, &old.name, PresenceAction::Leave, None, 1);
                        self.announce(&room_name, &name, PresenceAction::Join, None);
                    }
                    Some(_) => {}
                }
            }
            None => {
                if let Some(old) = room.remote.remove(&key) {
                    self.announce(&room_name, &old.name, PresenceAction::Leave, None);
                }
            }
        }
    }

    /// Replaces what this node knew of other nodes' members.
    fn take_roster(&mut self, roster: Roster) {
        let Some(me) = self.cluster.as_ref().map(|link| link.node().to_string()) else { return };
        for room in self.rooms.values_mut() {
            room.remote.clear();
        }
        for (room, entries) in roster {
            let Ok(room_name) = RoomName::parse(&room) else { continue };
            let room = self.rooms.entry(room_name).or_insert_with(detached);
            for (node, session, entry) in entries.into_iter().filter(|(node, _, _)| *node != me) {
                if let Some(member) = remote_member(entry) {
                    room.remote.insert((node, session), member);
                }
            }
        }
    }

    /// Whether `join` must wait for the room's state from Redis; if so, it
    /// waits in the room (which asks for it once).
    pub(super) fn park_until_attached(&mut self, join: Join) -> Result<Option<Join>, ChatError> {
        let Some(link) = self.cluster.clone() else { return Ok(Some(join)) };
        if self.rooms.get(&join.room).is_some_and(|r| r.is_live()) {
            return Ok(Some(join));
        }
        // The checks that need no room state come first: a refused join
        // creates nothing, here or in Redis.
        if !self.admits(&join)? {
            return Ok(None);
        }
        if !self.rooms.contains_key(&join.room) {
            self.ensure_room(&join.room, Some(&join.name), None, false)?;
        }
        let room_name = join.room.clone();
        let room = self.rooms.get_mut(&room_name).expect("ensured above");
        match &mut room.feed {
            Feed::Attaching(waiting) => waiting.push(join),
            _ => {
                room.feed = Feed::Attaching(vec![join]);
                link.attach(room_name, room.epoch_is_new);
            }
        }
        Ok(None)
    }

    fn attached(&mut self, room_name: &RoomName, result: Result<Attachment, ChatError>) {
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        let Feed::Attaching(waiting) = std::mem::replace(&mut room.feed, Feed::Detached) else { return };
        match result {
            Ok(Attachment { epoch, last_id, encryption }) => {
                // What Redis decided, whatever this node believed (it may
                // have made the room up for a joining client).
                if let (Some(encryption), true) = (encryption.clone(), room.epoch_is_new) {
                    // This node made the room up and queued its row as
                    // plain: the row says what Redis decided, from now on.
                    let _ = self.writer.as_ref().map(|w| {
                        w.try_send(WriteOp::CreateRoom {
                            name: room_name.clone(),
                            created_at_ms: crate::clock::now_ms(),
                            created_by: None,
                            epoch: epoch.clone(),
                            encryption: Some(encryption),
                        })
                    });
                }
                room.encryption = encryption.map(Arc::new);
                room.epoch = epoch;
                room.epoch_is_new = false;
                room.last_id = last_id;
                room.persisted_id = last_id;
                room.tail.clear();
                room.feed = Feed::Live { early: BTreeMap::new(), fill: Fill::Idle };
                // Messages that arrived while attaching were not kept.
                self.fill_soon(room_name, Duration::ZERO);
                for join in waiting {
                    let (session, room) = (join.session, join.room.clone());
                    if let Err(e) = self.join(join) {
                        self.push_error(session, &e, "join_room", &room, None);
                    }
                }
                self.detach_if_empty(room_name);
            }
            Err(e) => {
                let why = e.to_string();
                for join in waiting {
                    let unavailable = ChatError::Unavailable(why.clone());
                    self.push_error(join.session, &unavailable, "join_room", &join.room, None);
                }
            }
        }
    }

    /// In a cluster, a room without members here stops following its traffic.
    pub(super) fn detach_if_empty(&mut self, room_name: &RoomName) {
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        if room.members.is_empty() && matches!(room.feed, Feed::Live { .. }) {
            room.feed = Feed::Detached;
            room.tail.clear();
        }
    }

    fn numbered(&mut self, ticket: u64, room: &RoomName, result: Result<Delivery, ChatError>) {
        let Some(pending) = self.numbering.remove(&ticket) else { return };
        match result {
            Ok(delivery) if delivery.resent => {
                if let Some(sender) = pending.sender {
                    self.answer_resend(sender, &delivery.message);
                }
                if let Some(waiter) = pending.waiter {
                    let _ = waiter.send(Ok((delivery.message.clone(), delivery.epoch.clone())));
                }
            }
            Ok(delivery) => {
                self.metrics.messages_accepted.inc();
                // Redis has the room now: from here on, if it lacks it, it lost it.
                if let Some(r) = self.rooms.get_mut(room) {
                    r.epoch_is_new = false;
                }
                // It is in Redis already: if this node cannot write it, the
                // sweeper will.
                if let Err(e) = self.enqueue(WriteOp::Message(delivery.message.clone())) {
                    crate::warn_throttled!("room {room}: message {} left to the sweeper: {e}", delivery.message.id);
                }
                if let Some(waiter) = pending.waiter {
                    let _ = waiter.send(Ok((delivery.message.clone(), delivery.epoch.clone())));
                }
                self.offer(delivery);
            }
            Err(e) => {
                self.metrics.refused(e.code());
                // If Redis took it after all (it answered too late), the
                // room's stream has it: members here get it from there.
                self.fill_soon(room, FILL_RETRY);
                if let Some(sender) = pending.sender {
                    self.push_error(sender, &e, "send_message", room, pending.nonce.as_deref());
                }
                if let Some(waiter) = pending.waiter {
                    let _ = waiter.send(Err(e));
                }
            }
        }
    }

    /// Delivers a numbered message here in its room's order: a duplicate is
    /// dropped, one beyond a gap waits while the gap is filled.
    fn offer(&mut self, delivery: Delivery) {
        let room_name = delivery.message.room.clone();
        let Some(room) = self.rooms.get_mut(&room_name) else { return };
        let Feed::Live { early, .. } = &mut room.feed else { return };
        if delivery.epoch != room.epoch {
            self.restart_room(&room_name);
            return;
        }
        let id = delivery.message.id;
        if id <= room.last_id {
            return;
        }
        if id > room.last_id + 1 {
            early.insert(id, delivery);
            self.fill_soon(&room_name, GAP_GRACE);
            return;
        }
        self.deliver_next(delivery);
        self.deliver_early(&room_name);
    }

    /// Delivers the messages waiting in `early` that follow on.
    fn deliver_early(&mut self, room_name: &RoomName) {
        loop {
            let Some(room) = self.rooms.get_mut(room_name) else { return };
            let Feed::Live { early, .. } = &mut room.feed else { return };
            let Some(entry) = early.first_entry() else { return };
            if *entry.key() > room.last_id + 1 {
                return;
            }
            let next = entry.remove();
            if next.message.id == room.last_id + 1 {
                self.deliver_next(next);
            }
        }
    }

    fn deliver_next(&mut self, delivery: Delivery) {
        let Some(room) = self.rooms.get_mut(&delivery.message.room) else { return };
        room.last_id = delivery.message.id;
        // Everything up to here is in the room's stream or the database.
        room.persisted_id = delivery.message.id;
        room.tail.push_back(delivery.message.clone());
        room.trim(self.tail_len);
        self.deliver(&delivery.message, delivery.sender);
    }

    /// Has the room's stream read `after` from now (unless a read is
    /// already due sooner or on its way). A gap waits `GAP_GRACE` first, and
    /// its read is skipped if the gap closed meanwhile; other reads (after
    /// attaching, after subscribing again, after a failure) always happen.
    pub(super) fn fill_soon(&mut self, room_name: &RoomName, after: Duration) {
        let always = after != GAP_GRACE;
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        let Feed::Live { fill, .. } = &mut room.feed else { return };
        let at = Instant::now() + after;
        match *fill {
            Fill::Reading(_) => return,
            Fill::Due { at: sooner, always: was } => *fill = Fill::Due { at: at.min(sooner), always: always || was },
            Fill::Idle => *fill = Fill::Due { at, always },
        }
        self.gaps.insert(room_name.clone());
    }

    /// Starts the reads that are due; the ChatServer's timer calls this.
    pub(super) fn start_due_fills(&mut self) {
        if self.gaps.is_empty() {
            return;
        }
        let Some(link) = self.cluster.clone() else { return };
        let now = Instant::now();
        let mut waiting = HashSet::new();
        for room_name in std::mem::take(&mut self.gaps) {
            let Some(room) = self.rooms.get_mut(&room_name) else { continue };
            let Feed::Live { fill, early } = &mut room.feed else { continue };
            match *fill {
                Fill::Due { always: false, .. } if early.is_empty() => *fill = Fill::Idle,
                Fill::Due { at, .. } if at <= now => {
                    self.next_ticket += 1;
                    *fill = Fill::Reading(self.next_ticket);
                    link.fill(room_name.clone(), room.last_id, self.next_ticket);
                }
                Fill::Due { .. } => {
                    waiting.insert(room_name);
                }
                _ => {}
            }
        }
        self.gaps = waiting;
    }

    fn filled(&mut self, room_name: &RoomName, ticket: u64, result: Result<Vec<Delivery>, ChatError>) {
        let Some(before) = self.rooms.get(room_name).map(|r| r.last_id) else { return };
        let ours = matches!(self.rooms.get(room_name).map(|r| &r.feed), Some(Feed::Live { fill: Fill::Reading(t), .. }) if *t == ticket);
        let deliveries = match result {
            Ok(deliveries) => deliveries,
            Err(e) => {
                crate::warn_throttled!("room {room_name}: could not fill a gap: {e}");
                if ours {
                    self.set_fill(room_name, Fill::Idle);
                    self.fill_soon(room_name, FILL_RETRY);
                }
                return;
            }
        };
        // A stale answer (the room detached and attached again meanwhile)
        // still brings messages, which `offer` checks; it decides nothing.
        for delivery in deliveries {
            self.offer(delivery);
        }
        if !ours {
            return;
        }
        self.set_fill(room_name, Fill::Idle);
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        let advanced = room.last_id > before;
        let Feed::Live { early, .. } = &mut room.feed else { return };
        let Some(&first_early) = early.keys().next() else { return };
        if advanced {
            // More may have been added since the read: read on.
            self.fill_soon(room_name, Duration::ZERO);
        } else {
            // The stream no longer has them (trimmed, or Redis lost them):
            // the room goes on without.
            log::warn!(
                "room {room_name}: ids {} to {} are not in the stream; going on without them",
                room.last_id + 1,
                first_early - 1
            );
            room.last_id = first_early - 1;
            self.deliver_early(room_name);
        }
    }

    fn set_fill(&mut self, room_name: &RoomName, to: Fill) {
        if let Some(Feed::Live { fill, .. }) = self.rooms.get_mut(room_name).map(|r| &mut r.feed) {
            *fill = to;
        }
    }

    /// The room's epoch changed in Redis (it lost its data): the ids members
    /// here hold mean nothing now. They are closed with 1012, reconnect, and
    /// reload the room's history under its new epoch.
    fn restart_room(&mut self, room_name: &RoomName) {
        let members: Vec<SessionId> =
            self.rooms.get(room_name).map_or_else(Vec::new, |r| r.members.keys().copied().collect());
        log::warn!("room {room_name}: a new epoch in Redis; {} connection(s) here reconnect", members.len());
        for session in members {
            if let Some(entry) = self.forget(session) {
                let description = Some("the room's history restarted; reconnect".into());
                entry.outbox.addr.do_send(Push::Close(CloseReason { code: CloseCode::Restart, description }));
            }
        }
        self.detach_if_empty(room_name);
    }
}

impl Request for LearnRoom {
    fn apply(self, server: &mut ChatServer) {
        if server.cluster.is_some() {
            let room = server.rooms.entry(self.room).or_insert_with(detached);
            room.encryption = self.encryption.map(Arc::new);
        }
    }
}

/// A room another node told of: nothing current is known of it here (its
/// encryption, if the news did not say, comes with the first attach).
fn detached() -> Room {
    Room::new(String::new(), 0, Feed::Detached, None)
}

fn remote_member(entry: RosterEntry) -> Option<RemoteMember> {
    let name = DisplayName::parse(&entry.name).ok()?;
    Some(RemoteMember { name, node: entry.node, joined_at_ms: entry.since, guest: entry.guest })
}
