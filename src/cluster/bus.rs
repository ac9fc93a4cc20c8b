//! What a node asks of Redis. Sends go out in the order the ChatServer made
//! them, as pipelines: while one pipeline is in flight the next collects
//! everything sent meanwhile, so a busy node makes one round trip for many
//! messages and a quiet one a round trip per message.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::prelude::*;
use redis::streams::StreamRangeReply;
use redis::{AsyncCommands, Value};
use tokio::sync::mpsc;

use super::scripts::{CLAIM, INIT, RESTARTED, SEND};
use super::wire::{encryption_tag, from_encryption_tag, Enforcement, Event, WireMessage};
use super::{redis_down, unreachable, Delivery, Inner, News};
use crate::db;
use crate::db::chat_state::new_epoch;
use crate::domain::{is_envelope, ChatMessage, Encryption, RoomName};
use crate::error::ChatError;

/// How far a room's ids jump when Redis lost it; see `init`.
const ID_JUMP: i64 = 1 << 32;
/// How long Redis remembers a nonce's id: far longer than a client takes
/// to reconnect and send again.
const NONCE_SECS: u64 = 300;
/// How long a publish that failed waits before going out again, at first
/// and at most.
const PUBLISH_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const PUBLISH_RETRY_LAST: std::time::Duration = std::time::Duration::from_secs(2);
/// Messages one pipeline carries at most.
const MAX_BATCH: usize = 512;
/// Sends waiting for Redis at most, beyond which senders are refused: a
/// Redis that cannot keep up slows no one's memory into the ground.
const MAX_IN_FLIGHT: usize = 50_000;
/// Messages one gap fill reads from a stream at most.
const FILL_COUNT: usize = 1000;

/// A message for Redis to number: `id` is not set yet.
pub struct Draft {
    pub ticket: u64,
    pub message: Arc<ChatMessage>,
    pub sender: Option<u64>,
    /// This node made the room and has not seen Redis number anything in
    /// it yet (see `init`).
    pub fresh_room: bool,
}

enum Command {
    /// `fresh`: the room was made on this node and Redis never had it.
    Attach {
        room: RoomName,
        fresh: bool,
    },
    Fill {
        room: RoomName,
        after: i64,
        ticket: u64,
    },
}

/// The ChatServer's handle on the cluster.
#[derive(Clone)]
pub struct Link {
    sends: mpsc::UnboundedSender<Draft>,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedSender<Event>,
    in_flight: Arc<AtomicUsize>,
    node: Arc<str>,
}

impl Link {
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Queues a message for numbering; `News::Sent` answers it.
    pub fn send(&self, draft: Draft) -> Result<(), ChatError> {
        if self.in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            return Err(ChatError::Unavailable("the cluster's Redis is behind; nothing was stored, try again".into()));
        }
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.sends.send(draft).map_err(|_| ChatError::Unavailable("the server is shutting down".into()))
    }

    /// Asks for the room's epoch and last id; `News::Attached` answers.
    /// `fresh`: this node made the room, so Redis cannot have lost it.
    pub fn attach(&self, room: RoomName, fresh: bool) {
        let _ = self.commands.send(Command::Attach { room, fresh });
    }

    /// Asks for the stream's messages after `after`; `News::Filled` answers,
    /// with the same ticket.
    pub fn fill(&self, room: RoomName, after: i64, ticket: u64) {
        let _ = self.commands.send(Command::Fill { room, after, ticket });
    }

    pub fn publish(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

pub(super) fn spawn(inner: Arc<Inner>, news: Recipient<News>) -> Link {
    let (sends, send_rx) = mpsc::unbounded_channel();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events, event_rx) = mpsc::unbounded_channel();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let node = inner.settings.node.as_str().into();
    let link = Link { sends, commands, events, in_flight: in_flight.clone(), node };
    actix::spawn(publish_loop(inner.clone(), event_rx));
    actix::spawn(send_loop(inner.clone(), send_rx, news.clone(), in_flight));
    actix::spawn(command_loop(inner, command_rx, news));
    link
}

