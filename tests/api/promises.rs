//! Promises of docs/protocol.md and the README that no other test holds the
//! server to: live frames after a `joined` whose history came from the
//! database, the bot API when the write queue is full, the typing throttle,
//! the mute cap, the default send and request limits, the session-queue
//! bound, a join while the database is cut, and the shutdown timeout.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use parlor::db::Backend;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::binary::Binary;
use crate::databases::TestDatabase;
use crate::helpers::{ids, spawn_app_with, texts, TestApp, WsClient, ADMIN_TOKEN, PATIENCE};

// ---------------------------------------------------------------------------
// 1. `joined` from the database, then every live message once, in order.

#[actix_web::test]
async fn live_messages_follow_a_joined_from_the_database_without_gap_or_repeat() {
    // An emptied room keeps no committed messages in memory, so once alice
    // leaves only bob's 240 later ones are in the room's tail: carol's page
    // of 250 after id 1 must be read from the database while bob keeps
    // sending.
    let app = spawn_app_with(|s| s.history_on_join = 250).await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    alice.say_all("lobby", (1..=300).map(|i| format!("old {i}"))).await;
    app.db.wait_for_ids("lobby", &(1..=300).collect::<Vec<_>>()).await;
    alice.close().await;

    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    for i in 1..=40 {
        bob.say("lobby", &format!("live {i}")).await;
    }
    // Carol joins while bob sends 200 more, as fast as the socket takes them.
    const MORE: i64 = 200;
    let last = 340 + MORE;
    let mut carol = app.ws().await;
    let flood = async {
        for i in 41..=40 + MORE {
            bob.send(json!({"type": "send_message", "room": "lobby", "text": format!("live {i}")})).await;
        }
    };
    let join = async {
        carol.send(json!({"type": "join_room", "room": "lobby", "name": "carol", "since": 1})).await;
    };
    tokio::join!(flood, join);

    let joined = carol.recv().await;
    assert_eq!(joined["type"], "joined", "the first frame is the joined: {joined}");
    let history = ids(&joined["history"]);
    assert_eq!(history.len(), 250, "the latest 250 of the {} after since", history.last().unwrap() - 1);
    let newest = *history.last().unwrap();
    assert_eq!(history, (newest - 249..=newest).collect::<Vec<_>>(), "history is contiguous");
    assert!((340..=last).contains(&newest), "history reaches at least bob's first 40 live messages: {newest}");
    assert_eq!(joined["truncated"], true, "ids 2..{} were left out", newest - 250);

    let mut live = Vec::new();
    while live.last().copied().unwrap_or(newest) < last {
        let frame = carol.recv().await;
        assert_eq!(frame["type"], "message", "only messages follow: {frame}");
        assert_eq!(frame["user"], "bob");
        live.push(frame["id"].as_i64().unwrap());
    }
    assert_eq!(live, (newest + 1..=last).collect::<Vec<_>>(), "every live message once, in order, right after");
    carol.assert_open().await;

    // Bob was never held up: his copies and carol's arrival, all there.
    let mut own = Vec::new();
    while own.len() < MORE as usize {
        own.push(bob.recv_type("message").await["id"].as_i64().unwrap());
    }
    assert_eq!(own, (341..=last).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------
// 2. POST /store_message when the write queue is full.

#[actix_web::test]
async fn the_bot_api_refuses_with_503_when_the_write_queue_is_full_and_loses_nothing_it_accepted() {
    let app = spawn_app_with(|s| s.write_queue = 2).await;
    let token = app.bot_token("robot").await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    app.db.wait_for_room("lobby").await;

    let lock = app.db.lock_out_writer();
    let mut accepted: Vec<(i64, String)> = Vec::new();
    let mut refused = Vec::new();
    for i in 0..50 {
        let text = format!("post {i}");
        let (status, body) = app.post_with_token(&token, "lobby", &text).await;
        match status {
            201 => {
                assert!(refused.is_empty(), "accepted after a refusal while the queue is still full: {body}");
                assert_eq!((body["text"].as_str(), body["user"].as_str()), (Some(text.as_str()), Some("robot")));
                accepted.push((body["id"].as_i64().unwrap(), text));
            }
            503 => {
                assert_eq!(body["error"], "unavailable", "{body}");
                refused.push(text);
                if refused.len() == 3 {
                    break;
                }
            }
            _ => panic!("unexpected {status} {body}"),
        }
    }
    assert_eq!(refused.len(), 3, "a queue of 2 behind a locked writer fills up");
    // The queue of two, and at most the batch the writer had already taken.
    assert!((2..=4).contains(&accepted.len()), "accepted {accepted:?}");
    let accepted_ids: Vec<i64> = accepted.iter().map(|(id, _)| *id).collect();
    assert_eq!(accepted_ids, (1..=accepted.len() as i64).collect::<Vec<_>>());

    // Live members got exactly the accepted ones, nothing refused.
    for (id, text) in &accepted {
        let frame = alice.recv_type("message").await;
        assert_eq!((frame["id"].as_i64(), frame["text"].as_str()), (Some(*id), Some(text.as_str())));
    }
    alice.assert_open().await;

    lock.release();
    app.db.wait_for_ids("lobby", &accepted_ids).await;
    let (_, page) = app.get_json("/api/rooms/lobby/messages").await;
    let mut stored = texts(&page["messages"]);
    stored.reverse();
    assert_eq!(stored, accepted.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(), "none of {refused:?}");
    // The refusals took no id.
    let (status, body) = app.post_with_token(&token, "lobby", "after").await;
    assert_eq!((status, body["id"].as_i64()), (201, Some(accepted.len() as i64 + 1)), "{body}");
}

// ---------------------------------------------------------------------------
// 3. Typing notices: at most one every 2 s per connection and room.

#[actix_web::test]
async fn two_typing_notices_within_two_seconds_reach_the_others_once() {
    let app = spawn_app_with(|_| {}).await;
    // Retried in fresh rooms only if the machine stalled so long that the
    // two notices were really 2 s apart (then both may pass).
    for attempt in 0..3 {
        let (lobby, other) = (format!("lobby{attempt}"), format!("other{attempt}"));
        let mut alice = app.ws().await;
        let mut bob = app.ws().await;
        for room in [&lobby, &other] {
            alice.join(room, "alice").await;
            bob.join(room, "bob").await;
            assert_eq!(alice.recv_type("presence").await["user"], "bob");
        }
        let started = Instant::now();
        bob.send(json!({"type": "typing", "room": lobby})).await;
        bob.send(json!({"type": "typing", "room": lobby})).await;
        // Another room has a throttle of its own.
        bob.send(json!({"type": "typing", "room": other})).await;
        // The pong: all three were handled, and bob got nothing for them.
        bob.send(json!({"type": "ping"})).await;
        assert_eq!(bob.recv().await, json!({"type": "pong"}));
        if started.elapsed() >= Duration::from_secs(2) {
            eprintln!("attempt {attempt}: the notices were handled 2 s apart or more; again");
            continue;
        }
        bob.say(&lobby, "marker").await;

        let mut seen = Vec::new();
        loop {
            let frame = alice.recv().await;
            if frame["type"] == "message" {
                assert_eq!(frame["text"], "marker");
                break;
            }
            seen.push(frame);
        }
        assert_eq!(
            seen,
            [
                json!({"type": "typing", "room": lobby, "user": "bob"}),
                json!({"type": "typing", "room": other, "user": "bob"}),
            ],
            "one notice per room, the second in the lobby dropped"
        );
        return;
    }
    panic!("the machine never handled two frames within 2 s");
}

// ---------------------------------------------------------------------------
// 4. Mutes last at most a week.

#[actix_web::test]
async fn a_mute_of_more_than_a_week_is_refused_and_a_week_is_accepted() {
    let app = spawn_app_with(|_| {}).await;
    let mut loud = app.ws().await;
    loud.join("lobby", "loud").await;

    let (status, body) =
        app.post_json_as_admin("/admin/rooms/lobby/mute", &json!({"user": "loud", "minutes": 10081})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    assert_eq!(loud.say("lobby", "not muted").await["text"], "not muted", "the refused mute did nothing");

    let (status, body) =
        app.post_json_as_admin("/admin/rooms/lobby/mute", &json!({"user": "loud", "minutes": 10080})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"room": "lobby", "user": "loud", "minutes": 10080}));
    assert!(loud.recv_type("muted").await["until"].is_string(), "told at once");
    loud.send(json!({"type": "send_message", "room": "lobby", "text": "shout", "nonce": "s1"})).await;
    let err = loud.recv_type("error").await;
    assert_eq!(
        (err["code"].as_str(), err["room"].as_str(), err["nonce"].as_str()),
        (Some("muted"), Some("lobby"), Some("s1"))
    );
    // "you are muted in this room for N more seconds": a week, less the
    // moments this test took.
    let message = err["message"].as_str().unwrap();
    let seconds: u64 = message.split_whitespace().find_map(|w| w.parse().ok()).expect("the seconds left");
    assert!((10079 * 60..=10080 * 60 + 1).contains(&seconds), "{message}");

    let (_, audit) = app.get_json_as_admin("/admin/audit").await;
    let mutes: Vec<&Value> = audit["entries"].as_array().unwrap().iter().filter(|e| e["action"] == "mute").collect();
    assert_eq!(mutes.len(), 1, "only the accepted mute is audited: {audit}");
    assert_eq!(
        (mutes[0]["target"].as_str(), mutes[0]["detail"].as_str()),
        (Some("loud in lobby"), Some("10080 minutes"))
    );
}

// ---------------------------------------------------------------------------
// 5. The default limits: 10 sends/s with bursts of 30; 20 other requests/s
// with bursts of 60.

/// A WebSocket client that can write many frames in one go, so that they
/// reach the server together and are handled back to back.
struct BurstClient {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl BurstClient {
    async fn connect(app: &TestApp) -> Self {
        let (stream, _) = tokio_tungstenite::connect_async(app.ws_url.as_str()).await.expect("WebSocket handshake");
        Self { stream }
    }

    async fn burst(&mut self, frames: impl IntoIterator<Item = Value>) {
        for frame in frames {
            self.stream.feed(Message::Text(frame.to_string())).await.expect("queue a frame");
        }
        self.stream.flush().await.expect("write the burst");
    }

    async fn recv(&mut self) -> Value {
        let next = async {
            while let Some(msg) = self.stream.next().await {
                match msg.expect("the connection stays open") {
                    Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
                    Message::Close(c) => panic!("closed: {c:?}"),
                    _ => {}
                }
            }
            panic!("the connection ended")
        };
        tokio::time::timeout(PATIENCE, next).await.expect("a frame in time")
    }
}

/// An app with the default limits (the test settings have none), and alice
/// in its lobby.
async fn alice_with_the_default_limits() -> (TestApp, BurstClient) {
    let app = spawn_app_with(|s| {
        s.rate_per_sec = 10.0;
        s.rate_burst = 30.0;
    })
    .await;
    let mut alice = BurstClient::connect(&app).await;
    alice.burst([json!({"type": "join_room", "room": "lobby", "name": "alice"})]).await;
    assert_eq!(alice.recv().await["type"], "joined");
    (app, alice)
}

#[actix_web::test]
async fn the_default_send_limit_takes_a_burst_of_30_and_refuses_the_rest_by_nonce() {
    let (_app, mut alice) = alice_with_the_default_limits().await;

    let started = Instant::now();
    alice
        .burst((0..40).map(
            |i| json!({"type": "send_message", "room": "lobby", "text": format!("m{i}"), "nonce": format!("n{i}")}),
        ))
        .await;
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    for _ in 0..40 {
        let frame = alice.recv().await;
        let nonce = frame["nonce"].as_str().expect("every answer names its send").to_string();
        match frame["type"].as_str() {
            Some("message") => accepted.push(nonce),
            Some("error") => {
                assert_eq!((frame["code"].as_str(), frame["room"].as_str()), (Some("rate_limited"), Some("lobby")));
                refused.push(nonce);
            }
            _ => panic!("unexpected {frame}"),
        }
    }
    let took = started.elapsed();
    // The first 64 sends with a nonce are each looked up in the log before
    // the next frame is read, so the burst is handled over some milliseconds,
    // not at one instant; a token comes back every 100 ms. Measured: all 40
    // answers within 10 to 25 ms, 45 ms at worst with four runs of these
    // tests at once, so no refill is allowed for: exactly 30 pass.
    eprintln!("40 sends answered in {took:?}");
    assert_eq!(accepted, (0..30).map(|i| format!("n{i}")).collect::<Vec<_>>());
    assert_eq!(refused, (30..40).map(|i| format!("n{i}")).collect::<Vec<_>>());
}

#[actix_web::test]
async fn joins_history_and_typing_share_a_limit_of_60_at_once() {
    let (_app, mut alice) = alice_with_the_default_limits().await;
    // The join took one of the 60; at 20/s it is back within 50 ms, and the
    // bucket holds no more than 60.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 70 requests in one write are handled back to back, well within the
    // 50 ms a token takes to come back.
    alice.burst((0..70).map(|_| json!({"type": "history", "room": "lobby", "limit": 5}))).await;
    // The refusals are written by the session at once, the answers after a
    // trip through the ChatServer, so they may come in any order: count them.
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..70 {
        let frame = alice.recv().await;
        match frame["type"].as_str() {
            Some("history") => {
                assert_eq!(frame, json!({"type": "history", "room": "lobby", "messages": []}));
                answered += 1;
            }
            Some("error") => {
                assert_eq!((frame["code"].as_str(), frame["room"].as_str()), (Some("rate_limited"), Some("lobby")));
                refused += 1;
            }
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!((answered, refused), (60, 10));
    // A typing notice and a join count against the same limit: refused too.
    alice
        .burst([
            json!({"type": "typing", "room": "lobby"}),
            json!({"type": "join_room", "room": "other", "name": "alice"}),
            json!({"type": "ping"}),
        ])
        .await;
    for _ in 0..2 {
        let frame = alice.recv().await;
        assert_eq!((frame["type"].as_str(), frame["code"].as_str()), (Some("error"), Some("rate_limited")), "{frame}");
    }
    assert_eq!(alice.recv().await, json!({"type": "pong"}), "ping is not limited");
    // Sends have a bucket of their own: untouched.
    alice.burst([json!({"type": "send_message", "room": "lobby", "text": "still", "nonce": "s"})]).await;
    let own = alice.recv().await;
    assert_eq!((own["type"].as_str(), own["nonce"].as_str()), (Some("message"), Some("s")), "{own}");
}

// ---------------------------------------------------------------------------
// 6. The session-queue bound (`--session-queue-bytes`). The other bound,
// `--session-buffer-bytes`, is what drops the non-reader of
// slow_clients::a_client_that_stops_reading_is_dropped_and_others_keep_receiving
// (its session keeps taking its mailbox; what piles up is the write buffer).
//
// Frames wait for a session, rather than in its write buffer, while a
// history lookup it must answer first is in flight. The lookup is held up
// by taking the pool's one connection: a write through the pool (making a
// bot token) waits for SQLite's lock for 5 s while the test holds the
// writer's lock.

/// Takes the app's only pooled connection (`db_pool_size` 1) for about 5 s:
/// answers once `/healthz` shows the pool busy for a whole `db_timeout_secs`.
async fn occupy_the_pool(app: &TestApp) -> (crate::databases::WriterLock, tokio::task::JoinHandle<u16>) {
    app.db.wait_for_room("lobby").await;
    let lock = app.db.lock_out_writer();
    let (url, client) = (app.url("/admin/bots"), app.http());
    let bot = tokio::task::spawn_local(async move {
        let resp = client.post(url).bearer_auth(ADMIN_TOKEN).send_json(&json!({"name": "blocker"})).await;
        resp.map(|r| r.status().as_u16()).unwrap_or(0)
    });
    let start = Instant::now();
    loop {
        let (_, health) = app.get_json("/healthz").await;
        if health["database"] == "unavailable" {
            return (lock, bot);
        }
        assert!(start.elapsed() < PATIENCE, "the pool never looked busy: {health}");
    }
}

#[actix_web::test]
async fn frames_piling_up_behind_a_history_lookup_past_the_session_queue_bound_drop_the_connection() {
    let app = spawn_app_with(|s| {
        s.session_queue_bytes = 64 * 1024;
        s.db_pool_size = 1;
        s.db_timeout_secs = 1;
        s.history_on_join = 100;
    })
    .await;
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    bob.say_all("lobby", (1..=150).map(|i| format!("m{i}"))).await;
    app.db.wait_for_ids("lobby", &(1..=150).collect::<Vec<_>>()).await;

    let (lock, bot) = occupy_the_pool(&app).await;
    // Its history (after id 1) lies below the 100 the tail keeps: the
    // session must wait for the pool, holding back the room's frames.
    let mut stalled = app.ws().await;
    stalled.send(json!({"type": "join_room", "room": "lobby", "name": "stalled", "since": 1})).await;
    let joined = bob.recv_type("presence").await;
    assert_eq!((joined["user"].as_str(), joined["action"].as_str()), (Some("stalled"), Some("join")));
    // 40 messages of 3000 bytes: more than the 64 KiB bound. Bob reads his
    // copy of each before the next, so his own session never falls behind.
    let text = "x".repeat(3000);
    let mut left = false;
    for _ in 0..40 {
        bob.send(json!({"type": "send_message", "room": "lobby", "text": text})).await;
        loop {
            let frame = bob.recv().await;
            match frame["type"].as_str() {
                Some("message") => break,
                Some("presence") if !left => {
                    assert_eq!((frame["user"].as_str(), frame["action"].as_str()), (Some("stalled"), Some("leave")));
                    left = true;
                }
                _ => panic!("unexpected {frame}"),
            }
        }
    }
    if !left {
        let frame = bob.recv().await;
        assert_eq!((frame["user"].as_str(), frame["action"].as_str()), (Some("stalled"), Some("leave")), "{frame}");
    }
    // The server wrote nothing else to it: the held `joined` never went out,
    // and the close came while its socket still had room.
    let (close, got) = stalled.read_until_closed(Duration::from_secs(20)).await;
    let close = close.expect("a close frame: nothing else was written to the socket");
    assert_eq!((close.code, close.reason.as_ref()), (CloseCode::Policy, "slow consumer"));
    assert_eq!(got, 0, "no frame before the close");
    bob.assert_open().await;
    lock.release();
    let _ = bot.await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("\nparlor_members 1\n"), "only bob is left: {metrics}");
}

// ---------------------------------------------------------------------------
// 7. A join whose history cannot be read: `unavailable`, then a `joined`
// with no history and `truncated`.

#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn a_join_during_a_database_cut_is_unavailable_then_joined_truncated(backend: Backend) {
    use crate::databases::{server_port, Proxy};
    let proxy = Proxy::start(server_port(backend)).await;
    let Some(test_db) = TestDatabase::create(backend) else { return };
    let app = crate::helpers::start_on(test_db, proxy.port, |s| {
        s.db_timeout_secs = 1;
        s.history_on_join = 100;
    });
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    alice.say_all("lobby", (1..=150).map(|i| format!("m{i}"))).await;
    app.db.wait_for_ids("lobby", &(1..=150).collect::<Vec<_>>()).await;

    proxy.cut();
    // Everything after id 1: below the 100 the tail keeps, so from the log.
    let mut bob = app.ws().await;
    bob.send(json!({"type": "join_room", "room": "lobby", "name": "bob", "since": 1})).await;
    let error = bob.recv().await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str(), error["room"].as_str()),
        (Some("error"), Some("unavailable"), Some("lobby")),
        "{error}"
    );
    let joined = bob.recv().await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!((joined["history"].clone(), joined["truncated"].clone()), (json!([]), json!(true)), "{joined}");
    assert_eq!(joined["members"], json!(["alice", "bob"]));

    // Bob is a member all the same: live chat goes on from memory.
    assert_eq!(alice.recv_type("presence").await["user"], "bob");
    assert_eq!(alice.say("lobby", "live").await["id"], 151);
    assert_eq!(bob.recv_type("message").await["id"], 151);

    // Once the database is back, he pages back for what he missed.
    proxy.restore();
    let start = Instant::now();
    loop {
        bob.send(json!({"type": "history", "room": "lobby", "before": 151, "limit": 100})).await;
        let answer = bob.recv().await;
        if answer["type"] == "history" {
            assert_eq!(ids(&answer["messages"]), (51..=150).collect::<Vec<_>>());
            break;
        }
        assert_eq!(answer["code"], "unavailable", "{answer}");
        assert!(start.elapsed() < Duration::from_secs(30), "the database never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(feature = "postgres")]
mod postgres_cut {
    #[actix_web::test]
    async fn a_join_during_a_database_cut_is_unavailable_then_joined_truncated() {
        super::a_join_during_a_database_cut_is_unavailable_then_joined_truncated(parlor::db::Backend::Postgres).await
    }
}

#[cfg(feature = "mysql")]
mod mysql_cut {
    #[actix_web::test]
    async fn a_join_during_a_database_cut_is_unavailable_then_joined_truncated() {
        super::a_join_during_a_database_cut_is_unavailable_then_joined_truncated(parlor::db::Backend::Mysql).await
    }
}

// ---------------------------------------------------------------------------
// 8. Graceful shutdown that the database cannot finish.

/// A server with message 1 committed and message 2 accepted but held back
/// by a lock on the database; answers the lock and the room's epoch.
async fn server_with_a_queued_message(
    db: &TestDatabase,
    server: &Binary,
) -> (crate::databases::WriterLock, String, WsClient) {
    let mut client = server.ws().await;
    let epoch = client.join("lobby", "alice").await["epoch"].as_str().unwrap().to_string();
    assert_eq!(client.say("lobby", "committed").await["id"], 1);
    db.wait_for_ids("lobby", &[1]).await;
    let lock = db.lock_out_writer();
    assert_eq!(client.say("lobby", "queued").await["id"], 2);
    (lock, epoch, client)
}

#[actix_web::test]
async fn sigterm_exits_after_the_shutdown_timeout_when_the_database_cannot_take_the_queue() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let mut server = Binary::start(&db, &["--shutdown-timeout-secs", "1"]);
    let (lock, epoch, mut client) = server_with_a_queued_message(&db, &server).await;

    server.signal("TERM");
    let (close, _) = client.read_until_closed(PATIENCE).await;
    let close = close.expect("a close frame");
    assert_eq!((close.code, close.reason.as_ref()), (CloseCode::Away, "server shutting down"));
    // The lock is held throughout: the process does not wait for it.
    let status = server.exited_within(Duration::from_secs(20)).await;
    assert!(
        status.is_some(),
        "the server still runs 20 s after SIGTERM with --shutdown-timeout-secs 1; its log:\n{}",
        server.log()
    );
    let log = server.log();
    assert!(log.contains("did not take the queued messages within 1s; exiting without them"), "{log}");
    assert_eq!(db.stored_ids("lobby"), [1]);
    lock.release();

    // The next start knows the stop was not clean: the room gets a new
    // epoch, so clients drop the lost id 2 they saw, which is given again.
    let server = Binary::start(&db, &[]);
    let mut client = server.ws().await;
    let joined = client.join("lobby", "bob").await;
    assert_ne!(joined["epoch"], epoch.as_str(), "a new epoch");
    assert_eq!(texts(&joined["history"]), ["committed"]);
    assert_eq!(client.say("lobby", "again").await["id"], 2);
}

#[actix_web::test]
async fn a_second_sigint_during_a_graceful_stop_kills_the_server_at_once() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    // A graceful stop that would wait ten minutes for the database.
    let mut server = Binary::start(&db, &["--shutdown-timeout-secs", "600"]);
    let (lock, _, mut client) = server_with_a_queued_message(&db, &server).await;

    server.signal("INT");
    let (close, _) = client.read_until_closed(PATIENCE).await;
    let close = close.expect("a close frame");
    assert_eq!((close.code, close.reason.as_ref()), (CloseCode::Away, "server shutting down"), "stopping gracefully");
    assert_eq!(server.child.try_wait().unwrap(), None, "still waiting for the database");

    server.signal("INT");
    let status = server.exited_within(Duration::from_secs(20)).await;
    assert!(
        status.is_some(),
        "the server still runs 20 s after a second SIGINT (its graceful stop waits 600 s); its log:\n{}",
        server.log()
    );
    assert_eq!(db.stored_ids("lobby"), [1], "it did not finish writing: it was killed");
    lock.release();
}
