//! Socket.IO clients on `/socket.io/`, spoken to at the packet level over
//! real HTTP long-polling and real WebSockets: what the Engine.IO and
//! Socket.IO specifications say a server answers, and that a Socket.IO
//! client is one more member to everyone else. (The real client libraries,
//! socket.io-client and python-socketio, are driven in tests/socketio.)

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{ids, sign_up, spawn_app, spawn_app_with, TestApp, WsClient, ADMIN_TOKEN, PATIENCE};

/// A Socket.IO client at the packet level, on either transport.
pub struct Sio {
    transport: Transport,
    /// Packets read and not yet looked at (a poll brings several).
    read: VecDeque<String>,
    /// The Engine.IO open packet's data.
    open: Value,
}

enum Transport {
    WebSocket(Box<WsClient>),
    Polling { http: awc::Client, url: String },
}

impl Sio {
    /// A client that opens a WebSocket straight away.
    async fn websocket(app: &TestApp, headers: &[(&str, &str)]) -> Self {
        Self::websocket_on(app.port(), headers).await
    }

    pub async fn websocket_on(port: u16, headers: &[(&str, &str)]) -> Self {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let mut ws = WsClient::connect_with(&url, headers).await;
        let open = ws.recv_text().await.expect("the open packet");
        Self { open: open_data(&open), transport: Transport::WebSocket(Box::new(ws)), read: VecDeque::new() }
    }

    /// A client on long-polling, as socket.io-client starts.
    async fn polling(app: &TestApp) -> Self {
        Self::polling_on(app.port()).await
    }

    pub async fn polling_on(port: u16) -> Self {
        let http = awc::Client::builder().timeout(PATIENCE).finish();
        let base = format!("http://127.0.0.1:{port}/socket.io/?EIO=4&transport=polling");
        let mut resp = http.get(base.as_str()).send().await.expect("the handshake");
        let body = String::from_utf8(resp.body().await.expect("the open packet").to_vec()).unwrap();
        assert_eq!(resp.status(), 200, "{body}");
        let open = open_data(&body);
        let url = format!("{base}&sid={}", open["sid"].as_str().unwrap());
        Self { open, transport: Transport::Polling { http, url }, read: VecDeque::new() }
    }

    fn sid(&self) -> &str {
        self.open["sid"].as_str().expect("a sid")
    }

    async fn send(&mut self, packet: &str) {
        match &mut self.transport {
            Transport::WebSocket(ws) => ws.send_text(packet).await,
            Transport::Polling { http, url } => {
                let mut resp = http.post(url.as_str()).send_body(packet.to_string()).await.expect("POST");
                let body = resp.body().await.expect("the POST's answer");
                assert_eq!((resp.status().as_u16(), &body[..]), (200, &b"ok"[..]));
            }
        }
    }

    /// The next packet, answering the server's pings on the way; `None`
    /// once the connection is gone.
    async fn packet(&mut self) -> Option<String> {
        loop {
            if self.read.is_empty() {
                match &mut self.transport {
                    Transport::WebSocket(ws) => self.read.push_back(ws.recv_text().await?),
                    Transport::Polling { http, url } => {
                        let mut resp = http.get(url.as_str()).send().await.expect("GET");
                        let body = String::from_utf8(resp.body().await.expect("a poll's answer").to_vec()).unwrap();
                        if resp.status() != 200 {
                            return None;
                        }
                        self.read.extend(body.split('\u{1e}').map(str::to_string));
                    }
                }
            }
            let packet = self.read.pop_front().expect("read above");
            match packet.as_str() {
                "2" => self.send("3").await,
                "6" => {}
                // Engine.IO's close: the session is over.
                "1" => return None,
                _ => return Some(packet),
            }
        }
    }

    /// Connects to the default namespace; returns the server's answer.
    pub async fn connect(&mut self, auth: Option<Value>) -> String {
        let packet = match auth {
            Some(auth) => format!("40{auth}"),
            None => "40".into(),
        };
        self.send(&packet).await;
        self.packet().await.expect("an answer to CONNECT")
    }

    async fn connected(app: &TestApp, polling: bool) -> Self {
        let mut sio = if polling { Self::polling(app).await } else { Self::websocket(app, &[]).await };
        let answer = sio.connect(None).await;
        assert!(answer.starts_with("40{\"sid\":"), "{answer}");
        sio
    }

