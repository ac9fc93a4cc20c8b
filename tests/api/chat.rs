//! Live chat over WebSockets: delivery, order, presence, typing, rooms.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{ids, spawn_app, texts};

#[actix_web::test]
async fn two_clients_see_each_others_messages_in_one_order() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    let mut bob = app.ws().await;
    alice.join("lobby", "alice").await;
    let joined = bob.join("lobby", "bob").await;
    assert_eq!(joined["members"], json!(["alice", "bob"]));
    assert_eq!(alice.recv_type("presence").await["user"], "bob");

    alice.send(json!({"type": "send_message", "room": "lobby", "text": "hi bob", "nonce": "c-1"})).await;
    bob.send(json!({"type": "send_message", "room": "lobby", "text": "hi alice", "nonce": "c-2"})).await;
    alice.send(json!({"type": "send_message", "room": "lobby", "text": "how are you?"})).await;

    let mut seen_by_alice = Vec::new();
    let mut seen_by_bob = Vec::new();
    for _ in 0..3 {
        seen_by_alice.push(alice.recv_type("message").await);
        seen_by_bob.push(bob.recv_type("message").await);
    }
    let order = |frames: &[serde_json::Value]| {
        frames.iter().map(|f| (f["id"].as_i64().unwrap(), f["text"].to_string())).collect::<Vec<_>>()
    };
    assert_eq!(order(&seen_by_alice), order(&seen_by_bob), "both see one order");
    let ids: Vec<i64> = seen_by_alice.iter().map(|f| f["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    for frame in seen_by_alice.iter().chain(&seen_by_bob) {
        assert_eq!(frame["room"], "lobby");
        assert!(frame["ts"].as_str().unwrap().ends_with('Z'));
    }
    // The nonce comes back on the sender's own copy only.
    let own = seen_by_alice.iter().find(|f| f["text"] == "hi bob").unwrap();
    assert_eq!(own["nonce"], "c-1");
    assert_eq!(own["user"], "alice");
    let others = seen_by_bob.iter().find(|f| f["text"] == "hi bob").unwrap();
    assert!(others.get("nonce").is_none(), "nonce leaked to another member: {others}");
    let bobs_own = seen_by_bob.iter().find(|f| f["text"] == "hi alice").unwrap();
    assert_eq!(bobs_own["nonce"], "c-2");
}

#[actix_web::test]
async fn rooms_are_isolated() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    let mut bob = app.ws().await;
    alice.join("red", "alice").await;
    bob.join("blue", "bob").await;

    alice.say("red", "only for red").await;
    let blue = bob.say("blue", "only for blue").await;
    assert_eq!(blue["id"], 1, "each room counts its own ids");
    bob.expect_silence(Duration::from_millis(300)).await;
    alice.expect_silence(Duration::from_millis(300)).await;
}

#[actix_web::test]
async fn one_socket_can_be_in_several_rooms() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("one", "alice").await;
    alice.join("two", "alice").await;
    let a = alice.say("one", "in one").await;
    let b = alice.say("two", "in two").await;
    assert_eq!((a["room"].as_str(), b["room"].as_str()), (Some("one"), Some("two")));

    alice.send(json!({"type": "leave_room", "room": "one"})).await;
    assert_eq!(alice.recv_type("left").await["room"], "one");
    alice.send(json!({"type": "send_message", "room": "one", "text": "gone"})).await;
    let err = alice.recv_type("error").await;
    assert_eq!(err["code"], "not_joined");
    assert_eq!(alice.say("two", "still here").await["text"], "still here");
}

#[actix_web::test]
async fn presence_on_join_leave_and_disconnect() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;

    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    let join = alice.recv().await;
    assert_eq!(join, json!({"type": "presence", "room": "lobby", "user": "bob", "action": "join", "members": 2}));

    bob.send(json!({"type": "leave_room", "room": "lobby"})).await;
    let leave = alice.recv().await;
    assert_eq!(leave, json!({"type": "presence", "room": "lobby", "user": "bob", "action": "leave", "members": 1}));

    let mut carol = app.ws().await;
    carol.join("lobby", "carol").await;
    assert_eq!(alice.recv().await["action"], "join");
    carol.close().await;
    let gone = alice.recv().await;
    assert_eq!(
        (gone["user"].as_str(), gone["action"].as_str(), gone["members"].as_i64()),
        (Some("carol"), Some("leave"), Some(1))
    );

    // A socket dropped without a close handshake counts as leaving too.
    let mut dave = app.ws().await;
    dave.join("lobby", "dave").await;
    assert_eq!(alice.recv().await["user"], "dave");
    drop(dave);
    let gone = alice.recv().await;
    assert_eq!((gone["user"].as_str(), gone["action"].as_str()), (Some("dave"), Some("leave")));
}

