//! Members changing messages after sending them: editing and deleting their
//! own, replying, reacting. Every change reaches the room live, is refused
//! with a specific error when it is not the member's to make, and is what
//! history returns afterwards, from the room's memory and from the log.

use serde_json::{json, Value};

use crate::databases::on_every_backend;
use crate::helpers::{set_cookie, spawn_app, spawn_app_on, WsClient};

on_every_backend!(
    edits_deletions_replies_and_reactions_reach_the_room_and_outlive_a_restart,
    changes_to_messages_older_than_the_rooms_memory_follow_each_other,
);

async fn error_for(client: &mut WsClient, frame: Value) -> Value {
    client.send(frame).await;
    client.recv_type("error").await
}

fn find(history: &Value, id: i64) -> Option<&Value> {
    history.as_array().expect("a list").iter().find(|m| m["id"] == id)
}

async fn edits_deletions_replies_and_reactions_reach_the_room_and_outlive_a_restart(backend: parlor::db::Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let (mut alice, mut bob) = app.alice_and_bob_in_lobby().await;
    let first = alice.say("lobby", "helo").await["id"].as_i64().unwrap();
    bob.recv_type("message").await;

    // The author edits: everyone sees the new text, marked edited.
    alice.send(json!({"type": "edit_message", "room": "lobby", "id": first, "text": "hello"})).await;
    for client in [&mut alice, &mut bob] {
        let edited = client.recv_type("message_edited").await;
        assert_eq!((edited["id"].as_i64(), edited["text"].as_str()), (Some(first), Some("hello")), "{edited}");
        assert!(edited["edited_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{edited}");
    }

    // Someone else may neither edit nor delete it.
    let edit = json!({"type": "edit_message", "room": "lobby", "id": first, "text": "pwned"});
    let refused = error_for(&mut bob, edit).await;
    assert_eq!((refused["code"].as_str(), refused["room"].as_str()), (Some("not_yours"), Some("lobby")), "{refused}");
    assert_eq!(refused["id"], first, "the error names the message it was about");
    let refused = error_for(&mut bob, json!({"type": "delete_message", "room": "lobby", "id": first})).await;
    assert_eq!(refused["code"], "not_yours");

    // Reactions: counted once per person (a repeat changes nothing and
    // tells no one), taken back, seen by everyone.
    for emoji in ["👍", "👍", "🎉"] {
        bob.send(json!({"type": "add_reaction", "room": "lobby", "id": first, "emoji": emoji})).await;
    }
    for client in [&mut alice, &mut bob] {
        let added = client.recv_type("reaction_added").await;
        assert_eq!((added["emoji"].as_str(), added["user"].as_str()), (Some("👍"), Some("bob")), "{added}");
        let added = client.recv_type("reaction_added").await;
        assert_eq!((added["emoji"].as_str(), added["user"].as_str()), (Some("🎉"), Some("bob")), "{added}");
    }
    alice.send(json!({"type": "add_reaction", "room": "lobby", "id": first, "emoji": "👍"})).await;
    for client in [&mut alice, &mut bob] {
        let added = client.recv_type("reaction_added").await;
        assert_eq!((added["emoji"].as_str(), added["user"].as_str()), (Some("👍"), Some("alice")));
    }
    bob.send(json!({"type": "remove_reaction", "room": "lobby", "id": first, "emoji": "🎉"})).await;
    for client in [&mut alice, &mut bob] {
        let removed = client.recv_type("reaction_removed").await;
        assert_eq!((removed["emoji"].as_str(), removed["user"].as_str()), (Some("🎉"), Some("bob")));
    }

    // A reply names the message it answers.
    bob.send(json!({"type": "send_message", "room": "lobby", "text": "hi!", "reply_to": first})).await;
    let reply = bob.recv_type("message").await;
    assert_eq!(reply["reply_to"], first);
    assert_eq!(alice.recv_type("message").await["reply_to"], first);

    // The author deletes their own: gone for everyone.
    let oops = alice.say("lobby", "oops, wrong room").await["id"].as_i64().unwrap();
    bob.recv_type("message").await;
    alice.send(json!({"type": "delete_message", "room": "lobby", "id": oops})).await;
    for client in [&mut alice, &mut bob] {
        let deleted = client.recv_type("message_deleted").await;
        assert_eq!(deleted["id"], oops);
    }

    // Bad input, each with its own answer; the connection stays usable.
    let unknown = error_for(&mut alice, json!({"type": "edit_message", "room": "lobby", "id": 999, "text": "x"})).await;
    assert_eq!((unknown["code"].as_str(), unknown["id"].as_i64()), (Some("unknown_message"), Some(999)), "{unknown}");
    let gone = error_for(&mut alice, json!({"type": "add_reaction", "room": "lobby", "id": oops, "emoji": "👍"})).await;
    assert_eq!(gone["code"], "unknown_message", "a deleted message takes no reactions: {gone}");
    let reply_to_nothing =
        json!({"type": "send_message", "room": "lobby", "text": "?", "reply_to": 999, "nonce": "r1"});
    let refused = error_for(&mut alice, reply_to_nothing).await;
    assert_eq!((refused["code"].as_str(), refused["nonce"].as_str()), (Some("unknown_message"), Some("r1")));
    let word =
        error_for(&mut alice, json!({"type": "add_reaction", "room": "lobby", "id": first, "emoji": "lol"})).await;
    assert_eq!((word["code"].as_str(), word["id"].as_i64()), (Some("bad_request"), Some(first)), "{word}");
    let zero = error_for(&mut alice, json!({"type": "delete_message", "room": "lobby", "id": 0})).await;
    assert_eq!(zero["code"], "bad_request");
    let blank = error_for(&mut alice, json!({"type": "edit_message", "room": "lobby", "id": first, "text": " "})).await;
    assert_eq!(blank["code"], "bad_request");
    let mut carol = app.ws().await;
    let outside =
        error_for(&mut carol, json!({"type": "add_reaction", "room": "lobby", "id": first, "emoji": "👍"})).await;
    assert_eq!((outside["code"].as_str(), outside["room"].as_str()), (Some("not_joined"), Some("lobby")));
    alice.assert_open().await;

    let expect_current = |history: &Value| {
        let m = find(history, first).expect("the first message");
        assert_eq!(m["text"], "hello", "{m}");
        assert!(m["edited_at"].is_string(), "{m}");
        assert_eq!(m["reactions"], json!([{"emoji": "👍", "count": 2, "users": ["bob", "alice"]}]));
        assert_eq!(find(history, reply["id"].as_i64().unwrap()).expect("the reply")["reply_to"], first);
        assert!(find(history, oops).is_none(), "deleted for good");
    };
    // From the room's memory...
    expect_current(&carol.join("lobby", "carol").await["history"]);
    for client in [alice, bob, carol] {
        client.close().await;
    }
    // ...and from the log, after a restart.
    let app = app.restart().await;
    let mut dave = app.ws().await;
    expect_current(&dave.join("lobby", "dave").await["history"]);
    let (status, page) = app.get_json("/api/rooms/lobby/messages").await;
    assert_eq!(status, 200, "{page}");
    expect_current(&page["messages"]);

    // Ownership outlives the connection only through an identity: dave is
    // not alice, whatever he calls himself.
    let mut fake = app.ws().await;
    fake.join("lobby", "alice").await;
    let refused = error_for(&mut fake, json!({"type": "delete_message", "room": "lobby", "id": first})).await;
    assert_eq!(refused["code"], "not_yours");
}

/// A guest is known by the guest cookie its browser got with the room page:
/// the same guest in a second tab and after a reload, owner of what it sent.
#[actix_web::test]
async fn a_guest_cookie_makes_tabs_and_reloads_one_guest_who_owns_its_messages() {
    let app = spawn_app().await;
    let resp = app.http().get(app.url("/chat/den")).send().await.expect("GET the room page");
    let cookie = set_cookie(&resp, "parlor_guest").expect("the room page gives a guest cookie");
    let ws_url = app.url("/ws").replace("http", "ws");

    let mut tab = WsClient::connect(&ws_url, Some(&cookie)).await;
    tab.join("den", "Gus").await;
    let id = tab.say("den", "first draft").await["id"].as_i64().unwrap();
    // A second tab (or a reload whose old socket is not closed yet) takes
    // the same name without being refused as someone else.
    let mut second = WsClient::connect(&ws_url, Some(&cookie)).await;
    second.join("den", "Gus").await;
    tab.close().await;
    second.send(json!({"type": "edit_message", "room": "den", "id": id, "text": "final"})).await;
    assert_eq!(second.recv_type("message_edited").await["text"], "final");
    second.close().await;

    // Another browser under the same name is another guest.
    let mut other = app.ws().await;
    other.join("den", "Gus").await;
    let refused = error_for(&mut other, json!({"type": "edit_message", "room": "den", "id": id, "text": "x"})).await;
    assert_eq!(refused["code"], "not_yours");
    // A forged cookie is ignored: still someone else.
    let mut forged = WsClient::connect(&ws_url, Some("parlor_guest=0123456789abcdef0123456789abcdef")).await;
    forged.join("den", "Gus2").await;
    let refused = error_for(&mut forged, json!({"type": "delete_message", "room": "den", "id": id})).await;
    assert_eq!(refused["code"], "not_yours");
}

/// An encrypted room's edits are ciphertext too; a muted member changes
/// nothing; a message takes a bounded number of different emoji.
#[actix_web::test]
async fn edits_follow_the_rooms_rules() {
    let app = spawn_app().await;
    let (status, _) = app.post_json("/create_room", &json!({"room": "vault", "encryption": "link"})).await;
    assert_eq!(status, 201);
    let mut alice = app.ws().await;
    alice.join("vault", "alice").await;
    let sealed = "v1.AAECAwQFBgcICQoL.0000000000000000000000Q2lwaGVydGV4dA";
    let id = alice.say("vault", sealed).await["id"].as_i64().unwrap();
    let readable =
        error_for(&mut alice, json!({"type": "edit_message", "room": "vault", "id": id, "text": "plain"})).await;
    assert_eq!(readable["code"], "encryption_required");

    let mut bob = app.ws().await;
    bob.join("vault", "bob").await;
    let emoji: Vec<String> = (0..21).map(|i| char::from_u32(0x1F600 + i).unwrap().to_string()).collect();
    for e in &emoji[..20] {
        bob.send(json!({"type": "add_reaction", "room": "vault", "id": id, "emoji": e})).await;
        bob.recv_type("reaction_added").await;
        alice.recv_type("reaction_added").await;
    }
    let too_many =
        error_for(&mut bob, json!({"type": "add_reaction", "room": "vault", "id": id, "emoji": emoji[20]})).await;
    assert_eq!(too_many["code"], "too_large", "{too_many}");

    let (status, _) = app.post_json_as_admin("/admin/rooms/vault/mute", &json!({"user": "alice", "minutes": 5})).await;
    assert_eq!(status, 200);
    alice.recv_type("muted").await;
    let muted = error_for(&mut alice, json!({"type": "edit_message", "room": "vault", "id": id, "text": sealed})).await;
    assert_eq!(muted["code"], "muted");
    // Deleting one's own stays possible: it takes nothing away from anyone.
    alice.send(json!({"type": "delete_message", "room": "vault", "id": id})).await;
    assert_eq!(alice.recv_type("message_deleted").await["id"], id);
}

/// Messages older than the room's memory are looked up in the log, which
/// may not have committed a change made a moment before: the room
/// remembers what it changed lately, so quick changes build on each other.
async fn changes_to_messages_older_than_the_rooms_memory_follow_each_other(backend: parlor::db::Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let mut alice = app.ws().await;
    alice.join("archive", "alice").await;
    alice.say_all("archive", (1..=150).map(|i| format!("m{i}"))).await;
    app.db.wait_for_messages("archive", 150).await;
    // Enough later messages that the first ones are only in the log.
    alice.say_all("archive", (151..=260).map(|i| format!("m{i}"))).await;
    let (old, older) = (3, 4);

    // Added and taken back at once: taken back.
    alice.send(json!({"type": "add_reaction", "room": "archive", "id": old, "emoji": "👍"})).await;
    alice.send(json!({"type": "remove_reaction", "room": "archive", "id": old, "emoji": "👍"})).await;
    assert_eq!(alice.recv_type("reaction_added").await["id"], old);
    assert_eq!(alice.recv_type("reaction_removed").await["id"], old);
    // Deleted, then reacted to or edited at once: it is gone.
    alice.send(json!({"type": "delete_message", "room": "archive", "id": older})).await;
    alice.send(json!({"type": "add_reaction", "room": "archive", "id": older, "emoji": "👍"})).await;
    alice.send(json!({"type": "edit_message", "room": "archive", "id": older, "text": "back?"})).await;
    assert_eq!(alice.recv_type("message_deleted").await["id"], older);
    for _ in 0..2 {
        let refused = alice.recv_type("error").await;
        assert_eq!((refused["code"].as_str(), refused["id"].as_i64()), (Some("unknown_message"), Some(older)));
    }
    // Two edits in a row: the second is what stays.
    alice.send(json!({"type": "edit_message", "room": "archive", "id": old, "text": "first edit"})).await;
    alice.send(json!({"type": "edit_message", "room": "archive", "id": old, "text": "second edit"})).await;
    alice.recv_type("message_edited").await;
    assert_eq!(alice.recv_type("message_edited").await["text"], "second edit");
    alice.close().await;

    let app = app.restart().await;
    let (status, page) = app.get_json("/api/rooms/archive/messages?before=6&limit=5").await;
    assert_eq!(status, 200, "{page}");
    let list = page["messages"].as_array().unwrap();
    let m = list.iter().find(|m| m["id"] == old).expect("the old message");
    assert_eq!((m["text"].as_str(), m.get("reactions")), (Some("second edit"), None), "{m}");
    assert!(list.iter().all(|m| m["id"] != older), "{page}");
}
