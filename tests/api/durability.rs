//! What an acknowledgement promises, proven against the real binary killed
//! with SIGKILL, and the recovery paths: epochs that change when ids cannot
//! be trusted, resends recognised from the log, a stalled database that is
//! reported and bounded, and rows the database refuses set aside.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use parlor::db::Backend;
use rand::Rng;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::binary::Binary;
use crate::databases::{on_every_backend, TestDatabase};
use crate::helpers::{ids, spawn_app_on, spawn_app_with, WsClient, ADMIN_TOKEN, PATIENCE};

/// (id, text) of every message stored for `room`.
fn stored(db: &TestDatabase, room: &str) -> BTreeMap<i64, String> {
    db.stored_messages(room).into_iter().collect()
}

/// Sends numbered messages with nonces, up to 32 unanswered at a time, until
/// the connection ends; answers each acknowledged (id, text) and when it
/// was acknowledged.
async fn send_until_cut(client: &mut WsClient, room: &str, run: usize) -> Vec<(i64, String, Instant)> {
    let mut acked = Vec::new();
    let (mut sent, mut answered) = (0usize, 0usize);
    loop {
        while sent - answered < 32 {
            let frame = json!({"type": "send_message", "room": room, "text": format!("r{run} m{sent}"), "nonce": format!("r{run}-{sent}")});
            if !client.try_send(frame).await {
                return acked;
            }
            sent += 1;
        }
        let Some(frame) = client.try_recv(PATIENCE).await else { return acked };
        match frame["type"].as_str() {
            Some("message") if frame["nonce"].is_string() => {
                answered += 1;
                acked.push((
                    frame["id"].as_i64().unwrap(),
                    frame["text"].as_str().unwrap().to_string(),
                    Instant::now(),
                ));
            }
            Some("error") => panic!("a send was refused: {frame}"),
            _ => {}
        }
    }
}

#[actix_web::test]
async fn sigkill_under_load_with_durable_ack_loses_no_acknowledged_message() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let mut rng = rand::thread_rng();
    let (mut total_acked, mut highest_seen) = (0, 0);
    for run in 0..8 {
        let server = Binary::start(&db, &["--durable-ack"]);
        let mut client = server.ws().await;
        let joined = client.join("load", "loader").await;
        // Everything acknowledged before is there after the restart.
        assert!(ids(&joined["history"]).last().is_none_or(|id| *id >= highest_seen));
        let kill_after = Duration::from_millis(rng.gen_range(50..600));
        let killer = async {
            tokio::time::sleep(kill_after).await;
            server.kill();
        };
        let (acked, ()) = tokio::join!(send_until_cut(&mut client, "load", run), killer);
        assert!(!acked.is_empty(), "run {run}: something was acknowledged before the kill");
        let log = stored(&db, "load");
        for (id, text, _) in &acked {
            assert_eq!(log.get(id), Some(text), "run {run}: acknowledged message {id} is in the log");
            assert!(*id > highest_seen, "run {run}: id {id} was given before");
        }
        highest_seen = acked.iter().map(|(id, _, _)| *id).max().unwrap();
        total_acked += acked.len();
    }
    eprintln!("durable-ack: 8 SIGKILL runs, {total_acked} acknowledged messages, none lost");
}

#[actix_web::test]
async fn sigkill_without_durable_ack_loses_only_the_last_moments_and_starts_a_new_epoch() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let server = Binary::start(&db, &["--max-unwritten-secs", "2"]);
    let mut client = server.ws().await;
    let epoch = client.join("load", "loader").await["epoch"].as_str().unwrap().to_string();
    let killer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let at = Instant::now();
        server.kill();
        at
    };
    let (acked, killed_at) = tokio::join!(send_until_cut(&mut client, "load", 0), killer);
    let log = stored(&db, "load");
    for (id, text, at) in &acked {
        if log.get(id) != Some(text) {
            // The stated window: what the log had not committed, never
            // more than --max-unwritten-secs of messages.
            assert!(killed_at.duration_since(*at) < Duration::from_secs(2), "message {id} lost from long before");
        }
    }

    let server = Binary::start(&db, &[]);
    let mut client = server.ws().await;
    let seen = acked.iter().map(|(id, _, _)| *id).max().unwrap();
    client.send(json!({"type": "join_room", "room": "load", "name": "loader", "since": seen, "epoch": epoch})).await;
    let joined = client.recv_type("joined").await;
    assert_ne!(joined["epoch"], epoch.as_str(), "after a crash the ids of the old epoch are not trusted");
    let latest: Vec<i64> = stored(&db, "load").into_keys().rev().take(50).rev().collect();
    assert_eq!(ids(&joined["history"]), latest, "the client gets the latest history, not a gap");
}