#[actix_web::test]
async fn typing_reaches_the_others_only() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    let mut bob = app.ws().await;
    alice.join("lobby", "alice").await;
    bob.join("lobby", "bob").await;
    alice.recv_type("presence").await;

    bob.send(json!({"type": "typing", "room": "lobby"})).await;
    assert_eq!(alice.recv().await, json!({"type": "typing", "room": "lobby", "user": "bob"}));
    bob.expect_silence(Duration::from_millis(200)).await;
}

#[actix_web::test]
async fn a_client_that_joins_gets_the_latest_history() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    for i in 1..=5 {
        alice.say("lobby", &format!("m{i}")).await;
    }
    let mut bob = app.ws().await;
    let joined = bob.join("lobby", "bob").await;
    assert_eq!(texts(&joined["history"]), ["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(ids(&joined["history"]), [1, 2, 3, 4, 5]);
    assert_eq!(joined["truncated"], false);
    assert_eq!(joined["history"][0]["user"], "alice");
}

#[actix_web::test]
async fn a_reconnect_with_since_gets_exactly_what_it_missed() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    let last_seen = bob.say("lobby", "before the drop").await["id"].as_i64().unwrap();
    drop(bob);

    for i in 1..=3 {
        alice.say("lobby", &format!("missed {i}")).await;
    }
    let mut bob = app.ws().await;
    bob.send(json!({"type": "join_room", "room": "lobby", "name": "bob", "since": last_seen})).await;
    let joined = bob.recv_type("joined").await;
    assert_eq!(texts(&joined["history"]), ["missed 1", "missed 2", "missed 3"]);
    assert_eq!(joined["truncated"], false);

    // Nothing missed: nothing sent.
    let mut carol = app.ws().await;
    carol.send(json!({"type": "join_room", "room": "lobby", "name": "carol", "since": last_seen + 3})).await;
    assert_eq!(carol.recv_type("joined").await["history"], json!([]));
}

#[actix_web::test]
async fn too_much_missed_is_truncated_and_paged_with_history() {
    let app = spawn_app_small_history().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    for i in 1..=12 {
        alice.say("lobby", &format!("m{i}")).await;
    }
    let mut bob = app.ws().await;
    bob.send(json!({"type": "join_room", "room": "lobby", "name": "bob", "since": 2})).await;
    let joined = bob.recv_type("joined").await;
    assert_eq!(ids(&joined["history"]), [8, 9, 10, 11, 12], "the latest five of the ten missed");
    assert_eq!(joined["truncated"], true);

    bob.send(json!({"type": "history", "room": "lobby", "before": 8, "limit": 4})).await;
    let page = bob.recv_type("history").await;
    assert_eq!(page["room"], "lobby");
    assert_eq!(ids(&page["messages"]), [4, 5, 6, 7]);
    bob.send(json!({"type": "history", "room": "lobby", "before": 4, "limit": 4})).await;
    assert_eq!(ids(&bob.recv_type("history").await["messages"]), [1, 2, 3]);
    bob.send(json!({"type": "history", "room": "lobby", "before": 1})).await;
    assert_eq!(bob.recv_type("history").await["messages"], json!([]));
}

async fn spawn_app_small_history() -> crate::helpers::TestApp {
    crate::helpers::spawn_app_with(|s| s.history_on_join = 5).await
}

#[actix_web::test]
async fn a_resent_nonce_is_stored_once() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    let mut bob = app.ws().await;
    alice.join("lobby", "alice").await;
    bob.join("lobby", "bob").await;
    alice.recv_type("presence").await;

    let send = json!({"type": "send_message", "room": "lobby", "text": "once", "nonce": "retry-1"});
    alice.send(send.clone()).await;
    let first = alice.recv_type("message").await;
    // Say the connection dropped before the client saw its copy; it comes
    // back and sends again.
    drop(alice);
    assert_eq!(bob.recv_type("message").await["text"], "once");
    let left = bob.recv().await;
    assert_eq!((left["type"].as_str(), left["action"].as_str()), (Some("presence"), Some("leave")));
    let mut alice2 = app.ws().await;
    alice2.join("lobby", "alice").await;
    alice2.send(send).await;
    let again = alice2.recv_type("message").await;
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["nonce"], "retry-1");

    bob.send(json!({"type": "ping"})).await;
    assert_eq!(bob.recv_type("pong").await["type"], "pong", "bob saw the message once");
    // The same nonce with other text is a new message, not a resend.
    alice2.send(json!({"type": "send_message", "room": "lobby", "text": "twice", "nonce": "retry-1"})).await;
    let other = alice2.recv_type("message").await;
    assert_eq!(
        (other["id"].as_i64(), other["text"].as_str()),
        (Some(first["id"].as_i64().unwrap() + 1), Some("twice"))
    );
    assert_eq!(bob.recv_type("message").await["text"], "twice");
    // Another user's identical nonce is theirs alone.
    bob.send(json!({"type": "send_message", "room": "lobby", "text": "once", "nonce": "retry-1"})).await;
    assert_eq!(bob.recv_type("message").await["id"], first["id"].as_i64().unwrap() + 2);
}

