//! What members do to messages after sending them: edit or delete their
//! own, react to anyone's. The acting node writes the change to the log and
//! tells the room; in a cluster every other node tells its own members, and
//! each keeps its copy of the room's tail current.

use std::sync::Arc;

use super::messages::*;
use super::{ChatServer, Request};
use crate::clock::{format_timestamp, now_ms};
use crate::cluster::{Enforcement, Event};
use crate::db::writer::{Audit, Change, WriteOp};
use crate::domain::{Revision, RoomName, MAX_REACTIONS_PER_MESSAGE, MAX_REACTORS_PER_EMOJI};
use crate::error::ChatError;
use crate::protocol::ServerFrame;

impl Request for ReviseMessage {
    fn apply(self, server: &mut ChatServer) {
        let (session, room, id, command) = (self.session, self.room.clone(), self.id, self.change.command());
        if let Err(e) = server.revise(self) {
            server.push(session, Push::Frame(ServerFrame::error_about(&e, command, room.as_str(), id)));
        }
    }
}

impl ChatServer {
    fn revise(&mut self, msg: ReviseMessage) -> Result<(), ChatError> {
        let ReviseMessage { session, room: room_name, id, change, stored } = msg;
        let room = self.rooms.get(&room_name).ok_or_else(|| ChatError::NotJoined(room_name.to_string()))?;
        let member = room.members.get(&session).ok_or_else(|| ChatError::NotJoined(room_name.to_string()))?;
        let (name, owner, admin) = (member.name.clone(), member.who.owner_key(), member.admin);
        if room.unconfirmed.iter().any(|u| u.message.id == id) {
            // No one has seen it yet: changing it now would race its commit.
            return Err(ChatError::Busy(format!("message {id} is being stored; try again in a moment")));
        }
        // The room's memory is at least as fresh as the log: it holds every
        // message from its first on, but those deleted (whose deletion the
        // log may not have committed yet).
        let in_memory = room.is_live() && room.tail.front().is_some_and(|first| first.id <= id);
        let remembered = room.tail.iter().rev().find(|m| m.id == id).cloned();
        let message = match (in_memory, remembered) {
            (_, Some(message)) => Some(message),
            (true, None) => None,
            (false, None) => room.lately_revised(id).unwrap_or(stored),
        }
        .ok_or_else(|| ChatError::UnknownMessage { room: room_name.to_string(), id })?;
        let own = message.owner.as_deref() == Some(&*owner);
        let muted_for = self.policies.muted_for(&room_name, &name);
        let muted = || match muted_for {
            Some(left) => Err(ChatError::Muted(left.as_secs() + 1)),
            None => Ok(()),
        };
        let revision = match change {
            MemberChange::Edit(text) => {
                if !own {
                    return Err(ChatError::NotYours(id));
                }
                muted()?;
                if let Some(encryption) = &room.encryption {
                    encryption.check(room_name.as_str(), text.as_str())?;
                }
                Revision::Edit { text: text.into_string(), at_ms: now_ms() }
            }
            MemberChange::Delete if own => Revision::Delete,
            MemberChange::Delete if admin => {
                // Someone else's message: an admin's act, audited as the
                // console's deletions are.
                let audit = Audit {
                    actor: name.to_string(),
                    action: "delete_message".into(),
                    target: format!("{room_name}/{id}"),
                    detail: None,
                };
                self.enqueue(WriteOp::Moderation {
                    change: Change::DeleteMessage { room: room_name.clone(), id },
                    audit,
                })?;
                self.enforce(Enforcement::Delete { room: room_name.to_string(), id });
                return Ok(());
            }
            MemberChange::Delete => return Err(ChatError::NotYours(id)),
            MemberChange::React { emoji, add } => {
                muted()?;
                let reacted = message
                    .reactions
                    .iter()
                    .any(|r| r.emoji == emoji.as_str() && r.by.iter().any(|(o, _)| *o == owner));
                if reacted == add {
                    // Already so: nothing to store or tell.
                    return Ok(());
                }
                if add && message.too_many_reactions(emoji.as_str()) {
                    return Err(ChatError::TooLarge(format!(
                        "a message carries at most {MAX_REACTIONS_PER_MESSAGE} different emoji, \
                         each from at most {MAX_REACTORS_PER_EMOJI} people"
                    )));
                }
                let name = Arc::from(name.as_str());
                Revision::React { emoji: emoji.into_string(), owner, name, add, at_ms: now_ms() }
            }
        };
        self.enqueue(WriteOp::Revise { room: room_name.clone(), id, revision: revision.clone() })?;
        if let Some(room) = self.rooms.get_mut(&room_name).filter(|r| !r.tail.iter().any(|m| m.id == id)) {
            let now = (revision != Revision::Delete).then(|| Arc::new(message.revised(&revision)));
            room.note_revised(id, now);
        }
        if revision == Revision::Delete {
            // As an admin's deletion: every node drops it, and so does the
            // room's stream in Redis.
            self.enforce(Enforcement::Delete { room: room_name.to_string(), id });
            return Ok(());
        }
        if let Some(link) = &self.cluster {
            let (room, node) = (room_name.to_string(), link.node().into());
            link.publish(Event::Revised { room, id, revision: revision.clone(), node });
        }
        self.revise_here(&room_name, id, &revision);
        Ok(())
    }

    /// Tells this node's members of `room` about a change to message `id`,
    /// and keeps the room's tail current.
    pub(super) fn revise_here(&mut self, room_name: &RoomName, id: i64, revision: &Revision) {
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        if let Some(slot) = room.tail.iter_mut().rev().find(|m| m.id == id) {
            *slot = Arc::new(slot.revised(revision));
        } else if let Some(Some(known)) = room.lately_revised(id) {
            // (The node that made the change remembered it already.)
            let now = known.revised(revision);
            if now != *known {
                room.note_revised(id, Some(Arc::new(now)));
            }
        }
        let room = room_name.as_str();
        let frame = match revision {
            Revision::Edit { text, at_ms } => {
                ServerFrame::MessageEdited { room, id, text, edited_at: format_timestamp(*at_ms) }
            }
            Revision::React { emoji, name, add: true, .. } => {
                ServerFrame::ReactionAdded { room, id, emoji, user: name }
            }
            Revision::React { emoji, name, add: false, .. } => {
                ServerFrame::ReactionRemoved { room, id, emoji, user: name }
            }
            Revision::Delete => ServerFrame::MessageDeleted { room, id },
        }
        .to_text();
        self.broadcast(room_name, &frame, None);
    }
}

/// Whether a member may answer message `id` of a room whose last id is
/// `last_id`: any id the room gave out (a deleted one shows as deleted).
pub(super) fn check_reply(room: &RoomName, id: i64, last_id: i64) -> Result<(), ChatError> {
    if id > last_id {
        return Err(ChatError::UnknownMessage { room: room.to_string(), id });
    }
    Ok(())
}
