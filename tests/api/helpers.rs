use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parlor::configuration::Settings;
use parlor::db::Backend;
use parlor::startup::Application;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub use crate::databases::TestDatabase;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// How long a test waits for a frame it expects.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestApp {
    pub address: String,
    pub ws_url: String,
    pub settings: Settings,
    app_port: u16,
    app: Application,
    /// The test's own database, dropped after the app (and its restarts).
    pub db: Arc<TestDatabase>,
}

/// Settings for tests: a free port, an admin token, no send rate limit
/// (tests that need one set it).
pub fn test_settings(db: &TestDatabase) -> Settings {
    let mut settings = Settings::defaults();
    settings.bind = "127.0.0.1:0".into();
    settings.database_url = db.url.parse().expect("a valid database URL");
    settings.admin_token = Some(ADMIN_TOKEN.into());
    settings.secret_key = Some("a test secret that is long enough to sign cookies".into());
    settings.rate_per_sec = 0.0;
    settings.workers = Some(2);
    settings
}

/// The app on a fresh SQLite file.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(Backend::Sqlite, configure).await.expect("SQLite is always there")
}

/// The app on a fresh database of `backend`; `None` when that backend's
/// server is not reachable and the run does not require it (the test skips).
pub async fn spawn_app_on(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let db = TestDatabase::create(backend)?;
    let mut settings = test_settings(&db);
    configure(&mut settings);
    Some(start(settings, Arc::new(db)))
}

/// Another app on the same database as `db`'s: one node more of a cluster.
pub fn start_beside(db: &Arc<TestDatabase>, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(db);
    configure(&mut settings);
    start(settings, db.clone())
}

/// The app on `db`, reached through a proxy on `proxy_port`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub fn start_on(db: TestDatabase, proxy_port: u16, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(&db);
    settings.database_url = db.url_via(proxy_port).parse().expect("a valid database URL");
    configure(&mut settings);
    start(settings, Arc::new(db))
}

fn start(settings: Settings, db: Arc<TestDatabase>) -> TestApp {
    let app = Application::build(settings.clone()).expect("the app starts");
    let addr = app.address();
    TestApp {
        address: format!("http://{addr}"),
        ws_url: format!("ws://{addr}/ws"),
        settings,
        app_port: addr.port(),
        app,
        db,
    }
}

impl TestApp {
    pub fn http(&self) -> awc::Client {
        awc::Client::builder().disable_redirects().timeout(PATIENCE).finish()
    }

    pub fn port(&self) -> u16 {
        self.app_port
    }

    /// Where the app listens, for clients that take a socket address.
    pub fn socket_addr(&self) -> std::net::SocketAddr {
        self.app.address()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn ws(&self) -> WsClient {
        WsClient::connect(&self.ws_url, None).await
    }

    /// Alice and Bob in the lobby, Alice told of Bob, and the room in the log.
    pub async fn alice_and_bob_in_lobby(&self) -> (WsClient, WsClient) {
        let mut alice = self.ws().await;
        alice.join("lobby", "alice").await;
        let mut bob = self.ws().await;
        bob.join("lobby", "bob").await;
        alice.recv_type("presence").await;
        self.db.wait_for_room("lobby").await;
        (alice, bob)
    }

    /// Stops the app gracefully and starts it again on the same database
    /// (on a new port).
    pub async fn restart(self) -> TestApp {
        let TestApp { mut settings, app, db, .. } = self;
        assert!(app.stop().await, "every accepted message reached the log before the restart");
        settings.bind = "127.0.0.1:0".into();
        start(settings, db)
    }

    /// Stops the app; its database stays until the returned handle is dropped.
    pub async fn stop(self) -> Arc<TestDatabase> {
        assert!(self.app.stop().await, "every accepted message reached the log before the stop");
        self.db
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let mut resp = self.http().get(self.url(path)).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().limit(16 << 20).await.expect("JSON body"))
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut resp = self.http().post(self.url(path)).send_json(body).await.expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    pub async fn get_json_as_admin(&self, path: &str) -> (u16, Value) {
        let mut resp = self.http().get(self.url(path)).bearer_auth(ADMIN_TOKEN).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().limit(16 << 20).await.expect("JSON body"))
    }