#[actix_web::test]
async fn joining_again_under_a_new_name_is_announced() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    let mut bob = app.ws().await;
    alice.join("lobby", "alice").await;
    bob.join("lobby", "bob").await;
    alice.recv_type("presence").await;

    let joined = bob.join("lobby", "robert").await;
    assert_eq!(joined["members"], json!(["alice", "robert"]));
    assert_eq!(
        alice.recv().await,
        json!({"type": "presence", "room": "lobby", "user": "bob", "action": "leave", "members": 1})
    );
    assert_eq!(
        alice.recv().await,
        json!({"type": "presence", "room": "lobby", "user": "robert", "action": "join", "members": 2})
    );
    assert_eq!(bob.say("lobby", "renamed").await["user"], "robert");
    assert_eq!(alice.recv_type("message").await["user"], "robert");

    // The same name again changes nothing.
    bob.join("lobby", "robert").await;
    alice.expect_silence(Duration::from_millis(200)).await;
}

#[actix_web::test]
async fn since_beyond_the_newest_message_gets_nothing() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    alice.say("lobby", "one").await;
    let mut bob = app.ws().await;
    bob.send(json!({"type": "join_room", "room": "lobby", "name": "bob", "since": i64::MAX})).await;
    let joined = bob.recv_type("joined").await;
    assert_eq!(joined["history"], json!([]));
    assert_eq!(joined["truncated"], false);
}

#[actix_web::test]
async fn stopping_the_server_closes_every_socket_with_1001_first() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;

    let _db = app.stop().await;
    for client in [&mut alice, &mut bob] {
        let (close, _) = client.read_until_closed(std::time::Duration::from_secs(5)).await;
        let close = close.expect("a close frame before the connection ends");
        assert_eq!((close.code, &*close.reason), (CloseCode::Away, "server shutting down"));
    }
}

/// In a busy room comings and goings go out as batches a few times a
/// second, as state (who is in the room now), instead of a frame per change
/// for every member; applied to any member's view, they give the room.
#[actix_web::test]
async fn busy_rooms_get_presence_in_batches() {
    use std::collections::BTreeSet;

    /// Applies batches to `view` until it is `want` (at most ten of them).
    async fn follow(client: &mut crate::helpers::WsClient, mut view: BTreeSet<String>, want: &BTreeSet<String>) {
        for _ in 0..10 {
            if &view == want {
                return;
            }
            let batch = client.recv_type("presence_batch").await;
            for name in batch["joined"].as_array().unwrap() {
                view.insert(name.as_str().unwrap().to_string());
            }
            for name in batch["left"].as_array().unwrap() {
                view.remove(name.as_str().unwrap());
            }
            assert!(batch["members"].as_u64().unwrap() >= 3, "{batch}");
        }
        assert_eq!(&view, want);
    }
    let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();

    let app = crate::helpers::spawn_app_with(|s| s.presence_batch_above = 2).await;
    let mut ann = app.ws().await;
    ann.join("busy", "ann").await;
    let mut bob = app.ws().await;
    bob.join("busy", "bob").await;
    // Two members: still one frame per change.
    let frame = ann.recv_type("presence").await;
    assert_eq!((frame["user"].as_str(), frame["members"].as_u64()), (Some("bob"), Some(2)));

    let mut cat = app.ws().await;
    cat.join("busy", "cat").await;
    let mut dan = app.ws().await;
    let joined = dan.join("busy", "dan").await;
    bob.close().await;
    let want = names(&["ann", "cat", "dan"]);
    follow(&mut ann, names(&["ann", "bob"]), &want).await;
    // A newcomer starts from its own `joined` list; the batches agree with it.
    let dans_view = joined["members"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
    follow(&mut dan, dans_view, &want).await;
}

/// A busy room's `joined` lists a page of names, not thousands, and says
/// how many are in the room.
#[actix_web::test]
async fn a_busy_rooms_joined_lists_the_first_names_and_the_count() {
    let app = crate::helpers::spawn_app_with(|s| s.presence_batch_above = 2).await;
    let mut clients = Vec::new();
    for name in ["dora", "bea", "cleo"] {
        let mut client = app.ws().await;
        client.join("big", name).await;
        clients.push(client);
    }
    let mut ada = app.ws().await;
    let joined = ada.join("big", "ada").await;
    assert_eq!(joined["members"], json!(["ada", "bea"]));
    assert_eq!(joined["member_count"], 4);
}