/// Checks whether Redis restarted since a node last looked (see
/// `RESTARTED`); every node does on (re)subscribing, and before sending
/// again after a failure.
pub(super) async fn check_restart(inner: &Inner) -> Result<(), ChatError> {
    let mut redis = inner.redis.clone();
    let info: String = redis::cmd("INFO").arg("server").query_async(&mut redis).await.map_err(unreachable)?;
    let Some(run) = info.lines().find_map(|l| l.strip_prefix("run_id:")) else { return Ok(()) };
    let renewed: i64 = RESTARTED
        .key(inner.keys.redis_run())
        .arg(run.trim())
        .arg(inner.keys.all_epochs())
        .invoke_async(&mut redis)
        .await
        .map_err(unreachable)?;
    if renewed > 0 {
        log::warn!("redis restarted, maybe from an older snapshot: {renewed} rooms start a new epoch");
    }
    Ok(())
}

async fn command_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Command>, news: Recipient<News>) {
    while let Some(command) = rx.recv().await {
        let (inner, news) = (inner.clone(), news.clone());
        actix::spawn(async move {
            match command {
                Command::Attach { room, fresh } => {
                    let result = attach(&inner, &room, fresh).await;
                    news.do_send(News::Attached { room, result });
                }
                Command::Fill { room, after, ticket } => {
                    let result = read_after(&inner, &room, after, FILL_COUNT).await;
                    news.do_send(News::Filled { room, ticket, result });
                }
            }
        });
    }
}

/// Decisions and message changes kept for nodes that come back from a lost
/// subscription: far more than a few seconds' worth.
const EVENTS_KEPT: usize = 10_000;

/// Publishes events in the order they were made (a join before the leave
/// that follows it), as pipelines, each with the change to Redis's own
/// records that goes with it. While Redis is away they wait, in order, and
/// go out when it is back: an admin's decision made meanwhile still
/// reaches every node. (A pipeline cut off halfway goes out again whole;
/// every event means the same the second time.)
async fn publish_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Event>) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for event in &batch {
            record(&inner, &mut pipe, event);
            pipe.publish(inner.keys.events_channel(), event.encode()).ignore();
        }
        let mut wait = PUBLISH_RETRY_FIRST;
        loop {
            let mut redis = inner.redis.clone();
            match pipe.query_async::<()>(&mut redis).await {
                Ok(()) => break,
                Err(e) => {
                    unreachable(e);
                    actix_web::rt::time::sleep(wait).await;
                    wait = (wait * 2).min(PUBLISH_RETRY_LAST);
                }
            }
        }
        batch.clear();
    }
}

/// What Redis keeps of an event besides passing it on.
fn record(inner: &Inner, pipe: &mut redis::Pipeline, event: &Event) {
    if matches!(event, Event::Enforce { .. } | Event::Revised { .. }) {
        // Pub/sub keeps nothing for a node that is resubscribing right now.
        let cap = redis::streams::StreamMaxlen::Approx(EVENTS_KEPT);
        pipe.xadd_maxlen(inner.keys.events_log(), cap, "*", &[("e", event.encode())]).ignore();
    }
    match event {
        Event::Enforce { enforcement: Enforcement::Delete { room, id }, .. } => {
            // Gone from the stream too, so no node serves it as history.
            if let Ok(room) = RoomName::parse(room) {
                pipe.xdel(inner.keys.log(&room), &[format!("{id}-0")]).ignore();
            }
        }
        Event::Presence { room, session, member, node } => {
            let field = format!("{node}:{session}");
            match member {
                Some(entry) => {
                    let value = serde_json::to_string(entry).expect("roster entries serialize");
                    pipe.hset(inner.keys.members(room), field, value).ignore();
                    pipe.sadd(inner.keys.present(), room).ignore();
                    pipe.sadd(inner.keys.node_rooms(node), room).ignore();
                }
                None => {
                    pipe.hdel(inner.keys.members(room), field).ignore();
                }
            }
        }
        _ => {}
    }
}