    async fn emit(&mut self, event: &str, data: Value) {
        self.send(&format!("42{}", json!([event, data]))).await;
    }

    /// Emits with acknowledgement `ack` and returns the ack's arguments,
    /// with the events that came first.
    pub async fn call(&mut self, ack: u64, event: &str, data: Value) -> (Value, Vec<(String, Value)>) {
        self.send(&format!("42{ack}{}", json!([event, data]))).await;
        let mut before = Vec::new();
        loop {
            let packet = self.packet().await.expect("the ack");
            if let Some(args) = packet.strip_prefix(&format!("43{ack}")) {
                return (serde_json::from_str(args).expect("ack arguments are JSON"), before);
            }
            before.push(event_of(&packet));
        }
    }

    /// The next event called `name`, skipping presence and typing.
    pub async fn event(&mut self, name: &str) -> Value {
        loop {
            let packet = self.packet().await.unwrap_or_else(|| panic!("closed while waiting for {name}"));
            let (event, data) = event_of(&packet);
            if event == name {
                return data;
            }
            assert!(["presence", "typing"].contains(&event.as_str()), "expected {name}, got {packet}");
        }
    }

    /// Joins `room` as `name`; returns the `joined` frame (the ack).
    pub async fn join(&mut self, room: &str, name: &str) -> Value {
        let (joined, _) = self.call(900, "join_room", json!({"room": room, "username": name})).await;
        assert_eq!(joined[0]["type"], "joined", "{joined}");
        joined[0].clone()
    }
}

fn open_data(packet: &str) -> Value {
    serde_json::from_str(packet.strip_prefix('0').expect("an open packet")).expect("the open packet is JSON")
}

/// An EVENT packet's name and argument.
fn event_of(packet: &str) -> (String, Value) {
    let data = packet.strip_prefix("42").unwrap_or_else(|| panic!("an event, got {packet}"));
    let data: Value = serde_json::from_str(data).expect("event data is JSON");
    (data[0].as_str().expect("an event name").to_string(), data[1].clone())
}

async fn request(app: &TestApp, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = match method {
        "POST" => app.http().post(app.url(path)),
        _ => app.http().get(app.url(path)),
    };
    for header in headers {
        req = req.insert_header(*header);
    }
    let mut resp = req.send_body(body.to_string()).await.expect("the request");
    let body = String::from_utf8(resp.body().await.expect("a body").to_vec()).unwrap();
    (resp.status().as_u16(), body)
}

/// An Engine.IO error answer's status and code.
async fn refusal(app: &TestApp, method: &str, path: &str, body: &str, headers: &[(&str, &str)]) -> (u16, i64) {
    let (status, body) = request(app, method, path, body, headers).await;
    let error: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("a JSON error, got {body}"));
    (status, error["code"].as_i64().expect("an Engine.IO error code"))
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let metrics = app.metrics().await;
    let line = metrics.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {metrics}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[actix_web::test]
async fn socketio_clients_on_either_transport_chat_with_native_members() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("mixed", "alice").await;
    let mut bob = Sio::connected(&app, false).await;
    let mut carol = Sio::connected(&app, true).await;
    bob.join("mixed", "bob").await;
    carol.join("mixed", "carol").await;

    let one = alice.say("mixed", "one").await;
    // Flask-SocketIO's field name for the text, and a callback for the
    // stored message.
    let (ack, events) = bob.call(1, "send_message", json!({"room": "mixed", "message": "two"})).await;
    let stored = &ack[0];
    assert_eq!(
        (stored["type"].as_str(), stored["text"].as_str(), stored["user"].as_str()),
        (Some("message"), Some("two"), Some("bob"))
    );
    assert!(stored["nonce"].as_str().is_some_and(|n| n.starts_with("sio-")), "a nonce to match the ack: {stored}");
    carol.emit("send_message", json!({"room": "mixed", "text": "three"})).await;

    let mut seen = vec![(one["id"].as_i64().unwrap(), "one".to_string())];
    for _ in 0..2 {
        let message = alice.recv_type("message").await;
        seen.push((message["id"].as_i64().unwrap(), message["text"].as_str().unwrap().to_string()));
    }
    let texts: Vec<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three"]);
    // The same messages, ids and order for the Socket.IO members; bob's own
    // copy came as an event as well as the ack.
    let mut bob_saw: Vec<(i64, String)> = events
        .iter()
        .filter(|(name, _)| name == "message")
        .map(|(_, m)| (m["id"].as_i64().unwrap(), m["text"].as_str().unwrap().to_string()))
        .collect();
    while bob_saw.len() < 3 {
        let m = bob.event("message").await;
        bob_saw.push((m["id"].as_i64().unwrap(), m["text"].as_str().unwrap().to_string()));
    }
    assert_eq!(bob_saw, seen);
    let mut carol_saw = Vec::new();
    while carol_saw.len() < 3 {
        let m = carol.event("message").await;
        carol_saw.push((m["id"].as_i64().unwrap(), m["text"].as_str().unwrap().to_string()));
    }
    assert_eq!(carol_saw, seen);
}

