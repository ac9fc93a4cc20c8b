//! What admins decided about rooms and accounts, as the ChatServer applies
//! it: closed rooms, private rooms and their invitations, mutes and bans.
//! The database keeps the same (through the writer); this is its live copy.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
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
    /// Who was kicked from each room, kept out until when (Unix ms): by
    /// name key, and a kicked guest by address too.
    pub kept_out: HashMap<RoomName, Vec<KeptOut>>,
}

#[derive(Debug, Clone)]
pub struct KeptOut {
    pub name_key: String,
    pub addresses: Vec<IpAddr>,
    pub until_ms: i64,
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
            kept_out: HashMap::new(),
        }
    }

    /// Keeps whoever is called `name_key` (and guests from `addresses`)
    /// out of `room` until `until_ms`; what ran out is forgotten here.
    pub fn keep_out(&mut self, room: &RoomName, name_key: String, addresses: Vec<IpAddr>, until_ms: i64) {
        let now = now_ms();
        self.kept_out.retain(|_, list| {
            list.retain(|k| k.until_ms > now);
            !list.is_empty()
        });
        self.kept_out.entry(room.clone()).or_default().push(KeptOut { name_key, addresses, until_ms });
    }

    /// How much longer someone called `name_key` (connecting from
    /// `address`, a guest) is kept out of `room`.
    pub fn kept_out_for(&self, room: &RoomName, name_key: &str, address: Option<IpAddr>) -> Option<Duration> {
        let now = now_ms();
        let until = self
            .kept_out
            .get(room)?
            .iter()
            .filter(|k| k.until_ms > now)
            .filter(|k| k.name_key == name_key || address.is_some_and(|a| k.addresses.contains(&a)))
            .map(|k| k.until_ms)
            .max()?;
        Some(Duration::from_millis((until - now).unsigned_abs()))
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
