//! `parlor-bench`: drives a running Parlor server over loopback and reports
//! deliveries per second, loss, latency, CPU and memory. See the README's
//! "Performance" section for the standard set (`scripts/bench`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use parlor_bench::attacks::{self, JoinStormConfig, LoginFloodConfig};
use parlor_bench::conns::{self, ConnsConfig};
use parlor_bench::handshakes::{self, HandshakesConfig};
use parlor_bench::load::{Pace, Rooms, RoomsConfig, Step};
use parlor_bench::report;
use parlor_bench::server_metrics::{self, ServerCounts};
use parlor_bench::stats::Watched;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "parlor-bench", about = "Load generator for a running Parlor server")]
struct Cli {
    /// The server's address (its WebSocket is at /ws).
    #[arg(long, global = true, default_value = "127.0.0.1:8080")]
    server: SocketAddr,
    /// More nodes of the same cluster: the members of `fanout` and
    /// `saturate` are spread over `--server` and these, round robin.
    #[arg(long, global = true, value_delimiter = ',')]
    also_server: Vec<SocketAddr>,
    /// The server's process id (or every node's, comma-separated), to
    /// report its CPU use and memory.
    #[arg(long, global = true, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Redis's process id, to report its CPU use beside the nodes'.
    #[arg(long, global = true)]
    redis_pid: Option<u32>,
    /// Append the JSON line to this file too.
    #[arg(long, global = true)]
    json_out: Option<PathBuf>,
    /// Write an SVG of latency against load (for runs of several loads).
    #[arg(long, global = true)]
    plot: Option<PathBuf>,
    /// A name for this run in the JSON line.
    #[arg(long, global = true, default_value = "")]
    label: String,
    /// Connect over TLS (wss://, https://), trusting only the certificate
    /// authority in this PEM file; the server's certificate must name
    /// `localhost`.
    #[arg(long, global = true)]
    tls_ca: Option<PathBuf>,
    /// Connect as Socket.IO clients do on the WebSocket transport
    /// (`/socket.io/`, Engine.IO v4 and Socket.IO v5 packets) instead of
    /// the native protocol on `/ws`: the same load, the same frames, in
    /// Socket.IO's packets.
    #[arg(long, global = true)]
    socketio: bool,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(clap::Args)]
struct RoomArgs {
    #[arg(long, default_value_t = 1)]
    rooms: usize,
    /// Members per room, senders included.
    #[arg(long, default_value_t = 500)]
    members: usize,
    /// Senders per room.
    #[arg(long, default_value_t = 5)]
    senders: usize,
    /// Seconds of sending per load.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Connections opened and joined at a time during set-up.
    #[arg(long, default_value_t = 100)]
    connect_batch: usize,
    /// Pad every message text to this many bytes (0: as short as it comes).
    #[arg(long, default_value_t = 0)]
    text_bytes: usize,
    /// End-to-end encrypted rooms: texts shaped as ciphertext envelopes.
    #[arg(long)]
    encrypted: bool,
}

