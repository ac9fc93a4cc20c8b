//! HTTPS and WSS on Parlor's own port: certificates made here by a test
//! certificate authority, clients that verify them, a renewal swapped in
//! under an open WebSocket, and what goes wrong (plain HTTP on the TLS
//! port, files that are missing, empty or do not belong together).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parlor::startup::Application;
use parlor::tls::TlsFiles;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::binary::Binary;
use crate::helpers::{spawn_app, spawn_app_with, test_settings, TestApp, TestDatabase, WsClient, PATIENCE};

/// A certificate authority of the test's own, and the clients that trust it
/// (and nothing else).
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A server certificate and its key, as PEM.
struct Pair {
    cert: String,
    key: String,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// For `localhost` and 127.0.0.1.
    fn issue(&self, name: &str) -> Pair {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Pair { cert: cert.pem(), key: key.serialize_pem(), der: cert.der().clone() }
    }

    fn client(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        #[allow(deprecated)] // ring, as the server uses
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

fn write_pair(dir: &Path, pair: &Pair) -> TlsFiles {
    let files = TlsFiles { cert: dir.join("fullchain.pem"), key: dir.join("privkey.pem") };
    std::fs::write(&files.cert, &pair.cert).unwrap();
    std::fs::write(&files.key, &pair.key).unwrap();
    files
}

async fn tls_app(files: &TlsFiles) -> TestApp {
    spawn_app_with(|s| {
        s.tls_cert = Some(files.cert.clone());
        s.tls_key = Some(files.key.clone());
    })
    .await
}

async fn connect(client: &TlsConnector, port: u16) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    client.connect(ServerName::try_from("localhost").unwrap(), tcp).await
}

/// The certificate the server presented on `stream`.
fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().expect("a certificate")[0].clone().into_owned()
}

/// A whole HTTP/1.1 answer over TLS: the head (lowercased) and the body.
async fn https_get(client: &TlsConnector, port: u16, path: &str) -> (String, String) {
    https_request(client, port, &format!("GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\n"), "").await
}

/// The answer to `head` (a request line and headers, each line ended) and
/// `body`, with `Connection: close` added, over TLS: the answer's head
/// (lowercased) and body.
async fn https_request(client: &TlsConnector, port: u16, head: &str, body: &str) -> (String, String) {
    let mut stream = connect(client, port).await.expect("TLS handshake");
    let request = format!("{head}Connection: close\r\n\r\n{body}");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // The server may end without a TLS close_notify: what was read counts.
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole HTTP answer");
    (head.to_lowercase(), body.to_string())
}

/// A WebSocket over TLS, sending `origin` as a browser would.
async fn wss(client: &TlsConnector, port: u16, origin: Option<&str>) -> Result<WsClient, String> {
    let mut request = format!("wss://localhost:{port}/ws").into_client_request().unwrap();
    if let Some(origin) = origin {
        request.headers_mut().insert("Origin", origin.parse().unwrap());
    }
    let stream = connect(client, port).await.map_err(|e| e.to_string())?;
    let local_port = stream.get_ref().0.local_addr().unwrap().port();
    WsClient::try_handshake(request, Box::new(stream), local_port).await.map_err(|e| e.to_string())
}

#[actix_web::test]
async fn https_and_wss_serve_clients_that_verify_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Parlor test CA");
    let files = write_pair(dir.path(), &ca.issue("parlor one"));
    let app = tls_app(&files).await;
    let (client, port) = (ca.client(), app.port());

    let (head, body) = https_get(&client, port, "/").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(body.contains("<form"), "the home page");
    assert!(head.contains("strict-transport-security: max-age=31536000"), "HSTS over TLS: {head}");
    let csrf = head.lines().find(|l| l.starts_with("set-cookie: parlor_csrf=")).expect("a CSRF cookie");
    assert!(csrf.contains("; secure"), "cookies never travel without TLS: {csrf}");
    // The session cookie that remembers a name too, and every other one.
    let body = r#"{"room":"lobby","name":"Alice"}"#;
    let (head, _) = https_request(
        &client,
        port,
        &format!(
            "POST /create_room HTTP/1.1\r\nHost: localhost:{port}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n",
            body.len()
        ),
        body,
    )
    .await;
    let cookies: Vec<&str> = head.lines().filter(|l| l.starts_with("set-cookie: ")).collect();
    assert!(cookies.iter().any(|c| c.starts_with("set-cookie: parlor_session=")), "{head}");
    assert!(cookies.iter().all(|c| c.contains("; secure")), "{cookies:?}");

    // A client that trusts another authority refuses the handshake: the
    // verification above was real.
    let stranger = TestCa::new("someone else").client();
    assert!(connect(&stranger, port).await.is_err());

    let own = format!("https://localhost:{port}");
    let mut alice = wss(&client, port, Some(&own)).await.expect("WSS from our own https page");
    let mut bob = wss(&client, port, Some(&own)).await.expect("WSS from our own https page");
    alice.join("lobby", "alice").await;
    bob.join("lobby", "bob").await;
    alice.recv_type("presence").await;
    let sent = alice.say("lobby", "over TLS ✓").await;
    assert_eq!(bob.recv_type("message").await["id"], sent["id"]);

    // The same host over plain http is another origin (anyone on the
    // network path could have written that page).
    let refused = wss(&client, port, Some(&format!("http://localhost:{port}"))).await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("403")), "{:?}", refused.err());

    // Without TLS, no HSTS and no Secure cookies.
    let plain = spawn_app().await;
    let resp = plain.http().get(plain.url("/")).send().await.unwrap();
    assert!(resp.headers().get("strict-transport-security").is_none());
    let csrf = resp.headers().get("set-cookie").unwrap().to_str().unwrap().to_lowercase();
    assert!(!csrf.contains("secure"), "{csrf}");
}

