//! The database writer: one thread with a connection of its own that
//! persists accepted messages in order, many per transaction (group commit),
//! so delivery never waits for the disk unless `--durable-ack` asks it to.
//!
//! The queue is bounded in count, and the ChatServer bounds it in time with
//! `oldest_unwritten`: past either bound new messages are refused
//! (`unavailable`) instead of accepted without a way to keep them.
//!
//! A failed batch is retried with backoff while the database is unreachable
//! or locked. When the database answers but refuses the batch, the writes
//! are tried one by one and any it refuses on its own is set aside in
//! `dead_letters`, so one bad row cannot stop the log. Inserts skip rows
//! already stored, so a retried batch is written once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use diesel::Connection;

use super::dead_letters::{self, NewDeadLetter};
use super::messages::{self, NewMessage};
use super::moderation::{self, NewAuditEntry};
use super::revisions;
use super::rooms::{self, NewRoom};
use super::{establish, DatabaseUrl, DbConnection};
use crate::clock::now_ms;
use crate::domain::{ChatMessage, Encryption, Revision, RoomName};
use crate::error::DbError;
use crate::metrics::Metrics;
use crate::tokens::random_hex;

/// Rows written per transaction at most. Large enough that a backlog drains
/// in few commits, small enough to keep one transaction short.
const MAX_BATCH: usize = 1024;
/// And at most about this many bytes of text, well under MySQL's default
/// 16 MiB statement limit whatever the message size limit.
const MAX_BATCH_BYTES: usize = 4 << 20;
const FIRST_RETRY: Duration = Duration::from_millis(50);
/// How often one write must be refused, while the database takes others,
/// before it is set aside.
const REFUSALS_BEFORE_SETTING_ASIDE: u32 = 3;
const MAX_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub enum WriteOp {
    CreateRoom {
        name: RoomName,
        created_at_ms: i64,
        created_by: Option<Arc<str>>,
        epoch: String,
        encryption: Option<Encryption>,
    },
    Message(Arc<ChatMessage>),
    SetEpoch {
        room: RoomName,
        epoch: String,
    },
    /// Someone kept out of a room (see `moderation::keep_out`).
    KeepOut {
        room: RoomName,
        name_key: String,
        user_name: String,
        targets: Vec<String>,
        until_ms: i64,
    },
    LetIn {
        room: RoomName,
        name_key: String,
    },
    /// A member edited, deleted or reacted to message `id`.
    Revise {
        room: RoomName,
        id: i64,
        revision: Revision,
    },
    /// An admin's change, committed in one transaction with its audit entry.
    Moderation {
        change: Change,
        audit: Audit,
    },
    /// Answered once everything queued before it is settled: `Ok` when it
    /// was all committed, `Err` when the database refused some of the batch
    /// (set aside in `dead_letters`).
    Barrier(tokio::sync::oneshot::Sender<Result<(), ()>>),
}

/// What admins change in the log.
#[derive(Debug)]
pub enum Change {
    DeleteMessage { room: RoomName, id: i64 },
    SetClosed { room: RoomName, closed_at: Option<i64> },
    SetPrivate { room: RoomName, private: bool },
    Invite { room: RoomName, user_key: String, invited_by: String },
    Mute { room: RoomName, user_key: String, until_ms: i64 },
}

/// An audit log entry: who did what to what.
#[derive(Debug, Clone)]
pub struct Audit {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

impl Audit {
    pub fn write(&self, conn: &mut DbConnection) -> diesel::QueryResult<usize> {
        let id = random_hex(16);
        moderation::record(
            conn,
            &NewAuditEntry {
                id: &id,
                at: now_ms(),
                actor: &self.actor,
                action: &self.action,
                target: &self.target,
                detail: self.detail.as_deref(),
            },
        )
    }
}

impl WriteOp {
    fn text_len(&self) -> usize {
        match self {
            Self::Message(m) => m.text.len(),
            Self::Revise { revision: Revision::Edit { text, .. }, .. } => text.len(),
            _ => 0,
        }
    }

    fn room(&self) -> Option<&RoomName> {
        Some(match self {
            Self::CreateRoom { name, .. } => name,
            Self::Message(m) => &m.room,
            Self::SetEpoch { room, .. }
            | Self::Revise { room, .. }
            | Self::KeepOut { room, .. }
            | Self::LetIn { room, .. } => room,
            Self::Moderation { change, .. } => match change {
                Change::DeleteMessage { room, .. }
                | Change::SetClosed { room, .. }
                | Change::SetPrivate { room, .. }
                | Change::Invite { room, .. }
                | Change::Mute { room, .. } => room,
            },
            Self::Barrier(_) => return None,
        })
    }

