//! Writes to the database the messages a node accepted but did not live to
//! write. Every second every node notes each dirty room's last id (rooms
//! the send script marked); one node at a time, holding the sweeper's lock,
//! reads each dirty room's stream from past the last id it found complete
//! up to the last id noted `GRACE` ago (younger messages are left to the
//! node that accepted them), and inserts what the database lacks. Each
//! message is read once. Inserts skip rows that exist, so racing a node's
//! own writer is harmless.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::Connection;
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;

use super::bus::deliveries;
use super::scripts::{LOCK, SWEPT};
use super::{unreachable, Inner};
use crate::db::chat_state::new_epoch;
use crate::db::{self, messages, rooms};
use crate::domain::{ChatMessage, Encryption, RoomName};
use crate::error::ChatError;

const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Messages younger than this are left to the node that accepted them.
const GRACE: Duration = Duration::from_secs(5);
/// Messages one room's sweep reads at most.
const SWEEP_COUNT: usize = 2_000;

/// Each dirty room's last id, as noted at moments of the last `GRACE`.
type Notes = VecDeque<(Instant, HashMap<String, i64>)>;

pub(super) fn spawn(inner: Arc<Inner>) {
    actix::spawn(async move {
        let mut notes = Notes::new();
        loop {
            actix_web::rt::time::sleep(SWEEP_EVERY).await;
            if let Err(e) = sweep(&inner, &mut notes).await {
                crate::warn_throttled!("sweeper: {e}");
            }
        }
    });
}

async fn sweep(inner: &Inner, notes: &mut Notes) -> Result<(), ChatError> {
    let mut redis = inner.redis.clone();
    let keys = &inner.keys;
    let dirty: Vec<String> = redis.smembers(keys.dirty()).await.map_err(unreachable)?;
    let seq_keys: Vec<String> =
        dirty.iter().filter_map(|name| RoomName::parse(name).ok()).map(|room| keys.seq(&room)).collect();
    let seqs: Vec<Option<i64>> =
        if seq_keys.is_empty() { Vec::new() } else { redis.mget(&seq_keys).await.map_err(unreachable)? };
    let now = Instant::now();
    let noted = dirty.iter().filter(|name| RoomName::parse(name).is_ok()).cloned().zip(seqs);
    notes.push_back((now, noted.filter_map(|(name, seq)| Some((name, seq?))).collect()));
    // The newest note at least `GRACE` old says what is old enough.
    while notes.len() > 1 && now.duration_since(notes[1].0) >= GRACE {
        notes.pop_front();
    }
    let Some((_, cutoffs)) = notes.front().filter(|(at, _)| now.duration_since(*at) >= GRACE) else {
        return Ok(());
    };
    let held: i64 = LOCK
        .key(keys.sweeper_lock())
        .arg(&inner.settings.node)
        .arg(SWEEP_EVERY.as_millis() as u64 * 5)
        .invoke_async(&mut redis)
        .await
        .map_err(unreachable)?;
    if held == 0 {
        return Ok(());
    }
    for (name, cutoff) in cutoffs {
        let Ok(room) = RoomName::parse(name) else { continue };
        // One room's trouble (a message the database refuses) holds up
        // that room only.
        if let Err(e) = sweep_room(inner, &room, *cutoff).await {
            crate::warn_throttled!("sweeper: room {room}: {e}");
        }
    }
    Ok(())
}

/// Sweeps `room`'s stream up to `cutoff`.
async fn sweep_room(inner: &Inner, room: &RoomName, cutoff: i64) -> Result<(), ChatError> {
    let mut redis = inner.redis.clone();
    let keys = &inner.keys;
    let swept: Option<i64> = redis.hget(keys.swept(), room.as_str()).await.map_err(unreachable)?;
    if let Some(id) = swept.filter(|id| *id >= cutoff) {
        // All swept up to the cutoff; a room with nothing newer stops being dirty.
        return mark_swept(inner, room, id).await;
    }
    let from = swept.map_or_else(|| "-".to_string(), |id| format!("{}-0", id + 1));
    let reply: StreamRangeReply =
        redis.xrange_count(keys.log(room), from, format!("{cutoff}-0"), SWEEP_COUNT).await.map_err(unreachable)?;
    let entries: Vec<Arc<ChatMessage>> = deliveries(inner, reply).into_iter().map(|d| d.message).collect();
    let Some(last) = entries.last().map(|m| m.id) else {
        // The stream has nothing there any more (trimmed, or lost).
        return mark_swept(inner, room, cutoff).await;
    };
    let encryption = super::bus::decided(inner, room).await?.flatten();
    let written = write_missing(inner, room, entries, encryption).await?;
    if written > 0 {
        log::warn!("sweeper: wrote {written} message(s) of room {room} that the node accepting them did not");
    }
    // A full read may have stopped short of the cutoff: the rest next time.
    mark_swept(inner, room, last).await
}

async fn mark_swept(inner: &Inner, room: &RoomName, id: i64) -> Result<(), ChatError> {
    let mut redis = inner.redis.clone();
    let keys = &inner.keys;
    SWEPT
        .key(keys.swept())
        .key(keys.dirty())
        .key(keys.seq(room))
        .arg(room.as_str())
        .arg(id)
        .invoke_async::<i64>(&mut redis)
        .await
        .map_err(unreachable)?;
    Ok(())
}

/// Inserts the messages the database lacks; answers how many.
async fn write_missing(
    inner: &Inner,
    room: &RoomName,
    entries: Vec<Arc<ChatMessage>>,
    encryption: Option<Encryption>,
) -> Result<usize, ChatError> {
    let room = room.clone();
    db::run(&inner.pool, move |conn| {
        let (first, last) = (entries[0].id, entries[entries.len() - 1].id);
        let present: HashSet<i64> = messages::ids_between(conn, &room, first, last)?.into_iter().collect();
        let missing: Vec<&ChatMessage> = entries.iter().map(|m| &**m).filter(|m| !present.contains(&m.id)).collect();
        if missing.is_empty() {
            return Ok(0);
        }
        conn.transaction(|conn| {
            // The room too: its creator may have died before writing it.
            let epoch = new_epoch();
            let created_at = missing[0].created_at_ms;
            let new_room = rooms::NewRoom {
                name: room.as_str(),
                created_at,
                created_by: None,
                epoch: &epoch,
                encryption: encryption.as_ref().map(|e| e.key.as_str()),
                key_salt: encryption.as_ref().map(|e| e.salt.as_str()),
            };
            rooms::insert_all(conn, &[new_room])?;
            let rows: Vec<messages::NewMessage> = missing.iter().map(|m| messages::NewMessage::from(*m)).collect();
            messages::insert_all(conn, &rows)?;
            rooms::raise_last_id(conn, room.as_str(), last)?;
            Ok::<_, diesel::result::Error>(missing.len())
        })
    })
    .await
}
