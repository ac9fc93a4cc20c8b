//! Several nodes over one Redis and one database behave as one chat server:
//! real nodes, a real Redis (the machine's, or one a test starts of its own
//! to restart or cut), real WebSocket clients, and Debian's Nginx in front.
//!
//! - `chat`: delivery, order, gaps, history, moderation, presence, limits
//! - `faults`: Redis restarted empty or cut off, nodes killed
//! - `deployment`: three nodes behind Nginx, and a node draining

mod chat;
mod deployment;
mod faults;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parlor::db::Backend;
use serde_json::{json, Value};

use crate::binary::Binary;
use crate::databases::TestDatabase;
use crate::helpers::{start_beside, TestApp, WsClient, PATIENCE};

/// The machine's Redis, which `.ci/setup` starts.
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// Keys of their own for each test, on a shared Redis.
pub fn fresh_prefix() -> String {
    format!("test-{}-{:08x}:", std::process::id(), rand::random::<u32>())
}

pub fn node(db: &Arc<TestDatabase>, redis_url: &str, prefix: &str) -> TestApp {
    let (url, prefix) = (redis_url.to_string(), prefix.to_string());
    start_beside(db, move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = prefix;
    })
}

pub fn sqlite() -> Arc<TestDatabase> {
    Arc::new(TestDatabase::create(Backend::Sqlite).expect("SQLite is always there"))
}

/// A Redis server of the test's own, to restart empty.
pub struct OwnRedis {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl OwnRedis {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = Self::spawn(port, &dir);
        Self { port, child, dir }
    }

    pub fn spawn(port: u16, dir: &tempfile::TempDir) -> Child {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/setup)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(start.elapsed() < PATIENCE, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGKILL) and starts it again with nothing in it.
    pub fn restart_empty(&mut self) {
        let _ = std::fs::remove_file(self.dir.path().join("dump.rdb"));
        self.restart();
    }

    /// Writes a snapshot (`SAVE`), which the next `restart` loads.
    pub async fn snapshot(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut redis = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("SAVE").query_async::<()>(&mut redis).await.unwrap();
    }

    /// Stops it (SIGKILL) and starts it again from its last snapshot.
    pub fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = Self::spawn(self.port, &self.dir);
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `count` messages of a room, as (id, text).
pub async fn messages(client: &mut WsClient, count: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < count {
        let frame = client.recv_type("message").await;
        got.push((frame["id"].as_i64().unwrap(), frame["text"].as_str().unwrap().to_string()));
    }
    got
}

pub async fn join(client: &mut WsClient, room: &str, name: &str, since: Option<(i64, &str)>) -> Value {
    let mut frame = json!({"type": "join_room", "room": room, "name": name});
    if let Some((since, epoch)) = since {
        frame["since"] = since.into();
        frame["epoch"] = epoch.into();
    }
    client.send(frame).await;
    client.recv_type("joined").await
}

pub fn send(room: &str, text: &str) -> Value {
    json!({"type": "send_message", "room": room, "text": text})
}

pub fn history_ids(joined: &Value) -> Vec<i64> {
    joined["history"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect()
}

/// Two nodes over the machine's Redis, on one SQLite file: Alice on the
/// first, Bob on the second, both in the lobby.
pub struct TwoNodes {
    /// Kept until the nodes are done with it.
    pub db: Arc<TestDatabase>,
    pub a: TestApp,
    pub b: TestApp,
    pub alice: WsClient,
    pub bob: WsClient,
    /// The `joined` Bob got, after Alice's.
    pub bob_joined: Value,
    /// Where the nodes keep their Redis keys.
    pub prefix: String,
}

pub async fn alice_and_bob_on_two_nodes() -> TwoNodes {
    let db = sqlite();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, SHARED_REDIS, &prefix), node(&db, SHARED_REDIS, &prefix));
    let mut alice = a.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    let mut bob = b.ws().await;
    let bob_joined = join(&mut bob, "lobby", "bob", None).await;
    TwoNodes { db, a, b, alice, bob, bob_joined, prefix }
}

/// Real `parlor` binaries over the machine's Redis, each with `extra` flags.
pub fn binaries(db: &TestDatabase, count: usize, extra: &[&str]) -> Vec<Binary> {
    let prefix = fresh_prefix();
    let mut args = vec!["--redis-url", SHARED_REDIS, "--redis-prefix", &prefix];
    args.extend_from_slice(extra);
    (0..count).map(|_| Binary::start(db, &args)).collect()
}

