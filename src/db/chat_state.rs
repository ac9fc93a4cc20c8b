//! What the ChatServer starts from: every room in the log with its last
//! message id (so ids continue where they stopped), and what admins decided
//! about rooms and accounts.

use diesel::QueryResult;

use super::{accounts, messages, moderation, rooms, DbConnection};
use crate::domain::RoomName;

#[derive(Debug, Default)]
pub struct ChatState {
    /// Every room with its highest message id (0 for none yet).
    pub rooms: Vec<(RoomName, i64)>,
    pub closed: Vec<RoomName>,
    /// Private rooms with the accounts (name keys) invited to them.
    pub private: Vec<(RoomName, Vec<String>)>,
    /// Running mutes: (room, name key, until in Unix ms).
    pub mutes: Vec<(RoomName, String, i64)>,
    /// Banned accounts (name keys).
    pub banned: Vec<String>,
}

/// Reads the state as of `now_ms` (mutes that ran out are left behind).
/// Rooms whose stored name is not a valid room name are skipped with a
/// warning: nobody could join them.
pub fn load(conn: &mut DbConnection, now_ms: i64) -> QueryResult<ChatState> {
    let mut last_ids: std::collections::HashMap<String, i64> =
        rooms::all_names(conn)?.into_iter().map(|name| (name, 0)).collect();
    for (room, last) in messages::last_ids(conn)? {
        last_ids.insert(room, last.unwrap_or(0));
    }
    let rooms = last_ids
        .into_iter()
        .filter_map(|(name, last)| match RoomName::parse(&name) {
            Ok(room) => Some((room, last)),
            Err(_) => {
                log::warn!("ignoring room {name:?} in the log: not a valid room name");
                None
            }
        })
        .collect();
    Ok(ChatState {
        rooms,
        closed: moderation::closed_rooms(conn)?.into_iter().filter_map(|name| RoomName::parse(&name).ok()).collect(),
        private: moderation::private_rooms(conn)?
            .into_iter()
            .filter_map(|(name, keys)| Some((RoomName::parse(&name).ok()?, keys)))
            .collect(),
        mutes: moderation::live_mutes(conn, now_ms)?
            .into_iter()
            .filter_map(|(room, key, until)| Some((RoomName::parse(&room).ok()?, key, until)))
            .collect(),
        banned: accounts::banned_keys(conn)?,
    })
}
