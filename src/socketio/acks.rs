//! Acknowledgements. A Socket.IO client that emits with a callback gets the
//! command's answer as the callback's one argument: the native frame that
//! answers it (the stored `message`, `joined`, `history`, `left`,
//! `message_edited`...) or the `error` about it.
//!
//! The native protocol answers by content, not by request id (a message by
//! its nonce, a change by the message's id and kind, a join by its room;
//! an error by the command it answers, with the same), so the frames
//! written to this client are matched against what it waits for. Answers
//! meant for the asking client alone (`joined`, `left`, `history`, `pong`,
//! `error`) go to the callback instead of out as events; what the whole
//! room sees (`message`, `message_edited`...) goes out as an event as well,
//! so every member's stream of events is the same.

use std::borrow::Cow;
use std::collections::VecDeque;

use bytestring::ByteString;
use serde::Deserialize;

use crate::domain::{Emoji, Nonce, RoomName};
use crate::error::ChatError;
use crate::protocol::{ClientFrame, ServerFrame};

/// Callbacks one connection may have waiting at once: a client that
/// emits faster than the server answers loses the oldest ack (its callback
/// never fires, as with a lost connection), never the command.
pub const MAX_PENDING: usize = 256;

/// What answers a command. Everything in it was validated (a room name, a
/// nonce, an emoji), so a waiting callback holds a few bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaited {
    /// A `send_message`: the sender's copy of the message carries its nonce,
    /// and so does an error about it.
    Message { nonce: String },
    /// A reply of type `kind` about `room` (`joined`, `left`, `history`),
    /// or an error of `command` about it.
    Reply { command: &'static str, kind: &'static str, room: String },
    /// The change of type `kind` to message `id` of `room` (with `emoji`,
    /// for a reaction), or an error of `command` about that message.
    Change { command: &'static str, kind: &'static str, room: String, id: i64, emoji: Option<String> },
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

/// How a command with a callback is answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Expected {
    /// By a frame still to come.
    Later,
    /// Now, without an argument: nobody answers it (`typing`).
    AtOnce,
    /// Now, with this error: the command is not valid, and is not passed on.
    Refused(ByteString),
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
    command: Option<Cow<'a, str>>,
    #[serde(borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(borrow)]
    nonce: Option<Cow<'a, str>>,
    id: Option<i64>,
    #[serde(borrow)]
    emoji: Option<Cow<'a, str>>,
}

impl Acks {
    /// Waits for the answer to `native`, the native frame of command
    /// `name`, for ack `ack`. A command that is not valid is answered with
    /// its error at once (the session would refuse it the same way).
    pub fn expect(&mut self, ack: u64, name: &'static str, native: &str) -> Expected {
        let awaited = match awaited(native) {
            Ok(Some(awaited)) => awaited,
            Ok(None) => return Expected::AtOnce,
            Err(e) => return Expected::Refused(ServerFrame::error(&e, Some(name), None, None)),
        };
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((ack, awaited));
        Expected::Later
    }

    /// How `frame`, a native frame about to be written, reaches the client.
    pub fn deliver(&mut self, frame: &str) -> Delivery {
        if self.pending.is_empty() {
            return Delivery::Event;
        }
        let Ok(head) = serde_json::from_str::<Head>(frame) else { return Delivery::Event };
        let Some(at) = self.pending.iter().position(|(_, awaited)| answers(&head, awaited)) else {
            return Delivery::Event;
        };
        let (ack, awaited) = self.pending.remove(at).expect("found above");
        let room_wide = head.kind != "error" && !matches!(awaited, Awaited::Reply { .. } | Awaited::Pong);
        if room_wide {
            Delivery::EventAndAck(ack)
        } else {
            Delivery::AckOnly(ack)
        }
    }
}

