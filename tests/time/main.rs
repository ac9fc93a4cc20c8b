//! What expires, tested by moving Parlor's clock forward
//! (`parlor::clock::advance_for_tests`) instead of waiting, or giving things
//! no lifetime at all. The clock is the process's, so these tests live in a
//! test binary of their own and take turns.

// The shared end-to-end helpers; this binary uses only some of them.
#![allow(dead_code, unused_macros, unused_imports)]

#[path = "../api/databases.rs"]
mod databases;
#[path = "../api/helpers.rs"]
mod helpers;

use std::time::Duration;

use parlor::clock::advance_for_tests;
use serde_json::json;

use helpers::{logged_in_as, sign_up, spawn_app_with};

/// One test moves the clock at a time.
static CLOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[actix_web::test]
async fn a_login_ends_when_its_lifetime_is_up() {
    let app = spawn_app_with(|s| s.session_hours = 2).await;
    let cookie = sign_up(&app, "dave", "correct horse battery").await;
    let _turn = CLOCK.lock().await;
    advance_for_tests(Duration::from_secs(2 * 3600 - 60));
    assert_eq!(logged_in_as(&app, &cookie).await.as_deref(), Some("dave"), "a minute left");
    advance_for_tests(Duration::from_secs(61));
    assert_eq!(logged_in_as(&app, &cookie).await, None, "expired");
}

#[actix_web::test]
async fn a_mute_ends_when_its_time_is_up_and_says_how_long_is_left() {
    let app = spawn_app_with(|_| {}).await;
    let mut loud = app.ws().await;
    loud.join("lobby", "loud").await;
    let _turn = CLOCK.lock().await;
    let (status, _) = app.post_json_as_admin("/admin/rooms/lobby/mute", &json!({"user": "loud", "minutes": 5})).await;
    assert_eq!(status, 200);
    assert!(loud.recv_type("muted").await["until"].is_string(), "told at once");

    advance_for_tests(Duration::from_secs(4 * 60));
    loud.send(json!({"type": "send_message", "room": "lobby", "text": "still muted"})).await;
    let refused = loud.recv_type("error").await;
    assert_eq!(refused["code"], "muted");
    let message = refused["message"].as_str().unwrap();
    assert!((59..=61).any(|s| message.contains(&format!("for {s} more seconds"))), "about a minute left: {message}");

    advance_for_tests(Duration::from_secs(61));
    assert_eq!(loud.say("lobby", "free again").await["text"], "free again");
    // And a restart does not bring back a mute that ran out.
    let app = app.restart().await;
    let mut loud = app.ws().await;
    loud.join("lobby", "loud").await;
    assert_eq!(loud.say("lobby", "still free").await["text"], "still free");
}
