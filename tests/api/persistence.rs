//! The message log: it survives restarts, loses nothing on shutdown, and
//! refuses (rather than drops) messages when the database falls behind.

use std::path::Path;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::sqlite::SqliteConnection;
use serde_json::json;

use crate::helpers::{ids, spawn_app, spawn_app_with, texts};

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The ids stored for `room`, read straight from the SQLite file.
fn stored_ids(db: &Path, room: &str) -> Vec<i64> {
    let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    conn.batch_execute("PRAGMA busy_timeout = 5000").unwrap();
    diesel::sql_query("SELECT id FROM messages WHERE room = ? ORDER BY id")
        .bind::<diesel::sql_types::Text, _>(room)
        .load::<Row>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

/// Waits until the room's row is in the log.
async fn wait_for_room(db: &Path, room: &str) {
    let start = Instant::now();
    loop {
        let mut conn = SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        let found: i64 =
            diesel::select(diesel::dsl::sql::<BigInt>(&format!("(SELECT COUNT(*) FROM rooms WHERE name = '{room}')")))
                .get_result(&mut conn)
                .unwrap();
        if found == 1 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "room {room} never reached the log");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_ids(db: &Path, room: &str, want: &[i64]) {
    let start = Instant::now();
    loop {
        let got = stored_ids(db, room);
        if got == want {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "log has {got:?}, expected {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn history_survives_a_restart_and_ids_continue() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    for i in 1..=3 {
        alice.say("lobby", &format!("before restart {i}")).await;
    }
    alice.close().await;

    let app = app.restart().await;
    let mut bob = app.ws().await;
    let joined = bob.join("lobby", "bob").await;
    assert_eq!(texts(&joined["history"]), ["before restart 1", "before restart 2", "before restart 3"]);
    assert_eq!(joined["history"][0]["user"], "alice");
    assert_eq!(bob.say("lobby", "after").await["id"], 4, "ids continue from the log");

    // The room itself is remembered: the bot API knows it.
    let app = app.restart().await;
    let (status, _) = app.post_json("/store_message", &json!({"room": "lobby", "user": "bot", "text": "x"})).await;
    assert_eq!(status, 201);
    let (_, page) = app.get_json("/api/rooms/lobby/messages").await;
    assert_eq!(ids(&page["messages"]), [5, 4, 3, 2, 1]);
}

#[actix_web::test]
async fn graceful_shutdown_writes_every_accepted_message() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    for i in 0..300 {
        alice.send(json!({"type": "send_message", "room": "lobby", "text": format!("m{i}")})).await;
    }
    let mut accepted = Vec::new();
    for _ in 0..300 {
        accepted.push(alice.recv_type("message").await["id"].as_i64().unwrap());
    }
    assert_eq!(accepted, (1..=300).collect::<Vec<_>>());
    // Stop while the database is locked by another process for a second, so
    // the writer still holds a backlog when shutdown begins.
    wait_for_room(&app.db_path, "lobby").await;
    let mut locker = SqliteConnection::establish(app.db_path.to_str().unwrap()).unwrap();
    locker.batch_execute("BEGIN EXCLUSIVE").unwrap();
    for i in 300..400 {
        alice.send(json!({"type": "send_message", "room": "lobby", "text": format!("m{i}")})).await;
        accepted.push(alice.recv_type("message").await["id"].as_i64().unwrap());
    }
    // WAL readers are not blocked by the lock.
    assert!(stored_ids(&app.db_path, "lobby").len() < 400, "the backlog is not written yet");
    let unlock = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        locker.batch_execute("COMMIT").unwrap();
    });
    let (db, _dir) = app.stop().await;
    unlock.join().unwrap();
    assert_eq!(stored_ids(&db, "lobby"), (1..=400).collect::<Vec<_>>());
}

