//! How fast the message log persists, per backend, and whether it keeps up
//! with the chat.
//!
//!     cargo bench --bench message_log --features postgres,mysql
//!     cargo bench --bench message_log -- --backends sqlite --messages 50000
//!
//! For each backend it measures, on a fresh database:
//! - `batched`: the writer thread (group commits) fed as fast as it takes
//!   messages: persisted messages/s;
//! - `durable`: the same writer fed at a steady rate: time from handing a
//!   message to the writer until its commit is reported, p50/p99/max;
//! - `single`: one INSERT (one commit) per message: persisted messages/s.
//!
//! Then `chat`: Parlor itself on SQLite, clients sending as fast as the
//! server accepts over real WebSockets, which is the rate the log must keep
//! up with (any `unavailable` answer would mean it did not).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use futures_util::{SinkExt, StreamExt};
use parlor::db::writer::{self, WriteOp};
use parlor::db::{self, Backend, DatabaseUrl};
use parlor::domain::{ChatMessage, RoomName};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

struct Options {
    backends: Vec<Backend>,
    messages: usize,
    single: usize,
    rate: f64,
    chat_secs: u64,
}

fn options() -> Options {
    let mut opts = Options {
        backends: [Backend::Sqlite, Backend::Postgres, Backend::Mysql]
            .into_iter()
            .filter(|b| b.compiled_in())
            .collect(),
        messages: 30_000,
        single: 2_000,
        rate: 5_000.0,
        chat_secs: 5,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_default();
        match arg.as_str() {
            "--backends" => {
                opts.backends = value()
                    .split(',')
                    .map(|b| match b {
                        "sqlite" => Backend::Sqlite,
                        "postgres" => Backend::Postgres,
                        "mysql" => Backend::Mysql,
                        other => panic!("unknown backend {other}"),
                    })
                    .collect()
            }
            "--messages" => opts.messages = value().parse().expect("--messages N"),
            "--single" => opts.single = value().parse().expect("--single N"),
            "--rate" => opts.rate = value().parse().expect("--rate MSGS_PER_SEC"),
            "--chat-secs" => opts.chat_secs = value().parse().expect("--chat-secs N"),
            _ => {} // cargo bench passes --bench
        }
    }
    opts
}

/// A fresh database for one backend, removed afterwards.
struct BenchDb {
    url: String,
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl BenchDb {
    fn create(backend: Backend) -> Result<Self, String> {
        let admin = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                return Ok(Self { url, cleanup: None, _dir: Some(dir) });
            }
            Backend::Postgres => std::env::var("PARLOR_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            Backend::Mysql => {
                std::env::var("PARLOR_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
            }
        };
        let parsed = DatabaseUrl::parse(&admin).map_err(|e| e.to_string())?;
        let mut conn = db::establish(&parsed).map_err(|e| format!("{} at {admin}: {e}", backend.label()))?;
        let name = format!("parlor_bench_{}", std::process::id());
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"))
            .or_else(|_| {
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))?;
                conn.batch_execute(&format!("CREATE DATABASE {name}"))
            })
            .map_err(|e| e.to_string())?;
        let (base, _) = admin.rsplit_once('/').unwrap();
        Ok(Self { url: format!("{base}/{name}"), cleanup: Some((admin, name)), _dir: None })
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.cleanup {
            if let Ok(mut conn) = db::establish(&DatabaseUrl::parse(admin).unwrap()) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"));
            }
        }
    }
}

fn message(room: &RoomName, id: i64) -> Arc<ChatMessage> {
    Arc::new(ChatMessage::new(
        room.clone(),
        id,
        "bench".into(),
        format!("message {id}: the quick brown fox jumps over the lazy dog"),
        parlor::clock::now_ms(),
    ))
}

struct WriterRun {
    per_sec: f64,
    latencies: Vec<Duration>,
}

