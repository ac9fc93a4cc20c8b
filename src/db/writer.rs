//! The database writer: one thread that persists accepted messages in order,
//! many per transaction, so delivery never waits for the disk.
//!
//! The queue is bounded: when it is full the ChatServer refuses new messages
//! (`unavailable`) instead of accepting what it could not keep. A failed write
//! is retried with backoff until it succeeds; inserts skip rows already
//! stored, so a retried batch is written once.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use diesel::Connection;

use super::messages::{self, NewMessage};
use super::moderation;
use super::rooms::{self, NewRoom};
use super::{DbPool, PooledDb};
use crate::clock::now_ms;
use crate::domain::{ChatMessage, RoomName};
use crate::error::DbError;

/// Rows written per transaction at most. Large enough that a backlog drains
/// in few commits, small enough to keep one transaction short.
const MAX_BATCH: usize = 1024;
/// And at most about this many bytes of text, well under MySQL's default
/// 16 MiB statement limit whatever the message size limit.
const MAX_BATCH_BYTES: usize = 4 << 20;
const FIRST_RETRY: Duration = Duration::from_millis(50);
const MAX_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum WriteOp {
    CreateRoom { name: RoomName, created_at_ms: i64, created_by: Option<Arc<str>> },
    Message(Arc<ChatMessage>),
    DeleteMessage { room: RoomName, id: i64 },
    SetClosed { room: RoomName, closed_at: Option<i64> },
    SetPrivate { room: RoomName, private: bool },
    Invite { room: RoomName, user_key: String, invited_by: String },
    Mute { room: RoomName, user_key: String, until_ms: i64 },
}

impl WriteOp {
    fn text_len(&self) -> usize {
        match self {
            Self::Message(m) => m.text.len(),
            _ => 0,
        }
    }
}

/// For each room in a committed batch, the highest message id now durable.
pub type Watermarks = Vec<(RoomName, i64)>;

/// Starts the writer. It runs until every sender is dropped, then writes
/// what is still queued and ends.
pub fn spawn(
    pool: DbPool,
    capacity: usize,
    on_persisted: impl Fn(Watermarks) + Send + 'static,
) -> (SyncSender<WriteOp>, JoinHandle<()>) {
    let (tx, rx) = sync_channel(capacity.max(1));
    let handle = thread::Builder::new()
        .name("parlor-db-writer".into())
        .spawn(move || run(&pool, &rx, &on_persisted))
        .expect("can spawn the database writer thread");
    (tx, handle)
}

fn run(pool: &DbPool, rx: &Receiver<WriteOp>, on_persisted: &dyn Fn(Watermarks)) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // The writer keeps a connection of its own, so readers holding every
    // other pooled connection cannot starve it; it is replaced after an error.
    let mut conn: Option<PooledDb> = None;
    // Group commit: block for the first op, then take whatever queued up
    // meanwhile. Under light load a message is written at once; under heavy
    // load batches grow by themselves while the previous commit runs.
    while let Ok(op) = rx.recv() {
        let mut bytes = op.text_len();
        batch.push(op);
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            let Ok(op) = rx.try_recv() else { break };
            bytes += op.text_len();
            batch.push(op);
        }
        let mut wait = FIRST_RETRY;
        loop {
            let result = match conn.as_mut() {
                Some(c) => write(c, &batch),
                None => pool.get().map_err(DbError::from).and_then(|c| write(conn.insert(c), &batch)),
            };
            match result {
                Ok(()) => break,
                Err(e) => {
                    conn = None;
                    log::warn!(
                        "writing {} queued changes to the message log failed, retrying in {wait:?}: {e}",
                        batch.len()
                    );
                    thread::sleep(wait);
                    wait = (wait * 2).min(MAX_RETRY);
                }
            }
        }
        on_persisted(watermarks(&batch));
        batch.clear();
    }
    log::info!("message log writer stopped; its queue is flushed");
}

fn write(conn: &mut PooledDb, batch: &[WriteOp]) -> Result<(), DbError> {
    let mut new_rooms = Vec::new();
    let mut new_messages = Vec::new();
    // Deletions and closings refer to rows this batch (or an earlier one)
    // inserts, so they run after the inserts, in their own order.
    let mut changes = Vec::new();
    for op in batch {
        match op {
            WriteOp::DeleteMessage { .. }
            | WriteOp::SetClosed { .. }
            | WriteOp::SetPrivate { .. }
            | WriteOp::Invite { .. }
            | WriteOp::Mute { .. } => changes.push(op),
            WriteOp::CreateRoom { name, created_at_ms, created_by } => new_rooms.push(NewRoom {
                name: name.as_str(),
                created_at: *created_at_ms,
                created_by: created_by.as_deref(),
            }),
            WriteOp::Message(m) => new_messages.push(NewMessage::from(&**m)),
        }
    }
    conn.transaction(|conn| {
        rooms::insert_all(conn, &new_rooms)?;
        messages::insert_all(conn, &new_messages)?;
        for change in &changes {
            match change {
                WriteOp::DeleteMessage { room, id } => moderation::delete_message(conn, room.as_str(), *id)?,
                WriteOp::SetClosed { room, closed_at } => moderation::set_room_closed(conn, room.as_str(), *closed_at)?,
                WriteOp::SetPrivate { room, private } => moderation::set_private(conn, room.as_str(), *private)?,
                WriteOp::Mute { room, user_key, until_ms } => {
                    moderation::mute(conn, room.as_str(), user_key, *until_ms)?
                }
                WriteOp::Invite { room, user_key, invited_by } => moderation::invite(
                    conn,
                    &moderation::NewInvite { room: room.as_str(), user_key, invited_by, created_at: now_ms() },
                )?,
                _ => 0,
            };
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

fn watermarks(batch: &[WriteOp]) -> Watermarks {
    let mut highest: HashMap<&RoomName, i64> = HashMap::new();
    for op in batch {
        if let WriteOp::Message(m) = op {
            let id = highest.entry(&m.room).or_insert(m.id);
            *id = (*id).max(m.id);
        }
    }
    highest.into_iter().map(|(room, id)| (room.clone(), id)).collect()
}