async fn send_loop(
    inner: Arc<Inner>,
    mut rx: mpsc::UnboundedReceiver<Draft>,
    news: Recipient<News>,
    in_flight: Arc<AtomicUsize>,
) {
    let mut queue: VecDeque<Draft> = VecDeque::new();
    let mut recheck = true;
    loop {
        if queue.is_empty() {
            match rx.recv().await {
                Some(draft) => queue.push_back(draft),
                None => return,
            }
        }
        while queue.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(draft) => queue.push_back(draft),
                Err(_) => break,
            }
        }
        // Redis may have restarted (from an older snapshot) since a failure.
        let unchecked = recheck && check_restart(&inner).await.is_err();
        let batch: Vec<Draft> = queue.drain(..queue.len().min(MAX_BATCH)).collect();
        let outcomes = send_batch(&inner, &batch).await;
        recheck = unchecked || outcomes.iter().any(|o| matches!(o, Outcome::Failed(_)));
        let mut again = Vec::new();
        let mut to_init: Vec<(RoomName, bool)> = Vec::new();
        for (draft, outcome) in batch.into_iter().zip(outcomes) {
            let result = match outcome {
                Outcome::Numbered(id, epoch, resent) => Ok(numbered(&draft, id, epoch, resent)),
                Outcome::Failed(e) => Err(e),
                Outcome::NotEncrypted => Err(ChatError::EncryptionRequired(draft.message.room.to_string())),
                Outcome::Again { unknown_room } => {
                    if unknown_room && !to_init.iter().any(|(room, _)| *room == draft.message.room) {
                        to_init.push((draft.message.room.clone(), draft.fresh_room));
                    }
                    again.push(draft);
                    continue;
                }
            };
            in_flight.fetch_sub(1, Ordering::Relaxed);
            news.do_send(News::Sent { ticket: draft.ticket, room: draft.message.room.clone(), result });
        }
        let mut failed_rooms: HashMap<RoomName, String> = HashMap::new();
        for (room, fresh) in to_init {
            if let Err(e) = init(&inner, &room, fresh).await {
                failed_rooms.insert(room, e.to_string());
            }
        }
        // What was not done goes first next time, in its order.
        for draft in again.into_iter().rev() {
            if let Some(e) = failed_rooms.get(&draft.message.room) {
                in_flight.fetch_sub(1, Ordering::Relaxed);
                let result = Err(ChatError::Unavailable(e.clone()));
                news.do_send(News::Sent { ticket: draft.ticket, room: draft.message.room.clone(), result });
                continue;
            }
            queue.push_front(draft);
        }
    }
}

enum Outcome {
    /// Its id and epoch; `true` when the nonce had been numbered before.
    Numbered(i64, String, bool),
    Failed(ChatError),
    /// Readable text for a room Redis knows to be encrypted.
    NotEncrypted,
    /// Not done: the script was not loaded, or Redis does not know the room.
    Again {
        unknown_room: bool,
    },
}

