//! Writes to the database the messages a node accepted but did not live to
//! write. One node at a time holds the sweeper's lock; each second it looks
//! at the rooms marked dirty by the send script, reads their streams past
//! the last id it found complete, and inserts what the database lacks.
//! Inserts skip rows that exist, so racing the node's own writer is
//! harmless.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use redis::streams::StreamRangeReply;
use redis::AsyncCommands;

use super::bus::deliveries;
use super::scripts::{LOCK, SWEPT};
use super::{unreachable, Inner};
use crate::clock::now_ms;
use crate::db::chat_state::new_epoch;
use crate::db::{self, messages, rooms};
use crate::domain::{ChatMessage, RoomName};
use crate::error::ChatError;

const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Messages younger than this are left to the node that accepted them.
const GRACE_MS: i64 = 5_000;
/// Messages one room's sweep reads at most.
const SWEEP_COUNT: usize = 2_000;

pub(super) fn spawn(inner: Arc<Inner>) {
    actix::spawn(async move {
        loop {
            actix_web::rt::time::sleep(SWEEP_EVERY).await;
            if let Err(e) = sweep(&inner).await {
                crate::warn_throttled!("sweeper: {e}");
            }
        }
    });
}

async fn sweep(inner: &Inner) -> Result<(), ChatError> {
    let mut redis = inner.redis.clone();
    let keys = &inner.keys;
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
    let dirty: Vec<String> = redis.smembers(keys.dirty()).await.map_err(unreachable)?;
    for name in dirty {
        let Ok(room) = RoomName::parse(&name) else { continue };
        // One room's trouble (a message the database refuses) holds up
        // that room only.
        if let Err(e) = sweep_room(inner, &room).await {
            crate::warn_throttled!("sweeper: room {room}: {e}");
        }
    }
    Ok(())
}

async fn sweep_room(inner: &Inner, room: &RoomName) -> Result<(), ChatError> {
    let mut redis = inner.redis.clone();
    let keys = &inner.keys;
    let swept: Option<i64> = redis.hget(keys.swept(), room.as_str()).await.map_err(unreachable)?;
    let from = swept.map_or_else(|| "-".to_string(), |id| format!("{}-0", id + 1));
    let reply: StreamRangeReply =
        redis.xrange_count(keys.log(room), from, "+", SWEEP_COUNT).await.map_err(unreachable)?;
    let old_enough = now_ms() - GRACE_MS;
    let entries: Vec<Arc<ChatMessage>> =
        deliveries(inner, reply).into_iter().map(|d| d.message).take_while(|m| m.created_at_ms <= old_enough).collect();
    let Some(last) = entries.last().map(|m| m.id) else {
        // Nothing old enough; a room whose stream is all swept stops being dirty.
        if let Some(id) = swept {
            mark_swept(inner, room, id).await?;
        }
        return Ok(());
    };
    let written = write_missing(inner, room, entries).await?;
    if written > 0 {
        log::warn!("sweeper: wrote {written} message(s) of room {room} that the node accepting them did not");
    }
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
async fn write_missing(inner: &Inner, room: &RoomName, entries: Vec<Arc<ChatMessage>>) -> Result<usize, ChatError> {
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
            let new_room = rooms::NewRoom { name: room.as_str(), created_at, created_by: None, epoch: &epoch };
            rooms::insert_all(conn, &[new_room])?;
            let rows: Vec<messages::NewMessage> = missing.iter().map(|m| messages::NewMessage::from(*m)).collect();
            messages::insert_all(conn, &rows)?;
            rooms::raise_last_id(conn, room.as_str(), last)?;
            Ok::<_, diesel::result::Error>(missing.len())
        })
    })
    .await
}