/// Feeds `count` messages to the writer, at `rate` per second (or as fast as
/// it takes them when `None`), and times each until its commit is reported.
fn run_writer(url: &DatabaseUrl, room: &str, count: usize, rate: Option<f64>) -> WriterRun {
    let room = RoomName::parse(room).unwrap();
    let marks: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let sink = marks.clone();
    let metrics = Arc::new(parlor::metrics::Metrics::new());
    let (tx, handle) = writer::spawn(url.clone(), 10_000, metrics, move |committed: writer::Committed| {
        let now = Instant::now();
        let mut sink = sink.lock().unwrap();
        sink.extend(committed.watermarks.into_iter().map(|(_, id)| (now, id)));
    });
    let epoch = "bench".to_string();
    tx.send(WriteOp::CreateRoom { name: room.clone(), created_at_ms: 0, created_by: None, epoch, encryption: None })
        .unwrap();
    let mut sent_at = Vec::with_capacity(count);
    let start = Instant::now();
    for i in 0..count {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            while Instant::now() < due {
                std::thread::sleep(due - Instant::now());
            }
        }
        sent_at.push(Instant::now());
        tx.send(WriteOp::Message(message(&room, i as i64 + 1))).unwrap();
    }
    drop(tx);
    handle.join().unwrap();
    let marks = marks.lock().unwrap();
    let end = marks.last().map_or(start, |m| m.0);
    let mut latencies = Vec::with_capacity(count);
    let mut mark = marks.iter().peekable();
    for (i, sent) in sent_at.iter().enumerate() {
        while mark.peek().is_some_and(|(_, id)| *id < i as i64 + 1) {
            mark.next();
        }
        let (durable, _) = mark.peek().expect("every message is reported durable");
        latencies.push(*durable - *sent);
    }
    WriterRun { per_sec: count as f64 / (end - start).as_secs_f64(), latencies }
}

fn single_inserts(pool: &db::DbPool, count: usize) -> f64 {
    let room = RoomName::parse("single").unwrap();
    let mut conn = pool.get().unwrap();
    let start = Instant::now();
    for i in 0..count {
        let m = message(&room, i as i64 + 1);
        db::messages::insert_all(&mut conn, &[db::messages::NewMessage::from(&*m)]).unwrap();
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Parlor on SQLite: `senders` clients in one room of `members`, each keeping
/// `window` messages in flight, for `secs`. Returns accepted messages/s,
/// deliveries/s (accepted x members) and how many sends were refused as
/// `unavailable`.
fn chat_throughput(secs: u64, members: usize, senders: usize, window: usize) -> (f64, f64, usize) {
    actix_web::rt::System::new().block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = parlor::configuration::Settings::defaults();
        settings.bind = "127.0.0.1:0".into();
        settings.database_url =
            DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("chat.db").display())).unwrap();
        settings.rate_per_sec = 0.0;
        settings.workers = Some(1);
        let app = parlor::startup::Application::build(settings).unwrap();
        let url = format!("ws://{}/ws", app.address());

        let mut listeners = Vec::new();
        for i in 0..members - senders {
            let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
            let join = json!({"type": "join_room", "room": "bench", "name": format!("l{i}")});
            ws.send(Message::Text(join.to_string())).await.unwrap();
            listeners.push(ws);
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for s in 0..senders {
            let url = url.clone();
            tasks.push(actix_web::rt::spawn(async move {
                let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
                let (mut tx, mut rx) = ws.split();
                let join = json!({"type": "join_room", "room": "bench", "name": format!("s{s}")});
                tx.send(Message::Text(join.to_string())).await.unwrap();
                let (mut in_flight, mut accepted, mut refused, mut seq) = (0usize, 0usize, 0usize, 0u64);
                let mine = format!("\"nonce\":\"s{s}-");
                while Instant::now() < deadline {
                    while in_flight < window {
                        // Every nonce is new: a repeated one would be a resend.
                        seq += 1;
                        let nonce = format!("s{s}-{seq}");
                        let send =
                            json!({"type": "send_message", "room": "bench", "text": "hello there", "nonce": nonce});
                        tx.send(Message::Text(send.to_string())).await.unwrap();
                        in_flight += 1;
                    }
                    let Some(Ok(Message::Text(frame))) = rx.next().await else { break };
                    // Our own copies carry our nonce; others' do not.
                    if frame.contains(&mine) {
                        in_flight -= 1;
                        if frame.starts_with("{\"type\":\"error\"") {
                            refused += 1;
                        } else {
                            accepted += 1;
                        }
                    }
                }
                (accepted, refused)
            }));
        }
        // Listeners must read too, or they become slow consumers.
        let until = deadline + Duration::from_millis(200);
        let drains: Vec<_> = listeners
            .into_iter()
            .map(|mut ws| {
                actix_web::rt::spawn(async move {
                    let mut frames = 0usize;
                    while let Ok(Some(Ok(_))) =
                        tokio::time::timeout(until.saturating_duration_since(Instant::now()), ws.next()).await
                    {
                        frames += 1;
                    }
                    frames
                })
            })
            .collect();
        let started = Instant::now();
        let (mut accepted, mut refused) = (0, 0);
        for t in tasks {
            let (a, r) = t.await.unwrap();
            accepted += a;
            refused += r;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut received = 0;
        for drain in drains {
            received += drain.await.unwrap();
        }
        app.stop().await;
        let per_sec = accepted as f64 / elapsed;
        let listeners = members - senders;
        // Each listener also got a `joined` and the senders' presence notices.
        let expected = accepted * listeners;
        println!("  listeners received {received} frames for {expected} messages sent to them");
        (per_sec, per_sec * members as f64, refused)
    })
}

