//! Several nodes over one Redis and one database behave as one chat server:
//! real nodes, a real Redis (the machine's, or one a test starts of its own
//! to restart or cut), real WebSocket clients.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parlor::db::Backend;
use serde_json::{json, Value};

use crate::binary::Binary;
use crate::databases::{Proxy, TestDatabase};
use crate::helpers::{start_beside, TestApp, WsClient, PATIENCE};

/// The machine's Redis, which `.ci/setup` starts.
const SHARED_REDIS: &str = "redis://127.0.0.1:6379";

/// Keys of their own for each test, on a shared Redis.
fn fresh_prefix() -> String {
    format!("test-{}-{:08x}:", std::process::id(), rand::random::<u32>())
}

fn node(db: &Arc<TestDatabase>, redis_url: &str, prefix: &str) -> TestApp {
    let (url, prefix) = (redis_url.to_string(), prefix.to_string());
    start_beside(db, move |s| {
        s.redis_url = Some(url);
        s.redis_prefix = prefix;
    })
}

fn sqlite() -> Arc<TestDatabase> {
    Arc::new(TestDatabase::create(Backend::Sqlite).expect("SQLite is always there"))
}

/// A Redis server of the test's own, to restart empty.
struct OwnRedis {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl OwnRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = Self::spawn(port, &dir);
        Self { port, child, dir }
    }

    fn spawn(port: u16, dir: &tempfile::TempDir) -> Child {
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

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (SIGKILL) and starts it again with nothing in it.
    fn restart_empty(&mut self) {
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
async fn messages(client: &mut WsClient, count: usize) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    while got.len() < count {
        let frame = client.recv_type("message").await;
        got.push((frame["id"].as_i64().unwrap(), frame["text"].as_str().unwrap().to_string()));
    }
    got
}

async fn join(client: &mut WsClient, room: &str, name: &str, since: Option<(i64, &str)>) -> Value {
    let mut frame = json!({"type": "join_room", "room": room, "name": name});
    if let Some((since, epoch)) = since {
        frame["since"] = since.into();
        frame["epoch"] = epoch.into();
    }
    client.send(frame).await;
    client.recv_type("joined").await
}

fn send(room: &str, text: &str) -> Value {
    json!({"type": "send_message", "room": room, "text": text})
}

fn history_ids(joined: &Value) -> Vec<i64> {
    joined["history"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect()
}

#[actix_web::test]
async fn members_on_two_nodes_see_every_message_once_in_one_order() {
    let db = sqlite();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, SHARED_REDIS, &prefix), node(&db, SHARED_REDIS, &prefix));
    let (mut alice, mut bob) = (a.ws().await, b.ws().await);
    join(&mut alice, "lobby", "alice", None).await;
    join(&mut bob, "lobby", "bob", None).await;

    // Both talk at once, each through its own node.
    for i in 0..25 {
        alice.send(send("lobby", &format!("a{i}"))).await;
        bob.send(send("lobby", &format!("b{i}"))).await;
    }
    let seen_by_alice = messages(&mut alice, 50).await;
    let seen_by_bob = messages(&mut bob, 50).await;
    assert_eq!(seen_by_alice, seen_by_bob, "one order for everyone, on every node");
    let ids: Vec<i64> = seen_by_alice.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, (1..=50).collect::<Vec<_>>(), "ids unique and increasing per room across nodes");
    for who in ["a", "b"] {
        let theirs: Vec<&str> = seen_by_alice.iter().map(|(_, t)| t.as_str()).filter(|t| t.starts_with(who)).collect();
        let sent: Vec<String> = (0..25).map(|i| format!("{who}{i}")).collect();
        assert_eq!(theirs, sent, "each sender's messages in the order sent");
    }
    alice.expect_silence(Duration::from_millis(300)).await;
    db.wait_for_ids("lobby", &(1..=50).collect::<Vec<_>>()).await;
}