#[actix_web::test]
async fn a_full_write_queue_refuses_new_messages_and_loses_none() {
    let app = spawn_app_with(|s| s.write_queue = 4).await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    alice.recv_type("presence").await;
    wait_for_room(&app.db_path, "lobby").await;

    // Another process holds the write lock: the writer cannot commit.
    let mut locker = SqliteConnection::establish(app.db_path.to_str().unwrap()).unwrap();
    locker.batch_execute("BEGIN EXCLUSIVE").unwrap();

    for i in 0..20 {
        alice
            .send(json!({"type": "send_message", "room": "lobby", "text": format!("m{i}"), "nonce": format!("n{i}")}))
            .await;
    }
    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..20 {
        let frame = alice.recv().await;
        match frame["type"].as_str() {
            Some("message") => accepted.push(frame["id"].as_i64().unwrap()),
            Some("error") => {
                assert_eq!(frame["code"], "unavailable", "{frame}");
                assert!(frame["nonce"].is_string(), "the refused message is named");
                refused += 1;
            }
            _ => panic!("unexpected {frame}"),
        }
    }
    assert!(refused > 0, "a full queue refuses");
    assert!(!accepted.is_empty());
    // Bob got exactly the accepted messages: nothing was delivered unstored.
    let mut bobs = Vec::new();
    for _ in 0..accepted.len() {
        bobs.push(bob.recv_type("message").await["id"].as_i64().unwrap());
    }
    assert_eq!(bobs, accepted);
    bob.expect_silence(Duration::from_millis(200)).await;

    // Chat goes on from memory while the log is stuck.
    let mut carol = app.ws().await;
    let joined = carol.join("lobby", "carol").await;
    assert_eq!(ids(&joined["history"]), accepted);

    locker.batch_execute("COMMIT").unwrap();
    wait_for_ids(&app.db_path, "lobby", &accepted).await;
    // Once the writer catches up, sending works again.
    assert_eq!(alice.say("lobby", "back").await["id"].as_i64(), Some(accepted.len() as i64 + 1));
}

#[actix_web::test]
async fn history_beyond_the_in_memory_tail_comes_from_the_database() {
    // The tail keeps the latest 100 persisted messages while a room has
    // members; older pages are merged from the database.
    let app = spawn_app_with(|s| s.history_on_join = 100).await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    for i in 1..=150 {
        alice.send(json!({"type": "send_message", "room": "lobby", "text": format!("m{i}")})).await;
    }
    for _ in 1..=150 {
        alice.recv_type("message").await;
    }
    wait_for_ids(&app.db_path, "lobby", &(1..=150).collect::<Vec<_>>()).await;

    // Straddling the tail's edge: part from the database, part from memory.
    alice.send(json!({"type": "history", "room": "lobby", "before": 60, "limit": 20})).await;
    assert_eq!(ids(&alice.recv_type("history").await["messages"]), (40..60).collect::<Vec<_>>());
    // Entirely below it.
    alice.send(json!({"type": "history", "room": "lobby", "before": 11, "limit": 20})).await;
    assert_eq!(ids(&alice.recv_type("history").await["messages"]), (1..11).collect::<Vec<_>>());

    // A reconnect that missed more than fits: the latest 100, truncated.
    let mut bob = app.ws().await;
    bob.send(json!({"type": "join_room", "room": "lobby", "name": "bob", "since": 20})).await;
    let joined = bob.recv_type("joined").await;
    assert_eq!(ids(&joined["history"]), (51..=150).collect::<Vec<_>>());
    assert_eq!(joined["truncated"], true);
    // After a restart nothing is in memory: the same answers from the database.
    drop((alice, bob));
    let app = app.restart().await;
    let mut dave = app.ws().await;
    dave.send(json!({"type": "join_room", "room": "lobby", "name": "dave", "since": 140})).await;
    let joined = dave.recv_type("joined").await;
    assert_eq!(ids(&joined["history"]), (141..=150).collect::<Vec<_>>());
    assert_eq!(joined["truncated"], false);
    dave.send(json!({"type": "history", "room": "lobby", "before": 60, "limit": 20})).await;
    assert_eq!(ids(&dave.recv_type("history").await["messages"]), (40..60).collect::<Vec<_>>());
}
