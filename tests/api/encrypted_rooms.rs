//! End-to-end encrypted rooms as the server sees them: it never holds a
//! key, keeps only ciphertext, refuses readable text, and tells clients how
//! the room's key is shared. (The encryption itself runs in the browser;
//! tests/browser/e2e.test.mjs covers it.)

use serde_json::{json, Value};

use crate::databases::on_every_backend;
use crate::helpers::{spawn_app, spawn_app_on, TestApp, TestDatabase, ADMIN_TOKEN};
use crate::socketio::Sio;

on_every_backend!(
    an_encrypted_room_takes_ciphertext_only_and_keeps_it_across_a_restart,
    a_plain_row_written_first_becomes_encrypted_and_never_the_reverse,
    moderation_works_in_an_encrypted_room_and_admins_see_it_marked,
);

/// Shaped like what browsers send: `v1.<12-byte IV>.<ciphertext and tag>`.
fn envelope(n: u32) -> String {
    format!("v1.AAECAwQFBgcICQoL.{:0>22}Q2lwaGVydGV4dA", n)
}

async fn create(app: &TestApp, room: &str, encryption: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "room": room });
    if let Some(encryption) = encryption {
        body["encryption"] = encryption.into();
    }
    app.post_json("/create_room", &body).await
}

async fn an_encrypted_room_takes_ciphertext_only_and_keeps_it_across_a_restart(backend: parlor::db::Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let (status, created) = create(&app, "hideout", Some("passphrase")).await;
    assert_eq!(status, 201, "{created}");
    let encryption = &created["encryption"];
    assert_eq!(encryption["scheme"], "aes-256-gcm");
    assert_eq!(encryption["key"], "passphrase");
    assert_eq!(encryption["iterations"], 600_000);
    let salt = encryption["salt"].as_str().expect("a salt").to_string();
    assert_eq!(salt.len(), 22, "16 bytes of unpadded base64url");

    let (mut alice, mut bob) = (app.ws().await, app.ws().await);
    let joined = alice.join("hideout", "alice").await;
    assert_eq!(joined["encryption"], *encryption, "members learn how the key is shared");
    bob.join("hideout", "bob").await;
    alice.recv_type("presence").await;

    // Readable text is refused, with its nonce, and reaches no one.
    alice.send(json!({"type": "send_message", "room": "hideout", "text": "meet at noon", "nonce": "n1"})).await;
    let refused = alice.recv_type("error").await;
    assert_eq!(refused["code"], "encryption_required", "{refused}");
    assert_eq!(refused["nonce"], "n1");
    assert_eq!(refused["room"], "hideout");

    let sealed = envelope(1);
    let own = alice.say("hideout", &sealed).await;
    assert_eq!(own["text"], sealed.as_str());
    let seen = bob.recv_type("message").await;
    assert_eq!((seen["id"].as_i64(), seen["text"].as_str()), (own["id"].as_i64(), Some(sealed.as_str())));

    // A bot without the key cannot post readable text either.
    let (status, body) = app.post_as("reminder", "hideout", "standup in 5").await;
    assert_eq!((status, body["error"].as_str()), (422, Some("encryption_required")), "{body}");
    let (status, _) = app.post_as("reminder", "hideout", &envelope(2)).await;
    assert_eq!(status, 201);
    assert_eq!(bob.recv_type("message").await["text"], envelope(2).as_str());
    alice.close().await;
    bob.close().await;

    app.db.wait_for_messages("hideout", 2).await;
    let stored = app.db.stored_messages("hideout");
    assert_eq!(stored.iter().map(|(_, text)| text.clone()).collect::<Vec<_>>(), vec![envelope(1), envelope(2)]);

    // The room is still encrypted, with the same salt, after a restart.
    let app = app.restart().await;
    let (status, again) = create(&app, "hideout", None).await;
    assert_eq!((status, again["encryption"]["salt"].as_str()), (200, Some(salt.as_str())), "{again}");
    let mut carol = app.ws().await;
    let joined = carol.join("hideout", "carol").await;
    assert_eq!(joined["encryption"]["salt"], salt.as_str());
    assert_eq!(joined["history"].as_array().map(Vec::len), Some(2));
    carol.send(json!({"type": "send_message", "room": "hideout", "text": "plain after restart"})).await;
    assert_eq!(carol.recv_type("error").await["code"], "encryption_required");
    let (_, page) = app.get_json("/api/rooms/hideout/messages").await;
    assert_eq!(page["encryption"]["key"], "passphrase");
    assert_eq!(page["messages"][0]["text"], envelope(2).as_str());
}

