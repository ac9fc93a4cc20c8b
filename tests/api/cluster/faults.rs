use std::time::{Duration, Instant};

use parlor::db::Backend;
use serde_json::json;

use super::*;
use crate::databases::{Proxy, TestDatabase};

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
    let before = db.stored_messages("lobby");
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
    let after = db.wait_for_messages("lobby", 4).await;
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
    let mut carol = b.ws().await;
    join(&mut carol, "lobby", "carol", None).await;
    alice.say("lobby", "before").await;
    assert_eq!(bob.recv_type("message").await["text"], "before");

    proxy.cut();
    // An admin's decision made on node A while Redis is away...
    let (status, _) = a.post_json_as_admin("/admin/rooms/lobby/kick", &json!({"user": "carol"})).await;
    assert_eq!(status, 200);
    alice.send(json!({"type": "send_message", "room": "lobby", "text": "during", "nonce": "during"})).await;
    let refused = alice.recv_type_or_error("message").await;
    assert_eq!(refused["code"], "unavailable", "a send Redis cannot take is refused, not lost: {refused}");
    assert_eq!(refused["nonce"], "during");
    // Both nodes say so to a load balancer.
    let (status, health) = a.get_json("/healthz").await;
    assert_eq!((status, health["redis"].as_str()), (503, Some("unavailable")));
    // Ten seconds without Redis: the nodes keep trying, with backoff.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (status, _) = b.get_json("/healthz").await;
    assert_eq!(status, 503, "still cut off");

    proxy.restore();
    let (own, _) = say_until_accepted(&mut alice, "lobby", "during").await;
    let (after, _) = say_until_accepted(&mut alice, "lobby", "after").await;
    // ...reaches Carol on node B once it is back.
    loop {
        let frame = carol.recv().await;
        if frame["type"] == "kicked" {
            break;
        }
        assert!(["message", "presence"].contains(&frame["type"].as_str().unwrap()), "{frame}");
    }
    assert_eq!(bob.recv_type("message").await["id"], own["id"], "the other node delivers what follows the cut");
    assert_eq!(bob.recv_type("message").await["id"], after["id"]);
    let (status, health) = b.get_json("/healthz").await;
    assert_eq!((status, health["redis"].as_str()), (200, Some("ok")));
    let texts: Vec<String> = {
        let start = Instant::now();
        loop {
            let texts: Vec<String> = db.stored_messages("lobby").into_iter().map(|(_, t)| t).collect();
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
    let mut nodes = binaries(&db, 2, &[]);
    let (b, a) = (nodes.pop().unwrap(), nodes.pop().unwrap());
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
    let texts: Vec<String> = db.stored_messages("lobby").into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, (1..=20).map(|i| format!("m{i}")).collect::<Vec<_>>());
    drop(b);
}

#[actix_web::test]
async fn a_dead_nodes_members_leave_everyones_lists() {
    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let mut nodes = binaries(&db, 2, &[]);
    let (b, a) = (nodes.pop().unwrap(), nodes.pop().unwrap());
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
async fn redis_restored_from_an_older_snapshot_begins_a_new_epoch_and_reuses_no_id() {
    let db = sqlite();
    let mut redis = OwnRedis::start();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, &redis.url(), &prefix), node(&db, &redis.url(), &prefix));
    let mut alice = a.ws().await;
    let old_epoch = join(&mut alice, "lobby", "alice", None).await["epoch"].as_str().unwrap().to_string();
    let mut bob = b.ws().await;
    join(&mut bob, "lobby", "bob", None).await;
    for text in ["one", "two", "three"] {
        alice.say("lobby", text).await;
    }
    redis.snapshot().await;
    // Seen by everyone after the snapshot: these ids are what Redis forgets.
    for text in ["four", "five"] {
        alice.say("lobby", text).await;
    }
    assert_eq!(messages(&mut bob, 5).await.last().unwrap().0, 5);
    db.wait_for_ids("lobby", &[1, 2, 3, 4, 5]).await;
    let before = db.stored_messages("lobby");
    alice.close().await;
    bob.close().await;

    redis.restart();
    // Both nodes notice the restart once they reach Redis again.
    for app in [&a, &b] {
        let start = Instant::now();
        while app.get_json("/healthz").await.1["redis"] != "ok" {
            assert!(start.elapsed() < PATIENCE, "the node never reached Redis again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (mut alice, joined) = join_when_ready(&a, "lobby", "alice", Some((5, &old_epoch))).await;
    let new_epoch = joined["epoch"].as_str().unwrap().to_string();
    assert_ne!(new_epoch, old_epoch, "the restored room starts a new run");
    let (mut bob, joined) = join_when_ready(&b, "lobby", "bob", Some((5, &old_epoch))).await;
    assert_eq!(joined["epoch"], new_epoch.as_str());
    let (own, _) = say_until_accepted(&mut alice, "lobby", "six").await;
    let id = own["id"].as_i64().unwrap();
    assert!(id > 5, "ids 4 and 5, which clients saw, are not given out again: got {id}");
    assert_eq!(bob.recv_type("message").await["id"], id);
    let after = db.wait_for_messages("lobby", 6).await;
    assert_eq!(&after[..5], &before[..], "what clients saw keeps its ids and texts");
    assert_eq!(after[5], (id, "six".to_string()));
}