fn main() {
    let opts = options();
    println!("message log benchmark: {} messages per run\n", opts.messages);
    println!(
        "{:<14} {:>16} {:>16} {:>10} {:>10} {:>10} {:>10}",
        "backend", "batched msg/s", "single msg/s", "ratio", "p50", "p99", "max"
    );
    let mut slowest_batched = f64::INFINITY;
    for backend in &opts.backends {
        let bench_db = match BenchDb::create(*backend) {
            Ok(db) => db,
            Err(e) => {
                println!("{:<14} skipped: {e}", backend.label());
                continue;
            }
        };
        let pool = db::connect(&DatabaseUrl::parse(&bench_db.url).unwrap(), 4, Duration::from_secs(5)).unwrap();
        let url = DatabaseUrl::parse(&bench_db.url).unwrap();
        let batched = run_writer(&url, "batched", opts.messages, None);
        let durable_count = (opts.rate * 3.0) as usize;
        let mut paced = run_writer(&url, "paced", durable_count, Some(opts.rate));
        paced.latencies.sort();
        let single = single_inserts(&pool, opts.single);
        slowest_batched = slowest_batched.min(batched.per_sec);
        println!(
            "{:<14} {:>16.0} {:>16.0} {:>9.1}x {:>10} {:>10} {:>10}",
            backend.label(),
            batched.per_sec,
            single,
            batched.per_sec / single,
            ms(percentile(&paced.latencies, 0.50)),
            ms(percentile(&paced.latencies, 0.99)),
            ms(*paced.latencies.last().unwrap()),
        );
        println!("{:<14} (durable latencies at a steady {:.0} msg/s over {durable_count} messages)", "", opts.rate);
    }

    println!("\nchat on SQLite, 1 room x 20 members, 4 senders with 32 messages in flight each, {} s:", opts.chat_secs);
    let (accepted, deliveries, refused) = chat_throughput(opts.chat_secs, 20, 4, 32);
    println!("  accepted {accepted:.0} msg/s ({deliveries:.0} deliveries/s), refused as unavailable: {refused}");
    if slowest_batched.is_finite() {
        println!("  slowest backend's batched log rate / chat rate: {:.1}x", slowest_batched / accepted);
    }
}
