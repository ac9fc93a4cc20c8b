//! What admins do to rooms, members and accounts. What must outlive a
//! restart goes through the writer's queue, so it lands in order with the
//! messages it concerns. What it does to live connections and rules is an
//! `Enforcement`, which in a cluster every node carries out.

use super::messages::*;
use super::model::Member;
use super::policies::{KeptOut, Policies};
use super::{unknown_room, ChatServer, Request};
use crate::clock::{format_timestamp, now_ms};
use crate::cluster::{Enforcement, Event};
use crate::db::writer::{Audit, Change, WriteOp};
use crate::domain::RoomName;
use crate::error::ChatError;
use crate::protocol::ServerFrame;

impl Request for Kick {
    fn apply(self, server: &mut ChatServer) -> Result<usize, ChatError> {
        let cooldown = server.settings.kick_cooldown;
        let until_ms = self.until_ms.or_else(|| (!cooldown.is_zero()).then(|| now_ms() + cooldown.as_millis() as i64));
        let (name_key, name) = (self.user.key(), self.user.to_string());
        // Out at once, whatever the log's state: this is when admins need it.
        let kicked = server.enforce(Enforcement::Kick {
            room: self.room.to_string(),
            name_key: name_key.clone(),
            until_ms,
            name: name.clone(),
        });
        if let Some(until_ms) = until_ms {
            // The name is kept out after a restart too; each node stores the
            // guests it found under it.
            let kept = KeptOut { name_key: name_key.clone(), until_ms, ..KeptOut::default() };
            let (room, targets) = (self.room.clone(), kept.targets());
            server.enqueue(WriteOp::KeepOut { room, name_key, user_name: name, targets, until_ms })?;
        }
        Ok(kicked)
    }
}

impl Request for LetIn {
    fn apply(self, server: &mut ChatServer) -> Result<(), ChatError> {
        let name_key = self.user.key();
        server.enqueue(WriteOp::LetIn { room: self.room.clone(), name_key: name_key.clone() })?;
        server.enforce(Enforcement::LetIn { room: self.room.to_string(), name_key });
        Ok(())
    }
}

impl Request for SetClosed {
    fn apply(self, server: &mut ChatServer) -> Result<bool, ChatError> {
        if !server.rooms.contains_key(&self.room) {
            return Ok(false);
        }
        let change = Change::SetClosed { room: self.room.clone(), closed_at: self.closed.then(now_ms) };
        server.moderate(change, self.audit)?;
        server.enforce(Enforcement::Close { room: self.room.to_string(), closed: self.closed });
        Ok(true)
    }
}

impl Request for DeleteMessage {
    fn apply(self, server: &mut ChatServer) -> Result<(), ChatError> {
        let room = server.rooms.get(&self.room).ok_or_else(|| unknown_room(&self.room))?;
        // In a cluster, a room without members here does not know its last id.
        if self.id < 1 || (room.is_live() && self.id > room.last_id) {
            return Err(ChatError::BadRequest(format!("room '{}' has no message {}", self.room, self.id)));
        }
        if room.unconfirmed.iter().any(|u| u.message.id == self.id) {
            // No one has seen it yet: deleting it now would leave its
            // delivery at the commit to undo.
            return Err(ChatError::Busy(format!("message {} is being stored; try again in a moment", self.id)));
        }
        // Through the writer, so it lands after the message's own insert.
        server.moderate(Change::DeleteMessage { room: self.room.clone(), id: self.id }, self.audit)?;
        server.enforce(Enforcement::Delete { room: self.room.to_string(), id: self.id });
        Ok(())
    }
}

impl Request for BanAccount {
    fn apply(self, server: &mut ChatServer) -> usize {
        server.enforce(Enforcement::Ban { user_key: self.user_key })
    }
}

impl Request for UnbanAccount {
    fn apply(self, server: &mut ChatServer) {
        server.enforce(Enforcement::Unban { user_key: self.user_key });
    }
}

impl Request for EndLogin {
    fn apply(self, server: &mut ChatServer) {
        server.enforce(Enforcement::EndLogin { login: self.login });
    }
}

impl Request for SetRole {
    fn apply(self, server: &mut ChatServer) {
        server.enforce(Enforcement::SetRole { user_key: self.user_key, admin: self.admin });
    }
}

impl Request for Mute {
    fn apply(self, server: &mut ChatServer) -> Result<(), ChatError> {
        let key = self.user.key();
        let change = Change::Mute { room: self.room.clone(), user_key: key.clone(), until_ms: self.until_ms };
        server.moderate(change, self.audit)?;
        server.enforce(Enforcement::Mute { room: self.room.to_string(), user_key: key, until_ms: self.until_ms });
        Ok(())
    }
}

impl Request for SetPrivate {
    fn apply(self, server: &mut ChatServer) -> Result<bool, ChatError> {
        if !server.rooms.contains_key(&self.room) {
            return Ok(false);
        }
        server.moderate(Change::SetPrivate { room: self.room.clone(), private: self.private }, self.audit)?;
        server.enforce(Enforcement::SetPrivate { room: self.room.to_string(), private: self.private });
        Ok(true)
    }
}

