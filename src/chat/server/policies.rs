//! What admins decided about rooms and accounts, as the ChatServer applies
//! it: closed rooms, private rooms and their invitations, mutes and bans.
//! The database keeps the same (through the writer); this is its live copy.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use super::messages::Who;
use crate::clock::now_ms;
use crate::db::chat_state::ChatState;
use crate::db::moderation::KeptOutRow;
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
    /// Who was kicked or banned from each room, kept out until when (Unix
    /// ms): by name key, and a guest by its guest id and address too.
    pub kept_out: HashMap<RoomName, Vec<KeptOut>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeptOut {
    pub name_key: String,
    /// Guests' browsers (their guest cookie's id).
    pub guests: Vec<String>,
    pub addresses: Vec<IpAddr>,
    pub until_ms: i64,
}

impl KeptOut {
    /// How the log keeps its targets (`room_bans.target`).
    pub fn targets(&self) -> Vec<String> {
        let guests = self.guests.iter().map(|g| format!("guest:{g}"));
        let addresses = self.addresses.iter().map(|a| format!("addr:{a}"));
        std::iter::once(format!("name:{}", self.name_key)).chain(guests).chain(addresses).collect()
    }

    /// Adds what a target of the log names (unknown kinds are skipped).
    fn add_target(&mut self, target: &str) {
        match target.split_once(':') {
            Some(("guest", id)) => self.guests.push(id.into()),
            Some(("addr", address)) => self.addresses.extend(address.parse::<IpAddr>().ok()),
            _ => {}
        }
    }
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
            kept_out: kept_out_from(state.kept_out),
        }
    }

    /// Keeps someone out of `room` (`kept.name_key`, and the guests and
    /// addresses with it); what ran out is forgotten here.
    pub fn keep_out(&mut self, room: &RoomName, kept: KeptOut) {
        let now = now_ms();
        self.kept_out.retain(|_, list| {
            list.retain(|k| k.until_ms > now);
            !list.is_empty()
        });
        self.kept_out.entry(room.clone()).or_default().push(kept);
    }

    /// Lets whoever is called `name_key` into `room` again, with the guests
    /// and addresses kept out with them.
    pub fn let_in(&mut self, room: &RoomName, name_key: &str) {
        if let Some(list) = self.kept_out.get_mut(room) {
            list.retain(|k| k.name_key != name_key);
        }
    }

    /// How much longer someone called `name_key` (a guest: with this guest
    /// id, connecting from `address`) is kept out of `room`.
    pub fn kept_out_for(
        &self,
        room: &RoomName,
        name_key: &str,
        guest: Option<&str>,
        address: Option<IpAddr>,
    ) -> Option<Duration> {
        let now = now_ms();
        let until = self
            .kept_out
            .get(room)?
            .iter()
            .filter(|k| k.until_ms > now)
            .filter(|k| {
                k.name_key == name_key
                    || guest.is_some_and(|g| k.guests.iter().any(|kg| kg == g))
                    || address.is_some_and(|a| k.addresses.contains(&a))
            })
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

/// The log's rows, one per target, as one entry per person and room.
fn kept_out_from(rows: Vec<KeptOutRow>) -> HashMap<RoomName, Vec<KeptOut>> {
    let mut people: HashMap<(String, String), KeptOut> = HashMap::new();
    for row in rows {
        let kept = people.entry((row.room, row.name_key.clone())).or_insert_with(|| KeptOut {
            name_key: row.name_key,
            until_ms: row.until,
            ..KeptOut::default()
        });
        kept.until_ms = kept.until_ms.max(row.until);
        kept.add_target(&row.target);
    }
    let mut rooms: HashMap<RoomName, Vec<KeptOut>> = HashMap::new();
    for ((room, _), kept) in people {
        if let Ok(room) = RoomName::parse(&room) {
            rooms.entry(room).or_default().push(kept);
        }
    }
    rooms
}