    pub async fn post_json_as_admin(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut resp = self.http().post(self.url(path)).bearer_auth(ADMIN_TOKEN).send_json(body).await.expect("POST");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    pub async fn delete_as_admin(&self, path: &str) -> (u16, Value) {
        let mut resp = self.http().delete(self.url(path)).bearer_auth(ADMIN_TOKEN).send().await.expect("DELETE");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// `GET /metrics` from this machine: the Prometheus text.
    pub async fn metrics(&self) -> String {
        let mut resp = self.http().get(self.url("/metrics")).send().await.expect("GET /metrics");
        assert_eq!(resp.status(), 200);
        String::from_utf8(resp.body().await.expect("body").to_vec()).expect("UTF-8")
    }

    /// A bot token made through the admin API.
    pub async fn bot_token(&self, bot: &str) -> String {
        let mut resp = self
            .http()
            .post(self.url("/admin/bots"))
            .bearer_auth(ADMIN_TOKEN)
            .send_json(&json!({ "name": bot }))
            .await
            .expect("POST /admin/bots");
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        body["token"].as_str().unwrap().to_string()
    }

    /// `POST /store_message` as `bot` (a token is made for it on first use).
    pub async fn post_as(&self, bot: &str, room: &str, text: &str) -> (u16, Value) {
        let token = self.bot_token(bot).await;
        self.post_with_token(&token, room, text).await
    }

    /// `POST /store_message` with a bot token made earlier.
    pub async fn post_with_token(&self, token: &str, room: &str, text: &str) -> (u16, Value) {
        let mut resp = self
            .http()
            .post(self.url("/store_message"))
            .bearer_auth(token)
            .send_json(&json!({ "room": room, "text": text }))
            .await
            .expect("POST /store_message");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    pub async fn get_html(&self, path: &str, cookie: Option<&str>) -> (u16, String) {
        let mut req = self.http().get(self.url(path));
        if let Some(cookie) = cookie {
            req = req.insert_header(("Cookie", cookie));
        }
        let mut resp = req.send().await.expect("GET");
        let status = resp.status().as_u16();
        let body = resp.body().await.expect("body");
        (status, String::from_utf8(body.to_vec()).expect("UTF-8 page"))
    }
}

/// A client's connection, over TLS or not.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

pub struct WsClient {
    stream: WebSocketStream<Box<dyn Io>>,
    local_port: u16,
}

impl WsClient {
    pub async fn connect(url: &str, cookie: Option<&str>) -> Self {
        let headers: Vec<(&str, &str)> = cookie.map(|c| ("Cookie", c)).into_iter().collect();
        Self::connect_with(url, &headers).await
    }

    /// With these headers on the handshake (a cookie, a proxy's
    /// `X-Forwarded-For`).
    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Self {
        let mut request = url.into_client_request().expect("ws url");
        for (name, value) in headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            request.headers_mut().insert(name, value.parse().expect("a header value"));
        }
        let uri = request.uri();
        let address = format!("{}:{}", uri.host().expect("a host"), uri.port_u16().expect("a port"));
        let tcp = TcpStream::connect(address).await.expect("TCP connect");
        let local_port = tcp.local_addr().expect("local address").port();
        Self::handshake(request, Box::new(tcp), local_port).await
    }

    async fn handshake(request: Request, io: Box<dyn Io>, local_port: u16) -> Self {
        Self::try_handshake(request, io, local_port).await.expect("WebSocket handshake")
    }

    /// The WebSocket handshake over a connection already made (`wss://`
    /// tests bring their own TLS).
    pub async fn try_handshake(
        request: Request,
        io: Box<dyn Io>,
        local_port: u16,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let (stream, _) = tokio_tungstenite::client_async(request, io).await?;
        Ok(Self { stream, local_port })
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_raw(Message::Text(frame.to_string())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.stream.send(message).await.expect("send frame");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_raw(Message::Text(text.to_string())).await;
    }

    /// The next text frame as it came (not necessarily JSON), or `None`
    /// once the connection is gone.
    pub async fn recv_text(&mut self) -> Option<String> {
        let read = async {
            while let Some(msg) = self.stream.next().await {
                match msg {
                    Ok(Message::Text(t)) => return Some(t),
                    Ok(Message::Close(_)) | Err(_) => return None,
                    Ok(_) => continue,
                }
            }
            None
        };
        tokio::time::timeout(PATIENCE, read).await.expect("a frame or the close within the test's patience")
    }

    /// Sends a frame; `false` once the connection is gone.
    pub async fn try_send(&mut self, frame: Value) -> bool {
        self.stream.send(Message::Text(frame.to_string())).await.is_ok()
    }

    /// The next text frame, or `None` once the connection is gone.
    pub async fn try_recv(&mut self, within: Duration) -> Option<Value> {
        tokio::time::timeout(within, self.next_text()).await.ok().flatten()
    }

    /// The next text frame as JSON; control frames are answered and skipped.
    pub async fn recv(&mut self) -> Value {
        match tokio::time::timeout(PATIENCE, self.next_text()).await {
            Ok(Some(v)) => v,
            Ok(None) => panic!("connection closed while waiting for a frame"),
            Err(_) => panic!("no frame within {PATIENCE:?}"),
        }
    }

    async fn next_text(&mut self) -> Option<Value> {
        while let Some(msg) = self.stream.next().await {
            match msg {
                Ok(Message::Text(t)) => return Some(serde_json::from_str(&t).expect("server sends JSON")),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
        None
    }

    /// The next frame of type `ty`, skipping presence and typing notices.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == ty {
                return frame;
            }
            let incidental = ["presence", "typing"].contains(&frame["type"].as_str().unwrap_or(""));
            assert!(incidental, "expected a {ty} frame, got {frame}");
        }
    }

    /// The next frame of type `ty`, or an error frame, skipping presence and
    /// typing notices.
    pub async fn recv_type_or_error(&mut self, ty: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == ty || frame["type"] == "error" {
                return frame;
            }
            let incidental = ["presence", "typing"].contains(&frame["type"].as_str().unwrap_or(""));
            assert!(incidental, "expected a {ty} frame, got {frame}");
        }
    }

    /// Asserts that no text frame arrives for `quiet`.
    /// A connection that closed is not silent: that fails too.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        match tokio::time::timeout(quiet, self.next_text()).await {
            Ok(Some(frame)) => panic!("expected no frame, got {frame}"),
            Ok(None) => panic!("expected silence on an open connection, but it closed"),
            Err(_) => {}
        }
    }

    /// Reads until the server closes; returns the close frame, if one came,
    /// and how many text frames arrived before it.
    pub async fn read_until_closed(&mut self, within: Duration) -> (Option<CloseFrame<'static>>, usize) {
        let mut texts = 0;
        let read = async {
            while let Some(msg) = self.stream.next().await {
                match msg {
                    Ok(Message::Text(_)) => texts += 1,
                    Ok(Message::Close(frame)) => return frame,
                    Err(_) => return None,
                    Ok(_) => {}
                }
            }
            None
        };
        let close = tokio::time::timeout(within, read).await.expect("the server closes the connection");
        (close, texts)
    }

    /// Joins and returns the `joined` frame.
    pub async fn join(&mut self, room: &str, name: &str) -> Value {
        self.send(json!({"type": "join_room", "room": room, "name": name})).await;
        let joined = self.recv_type("joined").await;
        assert_eq!(joined["room"], room, "joined the room asked for");
        joined
    }

    /// Sends every text at once, then reads the copies of them all.
    pub async fn say_all(&mut self, room: &str, texts: impl IntoIterator<Item = String>) {
        let mut sent = 0;
        for text in texts {
            self.send(json!({"type": "send_message", "room": room, "text": text})).await;
            sent += 1;
        }
        for _ in 0..sent {
            self.recv_type("message").await;
        }
    }

    /// Sends a message and returns the sender's own copy.
    pub async fn say(&mut self, room: &str, text: &str) -> Value {
        self.send(json!({"type": "send_message", "room": room, "text": text})).await;
        self.recv_type("message").await
    }

    /// Round-trips a ping: proves the connection is open and everything sent
    /// before it was handled.
    pub async fn assert_open(&mut self) {
        self.send(json!({"type": "ping"})).await;
        assert_eq!(self.recv_type("pong").await["type"], "pong");
    }

    /// Reads frames until a `pong`, asserting that at least one error with
    /// `code` came first and nothing else did.
    pub async fn assert_open_after_errors(&mut self, code: &str) {
        self.send(json!({"type": "ping"})).await;
        let mut errors = 0;
        loop {
            let frame = self.recv().await;
            match frame["type"].as_str() {
                Some("pong") => break,
                Some("error") if frame["code"] == code => errors += 1,
                _ => {}
            }
        }
        assert!(errors > 0, "expected {code} errors");
    }

    /// This client's TCP port.
    pub fn local_port(&self) -> u16 {
        self.local_port
    }

    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }
}

