//! What members do in rooms (join, leave, send, type, page through
//! history) and what HTTP asks of rooms (create, post, list, read).

use std::collections::HashSet;
use std::sync::Arc;

use super::cluster::Numbering;
use super::messages::*;
use super::model::{Member, SessionEntry, Unconfirmed};
use super::{shutdown_close, shutting_down, unknown_room, ChatServer, Request, MAX_ROOMS_PER_SESSION};
use crate::chat::history::HistoryQuery;
use crate::clock::now_ms;
use crate::cluster::Draft;
use crate::db::chat_state::new_epoch;
use crate::db::writer::WriteOp;
use crate::domain::{ChatMessage, DisplayName, MessageText, Nonce, RoomName};
use crate::error::ChatError;
use crate::protocol::{MessageView, PresenceAction, ServerFrame};

/// Who a message is from, and what it answers: what `accept` needs besides
/// its text.
pub(super) struct Authorship<'a> {
    pub author: &'a DisplayName,
    /// Whose it is (`Who::owner_key`); `None` for a bot's.
    pub owner: Option<Arc<str>>,
    pub reply_to: Option<i64>,
    /// The member's connection that sent it.
    pub sender: Option<SessionId>,
}

/// How far back a resent nonce is looked for.
const RESEND_WINDOW: usize = 256;

impl Request for Connect {
    fn apply(self, server: &mut ChatServer) {
        // A handshake that passed its login check just before a ban.
        let banned = self.account.as_ref().is_some_and(|a| server.policies.banned.contains(&a.key));
        if server.writer.is_none() && !banned {
            self.outbox.addr.do_send(Push::Close(shutdown_close()));
        }
        let entry =
            SessionEntry { outbox: self.outbox, rooms: HashSet::new(), account: self.account, address: self.address };
        server.sessions.insert(self.session, entry);
        if banned {
            server.disconnect(self.session, "banned");
        }
    }
}

impl Request for Disconnect {
    fn apply(self, server: &mut ChatServer) {
        server.forget(self.session);
    }
}

impl Request for Join {
    fn apply(self, server: &mut ChatServer) {
        let (session, room) = (self.session, self.room.clone());
        let result = match server.park_until_attached(self) {
            Ok(Some(join)) => server.join(join),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            server.push_error(session, &e, "join_room", &room, None);
        }
    }
}

impl Request for Leave {
    fn apply(self, server: &mut ChatServer) {
        if server.is_member(self.session, &self.room) {
            let left = ServerFrame::Left { room: self.room.as_str() }.to_text();
            server.eject(self.session, &self.room, &left);
        } else {
            server.push_error(
                self.session,
                &ChatError::NotJoined(self.room.to_string()),
                "leave_room",
                &self.room,
                None,
            );
        }
    }
}

impl Request for SendMessage {
    fn apply(self, server: &mut ChatServer) {
        let SendMessage { session, room, text, nonce, reply_to, earlier } = self;
        let nonce_text = nonce.as_ref().map(|n| n.as_str().to_string());
        let member = server.rooms.get(&room).and_then(|r| r.members.get(&session));
        let result = match member.map(|m| (m.name.clone(), m.who.owner_key())) {
            None => Err(ChatError::NotJoined(room.to_string())),
            Some((author, owner)) => match server.policies.muted_for(&room, &author) {
                Some(left) => Err(ChatError::Muted(left.as_secs() + 1)),
                None => {
                    let by = Authorship { author: &author, owner: Some(owner), reply_to, sender: Some(session) };
                    server.accept_send(&room, by, text, nonce, &earlier)
                }
            },
        };
        if let Err(e) = result {
            server.metrics.refused(e.code());
            server.push_error(session, &e, "send_message", &room, nonce_text.as_deref());
        }
    }
}

impl Request for Typing {
    fn apply(self, server: &mut ChatServer) {
        let hidden = server.rooms.get(&self.room).is_some_and(|r| r.hidden.contains(&self.session));
        match server.member_name(self.session, &self.room) {
            // An unseen admin's typing would give it away.
            Some(_) if hidden => {}
            Some(name) => {
                let frame = ServerFrame::Typing { room: self.room.as_str(), user: name.as_str() }.to_text();
                server.broadcast(&self.room, &frame, Some(self.session));
            }
            None => {
                let not_joined = ChatError::NotJoined(self.room.to_string());
                server.push_error(self.session, &not_joined, "typing", &self.room, None)
            }
        }
    }
}

