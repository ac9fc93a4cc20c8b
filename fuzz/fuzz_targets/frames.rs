//! The WebSocket frame decoder: any bytes a client sends are decoded
//! without a panic, with every message within the limit and every text
//! valid UTF-8 (a `ByteString` cannot hold anything else).

use bytes::BytesMut;
use parlor::ws::frames::{Decoded, Decoder};

const MAX: usize = 4096;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let (mut decoder, mut buf) = (Decoder::default(), BytesMut::from(data));
        while let Some(decoded) = decoder.decode(&mut buf, MAX) {
            match decoded {
                Decoded::Text(text) => assert!(text.len() <= MAX),
                Decoded::Ping(payload) => assert!(payload.len() <= 125),
                Decoded::Fail(..) => break,
                Decoded::Binary | Decoded::Close(_) => {}
            }
        }
    });
}
