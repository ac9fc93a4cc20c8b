//! How many messages one Redis numbers, keeps and publishes per second: the
//! cluster's send path (`parlor::cluster`: the send script, pipelined),
//! driven as fast as it answers, with Redis's own CPU beside it.
//!
//!     cargo bench --bench redis_path
//!     cargo bench --bench redis_path -- --redis redis://127.0.0.1:6379 --messages 200000 --rooms 200
//!
//! Every answer is checked: each message gets an id, no id twice in a room,
//! and each room's ids run on from its first message's with no gap (zero
//! loss).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use parlor::cluster::{Cluster, ClusterSettings, Draft, News};
use parlor::db::{self, DatabaseUrl};
use parlor::domain::{ChatMessage, RoomName};

struct Options {
    redis: String,
    messages: usize,
    rooms: usize,
}

fn options() -> Options {
    let mut opts = Options { redis: "redis://127.0.0.1:6379".into(), messages: 200_000, rooms: 200 };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().cloned().unwrap_or_default();
        match arg.as_str() {
            "--redis" => opts.redis = value,
            "--messages" => opts.messages = value.parse().expect("a number of messages"),
            "--rooms" => opts.rooms = value.parse().expect("a number of rooms"),
            other => panic!("unknown option {other}"),
        }
    }
    opts
}

/// Collects the answers: per room, the ids given out.
struct Answers {
    ids: HashMap<RoomName, Vec<i64>>,
    errors: usize,
    want: usize,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Actor for Answers {
    type Context = Context<Self>;
}

impl Handler<News> for Answers {
    type Result = ();

    fn handle(&mut self, news: News, _: &mut Context<Self>) {
        if let News::Sent { room, result, .. } = news {
            match result {
                Ok(delivery) => self.ids.entry(room).or_default().push(delivery.message.id),
                Err(_) => self.errors += 1,
            }
            if self.ids.values().map(Vec::len).sum::<usize>() + self.errors == self.want {
                if let Some(done) = self.done.take() {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// The answers so far, handed over (and forgotten here).
#[derive(Message)]
#[rtype(result = "(HashMap<RoomName, Vec<i64>>, usize)")]
struct Take;

/// Says when `want` answers have come, counting from now.
#[derive(Message)]
#[rtype(result = "()")]
struct Arm(tokio::sync::oneshot::Sender<()>);

impl Handler<Arm> for Answers {
    type Result = ();

    fn handle(&mut self, arm: Arm, _: &mut Context<Self>) {
        self.done = Some(arm.0);
    }
}

/// How many answers came so far.
#[derive(Message)]
#[rtype(result = "usize")]
struct Count;

impl Handler<Count> for Answers {
    type Result = usize;

    fn handle(&mut self, _: Count, _: &mut Context<Self>) -> usize {
        self.ids.values().map(Vec::len).sum::<usize>() + self.errors
    }
}

impl Handler<Take> for Answers {
    type Result = MessageResult<Take>;

    fn handle(&mut self, _: Take, _: &mut Context<Self>) -> Self::Result {
        MessageResult((std::mem::take(&mut self.ids), self.errors))
    }
}

/// Redis's CPU seconds so far, from its own process id.
async fn redis_cpu_seconds(url: &str) -> Option<(u32, f64)> {
    let client = redis::Client::open(url).ok()?;
    let mut conn = client.get_multiplexed_async_connection().await.ok()?;
    let info: String = redis::cmd("INFO").arg("server").query_async(&mut conn).await.ok()?;
    let pid: u32 = info.lines().find_map(|l| l.strip_prefix("process_id:"))?.trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().ok()? + fields[12].parse::<f64>().ok()?;
    Some((pid, ticks / 100.0))
}

#[actix::main]
async fn main() {
    let opts = options();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let url: DatabaseUrl = format!("sqlite://{}", dir.path().join("bench.db").display()).parse().unwrap();
    let pool = db::connect(&url, 2, Duration::from_secs(5)).expect("the database opens");
    let prefix = format!("bench-{}-{}:", std::process::id(), parlor::clock::now_ms());
    let settings = ClusterSettings { redis_url: opts.redis.clone(), prefix, stream_len: 1000, node: "bench".into() };
    let cluster = Cluster::new(settings, pool).expect("a valid Redis URL");
    let (done, finished) = tokio::sync::oneshot::channel();
    let answers = Answers { ids: HashMap::new(), errors: 0, want: opts.messages, done: None }.start();
    let link = cluster.start(answers.clone().recipient());
    let rooms: Vec<RoomName> = (0..opts.rooms).map(|i| RoomName::parse(&format!("r{i}")).unwrap()).collect();
    let message = |i: usize| {
        Arc::new(ChatMessage::new(
            rooms[i % rooms.len()].clone(),
            0,
            Arc::from("bench"),
            format!("message {i} of the Redis path benchmark"),
            parlor::clock::now_ms(),
        ))
    };
    // Rooms first, so that their set-up is not in the figures.
    for (i, _) in rooms.iter().enumerate() {
        link.send(Draft { ticket: i as u64, message: message(i), sender: None, fresh_room: false }).unwrap();
    }
    while answers.send(Count).await.unwrap() < rooms.len() {
        actix::clock::sleep(Duration::from_millis(10)).await;
    }
    let (warm, errors) = answers.send(Take).await.unwrap();
    assert_eq!((warm.len(), errors), (rooms.len(), 0), "every room set up");

    answers.send(Arm(done)).await.unwrap();
    let cpu_before = redis_cpu_seconds(&opts.redis).await;
    let start = Instant::now();
    for i in 0..opts.messages {
        // Refused only when too many wait for Redis: wait, then go on.
        while link.send(Draft { ticket: i as u64, message: message(i), sender: None, fresh_room: false }).is_err() {
            actix::clock::sleep(Duration::from_millis(1)).await;
        }
        if i % 4096 == 0 {
            // Let the bus and the answers run.
            actix::clock::sleep(Duration::ZERO).await;
        }
    }
    finished.await.expect("every message answered");
    let seconds = start.elapsed().as_secs_f64();
    let cpu_after = redis_cpu_seconds(&opts.redis).await;
    let (ids, errors) = answers.send(Take).await.unwrap();
    let mut gaps = 0;
    for (room, room_ids) in &ids {
        let mut sorted = room_ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        // The ids after the room's warm-up message, each once.
        let first = warm[room][0] + 1;
        let expected: Vec<i64> = (first..first + room_ids.len() as i64).collect();
        if sorted != expected {
            gaps += 1;
        }
    }
    println!("redis path: {} messages in {} rooms, numbered, kept and published", opts.messages, opts.rooms);
    println!(
        "  {:.0} messages/s ({seconds:.2} s), refused {errors}, rooms with a gap or a repeat {gaps}",
        opts.messages as f64 / seconds
    );
    match (cpu_before, cpu_after) {
        (Some((pid, before)), Some((_, after))) => {
            println!("  redis-server (pid {pid}): {:.0}% of a core", (after - before) / seconds * 100.0)
        }
        _ => println!("  redis-server CPU: not readable (is Redis on this machine?)"),
    }
    // Leave the shared Redis as it was.
    let client = redis::Client::open(opts.redis.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}*", cluster.prefix());
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.unwrap_or_default();
    for chunk in keys.chunks(1000) {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
    }
    System::current().stop();
}
