//! The message log, on every backend: it survives restarts, loses nothing on
//! shutdown or when the database goes away, and refuses (rather than drops)
//! messages when the database falls behind.

use std::time::Duration;

use parlor::db::{self, Backend};
use serde_json::json;

use crate::databases::{on_every_backend, TestDatabase};
#[cfg(any(feature = "postgres", feature = "mysql"))]
use crate::databases::{server_port, Proxy};
use crate::helpers::{ids, spawn_app_on, texts};

on_every_backend!(
    history_survives_a_restart_and_ids_continue,
    graceful_shutdown_writes_every_accepted_message,
    a_full_write_queue_refuses_new_messages_and_loses_none,
    history_beyond_the_in_memory_tail_comes_from_the_database,
    migrations_run_down_and_up_again,
);

async fn history_survives_a_restart_and_ids_continue(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    for i in 1..=3 {
        alice.say("lobby", &format!("before restart {i} ✓")).await;
    }
    alice.close().await;

    let app = app.restart().await;
    let mut bob = app.ws().await;
    let joined = bob.join("lobby", "bob").await;
    assert_eq!(texts(&joined["history"]), ["before restart 1 ✓", "before restart 2 ✓", "before restart 3 ✓"]);
    assert_eq!(joined["history"][0]["user"], "alice");
    assert_eq!(bob.say("lobby", "after").await["id"], 4, "ids continue from the log");

    // The room itself is remembered: the bot API knows it.
    let app = app.restart().await;
    let (status, _) = app.post_as("bot", "lobby", "x").await;
    assert_eq!(status, 201);
    let (_, page) = app.get_json("/api/rooms/lobby/messages").await;
    assert_eq!(ids(&page["messages"]), [5, 4, 3, 2, 1]);
}

async fn graceful_shutdown_writes_every_accepted_message(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    app.db.wait_for_room("lobby").await;
    // The writer cannot commit, so a backlog builds up before shutdown.
    let lock = app.db.lock_out_writer();
    for i in 0..300 {
        alice.send(json!({"type": "send_message", "room": "lobby", "text": format!("m{i}")})).await;
    }
    let mut accepted = Vec::new();
    for _ in 0..300 {
        accepted.push(alice.recv_type("message").await["id"].as_i64().unwrap());
    }
    assert_eq!(accepted, (1..=300).collect::<Vec<_>>());
    assert!(app.db.stored_ids("lobby").is_empty(), "the backlog is not written yet");

    let unlock = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        lock.release();
    });
    let db = app.stop().await;
    unlock.join().unwrap();
    assert_eq!(db.stored_ids("lobby"), accepted, "stop() returned only after the backlog was written");
}

async fn a_full_write_queue_refuses_new_messages_and_loses_none(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |s| s.write_queue = 4).await else { return };
    let (mut alice, mut bob) = app.alice_and_bob_in_lobby().await;

    let lock = app.db.lock_out_writer();
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

    lock.release();
    app.db.wait_for_ids("lobby", &accepted).await;
    // Once the writer catches up, sending works again.
    assert_eq!(alice.say("lobby", "back").await["id"].as_i64(), Some(accepted.len() as i64 + 1));
}

async fn history_beyond_the_in_memory_tail_comes_from_the_database(backend: Backend) {
    // The tail keeps the latest 100 persisted messages while a room has
    // members; older pages are merged from the database.
    let Some(app) = spawn_app_on(backend, |s| s.history_on_join = 100).await else { return };
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    alice.say_all("lobby", (1..=150).map(|i| format!("m{i}"))).await;
    app.db.wait_for_ids("lobby", &(1..=150).collect::<Vec<_>>()).await;

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

async fn migrations_run_down_and_up_again(backend: Backend) {
    let Some(test_db) = TestDatabase::create(backend) else { return };
    let mut conn = test_db.connect();
    db::run_migrations(&mut conn).expect("up");
    assert!(test_db.stored_ids("lobby").is_empty(), "the tables exist");
    db::revert_migrations(&mut conn).expect("down");
    let gone = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test_db.stored_ids("lobby")));
    assert!(gone.is_err(), "down.sql dropped the tables");
    db::run_migrations(&mut conn).expect("up again");
    assert!(!test_db.has_room("lobby"));
}