    /// The op as an admin reads it in `dead_letters`.
    fn describe(&self) -> String {
        match self {
            Self::Message(m) => serde_json::json!({
                "message": { "id": m.id, "user": &*m.author, "text": m.text, "created_at": m.created_at_ms, "nonce": m.nonce }
            })
            .to_string(),
            other => serde_json::json!({ "change": format!("{other:?}") }).to_string(),
        }
    }
}

struct Queued {
    op: WriteOp,
    /// When it was queued, on `monotonic_ms`'s clock.
    at_ms: i64,
}

/// Milliseconds since the first call, never less than 1 (0 means "none"):
/// a wall-clock step must not make a healthy writer look stalled.
fn monotonic_ms() -> i64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX).max(1)
}

/// What the writer reports after each commit.
#[derive(Debug, Default)]
pub struct Committed {
    /// For each room in the batch, the highest message id now settled.
    pub watermarks: Vec<(RoomName, i64)>,
    /// Messages the database refused (now in `dead_letters`), by room and id.
    pub refused: Vec<(RoomName, i64)>,
}

/// The sending side of the writer's queue, with what the ChatServer and
/// `/healthz` need to know of its backlog.
#[derive(Clone)]
pub struct WriteQueue {
    tx: SyncSender<Queued>,
    backlog: Arc<Backlog>,
}

#[derive(Default)]
struct Backlog {
    depth: AtomicUsize,
    /// When the oldest write not yet committed was queued (`monotonic_ms`;
    /// 0: none).
    oldest_ms: AtomicI64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum QueueError {
    Full,
    Closed,
}

impl WriteQueue {
    pub fn try_send(&self, op: WriteOp) -> Result<(), QueueError> {
        self.counted(op, |tx, queued| {
            tx.try_send(queued).map_err(|e| match e {
                TrySendError::Full(_) => QueueError::Full,
                TrySendError::Disconnected(_) => QueueError::Closed,
            })
        })
    }

    /// Queues `op`, waiting while the queue is full (for tools that feed
    /// the writer as fast as it takes writes; the server never waits).
    pub fn send(&self, op: WriteOp) -> Result<(), QueueError> {
        self.counted(op, |tx, queued| tx.send(queued).map_err(|_| QueueError::Closed))
    }

    /// Counts `op` in the backlog for as long as `put` has it queued.
    fn counted(
        &self,
        op: WriteOp,
        put: impl FnOnce(&SyncSender<Queued>, Queued) -> Result<(), QueueError>,
    ) -> Result<(), QueueError> {
        self.backlog.depth.fetch_add(1, Ordering::Relaxed);
        put(&self.tx, Queued { op, at_ms: monotonic_ms() }).inspect_err(|_| {
            self.backlog.depth.fetch_sub(1, Ordering::Relaxed);
        })
    }

    /// Writes waiting, committing included.
    pub fn depth(&self) -> usize {
        self.backlog.depth.load(Ordering::Relaxed)
    }