#[derive(Subcommand)]
enum Mode {
    /// Open loop: every sender sends at a fixed rate; several rates
    /// (comma-separated) are run one after another on the same rooms.
    Fanout {
        #[command(flatten)]
        rooms: RoomArgs,
        /// Messages per second per sender.
        #[arg(long, value_delimiter = ',', default_value = "20")]
        rate: Vec<f64>,
    },
    /// Closed loop: each sender keeps a window of messages in flight; the
    /// window grows step by step. Reports the highest deliveries/s with no
    /// loss and no disconnects.
    Saturate {
        #[command(flatten)]
        rooms: RoomArgs,
        /// Windows to step through (messages in flight per sender).
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
        windows: Vec<u32>,
    },
    /// TLS handshakes (with `--tls-ca`): new connections as fast as they
    /// complete, each a full handshake (no resumption), closed at once.
    /// Reports handshakes per second and per second of the server's core.
    Handshakes {
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Handshakes in progress at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Spread connections over 127.0.0.1 .. 127.0.0.N.
        #[arg(long, default_value_t = 8)]
        sources: u8,
    },
    /// A Markdown table of the JSON lines in a results file.
    Summary { file: PathBuf },
    /// Idle connections, held open: connect rate and server RSS per connection.
    Conns {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Spread connections over 127.0.0.1 .. 127.0.0.N.
        #[arg(long, default_value_t = 8)]
        sources: u8,
        /// Handshakes in progress at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Seconds to hold them before reading the server's memory.
        #[arg(long, default_value_t = 3.0)]
        hold: f64,
    },
    /// Idle Socket.IO clients on long-polling, held open: connect rate,
    /// server RSS per client, and server CPU while they are held (their
    /// pings and polls), as `conns` reports.
    Polling {
        #[arg(long, default_value_t = 1_000)]
        clients: usize,
        /// Spread clients over 127.0.0.1 .. 127.0.0.N.
        #[arg(long, default_value_t = 8)]
        sources: u8,
        /// Handshakes in progress at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Seconds to hold them (several ping intervals) before reading
        /// the server's memory.
        #[arg(long, default_value_t = 20.0)]
        hold: f64,
    },
    /// An attack: members who read everything sit in a room, then many
    /// connections join it at once. Reports members kept and join time.
    JoinStorm {
        #[arg(long, default_value_t = 50)]
        members: usize,
        #[arg(long, default_value_t = 1000)]
        joiners: usize,
        /// Spread the connections over 127.0.0.1 .. 127.0.0.N.
        #[arg(long, default_value_t = 8)]
        sources: u8,
    },
    /// An attack: many wrong logins at once, each address within its
    /// allowance. Reports answers, server memory and threads, and /healthz.
    LoginFlood {
        #[arg(long, default_value_t = 500)]
        attempts: usize,
        /// Spread the logins over 127.0.0.1 .. 127.0.0.N.
        #[arg(long, default_value_t = 25)]
        sources: u8,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Mode::Summary { file } = &cli.mode {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| {
            eprintln!("parlor-bench: cannot read {}: {e}", file.display());
            std::process::exit(1)
        });
        let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        print!("{}", report::summary(&lines));
        return;
    }
    if cli.socketio {
        parlor_bench::client::use_socketio();
    }
    if let Some(ca) = &cli.tls_ca {
        // Full handshakes only where they are what is measured; the other
        // modes connect each client once anyway.
        let resume = !matches!(cli.mode, Mode::Handshakes { .. });
        if let Err(e) = parlor_bench::client::use_tls(ca, resume) {
            eprintln!("parlor-bench: cannot use {} as the TLS authority: {e}", ca.display());
            std::process::exit(1);
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, run(&cli));
    match result {
        Ok(line) => {
            println!("{line}");
            if let Some(path) = &cli.json_out {
                let mut file =
                    std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the JSON file opens");
                writeln!(file, "{line}").expect("the JSON file is writable");
            }
        }
        Err(e) => {
            eprintln!("parlor-bench: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(cli: &Cli) -> std::io::Result<Value> {
    let base = |mode: &str| json!({"mode": mode, "label": cli.label, "server": cli.server.to_string()});
    match &cli.mode {
        Mode::Fanout { rooms, rate } => {
            let paces: Vec<Pace> = rate.iter().map(|&per_sec| Pace::Rate { per_sec }).collect();
            let steps = run_steps(cli, rooms, &paces).await?;
            let mut line = base("fanout");
            line["config"] = room_config(rooms);
            line["steps"] = steps.iter().map(report::step_json).collect();
            Ok(line)
        }
        Mode::Saturate { rooms, windows } => {
            let paces: Vec<Pace> = windows.iter().map(|&window| Pace::Window { window }).collect();
            let steps = run_steps(cli, rooms, &paces).await?;
            let best = steps
                .iter()
                .filter(|s| s.loss() == 0 && s.disconnects == 0)
                .max_by(|a, b| a.deliveries_per_sec.total_cmp(&b.deliveries_per_sec));
            match best {
                Some(s) => println!(
                    "best without loss: {:.0} deliveries/s ({:.0} messages/s) at p99 {:.3} ms (generator {:.0}% of its \
                     core, server {}, redis {})",
                    s.deliveries_per_sec,
                    s.deliveries_per_sec / rooms.members as f64,
                    s.p99_ms,
                    s.cpu.generator * 100.0,
                    s.cpu.server.map_or("-".into(), |c| format!("{:.0}% of a core", c * 100.0)),
                    s.cpu.redis.map_or("-".into(), |c| format!("{:.0}% of its core", c * 100.0)),
                ),
                None => println!("every step lost messages"),
            }
            let mut line = base("saturate");
            line["config"] = room_config(rooms);
            line["steps"] = steps.iter().map(report::step_json).collect();
            line["best"] = best.map_or(Value::Null, report::step_json);
            Ok(line)
        }
        Mode::Conns { connections: clients, sources, concurrency, hold }
        | Mode::Polling { clients, sources, concurrency, hold } => {
            let config = ConnsConfig {
                server: cli.server,
                server_pid: cli.server_pid.first().copied(),
                connections: *clients,
                sources: *sources,
                concurrency: *concurrency,
                hold_seconds: *hold,
            };
            let result = match cli.mode {
                Mode::Polling { .. } => parlor_bench::polling::run(config).await?,
                _ => conns::run(config).await?,
            };
            print!("{}", report::conns_table(&result));
            let mut line = base("conns");
            line["result"] = report::conns_json(&result);
            Ok(line)
        }
        Mode::JoinStorm { members, joiners, sources } => {
            let config = JoinStormConfig {
                server: cli.server,
                server_pid: cli.server_pid.first().copied(),
                members: *members,
                joiners: *joiners,
                sources: *sources,
            };
            let r = attacks::join_storm(config).await?;
            println!(
                "join storm    {} joined of {} in {:.2} s; members kept {} of {}; server CPU {}",
                r.joined,
                r.joiners,
                r.seconds,
                r.members_kept,
                r.members,
                r.cpu_server.map_or("-".into(), |c| format!("{:.0}%", c * 100.0)),
            );
            if let Some(e) = &r.first_failure {
                println!("first failure {e}");
            }
            let mut line = base("join-storm");
            line["result"] = json!({
                "members": r.members, "joiners": r.joiners, "members_kept": r.members_kept,
                "joined": r.joined, "seconds": r.seconds, "server_core_share": r.cpu_server,
            });
            Ok(line)
        }
        Mode::LoginFlood { attempts, sources } => {
            let config = LoginFloodConfig {
                server: cli.server,
                server_pid: cli.server_pid.first().copied(),
                attempts: *attempts,
                sources: *sources,
            };
            let result = attacks::login_flood(config).await?;
            print!("{}", report::login_flood_table(&result));
            let mut line = base("login-flood");
            line["result"] = report::login_flood_json(&result);
            Ok(line)
        }
        Mode::Handshakes { seconds, concurrency, sources } => {
            if cli.tls_ca.is_none() {
                return Err(std::io::Error::other("handshakes measures TLS: give --tls-ca"));
            }
            let config = HandshakesConfig {
                server: cli.server,
                server_pid: cli.server_pid.first().copied(),
                seconds: *seconds,
                concurrency: *concurrency,
                sources: *sources,
            };
            let r = handshakes::run(config).await?;
            let per_core = r.cpu.server.filter(|&c| c > 0.0).map(|c| r.per_sec / c);
            println!(
                "TLS handshakes {} in {:.1} s: {:.0}/s; server {} of a core, {} per second of its core; \
                 generator {:.0}% of its core; {} failed",
                r.handshakes,
                r.seconds,
                r.per_sec,
                r.cpu.server.map_or("-".into(), |c| format!("{:.0}%", c * 100.0)),
                per_core.map_or("-".into(), |n| format!("{n:.0}")),
                r.cpu.generator * 100.0,
                r.failures,
            );
            if let Some(e) = &r.first_failure {
                println!("first failure {e}");
            }
            let mut line = base("handshakes");
            line["result"] = json!({
                "handshakes": r.handshakes, "seconds": r.seconds, "per_sec": r.per_sec,
                "server_core_share": r.cpu.server, "per_server_core_sec": per_core, "failures": r.failures,
            });
            Ok(line)
        }
        Mode::Summary { .. } => unreachable!("handled before the runtime starts"),
    }
}

fn room_config(rooms: &RoomArgs) -> Value {
    json!({
        "rooms": rooms.rooms, "members": rooms.members, "senders_per_room": rooms.senders, "seconds": rooms.seconds,
        "text_bytes": rooms.text_bytes, "encrypted": rooms.encrypted, "tls": parlor_bench::client::tls_on(),
    })
}

async fn run_steps(cli: &Cli, args: &RoomArgs, paces: &[Pace]) -> std::io::Result<Vec<Step>> {
    let servers: Vec<SocketAddr> = std::iter::once(cli.server).chain(cli.also_server.iter().copied()).collect();
    let config = RoomsConfig {
        servers: servers.clone(),
        watched: Watched { servers: cli.server_pid.clone(), redis: cli.redis_pid },
        rooms: args.rooms,
        members: args.members,
        senders: args.senders,
        connect_batch: args.connect_batch,
        text_bytes: args.text_bytes,
        encrypted: args.encrypted,
    };
    eprintln!("setting up {} rooms x {} members ...", args.rooms, args.members);
    let rooms = Rooms::set_up(config).await?;
    let mut steps = Vec::with_capacity(paces.len());
    for &pace in paces {
        let before = server_metrics::scrape_all(&servers).await;
        let mut step = rooms.run(pace, args.seconds).await;
        if let (Some(before), Some(after)) = (before, server_metrics::scrape_all(&servers).await) {
            step.server = Some(ServerCounts::between(&before, &after));
        }
        eprint!("{}", report::steps_table(std::slice::from_ref(&step)));
        eprint!("{}", report::server_counts(&step));
        let lost = step.loss() > 0 || step.disconnects > 0;
        steps.push(step);
        if lost && matches!(pace, Pace::Window { .. }) {
            // Past the knee: the next window would only lose more.
            break;
        }
    }
    println!(
        "{} rooms x {} members, {} senders per room, {} s per load",
        args.rooms, args.members, args.senders, args.seconds
    );
    print!("{}", report::steps_table(&steps));
    steps.iter().for_each(|step| print!("{}", report::server_counts(step)));
    if let Some(path) = &cli.plot {
        let rooms = if args.rooms == 1 { "1 room".to_string() } else { format!("{} rooms", args.rooms) };
        let title = format!("{rooms} x {} members, {} senders per room", args.members, args.senders);
        std::fs::write(path, report::latency_svg(&title, &steps))?;
    }
    Ok(steps)
}