#[actix_web::test]
async fn a_room_is_never_silently_the_other_kind() {
    let app = spawn_app().await;
    assert_eq!(create(&app, "plain", None).await.0, 201);
    let (status, body) = create(&app, "plain", Some("link")).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("room_exists")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("is not encrypted"), "{body}");

    let (status, body) = create(&app, "sealed", Some("link")).await;
    assert_eq!((status, body["encryption"]["key"].as_str()), (201, Some("link")));
    let (status, body) = create(&app, "sealed", Some("passphrase")).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("room_exists")), "{body}");
    // Joining it by name (no encryption asked) answers how its key is shared.
    let (status, body) = create(&app, "sealed", None).await;
    assert_eq!((status, body["encryption"]["key"].as_str()), (200, Some("link")));

    let (status, body) = create(&app, "odd", Some("rot13")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
    assert_eq!(app.get_json("/api/rooms/odd/messages").await.0, 404, "a refused request creates nothing");

    // A plain room takes anything, envelopes included, and says nothing of
    // encryption.
    let mut alice = app.ws().await;
    let joined = alice.join("plain", "alice").await;
    assert!(joined.get("encryption").is_none(), "{joined}");
    assert_eq!(alice.say("plain", "hello").await["text"], "hello");
}

#[actix_web::test]
async fn socketio_clients_are_held_to_ciphertext_as_native_ones_are() {
    let app = spawn_app().await;
    create(&app, "vault", Some("link")).await;
    let mut alice = app.ws().await;
    alice.join("vault", "alice").await;
    let mut bob = Sio::websocket_on(app.port(), &[]).await;
    assert!(bob.connect(None).await.starts_with("40{"), "connected");
    assert_eq!(bob.join("vault", "bob").await["encryption"]["key"], "link");

    let (refused, _) = bob.call(1, "send_message", json!({"room": "vault", "text": "meet at noon"})).await;
    assert_eq!(refused[0]["code"], "encryption_required", "{refused}");
    let (sent, _) = bob.call(2, "send_message", json!({"room": "vault", "text": envelope(3)})).await;
    assert_eq!(sent[0]["text"], envelope(3).as_str(), "{sent}");
    let id = sent[0]["id"].as_i64().expect("stored");
    let (refused, _) = bob.call(3, "edit_message", json!({"room": "vault", "id": id, "text": "noon, not one"})).await;
    assert_eq!(refused[0]["code"], "encryption_required", "{refused}");

    assert_eq!(alice.recv_type("message").await["text"], envelope(3).as_str(), "only the envelope reaches Alice");
    app.db.wait_for_messages("vault", 1).await;
    assert_eq!(app.db.stored_messages("vault"), vec![(id, envelope(3))]);
}