pub fn ids(messages: &Value) -> Vec<i64> {
    messages.as_array().expect("array").iter().map(|m| m["id"].as_i64().expect("id")).collect()
}

pub fn texts(messages: &Value) -> Vec<String> {
    messages.as_array().expect("array").iter().map(|m| m["text"].as_str().expect("text").to_string()).collect()
}

/// The inode of the server's end of the TCP connection between the two
/// ports, from /proc/net/tcp: `Some(0)` once no process holds it any more
/// (closed, the kernel finishing it off), `None` when it is gone entirely.
pub fn server_socket_inode(server_port: u16, client_port: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let here = (port(cols.get(1)?)?, port(cols.get(2)?)?);
        (here == (server_port, client_port)).then(|| cols.get(9)?.parse().ok()).flatten()
    })
}

/// What a browser holds after loading the home page: its CSRF cookie and
/// the token the form carries.
pub async fn home_form_token(app: &TestApp) -> (String, String) {
    form_token(app, "/").await
}

/// The CSRF cookie and token of the form on the page at `path`.
pub async fn form_token(app: &TestApp, path: &str) -> (String, String) {
    let mut resp = app.http().get(app.url(path)).send().await.expect("GET a form page");
    let cookie = set_cookie(&resp, "parlor_csrf").expect("a CSRF cookie");
    let html = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
    let token = html.split(r#"name="csrf" value=""#).nth(1).and_then(|rest| rest.split('"').next()).unwrap();
    (cookie, token.to_string())
}

/// The `name=value` of a cookie the response sets, exactly as a browser keeps it.
pub fn set_cookie(resp: &awc::ClientResponse<impl Sized>, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|pair| pair.starts_with(&format!("{name}=")))
}