async fn send_batch(inner: &Inner, batch: &[Draft]) -> Vec<Outcome> {
    let mut redis = inner.redis.clone();
    let keys = &inner.keys;
    let (stream_len, channel) = (inner.settings.stream_len, keys.messages_channel());
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for draft in batch {
        let room = &draft.message.room;
        let body = serde_json::to_string(&wire(&inner.settings.node, draft)).expect("messages serialize");
        let nonce = draft.message.nonce.as_deref().map(|n| keys.nonce(room, &draft.message.author, n));
        pipe.cmd("EVALSHA")
            .arg(SEND.get_hash())
            .arg(if nonce.is_some() { 6 } else { 5 })
            .arg(keys.seq(room))
            .arg(keys.epoch(room))
            .arg(keys.log(room))
            .arg(keys.dirty())
            .arg(keys.encryption(room))
            .arg(nonce)
            .arg(body)
            .arg(stream_len)
            .arg(&channel)
            .arg(room.as_str())
            .arg(NONCE_SECS)
            .arg(if is_envelope(&draft.message.text) { "1" } else { "0" });
    }
    let replies: Vec<Value> = match pipe.query_async(&mut redis).await {
        Ok(replies) => replies,
        Err(e) => {
            let timed_out = e.is_timeout();
            unreachable(e);
            let error = || if timed_out { unknown_outcome() } else { redis_down() };
            return batch.iter().map(|_| Outcome::Failed(error())).collect();
        }
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut load_script = false;
    for reply in replies {
        outcomes.push(match reply {
            Value::Int(0) => Outcome::Again { unknown_room: true },
            Value::Int(-1) => Outcome::NotEncrypted,
            Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::NoScript) => {
                load_script = true;
                Outcome::Again { unknown_room: false }
            }
            reply => match redis::from_redis_value::<(i64, String, i64)>(reply) {
                Ok((id, epoch, resent)) => Outcome::Numbered(id, epoch, resent == 1),
                Err(e) => Outcome::Failed(unreachable(redis::RedisError::from(e))),
            },
        });
    }
    if load_script {
        // Redis restarted: teach it the script again.
        if let Err(e) = SEND.load_async(&mut redis).await {
            unreachable(e);
            for outcome in &mut outcomes {
                if matches!(outcome, Outcome::Again { unknown_room: false }) {
                    *outcome = Outcome::Failed(redis_down());
                }
            }
        }
    }
    outcomes
}

fn wire(node: &str, draft: &Draft) -> WireMessage {
    let m = &draft.message;
    WireMessage {
        id: 0,
        epoch: String::new(),
        room: m.room.as_str().into(),
        author: m.author.to_string(),
        text: m.text.clone(),
        ts: m.created_at_ms,
        nonce: m.nonce.clone(),
        node: node.into(),
        session: draft.sender,
        owner: m.owner.as_deref().map(Into::into),
        reply_to: m.reply_to,
    }
}

fn numbered(draft: &Draft, id: i64, epoch: String, resent: bool) -> Delivery {
    let message = Arc::new(ChatMessage { id, ..(*draft.message).clone() });
    Delivery { message, epoch, sender: draft.sender, resent }
}

/// A send Redis may or may not have carried out: it did not answer in time.
fn unknown_outcome() -> ChatError {
    ChatError::Unavailable(
        "the cluster's Redis did not answer in time; the message may have been stored: send it again with the same \
         nonce, which stores it at most once"
            .into(),
    )
}

/// What a node needs to follow a room: its run of ids in Redis, and
/// whether it is encrypted, as Redis decided (this node may have heard of
/// the room only from a joining client, and taken it for a new, plain one).
#[derive(Debug)]
pub struct Attachment {
    pub epoch: String,
    pub last_id: i64,
    pub encryption: Option<Encryption>,
}

/// The room's epoch and last id in Redis (a room Redis does not know begins
/// a run there), and its encryption (a room nobody decided for yet is
/// plain from now on).
async fn attach(inner: &Inner, room: &RoomName, fresh: bool) -> Result<Attachment, ChatError> {
    let encryption = claim(inner, room, None).await?;
    let (epoch, last_id) = run_of(inner, room, fresh).await?;
    Ok(Attachment { epoch, last_id, encryption })
}

/// Whether `room` is encrypted, if Redis has it decided.
pub(super) async fn decided(inner: &Inner, room: &RoomName) -> Result<Option<Option<Encryption>>, ChatError> {
    let mut redis = inner.redis.clone();
    let tag: Option<String> = redis.get(inner.keys.encryption(room)).await.map_err(unreachable)?;
    Ok(tag.map(|tag| from_encryption_tag(&tag)))
}

