//! The WebSocket handshake at the byte level: what reaches a session
//! socket, and what an upgrade request that is not a WebSocket gets.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, spawn_app_with, PATIENCE};

const HANDSHAKE: &str = "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A masked text frame, as a client must send it.
fn client_text_frame(text: &str) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Reads until `done` says the bytes so far are enough.
async fn read_until(stream: &mut TcpStream, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        while !done(&got) {
            let n = stream.read(&mut buf).await.expect("the read succeeds");
            assert!(n > 0, "the server closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the server answers in time");
    got
}

#[actix_web::test]
async fn a_frame_sent_in_the_same_packet_as_the_handshake_is_handled() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    let mut bytes = HANDSHAKE.as_bytes().to_vec();
    bytes.extend(client_text_frame(r#"{"type":"join_room","room":"lobby","name":"early"}"#));
    stream.write_all(&bytes).await.unwrap();

    let reply = read_until(&mut stream, |b| b.windows(8).any(|w| w == b"\"joined\"")).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(text.to_ascii_lowercase().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{text}");
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    // One unmasked text frame from the server: its `joined` for the room.
    assert_eq!(reply[head_end], 0x81);
    assert!(text.contains(r#""room":"lobby""#) && text.contains(r#""members":["early"]"#), "{text}");
}

#[actix_web::test]
async fn upgrade_requests_elsewhere_or_malformed_get_a_whole_answer_and_the_end() {
    let app = spawn_app().await;
    let cases = [
        // Only /ws upgrades.
        ("/", "websocket", "400", "only /ws and /socket.io/ accept an upgrade"),
        ("/nowhere", "websocket", "400", "only /ws and /socket.io/ accept an upgrade"),
        // A handshake the HTTP layer does not take for an upgrade must not
        // get a 101 it cannot follow with a session.
        ("/ws", "websocket, foo", "400", "needs `Connection: Upgrade`"),
    ];
    for (path, upgrade, status, body) in cases {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: {upgrade}\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let reply = until_the_end(&mut stream, PATIENCE).await;
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{path}: {text}");
        let (head, rest) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.parse().unwrap()))
            .expect("a content length");
        assert_eq!(rest.len(), length, "{path}: the whole body arrives");
        assert!(rest.contains(body), "{path}: {rest}");
    }
}

#[actix_web::test]
async fn a_refused_handshake_gets_its_reason_and_no_socket() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
    let request = HANDSHAKE.replace("Host: localhost\r\n", "Host: localhost\r\nOrigin: http://evil.example\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let reply = until_the_end(&mut stream, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(text.contains("forbidden_origin"), "{text}");
}

#[actix_web::test]
async fn behind_a_trusted_tls_proxy_only_https_pages_of_the_host_are_our_own() {
    // The proxy terminates TLS and says so with X-Forwarded-Proto; a page
    // served over plain http on the same host (which anyone on the path
    // could have written) must not open a socket with the visitor's cookie.
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.0/8".parse().unwrap()]).await;
    let cases = [
        ("https", "https://localhost", "HTTP/1.1 101"),
        ("https", "http://localhost", "HTTP/1.1 403"),
        // Plain http all the way: the page is http too.
        ("http", "http://localhost", "HTTP/1.1 101"),
    ];
    for (proto, origin, status) in cases {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
        let headers = format!("Host: localhost\r\nX-Forwarded-Proto: {proto}\r\nOrigin: {origin}\r\n");
        let request = HANDSHAKE.replace("Host: localhost\r\n", &headers);
        stream.write_all(request.as_bytes()).await.unwrap();
        let head = read_until(&mut stream, |b| b.windows(4).any(|w| w == b"\r\n\r\n")).await;
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with(status), "{proto} request from {origin}: {head}");
    }
}

/// Opens a socket and completes the handshake, checking for the 101.
async fn handshake(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(HANDSHAKE.as_bytes()).await.unwrap();
    let head = read_until(&mut stream, |b| b.windows(4).any(|w| w == b"\r\n\r\n")).await;
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// Everything the server sends until it ends the connection, which it
/// must do within `within`.
async fn until_the_end(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut got))
        .await
        .expect("the server ends the connection")
        .expect("the connection ends cleanly");
    got
}

/// The first close frame's code in what the server sent until it ended the
/// connection.
async fn close_code_until_the_end(stream: &mut TcpStream) -> Option<u16> {
    let got = until_the_end(stream, PATIENCE).await;
    let at = got.windows(2).position(|w| w[0] == 0x88 && w[1] >= 2)?;
    Some(u16::from_be_bytes([got[at + 2], got[at + 3]]))
}

#[actix_web::test]
async fn a_fragmented_control_frame_is_a_protocol_error() {
    let app = spawn_app().await;
    let mut stream = handshake(app.port()).await;
    // A ping without FIN: RFC 6455 forbids fragmenting control frames.
    stream.write_all(&[0x09, 0x80, 1, 2, 3, 4]).await.unwrap();
    assert_eq!(close_code_until_the_end(&mut stream).await, Some(1002));
}

#[actix_web::test]
async fn a_frame_announced_over_the_limit_is_refused_before_it_is_buffered() {
    let app = spawn_app().await;
    let limit = app.settings.max_frame_bytes();
    let mut stream = handshake(app.port()).await;
    // A text frame that says it is a terabyte long, then a trickle of it.
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 40).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    stream.write_all(&header).await.unwrap();
    let chunk = vec![b'x'; 4096];
    let mut sent = 0;
    while sent <= limit + 4096 {
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    assert_eq!(close_code_until_the_end(&mut stream).await, Some(1009));
}

#[actix_web::test]
async fn a_client_that_closes_its_sending_side_still_gets_its_answers() {
    let app = spawn_app().await;
    let mut stream = handshake(app.port()).await;
    stream.write_all(&client_text_frame(r#"{"type":"ping"}"#)).await.unwrap();
    stream.shutdown().await.unwrap();
    let got = until_the_end(&mut stream, PATIENCE).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains(r#"{"type":"pong"}"#), "{text}");
    // A close frame (opcode 0x8, FIN) follows; it carries no code.
    assert!(got.contains(&0x88), "a close frame follows: {got:?}");
}

#[actix_web::test]
async fn the_servers_end_of_a_websocket_sends_small_frames_at_once() {
    use std::os::fd::BorrowedFd;
    let app = spawn_app().await;
    let mut client = app.ws().await;
    client.join("lobby", "alice").await;
    // The server runs in this process: find its end of the connection among
    // our own descriptors and ask the kernel about Nagle's algorithm, which
    // would hold small frames back for up to 40 ms waiting for ACKs.
    let inode = crate::helpers::server_socket_inode(app.port(), client.local_port()).expect("the server's socket");
    let target = format!("socket:[{inode}]");
    let fd = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy() == target))
        .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .expect("the socket is one of this process's descriptors");
    // SAFETY: the descriptor stays open while the client is connected; it is
    // only borrowed to read an option.
    let socket = unsafe { BorrowedFd::borrow_raw(fd) };
    assert!(socket2::SockRef::from(&socket).nodelay().unwrap(), "TCP_NODELAY is set");
}
