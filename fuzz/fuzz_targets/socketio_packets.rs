//! The Socket.IO and Engine.IO decoders: any text a Socket.IO client sends
//! decodes or is refused with a reason, never a panic, and what decodes
//! encodes back to something that decodes the same.

use parlor::socketio::packet::{decode_payload, EnginePacket, SocketPacket};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            if let Ok(packets) = decode_payload(text) {
                for packet in packets {
                    assert_eq!(EnginePacket::decode(&packet.encode()).as_ref(), Ok(&packet));
                }
            }
            if let Ok(packet) = SocketPacket::decode(text) {
                assert_eq!(SocketPacket::decode(&packet.encode()).as_ref(), Ok(&packet));
            }
        }
    });
}
