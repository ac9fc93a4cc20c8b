//! The WebSocket handshake at the byte level: what reaches a session
//! socket, and what an upgrade request that is not a WebSocket gets.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, PATIENCE};

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
async fn an_upgrade_request_that_is_not_a_websocket_gets_an_ordinary_answer() {
    let app = spawn_app().await;
    for (path, status, body) in [("/", "200", "<html"), ("/nowhere", "404", "not_found")] {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port())).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut reply))
            .await
            .expect("the server ends the connection after its answer")
            .unwrap();
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
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(text.contains("forbidden_origin"), "{text}");
}