    /// How long the oldest uncommitted write has waited.
    pub fn oldest_unwritten(&self) -> Duration {
        match self.backlog.oldest_ms.load(Ordering::Relaxed) {
            0 => Duration::ZERO,
            at => Duration::from_millis(u64::try_from(monotonic_ms() - at).unwrap_or(0)),
        }
    }
}

/// Starts the writer with a connection of its own, so readers holding every
/// pooled connection cannot starve it. It runs until every `WriteQueue`
/// is dropped, then writes what is still queued and ends.
pub fn spawn(
    url: DatabaseUrl,
    capacity: usize,
    metrics: Arc<Metrics>,
    on_commit: impl Fn(Committed) + Send + 'static,
) -> (WriteQueue, JoinHandle<()>) {
    let (tx, rx) = sync_channel(capacity.max(1));
    let backlog = Arc::new(Backlog::default());
    let writer = Writer { url, conn: None, backlog: backlog.clone(), metrics };
    let handle = thread::Builder::new()
        .name("parlor-db-writer".into())
        .spawn(move || writer.run(&rx, &on_commit))
        .expect("can spawn the database writer thread");
    (WriteQueue { tx, backlog }, handle)
}

struct Writer {
    url: DatabaseUrl,
    /// Replaced after an error.
    conn: Option<DbConnection>,
    backlog: Arc<Backlog>,
    metrics: Arc<Metrics>,
}

impl Writer {
    fn run(mut self, rx: &Receiver<Queued>, on_commit: &dyn Fn(Committed)) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // Group commit: block for the first op, then take whatever queued up
        // meanwhile. Under light load a message is written at once; under
        // heavy load batches grow by themselves while the previous commit runs.
        while let Ok(first) = rx.recv() {
            self.backlog.oldest_ms.store(first.at_ms, Ordering::Relaxed);
            let mut bytes = first.op.text_len();
            batch.push(first.op);
            while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                let Ok(next) = rx.try_recv() else { break };
                bytes += next.op.text_len();
                batch.push(next.op);
            }
            let (refused, all_stored) = self.commit(&batch);
            let done = batch.len();
            self.backlog.depth.fetch_sub(done, Ordering::Relaxed);
            self.backlog.oldest_ms.store(0, Ordering::Relaxed);
            on_commit(Committed { watermarks: watermarks(&batch), refused });
            for op in batch.drain(..) {
                if let WriteOp::Barrier(settled) = op {
                    let _ = settled.send(if all_stored { Ok(()) } else { Err(()) });
                }
            }
        }
        log::info!("message log writer stopped; its queue is flushed");
    }

    /// Commits the batch, whatever it takes; answers the messages set aside,
    /// and whether nothing at all was.
    fn commit(&mut self, batch: &[WriteOp]) -> (Vec<(RoomName, i64)>, bool) {
        let mut wait = FIRST_RETRY;
        loop {
            let started = Instant::now();
            let error = match self.with_conn(|conn| write(conn, batch)) {
                Ok(()) => {
                    self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
                    self.metrics.commit_batch_size.observe(batch.len() as f64);
                    return (Vec::new(), true);
                }
                Err(e) => e,
            };
            self.metrics.database_errors.inc();
            // A database that takes a write of its own refuses something in
            // the batch, not every write: find what, one write at a time.
            if self.with_conn(probe).is_ok() {
                log::warn!("the message log refused a batch of {}: {error}; writing it one by one", batch.len());
                return self.commit_one_by_one(batch);
            }
            log::warn!(
                "writing {} queued changes to the message log failed, retrying in {wait:?}: {error}",
                batch.len()
            );
            self.back_off(&mut wait);
        }
    }

    fn commit_one_by_one(&mut self, batch: &[WriteOp]) -> (Vec<(RoomName, i64)>, bool) {
        let mut refused = Vec::new();
        let mut all_stored = true;
        for op in batch {
            let mut wait = FIRST_RETRY;
            // Refusals of this write while the database took the probe.
            let mut refusals = 0;
            loop {
                let error = match self.with_conn(|conn| write(conn, std::slice::from_ref(op))) {
                    Ok(()) => break,
                    Err(e) => e,
                };
                self.metrics.database_errors.inc();
                if self.with_conn(probe).is_ok() && !looks_transient(&error) {
                    refusals += 1;
                }
                // Set aside only what is refused again and again: a lock or
                // a deadlock on this one row passes, a bad value does not.
                if refusals >= REFUSALS_BEFORE_SETTING_ASIDE {
                    match self.with_conn(|conn| set_aside(conn, op, &error)) {
                        Ok(()) => {
                            log::error!(
                                "the message log refused a write on its own; set aside in dead_letters: {error}"
                            );
                            self.metrics.dead_letters.inc();
                            all_stored = false;
                            if let WriteOp::Message(m) = op {
                                refused.push((m.room.clone(), m.id));
                            }
                            break;
                        }
                        Err(e) => log::warn!("cannot set a refused write aside, retrying: {e}"),
                    }
                }
                self.back_off(&mut wait);
            }
        }
        (refused, all_stored)
    }

    /// After a failure: a fresh connection next time, after `wait`, which
    /// doubles up to `MAX_RETRY`.
    fn back_off(&mut self, wait: &mut Duration) {
        self.conn = None;
        thread::sleep(*wait);
        *wait = (*wait * 2).min(MAX_RETRY);
    }

    fn with_conn<T>(&mut self, f: impl FnOnce(&mut DbConnection) -> Result<T, DbError>) -> Result<T, DbError> {
        let conn = match self.conn.as_mut() {
            Some(conn) => conn,
            None => self.conn.insert(establish(&self.url).map_err(|e| DbError::Connect(e.to_string()))?),
        };
        f(conn)
    }
}

/// Errors that say "try again" rather than "never": a write that fails
/// with one is retried, never set aside.
fn looks_transient(error: &DbError) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        DbError::Query(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => true,
        DbError::Query(Error::DatabaseError(_, info)) => {
            let message = info.message().to_ascii_lowercase();
            ["lock", "deadlock", "busy", "timeout", "timed out", "connection", "read-only", "disk", "space"]
                .iter()
                .any(|word| message.contains(word))
        }
        DbError::Query(_) => false,
        DbError::Pool(_) | DbError::Connect(_) => true,
    }
}

/// A write of no consequence (a row set to what it holds): it succeeds when
/// the database takes writes, and fails when it is locked, read-only or full.
fn probe(conn: &mut DbConnection) -> Result<(), DbError> {
    use super::schema::server_state;
    use diesel::prelude::*;
    conn.transaction(|conn| {
        diesel::update(server_state::table).set(server_state::running.eq(server_state::running)).execute(conn)
    })?;
    Ok(())
}