impl Request for Invite {
    fn apply(self, server: &mut ChatServer) -> Result<bool, ChatError> {
        if !server.rooms.contains_key(&self.room) {
            return Ok(false);
        }
        let key = self.user.key();
        let invited_by = self.audit.actor.clone();
        let change = Change::Invite { room: self.room.clone(), user_key: key.clone(), invited_by };
        server.moderate(change, self.audit)?;
        server.enforce(Enforcement::Invite { room: self.room.to_string(), user_key: key });
        Ok(true)
    }
}

impl ChatServer {
    /// Carries out an admin's decision on this node's sessions and rules,
    /// and in a cluster has every other node do the same. Answers how many
    /// connections here it ended or sent out.
    pub(super) fn enforce(&mut self, enforcement: Enforcement) -> usize {
        if let Some(link) = &self.cluster {
            link.publish(Event::Enforce { enforcement: enforcement.clone(), node: link.node().into() });
        }
        self.enforce_here(enforcement)
    }

    /// The part of an admin's decision that concerns this node; also what
    /// another node's decision does here.
    pub(super) fn enforce_here(&mut self, enforcement: Enforcement) -> usize {
        let room_of = |name: &str| RoomName::parse(name).ok();
        match enforcement {
            Enforcement::Kick { room, name_key, until_ms, name } => {
                let Some(room) = room_of(&room) else { return 0 };
                let Some(until_ms) = until_ms else {
                    return self.kick_members(&room, |_, m| m.name.key() == name_key);
                };
                self.keep_guests_out(&room, &name_key, &name, until_ms);
                self.eject_kept_out(&room)
            }
            Enforcement::KeepOut { room, name_key, guests, addresses, until_ms } => {
                let Some(room) = room_of(&room) else { return 0 };
                self.policies.keep_out(&room, KeptOut { name_key, guests, addresses, until_ms });
                // The same guest here under another name goes too.
                self.eject_kept_out(&room)
            }
            Enforcement::LetIn { room, name_key } => {
                if let Some(room) = room_of(&room) {
                    self.policies.let_in(&room, &name_key);
                }
                0
            }
            Enforcement::Close { room, closed } => {
                let Some(room) = room_of(&room) else { return 0 };
                if !closed {
                    self.policies.closed.remove(&room);
                    return 0;
                }
                self.policies.closed.insert(room.clone());
                // Everyone is out at once: no one is left to be told who went.
                let frame = ServerFrame::RoomClosed { room: room.as_str() }.to_text();
                let members: Vec<SessionId> =
                    self.rooms.get(&room).map_or_else(Vec::new, |r| r.members.keys().copied().collect());
                for session in &members {
                    if let Some(entry) = self.sessions.get_mut(session) {
                        entry.rooms.remove(&room);
                    }
                    self.push(*session, Push::Frame(frame.clone()));
                }
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.members.clear();
                    r.hidden.clear();
                    // Every node empties the room of its own members, and
                    // tells the others.
                    r.remote.clear();
                    r.trim(self.tail_len);
                }
                for session in &members {
                    self.share_presence(&room, *session);
                }
                self.detach_if_empty(&room);
                members.len()
            }
            Enforcement::Delete { room, id } => {
                let Some(room) = room_of(&room) else { return 0 };
                if let Some(r) = self.rooms.get_mut(&room) {
                    let in_tail = r.tail.iter().any(|m| m.id == id);
                    r.tail.retain(|m| m.id != id);
                    if !in_tail {
                        r.note_revised(id, None);
                    }
                }
                let frame = ServerFrame::MessageDeleted { room: room.as_str(), id }.to_text();
                self.broadcast(&room, &frame, None);
                0
            }
            Enforcement::Ban { user_key } => {
                let sessions = self.sessions_where(|a| a.key == user_key);
                self.policies.banned.insert(user_key);
                for session in &sessions {
                    self.disconnect(*session, "banned");
                }
                sessions.len()
            }
            Enforcement::Unban { user_key } => {
                self.policies.banned.remove(&user_key);
                0
            }
            Enforcement::EndLogin { login } => {
                let sessions = self.sessions_where(|a| a.login == login);
                for session in &sessions {
                    self.disconnect(*session, "logged out");
                }
                sessions.len()
            }
            Enforcement::SetRole { user_key, admin } => {
                for entry in self.sessions.values_mut() {
                    if let Some(account) = entry.account.as_mut().filter(|a| a.key == user_key) {
                        account.admin = admin;
                    }
                }
                let who = Who::User(user_key);
                let mut unseen = Vec::new();
                for (name, room) in &mut self.rooms {
                    for (session, member) in room.members.iter_mut().filter(|(_, m)| m.who == who) {
                        member.admin = admin;
                        if member.hidden && !admin {
                            unseen.push((name.clone(), *session));
                        }
                    }
                }
                // Only admins may be in a room unseen.
                for (room, session) in &unseen {
                    let frame = ServerFrame::Kicked { room: room.as_str() }.to_text();
                    self.eject(*session, room, &frame);
                }
                unseen.len()
            }
            Enforcement::Mute { room, user_key, until_ms } => {
                let Some(room) = room_of(&room) else { return 0 };
                // The member learns it before typing, not from a refusal.
                let until = (until_ms > now_ms()).then(|| format_timestamp(until_ms));
                let frame = ServerFrame::Muted { room: room.as_str(), until }.to_text();
                let muted: Vec<SessionId> = self.rooms.get(&room).map_or_else(Vec::new, |r| {
                    r.members.iter().filter(|(_, m)| m.name.key() == user_key).map(|(s, _)| *s).collect()
                });
                for session in muted {
                    self.push(session, Push::Frame(frame.clone()));
                }
                self.policies.mutes.insert((room, user_key), until_ms);
                0
            }
            Enforcement::SetPrivate { room, private } => {
                let Some(room) = room_of(&room) else { return 0 };
                if !private {
                    self.policies.private.remove(&room);
                    return 0;
                }
                self.policies.private.insert(room.clone());
                self.kick_members(&room, |policies, m| !policies.may_enter(&room, &m.who, m.admin))
            }
            Enforcement::Invite { room, user_key } => {
                if let Some(room) = room_of(&room) {
                    self.policies.invites.entry(room).or_default().insert(user_key);
                }
                0
            }
        }
    }
}