impl Request for FetchHistory {
    fn apply(self, server: &mut ChatServer) {
        let plan = server
            .rooms
            .get(&self.room)
            .filter(|r| r.members.contains_key(&self.session))
            .map(|r| r.plan(&self.room, self.query));
        match plan {
            Some(plan) => server.push(self.session, Push::History { room: self.room, query: self.query, plan }),
            None => {
                let not_joined = ChatError::NotJoined(self.room.to_string());
                server.push_error(self.session, &not_joined, "history", &self.room, None)
            }
        }
    }
}

impl Request for StoreMessage {
    fn apply(self, server: &mut ChatServer) -> Result<Stored, ChatError> {
        if server.policies.closed.contains(&self.room) {
            return Err(ChatError::RoomClosed(self.room.to_string()));
        }
        let by = Authorship { author: &self.user, owner: None, reply_to: None, sender: None };
        let accepted = server.accept(&self.room, by, self.text, None).inspect_err(|e| {
            server.metrics.refused(e.code());
        })?;
        let message = match accepted {
            Accepted::Numbered(message) => message,
            Accepted::Numbering(ticket) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                if let Some(numbering) = server.numbering.get_mut(&ticket) {
                    numbering.waiter = Some(tx);
                }
                return Ok(Stored::Numbering(rx));
            }
        };
        let room = server.rooms.get_mut(&self.room).expect("accept found the room");
        let epoch = room.epoch.clone();
        // Under `--durable-ack` the answer waits for the commit too.
        let committed = match room.unconfirmed.back_mut() {
            Some(pending) if pending.message.id == message.id => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                pending.waiter = Some(tx);
                Some(rx)
            }
            _ => None,
        };
        Ok(Stored::Numbered { message, epoch, committed })
    }
}

impl Request for CreateRoom {
    fn apply(self, server: &mut ChatServer) -> Result<RoomCreated, ChatError> {
        if server.writer.is_none() {
            return Err(shutting_down());
        }
        let name = match self.name {
            Some(name) => name,
            None => std::iter::repeat_with(RoomName::generate)
                .find(|code| !server.rooms.contains_key(code))
                .expect("an endless supply of codes has a free one"),
        };
        let in_cluster = server.cluster.is_some();
        let mut existing = server.rooms.get_mut(&name);
        if let (Some(room), true) = (existing.as_deref_mut(), in_cluster) {
            room.encryption = self.encryption.clone().map(Arc::new);
        }
        let has = match &existing {
            Some(room) => room.encryption.as_ref().map(|e| e.key),
            None => self.encryption.as_ref().map(|e| e.key),
        };
        // Someone who asked for an encrypted room must never end up typing
        // into a readable one (or into one whose key they cannot have).
        if self.asked.is_some() && self.asked != has {
            let what = match has {
                None => "is not encrypted".to_string(),
                Some(key) => format!("is encrypted with a {} key", key.as_str()),
            };
            return Err(ChatError::RoomExists(format!("room '{name}' already exists and {what}; pick another name")));
        }
        if let Some(room) = existing {
            return Ok(RoomCreated { encryption: room.encryption.clone(), name, new: false });
        }
        server.ensure_room(&name, self.created_by.as_ref(), self.encryption, in_cluster)?;
        let encryption = server.rooms.get(&name).and_then(|room| room.encryption.clone());
        Ok(RoomCreated { name, new: true, encryption })
    }
}

impl Request for PlanHistory {
    fn apply(self, server: &mut ChatServer) -> Result<PlannedHistory, ChatError> {
        let allowed = match &self.viewer {
            Some((who, admin)) => server.policies.may_enter(&self.room, who, *admin),
            None => !server.policies.private.contains(&self.room),
        };
        let room = server.rooms.get(&self.room).filter(|_| allowed).ok_or_else(|| unknown_room(&self.room))?;
        // In a cluster, a room without members here does not know its epoch.
        let epoch = if room.is_live() { room.epoch.clone() } else { String::new() };
        Ok(PlannedHistory { plan: room.plan(&self.room, self.query), epoch, encryption: room.encryption.clone() })
    }
}

impl Request for ListRooms {
    fn apply(self, server: &mut ChatServer) -> Vec<RoomSummary> {
        let private = &server.policies.private;
        let mut rooms: Vec<_> = server
            .rooms
            .iter()
            .filter(|(name, room)| room.member_count() > 0 && (self.include_private || !private.contains(*name)))
            .map(|(name, room)| RoomSummary {
                name: name.clone(),
                members: room.member_names(),
                private: private.contains(name),
                encrypted: room.encryption.is_some(),
                connections: room.connections(server.cluster.as_ref().map(|link| link.node())),
            })
            .collect();
        rooms.sort_by(|a, b| b.members.len().cmp(&a.members.len()).then_with(|| a.name.cmp(&b.name)));
        rooms
    }
}