fn set_aside(conn: &mut DbConnection, op: &WriteOp, error: &DbError) -> Result<(), DbError> {
    let (id, what, error) = (random_hex(16), op.describe(), error.to_string());
    let message_id = match op {
        WriteOp::Message(m) => Some(m.id),
        _ => None,
    };
    let room = op.room().map_or("", RoomName::as_str);
    conn.transaction(|conn| {
        dead_letters::insert(
            conn,
            &NewDeadLetter { id: &id, at: now_ms(), room, message_id, what: &what, error: &error },
        )?;
        // The id stays given out, so it is never given again.
        if let Some(id) = message_id {
            rooms::raise_last_id(conn, room, id)?;
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

fn write(conn: &mut DbConnection, batch: &[WriteOp]) -> Result<(), DbError> {
    let mut new_rooms = Vec::new();
    let mut new_messages = Vec::new();
    // Deletions, edits and closings refer to rows this batch (or an earlier one)
    // inserts, so they run after the inserts, in their own order.
    let mut changes = Vec::new();
    for op in batch {
        match op {
            WriteOp::CreateRoom { name, created_at_ms, created_by, epoch, encryption } => new_rooms.push(NewRoom {
                name: name.as_str(),
                created_at: *created_at_ms,
                created_by: created_by.as_deref(),
                epoch,
                encryption: encryption.as_ref().map(|e| e.key.as_str()),
                key_salt: encryption.as_ref().map(|e| e.salt.as_str()),
            }),
            WriteOp::Message(m) => new_messages.push(NewMessage::from(&**m)),
            WriteOp::SetEpoch { .. }
            | WriteOp::Revise { .. }
            | WriteOp::KeepOut { .. }
            | WriteOp::LetIn { .. }
            | WriteOp::Moderation { .. } => changes.push(op),
            WriteOp::Barrier(_) => {}
        }
    }
    let marks = watermarks(batch);
    conn.transaction(|conn| {
        rooms::insert_all(conn, &new_rooms)?;
        messages::insert_all(conn, &new_messages)?;
        for (room, id) in &marks {
            rooms::raise_last_id(conn, room.as_str(), *id)?;
        }
        for op in changes {
            match op {
                WriteOp::SetEpoch { room, epoch } => rooms::set_epoch(conn, room.as_str(), epoch)?,
                WriteOp::Revise { room, id, revision } => revisions::write(conn, room.as_str(), *id, revision)?,
                WriteOp::KeepOut { room, name_key, user_name, targets, until_ms } => {
                    moderation::keep_out(conn, room.as_str(), name_key, user_name, targets, *until_ms)?
                }
                WriteOp::LetIn { room, name_key } => moderation::let_in(conn, room.as_str(), name_key)?,
                WriteOp::Moderation { change, audit } => {
                    // A deleted message is gone from the log: the audit
                    // entry keeps who wrote what, for the admins.
                    let removed = match change {
                        Change::DeleteMessage { room, id } => moderation::message_for_audit(conn, room.as_str(), *id)?,
                        _ => None,
                    };
                    apply(conn, change)?;
                    match removed {
                        Some(detail) => Audit { detail: Some(detail), ..audit.clone() }.write(conn)?,
                        None => audit.write(conn)?,
                    }
                }
                _ => 0,
            };
        }
        Ok::<_, diesel::result::Error>(())
    })?;
    Ok(())
}

fn apply(conn: &mut DbConnection, change: &Change) -> diesel::QueryResult<usize> {
    match change {
        Change::DeleteMessage { room, id } => moderation::delete_message(conn, room.as_str(), *id),
        Change::SetClosed { room, closed_at } => moderation::set_room_closed(conn, room.as_str(), *closed_at),
        Change::SetPrivate { room, private } => moderation::set_private(conn, room.as_str(), *private),
        Change::Mute { room, user_key, until_ms } => moderation::mute(conn, room.as_str(), user_key, *until_ms),
        Change::Invite { room, user_key, invited_by } => moderation::invite(
            conn,
            &moderation::NewInvite { room: room.as_str(), user_key, invited_by, created_at: now_ms() },
        ),
    }
}

/// For each room in the batch, its highest message id.
fn watermarks(batch: &[WriteOp]) -> Vec<(RoomName, i64)> {
    let mut highest: HashMap<&RoomName, i64> = HashMap::new();
    for op in batch {
        if let WriteOp::Message(m) = op {
            let id = highest.entry(&m.room).or_insert(m.id);
            *id = (*id).max(m.id);
        }
    }
    highest.into_iter().map(|(room, id)| (room.clone(), id)).collect()
}