/// What will answer the command `native`; `None` for a command nobody
/// answers.
fn awaited(native: &str) -> Result<Option<Awaited>, ChatError> {
    let reply = |command, kind, room: String| Ok(Some(Awaited::Reply { command, kind, room: valid_room(room)? }));
    let change = |command, kind, room: String, id, emoji: Option<String>| {
        let emoji = emoji.map(|e| Emoji::parse(e).map(|e| e.as_str().to_string())).transpose()?;
        Ok(Some(Awaited::Change { command, kind, room: valid_room(room)?, id, emoji }))
    };
    match ClientFrame::parse(native)? {
        ClientFrame::SendMessage { room, nonce, .. } => {
            valid_room(room)?;
            let nonce = nonce.ok_or_else(|| ChatError::BadRequest("a send with a callback has a nonce".into()))?;
            Ok(Some(Awaited::Message { nonce: Nonce::parse(nonce)?.into_string() }))
        }
        ClientFrame::JoinRoom { room, .. } => reply("join_room", "joined", room),
        ClientFrame::LeaveRoom { room } => reply("leave_room", "left", room),
        ClientFrame::History { room, .. } => reply("history", "history", room),
        ClientFrame::EditMessage { room, id, .. } => change("edit_message", "message_edited", room, id, None),
        ClientFrame::DeleteMessage { room, id } => change("delete_message", "message_deleted", room, id, None),
        ClientFrame::AddReaction { room, id, emoji } => change("add_reaction", "reaction_added", room, id, Some(emoji)),
        ClientFrame::RemoveReaction { room, id, emoji } => {
            change("remove_reaction", "reaction_removed", room, id, Some(emoji))
        }
        ClientFrame::Ping => Ok(Some(Awaited::Pong)),
        ClientFrame::Typing { room } => valid_room(room).map(|_| None),
    }
}

fn valid_room(room: String) -> Result<String, ChatError> {
    RoomName::parse(&room).map(|room| room.as_str().to_string())
}