impl Request for Persisted {
    fn apply(self, server: &mut ChatServer) {
        let refused: HashSet<(RoomName, i64)> = self.0.refused.into_iter().collect();
        for (name, id) in self.0.watermarks {
            server.deliver_committed(&name, id, &refused);
            if let Some(room) = server.rooms.get_mut(&name) {
                room.persisted_id = room.persisted_id.max(id);
                room.trim(server.tail_len);
            }
        }
    }
}

impl Request for TakeSnapshot {
    fn apply(self, server: &mut ChatServer) -> Snapshot {
        let active = server.rooms.values().filter(|r| !r.members.is_empty());
        let (rooms, members) = active.fold((0, 0), |(rooms, members), r| (rooms + 1, members + r.members.len()));
        let writer = server.writer.as_ref();
        Snapshot {
            connections: server.sessions.len(),
            account_connections: server.sessions.values().filter(|s| s.account.is_some()).count(),
            rooms,
            members,
            session_queue_bytes: server
                .sessions
                .values()
                .map(|s| s.outbox.queued_bytes.load(std::sync::atomic::Ordering::Relaxed))
                .sum(),
            writer_queue_depth: writer.map_or(0, |w| w.depth()),
            oldest_unwritten_ms: writer.map_or(0, |w| u64::try_from(w.oldest_unwritten().as_millis()).unwrap_or(0)),
        }
    }
}

impl Request for Shutdown {
    fn apply(self, server: &mut ChatServer) {
        // Dropping the only sender lets the writer drain its queue and end.
        server.writer = None;
        for entry in server.sessions.values() {
            entry.outbox.addr.do_send(Push::Close(shutdown_close()));
        }
    }
}

/// What became of an accepted message.
pub(super) enum Accepted {
    /// It has its id (and is delivered, or waits for its commit).
    Numbered(Arc<ChatMessage>),
    /// In a cluster: Redis is numbering it; the ticket finds it again.
    Numbering(u64),
}

impl ChatServer {
    /// Whether `join` may go ahead: its connection is open (`Ok(false)`
    /// when it is gone), the server is not stopping, and the room lets it in.
    pub(super) fn admits(&self, join: &Join) -> Result<bool, ChatError> {
        let Some(entry) = self.sessions.get(&join.session) else { return Ok(false) };
        let admin = entry.account.as_ref().is_some_and(|a| a.admin);
        if self.writer.is_none() {
            return Err(shutting_down());
        }
        if self.policies.closed.contains(&join.room) {
            return Err(ChatError::RoomClosed(join.room.to_string()));
        }
        if !self.policies.may_enter(&join.room, &join.who, admin) {
            return Err(ChatError::PrivateRoom(join.room.to_string()));
        }
        if !admin {
            let guest = join.who.guest_id();
            if let Some(left) = self.policies.kept_out_for(&join.room, &join.name.key(), guest, entry.address) {
                return Err(ChatError::KeptOut { room: join.room.to_string(), minutes: left.as_secs().div_ceil(60) });
            }
        }
        if entry.rooms.len() >= MAX_ROOMS_PER_SESSION && !entry.rooms.contains(&join.room) {
            return Err(ChatError::TooManyRooms(MAX_ROOMS_PER_SESSION));
        }
        Ok(true)
    }

