//! What the ChatServer starts from: every room in the log with its epoch
//! and the highest id it gave out (so ids continue and never repeat), and
//! what admins decided about rooms and accounts.

use diesel::{Connection, QueryResult};

use super::{accounts, messages, moderation, rooms, server_state, DbConnection};
use crate::domain::{Encryption, RoomName};
use crate::tokens::random_hex;

#[derive(Debug, Default)]
pub struct ChatState {
    /// Every room.
    pub rooms: Vec<RoomState>,
    /// The previous process stopped cleanly, so every room kept its epoch.
    pub clean_start: bool,
    pub closed: Vec<RoomName>,
    /// Private rooms with the accounts (name keys) invited to them.
    pub private: Vec<(RoomName, Vec<String>)>,
    /// Running mutes: (room, name key, until in Unix ms).
    pub mutes: Vec<(RoomName, String, i64)>,
    /// Banned accounts (name keys).
    pub banned: Vec<String>,
    /// Who is kept out of which room, and until when.
    pub kept_out: Vec<moderation::KeptOutRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomState {
    pub name: RoomName,
    /// The run of ids the room is in; see `rooms::SavedRoom`.
    pub epoch: String,
    /// The highest id the room ever gave out (0 for none yet).
    pub last_id: i64,
    pub encryption: Option<Encryption>,
}

/// A fresh epoch: random, so that no two runs share one.
pub fn new_epoch() -> String {
    random_hex(8)
}

/// Marks this process as running and reads the state as of `now_ms` (mutes
/// that ran out are left behind). When the previous process did not stop
/// cleanly, ids it handed out may be missing from the log, so every room
/// starts a new epoch before anyone is served. Rooms whose stored name is
/// not a valid room name are skipped with a warning: nobody could join them.
pub fn load(conn: &mut DbConnection, now_ms: i64, in_cluster: bool) -> QueryResult<ChatState> {
    // In a cluster Redis keeps the epochs, and other nodes run beside this
    // one: whether the last process stopped cleanly says nothing.
    let clean_start = in_cluster
        || conn.transaction(|conn| {
            let clean = server_state::begin_run(conn, now_ms)?;
            if !clean {
                rooms::renew_all_epochs(conn, &new_epoch())?;
            }
            Ok::<_, diesel::result::Error>(clean)
        })?;
    if !clean_start {
        log::warn!("the previous run did not stop cleanly: every room starts a new epoch, so clients reload history");
    }
    let mut saved: std::collections::HashMap<String, (String, i64, Option<Encryption>)> =
        rooms::all(conn)?.into_iter().map(|r| (r.name.clone(), (r.epoch.clone(), r.last_id, r.encryption()))).collect();
    // Logs written before rooms kept their highest id count by their messages.
    for (room, last) in messages::last_ids(conn)? {
        let entry = saved.entry(room).or_insert_with(|| (String::new(), 0, None));
        entry.1 = entry.1.max(last.unwrap_or(0));
    }
    let mut rooms = Vec::with_capacity(saved.len());
    for (name, (epoch, last_id, encryption)) in saved {
        let Ok(room) = RoomName::parse(&name) else {
            log::warn!("ignoring room {name:?} in the log: not a valid room name");
            continue;
        };
        let epoch = if epoch.is_empty() {
            // A room from before epochs existed.
            let epoch = new_epoch();
            rooms::set_epoch(conn, &name, &epoch)?;
            epoch
        } else {
            epoch
        };
        rooms.push(RoomState { name: room, epoch, last_id, encryption });
    }
    Ok(ChatState {
        rooms,
        clean_start,
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
        kept_out: moderation::kept_out(conn, now_ms)?,
    })
}