#[actix_web::test]
async fn a_graceful_stop_keeps_the_epoch_and_since_works_across_it() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let server = Binary::start(&db, &[]);
    let mut client = server.ws().await;
    let epoch = client.join("lobby", "alice").await["epoch"].as_str().unwrap().to_string();
    assert_eq!(epoch.len(), 16, "{epoch}");
    for i in 1..=3 {
        client.say("lobby", &format!("m{i}")).await;
    }
    server.terminate();

    let server = Binary::start(&db, &[]);
    let mut client = server.ws().await;
    client.send(json!({"type": "join_room", "room": "lobby", "name": "alice", "since": 2, "epoch": epoch})).await;
    let joined = client.recv_type("joined").await;
    assert_eq!(joined["epoch"], epoch.as_str());
    assert_eq!(ids(&joined["history"]), [3], "only what the client missed");
}

#[actix_web::test]
async fn ids_are_not_given_again_after_the_newest_message_is_deleted() {
    let app = spawn_app_with(|_| {}).await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    for text in ["a", "b", "c"] {
        alice.say("lobby", text).await;
    }
    let resp =
        app.http().delete(app.url("/admin/rooms/lobby/messages/3")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    app.db.wait_for_ids("lobby", &[1, 2]).await;
    alice.close().await;

    let app = app.restart().await;
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    assert_eq!(bob.say("lobby", "d").await["id"], 4, "id 3 was seen, and deleted; it is not given again");
}

#[actix_web::test]
async fn a_client_beyond_the_log_gets_a_new_epoch_and_the_latest_history() {
    let app = spawn_app_with(|_| {}).await;
    let mut alice = app.ws().await;
    let epoch = alice.join("lobby", "alice").await["epoch"].as_str().unwrap().to_string();
    alice.say("lobby", "one").await;

    // A client of another epoch: `since` means nothing, the latest come.
    let mut bob = app.ws().await;
    bob.send(json!({"type": "join_room", "room": "lobby", "name": "bob", "since": 1, "epoch": "0123456789abcdef"}))
        .await;
    let joined = bob.recv_type("joined").await;
    assert_eq!(joined["epoch"], epoch.as_str());
    assert_eq!(ids(&joined["history"]), [1]);

    // An epoch this process began has no ids beyond the room's last: such a
    // `since` is no evidence of anything, and renews nothing.
    let mut eve = app.ws().await;
    eve.send(json!({"type": "join_room", "room": "lobby", "name": "eve", "since": 50, "epoch": epoch})).await;
    let joined = eve.recv_type("joined").await;
    assert_eq!((joined["epoch"].as_str(), ids(&joined["history"])), (Some(epoch.as_str()), vec![1]));

    // After a restart, a client of this epoch that saw ids the log never
    // had (a restored backup): the room starts a new epoch.
    let app = app.restart().await;
    let mut carol = app.ws().await;
    carol.send(json!({"type": "join_room", "room": "lobby", "name": "carol", "since": 50, "epoch": epoch})).await;
    let joined = carol.recv_type("joined").await;
    let renewed = joined["epoch"].as_str().unwrap().to_string();
    assert_ne!(renewed, epoch);
    assert_eq!(ids(&joined["history"]), [1]);
    // And it outlives a restart.
    let app = app.restart().await;
    let mut dave = app.ws().await;
    assert_eq!(dave.join("lobby", "dave").await["epoch"], renewed.as_str());
    // HTTP clients see the same epoch beside the ids.
    let (_, page) = app.get_json("/api/rooms/lobby/messages").await;
    assert_eq!((page["epoch"].as_str(), ids(&page["messages"])), (Some(renewed.as_str()), vec![1]));
    let (status, posted) = app.post_as("bot", "lobby", "two").await;
    assert_eq!((status, posted["id"].as_i64(), posted["epoch"].as_str()), (201, Some(2), Some(renewed.as_str())));
}

/// Sends `text` with `nonce` and answers the sender's copy.
async fn send_with_nonce(client: &mut WsClient, text: &str, nonce: &str) -> Value {
    client.send(json!({"type": "send_message", "room": "lobby", "text": text, "nonce": nonce})).await;
    let own = client.recv_type("message").await;
    assert_eq!(own["nonce"], nonce, "{own}");
    own
}

#[actix_web::test]
async fn a_resend_is_stored_once_after_a_restart_an_emptied_room_and_many_later_messages() {
    let app = spawn_app_with(|_| {}).await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    assert_eq!(send_with_nonce(&mut alice, "hello", "n-123").await["id"], 1);
    alice.close().await;

    // After a restart the room's memory is empty: the log answers.
    let app = app.restart().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    assert_eq!(send_with_nonce(&mut alice, "hello", "n-123").await["id"], 1, "the stored copy, not a second");
    app.db.wait_for_ids("lobby", &[1]).await;

    // 300 later messages push it out of the room's memory.
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    for i in 0..300 {
        bob.say("lobby", &format!("later {i}")).await;
    }
    alice.close().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    assert_eq!(send_with_nonce(&mut alice, "hello", "n-123").await["id"], 1);

    // The same nonce from another name, or with another text, is a new message.
    assert_eq!(send_with_nonce(&mut bob, "hello", "n-123").await["id"], 302);
    assert_eq!(alice.recv_type("message").await["user"], "bob");
    assert_eq!(send_with_nonce(&mut alice, "hello again", "n-123").await["id"], 303);
    let want: Vec<i64> = (1..=303).collect();
    app.db.wait_for_ids("lobby", &want).await;
}

#[actix_web::test]
async fn with_durable_ack_nothing_is_confirmed_or_delivered_before_the_commit() {
    let app = spawn_app_with(|s| s.durable_ack = true).await;
    let (mut alice, mut bob) = app.alice_and_bob_in_lobby().await;

    let lock = app.db.lock_out_writer();
    alice.send(json!({"type": "send_message", "room": "lobby", "text": "kept", "nonce": "k1"})).await;
    // A ping round trip proves the send was handled; no copy came with it.
    alice.send(json!({"type": "ping"})).await;
    assert_eq!(alice.recv().await["type"], "pong");
    bob.expect_silence(Duration::from_millis(300)).await;
    assert!(app.db.stored_ids("lobby").is_empty());
    // Nobody has seen it: an admin cannot delete it before it is stored.
    let resp = app.http().delete(app.url("/admin/rooms/lobby/messages/1")).bearer_auth(ADMIN_TOKEN).send().await;
    assert_eq!(resp.unwrap().status(), 503);

    lock.release();
    let own = alice.recv_type("message").await;
    assert_eq!((own["id"].as_i64(), own["nonce"].as_str()), (Some(1), Some("k1")));
    assert_eq!(bob.recv_type("message").await["text"], "kept");
    assert_eq!(app.db.stored_ids("lobby"), [1], "confirmed means committed");
}

async fn healthz(app: &crate::helpers::TestApp) -> (u16, Value) {
    app.get_json("/healthz").await
}

#[actix_web::test]
async fn a_stalled_database_is_reported_and_sends_are_refused_past_the_bound() {
    let app = spawn_app_with(|s| s.max_unwritten_secs = 1).await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    app.db.wait_for_room("lobby").await;
    let (status, health) = healthz(&app).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")), "{health}");

    let lock = app.db.lock_out_writer();
    let first = alice.say("lobby", "accepted while the log waits").await;
    assert_eq!(first["id"], 1);
    // Wait for the state, not for a time: /healthz turns degraded, then
    // sends are refused.
    let start = Instant::now();
    loop {
        let (status, health) = healthz(&app).await;
        if health["writer"] == "stalled" {
            assert_eq!((status, health["status"].as_str()), (503, Some("degraded")), "{health}");
            assert!(health["oldest_unwritten_ms"].as_u64().unwrap() > 1000, "{health}");
            break;
        }
        assert!(start.elapsed() < PATIENCE, "never reported: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alice.send(json!({"type": "send_message", "room": "lobby", "text": "refused", "nonce": "r1"})).await;
    let refused = alice.recv_type("error").await;
    assert_eq!((refused["code"].as_str(), refused["nonce"].as_str()), (Some("unavailable"), Some("r1")));
    assert!(refused["message"].as_str().unwrap().contains("has not been able to write"), "{refused}");

    lock.release();
    app.db.wait_for_ids("lobby", &[1]).await;
    let start = Instant::now();
    while healthz(&app).await.0 != 200 {
        assert!(start.elapsed() < PATIENCE, "health never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(alice.say("lobby", "back").await["id"], 2, "the refused send took no id");
}

/// A constraint that makes the database refuse one text, as one added by
/// an operator would (SQLite cannot add a CHECK to a table: a trigger).
fn poison(db: &TestDatabase) {
    let sql = match db.backend {
        Backend::Sqlite => {
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages WHEN NEW.body = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'refuse_poison'); END;"
        }
        Backend::Postgres | Backend::Mysql => {
            "ALTER TABLE messages ADD CONSTRAINT refuse_poison CHECK (body <> 'poison')"
        }
    };
    db.connect().batch_execute(sql).unwrap();
}

on_every_backend!(a_row_the_database_refuses_is_set_aside_and_the_log_goes_on);

async fn a_row_the_database_refuses_is_set_aside_and_the_log_goes_on(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    app.db.wait_for_room("lobby").await;
    poison(&app.db);
    let lock = app.db.lock_out_writer();
    // One batch with the bad row in the middle.
    for text in ["before", "poison", "after"] {
        alice.say("lobby", text).await;
    }
    lock.release();
    app.db.wait_for_ids("lobby", &[1, 3]).await;

    let (status, letters) = app.get_json_as_admin("/admin/dead-letters").await;
    assert_eq!(status, 200);
    assert_eq!(letters["count"], 1, "{letters}");
    assert_eq!(letters["entries"][0]["message_id"], 2);
    assert!(letters["entries"][0]["error"].as_str().unwrap().contains("refuse_poison"), "{letters}");
    assert_eq!(alice.say("lobby", "still writing").await["id"], 4);
    app.db.wait_for_ids("lobby", &[1, 3, 4]).await;
    let metrics = app.metrics().await;
    assert!(metrics.contains("parlor_dead_letters_total 1\n"), "{metrics}");
}

#[actix_web::test]
async fn with_durable_ack_a_refused_row_is_delivered_to_no_one_and_its_sender_is_told() {
    let app = spawn_app_with(|s| s.durable_ack = true).await;
    let (mut alice, mut bob) = app.alice_and_bob_in_lobby().await;
    poison(&app.db);
    alice.send(json!({"type": "send_message", "room": "lobby", "text": "poison", "nonce": "p"})).await;
    let error = alice.recv_type("error").await;
    assert_eq!((error["code"].as_str(), error["nonce"].as_str()), (Some("not_stored"), Some("p")));
    assert_eq!(send_with_nonce(&mut alice, "fine", "f").await["id"], 2);
    let seen = bob.recv_type("message").await;
    assert_eq!((seen["id"].as_i64(), seen["text"].as_str()), (Some(2), Some("fine")), "bob never saw the refused one");
}

#[actix_web::test]
async fn metrics_count_what_happened_and_are_only_for_this_machine_or_admins() {
    let app = spawn_app_with(|_| {}).await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    alice.recv_type("presence").await;
    for text in ["one", "two"] {
        alice.say("lobby", text).await;
        bob.recv_type("message").await;
    }
    app.db.wait_for_ids("lobby", &[1, 2]).await;
    alice.send(json!({"type": "send_message", "room": "lobby", "text": "x".repeat(5000), "nonce": "big"})).await;
    assert_eq!(alice.recv_type("error").await["code"], "too_large");
    let metrics = app.metrics().await;
    let value = |name: &str| -> f64 {
        let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("parlor_messages_accepted_total "), 2.0);
    assert_eq!(value("parlor_messages_refused_total{reason=\"too_large\"} "), 1.0);
    assert_eq!(value("parlor_joins_total "), 2.0);
    assert_eq!(value("parlor_rooms "), 1.0);
    assert_eq!(value("parlor_members "), 2.0);
    assert_eq!(value("parlor_socket_buffer_bytes "), 0.0, "both clients keep up");
    assert_eq!(value("parlor_connections{kind=\"guest\"} "), 2.0);
    // Two messages to two members (the sender's own copy included), and
    // one presence notice to alice.
    assert_eq!(value("parlor_deliveries_total "), 5.0);
    assert!(value("parlor_commit_seconds_count ") >= 1.0);
    assert!(value("parlor_process_open_fds ") >= 4.0);

    // Every series the Grafana dashboard draws is one the server serves.
    let dashboard =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-dashboard.json")).unwrap();
    let mut drawn: Vec<&str> = dashboard
        .match_indices("parlor_")
        .map(|(at, _)| {
            let rest = &dashboard[at..];
            &rest[..rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len())]
        })
        .collect();
    drawn.sort_unstable();
    drawn.dedup();
    assert!(drawn.len() >= 15, "{drawn:?}");
    for series in drawn {
        assert!(
            metrics.contains(&format!(
                "# TYPE {}",
                series
                    .trim_end_matches("_total")
                    .trim_end_matches("_bucket")
                    .trim_end_matches("_sum")
                    .trim_end_matches("_count")
            )),
            "{series} is not served"
        );
    }

    // Through a proxy, not from this machine: the admin token is needed.
    let resp = app.http().get(app.url("/metrics")).insert_header(("X-Forwarded-For", "203.0.113.9")).send().await;
    assert_eq!(resp.unwrap().status(), 401);
    let resp = app
        .http()
        .get(app.url("/metrics"))
        .insert_header(("X-Forwarded-For", "203.0.113.9"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await;
    assert_eq!(resp.unwrap().status(), 200);
}

#[actix_web::test]
async fn an_admin_change_and_its_audit_entry_are_committed_together() {
    let app = spawn_app_with(|_| {}).await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    app.db.wait_for_room("lobby").await;
    let lock = app.db.lock_out_writer();
    let empty = json!({});
    let close = app.post_json_as_admin("/admin/rooms/lobby/close", &empty);
    let meanwhile = async {
        // The answer waits for the commit; meanwhile the room is closed to
        // its members already, and neither change nor entry is in the log.
        assert_eq!(alice.recv_type("room_closed").await["room"], "lobby");
        assert_eq!(audit_actions(&app.db), HashSet::new());
        assert!(!closed_in_log(&app.db));
        lock.release();
    };
    let ((status, _), ()) = tokio::join!(close, meanwhile);
    assert_eq!(status, 200);
    // Both are in the log once the action is answered.
    assert!(closed_in_log(&app.db));
    assert_eq!(audit_actions(&app.db), HashSet::from(["close_room".to_string()]));
    let app = app.restart().await;
    let mut bob = app.ws().await;
    bob.send(json!({"type": "join_room", "room": "lobby", "name": "bob"})).await;
    assert_eq!(bob.recv_type("error").await["code"], "room_closed");
}

fn closed_in_log(db: &TestDatabase) -> bool {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let sql = "SELECT COUNT(*) AS n FROM rooms WHERE name = 'lobby' AND closed_at IS NOT NULL";
    diesel::sql_query(sql).get_result::<Row>(&mut db.connect()).unwrap().n == 1
}

fn audit_actions(db: &TestDatabase) -> HashSet<String> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        action: String,
    }
    diesel::sql_query("SELECT action FROM audit_log")
        .load::<Row>(&mut db.connect())
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect()
}

/// `GET` on the binary, answering the status and the JSON body.
async fn get_from(server: &Binary, path: &str) -> (u16, Value) {
    let mut resp = awc::Client::new().get(format!("http://127.0.0.1:{}{path}", server.port)).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[actix_web::test]
async fn sigterm_drains_first_not_ready_and_no_new_sockets_while_the_open_ones_go_on() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let mut server = Binary::start(&db, &["--drain-secs", "3"]);
    let mut alice = server.ws().await;
    alice.join("lobby", "alice").await;
    let mut bob = crate::socketio::Sio::polling_on(server.port).await;
    bob.connect(None).await;
    bob.join("lobby", "bob").await;
    assert_eq!(get_from(&server, "/readyz").await, (200, json!({"status": "ready"})));

    server.signal("TERM");
    let start = Instant::now();
    while get_from(&server, "/readyz").await.0 != 503 {
        assert!(start.elapsed() < PATIENCE, "never said it is draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get_from(&server, "/readyz").await, (503, json!({"status": "draining"})));
    // New sockets go elsewhere (the balancer's next node); this one still chats.
    let refused = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws", server.port)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected a 503 to the handshake, got {other:?}"),
    }
    let mut resp = awc::Client::new()
        .get(format!("http://127.0.0.1:{}/socket.io/?EIO=4&transport=polling", server.port))
        .send()
        .await
        .unwrap();
    assert_eq!((resp.status().as_u16(), resp.headers().contains_key("retry-after")), (503, true));
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["code"], 3);
    assert_eq!(alice.say("lobby", "still here").await["id"], 1);
    // A Socket.IO client already polling goes on too.
    let (ack, _) = bob.call(1, "send_message", json!({"room": "lobby", "text": "me too"})).await;
    assert_eq!(ack[0]["id"], 2, "{ack}");
    assert_eq!(alice.recv_type("message").await["text"], "me too");
    // Then the open ones are closed, as on any stop, and everything is kept.
    let (close, _) = alice.read_until_closed(PATIENCE).await;
    assert_eq!(close.expect("a close frame").code, CloseCode::Away);
    assert!(server.exited_within(PATIENCE).await.is_some_and(|status| status.success()));
    assert_eq!(db.stored_ids("lobby"), [1, 2]);
}
