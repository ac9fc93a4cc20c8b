//! The admin console: who may use it, what each action does to the people
//! in the room, and the audit log. On every backend.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use parlor::db::Backend;
use serde_json::{json, Value};

use crate::databases::on_every_backend;
use crate::helpers::{account_form, form_token, spawn_app_on, TestApp, TestDatabase, WsClient, PATIENCE};

on_every_backend!(
    admin_routes_need_an_admin,
    the_first_admin_comes_from_the_command_line_and_can_grant_the_role,
    kicking_takes_a_member_out,
    closing_a_room_sends_everyone_out_until_it_reopens,
    deleting_a_message_removes_it_everywhere,
    a_ban_ends_open_connections_and_logins_at_once,
    a_muted_user_cannot_send_in_that_room,
    private_rooms_let_in_only_the_invited,
    what_is_in_force_is_listed_and_can_be_undone,
    a_room_ban_keeps_a_guest_out_by_browser_and_address_until_lifted,
);

const PASSWORD: &str = "correct horse battery";

/// `parlor admin create NAME`, as an operator runs it, password on stdin.
fn cli_create_admin(app: &TestApp, name: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parlor"))
        .args(["admin", "create", name, "--database-url", app.settings.database_url.as_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run parlor admin create");
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Logs in (or signs up) through the forms; returns the login cookie.
async fn login(app: &TestApp, path: &str, name: &str) -> String {
    let (status, cookie, _) = account_form(app, path, name, PASSWORD).await;
    assert_eq!(status, 303, "{path} as {name}");
    cookie.expect("a login cookie")
}

/// An admin action with a login cookie; returns the status and JSON body.
async fn act(app: &TestApp, cookie: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let req = match method {
        "DELETE" => app.http().delete(app.url(path)),
        _ => app.http().post(app.url(path)),
    }
    .insert_header(("Cookie", cookie.to_string()));
    let mut resp = if method == "DELETE" { req.send().await } else { req.send_json(&body).await }.unwrap();
    let status = resp.status().as_u16();
    let body = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn admin_app(backend: Backend) -> Option<(TestApp, String)> {
    // Behind a trusted proxy (this machine), so that tests can connect from
    // the addresses they name in `X-Forwarded-For`.
    let app = spawn_app_on(backend, |s| s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await?;
    cli_create_admin(&app, "root");
    let cookie = login(&app, "/login", "root").await;
    Some((app, cookie))
}

/// The actions in the audit log, newest first.
async fn audit_actions(app: &TestApp, cookie: &str) -> Vec<(String, String, String)> {
    let mut resp =
        app.http().get(app.url("/admin/audit")).insert_header(("Cookie", cookie.to_string())).send().await.unwrap();
    let body: Value = resp.json().await.unwrap();
    body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().into(),
                e["action"].as_str().unwrap().into(),
                e["target"].as_str().unwrap().into(),
            )
        })
        .collect()
}

async fn admin_routes_need_an_admin(backend: Backend) {
    let Some(app) = spawn_app_on(backend, |_| {}).await else { return };
    let member = login(&app, "/signup", "plain").await;
    let mut lobby = app.ws().await;
    lobby.join("lobby", "someone").await;
    let routes = [
        ("GET", "/admin"),
        ("GET", "/admin/rooms"),
        ("GET", "/admin/audit"),
        ("POST", "/admin/rooms/lobby/kick"),
        ("POST", "/admin/rooms/lobby/close"),
        ("POST", "/admin/rooms/lobby/reopen"),
        ("POST", "/admin/rooms/lobby/mute"),
        ("POST", "/admin/rooms/lobby/privacy"),
        ("POST", "/admin/rooms/lobby/invite"),
        ("DELETE", "/admin/rooms/lobby/messages/1"),
        ("POST", "/admin/users/plain/ban"),
        ("POST", "/admin/users/plain/role"),
        ("POST", "/admin/bots"),
    ];
    for (method, path) in routes {
        let req = match method {
            "GET" => app.http().get(app.url(path)),
            "DELETE" => app.http().delete(app.url(path)),
            _ => app.http().post(app.url(path)),
        };
        let mut resp = req.insert_header(("Cookie", member.clone())).send_json(&json!({"name": "x"})).await.unwrap();
        assert_eq!(resp.status(), 403, "a non-admin at {method} {path}");
        let _ = resp.body().await;
        let req = match method {
            "GET" => app.http().get(app.url(path)),
            "DELETE" => app.http().delete(app.url(path)),
            _ => app.http().post(app.url(path)),
        };
        let mut resp = req.send_json(&json!({"name": "x"})).await.unwrap();
        assert_eq!(resp.status(), 401, "nobody at {method} {path}");
        let _ = resp.body().await;
    }
    // Nothing happened: the member did not make themselves an admin, and the
    // room is still open.
    assert_eq!(app.get_html("/admin", Some(&member)).await.0, 403);
    lobby.assert_open().await;
}

async fn the_first_admin_comes_from_the_command_line_and_can_grant_the_role(backend: Backend) {
    let Some((app, root)) = admin_app(backend).await else { return };
    let (_, html) = app.get_html("/admin", Some(&root)).await;
    assert!(html.contains("Active rooms"), "the console opens for the admin");

    let helper = login(&app, "/signup", "helper").await;
    assert_eq!(app.get_html("/admin", Some(&helper)).await.0, 403);
    let (status, _) = act(&app, &root, "POST", "/admin/users/helper/role", json!({"admin": true})).await;
    assert_eq!(status, 200);
    assert_eq!(app.get_html("/admin", Some(&helper)).await.0, 200, "granted");
    act(&app, &root, "POST", "/admin/users/helper/role", json!({"admin": false})).await;
    assert_eq!(app.get_html("/admin", Some(&helper)).await.0, 403, "taken back");

    let log = audit_actions(&app, &root).await;
    assert_eq!(
        log[..2],
        [
            ("root".into(), "revoke_admin".into(), "helper".into()),
            ("root".into(), "grant_admin".into(), "helper".into())
        ]
    );
    let (_, html) = app.get_html("/admin", Some(&root)).await;
    assert!(html.contains("grant_admin"), "the audit log is on the console");
}

async fn kicking_takes_a_member_out(backend: Backend) {
    let Some((app, root)) = admin_app(backend).await else { return };
    let mut alice = app.ws().await;
    let mut troll = app.ws().await;
    alice.join("lobby", "alice").await;
    troll.join("lobby", "troll").await;
    alice.recv_type("presence").await;

    let (status, body) = act(&app, &root, "POST", "/admin/rooms/lobby/kick", json!({"user": "troll"})).await;
    assert_eq!((status, body["kicked"].as_u64()), (200, Some(1)));
    assert_eq!(troll.recv().await, json!({"type": "kicked", "room": "lobby"}));
    let left = alice.recv().await;
    assert_eq!((left["user"].as_str(), left["action"].as_str()), (Some("troll"), Some("leave")));
    troll.send(json!({"type": "send_message", "room": "lobby", "text": "still here?"})).await;
    assert_eq!(troll.recv_type("error").await["code"], "not_joined");
    assert_eq!(audit_actions(&app, &root).await[0], ("root".into(), "kick".into(), "troll from lobby".into()));
}

async fn closing_a_room_sends_everyone_out_until_it_reopens(backend: Backend) {
    let Some((app, root)) = admin_app(backend).await else { return };
    let mut alice = app.ws().await;
    alice.join("doomed", "alice").await;
    let (status, _) = act(&app, &root, "POST", "/admin/rooms/doomed/close", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(alice.recv().await, json!({"type": "room_closed", "room": "doomed"}));
    alice.send(json!({"type": "join_room", "room": "doomed", "name": "alice"})).await;
    assert_eq!(alice.recv_type("error").await["code"], "room_closed");

    // Closed survives a restart (the log knows), until reopened.
    let app = app.restart().await;
    let root = login(&app, "/login", "root").await;
    let mut bob = app.ws().await;
    bob.send(json!({"type": "join_room", "room": "doomed", "name": "bob"})).await;
    assert_eq!(bob.recv_type("error").await["code"], "room_closed");
    assert_eq!(act(&app, &root, "POST", "/admin/rooms/doomed/reopen", json!({})).await.0, 200);
    bob.join("doomed", "bob").await;
    let log = audit_actions(&app, &root).await;
    assert_eq!(log[0].1, "reopen_room");
    assert_eq!(log[1], ("root".into(), "close_room".into(), "doomed".into()));
}

async fn deleting_a_message_removes_it_everywhere(backend: Backend) {
    let Some((app, root)) = admin_app(backend).await else { return };
    let mut alice = app.ws().await;
    let mut bob = app.ws().await;
    alice.join("lobby", "alice").await;
    bob.join("lobby", "bob").await;
    alice.say("lobby", "keep").await;
    let bad = alice.say("lobby", "delete me").await["id"].as_i64().unwrap();
    alice.say("lobby", "keep too").await;
    app.db.wait_for_ids("lobby", &[1, 2, 3]).await;

    let (status, _) = act(&app, &root, "DELETE", &format!("/admin/rooms/lobby/messages/{bad}"), Value::Null).await;
    assert_eq!(status, 200);
    for client in [&mut alice, &mut bob] {
        let gone = loop {
            let frame = client.recv().await;
            if frame["type"] == "message_deleted" {
                break frame;
            }
        };
        assert_eq!(gone, json!({"type": "message_deleted", "room": "lobby", "id": bad}));
    }
    app.db.wait_for_ids("lobby", &[1, 3]).await;
    let mut carol = app.ws().await;
    let joined = carol.join("lobby", "carol").await;
    assert_eq!(crate::helpers::texts(&joined["history"]), ["keep", "keep too"]);
    assert_eq!(audit_actions(&app, &root).await[0].1, "delete_message");
    // Gone from the log, but the admins can still tell who wrote what.
    let (_, audit) = app.get_json_as_admin("/admin/audit").await;
    assert_eq!(audit["entries"][0]["detail"], r#"by alice: "delete me""#);
}

async fn a_ban_ends_open_connections_and_logins_at_once(backend: Backend) {
    let Some((app, root)) = admin_app(backend).await else { return };
    let spammer = login(&app, "/signup", "spammer").await;
    let mut socket = WsClient::connect(&app.ws_url, Some(&spammer)).await;
    socket.send(json!({"type": "join_room", "room": "lobby"})).await;
    socket.recv_type("joined").await;

    // A second socket that is in no room (kicked, or never joined) ends too.
    let mut idle = WsClient::connect(&app.ws_url, Some(&spammer)).await;
    idle.assert_open().await;
    let (status, body) = act(&app, &root, "POST", "/admin/users/spammer/ban", json!({})).await;
    assert_eq!((status, body["connections_ended"].as_u64()), (200, Some(2)));
    let (close, _) = idle.read_until_closed(Duration::from_secs(5)).await;
    assert_eq!(close.expect("a close frame").reason, "banned");
    let (close, _) = socket.read_until_closed(Duration::from_secs(5)).await;
    assert_eq!(close.expect("a close frame").reason, "banned");
    let (_, html) = app.get_html("/", Some(&spammer)).await;
    assert!(!html.contains("Logged in as"), "the login no longer works");
    let (csrf_cookie, token) = form_token(&app, "/login").await;
    let resp = app
        .http()
        .post(app.url("/login"))
        .insert_header(("Cookie", csrf_cookie))
        .send_form(&[("name", "spammer"), ("password", PASSWORD), ("csrf", &token)])
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "nor can it log in again");
    assert_eq!(audit_actions(&app, &root).await[0].1, "ban");
}

async fn a_muted_user_cannot_send_in_that_room(backend: Backend) {
    let Some((app, root)) = admin_app(backend).await else { return };
    let mut loud = app.ws().await;
    loud.join("lobby", "loud").await;
    loud.join("other", "loud").await;
    let (status, _) = act(&app, &root, "POST", "/admin/rooms/lobby/mute", json!({"user": "loud", "minutes": 5})).await;
    assert_eq!(status, 200);
    // Told at once, before typing anything, and until when.
    let told = loud.recv_type("muted").await;
    assert_eq!(told["room"], "lobby");
    let until = told["until"].as_str().expect("until when").to_string();
    loud.send(json!({"type": "send_message", "room": "lobby", "text": "shout"})).await;
    let err = loud.recv_type("error").await;
    assert_eq!(err["code"], "muted");
    assert_eq!(loud.say("other", "fine here").await["text"], "fine here");
    let (status, _) = act(&app, &root, "POST", "/admin/rooms/lobby/mute", json!({"user": "loud", "minutes": 0})).await;
    assert_eq!(status, 400);
    assert_eq!(audit_actions(&app, &root).await[0], ("root".into(), "mute".into(), "loud in lobby".into()));

    // A restart does not lift it.
    app.db.wait_for_room("lobby").await;
    drop(loud);
    let app = app.restart().await;
    let mut loud = app.ws().await;
    let joined = loud.join("lobby", "loud").await;
    assert_eq!(joined["muted_until"], until.as_str(), "joining says so too");
    loud.send(json!({"type": "send_message", "room": "lobby", "text": "now?"})).await;
    assert_eq!(loud.recv_type("error").await["code"], "muted");
    let mut quiet = app.ws().await;
    assert!(quiet.join("lobby", "quiet").await.get("muted_until").is_none(), "only the muted are told");

    // Lifted: told as well, and free to speak.
    let root = login(&app, "/login", "root").await;
    let (status, _) = act(&app, &root, "POST", "/admin/rooms/lobby/unmute", json!({"user": "loud"})).await;
    assert_eq!(status, 200);
    assert_eq!(loud.recv_type("muted").await["until"], Value::Null);
    assert_eq!(loud.say("lobby", "thanks").await["text"], "thanks");
}

async fn private_rooms_let_in_only_the_invited(backend: Backend) {
    let Some((app, root)) = admin_app(backend).await else { return };
    let member = login(&app, "/signup", "member").await;
    let outsider = login(&app, "/signup", "outsider").await;
    let mut guest = app.ws().await;
    guest.join("secret", "guest").await;
    let mut outsider_ws = WsClient::connect(&app.ws_url, Some(&outsider)).await;
    outsider_ws.send(json!({"type": "join_room", "room": "secret"})).await;
    outsider_ws.recv_type("joined").await;

    assert_eq!(act(&app, &root, "POST", "/admin/rooms/secret/invite", json!({"user": "member"})).await.0, 200);
    // A name nobody has registered cannot be invited (whoever took it next would be let in).
    assert_eq!(act(&app, &root, "POST", "/admin/rooms/secret/invite", json!({"user": "future"})).await.0, 404);
    assert_eq!(act(&app, &root, "POST", "/admin/rooms/secret/privacy", json!({"private": true})).await.0, 200);
    // Whoever may not stay is sent out.
    assert_eq!(guest.recv_type("kicked").await["room"], "secret");
    assert_eq!(outsider_ws.recv_type("kicked").await["room"], "secret");

    for (client, who) in [(&mut guest, "a guest"), (&mut outsider_ws, "an uninvited account")] {
        client.send(json!({"type": "join_room", "room": "secret", "name": "guest"})).await;
        assert_eq!(client.recv_type("error").await["code"], "private_room", "{who}");
    }
    let mut member_ws = WsClient::connect(&app.ws_url, Some(&member)).await;
    member_ws.send(json!({"type": "join_room", "room": "secret"})).await;
    assert_eq!(member_ws.recv_type("joined").await["members"], json!(["member"]));
    member_ws.say("secret", "for invited eyes").await;
    let mut root_ws = WsClient::connect(&app.ws_url, Some(&root)).await;
    root_ws.send(json!({"type": "join_room", "room": "secret"})).await;
    assert_eq!(root_ws.recv_type("joined").await["room"], "secret", "admins may enter");

    // Outsiders cannot see it listed or read it.
    let (_, listing) = app.get_json("/api/rooms").await;
    assert_eq!(listing["rooms"], json!([]));
    let (status, _) = app.get_json("/api/rooms/secret/messages").await;
    assert_eq!(status, 404);
    let mut resp = app
        .http()
        .get(app.url("/api/rooms/secret/messages"))
        .insert_header(("Cookie", member.clone()))
        .send()
        .await
        .unwrap();
    let page: Value = resp.json().await.unwrap();
    assert_eq!(crate::helpers::texts(&page["messages"]), ["for invited eyes"]);

    // Kept across a restart.
    drop((member_ws, root_ws));
    let app = app.restart().await;
    let mut again = WsClient::connect(&app.ws_url, Some(&outsider)).await;
    again.send(json!({"type": "join_room", "room": "secret"})).await;
    assert_eq!(again.recv_type("error").await["code"], "private_room");
    let mut member_ws = WsClient::connect(&app.ws_url, Some(&member)).await;
    member_ws.send(json!({"type": "join_room", "room": "secret"})).await;
    member_ws.recv_type("joined").await;

    let root = login(&app, "/login", "root").await;
    assert_eq!(act(&app, &root, "POST", "/admin/rooms/secret/privacy", json!({"private": false})).await.0, 200);
    again.join("secret", "outsider").await;
    let log = audit_actions(&app, &root).await;
    assert_eq!(log[0].1, "make_public");
    assert!(log.iter().any(|(_, action, target)| action == "invite" && target == "member to secret"));
}

/// A pseudo-terminal running `command`: `answers` are typed in turn, each
/// once `waits_for` (the prompt before it) has been shown, or at once when
/// it is empty. Returns everything the terminal showed.
fn on_a_terminal(command: &[&str], answers: &[(&str, &str)]) -> String {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes the two descriptors it opens into the two ints.
    let opened =
        unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(opened, 0, "a pseudo-terminal: {}", std::io::Error::last_os_error());
    // SAFETY: both were just opened, and are owned here alone.
    let (master, slave) = unsafe { (std::fs::File::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = Command::new(command[0])
        .args(&command[1..])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .spawn()
        .expect("the command starts");
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let (shown, mut master) = (shown.clone(), master.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut chunk = [0u8; 1024];
            // Ends with an error (EIO) once the command has closed it.
            while let Ok(n @ 1..) = master.read(&mut chunk) {
                shown.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        })
    };
    let mut master = master;
    for (waits_for, answer) in answers {
        let start = std::time::Instant::now();
        while !shown.lock().unwrap().contains(waits_for) {
            assert!(start.elapsed() < PATIENCE, "never asked {waits_for:?}: {:?}", shown.lock().unwrap());
            std::thread::sleep(Duration::from_millis(10));
        }
        // Typed only now: what is typed before the prompt turns echo off
        // would be echoed.
        writeln!(master, "{answer}").unwrap();
    }
    child.wait().unwrap();
    reader.join().unwrap();
    let shown = shown.lock().unwrap().clone();
    shown
}

#[test]
fn on_a_terminal_admin_create_asks_twice_and_never_shows_the_password() {
    // The pseudo-terminal echoes what is typed, as a terminal does: what
    // the command below must turn off.
    let echoed = on_a_terminal(&["/bin/sh", "-c", "read line"], &[("", "typed in plain sight")]);
    assert!(echoed.contains("typed in plain sight"), "{echoed:?}");

    let db = TestDatabase::create(Backend::Sqlite).unwrap();
    let parlor = env!("CARGO_BIN_EXE_parlor");
    let create = [parlor, "admin", "create", "ops", "--database-url", db.url.as_str()];
    let shown = on_a_terminal(&create, &[("password for ops: ", PASSWORD), ("again, to be sure: ", PASSWORD)]);
    assert!(shown.contains("created admin account 'ops'"), "{shown:?}");
    assert!(!shown.contains(PASSWORD), "the password was shown: {shown:?}");

    let shown = on_a_terminal(&create, &[("password for ops: ", PASSWORD), ("again, to be sure: ", "a typo, unseen")]);
    assert!(shown.contains("the two passwords typed differ; nothing was changed"), "{shown:?}");
    assert!(!shown.contains("a typo"), "{shown:?}");
}

/// A kick keeps the member out for `--kick-cooldown-secs`: a guest cannot
/// come straight back under another name (their address is remembered
/// too), while others from elsewhere and other rooms are unaffected; once
/// it runs out, they may return.
#[actix_web::test]
async fn a_kicked_member_stays_out_for_the_cooldown_whatever_name_they_take() {
    let Some(app) = spawn_app_on(Backend::Sqlite, |s| s.kick_cooldown_secs = 2).await else { return };
    let mut alice = app.ws().await;
    let mut troll = app.ws().await;
    alice.join("lobby", "alice").await;
    troll.join("lobby", "troll").await;
    alice.recv_type("presence").await;
    let (status, body) = app.post_json_as_admin("/admin/rooms/lobby/kick", &json!({"user": "troll"})).await;
    assert_eq!((status, body["kicked"].as_u64()), (200, Some(1)));
    assert_eq!(troll.recv_type("kicked").await["room"], "lobby");

    // Back at once, same name or another, on a new connection: refused.
    for name in ["troll", "totally-new-person"] {
        let mut again = app.ws().await;
        again.send(json!({"type": "join_room", "room": "lobby", "name": name})).await;
        let refused = again.recv_type("error").await;
        assert_eq!(refused["code"], "kicked", "{refused}");
        assert!(refused["message"].as_str().unwrap().contains("you may come back in 1 minute"), "{refused}");
    }
    // Other rooms are open to them; the room is open to everyone else.
    let mut elsewhere = app.ws().await;
    elsewhere.join("other-room", "troll").await;
    let mut admin = WsClient::connect(&app.ws_url, None).await;
    admin.send(json!({"type": "join_room", "room": "lobby", "name": "troll"})).await;
    assert_eq!(admin.recv_type("error").await["code"], "kicked", "the same address, so the same guest");

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let mut back = app.ws().await;
    back.join("lobby", "troll").await;
}

/// An account is kept out by its account, from any address and any node.
#[actix_web::test]
async fn a_kicked_account_stays_out_on_every_node() {
    use crate::cluster::{fresh_prefix, node, sqlite, SHARED_REDIS};
    let db = sqlite();
    let prefix = fresh_prefix();
    let (a, b) = (node(&db, SHARED_REDIS, &prefix), node(&db, SHARED_REDIS, &prefix));
    let cookie = crate::helpers::sign_up(&a, "mallory", PASSWORD).await;
    let mut mallory = WsClient::connect(&a.ws_url, Some(&cookie)).await;
    mallory.join("lobby", "mallory").await;
    // Through the other node (whose answer counts its own connections only).
    let (status, _) = b.post_json_as_admin("/admin/rooms/lobby/kick", &json!({"user": "mallory"})).await;
    assert_eq!(status, 200);
    assert_eq!(mallory.recv_type("kicked").await["room"], "lobby");
    for app in [&a, &b] {
        let mut again = WsClient::connect(&app.ws_url, Some(&cookie)).await;
        again.send(json!({"type": "join_room", "room": "lobby"})).await;
        assert_eq!(again.recv_type("error").await["code"], "kicked");
    }

    // A guest on node A, kicked through node B, comes back through B under
    // a new name: only A knew its address, and told B.
    let mut guest = a.ws().await;
    guest.join("lobby", "pest").await;
    let (status, _) = b.post_json_as_admin("/admin/rooms/lobby/kick", &json!({"user": "pest"})).await;
    assert_eq!(status, 200);
    assert_eq!(guest.recv_type("kicked").await["room"], "lobby");
    let start = std::time::Instant::now();
    loop {
        let mut disguised = b.ws().await;
        disguised.send(json!({"type": "join_room", "room": "lobby", "name": "not-a-pest"})).await;
        let answer = disguised.recv().await;
        if answer["code"] == "kicked" {
            break;
        }
        // The news from node A takes a moment to arrive.
        assert!(start.elapsed() < Duration::from_secs(5), "the guest's address never reached node B: {answer}");
        disguised.close().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The console lists closed rooms (which have no members, so are not among
/// the active ones), running mutes and bans, each with its undoing, and
/// offers Ban (the account) only for accounts, Ban from room for everyone.
async fn what_is_in_force_is_listed_and_can_be_undone(backend: Backend) {
    let Some((app, root)) = admin_app(backend).await else { return };
    let console = || async {
        let mut resp = app.http().get(app.url("/admin")).insert_header(("Cookie", root.clone())).send().await.unwrap();
        String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap()
    };
    let mallory = login(&app, "/signup", "mallory").await;
    let mut account = WsClient::connect(&app.ws_url, Some(&mallory)).await;
    account.send(json!({"type": "join_room", "room": "lobby"})).await;
    account.recv_type("joined").await;
    let mut guest = app.ws().await;
    guest.join("lobby", "visitor").await;
    let page = console().await;
    let row =
        |name: &str| page.split(&format!(r#"data-user="{name}""#)).nth(1).unwrap().split("</div>").next().unwrap();
    assert!(row("mallory").contains(r#"data-action="ban""#), "accounts can be banned");
    assert!(!row("visitor").contains(r#"data-action="ban""#), "a guest has no account to ban");
    assert!(row("visitor").contains(r#"data-action="roomban""#), "but can be banned from the room");
    assert!(page.contains("No closed rooms, mutes, kicks or bans."));

    app.post_json("/create_room", &json!({"room": "quiet"})).await;
    let (status, _) = act(&app, &root, "POST", "/admin/rooms/quiet/close", json!({})).await;
    assert_eq!(status, 200);
    let (status, _) =
        act(&app, &root, "POST", "/admin/rooms/lobby/mute", json!({"user": "visitor", "minutes": 30})).await;
    assert_eq!(status, 200);
    let (status, _) = act(&app, &root, "POST", "/admin/users/mallory/ban", json!({})).await;
    assert_eq!(status, 200);
    let page = console().await;
    let in_force = page.split(r#"id="in-force""#).nth(1).expect("a table of what is in force");
    for undo in [
        r#"data-room="quiet""#,
        r#"data-action="reopen""#,
        "muted in lobby",
        r#"data-action="unmute""#,
        "banned account",
        r#"data-action="unban""#,
    ] {
        assert!(in_force.contains(undo), "{undo} in {in_force}");
    }

    // Undone: each takes effect at once.
    assert!(guest.recv_type("muted").await["until"].is_string(), "told of the mute");
    guest.send(json!({"type": "send_message", "room": "lobby", "text": "hello?"})).await;
    assert_eq!(guest.recv_type("error").await["code"], "muted");
    let (status, _) = act(&app, &root, "POST", "/admin/rooms/lobby/unmute", json!({"user": "visitor"})).await;
    assert_eq!(status, 200);
    assert_eq!(guest.recv_type("muted").await["until"], Value::Null, "told it is lifted");
    assert_eq!(guest.say("lobby", "thank you").await["text"], "thank you");
    let (status, _) = act(&app, &root, "POST", "/admin/users/mallory/unban", json!({})).await;
    assert_eq!(status, 200);
    let mallory = login(&app, "/login", "mallory").await;
    let mut back = WsClient::connect(&app.ws_url, Some(&mallory)).await;
    back.send(json!({"type": "join_room", "room": "lobby"})).await;
    back.recv_type("joined").await;
    let (status, _) = act(&app, &root, "POST", "/admin/rooms/quiet/reopen", json!({})).await;
    assert_eq!(status, 200);
    assert!(console().await.contains("No closed rooms, mutes, kicks or bans."));
    let (status, body) = act(&app, &root, "POST", "/admin/users/mallory/unban", json!({})).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_user")), "not banned any more: {body}");
    let actions: Vec<String> = audit_actions(&app, &root).await.into_iter().map(|(_, action, _)| action).collect();
    assert_eq!(&actions[..4], ["reopen_room", "unban", "unmute", "ban"]);
}

/// An admin moderates a room without being seen in it: no presence, not in
/// the member list or count, no typing notices; and can still delete anyone's
/// message from the socket, audited. Nobody else may hide.
#[actix_web::test]
async fn an_admin_watches_a_room_unseen_and_moderates_from_it() {
    let Some((app, root)) = admin_app(Backend::Sqlite).await else { return };
    let (mut alice, mut bob) = app.alice_and_bob_in_lobby().await;
    let mut admin = WsClient::connect(&app.ws_url, Some(&root)).await;
    admin.send(json!({"type": "join_room", "room": "lobby", "hidden": true})).await;
    let joined = admin.recv_type("joined").await;
    assert_eq!((joined["members"].clone(), joined["member_count"].as_u64()), (json!(["alice", "bob"]), Some(2)));
    admin.send(json!({"type": "typing", "room": "lobby"})).await;
    admin.assert_open().await;
    // Not a frame about it reached the members (no presence, no typing).
    alice.expect_silence(Duration::from_millis(300)).await;
    bob.expect_silence(Duration::from_millis(10)).await;

    let id = bob.say("lobby", "buy cheap pills").await["id"].as_i64().unwrap();
    alice.recv_type("message").await;
    assert_eq!(admin.recv_type("message").await["id"], id, "the watcher sees the room");
    admin.send(json!({"type": "delete_message", "room": "lobby", "id": id})).await;
    for client in [&mut alice, &mut bob, &mut admin] {
        assert_eq!(client.recv_type("message_deleted").await["id"], id);
    }
    // Nobody was told the admin came, typed or is there.
    let mut carol = app.ws().await;
    let seen = carol.join("lobby", "carol").await;
    assert_eq!((seen["members"].clone(), seen["member_count"].as_u64()), (json!(["alice", "bob", "carol"]), Some(3)));
    let presence = alice.recv_type("presence").await;
    assert_eq!((presence["user"].as_str(), presence["members"].as_u64()), (Some("carol"), Some(3)));
    let (_, rooms) = app.get_json("/api/rooms").await;
    let lobby = rooms["rooms"].as_array().unwrap().iter().find(|r| r["name"] == "lobby").cloned().unwrap();
    assert_eq!(lobby["members"], 3, "{rooms}");
    admin.close().await;
    alice.expect_silence(Duration::from_millis(300)).await;
    assert!(audit_actions(&app, &root)
        .await
        .iter()
        .any(|(actor, action, _)| actor == "root" && action == "delete_message"));

    // Hiding is for admins only.
    let mut sneaky = app.ws().await;
    sneaky.send(json!({"type": "join_room", "room": "lobby", "name": "sneaky", "hidden": true})).await;
    let refused = sneaky.recv_type("error").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
}

/// A guest connecting from `address`, with its browser's guest cookie if any.
async fn guest_from(app: &TestApp, address: &str, cookie: Option<&str>) -> WsClient {
    let mut headers = vec![("X-Forwarded-For", address)];
    headers.extend(cookie.map(|c| ("Cookie", c)));
    WsClient::connect_with(&app.ws_url, &headers).await
}

async fn join_error(client: &mut WsClient, room: &str, name: &str) -> Value {
    client.send(json!({"type": "join_room", "room": room, "name": name})).await;
    client.recv_type_or_error("joined").await
}

async fn a_room_ban_keeps_a_guest_out_by_browser_and_address_until_lifted(backend: Backend) {
    let Some((app, root)) = admin_app(backend).await else { return };
    let resp = app.http().get(app.url("/chat/lobby")).send().await.unwrap();
    let browser = crate::helpers::set_cookie(&resp, "parlor_guest").expect("a guest cookie");
    let mut troll = guest_from(&app, "203.0.113.5", Some(&browser)).await;
    troll.join("lobby", "troll").await;
    // The same browser in another tab, under another name.
    let mut alter_ego = guest_from(&app, "203.0.113.5", Some(&browser)).await;
    alter_ego.join("lobby", "sock-puppet").await;
    // Someone else behind the same address stays (only new joins are refused).
    let mut neighbour = guest_from(&app, "203.0.113.5", None).await;
    neighbour.join("lobby", "neighbour").await;

    let (status, body) = act(&app, &root, "POST", "/admin/rooms/lobby/ban", json!({"user": "troll"})).await;
    assert_eq!((status, body["kicked"].as_u64(), body["until"].clone()), (200, Some(2), Value::Null), "{body}");
    assert_eq!(troll.recv_type("kicked").await["room"], "lobby");
    assert_eq!(alter_ego.recv_type("kicked").await["room"], "lobby", "the ban takes the browser's other names out");
    neighbour.assert_open().await;
    neighbour.say("lobby", "still here").await;
    // A kick of the same name later does not shorten the ban, now or after a restart.
    let (status, _) = act(&app, &root, "POST", "/admin/rooms/lobby/kick", json!({"user": "troll"})).await;
    assert_eq!(status, 200);
    let kept_out = |v: &Value| v["type"] == "error" && v["code"] == "kicked";

    // The same browser under another name, from another address: out.
    let mut back = guest_from(&app, "198.51.100.7", Some(&browser)).await;
    let refused = join_error(&mut back, "lobby", "nice-person").await;
    assert!(kept_out(&refused), "{refused}");
    // Another browser from the banned address: out too.
    let mut same_place = guest_from(&app, "203.0.113.5", None).await;
    assert!(kept_out(&join_error(&mut same_place, "lobby", "other").await));
    // Anyone else, and the banned guest in other rooms, are unaffected.
    let mut bystander = guest_from(&app, "198.51.100.9", None).await;
    bystander.join("lobby", "bystander").await;
    back.join("elsewhere", "nice-person").await;
    let (_, page) = app.get_html("/admin/rooms", Some(&root)).await;
    assert!(page.contains("kept out of lobby") && page.contains("Let in"), "the console lists it");

    // The log keeps it: still out after a restart.
    let app = app.restart().await;
    let root = login(&app, "/login", "root").await;
    let mut later = guest_from(&app, "192.0.2.1", Some(&browser)).await;
    let refused = join_error(&mut later, "lobby", "troll-again").await;
    assert!(kept_out(&refused), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("until an admin lets you"), "{refused}");

    let (status, _) = act(&app, &root, "POST", "/admin/rooms/lobby/unban", json!({"user": "troll"})).await;
    assert_eq!(status, 200);
    later.join("lobby", "troll-again").await;
    let mut from_there = guest_from(&app, "203.0.113.5", None).await;
    from_there.join("lobby", "other").await;
    let log = audit_actions(&app, &root).await;
    let actions: Vec<&str> = log.iter().take(3).map(|(_, action, _)| action.as_str()).collect();
    assert_eq!(actions, ["room_unban", "kick", "room_ban"], "{log:?}");

    // An account is kept out by its name, wherever it connects from, for
    // as long as asked.
    let account = login(&app, "/signup", "grumpy").await;
    let mut grumpy = WsClient::connect(&app.ws_url, Some(&account)).await;
    grumpy.join("lobby", "grumpy").await;
    let (status, body) =
        act(&app, &root, "POST", "/admin/rooms/lobby/ban", json!({"user": "grumpy", "minutes": 30})).await;
    assert!(status == 200 && body["until"].is_string(), "{body}");
    grumpy.recv_type("kicked").await;
    let mut elsewhere =
        WsClient::connect_with(&app.ws_url, &[("Cookie", &account), ("X-Forwarded-For", "192.0.2.99")]).await;
    let refused = join_error(&mut elsewhere, "lobby", "grumpy").await;
    assert!(kept_out(&refused) && refused["message"].as_str().unwrap().contains("30 minute"), "{refused}");
    let (status, body) =
        act(&app, &root, "POST", "/admin/rooms/lobby/ban", json!({"user": "troll", "minutes": 0})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_request")), "{body}");
}