#[actix_web::test]
async fn plain_http_or_garbage_on_the_tls_port_is_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Parlor test CA");
    let app = tls_app(&write_pair(dir.path(), &ca.issue("parlor"))).await;

    let mut tcp = TcpStream::connect(app.socket_addr()).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, tcp.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");
    assert!(answer.contains("HTTPS only: use an https:// address"), "{answer}");

    // A TLS record that is no ClientHello: the connection ends, nothing else.
    let mut tcp = TcpStream::connect(app.socket_addr()).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]).await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut rest)).await.expect("the server ends it");

    let mut ws = wss(&ca.client(), app.port(), None).await.expect("the port still serves");
    ws.assert_open().await;
}

#[actix_web::test]
async fn a_renewed_certificate_is_served_without_dropping_open_websockets() {
    let dir = tempfile::tempdir().unwrap();
    let (old_ca, new_ca) = (TestCa::new("old CA"), TestCa::new("new CA"));
    let first = old_ca.issue("before renewal");
    let files = write_pair(dir.path(), &first);
    let app = tls_app(&files).await;
    let port = app.port();
    let mut alice = wss(&old_ca.client(), port, None).await.unwrap();
    alice.join("lobby", "alice").await;

    // Written in place as a renewal script would: certificate, then key. In
    // between the pair does not match; the old one keeps serving meanwhile.
    let renewed = new_ca.issue("after renewal");
    std::fs::write(&files.cert, &renewed.cert).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let meanwhile = connect(&old_ca.client(), port).await.expect("the old pair serves until the new one is whole");
    assert_eq!(presented(&meanwhile), first.der);
    std::fs::write(&files.key, &renewed.key).unwrap();

    let start = Instant::now();
    let stream = loop {
        match connect(&new_ca.client(), port).await {
            Ok(stream) => break stream,
            Err(_) => assert!(start.elapsed() < PATIENCE, "the renewed certificate was never served"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(presented(&stream), renewed.der);

    // The connection made before the renewal goes on as it was.
    let mut bob = wss(&new_ca.client(), port, None).await.unwrap();
    bob.join("lobby", "bob").await;
    alice.recv_type("presence").await;
    let sent = alice.say("lobby", "still here after the renewal").await;
    assert_eq!(bob.recv_type("message").await["id"], sent["id"]);

    // A broken renewal (an empty key file) changes nothing.
    std::fs::write(&files.key, "").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = connect(&new_ca.client(), port).await.expect("still the renewed pair");
    assert_eq!(presented(&after), renewed.der);
    alice.assert_open().await;
}

#[actix_web::test]
async fn bad_certificate_files_stop_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Parlor test CA");
    let (one, other) = (ca.issue("one"), ca.issue("other"));
    let db = TestDatabase::create(parlor::db::Backend::Sqlite).unwrap();
    let start = |cert: &Path, key: &Path| {
        let mut settings = test_settings(&db);
        settings.tls_cert = Some(cert.into());
        settings.tls_key = Some(key.into());
        Application::build(settings).err().map(|e| e.to_string()).unwrap_or_default()
    };
    let path = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (cert, key) = (path("cert.pem", &one.cert), path("key.pem", &one.key));

    let missing = dir.path().join("nowhere.pem");
    assert!(start(&missing, &key).contains("cannot read") && start(&missing, &key).contains("nowhere.pem"));
    let no_key = start(&cert, &missing);
    assert!(no_key.contains("cannot read") && no_key.contains("nowhere.pem"), "{no_key}");
    // Unreadable even to root (tests may run as root, which ignores modes):
    // a directory where the file should be.
    let unreadable = start(dir.path(), &key);
    assert!(
        unreadable.contains("cannot read") && unreadable.contains(&dir.path().display().to_string()),
        "{unreadable}"
    );
    assert!(start(&path("empty.pem", "not PEM at all"), &key).contains("holds no PEM certificate"));
    assert!(start(&cert, &path("nokey.pem", &one.cert)).contains("holds no PEM private key"));
    let locked = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let locked = start(&cert, &path("locked.pem", locked));
    assert!(locked.contains("password-protected key"), "{locked}");
    let legacy = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00112233445566778899AABBCCDDEEFF\n\n\
                  MHcCAQEEIAbc\n-----END EC PRIVATE KEY-----\n";
    let legacy = start(&cert, &path("legacy.pem", legacy));
    assert!(legacy.contains("password-protected key"), "{legacy}");
    let mismatch = start(&cert, &path("other.pem", &other.key));
    assert!(mismatch.contains("does not belong to the certificate"), "{mismatch}");
    assert_eq!(start(&cert, &key), "", "the matching pair starts");
}

/// SIGHUP reloads at once (certbot's deploy hook can send it), and the
/// process, which would die of an unhandled SIGHUP, keeps serving.
#[actix_web::test]
async fn sighup_reloads_the_certificate_in_the_running_binary() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("Parlor test CA");
    let files = write_pair(dir.path(), &ca.issue("parlor"));
    let db = TestDatabase::create(parlor::db::Backend::Sqlite).unwrap();
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());
    let mut server = Binary::start(&db, &["--tls-cert", cert, "--tls-key", key]);
    assert!(server.log().contains("listening on https://127.0.0.1:"), "{}", server.log());

    server.signal("HUP");
    let start = Instant::now();
    while !server.log().contains("loaded the certificate") {
        assert!(start.elapsed() < PATIENCE, "no reload after SIGHUP:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.exited_within(Duration::from_millis(300)).await.is_none(), "SIGHUP must not end the process");
    let (head, _) = https_get(&ca.client(), server.port, "/healthz").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let mut ws = wss(&ca.client(), server.port, None).await.unwrap();
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv_type("pong").await["type"], "pong");
}