/// Posts the sign-up or log-in form as a browser does; returns the status,
/// the login cookie (if one was set) and the page.
pub async fn account_form(app: &TestApp, path: &str, name: &str, password: &str) -> (u16, Option<String>, String) {
    let (csrf_cookie, token) = form_token(app, path).await;
    let mut resp = app
        .http()
        .post(app.url(path))
        .insert_header(("Cookie", csrf_cookie))
        .send_form(&[("name", name), ("password", password), ("csrf", &token)])
        .await
        .unwrap();
    let cookie = set_cookie(&resp, "parlor_auth");
    let body = String::from_utf8(resp.body().await.unwrap().to_vec()).unwrap();
    (resp.status().as_u16(), cookie, body)
}

pub async fn sign_up(app: &TestApp, name: &str, password: &str) -> String {
    let (status, cookie, body) = account_form(app, "/signup", name, password).await;
    assert_eq!(status, 303, "{body}");
    cookie.expect("a login cookie")
}

/// The name the home page says is logged in, if any.
pub async fn logged_in_as(app: &TestApp, cookie: &str) -> Option<String> {
    let (_, html) = app.get_html("/", Some(cookie)).await;
    html.split("Logged in as <strong>").nth(1).map(|rest| rest.split('<').next().unwrap().to_string())
}
