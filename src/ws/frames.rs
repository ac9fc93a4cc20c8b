//! Decoding a client's frames (RFC 6455): whole messages out of fragments,
//! control frames checked, size limits applied. Pure: bytes in, what they
//! say out, nothing of sockets, so it can be tested and fuzzed alone.

use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser, ProtocolError};
use bytes::BytesMut;
use bytestring::ByteString;

/// The longest frame header: 2 bytes, 8 of length, 4 of mask.
const MAX_HEADER: usize = 14;

/// What the client's bytes say.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole text message (reassembled when it came in fragments).
    Text(ByteString),
    /// A whole binary message; its content is not kept.
    Binary,
    /// A ping, to be answered with this payload.
    Ping(BytesMut),
    /// The client closes (its reason, to be echoed).
    Close(Option<CloseReason>),
    /// The client broke the protocol or a limit: close with this.
    Fail(CloseCode, String),
}

/// A fragmented message being reassembled.
enum Fragments {
    Text(Vec<u8>),
    Binary,
}

/// One connection's decoding state: only a fragmented message in progress.
#[derive(Default)]
pub struct Decoder {
    /// Boxed: rare, and an idle connection should stay small.
    fragments: Option<Box<Fragments>>,
}

impl Decoder {
    /// The next thing the bytes in `buf` say (consuming them), or `None`
    /// until more arrive. Messages and frames over `max` bytes fail, even
    /// before they have arrived whole. After a `Fail`, stop decoding.
    pub fn decode(&mut self, buf: &mut BytesMut, max: usize) -> Option<Decoded> {
        loop {
            let (fin, opcode, payload) = match Parser::parse(buf, true, max) {
                Ok(Some((fin, opcode, payload))) => (fin, opcode, payload.unwrap_or_default()),
                // The parser checks the size only once a frame is complete;
                // a frame announced larger than the limit must not be
                // buffered while it trickles in.
                Ok(None) if buf.len() > max + MAX_HEADER => return Some(oversize(max)),
                Ok(None) => return None,
                Err(ProtocolError::Overflow) => return Some(oversize(max)),
                Err(e) => {
                    log::debug!("protocol error: {e}");
                    return Some(protocol_error());
                }
            };
            if let Some(decoded) = self.frame(fin, opcode, payload, max) {
                return Some(decoded);
            }
        }
    }

    fn frame(&mut self, fin: bool, opcode: OpCode, payload: BytesMut, max: usize) -> Option<Decoded> {
        let control = matches!(opcode, OpCode::Ping | OpCode::Pong | OpCode::Close);
        if control && (!fin || payload.len() > 125) {
            // RFC 6455 5.5: control frames are never fragmented and carry
            // at most 125 bytes.
            return Some(protocol_error());
        }
        match opcode {
            OpCode::Text if fin && self.fragments.is_none() => Some(match ByteString::try_from(payload.freeze()) {
                Ok(text) => Decoded::Text(text),
                Err(_) => not_utf8(),
            }),
            OpCode::Binary if fin && self.fragments.is_none() => Some(Decoded::Binary),
            OpCode::Text | OpCode::Binary if self.fragments.is_some() => {
                Some(Decoded::Fail(CloseCode::Protocol, "a new message inside a fragmented one".into()))
            }
            OpCode::Text => {
                self.fragments = Some(Box::new(Fragments::Text(payload.to_vec())));
                None
            }
            OpCode::Binary => {
                self.fragments = Some(Box::new(Fragments::Binary));
                None
            }
            OpCode::Continue => self.fragment(&payload, fin, max),
            OpCode::Ping => Some(Decoded::Ping(payload)),
            OpCode::Pong => None,
            // The client's own close code, to be echoed as RFC 6455 asks.
            OpCode::Close => Some(match Parser::try_parse_close_payload(&payload) {
                Ok(reason) => Decoded::Close(reason),
                Err(_) => protocol_error(),
            }),
            OpCode::Bad => Some(protocol_error()),
        }
    }

    fn fragment(&mut self, chunk: &[u8], last: bool, max: usize) -> Option<Decoded> {
        match self.fragments.as_deref_mut() {
            None => return Some(Decoded::Fail(CloseCode::Protocol, "continuation without a first fragment".into())),
            Some(Fragments::Text(text)) => {
                if text.len() + chunk.len() > max {
                    return Some(oversize(max));
                }
                text.extend_from_slice(chunk);
            }
            Some(Fragments::Binary) => {}
        }
        if !last {
            return None;
        }
        match self.fragments.take().map(|f| *f) {
            Some(Fragments::Text(bytes)) => Some(match String::from_utf8(bytes) {
                Ok(text) => Decoded::Text(text.into()),
                Err(_) => not_utf8(),
            }),
            _ => Some(Decoded::Binary),
        }
    }
}

/// 1009: a frame, or a fragmented message, over the limit.
fn oversize(max: usize) -> Decoded {
    Decoded::Fail(CloseCode::Size, format!("frame exceeds {max} bytes"))
}

fn protocol_error() -> Decoded {
    Decoded::Fail(CloseCode::Protocol, "protocol error".into())
}

fn not_utf8() -> Decoded {
    Decoded::Fail(CloseCode::Invalid, "text is not valid UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::from(fin) << 7 | opcode];
        assert!(payload.len() < 126);
        out.push(0x80 | payload.len() as u8);
        let mask = [1, 2, 3, 4];
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn decode_all(bytes: &[u8]) -> Vec<Decoded> {
        let (mut decoder, mut buf, mut out) = (Decoder::default(), BytesMut::from(bytes), Vec::new());
        while let Some(decoded) = decoder.decode(&mut buf, 64) {
            let failed = matches!(decoded, Decoded::Fail(..));
            out.push(decoded);
            if failed {
                break;
            }
        }
        out
    }

    #[test]
    fn messages_pings_and_fragments() {
        let mut bytes = frame(true, 0x1, b"hi");
        bytes.extend(frame(true, 0x9, b"p"));
        bytes.extend(frame(false, 0x1, b"a"));
        bytes.extend(frame(true, 0xA, b"")); // a pong between fragments
        bytes.extend(frame(true, 0x0, b"b"));
        let out = decode_all(&bytes);
        assert_eq!(out[0], Decoded::Text("hi".into()));
        assert_eq!(out[1], Decoded::Ping(BytesMut::from(&b"p"[..])));
        assert_eq!(out[2], Decoded::Text("ab".into()));
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn broken_frames_fail_with_the_right_code() {
        let code = |bytes: Vec<u8>| match decode_all(&bytes).pop() {
            Some(Decoded::Fail(code, _)) => Some(code),
            _ => None,
        };
        assert_eq!(code(frame(true, 0x1, &[0xff])), Some(CloseCode::Invalid));
        assert_eq!(code(frame(true, 0x0, b"x")), Some(CloseCode::Protocol));
        assert_eq!(code(frame(false, 0x9, b"")), Some(CloseCode::Protocol));
        let mut long = frame(false, 0x1, &[b'a'; 60]);
        long.extend(frame(true, 0x0, &[b'a'; 10]));
        assert_eq!(code(long), Some(CloseCode::Size));
        // A header announcing a huge frame fails once the limit is passed,
        // not when the frame is complete.
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        huge.extend_from_slice(&[0; 4]);
        huge.extend(vec![0; 100]);
        assert_eq!(code(huge), Some(CloseCode::Size));
    }
}
