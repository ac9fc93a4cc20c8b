//! The Socket.IO and Engine.IO decoders: any text a Socket.IO client sends
//! decodes or is refused with a reason, never a panic, and what decodes
//! encodes back to something that decodes the same. An event's data becomes
//! a command or a refusal, and any text taken for a frame to write is
//! matched against waiting acknowledgements without a panic. (A Socket.IO packet's
//! JSON is compared in its framing only: serde_json may read a float's
//! shortest form back one unit in the last place off, which no chat field
//! cares about.)

use parlor::socketio::acks::Acks;
use parlor::socketio::events::{event_parts, Command};
use parlor::socketio::packet::{decode_payload, EnginePacket, SocketPacket};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(text) = std::str::from_utf8(data) {
            if let Ok(packets) = decode_payload(text) {
                for packet in packets {
                    assert_eq!(EnginePacket::decode(&packet.encode()).as_ref(), Ok(&packet));
                }
            }
            // The check a polling body gets says what decoding would.
            assert_eq!(EnginePacket::check(text).is_ok(), EnginePacket::decode(text).is_ok());
            let _ = event_parts(text);
            if let Ok(packet) = SocketPacket::decode(text) {
                if let Some(data) = &packet.data {
                    if let Ok(command) = Command::from_event(data) {
                        let mut acks = Acks::default();
                        let name = command.name;
                        let native = command.into_native();
                        let _ = acks.expect(1, name, &native);
                        let _ = acks.deliver(&native);
                        let _ = acks.deliver(text);
                    }
                }
                let again = SocketPacket::decode(&packet.encode()).expect("what was decoded encodes to a valid packet");
                assert_eq!(
                    (again.kind, &again.namespace, again.ack, again.attachments, again.data.is_some()),
                    (packet.kind, &packet.namespace, packet.ack, packet.attachments, packet.data.is_some())
                );
            }
        }
    });
}
