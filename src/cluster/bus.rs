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

use super::scripts::{INIT, SEND};
use super::wire::{Enforcement, Event, WireMessage};
use super::{redis_down, unreachable, Delivery, Inner, News};
use crate::clock::now_ms;
use crate::db;
use crate::db::chat_state::new_epoch;
use crate::domain::{ChatMessage, RoomName};
use crate::error::ChatError;

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
}

enum Command {
    Attach(RoomName),
    Fill { room: RoomName, after: i64 },
    Publish(Event),
}

/// The ChatServer's handle on the cluster.
#[derive(Clone)]
pub struct Link {
    sends: mpsc::UnboundedSender<Draft>,
    commands: mpsc::UnboundedSender<Command>,
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
    pub fn attach(&self, room: RoomName) {
        let _ = self.commands.send(Command::Attach(room));
    }

    /// Asks for the stream's messages after `after`; `News::Filled` answers.
    pub fn fill(&self, room: RoomName, after: i64) {
        let _ = self.commands.send(Command::Fill { room, after });
    }

    pub fn publish(&self, event: Event) {
        let _ = self.commands.send(Command::Publish(event));
    }
}

pub(super) fn spawn(inner: Arc<Inner>, news: Recipient<News>) -> Link {
    let (sends, send_rx) = mpsc::unbounded_channel();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let link = Link { sends, commands, in_flight: in_flight.clone(), node: inner.settings.node.as_str().into() };
    actix::spawn(mark_born(inner.clone()));
    actix::spawn(send_loop(inner.clone(), send_rx, news.clone(), in_flight));
    actix::spawn(command_loop(inner, command_rx, news));
    link
}

