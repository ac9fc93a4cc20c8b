//! What admins do to rooms, members and accounts. What must outlive a
//! restart goes through the writer's queue, so it lands in order with the
//! messages it concerns.

use super::messages::*;
use super::{unknown_room, ChatServer, Request};
use crate::clock::now_ms;
use crate::db::writer::{Audit, Change, WriteOp};
use crate::error::ChatError;
use crate::protocol::ServerFrame;

impl Request for Kick {
    fn apply(self, server: &mut ChatServer) -> usize {
        let key = self.user.key();
        let kicked: Vec<SessionId> = server.rooms.get(&self.room).map_or_else(Vec::new, |room| {
            room.members.iter().filter(|(_, m)| m.name.key() == key).map(|(id, _)| *id).collect()
        });
        let frame = ServerFrame::Kicked { room: self.room.as_str() }.to_text();
        for session in &kicked {
            server.eject(*session, &self.room, &frame);
        }
        kicked.len()
    }
}

impl Request for SetClosed {
    fn apply(self, server: &mut ChatServer) -> Result<bool, ChatError> {
        if !server.rooms.contains_key(&self.room) {
            return Ok(false);
        }
        let change = Change::SetClosed { room: self.room.clone(), closed_at: self.closed.then(now_ms) };
        server.moderate(change, self.audit)?;
        if !self.closed {
            server.policies.closed.remove(&self.room);
            return Ok(true);
        }
        server.policies.closed.insert(self.room.clone());
        // Everyone is out at once: no one is left to be told who went.
        let frame = ServerFrame::RoomClosed { room: self.room.as_str() }.to_text();
        let members: Vec<SessionId> =
            server.rooms.get(&self.room).map_or_else(Vec::new, |r| r.members.keys().copied().collect());
        for session in members {
            if let Some(entry) = server.sessions.get_mut(&session) {
                entry.rooms.remove(&self.room);
            }
            server.push(session, Push::Frame(frame.clone()));
        }
        if let Some(room) = server.rooms.get_mut(&self.room) {
            room.members.clear();
            room.trim(server.tail_len);
        }
        server.detach_if_empty(&self.room);
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
        if let Some(room) = server.rooms.get_mut(&self.room) {
            room.tail.retain(|m| m.id != self.id);
        }
        let frame = ServerFrame::MessageDeleted { room: self.room.as_str(), id: self.id }.to_text();
        server.broadcast(&self.room, &frame, None);
        Ok(())
    }
}

impl Request for BanAccount {
    fn apply(self, server: &mut ChatServer) -> usize {
        let sessions = server.sessions_where(|a| a.key == self.user_key);
        server.policies.banned.insert(self.user_key);
        for session in &sessions {
            server.disconnect(*session, "banned");
        }
        sessions.len()
    }
}

impl Request for EndLogin {
    fn apply(self, server: &mut ChatServer) {
        for session in server.sessions_where(|a| a.login == self.login) {
            server.disconnect(session, "logged out");
        }
    }
}

impl Request for SetRole {
    fn apply(self, server: &mut ChatServer) {
        for entry in server.sessions.values_mut() {
            if let Some(account) = entry.account.as_mut().filter(|a| a.key == self.user_key) {
                account.admin = self.admin;
            }
        }
        let who = Who::User(self.user_key);
        for room in server.rooms.values_mut() {
            for member in room.members.values_mut().filter(|m| m.who == who) {
                member.admin = self.admin;
            }
        }
    }
}

impl Request for Mute {
    fn apply(self, server: &mut ChatServer) -> Result<(), ChatError> {
        let key = self.user.key();
        let change = Change::Mute { room: self.room.clone(), user_key: key.clone(), until_ms: self.until_ms };
        server.moderate(change, self.audit)?;
        server.policies.mutes.insert((self.room, key), self.until_ms);
        Ok(())
    }
}

impl Request for SetPrivate {
    fn apply(self, server: &mut ChatServer) -> Result<bool, ChatError> {
        if !server.rooms.contains_key(&self.room) {
            return Ok(false);
        }
        server.moderate(Change::SetPrivate { room: self.room.clone(), private: self.private }, self.audit)?;
        if !self.private {
            server.policies.private.remove(&self.room);
            return Ok(true);
        }
        server.policies.private.insert(self.room.clone());
        let policies = &server.policies;
        let out: Vec<SessionId> = server.rooms.get(&self.room).map_or_else(Vec::new, |room| {
            room.members
                .iter()
                .filter(|(_, m)| !policies.may_enter(&self.room, &m.who, m.admin))
                .map(|(id, _)| *id)
                .collect()
        });
        let frame = ServerFrame::Kicked { room: self.room.as_str() }.to_text();
        for session in out {
            server.eject(session, &self.room, &frame);
        }
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
        server.moderate(Change::Invite { room: self.room.clone(), user_key: key.clone(), invited_by }, self.audit)?;
        server.policies.invites.entry(self.room).or_default().insert(key);
        Ok(true)
    }
}

impl ChatServer {
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
