use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

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
    let TwoNodes { a, b, mut alice, mut bob, bob_joined, .. } = alice_and_bob_on_two_nodes().await;
    let epoch = bob_joined["epoch"].as_str().unwrap().to_string();
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
    let (id, _epoch, _resent): (i64, String, i64) = script
        .key(room_key("seq"))
        .key(room_key("epoch"))
        .key(room_key("log"))
        .key(format!("{prefix}dirty"))
        .key(room_key("e2e"))
        .arg(body.to_string())
        .arg(1000)
        .arg(format!("{prefix}nobody-listens"))
        .arg("lobby")
        .arg(300)
        .arg("0")
        .invoke_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(id, 2);

    alice.send(send("lobby", "three")).await;
    let seen = messages(&mut alice, 2).await;
    assert_eq!(seen, vec![(2, "two".to_string()), (3, "three".to_string())], "the gap first, then what follows");
}

#[actix_web::test]
async fn an_admin_on_one_node_moderates_members_on_another() {
    let TwoNodes { a, b, mut alice, mut bob, .. } = alice_and_bob_on_two_nodes().await;
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
    // (Until the news reaches node B, Bob is still kept out by his kick.)
    let start = Instant::now();
    loop {
        bob.send(json!({"type": "join_room", "room": "lobby", "name": "bob"})).await;
        let refused = bob.recv_type("error").await;
        if refused["code"] == "room_closed" {
            break;
        }
        assert_eq!(refused["code"], "kicked", "{refused}");
        assert!(start.elapsed() < PATIENCE, "node B never learnt the room is closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And no node lists anyone in it any more.
    for app in [&a, &b] {
        let start = Instant::now();
        loop {
            let (_, body) = app.get_json_as_admin("/admin/rooms?format=json").await;
            if body["rooms"].as_array().unwrap().is_empty() {
                break;
            }
            assert!(start.elapsed() < PATIENCE, "members left behind in a closed room: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[actix_web::test]
async fn members_and_presence_are_the_same_on_every_node() {
    let TwoNodes { a, b, mut alice, mut bob, bob_joined, .. } = alice_and_bob_on_two_nodes().await;
    assert_eq!(bob_joined["members"], json!(["alice", "bob"]), "Bob sees Alice, who is on the other node");
    assert_eq!(bob_joined["member_count"], 2);
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

#[actix_web::test]
async fn a_resend_through_another_node_is_stored_once() {
    let TwoNodes { db, a: _node_a, b, mut alice, mut bob, .. } = alice_and_bob_on_two_nodes().await;
    let frame = json!({"type": "send_message", "room": "lobby", "text": "only once", "nonce": "n-1"});
    alice.send(frame.clone()).await;
    let first = alice.recv_type("message").await;
    assert_eq!(bob.recv_type("message").await["id"], first["id"]);

    // Alice's connection dies before she trusts the copy; she comes back
    // through the other node and sends the same message again.
    alice.close().await;
    let mut alice = b.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    alice.send(frame).await;
    let again = alice.recv_type("message").await;
    assert_eq!((&again["id"], &again["nonce"]), (&first["id"], &first["nonce"]), "the stored one, answered again");
    // Bob sees Alice come and go, and no second message.
    while let Some(frame) = bob.try_recv(Duration::from_millis(500)).await {
        assert_eq!(frame["type"], "presence", "nothing but presence: {frame}");
    }
    db.wait_for_ids("lobby", &[first["id"].as_i64().unwrap()]).await;
}

#[actix_web::test]
async fn a_bot_posts_through_any_node_into_a_room_made_on_another() {
    let db = sqlite();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, SHARED_REDIS, &prefix), node(&db, SHARED_REDIS, &prefix));
    let (status, made) = a.post_json("/create_room", &json!({"room": "news"})).await;
    assert!(status == 200 || status == 201, "{made}");
    let token = a.bot_token("herald").await;
    let (status, first) = a.post_with_token(&token, "news", "first").await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["id"], 1, "a room made here starts at 1: {first}");
    // Node B learns of the room from node A, and numbers on.
    let start = Instant::now();
    let second = loop {
        let (status, answer) = b.post_with_token(&token, "news", "second").await;
        if status == 201 {
            break answer;
        }
        assert!(start.elapsed() < PATIENCE, "node B never took the post: {status} {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((second["id"].as_i64(), &second["epoch"]), (Some(2), &first["epoch"]));
    let mut carol = b.ws().await;
    let joined = join(&mut carol, "news", "carol", None).await;
    assert_eq!(history_ids(&joined), vec![1, 2], "history on a third reader's node");
}

/// Whether a room is encrypted must hold on every node: a node that takes
/// it for plain would let readable text in and tell its members nothing.
#[actix_web::test]
async fn an_encrypted_room_is_encrypted_on_every_node_even_one_started_later() {
    let db = sqlite();
    let prefix = fresh_prefix();
    let a = node(&db, SHARED_REDIS, &prefix);
    let listening = node(&db, SHARED_REDIS, &prefix);
    let (status, created) = a.post_json("/create_room", &json!({"room": "sealed", "encryption": "link"})).await;
    assert_eq!(status, 201, "{created}");
    db.wait_for_room("sealed").await;
    // This one was not running when the room was made.
    let later = node(&db, SHARED_REDIS, &prefix);

    for (which, app) in [("a node that heard", &listening), ("a node started later", &later)] {
        let mut bob = app.ws().await;
        let joined = join(&mut bob, "sealed", "bob", None).await;
        assert_eq!(joined["encryption"], created["encryption"], "on {which}");
        bob.send(json!({"type": "send_message", "room": "sealed", "text": "plain words", "nonce": "p"})).await;
        let refused = bob.recv_type("error").await;
        assert_eq!(refused["code"], "encryption_required", "on {which}: {refused}");
        bob.close().await;
    }
    // Asking the later node for the room with another kind of key.
    let (status, again) = later.post_json("/create_room", &json!({"room": "sealed", "encryption": "passphrase"})).await;
    assert_eq!((status, again["error"].as_str()), (409, Some("room_exists")), "{again}");
}

/// Redis has the last word on whether a room is encrypted: a node that took
/// the room for a plain one (it missed the news) still cannot get readable
/// text into it.
#[actix_web::test]
async fn redis_refuses_readable_text_for_an_encrypted_room_whatever_a_node_believes() {
    let TwoNodes { b, mut bob, prefix, .. } = alice_and_bob_on_two_nodes().await;
    let client = redis::Client::open(SHARED_REDIS).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let decided: String =
        redis::cmd("GET").arg(format!("{prefix}room:lobby:e2e")).query_async(&mut redis).await.unwrap();
    assert_eq!(decided, "plain", "the lobby was decided plain when it was made");
    // As if another node had made it encrypted, and node B never heard.
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}room:lobby:e2e"))
        .arg("link:AAAAAAAAAAAAAAAAAAAAAA")
        .query_async(&mut redis)
        .await
        .unwrap();

    bob.send(json!({"type": "send_message", "room": "lobby", "text": "readable", "nonce": "r1"})).await;
    let refused = bob.recv_type("error").await;
    assert_eq!((refused["code"].as_str(), refused["nonce"].as_str()), (Some("encryption_required"), Some("r1")));
    let (status, body) = b.post_as("reminder", "lobby", "readable too").await;
    assert_eq!((status, body["error"].as_str()), (422, Some("encryption_required")), "{body}");
    let envelope = "v1.AAECAwQFBgcICQoL.q83vEjRWeJq83vEjRWeJqw";
    assert_eq!(bob.say("lobby", envelope).await["text"], envelope, "ciphertext still goes through");
}

/// Edits, reactions, replies and deletions made through one node reach the
/// members on the other, and a node that was not following the room serves
/// them in history (from Redis's stream and the log).
#[actix_web::test]
async fn edits_reactions_and_deletions_cross_nodes() {
    let TwoNodes { db, prefix, mut alice, mut bob, .. } = alice_and_bob_on_two_nodes().await;
    let first = alice.say("lobby", "helo").await["id"].as_i64().unwrap();
    let gone = alice.say("lobby", "to be deleted").await["id"].as_i64().unwrap();
    messages(&mut bob, 2).await;

    alice.send(json!({"type": "edit_message", "room": "lobby", "id": first, "text": "hello"})).await;
    alice.recv_type("message_edited").await;
    assert_eq!(bob.recv_type("message_edited").await["text"], "hello");
    // Ownership is checked on the node that did not accept the message.
    bob.send(json!({"type": "edit_message", "room": "lobby", "id": first, "text": "pwned"})).await;
    assert_eq!(bob.recv_type("error").await["code"], "not_yours");
    bob.send(json!({"type": "add_reaction", "room": "lobby", "id": first, "emoji": "🎉"})).await;
    bob.recv_type("reaction_added").await;
    let added = alice.recv_type("reaction_added").await;
    assert_eq!((added["emoji"].as_str(), added["user"].as_str()), (Some("🎉"), Some("bob")));
    bob.send(json!({"type": "send_message", "room": "lobby", "text": "welcome", "reply_to": first})).await;
    bob.recv_type("message").await;
    assert_eq!(alice.recv_type("message").await["reply_to"], first);
    alice.send(json!({"type": "delete_message", "room": "lobby", "id": gone})).await;
    alice.recv_type("message_deleted").await;
    assert_eq!(bob.recv_type("message_deleted").await["id"], gone);

    // The edit and the reaction are written by the node that took them;
    // a node with no one in the room reads history from Redis's stream and
    // the log, and shows them once they are written.
    let c = node(&db, SHARED_REDIS, &prefix);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, page) = c.get_json("/api/rooms/lobby/messages?limit=50").await;
        assert_eq!(status, 200);
        let list = page["messages"].as_array().unwrap().clone();
        let m = list.iter().find(|m| m["id"] == first).expect("the first message").clone();
        let current = m["text"] == "hello" && m["reactions"][0]["users"] == json!(["bob"]);
        if current {
            assert!(list.iter().all(|m| m["id"] != gone), "the deleted one is gone");
            assert!(list.iter().any(|m| m["reply_to"] == first), "the reply names its message");
            break;
        }
        assert!(Instant::now() < deadline, "history never showed the edit and the reaction: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The console's live figures cover every node: each reports its own to
/// Redis, and any node's `/admin/stats` lists them all.
#[actix_web::test]
async fn every_node_reports_its_live_figures_to_the_console() {
    // Bob stays connected to node B.
    let TwoNodes { b, mut alice, bob: _bob, .. } = alice_and_bob_on_two_nodes().await;
    alice.say("lobby", "counted").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, stats) = b.get_json_as_admin("/admin/stats").await;
        assert_eq!(status, 200, "{stats}");
        let nodes = stats["nodes"].as_array().cloned().unwrap_or_default();
        let reported = |n: &serde_json::Value| n["figures"]["connections"] == 1;
        if nodes.len() == 2 && nodes.iter().all(reported) {
            let names: Vec<&str> = nodes.iter().filter_map(|n| n["node"].as_str()).collect();
            assert!(names.contains(&stats["node"].as_str().unwrap()), "the node asked is among them: {stats}");
            let sent: u64 = nodes.iter().filter_map(|n| n["figures"]["messages_accepted"].as_u64()).sum();
            assert_eq!(sent, 1, "Alice's one message, counted by her node: {stats}");
            break;
        }
        assert!(Instant::now() < deadline, "both nodes never reported: {stats}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