/// Whether `room` is encrypted, decided once for the whole cluster: what
/// Redis holds, or else what the log has for the room, or else `proposal`.
/// (The log comes second so that a Redis that lost its data learns rooms
/// again as they were.)
pub(super) async fn claim(
    inner: &Inner,
    room: &RoomName,
    proposal: Option<Encryption>,
) -> Result<Option<Encryption>, ChatError> {
    if let Some(decided) = decided(inner, room).await? {
        return Ok(decided);
    }
    let name = room.clone();
    let logged = db::run(&inner.pool, move |conn| db::rooms::encryption_of(conn, name.as_str())).await?;
    let proposal = logged.unwrap_or(proposal);
    let mut redis = inner.redis.clone();
    let decided: String = CLAIM
        .key(inner.keys.encryption(room))
        .arg(encryption_tag(proposal.as_ref()))
        .invoke_async(&mut redis)
        .await
        .map_err(unreachable)?;
    Ok(from_encryption_tag(&decided))
}

async fn run_of(inner: &Inner, room: &RoomName, fresh: bool) -> Result<(String, i64), ChatError> {
    let mut redis = inner.redis.clone();
    let (epoch, seq): (Option<String>, Option<i64>) = redis::pipe()
        .get(inner.keys.epoch(room))
        .get(inner.keys.seq(room))
        .query_async(&mut redis)
        .await
        .map_err(unreachable)?;
    match epoch {
        Some(epoch) => Ok((epoch, seq.unwrap_or(0))),
        None => init(inner, room, fresh).await,
    }
}

/// Begins the room's run in Redis (unless another node just did): a new
/// epoch, and ids after what the database has seen of it. Unless the room
/// is brand new (made on this node, no messages in the log), Redis has
/// lost it (restarted empty, or from an older snapshot): ids it gave out
/// may still be on their way to the database, in some node's write queue,
/// so the new run starts 2^32 beyond the database's last id and none is
/// given out twice. 2^32 leaves room for two million such losses below
/// JavaScript's largest exact integer.
async fn init(inner: &Inner, room: &RoomName, fresh: bool) -> Result<(String, i64), ChatError> {
    // Redis may have lost whether the room is encrypted too: the log says.
    claim(inner, room, None).await?;
    let name = room.clone();
    let last_id = db::run(&inner.pool, move |conn| db::rooms::last_id(conn, name.as_str())).await?.unwrap_or(0);
    let start = if fresh && last_id == 0 { 0 } else { last_id + ID_JUMP };
    let mut redis = inner.redis.clone();
    let (epoch, seq): (String, i64) = INIT
        .key(inner.keys.seq(room))
        .key(inner.keys.epoch(room))
        .arg(new_epoch())
        .arg(start)
        .invoke_async(&mut redis)
        .await
        .map_err(unreachable)?;
    if start > 0 && seq == start {
        log::warn!("room {room}: Redis did not have it; a new epoch, ids from {}", seq + 1);
    }
    Ok((epoch, seq))
}

/// The stream's messages of `room` after `after`, oldest first.
pub(super) async fn read_after(
    inner: &Inner,
    room: &RoomName,
    after: i64,
    count: usize,
) -> Result<Vec<Delivery>, ChatError> {
    let mut redis = inner.redis.clone();
    let reply: StreamRangeReply =
        redis.xrange_count(inner.keys.log(room), format!("{}-0", after + 1), "+", count).await.map_err(unreachable)?;
    Ok(deliveries(inner, reply))
}

pub(super) fn deliveries(inner: &Inner, reply: StreamRangeReply) -> Vec<Delivery> {
    reply
        .ids
        .into_iter()
        .filter_map(|entry| {
            let raw: Vec<u8> = entry.get("m")?;
            let parsed = WireMessage::decode(&raw).and_then(|w| inner.delivery(w));
            parsed.inspect_err(|e| log::warn!("stream entry {}: {e}", entry.id)).ok()
        })
        .collect()
}

impl Inner {
    /// A message from Redis, with its sender when it is this node's.
    pub(super) fn delivery(&self, wire: WireMessage) -> Result<Delivery, ChatError> {
        let sender = if wire.node == self.settings.node { wire.session } else { None };
        let (message, epoch) = wire.into_message()?;
        Ok(Delivery { message, epoch, sender, resent: false })
    }
}