/// A request (method, path, body, headers) and the refusal it gets (status, code).
type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)], (u16, i64));

#[actix_web::test]
async fn engine_io_refusals_carry_the_specifications_error_codes() {
    let app = spawn_app().await;
    let cases: [Case; 6] = [
        ("GET", "/socket.io/?EIO=3&transport=polling", "", &[], (400, 5)),
        ("GET", "/socket.io/?EIO=4&transport=flashsocket", "", &[], (400, 0)),
        ("GET", "/socket.io/?EIO=4&transport=polling&sid=nosuchsession", "", &[], (400, 1)),
        ("POST", "/socket.io/?EIO=4&transport=polling&sid=nosuchsession", "40", &[], (400, 1)),
        ("POST", "/socket.io/?EIO=4&transport=polling", "40", &[], (400, 2)),
        ("GET", "/socket.io/?EIO=4&transport=polling", "", &[("Origin", "https://evil.example")], (403, 4)),
    ];
    for (method, path, body, headers, expected) in cases {
        assert_eq!(refusal(&app, method, path, body, headers).await, expected, "{method} {path}");
    }

    // A body that is not Engine.IO packets: 400, and the session is over.
    let sio = Sio::polling(&app).await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", sio.sid());
    assert_eq!(refusal(&app, "POST", &path, "9nonsense", &[]).await, (400, 3));
    assert_eq!(refusal(&app, "GET", &path, "", &[]).await, (400, 1));

    // A body over maxPayload: 413, and the session is over too.
    let sio = Sio::polling(&app).await;
    let max = sio.open["maxPayload"].as_u64().unwrap() as usize;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", sio.sid());
    let huge = format!("4{}", "x".repeat(max));
    assert_eq!(refusal(&app, "POST", &path, &huge, &[]).await, (413, 3));
    assert_eq!(refusal(&app, "GET", &path, "", &[]).await, (400, 1));

    // The open packet promises what the server does.
    let open = &sio.open;
    assert_eq!(open["upgrades"], json!(["websocket"]));
    assert_eq!(open["pingInterval"], json!(app.settings.heartbeat_interval_secs * 1000));
    assert_eq!(
        open["pingTimeout"],
        json!((app.settings.client_timeout_secs - app.settings.heartbeat_interval_secs) * 1000)
    );
}

