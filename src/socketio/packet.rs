//! The two layers of a Socket.IO connection, as text:
//!
//! - Engine.IO v4 packets: one digit of type, then the data (`4hello` is a
//!   message). Over HTTP long-polling several packets travel in one body,
//!   separated by the record separator (0x1E); a binary packet there is
//!   `b` and base64.
//! - Socket.IO v5 packets, inside Engine.IO messages: one digit of type,
//!   then for binary kinds the attachment count and `-`, a namespace other
//!   than `/` followed by `,`, an acknowledgement id (digits), and JSON.
//!
//! Decoding never panics and bounds what it accepts: the callers answer a
//! malformed packet the way the specification says (a 400 for a bad polling
//! body, CONNECT_ERROR or a close for a bad Socket.IO packet).

use serde_json::Value;

/// What separates packets in a polling body.
pub const SEPARATOR: char = '\u{1e}';
/// Acknowledgement ids are at most this many digits (`u32` in practice).
const MAX_ACK_DIGITS: usize = 10;
/// A namespace name is at most this long.
const MAX_NAMESPACE: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnginePacket {
    /// The handshake's answer (JSON: sid, upgrades, pingInterval, ...).
    Open(String),
    Close,
    /// `probe` during an upgrade, empty otherwise.
    Ping(String),
    Pong(String),
    Message(String),
    /// Binary data (a polling body carries it as base64).
    Binary(Vec<u8>),
    Upgrade,
    Noop,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("empty packet")]
    Empty,
    #[error("unknown packet type {0:?}")]
    UnknownType(char),
    #[error("binary data that is not base64")]
    BadBase64,
    #[error("a malformed Socket.IO packet: {0}")]
    Malformed(&'static str),
    #[error("the packet's data is not JSON: {0}")]
    BadJson(String),
}

impl EnginePacket {
    pub fn encode(&self) -> String {
        match self {
            Self::Open(json) => format!("0{json}"),
            Self::Close => "1".into(),
            Self::Ping(data) => format!("2{data}"),
            Self::Pong(data) => format!("3{data}"),
            Self::Message(data) => format!("4{data}"),
            Self::Binary(bytes) => format!("b{}", base64_encode(bytes)),
            Self::Upgrade => "5".into(),
            Self::Noop => "6".into(),
        }
    }

    /// Whether `text` decodes, without decoding it (a polling body of
    /// thousands of packets is checked whole before any is handed on).
    pub fn check(text: &str) -> Result<(), PacketError> {
        match text.as_bytes().first() {
            None => Err(PacketError::Empty),
            Some(b'0'..=b'6') => Ok(()),
            Some(b'b') => base64_decode(&text[1..]).map(drop).ok_or(PacketError::BadBase64),
            Some(_) => Err(PacketError::UnknownType(text.chars().next().unwrap_or_default())),
        }
    }

    pub fn decode(text: &str) -> Result<Self, PacketError> {
        let mut chars = text.chars();
        let kind = chars.next().ok_or(PacketError::Empty)?;
        let data = chars.as_str();
        Ok(match kind {
            '0' => Self::Open(data.into()),
            '1' => Self::Close,
            '2' => Self::Ping(data.into()),
            '3' => Self::Pong(data.into()),
            '4' => Self::Message(data.into()),
            '5' => Self::Upgrade,
            '6' => Self::Noop,
            'b' => Self::Binary(base64_decode(data).ok_or(PacketError::BadBase64)?),
            other => return Err(PacketError::UnknownType(other)),
        })
    }
}

/// A polling body: the packets, separated.
pub fn encode_payload(packets: &[EnginePacket]) -> String {
    join_payload(&packets.iter().map(EnginePacket::encode).collect::<Vec<_>>())
}

/// A polling body of packets already encoded.
pub fn join_payload(packets: &[impl AsRef<str>]) -> String {
    let mut body = String::with_capacity(packets.iter().map(|p| p.as_ref().len() + 1).sum());
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            body.push(SEPARATOR);
        }
        body.push_str(packet.as_ref());
    }
    body
}

/// A polling body's packets. Clients put as many in one body as its size
/// allows (what queued while their last POST was in flight), so only the
/// body's size, which the caller bounds, bounds their number.
pub fn decode_payload(body: &str) -> Result<Vec<EnginePacket>, PacketError> {
    body.split(SEPARATOR).map(EnginePacket::decode).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

/// A Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketPacket {
    pub kind: SocketKind,
    /// `/` for the default namespace.
    pub namespace: String,
    pub ack: Option<u64>,
    /// Binary attachments that follow (binary kinds only).
    pub attachments: usize,
    /// `None` when the packet carries nothing (a CONNECT without `auth`).
    pub data: Option<Value>,
}

impl SocketPacket {
    pub fn new(kind: SocketKind, data: Option<Value>) -> Self {
        Self { kind, namespace: "/".into(), ack: None, attachments: 0, data }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        out.push(match self.kind {
            SocketKind::Connect => '0',
            SocketKind::Disconnect => '1',
            SocketKind::Event => '2',
            SocketKind::Ack => '3',
            SocketKind::ConnectError => '4',
            SocketKind::BinaryEvent => '5',
            SocketKind::BinaryAck => '6',
        });
        if matches!(self.kind, SocketKind::BinaryEvent | SocketKind::BinaryAck) {
            out.push_str(&format!("{}-", self.attachments));
        }
        if self.namespace != "/" {
            out.push_str(&self.namespace);
            out.push(',');
        }
        if let Some(ack) = self.ack {
            out.push_str(&ack.to_string());
        }
        if let Some(data) = &self.data {
            out.push_str(&data.to_string());
        }
        out
    }

