//! Every kind of bad input gets a specific error; the connection stays open
//! and the other members see nothing.

use std::time::Duration;

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, spawn_app_with, TestApp};

/// Alice in `lobby` sends `frame`; she gets an error with `code`, stays
/// connected, and Bob, also in `lobby`, sees nothing.
async fn rejected(app: &TestApp, frame: Message, code: &str) -> Value {
    let mut alice = app.ws().await;
    let mut bob = app.ws().await;
    alice.join("lobby", "alice").await;
    bob.join("lobby", "bob").await;
    alice.recv_type("presence").await;

    alice.send_raw(frame).await;
    let err = alice.recv().await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], code, "{err}");
    assert!(!err["message"].as_str().unwrap().is_empty());
    alice.assert_open().await;
    bob.expect_silence(Duration::from_millis(200)).await;
    alice.close().await;
    bob.close().await;
    err
}

fn text(v: Value) -> Message {
    Message::Text(v.to_string())
}

#[actix_web::test]
async fn malformed_json() {
    let app = spawn_app().await;
    let err = rejected(&app, Message::Text("{\"type\": \"send_message\", ".into()), "bad_request").await;
    assert!(err["message"].as_str().unwrap().contains("malformed JSON"), "{err}");
}

#[actix_web::test]
async fn unknown_type() {
    let app = spawn_app().await;
    let err = rejected(&app, text(json!({"type": "dance", "room": "lobby"})), "bad_request").await;
    assert!(err["message"].as_str().unwrap().contains("dance"), "{err}");
}

#[actix_web::test]
async fn missing_field() {
    let app = spawn_app().await;
    let err = rejected(&app, text(json!({"type": "send_message", "room": "lobby"})), "bad_request").await;
    assert!(err["message"].as_str().unwrap().contains("text"), "{err}");
}

#[actix_web::test]
async fn text_over_the_limit() {
    let app = spawn_app_with(|s| s.max_message_bytes = 100).await;
    let frame = text(json!({"type": "send_message", "room": "lobby", "text": "x".repeat(101), "nonce": "n-9"}));
    let err = rejected(&app, frame, "too_large").await;
    assert_eq!(err["nonce"], "n-9", "the failed send is identified by its nonce");
    assert_eq!(err["room"], "lobby");
}

#[actix_web::test]
async fn binary_frame() {
    let app = spawn_app().await;
    rejected(&app, Message::Binary(vec![1, 2, 3]), "bad_request").await;
}

#[actix_web::test]
async fn empty_text() {
    let app = spawn_app().await;
    rejected(&app, text(json!({"type": "send_message", "room": "lobby", "text": "  \n "})), "bad_request").await;
}

#[actix_web::test]
async fn control_characters_in_text() {
    let app = spawn_app().await;
    // NUL would be unstorable in PostgreSQL: it must never reach the log.
    rejected(&app, text(json!({"type": "send_message", "room": "lobby", "text": "a\u{0}b"})), "bad_request").await;
    let (status, body) = app.post_as("bot", "lobby", "bell\u{7}").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")));
}

#[actix_web::test]
async fn invalid_room_name() {
    let app = spawn_app().await;
    rejected(&app, text(json!({"type": "join_room", "room": "Not A Room!", "name": "x"})), "invalid_room").await;
    rejected(&app, text(json!({"type": "send_message", "room": "../etc", "text": "hi"})), "invalid_room").await;
}

#[actix_web::test]
async fn invalid_display_name() {
    let app = spawn_app().await;
    rejected(&app, text(json!({"type": "join_room", "room": "lobby", "name": "  "})), "invalid_name").await;
    rejected(&app, text(json!({"type": "join_room", "room": "lobby", "name": "x".repeat(33)})), "invalid_name").await;
    // No name and no cookie.
    rejected(&app, text(json!({"type": "join_room", "room": "other"})), "invalid_name").await;
}

#[actix_web::test]
async fn history_limit_out_of_range() {
    let app = spawn_app().await;
    rejected(&app, text(json!({"type": "history", "room": "lobby", "limit": 0})), "bad_request").await;
    rejected(&app, text(json!({"type": "history", "room": "lobby", "limit": 101})), "bad_request").await;
    rejected(&app, text(json!({"type": "history", "room": "lobby", "before": -1})), "bad_request").await;
}

#[actix_web::test]
async fn sending_before_joining() {
    let app = spawn_app().await;
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    let mut stranger = app.ws().await;
    for frame in [
        json!({"type": "send_message", "room": "lobby", "text": "let me in"}),
        json!({"type": "typing", "room": "lobby"}),
        json!({"type": "history", "room": "lobby"}),
        json!({"type": "leave_room", "room": "lobby"}),
    ] {
        stranger.send(frame).await;
        let err = stranger.recv().await;
        assert_eq!((err["type"].as_str(), err["code"].as_str()), (Some("error"), Some("not_joined")), "{err}");
        assert_eq!(err["room"], "lobby");
    }
    stranger.assert_open().await;
    bob.expect_silence(Duration::from_millis(200)).await;
}