async fn moderation_works_in_an_encrypted_room_and_admins_see_it_marked(backend: parlor::db::Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    create(&app, "vault", Some("link")).await;
    let (mut alice, mut bob) = (app.ws().await, app.ws().await);
    alice.join("vault", "alice").await;
    bob.join("vault", "bob").await;
    alice.recv_type("presence").await;
    let message = bob.say("vault", &envelope(7)).await;
    alice.recv_type("message").await;

    let (_, rooms) = app.get_json_as_admin("/admin/rooms?format=json").await;
    let vault = rooms["rooms"].as_array().unwrap().iter().find(|r| r["name"] == "vault").expect("listed");
    assert_eq!(vault["encrypted"], true);
    let mut console = app.http().get(app.url("/admin")).bearer_auth(ADMIN_TOKEN).send().await.expect("GET /admin");
    let html = String::from_utf8(console.body().await.expect("the page").to_vec()).expect("UTF-8");
    assert!(html.contains("end-to-end encrypted"), "the console marks encrypted rooms");

    let id = message["id"].as_i64().unwrap();
    let (status, _) = app.delete_as_admin(&format!("/admin/rooms/vault/messages/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(alice.recv_type("message_deleted").await["id"], id);
    assert_eq!(bob.recv_type("message_deleted").await["id"], id);
    let (_, audit) = app.get_json_as_admin("/admin/audit").await;
    assert_eq!(audit["entries"][0]["detail"], "by bob: (end-to-end encrypted)", "nothing readable to keep");
    // In a plain room the log keeps the text, even one shaped like an
    // envelope: it is what its author wrote, readable to the server anyway.
    create(&app, "lobby", None).await;
    bob.join("lobby", "bob").await;
    let plain = bob.say("lobby", &envelope(8)).await["id"].as_i64().unwrap();
    let (status, _) = app.delete_as_admin(&format!("/admin/rooms/lobby/messages/{plain}")).await;
    assert_eq!(status, 200);
    assert_eq!(bob.recv_type("message_deleted").await["id"], plain);
    let (_, audit) = app.get_json_as_admin("/admin/audit").await;
    assert_eq!(audit["entries"][0]["detail"], format!("by bob: {:?}", envelope(8)));
    let (status, _) = app.post_json_as_admin("/admin/rooms/vault/kick", &json!({ "user": "bob" })).await;
    assert_eq!(status, 200);
    assert_eq!(bob.recv_type("kicked").await["room"], "vault");
    let (status, _) = app.post_json_as_admin("/admin/rooms/vault/close", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(alice.recv_type("room_closed").await["room"], "vault");
}

/// In a cluster a node that took a room for a plain one may write its row
/// first; the row of the node that knew it encrypted must still win, and a
/// plain row must never undo encryption.
async fn a_plain_row_written_first_becomes_encrypted_and_never_the_reverse(backend: parlor::db::Backend) {
    use parlor::db::rooms::{encryption_of, insert_all, NewRoom};
    let Some(db) = TestDatabase::create(backend) else { return };
    // Connecting runs the migrations.
    let _pool = parlor::db::connect(&db.url.parse().unwrap(), 1, std::time::Duration::from_secs(5)).unwrap();
    let mut conn = db.connect();
    let row = |encryption, key_salt| NewRoom {
        name: "race",
        created_at: 1,
        created_by: None,
        epoch: "e",
        encryption,
        key_salt,
    };
    insert_all(&mut conn, &[row(None, None)]).unwrap();
    insert_all(&mut conn, &[row(Some("link"), Some("c2FsdHNhbHRzYWx0c2FsdA"))]).unwrap();
    let stored = encryption_of(&mut conn, "race").unwrap().expect("the room exists").expect("it is encrypted");
    assert_eq!((stored.key.as_str(), stored.salt.as_str()), ("link", "c2FsdHNhbHRzYWx0c2FsdA"));
    insert_all(&mut conn, &[row(None, None)]).unwrap();
    insert_all(&mut conn, &[row(Some("passphrase"), Some("other"))]).unwrap();
    let stored = encryption_of(&mut conn, "race").unwrap().unwrap().unwrap();
    assert_eq!(
        (stored.key.as_str(), stored.salt.as_str()),
        ("link", "c2FsdHNhbHRzYWx0c2FsdA"),
        "the first decision stays"
    );
}
