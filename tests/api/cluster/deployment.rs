use std::time::Duration;

use parlor::db::Backend;

use super::*;
use crate::databases::TestDatabase;
use crate::socketio::Sio;

#[actix_web::test]
async fn three_nodes_behind_nginx_chat_as_one_and_survive_a_node_dying() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let (nodes, nginx) = binaries_behind_nginx(&db, 3, &[]);

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
async fn a_draining_node_sends_its_clients_to_another_and_they_miss_nothing() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let (mut nodes, nginx) = binaries_behind_nginx(&db, 2, &["--drain-secs", "2"]);
    let mut alice = nginx.ws().await;
    let joined = join(&mut alice, "lobby", "alice", None).await;
    let epoch = joined["epoch"].as_str().unwrap().to_string();
    let mut bob = nginx.ws().await;
    join(&mut bob, "lobby", "bob", None).await;
    assert_eq!(open_websockets(nodes[1].port).await, 1, "round robin put Bob on the second node");
    let mut draining = nodes.remove(1);

    draining.signal("TERM");
    // The signal is handled a moment after it is sent: "at once" is within
    // half a second, well inside the 2 s of draining.
    let asked = std::time::Instant::now();
    while status_of(draining.port, "/readyz").await.0 != 503 {
        assert!(asked.elapsed() < Duration::from_millis(500), "a draining node tells the balancer at once");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let during = alice.say("lobby", "while draining").await["id"].as_i64().unwrap();
    assert_eq!(bob.recv_type("message").await["id"], during, "still served while draining");
    let (close, _) = bob.read_until_closed(Duration::from_secs(8)).await;
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1001), "told to reconnect: going away");
    let missed = alice.say("lobby", "after bob's node closed").await["id"].as_i64().unwrap();

    let mut bob = nginx.ws().await;
    let joined = join(&mut bob, "lobby", "bob", Some((during, &epoch))).await;
    assert_eq!(history_ids(&joined), vec![missed], "back through the balancer, on the other node, missing nothing");
    assert_eq!(open_websockets(nodes[0].port).await, 2, "both on the node that stays");
    let exit = draining.exited_within(PATIENCE).await.expect("the drained node stops");
    assert!(exit.success(), "and exits cleanly: {exit:?}");
}

#[actix_web::test]
async fn socketio_clients_behind_nginx_poll_one_node_and_chat_with_the_others() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let (nodes, nginx) = binaries_behind_nginx(&db, 2, &[]);
    let mut alice = nginx.ws().await;
    join(&mut alice, "lobby", "alice", None).await;
    let mut bob = nginx.ws().await;
    join(&mut bob, "lobby", "bob", None).await;
    assert_eq!(open_websockets(nodes[0].port).await, 1, "round robin put the native members on both nodes");

    // Each polling request would alternate between the nodes without the
    // configuration's stickiness for Socket.IO, and meet a sid the other
    // node never made.
    let mut carol = Sio::polling_on(nginx.port()).await;
    assert!(carol.connect(Some(json!({"name": "carol"}))).await.starts_with("40{"));
    let joined = carol.call(1, "join_room", json!({"room": "lobby"})).await.0;
    assert_eq!(joined[0]["members"].as_array().map(Vec::len), Some(3), "{joined}");
    for i in 0..5 {
        let (ack, _) = carol.call(10 + i, "send_message", json!({"room": "lobby", "text": format!("poll {i}")})).await;
        let id = &ack[0]["id"];
        assert_eq!(&alice.recv_type("message").await["id"], id);
        assert_eq!(&bob.recv_type("message").await["id"], id);
    }
    let said = alice.say("lobby", "to carol").await;
    assert_eq!(carol.event("message").await["id"], said["id"]);
}