/// The same, behind Nginx.
pub fn binaries_behind_nginx(db: &TestDatabase, count: usize, extra: &[&str]) -> (Vec<Binary>, Nginx) {
    let nodes = binaries(db, count, extra);
    let nginx = Nginx::start(&nodes.iter().map(|n| n.port).collect::<Vec<_>>());
    (nodes, nginx)
}

/// Joins, trying again while the node cannot reach Redis.
pub async fn join_when_ready(app: &TestApp, room: &str, name: &str, since: Option<(i64, &str)>) -> (WsClient, Value) {
    let start = Instant::now();
    loop {
        let mut client = app.ws().await;
        let mut frame = json!({"type": "join_room", "room": room, "name": name});
        if let Some((since, epoch)) = since {
            frame["since"] = since.into();
            frame["epoch"] = epoch.into();
        }
        client.send(frame).await;
        let answer = client.recv().await;
        if answer["type"] == "joined" {
            return (client, answer);
        }
        assert_eq!(answer["code"], "unavailable", "only Redis being away may refuse the join: {answer}");
        assert!(start.elapsed() < PATIENCE, "the node never reached Redis again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends until the sender's own copy comes back; `unavailable` answers are
/// counted, anything else fails.
pub async fn say_until_accepted(client: &mut WsClient, room: &str, text: &str) -> (Value, usize) {
    let start = Instant::now();
    let mut refused = 0;
    loop {
        client.send(json!({"type": "send_message", "room": room, "text": text, "nonce": text})).await;
        let answer = client.recv_type_or_error("message").await;
        if answer["type"] == "message" {
            assert_eq!(answer["text"], text);
            return (answer, refused);
        }
        assert_eq!(answer["code"], "unavailable", "a send is refused only as unavailable: {answer}");
        refused += 1;
        assert!(start.elapsed() < Duration::from_secs(30), "sends were refused for too long");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Debian's Nginx with the README's configuration (`docs/nginx/parlor.conf`),
/// its upstream pointed at `nodes`.
pub struct Nginx {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(nodes: &[u16]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let ours = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/nginx/parlor.conf")).unwrap();
        let servers: String = nodes.iter().map(|p| format!("    server 127.0.0.1:{p};\n")).collect();
        // Every upstream's list of nodes becomes the test's.
        let listed = "    server 127.0.0.1:8081;\n    server 127.0.0.1:8082;\n    server 127.0.0.1:8083;\n";
        assert!(ours.contains(listed), "docs/nginx/parlor.conf lists its example nodes");
        let site = ours.replace(listed, &servers).replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
        let d = dir.path().display();
        let conf = format!(
            "daemon off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n\
             events {{ worker_connections 512; }}\n\
             http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n{site}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("nginx")
            .args(["-e", &format!("{d}/error.log"), "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx is installed (.ci/setup)");
        let begun = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(begun.elapsed() < PATIENCE, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child, _dir: dir }
    }

    pub async fn ws(&self) -> WsClient {
        WsClient::connect(&format!("ws://127.0.0.1:{}/ws", self.port), None).await
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master takes its workers with it (SIGKILL would not).
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// Connections open on a node, from its own `/metrics`.
pub async fn open_websockets(port: u16) -> u64 {
    let body = reqwest_text(port, "/metrics").await;
    body.lines()
        .filter(|l| l.starts_with("parlor_connections{") && !l.contains("kind=\"http\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

pub async fn reqwest_text(port: u16, path: &str) -> String {
    let client = awc::Client::builder().timeout(PATIENCE).finish();
    let mut resp = client.get(format!("http://127.0.0.1:{port}{path}")).send().await.expect("GET");
    String::from_utf8(resp.body().limit(1 << 20).await.unwrap().to_vec()).unwrap()
}

pub async fn status_of(port: u16, path: &str) -> (u16, String) {
    let client = awc::Client::builder().timeout(PATIENCE).finish();
    let mut resp = client.get(format!("http://127.0.0.1:{port}{path}")).send().await.expect("GET");
    (resp.status().as_u16(), String::from_utf8_lossy(&resp.body().await.unwrap()).into_owned())
}