    pub(super) fn join(&mut self, msg: Join) -> Result<(), ChatError> {
        if !self.admits(&msg)? {
            return Ok(());
        }
        let Join { session, room: room_name, name, who, mut since, epoch, hidden } = msg;
        let Some(entry) = self.sessions.get(&session) else { return Ok(()) };
        let admin = entry.account.as_ref().is_some_and(|a| a.admin);
        if hidden && !admin {
            return Err(ChatError::Forbidden("only admins may be in a room unseen".into()));
        }
        let outbox = entry.outbox.clone();
        // Nobody else in the room may have this name, or one that looks
        // like it.
        let skeleton = name.skeleton();
        // (Members on other nodes are not checked: a guest whose node died
        // is still listed there for a few seconds, and must be able to come
        // back under its name. Accounts' names are unique anyway.)
        let taken = self.rooms.get(&room_name).is_some_and(|room| {
            room.members.iter().any(|(id, m)| *id != session && m.who != who && m.skeleton == skeleton)
        });
        if taken {
            return Err(ChatError::InvalidName(format!(
                "someone called '{name}', or a name that looks like it, is already in this room"
            )));
        }
        self.ensure_room(&room_name, Some(&name), None, false)?;
        let room = self.rooms.get(&room_name).expect("ensured above");
        if let Some(epoch) = epoch {
            if epoch != room.epoch {
                // Ids of another run: the client starts over with this one.
                since = None;
            } else if self.cluster.is_some() {
                // Redis keeps the cluster's epochs and ids; a `since` beyond
                // what this node delivered is one still on its way here.
            } else if since.is_some_and(|s| s > room.last_id) && room.epoch_is_new {
                // Not an id this epoch gave out: the client starts over.
                since = None;
            } else if since.is_some_and(|s| s > room.last_id) {
                // The client saw ids this room never gave out as far as the
                // log knows: a restored backup, or a crash the log missed.
                // A new epoch tells every client holding such ids to reload.
                let epoch = new_epoch();
                crate::warn_throttled!("room {room_name}: a client saw ids beyond the log's last; new epoch {epoch}");
                self.enqueue(WriteOp::SetEpoch { room: room_name.clone(), epoch: epoch.clone() })?;
                let room = self.rooms.get_mut(&room_name).expect("ensured above");
                room.epoch = epoch;
                room.epoch_is_new = true;
                since = None;
            }
        }
        let room = self.rooms.get_mut(&room_name).expect("ensured above");
        let member = Member { name: name.clone(), skeleton, who, admin, joined_at_ms: now_ms(), outbox, hidden };
        let previous = room.members.insert(session, member);
        let was_hidden = if hidden { !room.hidden.insert(session) } else { room.hidden.remove(&session) };
        let query = HistoryQuery::After { since: since.unwrap_or(0), limit: self.settings.history_on_join };
        let plan = room.plan(&room_name, query);
        let members = room.first_member_names(self.settings.presence_batch_above);
        let member_count = room.member_count();
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry.rooms.insert(room_name.clone());
        }
        let (epoch, encryption) = (room.epoch.clone(), room.encryption.clone());
        if previous.is_none() {
            self.metrics.joins.inc();
        }
        let muted_until = self.policies.muted_for(&room_name, &name).map(|left| now_ms() + left.as_millis() as i64);
        let joined = Push::Joined {
            room: room_name.clone(),
            epoch,
            members,
            member_count,
            query,
            plan,
            encryption,
            muted_until,
        };
        self.push(session, joined);
        // A member who turns hidden seems to leave; one who stops hiding, to join.
        let previous = previous.filter(|_| !was_hidden);
        if hidden {
            if let Some(old) = previous {
                self.announce(&room_name, &old.name, PresenceAction::Leave, Some(session));
            }
            self.share_presence(&room_name, session);
            return Ok(());
        }
        if previous.as_ref().is_none_or(|old| old.name != name) {
            self.share_presence(&room_name, session);
        }
        match previous {
            None => self.announce(&room_name, &name, PresenceAction::Join, Some(session)),
            // Joining again under another name: the others see the change.
            Some(old) if old.name != name => {
                // Counted as the old name leaving, then the new one joining.
                self.announce_counting(&room_name, &old.name, PresenceAction::Leave, Some(session), 1);
                self.announce(&room_name, &name, PresenceAction::Join, Some(session));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// A member's send: a resend of a message the log already holds is
    /// answered with it; any other is accepted.
    fn accept_send(
        &mut self,
        room: &RoomName,
        by: Authorship<'_>,
        text: MessageText,
        nonce: Option<Nonce>,
        earlier: &[Arc<ChatMessage>],
    ) -> Result<(), ChatError> {
        if let (Some(stored), Some(session)) = (earlier.iter().find(|m| *m.author == *by.author.as_str()), by.sender) {
            self.answer_resend(session, stored);
            return Ok(());
        }
        self.accept(room, by, text, nonce).map(drop)
    }

    /// A resend of a stored message: the sender gets its copy again, and
    /// nothing else happens.
    pub(super) fn answer_resend(&mut self, sender: SessionId, stored: &ChatMessage) {
        self.metrics.resends.inc();
        let own = ServerFrame::Message(MessageView::for_sender(stored)).to_text();
        self.push(sender, Push::Frame(own));
    }

    /// Gives the message its id, queues it for the log and delivers it
    /// (under `--durable-ack`, once the log has it). Nothing is delivered
    /// unless the writer took it.
    fn accept(
        &mut self,
        room_name: &RoomName,
        by: Authorship<'_>,
        text: MessageText,
        nonce: Option<Nonce>,
    ) -> Result<Accepted, ChatError> {
        let Authorship { author, owner, reply_to, sender } = by;
        let room = self.rooms.get_mut(room_name).ok_or_else(|| unknown_room(room_name))?;
        if let Some(encryption) = &room.encryption {
            encryption.check(room_name.as_str(), text.as_str())?;
        }
        if let Some(id) = reply_to {
            super::revisions::check_reply(room_name, id, room.last_id)?;
        }
        if let (Some(sender), Some(nonce)) = (sender, &nonce) {
            // A client that lost its connection before its own copy arrived
            // sends again with the same nonce: answer with the stored one.
            // Names are not identities (two guests may share one), so only
            // the very same text from the same name counts as a resend.
            // (The session has already looked in the log for older ones.)
            let same = |m: &&Arc<ChatMessage>| {
                m.nonce.as_deref() == Some(nonce.as_str()) && *m.author == *author.as_str() && m.text == text.as_str()
            };
            if let Some(pending) = room.unconfirmed.iter_mut().find(|u| same(&&u.message)) {
                // Still being committed: its copy goes to this connection.
                pending.sender = Some(sender);
                return Ok(Accepted::Numbered(pending.message.clone()));
            }
            let earlier = room.tail.iter().rev().take(RESEND_WINDOW).find(same).cloned();
            if let Some(earlier) = earlier {
                self.answer_resend(sender, &earlier);
                return Ok(Accepted::Numbered(earlier));
            }
        }
        let last_id = room.last_id;
        self.check_log_keeps_up()?;
        let message = Arc::new(ChatMessage {
            nonce: nonce.map(Nonce::into_string),
            owner,
            reply_to,
            ..ChatMessage::new(room_name.clone(), last_id + 1, Arc::from(author.as_str()), text.into_string(), now_ms())
        });
        if let Some(link) = &self.cluster {
            // Redis numbers it; `News::Sent` brings it back.
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            let nonce = message.nonce.clone();
            let fresh_room = self.rooms.get(room_name).is_some_and(|r| r.epoch_is_new);
            link.send(Draft { ticket, message, sender, fresh_room })?;
            self.numbering.insert(ticket, Numbering { sender, nonce, waiter: None });
            return Ok(Accepted::Numbering(ticket));
        }
        self.enqueue(WriteOp::Message(message.clone()))?;
        self.metrics.messages_accepted.inc();
        let room = self.rooms.get_mut(room_name).expect("looked up above");
        room.last_id = message.id;
        if self.settings.durable_ack {
            room.unconfirmed.push_back(Unconfirmed { message: message.clone(), sender, waiter: None });
            return Ok(Accepted::Numbered(message));
        }
        room.tail.push_back(message.clone());
        room.trim(self.tail_len);
        self.deliver(&message, sender);
        Ok(Accepted::Numbered(message))
    }

    /// Sends a message to its room; the sender's copy carries its nonce.
    pub(super) fn deliver(&mut self, message: &ChatMessage, sender: Option<SessionId>) {
        let public = ServerFrame::Message(MessageView::public(message)).to_text();
        match sender {
            Some(sender) if message.nonce.is_some() => {
                self.broadcast(&message.room, &public, Some(sender));
                let own = ServerFrame::Message(MessageView::for_sender(message)).to_text();
                self.metrics.deliveries.inc();
                self.metrics.bytes_out.inc_by(own.len() as u64);
                self.push(sender, Push::Frame(own));
            }
            _ => self.broadcast(&message.room, &public, None),
        }
    }

    /// Under `--durable-ack`: delivers the room's messages committed up to
    /// `id`, in order; a message the database refused is delivered to no
    /// one, and its sender is told.
    fn deliver_committed(&mut self, room_name: &RoomName, id: i64, refused: &HashSet<(RoomName, i64)>) {
        loop {
            let Some(room) = self.rooms.get_mut(room_name) else { return };
            if room.unconfirmed.front().is_none_or(|u| u.message.id > id) {
                return;
            }
            let Unconfirmed { message, sender, waiter } = room.unconfirmed.pop_front().expect("checked above");
            if refused.contains(&(room_name.clone(), message.id)) {
                let error = ChatError::NotStored;
                if let Some(sender) = sender {
                    self.push_error(sender, &error, "send_message", room_name, message.nonce.as_deref());
                }
                if let Some(waiter) = waiter {
                    let _ = waiter.send(Err(error));
                }
                continue;
            }
            room.tail.push_back(message.clone());
            if let Some(waiter) = waiter {
                let _ = waiter.send(Ok(()));
            }
            self.deliver(&message, sender);
        }
    }
}
