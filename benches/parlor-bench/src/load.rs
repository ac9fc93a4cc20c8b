//! `fanout` and `saturate`: rooms of members over real WebSockets, some of
//! whom send; every member checks every message it receives.
//!
//! Each message's text is `pb <sender> <seq> <sent_ns>`, so a receiver
//! knows its end-to-end latency without asking anyone. A message counts as
//! accepted unless its sender gets an `error` carrying its nonce; an accepted
//! message is expected once at every member of its room (the sender
//! included), so loss is expected minus received after the queues drain.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use memchr::memmem;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant, MissedTickBehavior};

use crate::client::{http, Client};
use crate::server_metrics::ServerCounts;
use crate::stats::{now_ns, CpuMeter, CpuUse, Histogram, Watched};

#[derive(Clone, Debug)]
pub struct RoomsConfig {
    /// Members are spread over these, round robin: one server, or the
    /// nodes of a cluster.
    pub servers: Vec<SocketAddr>,
    pub watched: Watched,
    pub rooms: usize,
    pub members: usize,
    pub senders: usize,
    /// Connections opened (and joined) at a time while setting up.
    pub connect_batch: usize,
    /// Every message text padded to this many bytes (0: as short as it
    /// comes), so that plain and encrypted rooms compare at one size.
    pub text_bytes: usize,
    /// The rooms are end-to-end encrypted: made so over HTTP first, and
    /// every text is shaped as a ciphertext envelope (the server cannot
    /// tell; it checks the form only, which is what this measures).
    pub encrypted: bool,
}

/// How the generator's texts begin; what follows is `<sender> <seq>
/// <sent at ns>`, separated by `SEPARATOR`s, then padding.
const PLAIN_TEXT: &str = "pb ";
/// An envelope's `v1.` and IV; the "ciphertext" is base64url characters.
const ENVELOPE_TEXT: &str = "v1.AAAAAAAAAAAAAAAA.pb-";

/// How senders pace themselves.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// Open loop: `per_sec` messages per sender on a timer, whatever happens.
    Rate { per_sec: f64 },
    /// Closed loop: each sender keeps `window` messages in flight, sending
    /// the next when one of its own comes back (or is refused).
    Window { window: u32 },
}

/// The figures of one measured stretch at one load.
#[derive(Clone, Debug)]
pub struct Step {
    pub pace: Pace,
    pub seconds: f64,
    pub sent: u64,
    pub refused: u64,
    pub expected: u64,
    pub received: u64,
    pub deliveries_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Open loop: the 99th percentile of how late sends left against their
    /// schedule; more than a millisecond or so means the generator lagged.
    pub send_lag_p99_ms: f64,
    pub errors: BTreeMap<String, u64>,
    pub disconnects: u64,
    /// Messages a member got twice; never counted as received.
    pub duplicates: u64,
    pub cpu: CpuUse,
    /// What the server itself counted meanwhile, when it lets us read its
    /// `/metrics`.
    pub server: Option<ServerCounts>,
}