#[actix_web::test]
async fn socketio_packets_that_break_the_rules_get_the_specified_answers() {
    let app = spawn_app().await;
    let mut sio = Sio::websocket(&app, &[]).await;
    assert_eq!(sio.open["upgrades"], json!([]), "a WebSocket client has nothing to upgrade to");
    assert_eq!(sio.connect(None).await.get(..2), Some("40"));
    let refused = sio.connect_to("/admin").await;
    assert_eq!(refused, r#"44/admin,{"message":"Invalid namespace"}"#);
    let mut other = Sio::websocket(&app, &[]).await;
    let refused = other.connect(Some(json!(["not", "an", "object"]))).await;
    assert!(refused.starts_with("44{") && refused.contains("`auth` must be an object"), "{refused}");

    // An unknown event: an `error` event; with a callback, the error as its ack.
    sio.emit("disconnect_everyone", json!({})).await;
    let error = sio.event("error").await;
    assert_eq!(error["code"], "bad_request");
    let (ack, _) = sio.call(5, "send_message", json!("just text")).await;
    assert_eq!((ack[0]["type"].as_str(), ack[0]["code"].as_str()), (Some("error"), Some("bad_request")));
    // A send into a room not joined: the documented error, with its nonce.
    let (ack, _) = sio.call(6, "send_message", json!({"room": "elsewhere", "text": "hi", "nonce": "n-6"})).await;
    assert_eq!((ack[0]["code"].as_str(), ack[0]["nonce"].as_str()), (Some("not_joined"), Some("n-6")));

    // Binary attachments are refused, and the attachment skipped.
    sio.send(r#"451-["send_message",{"room":"a","text":{"_placeholder":true,"num":0}}]"#).await;
    if let Transport::WebSocket(ws) = &mut sio.transport {
        ws.send_raw(tokio_tungstenite::tungstenite::Message::Binary(vec![1, 2, 3])).await;
    }
    let error = sio.event("error").await;
    assert!(error["message"].as_str().unwrap().contains("binary"), "{error}");
    let (pong, events) = sio.call(7, "ping", json!({})).await;
    assert_eq!((pong, events.len()), (json!([{"type": "pong"}]), 0), "the attachment raised no second error");

    // A packet that is not Socket.IO: the connection is closed.
    sio.send("4{oops").await;
    assert_eq!(sio.packet().await, None, "closed after a malformed packet");
}

impl Sio {
    async fn connect_to(&mut self, namespace: &str) -> String {
        self.send(&format!("40{namespace},")).await;
        self.packet().await.expect("an answer to CONNECT")
    }
}

#[actix_web::test]
async fn a_second_poll_at_once_ends_the_session() {
    let app = spawn_app().await;
    let mut sio = Sio::connected(&app, true).await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", sio.sid());
    let waiting = {
        let (http, url) = (app.http(), app.url(&path));
        actix_web::rt::spawn(async move {
            let mut resp = http.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.body().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(refusal(&app, "GET", &path, "", &[]).await, (400, 3));
    let (status, _) = waiting.await.unwrap();
    assert_eq!(status, 200, "the waiting poll is answered");
    assert_eq!(sio.packet().await, None, "and the session is over");
}

#[actix_web::test]
async fn a_polling_client_that_stops_polling_is_let_go_and_forgotten() {
    let app = spawn_app_with(|s| {
        s.heartbeat_interval_secs = 1;
        s.client_timeout_secs = 2;
    })
    .await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    let mut bob = Sio::connected(&app, true).await;
    bob.join("lobby", "bob").await;
    assert_eq!(alice.recv_type("presence").await["action"], "join");
    assert_eq!(metric(&app, "parlor_socketio_polling_sessions").await, 1.0);

    // Bob's client stops: no more polls, no pongs.
    let gone = alice.recv_type("presence").await;
    assert_eq!((gone["user"].as_str(), gone["action"].as_str()), (Some("bob"), Some("leave")));
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", bob.sid());
    let deadline = Instant::now() + PATIENCE;
    while metric(&app, "parlor_socketio_polling_sessions").await > 0.0 {
        assert!(Instant::now() < deadline, "the session was never forgotten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refusal(&app, "GET", &path, "", &[]).await, (400, 1));
    assert_eq!(metric(&app, "parlor_connections{kind=\"guest\"}").await, 1.0, "only alice is connected");
}

#[actix_web::test]
async fn what_waits_for_a_polling_client_is_bounded() {
    let app = spawn_app_with(|s| s.session_buffer_bytes = 16 * 1024).await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    let mut bob = Sio::connected(&app, true).await;
    bob.join("lobby", "bob").await;
    alice.recv_type("presence").await;
    // Bob stops fetching; alice goes on talking, unaffected.
    let text = "x".repeat(1000);
    for _ in 0..40 {
        alice.send(json!({"type": "send_message", "room": "lobby", "text": text})).await;
    }
    let started = Instant::now();
    let mut copies = 0;
    let mut bob_left = false;
    while copies < 40 || !bob_left {
        let frame = alice.recv().await;
        match frame["type"].as_str() {
            Some("message") => copies += 1,
            Some("presence") if frame["user"] == "bob" && frame["action"] == "leave" => bob_left = true,
            _ => {}
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(app.settings.client_timeout_secs),
        "put out for the backlog, before any ping timeout"
    );
    assert_eq!(bob.packet().await, None, "bob's session is over");
}

#[actix_web::test]
async fn the_upgrade_moves_a_polling_session_to_its_websocket_without_losing_a_frame() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    let mut bob = Sio::connected(&app, true).await;
    bob.join("lobby", "bob").await;

    let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket&sid={}", app.port(), bob.sid());
    let mut ws = WsClient::connect(&url, None).await;
    ws.send_text("2probe").await;
    assert_eq!(ws.recv_text().await.as_deref(), Some("3probe"));
    // While it moves, polls are answered at once, so that it can pause
    // polling without waiting for the next ping.
    let (http, poll_url) = match &bob.transport {
        Transport::Polling { http, url } => (http.clone(), url.clone()),
        Transport::WebSocket(_) => unreachable!("bob polls"),
    };
    let asked = Instant::now();
    let mut resp = http.get(poll_url.as_str()).send().await.unwrap();
    assert_eq!(resp.body().await.unwrap(), "6");
    assert!(asked.elapsed() < Duration::from_secs(1), "answered at once");
    let before = alice.say("lobby", "said while bob moves").await;
    // The client posts what it had queued, and moves the moment the POST
    // is answered: every packet of it is still handled, before anything
    // that comes over the WebSocket.
    let pings: Vec<String> = (100..400).map(|ack| format!("42{ack}[\"ping\"]")).collect();
    bob.send(&pings.join("\u{1e}")).await;
    ws.send_text("5").await;
    let Transport::Polling { url: poll_url, .. } = &bob.transport else { unreachable!() };
    let poll_url = poll_url.clone();
    bob.transport = Transport::WebSocket(Box::new(ws));
    let mut answered = Vec::new();
    let mut first = None;
    while answered.len() < pings.len() {
        let packet = bob.packet().await.expect("the answers to the pings");
        match packet.strip_prefix("43") {
            Some(ack) => answered.push(ack.split('[').next().unwrap().parse::<u64>().unwrap()),
            None => first = Some(event_of(&packet).1),
        }
    }
    assert_eq!(answered, (100..400).collect::<Vec<_>>(), "every posted ping answered, in order");
    // What no poll fetched comes over the WebSocket, then the live frames.
    let first = match first {
        Some(first) => first,
        None => bob.event("message").await,
    };
    assert_eq!((first["id"].clone(), first["text"].as_str()), (before["id"].clone(), Some("said while bob moves")));
    let after = alice.say("lobby", "said after the upgrade").await;
    assert_eq!(bob.event("message").await["id"], after["id"]);
    let (ack, _) = bob.call(3, "send_message", json!({"room": "lobby", "text": "from the websocket"})).await;
    assert_eq!(alice.recv_type("message").await["id"], ack[0]["id"]);

    let mut resp = app.http().get(poll_url).send().await.unwrap();
    let _ = resp.body().await;
    assert_eq!(resp.status(), 400, "no polling after the upgrade");
}

#[actix_web::test]
async fn a_socketio_client_is_held_to_the_same_rules_as_a_native_one() {
    let app = spawn_app_with(|s| {
        s.rate_per_sec = 1.0;
        s.rate_burst = 2.0;
    })
    .await;
    // Logged in by the session cookie: the account's name, whatever is asked.
    let cookie = sign_up(&app, "Zed", "correct horse battery").await;
    let mut zed = Sio::websocket(&app, &[("Cookie", &cookie)]).await;
    zed.connect(Some(json!({"name": "impostor"}))).await;
    let joined = zed.join("lobby", "someone-else").await;
    assert_eq!(joined["members"], json!(["Zed"]));

    // The send rate limit.
    let mut refused = 0;
    for ack in 10..15 {
        let (answer, _) = zed.call(ack, "send_message", json!({"room": "lobby", "text": format!("flood {ack}")})).await;
        if answer[0]["code"] == "rate_limited" {
            refused += 1;
        }
    }
    assert!(refused >= 2, "{refused} of 5 quick sends refused");

    // Moderation: an admin kicks the Socket.IO member out of the room.
    let mut guest = Sio::connected(&app, false).await;
    guest.join("lobby", "troll").await;
    let resp = app
        .http()
        .post(app.url("/admin/rooms/lobby/kick"))
        .insert_header(("Authorization", format!("Bearer {ADMIN_TOKEN}")))
        .send_json(&json!({"user": "troll"}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(guest.event("kicked").await, json!({"room": "lobby"}));
    let (ack, _) = guest.call(4, "send_message", json!({"room": "lobby", "text": "still here?"})).await;
    assert_eq!(ack[0]["code"], "not_joined");

    // Another site's page may not open a Socket.IO WebSocket either.
    let url = format!("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket", app.port());
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request.headers_mut().insert("Origin", "https://evil.example".parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await;
    assert!(
        matches!(refused, Err(tokio_tungstenite::tungstenite::Error::Http(ref r)) if r.status() == 403),
        "{refused:?}"
    );
}

#[actix_web::test]
async fn a_socketio_client_recovers_what_it_missed_with_since() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;
    let mut bob = Sio::connected(&app, false).await;
    let joined = bob.join("lobby", "bob").await;
    let epoch = joined["epoch"].as_str().unwrap().to_string();
    let seen = alice.say("lobby", "seen by bob").await;
    assert_eq!(bob.event("message").await["id"], seen["id"]);
    drop(bob);

    let mut missed = Vec::new();
    for text in ["while", "bob", "was away"] {
        missed.push(alice.say("lobby", text).await["id"].as_i64().unwrap());
    }
    let mut bob = Sio::connected(&app, true).await;
    let (joined, _) =
        bob.call(1, "join_room", json!({"room": "lobby", "name": "bob", "since": seen["id"], "epoch": epoch})).await;
    assert_eq!(ids(&joined[0]["history"]), missed);
    assert_eq!(joined[0]["truncated"], false);
}

#[actix_web::test]
async fn a_polling_session_is_its_logins_alone_and_ends_at_once_when_its_client_breaks_the_rules() {
    let app = spawn_app().await;
    let mut alice = app.ws().await;
    alice.join("lobby", "alice").await;

    // A logged-in polling session: its sid without the login is refused.
    let cookie = sign_up(&app, "Zed", "correct horse battery").await;
    let (status, body) = request(&app, "GET", "/socket.io/?EIO=4&transport=polling", "", &[("Cookie", &cookie)]).await;
    assert_eq!(status, 200);
    let sid = open_data(&body)["sid"].as_str().unwrap().to_string();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(refusal(&app, "POST", &path, "40", &[]).await, (403, 4));
    let (status, _) = request(&app, "POST", &path, "40", &[("Cookie", &cookie)]).await;
    assert_eq!(status, 200, "with its login it goes on");

    // A guest's session that posts what is not Engine.IO leaves its rooms
    // at once, not at the next ping.
    let mut bob = Sio::connected(&app, true).await;
    bob.join("lobby", "bob").await;
    assert_eq!(alice.recv_type("presence").await["action"], "join");
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", bob.sid());
    let posted = Instant::now();
    assert_eq!(refusal(&app, "POST", &path, "x", &[]).await, (400, 3));
    let gone = alice.recv_type("presence").await;
    assert_eq!((gone["user"].as_str(), gone["action"].as_str()), (Some("bob"), Some("leave")));
    assert!(posted.elapsed() < Duration::from_secs(app.settings.heartbeat_interval_secs) / 2, "at once");
}

#[actix_web::test]
async fn a_command_that_is_not_valid_gets_its_error_as_its_ack_at_once() {
    let app = spawn_app().await;
    let mut sio = Sio::connected(&app, false).await;
    sio.join("lobby", "ann").await;
    let (ack, _) = sio.call(1, "edit_message", json!({"room": "lobby", "text": "no id"})).await;
    assert_eq!((ack[0]["code"].as_str(), ack[0]["command"].as_str()), (Some("bad_request"), Some("edit_message")));
    let (ack, _) = sio.call(2, "join_room", json!({"room": "no spaces or ünicode!"})).await;
    assert_eq!((ack[0]["code"].as_str(), ack[0]["command"].as_str()), (Some("invalid_room"), Some("join_room")));
    // A refused typing notice answers no other command's callback.
    sio.emit("typing", json!({"room": "elsewhere"})).await;
    let (history, events) = sio.call(3, "history", json!({"room": "lobby"})).await;
    assert_eq!(history[0]["type"], "history", "{history}");
    assert!(events.iter().all(|(name, _)| name == "error"), "{events:?}");
}