#[actix_web::test]
async fn a_client_reconnecting_to_another_node_gets_exactly_its_gap() {
    let db = sqlite();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, SHARED_REDIS, &prefix), node(&db, SHARED_REDIS, &prefix));
    let mut alice = a.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    let mut bob = b.ws().await;
    let joined = join(&mut bob, "lobby", "bob", None).await;
    let epoch = joined["epoch"].as_str().unwrap().to_string();
    for i in 1..=5 {
        alice.say("lobby", &format!("before {i}")).await;
    }
    let seen = messages(&mut bob, 5).await;
    assert_eq!(seen.last().unwrap().0, 5);
    bob.close().await;
    for i in 1..=7 {
        alice.say("lobby", &format!("while away {i}")).await;
    }
    // Bob comes back through node A this time.
    let mut bob = a.ws().await;
    let joined = join(&mut bob, "lobby", "bob", Some((5, &epoch))).await;
    assert_eq!(joined["epoch"], epoch.as_str(), "the same run of ids on every node");
    assert_eq!(history_ids(&joined), (6..=12).collect::<Vec<_>>(), "exactly the gap");
    // And the history API of a node with no one in the room reads Redis and the log.
    let (status, page) = b.get_json("/api/rooms/lobby/messages?limit=50").await;
    assert_eq!(status, 200);
    assert_eq!(page["epoch"], epoch.as_str());
    let ids: Vec<i64> = page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 12, "every message, from any node: {ids:?}");
}

#[actix_web::test]
async fn a_node_that_missed_a_publish_fills_the_gap_from_the_stream() {
    let db = sqlite();
    let prefix = fresh_prefix();
    let a = node(&db, SHARED_REDIS, &prefix);
    let mut alice = a.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    alice.say("lobby", "one").await;

    // A message numbered and kept in the stream whose publish never reached
    // this node: the send script, told to publish on a channel no one hears.
    let client = redis::Client::open(SHARED_REDIS).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let room_key = |k: &str| format!("{prefix}room:lobby:{k}");
    let body =
        json!({"room": "lobby", "author": "ghost", "text": "two", "ts": parlor::clock::now_ms(), "node": "elsewhere"});
    let script = redis::Script::new(parlor::cluster::SEND_LUA);
    let (id, _epoch): (i64, String) = script
        .key(room_key("seq"))
        .key(room_key("epoch"))
        .key(room_key("log"))
        .key(format!("{prefix}dirty"))
        .arg(body.to_string())
        .arg(1000)
        .arg(format!("{prefix}nobody-listens"))
        .arg("lobby")
        .invoke_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(id, 2);

    alice.send(send("lobby", "three")).await;
    let seen = messages(&mut alice, 2).await;
    assert_eq!(seen, vec![(2, "two".to_string()), (3, "three".to_string())], "the gap first, then what follows");
}

/// The ids and texts the database holds for a room.
fn stored(db: &TestDatabase, room: &str) -> Vec<(i64, String)> {
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
        #[diesel(sql_type = Text)]
        body: String,
    }
    let sql = format!("SELECT id, body FROM messages WHERE room = '{room}' ORDER BY id");
    diesel::sql_query(sql).load::<Row>(&mut db.connect()).unwrap().into_iter().map(|r| (r.id, r.body)).collect()
}