impl Step {
    pub fn loss(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    /// Server CPU time per delivery, in microseconds.
    pub fn server_us_per_delivery(&self) -> Option<f64> {
        let seconds = self.cpu.server_cpu_seconds?;
        (self.received > 0).then(|| seconds * 1e6 / self.received as f64)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Send,
    Stop,
}

#[derive(Default)]
struct Counters {
    sent: Cell<u64>,
    refused: Cell<u64>,
    /// Distinct messages received, counted per (member, sender, sequence):
    /// a duplicate cannot make up for a loss.
    received: Cell<u64>,
    /// Messages a member received again (a sequence it already had).
    duplicates: Cell<u64>,
    frames: Cell<u64>,
    joined: Cell<usize>,
    disconnects: Cell<u64>,
    /// When the last message frame arrived (`now_ns`).
    last_delivery_ns: Cell<u64>,
    errors: RefCell<BTreeMap<String, u64>>,
    latency: RefCell<Histogram>,
    /// Open loop: how late each send was against its schedule.
    send_lag: RefCell<Histogram>,
}

struct Shared {
    phase: Cell<Phase>,
    pace: Cell<Pace>,
    counters: Counters,
    message_prefix: memmem::Finder<'static>,
    text_bytes: usize,
    encrypted: bool,
}

/// Connected, joined rooms, ready to be driven at one load after another.
pub struct Rooms {
    config: RoomsConfig,
    shared: Rc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Rooms {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Rooms {
    /// Opens `rooms x members` connections and joins them, `connect_batch`
    /// at a time, then waits for the presence notices to die down.
    pub async fn set_up(config: RoomsConfig) -> io::Result<Rooms> {
        assert!(config.senders <= config.members, "senders are members of the room");
        let shared = Rc::new(Shared {
            phase: Cell::new(Phase::Setup),
            pace: Cell::new(Pace::Rate { per_sec: 1.0 }),
            counters: Counters::default(),
            message_prefix: memmem::Finder::new(
                format!(r#""text":"{}"#, if config.encrypted { ENVELOPE_TEXT } else { PLAIN_TEXT }).as_bytes(),
            )
            .into_owned(),
            text_bytes: config.text_bytes,
            encrypted: config.encrypted,
        });
        // Fresh room names each run, so earlier runs' history is not in
        // the way and runs against one server do not collide.
        let run = now_ns() ^ u64::from(std::process::id()) << 20;
        if config.encrypted {
            for room in 0..config.rooms {
                let body = format!(r#"{{"room":"bench-{run:x}-{room}","encryption":"link"}}"#);
                let request = format!(
                    "POST /create_room HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let (status, _, answer) = http(config.servers[0], None, request.as_bytes()).await?;
                if status != 201 || !answer.contains("aes-256-gcm") {
                    return Err(io::Error::other(format!("no encrypted room made: {status} {answer}")));
                }
            }
        }
        let total = config.rooms * config.members;
        let mut tasks = Vec::with_capacity(total);
        let mut member = 0;
        let batch = config.connect_batch.max(1);
        while member < total {
            let end = (member + batch).min(total);
            for index in member..end {
                let (room, seat) = (index % config.rooms, index / config.rooms);
                let connection = Connection {
                    room: format!("bench-{run:x}-{room}"),
                    name: format!("m{room}-{seat}"),
                    sender: (seat < config.senders).then_some((seat * config.rooms + room) as u32),
                    last_seq: RefCell::default(),
                    // Senders of all rooms take turns evenly: no two rooms'
                    // messages are sent in lockstep.
                    phase_offset: (seat * config.rooms + room) as f64 / (config.senders * config.rooms).max(1) as f64,
                };
                let server = config.servers[index % config.servers.len()];
                let client = Client::connect(server, None, 16 * 1024).await?;
                tasks.push(tokio::task::spawn_local(connection.run(client, shared.clone())));
            }
            wait_until(Duration::from_secs(60), || shared.counters.joined.get() >= end || disconnected(&shared))
                .await
                .map_err(|_| io::Error::other(format!("only {} of {end} joined", shared.counters.joined.get())))?;
            if disconnected(&shared) {
                return Err(io::Error::other("connections were closed while joining"));
            }
            member = end;
        }
        wait_for_quiet(&shared, Duration::from_millis(300), Duration::from_secs(60)).await;
        Ok(Rooms { config, shared, tasks })
    }

    /// Sends at `pace` for `seconds`, then stops and waits for every
    /// accepted message to arrive everywhere (or for the stream to go quiet).
    pub async fn run(&self, pace: Pace, seconds: f64) -> Step {
        let counters = &self.shared.counters;
        *counters.latency.borrow_mut() = Histogram::default();
        *counters.send_lag.borrow_mut() = Histogram::default();
        counters.errors.borrow_mut().clear();
        for cell in [&counters.sent, &counters.refused, &counters.received, &counters.duplicates, &counters.disconnects]
        {
            cell.set(0);
        }
        self.shared.pace.set(pace);
        let cpu = CpuMeter::start(&self.config.watched);
        let started_ns = now_ns();
        self.shared.phase.set(Phase::Send);
        sleep(Duration::from_secs_f64(seconds)).await;
        self.shared.phase.set(Phase::Stop);
        let members = self.config.members as u64;
        let expected = || counters.sent.get().saturating_sub(counters.refused.get()) * members;
        let _ = wait_until(Duration::from_secs(10), || counters.received.get() >= expected()).await;
        let cpu = cpu.read();
        // Late stragglers after a timeout are still in flight; let them land
        // before the next step.
        wait_for_quiet(&self.shared, Duration::from_millis(200), Duration::from_secs(5)).await;
        let latency = counters.latency.borrow();
        // Throughput over the time the deliveries took to arrive, not the
        // time spent sending: an overloaded server delivers late, and
        // dividing by the send time would credit it with the target rate.
        let delivering = (counters.last_delivery_ns.get().saturating_sub(started_ns) as f64 / 1e9).max(seconds);
        Step {
            pace,
            seconds,
            sent: counters.sent.get(),
            refused: counters.refused.get(),
            expected: expected(),
            received: latency.count(),
            deliveries_per_sec: latency.count() as f64 / delivering,
            p50_ms: latency.quantile_ms(0.50),
            p90_ms: latency.quantile_ms(0.90),
            p99_ms: latency.quantile_ms(0.99),
            max_ms: latency.max_ms(),
            send_lag_p99_ms: counters.send_lag.borrow().quantile_ms(0.99),
            errors: counters.errors.borrow().clone(),
            disconnects: counters.disconnects.get(),
            duplicates: counters.duplicates.get(),
            cpu,
            server: None,
        }
    }
}

fn disconnected(shared: &Shared) -> bool {
    shared.counters.disconnects.get() > 0
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Result<(), ()> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() >= deadline {
            return Err(());
        }
        sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Waits until no frame has arrived for `quiet`, at most `limit`.
async fn wait_for_quiet(shared: &Shared, quiet: Duration, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut last = shared.counters.frames.get();
    let mut still_since = Instant::now();
    while Instant::now() < deadline {
        sleep(Duration::from_millis(20)).await;
        let now = shared.counters.frames.get();
        if now != last {
            last = now;
            still_since = Instant::now();
        } else if still_since.elapsed() >= quiet {
            return;
        }
    }
}

struct Connection {
    room: String,
    name: String,
    /// The sender id written into message texts, for members who send.
    sender: Option<u32>,
    /// The highest sequence received from each sender.
    last_seq: RefCell<std::collections::HashMap<u32, u64>>,
    /// Where in the send period this sender starts, 0..1: the senders'
    /// starts are spread evenly over the period, so arrivals are steady
    /// (neither bursts of simultaneous sends nor idle gaps).
    phase_offset: f64,
}

/// What a frame meant for the connection that read it.
enum Seen {
    Nothing,
    /// One of this connection's own messages came back or was refused.
    OwnDone,
}

impl Connection {
    /// Runs the connection until it fails, which counts as a disconnect.
    async fn run(self, client: Client, shared: Rc<Shared>) {
        if self.serve(client, &shared).await.is_err() {
            shared.counters.disconnects.set(shared.counters.disconnects.get() + 1);
        }
    }

    async fn serve(&self, mut client: Client, shared: &Shared) -> io::Result<()> {
        let counters = &shared.counters;
        let join = format!(r#"{{"type":"join_room","room":"{}","name":"{}"}}"#, self.room, self.name);
        client.send_text(join.as_bytes()).await?;
        let mut out = String::with_capacity(160);
        let mut seq = 0u64;
        let mut in_flight = 0u32;
        let mut ticker: Option<(tokio::time::Interval, f64)> = None;
        loop {
            let mut done = 0u32;
            client
                .handle_frames(|text| {
                    counters.frames.set(counters.frames.get() + 1);
                    if let Seen::OwnDone = self.on_text(text, shared) {
                        done += 1;
                    }
                })
                .await?;
            in_flight = in_flight.saturating_sub(done);
            let Some(sender) = self.sender else {
                client.read_more().await?;
                continue;
            };
            let sending = shared.phase.get() == Phase::Send;
            let pace = shared.pace.get();
            // Closed loop: top the window up whenever something came back.
            if let (true, Pace::Window { window }) = (sending, pace) {
                while in_flight < window {
                    self.send(&mut client, &mut out, sender, &mut seq, now_ns(), shared).await?;
                    in_flight += 1;
                }
            }
            if !sending {
                in_flight = 0;
                ticker = None;
            }
            let period = match (sending, pace) {
                (true, Pace::Rate { per_sec }) => 1.0 / per_sec,
                // A closed-loop sender wakes now and then to start or to
                // recover a window lost to a disconnect.
                _ => 0.005,
            };
            let tick = ticker.get_or_insert_with(|| {
                let first = Instant::now() + Duration::from_secs_f64(period * self.phase_offset);
                let mut interval = tokio::time::interval_at(first, Duration::from_secs_f64(period));
                interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
                (interval, period)
            });
            if tick.1 != period {
                ticker = None;
                continue;
            }
            tokio::select! {
                read = client.read_more() => read?,
                scheduled = tick.0.tick() => {
                    if let (true, Pace::Rate { .. }) = (sending, pace) {
                        // Latency runs from the actual send; how late the
                        // generator was against its schedule is reported on
                        // its own (send lag), so a lagging generator shows
                        // instead of hiding as lower load.
                        let now = now_ns();
                        let due = crate::stats::ns_at(scheduled.into_std());
                        counters.send_lag.borrow_mut().record(now.saturating_sub(due));
                        self.send(&mut client, &mut out, sender, &mut seq, now, shared).await?;
                    }
                }
            }
        }
    }

    async fn send(
        &self,
        client: &mut Client,
        out: &mut String,
        sender: u32,
        seq: &mut u64,
        stamp_ns: u64,
        shared: &Shared,
    ) -> io::Result<()> {
        *seq += 1;
        out.clear();
        let _ = write!(out, r#"{{"type":"send_message","room":"{}","text":""#, self.room);
        let text_start = out.len();
        let _ = if shared.encrypted {
            write!(out, "{ENVELOPE_TEXT}{sender}-{seq}-{stamp_ns}-")
        } else {
            write!(out, "{PLAIN_TEXT}{sender} {seq} {stamp_ns} ")
        };
        let pad = shared.text_bytes.saturating_sub(out.len() - text_start);
        out.extend(std::iter::repeat_n('x', pad));
        let ciphertext_len = || out.len() - text_start - "v1.AAAAAAAAAAAAAAAA.".len();
        if shared.encrypted && ciphertext_len() % 4 == 1 {
            // No base64 is 4n+1 characters long: the server would refuse it.
            out.push('x');
        }
        let _ = write!(out, r#"","nonce":"{seq}"}}"#);
        client.send_text(out.as_bytes()).await?;
        shared.counters.sent.set(shared.counters.sent.get() + 1);
        Ok(())
    }

    fn on_text(&self, text: &[u8], shared: &Shared) -> Seen {
        let counters = &shared.counters;
        let kind = crate::client::frame_type(text);
        if kind == b"message" {
            let Some(at) = shared.message_prefix.find(text) else { return Seen::Nothing };
            let mut fields =
                text[at + shared.message_prefix.needle().len()..].split(|&b| b == b' ' || b == b'-' || b == b'"');
            let (Some(sender), Some(seq), Some(sent_ns)) = (fields.next(), fields.next(), fields.next()) else {
                return Seen::Nothing;
            };
            let (Some(sender), Some(seq), Some(sent_ns)) = (parse_u64(sender), parse_u64(seq), parse_u64(sent_ns))
            else {
                return Seen::Nothing;
            };
            // One room, one order: each sender's messages arrive in sequence.
            let mut last_seq = self.last_seq.borrow_mut();
            let last = last_seq.entry(sender as u32).or_insert(0);
            if seq <= *last {
                counters.duplicates.set(counters.duplicates.get() + 1);
                return Seen::Nothing;
            }
            *last = seq;
            let now = now_ns();
            counters.latency.borrow_mut().record(now.saturating_sub(sent_ns));
            counters.received.set(counters.received.get() + 1);
            counters.last_delivery_ns.set(now);
            if self.sender == Some(sender as u32) {
                return Seen::OwnDone;
            }
        } else if kind == b"error" {
            let code = field(text, br#""code":""#).unwrap_or("unknown").to_string();
            *counters.errors.borrow_mut().entry(code).or_default() += 1;
            if field(text, br#""nonce":""#).is_some() {
                counters.refused.set(counters.refused.get() + 1);
                return Seen::OwnDone;
            }
        } else if kind == b"joined" {
            counters.joined.set(counters.joined.get() + 1);
        }
        Seen::Nothing
    }
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The string value after `key` (which ends with the opening quote); only
/// for values without escapes, as Parlor's codes and our nonces are.
fn field<'a>(text: &'a [u8], key: &[u8]) -> Option<&'a str> {
    let start = memmem::find(text, key)? + key.len();
    let len = memchr::memchr(b'"', &text[start..])?;
    std::str::from_utf8(&text[start..start + len]).ok()
}
