//! Acknowledgements. A Socket.IO client that emits with a callback gets the
//! command's answer as the callback's one argument: the native frame that
//! answers it (the stored `message`, `joined`, `history`, `left`,
//! `message_edited`...) or the `error` frame about it.
//!
//! The native protocol answers by content, not by request id (a message by
//! its nonce, a change by the message's id, a join by its room), so the
//! frames written to this client are matched against what it waits for.
//! Answers meant for the asking client alone (`joined`, `left`, `history`,
//! `pong`, `error`) go to the callback instead of out as events; what the
//! whole room sees (`message`, `message_edited`...) goes out as an event as
//! well, so every member's stream of events is the same.

use std::borrow::Cow;
use std::collections::VecDeque;

use serde::Deserialize;

use super::events::Command;

/// Callbacks one connection may have waiting at once: a client that
/// emits faster than the server answers loses the oldest ack (its callback
/// never fires, as with a lost connection), never the command.
pub const MAX_PENDING: usize = 256;

/// What answers a command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaited {
    /// A `send_message`: the sender's copy of the message carries its nonce,
    /// and so does an error about it.
    Message { nonce: String },
    /// A reply of this type about this room (`joined`, `left`, `history`),
    /// or an error about the room that names no message.
    Reply { kind: &'static str, room: String },
    /// A change to message `id` of `room`, or an error about that message.
    Change { room: String, id: i64 },
    /// A `ping`: the `pong`.
    Pong,
}

/// What the client is told about a written frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// An event only.
    Event,
    /// The frame is the answer to ack `.0`, and only that.
    AckOnly(u64),
    /// An event, and the answer to ack `.0`.
    EventAndAck(u64),
}

/// The callbacks a connection waits on, oldest first.
#[derive(Debug, Default)]
pub struct Acks {
    pending: VecDeque<(u64, Awaited)>,
}

/// The fields of a written frame that say what it answers.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(borrow)]
    nonce: Option<Cow<'a, str>>,
    id: Option<i64>,
}

/// Commands whose effect nobody answers: acknowledged once handed on.
pub fn answered_at_once(command: &Command) -> bool {
    command.name == "typing"
}

impl Acks {
    /// Waits for the answer to `command` for ack `ack`. A `send_message`
    /// without a nonce gets `nonce` (unique to this connection), so that its
    /// answer can be told apart.
    pub fn expect(&mut self, ack: u64, command: &mut Command, nonce: impl FnOnce() -> String) {
        let room = command.str("room").unwrap_or_default().to_string();
        let awaited = match command.name {
            "send_message" => {
                let nonce = match command.str("nonce") {
                    Some(nonce) => nonce.to_string(),
                    None => {
                        let nonce = nonce();
                        command.fields.insert("nonce".into(), nonce.clone().into());
                        nonce
                    }
                };
                Awaited::Message { nonce }
            }
            "join_room" => Awaited::Reply { kind: "joined", room },
            "leave_room" => Awaited::Reply { kind: "left", room },
            "history" => Awaited::Reply { kind: "history", room },
            "ping" => Awaited::Pong,
            "edit_message" | "delete_message" | "add_reaction" | "remove_reaction" => {
                let id = command.fields.get("id").and_then(serde_json::Value::as_i64).unwrap_or_default();
                Awaited::Change { room, id }
            }
            _ => return,
        };
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((ack, awaited));
    }

