//! Clients that stop reading or go silent cost bounded memory and never
//! hold up anyone else.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{server_socket_inode, spawn_app_with, ADMIN_TOKEN};

#[actix_web::test]
async fn a_client_that_stops_reading_is_dropped_and_others_keep_receiving() {
    // The default bounds: a reader merely slowed by a busy machine is not
    // dropped; one that stops reading is.
    let app = spawn_app_with(|_| {}).await;
    let mut stalled = app.ws().await;
    stalled.join("lobby", "stalled").await;
    let stalled_port = stalled.local_port();
    assert!(server_socket_inode(app.port(), stalled_port).is_some_and(|inode| inode > 0));
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;

    // Bob sends far more than socket buffers hold; `stalled` reads nothing.
    const SENT: usize = 6000;
    let text = "x".repeat(3500);
    let mut evicted = false;
    let mut received = 0;
    for i in 0..SENT {
        bob.send(json!({"type": "send_message", "room": "lobby", "text": text})).await;
        // Keep bob's own reading in step so he is never the slow one.
        if i % 8 == 7 {
            while received + 4 < i {
                let frame = bob.recv().await;
                match frame["type"].as_str() {
                    Some("message") => received += 1,
                    Some("presence") => {
                        assert_eq!(
                            (frame["user"].as_str(), frame["action"].as_str()),
                            (Some("stalled"), Some("leave"))
                        );
                        evicted = true;
                    }
                    _ => panic!("unexpected {frame}"),
                }
            }
        }
    }
    while received < SENT {
        let frame = bob.recv().await;
        match frame["type"].as_str() {
            Some("message") => received += 1,
            Some("presence") => evicted = true,
            _ => panic!("unexpected {frame}"),
        }
    }
    assert!(evicted, "the stalled member was dropped from the room");
    assert_eq!(received, SENT, "bob got every message");

    let mut resp = app
        .http()
        .get(app.url("/admin/rooms"))
        .bearer_auth(ADMIN_TOKEN)
        .insert_header(("Accept", "application/json"))
        .send()
        .await
        .unwrap();
    let rooms: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(rooms["rooms"][0]["members"], json!(["bob"]));
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 1);

    // The server let go of the connection without the client reading a
    // byte: no process holds the server's end of it any more.
    let server_port = app.port();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        match server_socket_inode(server_port, stalled_port) {
            None | Some(0) => break,
            Some(_) => {
                assert!(std::time::Instant::now() < deadline, "the stalled connection is still held by the server");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // When it finally reads, it finds at most what the socket buffers held.
    let (_, got) = stalled.read_until_closed(Duration::from_secs(20)).await;
    assert!(got < SENT, "the stalled client was cut off after {got} of {SENT} messages");
}

#[actix_web::test]
async fn a_silent_client_is_dropped_by_the_heartbeat() {
    let app = spawn_app_with(|s| {
        s.heartbeat_interval_secs = 1;
        s.client_timeout_secs = 2;
    })
    .await;
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    let mut silent = app.ws().await;
    silent.join("lobby", "silent").await;
    bob.recv_type("presence").await;

    // `silent` does not read, so it never answers the server's pings. Bob
    // reads, so his client answers them.
    let left = bob.recv_type("presence").await;
    assert_eq!((left["user"].as_str(), left["action"].as_str()), (Some("silent"), Some("leave")));
    let (close, _) = silent.read_until_closed(Duration::from_secs(5)).await;
    let close = close.expect("a close frame: the connection itself was healthy, only silent");
    assert_eq!(close.code, CloseCode::Away);
    assert_eq!(close.reason, "heartbeat timeout");
    bob.assert_open().await;
}