/// A TCP proxy between Parlor and the database is cut while clients chat:
/// chat goes on, and once it is back every accepted message is in the log
/// exactly once, in order.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn a_cut_database_connection_loses_nothing(backend: Backend) {
    let proxy = Proxy::start(server_port(backend)).await;
    let Some(test_db) = TestDatabase::create(backend) else { return };
    let app = crate::helpers::start_on(test_db, proxy.port, |s| s.db_timeout_secs = 1);
    let mut alice = app.ws().await;
    let mut bob = app.ws().await;
    alice.join("lobby", "alice").await;
    bob.join("lobby", "bob").await;
    for i in 1..=20 {
        alice.say("lobby", &format!("before {i}")).await;
    }
    app.db.wait_for_ids("lobby", &(1..=20).collect::<Vec<_>>()).await;

    proxy.cut();
    for i in 21..=50 {
        let own = alice.say("lobby", &format!("during {i}")).await;
        assert_eq!(own["id"], i, "accepted while the database is away");
    }
    let seen: Vec<i64> = {
        let mut seen = Vec::new();
        while seen.len() < 50 {
            let frame = bob.recv_type("message").await;
            seen.push(frame["id"].as_i64().unwrap());
        }
        seen
    };
    assert_eq!(seen, (1..=50).collect::<Vec<_>>(), "bob kept receiving");
    let (status, body) = app.get_json("/healthz").await;
    assert_eq!((status, body["database"].as_str()), (503, Some("unavailable")));
    assert!(app.db.stored_ids("lobby").len() < 50, "nothing new reached the log while cut");

    proxy.restore();
    app.db.wait_for_ids("lobby", &(1..=50).collect::<Vec<_>>()).await;
    assert_eq!(alice.say("lobby", "after").await["id"], 51);
    app.db.wait_for_ids("lobby", &(1..=51).collect::<Vec<_>>()).await;
    assert_eq!(app.get_json("/healthz").await.0, 200);
}

/// A database that refuses is reported at start-up, naming the backend.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn a_refused_connection_fails_start_up_with_the_reason(backend: Backend) {
    let scheme = if backend == Backend::Postgres { "postgres" } else { "mysql" };
    let mut settings = parlor::configuration::Settings::defaults();
    settings.bind = "127.0.0.1:0".into();
    // Port 1 on loopback: nothing listens there.
    settings.database_url = format!("{scheme}://user@127.0.0.1:1/parlor").parse().unwrap();
    let started = std::time::Instant::now();
    let err = parlor::startup::Application::build(settings).err().expect("start-up fails").to_string();
    assert!(err.contains(&format!("cannot connect to {}", backend.label())), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "failed at once, not after a pool timeout");
}

#[cfg(feature = "postgres")]
mod postgres_faults {
    use super::*;

    #[actix_web::test]
    async fn a_cut_database_connection_loses_nothing() {
        super::a_cut_database_connection_loses_nothing(Backend::Postgres).await
    }

    #[actix_web::test]
    async fn a_refused_connection_fails_start_up_with_the_reason() {
        super::a_refused_connection_fails_start_up_with_the_reason(Backend::Postgres).await
    }
}

#[cfg(feature = "mysql")]
mod mysql_faults {
    use super::*;

    #[actix_web::test]
    async fn a_cut_database_connection_loses_nothing() {
        super::a_cut_database_connection_loses_nothing(Backend::Mysql).await
    }

    #[actix_web::test]
    async fn a_refused_connection_fails_start_up_with_the_reason() {
        super::a_refused_connection_fails_start_up_with_the_reason(Backend::Mysql).await
    }
}