    pub fn decode(text: &str) -> Result<Self, PacketError> {
        let mut rest = text;
        let kind = match rest.as_bytes().first().ok_or(PacketError::Empty)? {
            b'0' => SocketKind::Connect,
            b'1' => SocketKind::Disconnect,
            b'2' => SocketKind::Event,
            b'3' => SocketKind::Ack,
            b'4' => SocketKind::ConnectError,
            b'5' => SocketKind::BinaryEvent,
            b'6' => SocketKind::BinaryAck,
            _ => return Err(PacketError::UnknownType(rest.chars().next().unwrap_or('?'))),
        };
        rest = &rest[1..];
        let mut attachments = 0;
        if matches!(kind, SocketKind::BinaryEvent | SocketKind::BinaryAck) {
            let (count, after) = rest.split_once('-').ok_or(PacketError::Malformed("no attachment count"))?;
            if count.is_empty() || count.len() > 3 || !count.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PacketError::Malformed("a bad attachment count"));
            }
            attachments = count.parse().map_err(|_| PacketError::Malformed("a bad attachment count"))?;
            rest = after;
        }
        let mut namespace = "/".to_string();
        if rest.starts_with('/') {
            let end = rest.find(',').unwrap_or(rest.len());
            if end > MAX_NAMESPACE {
                return Err(PacketError::Malformed("a namespace too long"));
            }
            namespace = rest[..end].to_string();
            rest = rest.get(end + 1..).unwrap_or("");
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut ack = None;
        if digits > 0 {
            if digits > MAX_ACK_DIGITS {
                return Err(PacketError::Malformed("an acknowledgement id too long"));
            }
            ack = Some(rest[..digits].parse().map_err(|_| PacketError::Malformed("a bad acknowledgement id"))?);
            rest = &rest[digits..];
        }
        // Socket.IO's payloads are objects (CONNECT, CONNECT_ERROR) or arrays
        // (EVENT, ACK); anything else has no meaning, and a bare number
        // would read back as an acknowledgement id.
        let data = match rest.as_bytes().first() {
            None => None,
            Some(b'{' | b'[') => Some(serde_json::from_str(rest).map_err(|e| PacketError::BadJson(e.to_string()))?),
            Some(_) => return Err(PacketError::Malformed("data that is neither an object nor an array")),
        };
        Ok(Self { kind, namespace, ack, attachments, data })
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as Engine.IO's polling bodies carry binary.
fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let value = BASE64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_packets_round_trip_and_bodies_split_on_the_separator() {
        let packets = vec![
            EnginePacket::Message("40".into()),
            EnginePacket::Ping(String::new()),
            EnginePacket::Pong("probe".into()),
            EnginePacket::Binary(vec![1, 2, 3, 4]),
            EnginePacket::Noop,
        ];
        let body = encode_payload(&packets);
        assert_eq!(body, "440\u{1e}2\u{1e}3probe\u{1e}bAQIDBA==\u{1e}6");
        assert_eq!(decode_payload(&body).unwrap(), packets);
        assert_eq!(EnginePacket::decode("").unwrap_err(), PacketError::Empty);
        assert_eq!(EnginePacket::decode("9x").unwrap_err(), PacketError::UnknownType('9'));
        assert_eq!(EnginePacket::decode("b!!").unwrap_err(), PacketError::BadBase64);
        let many = vec!["6"; 5000].join("\u{1e}");
        assert_eq!(decode_payload(&many).unwrap().len(), 5000, "a body of many small packets is whole");
        for n in 0..7 {
            let bytes: Vec<u8> = (0..n).map(|i| i * 37).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn socket_packets_as_the_specification_writes_them() {
        let cases = [
            ("0", SocketPacket::new(SocketKind::Connect, None)),
            ("0{\"token\":\"x\"}", SocketPacket::new(SocketKind::Connect, Some(json!({"token": "x"})))),
            (
                "2[\"send_message\",{\"room\":\"a\"}]",
                SocketPacket::new(SocketKind::Event, Some(json!(["send_message", {"room": "a"}]))),
            ),
            (
                "212[\"history\"]",
                SocketPacket { ack: Some(12), ..SocketPacket::new(SocketKind::Event, Some(json!(["history"]))) },
            ),
            (
                "3/admin,7[1]",
                SocketPacket {
                    namespace: "/admin".into(),
                    ack: Some(7),
                    ..SocketPacket::new(SocketKind::Ack, Some(json!([1])))
                },
            ),
            ("0/admin,", SocketPacket { namespace: "/admin".into(), ..SocketPacket::new(SocketKind::Connect, None) }),
            (
                "51-[\"upload\",{\"_placeholder\":true,\"num\":0}]",
                SocketPacket {
                    attachments: 1,
                    ..SocketPacket::new(
                        SocketKind::BinaryEvent,
                        Some(json!(["upload", {"_placeholder": true, "num": 0}])),
                    )
                },
            ),
            ("4{\"message\":\"no\"}", SocketPacket::new(SocketKind::ConnectError, Some(json!({"message": "no"})))),
        ];
        for (text, packet) in &cases {
            assert_eq!(&SocketPacket::decode(text).unwrap(), packet, "{text}");
            assert_eq!(&packet.encode(), text);
        }
    }

    #[test]
    fn malformed_socket_packets_are_refused_not_panicked_on() {
        for bad in ["", "9", "x", "2[", "5[\"a\"]", "5x-[]", "21234567890123[]", "2{not json}", "5-[]", "2 5", "2\"s\""]
        {
            assert!(SocketPacket::decode(bad).is_err(), "{bad:?}");
        }
        let long = format!("0/{},", "a".repeat(200));
        assert!(SocketPacket::decode(&long).is_err());
        // Multi-byte text right after the type digit is data, not a panic.
        assert!(SocketPacket::decode("2é").is_err());
    }
}