impl ChatServer {
    /// Keeps `name_key` out of `room` here, with the guests this node has
    /// under that name: by their guest id and address too, since a guest can
    /// come back under any name, through any node, and only this node knows
    /// its guests. The other nodes and the log learn them from here.
    fn keep_guests_out(&mut self, room: &RoomName, name_key: &str, name: &str, until_ms: i64) {
        let mut kept = KeptOut { name_key: name_key.into(), until_ms, ..KeptOut::default() };
        let members = self.rooms.get(room).map(|r| r.members.iter()).into_iter().flatten();
        for (session, member) in members.filter(|(_, m)| m.name.key() == name_key) {
            let Who::Guest(id) = &member.who else { continue };
            // A connection's own key names no browser: nothing to keep out.
            if !id.starts_with("c-") && !kept.guests.contains(id) {
                kept.guests.push(id.clone());
            }
            let address = self.sessions.get(session).and_then(|s| s.address);
            if let Some(address) = address.filter(|a| !kept.addresses.contains(a)) {
                kept.addresses.push(address);
            }
        }
        if !kept.guests.is_empty() || !kept.addresses.is_empty() {
            let targets: Vec<String> = kept.targets().into_iter().skip(1).collect();
            let write = WriteOp::KeepOut {
                room: room.clone(),
                name_key: name_key.into(),
                user_name: name.into(),
                targets,
                until_ms,
            };
            if let Err(e) = self.enqueue(write) {
                // Kept out here and on the other nodes all the same; only a
                // restart forgets these guests.
                log::warn!("cannot store who was kept out of {room}: {e}");
            }
            if let Some(link) = &self.cluster {
                let keep_out = Enforcement::KeepOut {
                    room: room.to_string(),
                    name_key: name_key.into(),
                    guests: kept.guests.clone(),
                    addresses: kept.addresses.clone(),
                    until_ms,
                };
                link.publish(Event::Enforce { enforcement: keep_out, node: link.node().into() });
            }
        }
        self.policies.keep_out(room, kept);
    }

    /// Sends out of `room` the members its rules now keep out (but admins):
    /// by name, and guests by browser whatever their name. (Others behind
    /// the same address stay: it only keeps new joins out.)
    fn eject_kept_out(&mut self, room: &RoomName) -> usize {
        let out: Vec<SessionId> = self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.members
                .iter()
                .filter(|(_, m)| !m.admin)
                .filter(|(_, m)| self.policies.kept_out_for(room, &m.name.key(), m.who.guest_id(), None).is_some())
                .map(|(session, _)| *session)
                .collect()
        });
        let frame = ServerFrame::Kicked { room: room.as_str() }.to_text();
        for session in &out {
            self.eject(*session, room, &frame);
        }
        out.len()
    }

    /// Sends the members of `room` for whom `out` holds out of it with
    /// `kicked`; answers how many.
    fn kick_members(&mut self, room: &RoomName, out: impl Fn(&Policies, &Member) -> bool) -> usize {
        let kicked: Vec<SessionId> = self.rooms.get(room).map_or_else(Vec::new, |r| {
            r.members.iter().filter(|(_, m)| out(&self.policies, m)).map(|(id, _)| *id).collect()
        });
        let frame = ServerFrame::Kicked { room: room.as_str() }.to_text();
        for session in &kicked {
            self.eject(*session, room, &frame);
        }
        kicked.len()
    }

    /// Queues an admin's change with its audit entry: the writer commits
    /// both in one transaction, after the messages queued before it.
    fn moderate(&self, change: Change, audit: Audit) -> Result<(), ChatError> {
        self.enqueue(WriteOp::Moderation { change, audit })
    }
}

impl Request for AwaitCommitted {
    fn apply(self, server: &mut ChatServer) -> Result<tokio::sync::oneshot::Receiver<Result<(), ()>>, ChatError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        server.enqueue(WriteOp::Barrier(tx))?;
        Ok(rx)
    }
}