    /// How `frame`, a native frame about to be written, reaches the client.
    pub fn deliver(&mut self, frame: &str) -> Delivery {
        if self.pending.is_empty() {
            return Delivery::Event;
        }
        let Ok(head) = serde_json::from_str::<Head>(frame) else { return Delivery::Event };
        let room = head.room.as_deref();
        let found = self.pending.iter().position(|(_, awaited)| match (awaited, head.kind.as_ref()) {
            (Awaited::Message { nonce }, "message" | "error") => head.nonce.as_deref() == Some(nonce),
            (Awaited::Change { room: r, id }, kind) => {
                head.id == Some(*id)
                    && room == Some(r)
                    && head.nonce.is_none()
                    && matches!(
                        kind,
                        "error" | "message_edited" | "message_deleted" | "reaction_added" | "reaction_removed"
                    )
            }
            (Awaited::Reply { kind, room: r }, frame_kind) => {
                room == Some(r)
                    && (frame_kind == *kind || (frame_kind == "error" && head.id.is_none() && head.nonce.is_none()))
            }
            (Awaited::Pong, kind) => kind == "pong",
            _ => false,
        });
        let Some(at) = found else { return Delivery::Event };
        let (ack, awaited) = self.pending.remove(at).expect("found above");
        let room_wide = head.kind != "error" && !matches!(awaited, Awaited::Reply { .. } | Awaited::Pong);
        if room_wide {
            Delivery::EventAndAck(ack)
        } else {
            Delivery::AckOnly(ack)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ChatError;
    use crate::protocol::ServerFrame;
    use serde_json::json;

    fn command(data: serde_json::Value) -> Command {
        Command::from_event(&data).unwrap()
    }

    #[test]
    fn a_send_is_answered_by_its_copy_or_its_error_and_gets_a_nonce_if_it_had_none() {
        let mut acks = Acks::default();
        let mut send = command(json!(["send_message", {"room": "a", "message": "hi"}]));
        acks.expect(7, &mut send, || "sio-x-7".into());
        assert_eq!(send.str("nonce"), Some("sio-x-7"));
        // Someone else's message, and this client's typing, are events only.
        assert_eq!(
            acks.deliver(r#"{"type":"message","room":"a","id":1,"user":"b","text":"yo","ts":"t"}"#),
            Delivery::Event
        );
        assert_eq!(acks.deliver(r#"{"type":"typing","room":"a","user":"b"}"#), Delivery::Event);
        let own = r#"{"type":"message","room":"a","id":2,"user":"c","text":"hi","ts":"t","nonce":"sio-x-7"}"#;
        assert_eq!(acks.deliver(own), Delivery::EventAndAck(7));
        assert_eq!(acks.deliver(own), Delivery::Event, "an ack is answered once");

        let mut send = command(json!(["send_message", {"room": "a", "text": "x", "nonce": "mine"}]));
        acks.expect(8, &mut send, || unreachable!("the client's own nonce is kept"));
        let error = ServerFrame::error(&ChatError::RateLimited("slow".into()), Some("a"), Some("mine"));
        assert_eq!(acks.deliver(&error), Delivery::AckOnly(8));
    }

    #[test]
    fn replies_to_the_asker_alone_go_only_to_the_callback() {
        let mut acks = Acks::default();
        acks.expect(1, &mut command(json!(["join_room", {"room": "a"}])), String::new);
        acks.expect(2, &mut command(json!(["join_room", {"room": "b"}])), String::new);
        acks.expect(3, &mut command(json!(["ping"])), String::new);
        let refused = ServerFrame::error(&ChatError::NotJoined("b".into()), Some("b"), None);
        assert_eq!(acks.deliver(&refused), Delivery::AckOnly(2));
        assert_eq!(acks.deliver(r#"{"type":"joined","room":"a","members":[],"history":[]}"#), Delivery::AckOnly(1));
        assert_eq!(acks.deliver(r#"{"type":"pong"}"#), Delivery::AckOnly(3));
        assert_eq!(acks.deliver(r#"{"type":"joined","room":"a","members":[],"history":[]}"#), Delivery::Event);
    }

    #[test]
    fn a_change_is_answered_by_the_change_to_that_message() {
        let mut acks = Acks::default();
        acks.expect(4, &mut command(json!(["edit_message", {"room": "a", "id": 9, "text": "x"}])), String::new);
        assert_eq!(acks.deliver(r#"{"type":"message_edited","room":"a","id":8,"text":"x"}"#), Delivery::Event);
        assert_eq!(
            acks.deliver(r#"{"type":"message","room":"a","id":9,"user":"u","text":"x","ts":"t"}"#),
            Delivery::Event
        );
        assert_eq!(acks.deliver(r#"{"type":"message_edited","room":"a","id":9,"text":"x"}"#), Delivery::EventAndAck(4));
    }

    #[test]
    fn waiting_callbacks_are_bounded() {
        let mut acks = Acks::default();
        for ack in 0..(MAX_PENDING as u64 + 10) {
            acks.expect(ack, &mut command(json!(["ping"])), String::new);
        }
        assert_eq!(acks.pending.len(), MAX_PENDING);
        assert_eq!(acks.deliver(r#"{"type":"pong"}"#), Delivery::AckOnly(10), "the oldest were let go");
    }
}