/// Joins, trying again while the node cannot reach Redis.
async fn join_when_ready(app: &TestApp, room: &str, name: &str, since: Option<(i64, &str)>) -> (WsClient, Value) {
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
async fn say_until_accepted(client: &mut WsClient, room: &str, text: &str) -> (Value, usize) {
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

#[actix_web::test]
async fn redis_restarted_empty_begins_a_new_epoch_and_reuses_no_id() {
    let db = sqlite();
    let mut redis = OwnRedis::start();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, &redis.url(), &prefix), node(&db, &redis.url(), &prefix));
    let mut alice = a.ws().await;
    let joined = join(&mut alice, "lobby", "alice", None).await;
    let old_epoch = joined["epoch"].as_str().unwrap().to_string();
    for text in ["one", "two", "three"] {
        alice.say("lobby", text).await;
    }
    db.wait_for_ids("lobby", &[1, 2, 3]).await;
    let before = stored(&db, "lobby");
    alice.close().await;

    redis.restart_empty();

    let (mut alice, joined) = join_when_ready(&a, "lobby", "alice", Some((3, &old_epoch))).await;
    let new_epoch = joined["epoch"].as_str().unwrap().to_string();
    assert_ne!(new_epoch, old_epoch, "Redis lost the room's run: a new epoch");
    assert_eq!(history_ids(&joined), vec![1, 2, 3], "ids of another epoch: the client gets the latest history");
    let (mut bob, joined) = join_when_ready(&b, "lobby", "bob", Some((3, &old_epoch))).await;
    assert_eq!(joined["epoch"], new_epoch.as_str(), "every node is in the new run");

    let (own, _) = say_until_accepted(&mut alice, "lobby", "four").await;
    let id = own["id"].as_i64().unwrap();
    assert!(id > 3, "no id of the lost run is given out again: got {id}");
    assert_eq!(bob.recv_type("message").await["id"], id);
    let start = Instant::now();
    let after = loop {
        let after = stored(&db, "lobby");
        if after.len() == 4 || start.elapsed() > PATIENCE {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(&after[..3], &before[..], "the messages clients saw keep their ids and texts");
    assert_eq!(after[3], (id, "four".to_string()));
}

#[actix_web::test]
async fn while_redis_is_cut_off_sends_are_refused_and_nothing_accepted_is_lost() {
    let db = sqlite();
    let proxy = Proxy::start(6379).await;
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, &url, &prefix), node(&db, &url, &prefix));
    let mut alice = a.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    let mut bob = b.ws().await;
    join(&mut bob, "lobby", "bob", None).await;
    alice.say("lobby", "before").await;
    assert_eq!(bob.recv_type("message").await["text"], "before");

    proxy.cut();
    alice.send(json!({"type": "send_message", "room": "lobby", "text": "during", "nonce": "during"})).await;
    let refused = alice.recv_type_or_error("message").await;
    assert_eq!(refused["code"], "unavailable", "a send Redis cannot take is refused, not lost: {refused}");
    assert_eq!(refused["nonce"], "during");
    // Both nodes say so to a load balancer.
    let (status, health) = a.get_json("/healthz").await;
    assert_eq!((status, health["redis"].as_str()), (503, Some("unavailable")));
    tokio::time::sleep(Duration::from_secs(3)).await;

    proxy.restore();
    let (own, _) = say_until_accepted(&mut alice, "lobby", "during").await;
    let (after, _) = say_until_accepted(&mut alice, "lobby", "after").await;
    assert_eq!(bob.recv_type("message").await["id"], own["id"], "the other node delivers what follows the cut");
    assert_eq!(bob.recv_type("message").await["id"], after["id"]);
    let (status, health) = b.get_json("/healthz").await;
    assert_eq!((status, health["redis"].as_str()), (200, Some("ok")));
    let texts: Vec<String> = {
        let start = Instant::now();
        loop {
            let texts: Vec<String> = stored(&db, "lobby").into_iter().map(|(_, t)| t).collect();
            if texts.len() >= 3 || start.elapsed() > PATIENCE {
                break texts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(texts, ["before", "during", "after"], "every accepted message is in the log, once");
}

#[actix_web::test]
async fn what_a_node_killed_with_sigkill_acknowledged_reaches_the_log() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let prefix = fresh_prefix();
    let args = ["--redis-url", SHARED_REDIS, "--redis-prefix", &prefix];
    let (a, b) = (Binary::start(&db, &args), Binary::start(&db, &args));
    let mut alice = a.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    let mut bob = b.ws().await;
    join(&mut bob, "lobby", "bob", None).await;
    db.wait_for_room("lobby").await;

    // Node A cannot write to the log: what it acknowledges is only in Redis
    // when it dies.
    let lock = db.lock_out_writer();
    let mut acked = Vec::new();
    for i in 1..=20 {
        acked.push(alice.say("lobby", &format!("m{i}")).await["id"].as_i64().unwrap());
    }
    a.kill();
    lock.release();
    assert_eq!(messages(&mut bob, 20).await.len(), 20, "the other node delivered them all");
    // The surviving node's sweeper writes them (after its grace period).
    let start = Instant::now();
    loop {
        let ids = db.stored_ids("lobby");
        if ids == acked {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the log has {ids:?}; acknowledged were {acked:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let texts: Vec<String> = stored(&db, "lobby").into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, (1..=20).map(|i| format!("m{i}")).collect::<Vec<_>>());
    drop(b);
}

/// Debian's Nginx with the README's configuration (`docs/nginx/parlor.conf`),
/// its upstream pointed at `nodes`.
struct Nginx {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    fn start(nodes: &[u16]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let ours = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/nginx/parlor.conf")).unwrap();
        let servers: String = nodes.iter().map(|p| format!("    server 127.0.0.1:{p};\n")).collect();
        let start = ours.find("    server 127.0.0.1:8081;").unwrap();
        let end = ours.find("    server 127.0.0.1:8083;\n").unwrap() + "    server 127.0.0.1:8083;\n".len();
        let site = format!("{}{servers}{}", &ours[..start], &ours[end..])
            .replace("listen 80;", &format!("listen 127.0.0.1:{port};"));
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

    async fn ws(&self) -> WsClient {
        WsClient::connect(&format!("ws://127.0.0.1:{}/ws", self.port), None).await
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
async fn open_websockets(port: u16) -> u64 {
    let body = reqwest_text(port, "/metrics").await;
    body.lines()
        .filter(|l| l.starts_with("parlor_connections{") && !l.contains("kind=\"http\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn reqwest_text(port: u16, path: &str) -> String {
    let client = awc::Client::builder().timeout(PATIENCE).finish();
    let mut resp = client.get(format!("http://127.0.0.1:{port}{path}")).send().await.expect("GET");
    String::from_utf8(resp.body().limit(1 << 20).await.unwrap().to_vec()).unwrap()
}

#[actix_web::test]
async fn three_nodes_behind_nginx_chat_as_one_and_survive_a_node_dying() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let prefix = fresh_prefix();
    let args = ["--redis-url", SHARED_REDIS, "--redis-prefix", &prefix];
    let nodes: Vec<Binary> = (0..3).map(|_| Binary::start(&db, &args)).collect();
    let nginx = Nginx::start(&nodes.iter().map(|n| n.port).collect::<Vec<_>>());

    let mut alice = nginx.ws().await;
    let joined = join(&mut alice, "lobby", "alice", None).await;
    let epoch = joined["epoch"].as_str().unwrap().to_string();
    let mut bob = nginx.ws().await;
    join(&mut bob, "lobby", "bob", None).await;
    let mut per_node = Vec::new();
    for node in &nodes {
        per_node.push(open_websockets(node.port).await);
    }
    assert_eq!(per_node.iter().filter(|n| **n == 1).count(), 2, "round robin put them on two nodes: {per_node:?}");

    alice.say("lobby", "hello bob").await;
    assert_eq!(bob.recv_type("message").await["text"], "hello bob");
    bob.say("lobby", "hello alice").await;
    assert_eq!(alice.recv_type("message").await["text"], "hello alice");

    // Bob's node dies; Bob comes back through Nginx and misses nothing.
    let bobs = per_node.iter().rposition(|n| *n == 1).unwrap();
    let mut nodes = nodes;
    nodes.remove(bobs).kill();
    let gap: Vec<i64> = {
        let mut ids = Vec::new();
        for i in 1..=3 {
            ids.push(alice.say("lobby", &format!("while bob was away {i}")).await["id"].as_i64().unwrap());
        }
        ids
    };
    let mut bob = nginx.ws().await;
    let joined = join(&mut bob, "lobby", "bob", Some((2, &epoch))).await;
    assert_eq!(history_ids(&joined), gap, "exactly what Bob missed, from another node");
    bob.say("lobby", "back").await;
    assert_eq!(alice.recv_type("message").await["text"], "back");
}

#[actix_web::test]
async fn an_admin_on_one_node_moderates_members_on_another() {
    let db = sqlite();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, SHARED_REDIS, &prefix), node(&db, SHARED_REDIS, &prefix));
    let mut alice = a.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    let mut bob = b.ws().await;
    join(&mut bob, "lobby", "bob", None).await;
    let doomed = alice.say("lobby", "delete me").await["id"].as_i64().unwrap();
    assert_eq!(bob.recv_type("message").await["id"], doomed);

    // A deletion made on node A reaches Bob on node B, and B's history.
    let (status, _) = a.delete_as_admin(&format!("/admin/rooms/lobby/messages/{doomed}")).await;
    assert_eq!(status, 200);
    assert_eq!(alice.recv_type("message_deleted").await["id"], doomed);
    assert_eq!(bob.recv_type("message_deleted").await["id"], doomed);
    let (_, page) = b.get_json("/api/rooms/lobby/messages").await;
    assert!(page["messages"].as_array().unwrap().is_empty(), "deleted everywhere: {page}");

    // A kick made on node A sends Bob out on node B.
    let (status, _) = a.post_json_as_admin("/admin/rooms/lobby/kick", &json!({"user": "bob"})).await;
    assert_eq!(status, 200);
    assert_eq!(bob.recv_type("kicked").await["room"], "lobby");

    // Closing on A closes the room on B: Bob cannot come back there.
    let (status, _) = a.post_json_as_admin("/admin/rooms/lobby/close", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(alice.recv_type("room_closed").await["room"], "lobby");
    bob.send(json!({"type": "join_room", "room": "lobby", "name": "bob"})).await;
    assert_eq!(bob.recv_type("error").await["code"], "room_closed");
}

#[actix_web::test]
async fn members_and_presence_are_the_same_on_every_node() {
    let db = sqlite();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, SHARED_REDIS, &prefix), node(&db, SHARED_REDIS, &prefix));
    let mut alice = a.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    let mut bob = b.ws().await;
    let joined = join(&mut bob, "lobby", "bob", None).await;
    assert_eq!(joined["members"], json!(["alice", "bob"]), "Bob sees Alice, who is on the other node");
    assert_eq!(joined["member_count"], 2);
    let presence = alice.recv().await;
    assert_eq!((presence["type"].as_str(), presence["user"].as_str()), (Some("presence"), Some("bob")));
    assert_eq!((presence["action"].as_str(), presence["members"].as_u64()), (Some("join"), Some(2)));

    // Either node's admin view shows the whole cluster, with each member's node.
    for app in [&a, &b] {
        let (status, body) = app.get_json_as_admin("/admin/rooms?format=json").await;
        assert_eq!(status, 200);
        let room = &body["rooms"][0];
        assert_eq!(room["members"], json!(["alice", "bob"]), "{body}");
        let nodes: Vec<&str> =
            room["connections"].as_array().unwrap().iter().map(|c| c["node"].as_str().unwrap()).collect();
        assert_eq!(nodes.len(), 2);
        assert_ne!(nodes[0], nodes[1], "each on its own node: {body}");
    }

    bob.send(json!({"type": "leave_room", "room": "lobby"})).await;
    let presence = alice.recv().await;
    assert_eq!((presence["action"].as_str(), presence["members"].as_u64()), (Some("leave"), Some(1)), "{presence}");
}

#[actix_web::test]
async fn a_dead_nodes_members_leave_everyones_lists() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let prefix = fresh_prefix();
    let args = ["--redis-url", SHARED_REDIS, "--redis-prefix", &prefix];
    let (a, b) = (Binary::start(&db, &args), Binary::start(&db, &args));
    let mut alice = a.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    let mut bob = b.ws().await;
    join(&mut bob, "lobby", "bob", None).await;
    assert_eq!(alice.recv_type("presence").await["user"], "bob");
    let killed = Instant::now();
    b.kill();
    let bound = parlor::cluster::NODE_ALIVE_FOR + parlor::cluster::NODE_BEAT * 2;
    let leave = alice.try_recv(bound + Duration::from_secs(2)).await.expect("Bob leaves Alice's list");
    assert_eq!((leave["type"].as_str(), leave["action"].as_str()), (Some("presence"), Some("leave")), "{leave}");
    assert_eq!(leave["user"], "bob");
    assert!(killed.elapsed() <= bound + Duration::from_secs(1), "within the stated bound: {:?}", killed.elapsed());
}

#[actix_web::test]
async fn login_limits_hold_across_nodes() {
    let db = sqlite();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, SHARED_REDIS, &prefix), node(&db, SHARED_REDIS, &prefix));
    crate::helpers::sign_up(&a, "hal", "correct horse battery").await;
    // Guesses spread over both nodes share one allowance of five.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &a } else { &b };
        statuses.push(crate::helpers::account_form(app, "/login", "hal", "guess guess").await.0);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
}
