//! The load generator (`parlor-bench`) against the real server: its counts
//! must be right, or every figure it reports is wrong.

use std::net::SocketAddr;

use parlor_bench::conns::{self, ConnsConfig};
use parlor_bench::load::{Pace, Rooms, RoomsConfig};
use parlor_bench::stats::Watched;

use crate::helpers::spawn_app_with;

fn rooms_config(server: SocketAddr, rooms: usize, members: usize, senders: usize) -> RoomsConfig {
    let watched = Watched { servers: vec![std::process::id()], redis: None };
    RoomsConfig {
        servers: vec![server],
        watched,
        rooms,
        members,
        senders,
        connect_batch: 8,
        text_bytes: 0,
        encrypted: false,
    }
}

/// An encrypted room's texts are envelopes the server takes (any it
/// refused would show as `encryption_required`), padded to the size asked,
/// and still counted and timed as plain ones.
#[actix_web::test]
async fn encrypted_rooms_carry_envelopes_of_the_size_asked() {
    let app = spawn_app_with(|_| {}).await;
    let config = RoomsConfig { text_bytes: 160, encrypted: true, ..rooms_config(app.socket_addr(), 1, 4, 2) };
    let rooms = Rooms::set_up(config).await.expect("the encrypted room sets up");
    let step = rooms.run(Pace::Rate { per_sec: 50.0 }, 1.0).await;
    assert!(step.sent > 40, "sent {}", step.sent);
    assert_eq!((step.refused, step.disconnects), (0, 0), "errors: {:?}", step.errors);
    assert_eq!(step.received, step.sent * 4);
    let (_, rooms) = app.get_json("/api/rooms").await;
    let room = rooms["rooms"][0]["name"].as_str().unwrap().to_string();
    let (_, page) = app.get_json(&format!("/api/rooms/{room}/messages?limit=5")).await;
    assert_eq!(page["encryption"]["key"], "link", "the room was made encrypted");
    for message in page["messages"].as_array().unwrap() {
        let text = message["text"].as_str().unwrap();
        assert!(text.starts_with("v1.") && (160..=161).contains(&text.len()), "{text}");
    }
}

#[actix_web::test]
async fn fanout_counts_every_delivery_once_at_every_member() {
    let app = spawn_app_with(|_| {}).await;
    let server = app.socket_addr();
    let rooms = Rooms::set_up(rooms_config(server, 3, 6, 2)).await.expect("the rooms set up");

    let step = rooms.run(Pace::Rate { per_sec: 40.0 }, 1.0).await;
    // 3 rooms x 2 senders at 40/s for a second, give or take a tick each.
    assert!((230..=250).contains(&step.sent), "sent {}", step.sent);
    assert_eq!((step.refused, step.disconnects), (0, 0), "errors: {:?}", step.errors);
    assert_eq!(step.expected, step.sent * 6);
    assert_eq!(step.received, step.expected, "every member got every message");
    assert_eq!(step.duplicates, 0, "and none twice");
    assert!(step.p50_ms > 0.0 && step.p50_ms <= step.p99_ms && step.p99_ms <= step.max_ms);
    assert!(step.cpu.server.is_some());

    // The same rooms carry a second load, counted from zero.
    let again = rooms.run(Pace::Window { window: 4 }, 0.5).await;
    assert!(again.sent > 0);
    assert_eq!(again.received, again.sent * 6);
}

#[actix_web::test]
async fn refused_messages_are_not_expected_anywhere() {
    // The server's send limit refuses most of what the senders try.
    let app = spawn_app_with(|s| {
        s.rate_per_sec = 5.0;
        s.rate_burst = 5.0;
    })
    .await;
    let server = app.socket_addr();
    let rooms = Rooms::set_up(rooms_config(server, 1, 4, 2)).await.expect("the rooms set up");

    let step = rooms.run(Pace::Rate { per_sec: 100.0 }, 1.0).await;
    assert!(step.refused > step.sent / 2, "refused {} of {}", step.refused, step.sent);
    assert_eq!(step.errors.get("rate_limited"), Some(&step.refused));
    assert_eq!(step.expected, (step.sent - step.refused) * 4);
    assert_eq!(step.received, step.expected);
    assert_eq!(step.duplicates, 0);
    assert_eq!(step.loss(), 0);
}

#[actix_web::test]
async fn idle_connections_are_held_from_several_source_addresses() {
    let app = spawn_app_with(|_| {}).await;
    let server = app.socket_addr();
    let report = conns::run(ConnsConfig {
        server,
        server_pid: Some(std::process::id()),
        connections: 300,
        sources: 3,
        concurrency: 50,
        hold_seconds: 0.2,
    })
    .await
    .expect("the run completes");
    assert_eq!((report.connected, report.failures, report.dropped), (300, 0, 0), "{:?}", report.first_failure);
    assert!(report.connects_per_sec > 0.0);
    assert!(report.rss_after_kib.is_some() && report.rss_before_kib.is_some());
}