/// Records when Redis began keeping this cluster's rooms, unless it knows:
/// rooms created from now on are new to Redis when it has no record of
/// them, not lost by it. (Until this succeeds, such rooms start their ids
/// far up, which is harmless.)
async fn mark_born(inner: Arc<Inner>) {
    loop {
        let mut redis = inner.redis.clone();
        let set: redis::RedisResult<()> =
            redis::cmd("SET").arg(inner.keys.born()).arg(now_ms()).arg("NX").query_async(&mut redis).await;
        if set.is_ok() {
            return;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn command_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Command>, news: Recipient<News>) {
    while let Some(command) = rx.recv().await {
        let (inner, news) = (inner.clone(), news.clone());
        actix::spawn(async move {
            match command {
                Command::Attach(room) => {
                    let result = attach(&inner, &room).await;
                    news.do_send(News::Attached { room, result });
                }
                Command::Fill { room, after } => {
                    let result = read_after(&inner, &room, after, FILL_COUNT).await;
                    news.do_send(News::Filled { room, result });
                }
                Command::Publish(event) => {
                    let mut redis = inner.redis.clone();
                    let mut pipe = redis::pipe();
                    if let Event::Enforce { enforcement: Enforcement::Delete { room, id }, .. } = &event {
                        // Gone from the stream too, so no node serves it as history.
                        if let Ok(room) = RoomName::parse(room) {
                            pipe.xdel(inner.keys.log(&room), &[format!("{id}-0")]).ignore();
                        }
                    }
                    if let Event::Presence { room, session, member, node } = &event {
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
                    pipe.publish(inner.keys.events_channel(), event.encode()).ignore();
                    if let Err(e) = pipe.query_async::<()>(&mut redis).await {
                        unreachable(e);
                    }
                }
            }
        });
    }
}

async fn send_loop(
    inner: Arc<Inner>,
    mut rx: mpsc::UnboundedReceiver<Draft>,
    news: Recipient<News>,
    in_flight: Arc<AtomicUsize>,
) {
    let mut queue: VecDeque<Draft> = VecDeque::new();
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
        let batch: Vec<Draft> = queue.drain(..queue.len().min(MAX_BATCH)).collect();
        let outcomes = send_batch(&inner, &batch).await;
        let mut again = Vec::new();
        let mut to_init: Vec<RoomName> = Vec::new();
        for (draft, outcome) in batch.into_iter().zip(outcomes) {
            let result = match outcome {
                Outcome::Numbered(id, epoch) => Ok(numbered(&draft, id, epoch)),
                Outcome::Failed(e) => Err(e),
                Outcome::Again { unknown_room } => {
                    if unknown_room && !to_init.contains(&draft.message.room) {
                        to_init.push(draft.message.room.clone());
                    }
                    again.push(draft);
                    continue;
                }
            };
            in_flight.fetch_sub(1, Ordering::Relaxed);
            news.do_send(News::Sent { ticket: draft.ticket, room: draft.message.room.clone(), result });
        }
        let mut failed_rooms: HashMap<RoomName, String> = HashMap::new();
        for room in to_init {
            if let Err(e) = init(&inner, &room).await {
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
    Numbered(i64, String),
    Failed(ChatError),
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
        pipe.cmd("EVALSHA")
            .arg(SEND.get_hash())
            .arg(4)
            .arg(keys.seq(room))
            .arg(keys.epoch(room))
            .arg(keys.log(room))
            .arg(keys.dirty())
            .arg(body)
            .arg(stream_len)
            .arg(&channel)
            .arg(room.as_str());
    }
    let replies: Vec<Value> = match pipe.query_async(&mut redis).await {
        Ok(replies) => replies,
        Err(e) => {
            unreachable(e);
            return batch.iter().map(|_| Outcome::Failed(redis_down())).collect();
        }
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut load_script = false;
    for reply in replies {
        outcomes.push(match reply {
            Value::Int(0) => Outcome::Again { unknown_room: true },
            Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::NoScript) => {
                load_script = true;
                Outcome::Again { unknown_room: false }
            }
            reply => match redis::from_redis_value::<(i64, String)>(reply) {
                Ok((id, epoch)) => Outcome::Numbered(id, epoch),
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
    }
}

fn numbered(draft: &Draft, id: i64, epoch: String) -> Delivery {
    let message = Arc::new(ChatMessage { id, ..(*draft.message).clone() });
    Delivery { message, epoch, sender: draft.sender }
}

/// The room's epoch and last id in Redis; a room Redis does not know begins
/// a run there.
async fn attach(inner: &Inner, room: &RoomName) -> Result<(String, i64), ChatError> {
    let mut redis = inner.redis.clone();
    let (epoch, seq): (Option<String>, Option<i64>) = redis::pipe()
        .get(inner.keys.epoch(room))
        .get(inner.keys.seq(room))
        .query_async(&mut redis)
        .await
        .map_err(unreachable)?;
    match epoch {
        Some(epoch) => Ok((epoch, seq.unwrap_or(0))),
        None => init(inner, room).await,
    }
}

/// Begins the room's run in Redis (unless another node just did): a new
/// epoch, and ids after what the database has seen of it.
async fn init(inner: &Inner, room: &RoomName) -> Result<(String, i64), ChatError> {
    let name = room.clone();
    let saved = db::run(&inner.pool, move |conn| db::rooms::last_id_and_created(conn, name.as_str())).await?;
    let (last_id, created_at) = saved.unwrap_or((0, -1));
    let mut redis = inner.redis.clone();
    let (epoch, seq): (String, i64) = INIT
        .key(inner.keys.seq(room))
        .key(inner.keys.epoch(room))
        .key(inner.keys.born())
        .arg(new_epoch())
        .arg(last_id)
        .arg(created_at)
        .arg(now_ms())
        .invoke_async(&mut redis)
        .await
        .map_err(unreachable)?;
    if seq > last_id + 1_000_000 {
        log::warn!("room {room}: Redis had lost it; a new epoch, ids from {}", seq + 1);
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
        Ok(Delivery { message, epoch, sender })
    }
}