/// Whether the frame with `head` answers `awaited`.
fn answers(head: &Head, awaited: &Awaited) -> bool {
    let (kind, room, command) = (head.kind.as_ref(), head.room.as_deref(), head.command.as_deref());
    let error = kind == "error";
    match awaited {
        Awaited::Message { nonce } => (kind == "message" || error) && head.nonce.as_deref() == Some(nonce),
        Awaited::Reply { command: c, kind: k, room: r } => {
            room == Some(r.as_str()) && (kind == *k || (error && command == Some(*c)))
        }
        Awaited::Change { command: c, kind: k, room: r, id, emoji } => {
            let same_message = room == Some(r.as_str()) && head.id == Some(*id);
            let this_change = kind == *k && (emoji.is_none() || head.emoji.as_deref() == emoji.as_deref());
            same_message && (this_change || (error && command == Some(*c)))
        }
        Awaited::Pong => kind == "pong" || (error && command == Some("ping")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(frame: serde_json::Value) -> String {
        frame.to_string()
    }

    #[test]
    fn a_send_is_answered_by_its_copy_or_its_error() {
        let mut acks = Acks::default();
        let send = native(serde_json::json!({"type": "send_message", "room": "a", "text": "hi", "nonce": "sio-x-7"}));
        assert_eq!(acks.expect(7, "send_message", &send), Expected::Later);
        // Someone else's message, and this client's typing, are events only.
        let theirs = r#"{"type":"message","room":"a","id":1,"user":"b","text":"yo","ts":"t"}"#;
        assert_eq!(acks.deliver(theirs), Delivery::Event);
        assert_eq!(acks.deliver(r#"{"type":"typing","room":"a","user":"b"}"#), Delivery::Event);
        let own = r#"{"type":"message","room":"a","id":2,"user":"c","text":"hi","ts":"t","nonce":"sio-x-7"}"#;
        assert_eq!(acks.deliver(own), Delivery::EventAndAck(7));
        assert_eq!(acks.deliver(own), Delivery::Event, "an ack is answered once");

        let send = native(serde_json::json!({"type": "send_message", "room": "a", "text": "x", "nonce": "mine"}));
        assert_eq!(acks.expect(8, "send_message", &send), Expected::Later);
        let error =
            ServerFrame::error(&ChatError::RateLimited("slow".into()), Some("send_message"), Some("a"), Some("mine"));
        assert_eq!(acks.deliver(&error), Delivery::AckOnly(8));
    }

    #[test]
    fn replies_to_the_asker_alone_go_only_to_the_callback_and_other_commands_errors_do_not_steal_them() {
        let mut acks = Acks::default();
        let join = |room: &str| native(serde_json::json!({"type": "join_room", "room": room}));
        assert_eq!(acks.expect(1, "join_room", &join("a")), Expected::Later);
        assert_eq!(acks.expect(2, "join_room", &join("b")), Expected::Later);
        assert_eq!(acks.expect(3, "ping", r#"{"type":"ping"}"#), Expected::Later);
        // A typing notice refused in room b answers no join.
        let typing = ServerFrame::error(&ChatError::NotJoined("b".into()), Some("typing"), Some("b"), None);
        assert_eq!(acks.deliver(&typing), Delivery::Event);
        // Nor does the notice that a join's history is missing.
        let no_history = ServerFrame::error(&ChatError::Unavailable("db".into()), None, Some("a"), None);
        assert_eq!(acks.deliver(&no_history), Delivery::Event);
        let refused = ServerFrame::error(&ChatError::NotJoined("b".into()), Some("join_room"), Some("b"), None);
        assert_eq!(acks.deliver(&refused), Delivery::AckOnly(2));
        assert_eq!(acks.deliver(r#"{"type":"joined","room":"a","members":[],"history":[]}"#), Delivery::AckOnly(1));
        assert_eq!(acks.deliver(r#"{"type":"pong"}"#), Delivery::AckOnly(3));
        assert_eq!(acks.deliver(r#"{"type":"joined","room":"a","members":[],"history":[]}"#), Delivery::Event);
    }

    #[test]
    fn a_change_is_answered_by_that_change_to_that_message() {
        let mut acks = Acks::default();
        let edit = native(serde_json::json!({"type": "edit_message", "room": "a", "id": 9, "text": "x"}));
        assert_eq!(acks.expect(4, "edit_message", &edit), Expected::Later);
        let react = native(serde_json::json!({"type": "add_reaction", "room": "a", "id": 9, "emoji": "👍"}));
        assert_eq!(acks.expect(5, "add_reaction", &react), Expected::Later);
        assert_eq!(acks.deliver(r#"{"type":"message_edited","room":"a","id":8,"text":"x"}"#), Delivery::Event);
        // Someone else's reaction to the same message answers neither.
        let other = r#"{"type":"reaction_added","room":"a","id":9,"emoji":"🎉","user":"b"}"#;
        assert_eq!(acks.deliver(other), Delivery::Event);
        let edited = r#"{"type":"message_edited","room":"a","id":9,"text":"x"}"#;
        assert_eq!(acks.deliver(edited), Delivery::EventAndAck(4));
        let reacted = r#"{"type":"reaction_added","room":"a","id":9,"emoji":"👍","user":"c"}"#;
        assert_eq!(acks.deliver(reacted), Delivery::EventAndAck(5));
    }

    #[test]
    fn an_invalid_command_is_refused_at_once_and_holds_nothing() {
        let mut acks = Acks::default();
        let Expected::Refused(error) = acks.expect(1, "edit_message", r#"{"type":"edit_message","room":"a"}"#) else {
            panic!("a command without its id is refused")
        };
        let error: serde_json::Value = serde_json::from_str(&error).unwrap();
        assert_eq!((error["code"].as_str(), error["command"].as_str()), (Some("bad_request"), Some("edit_message")));
        let long_room = native(serde_json::json!({"type": "join_room", "room": "x".repeat(10_000)}));
        assert!(matches!(acks.expect(2, "join_room", &long_room), Expected::Refused(_)));
        assert_eq!(acks.expect(3, "typing", r#"{"type":"typing","room":"a"}"#), Expected::AtOnce);
        assert!(acks.pending.is_empty());
    }

    #[test]
    fn waiting_callbacks_are_bounded() {
        let mut acks = Acks::default();
        for ack in 0..(MAX_PENDING as u64 + 10) {
            acks.expect(ack, "ping", r#"{"type":"ping"}"#);
        }
        assert_eq!(acks.pending.len(), MAX_PENDING);
        assert_eq!(acks.deliver(r#"{"type":"pong"}"#), Delivery::AckOnly(10), "the oldest were let go");
    }
}
