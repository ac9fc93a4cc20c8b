//! What admins decided about rooms and accounts, as the ChatServer applies
//! it: closed rooms, private rooms and their invitations, mutes and bans.
//! The database keeps the same (through the writer); this is its live copy.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::messages::Who;
use crate::clock::now_ms;
use crate::db::chat_state::ChatState;
use crate::domain::{DisplayName, RoomName};

#[derive(Default)]
pub struct Policies {
    /// Rooms an admin closed: no one may join them.
    pub closed: HashSet<RoomName>,
    /// Invite-only rooms.
    pub private: HashSet<RoomName>,
    /// The accounts (name keys) invited to each room.
    pub invites: HashMap<RoomName, HashSet<String>>,
    /// (room, name key) → muted until (Unix ms).
    pub mutes: HashMap<(RoomName, String), i64>,
    /// Banned accounts (name keys): their connections are refused.
    pub banned: HashSet<String>,
}

impl Policies {
    /// The policies in `state`, as the log had them at start-up (its rooms
    /// are not looked at).
    pub fn from_saved(state: ChatState) -> Self {
        Self {
            closed: state.closed.into_iter().collect(),
            private: state.private.iter().map(|(room, _)| room.clone()).collect(),
            invites: state.private.into_iter().map(|(room, keys)| (room, keys.into_iter().collect())).collect(),
            mutes: state.mutes.into_iter().map(|(room, key, until)| ((room, key), until)).collect(),
            banned: state.banned.into_iter().collect(),
        }
    }

    /// Whether `who` may be in `room`: anyone in a public room; in a private
    /// one, admins and invited accounts.
    pub fn may_enter(&self, room: &RoomName, who: &Who, admin: bool) -> bool {
        if admin || !self.private.contains(room) {
            return true;
        }
        matches!(who, Who::User(key) if self.invites.get(room).is_some_and(|keys| keys.contains(key)))
    }

    /// How much longer `name` is muted in `room`, if at all; a mute that ran
    /// out is forgotten.
    pub fn muted_for(&mut self, room: &RoomName, name: &DisplayName) -> Option<Duration> {
        let key = (room.clone(), name.key());
        let left = *self.mutes.get(&key)? - now_ms();
        if left <= 0 {
            self.mutes.remove(&key);
            return None;
        }
        Some(Duration::from_millis(left.unsigned_abs()))
    }
}