#[actix_web::test]
async fn a_frame_over_the_transport_limit_closes_with_1009() {
    let app = spawn_app_with(|s| s.max_message_bytes = 1000).await;
    let mut bob = app.ws().await;
    bob.join("lobby", "bob").await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    bob.recv_type("presence").await;

    let limit = app.settings.max_frame_bytes();
    alice.send_raw(text(json!({"type": "send_message", "room": "lobby", "text": "x".repeat(limit)}))).await;
    let (close, _) = alice.read_until_closed(Duration::from_secs(5)).await;
    assert_eq!(close.expect("a close frame").code, CloseCode::Size);

    // Bob hears only that alice left, and carries on.
    let left = bob.recv().await;
    assert_eq!((left["type"].as_str(), left["action"].as_str()), (Some("presence"), Some("leave")));
    assert_eq!(bob.say("lobby", "still fine").await["text"], "still fine");
}

#[actix_web::test]
async fn sending_too_fast_is_rate_limited() {
    let app = spawn_app_with(|s| {
        s.rate_per_sec = 1.0;
        s.rate_burst = 3.0;
    })
    .await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    for i in 0..5 {
        alice
            .send(json!({"type": "send_message", "room": "lobby", "text": format!("m{i}"), "nonce": format!("n{i}")}))
            .await;
    }
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..5 {
        let frame = alice.recv().await;
        match frame["type"].as_str() {
            Some("message") => accepted.push(frame["nonce"].as_str().unwrap().to_string()),
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited");
                refused.push(frame["nonce"].as_str().unwrap().to_string());
            }
            _ => panic!("unexpected {frame}"),
        }
    }
    assert_eq!(accepted, ["n0", "n1", "n2"]);
    assert_eq!(refused, ["n3", "n4"]);
}

#[actix_web::test]
async fn fragmented_text_is_reassembled() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    // A browser never fragments, but the protocol allows it.
    let frame = json!({"type": "send_message", "room": "lobby", "text": "in pieces"}).to_string();
    let (a, b) = frame.split_at(10);
    use tokio_tungstenite::tungstenite::protocol::frame::{
        coding::{Data, OpCode},
        Frame,
    };
    alice.send_raw(Message::Frame(Frame::message(a.as_bytes().to_vec(), OpCode::Data(Data::Text), false))).await;
    alice.send_raw(Message::Frame(Frame::message(b.as_bytes().to_vec(), OpCode::Data(Data::Continue), true))).await;
    assert_eq!(alice.recv_type("message").await["text"], "in pieces");
}

#[actix_web::test]
async fn fragmented_text_over_the_limit_or_not_utf8_is_closed() {
    use tokio_tungstenite::tungstenite::protocol::frame::{
        coding::{Data, OpCode},
        Frame,
    };
    let app = spawn_app_with(|s| s.max_message_bytes = 1000).await;
    let limit = app.settings.max_frame_bytes();

    let mut alice = app.ws().await;
    let half = vec![b'x'; limit / 2 + 1];
    alice.send_raw(Message::Frame(Frame::message(half.clone(), OpCode::Data(Data::Text), false))).await;
    alice.send_raw(Message::Frame(Frame::message(half, OpCode::Data(Data::Continue), true))).await;
    let (close, _) = alice.read_until_closed(Duration::from_secs(5)).await;
    assert_eq!(close.expect("a close frame").code, CloseCode::Size);

    let mut carol = app.ws().await;
    carol.send_raw(Message::Frame(Frame::message(vec![0xC3, 0x28], OpCode::Data(Data::Text), true))).await;
    let (close, _) = carol.read_until_closed(Duration::from_secs(5)).await;
    assert_eq!(close.expect("a close frame").code, CloseCode::Invalid);

    let mut bob = app.ws().await;
    bob.send_raw(Message::Frame(Frame::message(vec![0xC3], OpCode::Data(Data::Text), false))).await;
    bob.send_raw(Message::Frame(Frame::message(vec![0x28], OpCode::Data(Data::Continue), true))).await;
    let (close, _) = bob.read_until_closed(Duration::from_secs(5)).await;
    assert_eq!(close.expect("a close frame").code, CloseCode::Invalid);
}

#[actix_web::test]
async fn too_many_requests_are_rate_limited_even_without_a_send_limit() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    for _ in 0..100 {
        alice.send(json!({"type": "typing", "room": "lobby"})).await;
    }
    alice.assert_open_after_errors("rate_limited").await;
}

#[actix_web::test]
async fn one_connection_may_join_at_most_100_rooms() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    // Requests are limited to 20/s after a burst: wait and retry when told to.
    async fn request(alice: &mut crate::helpers::WsClient, frame: serde_json::Value) -> serde_json::Value {
        loop {
            alice.send(frame.clone()).await;
            let answer = alice.recv().await;
            if answer["code"] != "rate_limited" {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let join = |room: String| json!({"type": "join_room", "room": room, "name": "alice"});
    for i in 0..100 {
        let joined = request(&mut alice, join(format!("r{i}"))).await;
        assert_eq!(
            (joined["type"].as_str(), joined["room"].as_str()),
            (Some("joined"), Some(format!("r{i}").as_str()))
        );
    }
    let err = request(&mut alice, join("one-too-many".into())).await;
    assert_eq!(err["code"], "too_many_rooms");
    let left = request(&mut alice, json!({"type": "leave_room", "room": "r0"})).await;
    assert_eq!(left["type"], "left");
    assert_eq!(request(&mut alice, join("one-too-many".into())).await["type"], "joined");
}
