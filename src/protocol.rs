//! The WebSocket wire protocol (docs/protocol.md): what clients send, what
//! the server answers. Text frames, one JSON object each, tagged by `type`.

use actix_web::web::Bytes;
use bytestring::ByteString;
use serde::{Deserialize, Serialize};

use crate::clock::format_timestamp;
use crate::domain::{ChatMessage, Encryption};
use crate::error::ChatError;

/// Largest page a `history` request may ask for.
pub const MAX_HISTORY_LIMIT: i64 = 100;
/// Page size of a `history` request without `limit`.
pub const DEFAULT_HISTORY_LIMIT: i64 = 50;

/// A frame from a client, as parsed; the session turns its strings into
/// domain values. Unknown fields are ignored so clients can add their own.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    JoinRoom {
        room: String,
        name: Option<String>,
        since: Option<i64>,
        epoch: Option<String>,
        /// An admin watching the room unseen.
        #[serde(default)]
        hidden: bool,
    },
    LeaveRoom {
        room: String,
    },
    SendMessage {
        room: String,
        text: String,
        nonce: Option<String>,
        reply_to: Option<i64>,
    },
    /// Replaces the text of one's own message.
    EditMessage {
        room: String,
        id: i64,
        text: String,
    },
    /// Removes one's own message (an admin's: anyone's).
    DeleteMessage {
        room: String,
        id: i64,
    },
    AddReaction {
        room: String,
        id: i64,
        emoji: String,
    },
    RemoveReaction {
        room: String,
        id: i64,
        emoji: String,
    },
    History {
        room: String,
        before: Option<i64>,
        limit: Option<i64>,
    },
    Typing {
        room: String,
    },
    Ping,
}

impl ClientFrame {
    /// The frame's `type`.
    pub fn name(&self) -> &'static str {
        match self {
            ClientFrame::JoinRoom { .. } => "join_room",
            ClientFrame::LeaveRoom { .. } => "leave_room",
            ClientFrame::SendMessage { .. } => "send_message",
            ClientFrame::EditMessage { .. } => "edit_message",
            ClientFrame::DeleteMessage { .. } => "delete_message",
            ClientFrame::AddReaction { .. } => "add_reaction",
            ClientFrame::RemoveReaction { .. } => "remove_reaction",
            ClientFrame::History { .. } => "history",
            ClientFrame::Typing { .. } => "typing",
            ClientFrame::Ping => "ping",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ChatError> {
        serde_json::from_str(text).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Syntax | Category::Eof => ChatError::BadRequest(format!("malformed JSON: {e}")),
                // Unknown `type`, a missing field, a field of the wrong kind.
                Category::Data | Category::Io => ChatError::BadRequest(format!("invalid frame: {e}")),
            }
        })
    }
}

/// A message as clients see it, live (tagged `message`) or in a history list.
#[derive(Debug, Serialize)]
pub struct MessageView<'a> {
    pub room: &'a str,
    pub id: i64,
    pub user: &'a str,
    pub text: &'a str,
    pub ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<&'a str>,
    /// The id of the room's message this one answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    /// When its author last edited it (`text` is the edited text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<ReactionView<'a>>,
}

/// Names listed per emoji on a message (`count` says how many there are).
pub const REACTORS_LISTED: usize = 50;

/// One emoji on a message: how many reacted with it, and who (the first
/// `REACTORS_LISTED` of them).
#[derive(Debug, Serialize)]
pub struct ReactionView<'a> {
    pub emoji: &'a str,
    pub count: usize,
    pub users: Vec<&'a str>,
}

impl<'a> MessageView<'a> {
    /// Without the nonce: it is echoed only in the sender's own copy.
    pub fn public(m: &'a ChatMessage) -> Self {
        Self {
            room: m.room.as_str(),
            id: m.id,
            user: &m.author,
            text: &m.text,
            ts: format_timestamp(m.created_at_ms),
            nonce: None,
            reply_to: m.reply_to,
            edited_at: m.edited_at_ms.map(format_timestamp),
            reactions: m
                .reactions
                .iter()
                .map(|r| ReactionView {
                    emoji: &r.emoji,
                    count: r.by.len(),
                    users: r.by.iter().take(REACTORS_LISTED).map(|(_, name)| &**name).collect(),
                })
                .collect(),
        }
    }

    pub fn for_sender(m: &'a ChatMessage) -> Self {
        Self { nonce: m.nonce.as_deref(), ..Self::public(m) }
    }

    pub fn list(messages: &'a [impl AsRef<ChatMessage>]) -> Vec<Self> {
        messages.iter().map(|m| Self::public(m.as_ref())).collect()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceAction {
    Join,
    Leave,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Joined {
        room: &'a str,
        /// Sorted; in a busy room only the first names (`member_count`
        /// says how many there are).
        members: Vec<&'a str>,
        member_count: usize,
        history: Vec<MessageView<'a>>,
        truncated: bool,
        /// The room's run of ids: when it differs from the one a client
        /// holds, its ids for the room mean nothing and it reloads.
        epoch: &'a str,
        /// Only in an end-to-end encrypted room: every `text` in it is
        /// ciphertext, and this says how members get the key.
        #[serde(skip_serializing_if = "Option::is_none")]
        encryption: Option<&'a Encryption>,
        /// Only for someone an admin muted in the room: until when.
        #[serde(skip_serializing_if = "Option::is_none")]
        muted_until: Option<String>,
    },
    /// Answers `leave_room`.
    Left {
        room: &'a str,
    },
    Message(MessageView<'a>),
    Presence {
        room: &'a str,
        user: &'a str,
        action: PresenceAction,
        members: usize,
    },
    /// A busy room's presence changes of the last moment, as state: each
    /// name in `joined` is in the room now, each in `left` is not.
    PresenceBatch {
        room: &'a str,
        joined: Vec<&'a str>,
        left: Vec<&'a str>,
        members: usize,
    },
    History {
        room: &'a str,
        messages: Vec<MessageView<'a>>,
    },
    Typing {
        room: &'a str,
        user: &'a str,
    },
    Error {
        code: &'a str,
        message: &'a str,
        /// The `type` of the command that failed, when the frame was one.
        #[serde(skip_serializing_if = "Option::is_none")]
        command: Option<&'a str>,
        /// The room of the request that failed, when it named one.
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        /// The nonce of the `send_message` that failed, when it had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        nonce: Option<&'a str>,
        /// The message a failed edit, deletion or reaction was about.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<i64>,
    },
    Pong,
    /// An admin took this connection out of the room.
    Kicked {
        room: &'a str,
    },
    /// An admin closed the room: every member is out, and no one may join.
    RoomClosed {
        room: &'a str,
    },
    /// Its author or an admin deleted a message: remove it from view.
    MessageDeleted {
        room: &'a str,
        id: i64,
    },
    /// Its author changed a message's text.
    MessageEdited {
        room: &'a str,
        id: i64,
        text: &'a str,
        edited_at: String,
    },
    ReactionAdded {
        room: &'a str,
        id: i64,
        emoji: &'a str,
        user: &'a str,
    },
    ReactionRemoved {
        room: &'a str,
        id: i64,
        emoji: &'a str,
        user: &'a str,
    },
    /// An admin muted this member in the room until `until`, or (`null`)
    /// lifted the mute: what to show before they type.
    Muted {
        room: &'a str,
        until: Option<String>,
    },
}

impl ServerFrame<'_> {
    /// Serialized once; the result is cheap to clone (reference counted), so a
    /// broadcast hands every member the same bytes.
    pub fn to_text(&self) -> ByteString {
        let json = serde_json::to_vec(self).expect("server frames always serialize");
        // serde_json writes UTF-8 only.
        ByteString::try_from(Bytes::from(json)).expect("serde_json output is UTF-8")
    }

    /// The error of `command` (a frame's `type`, when the frame was one).
    pub fn error(err: &ChatError, command: Option<&str>, room: Option<&str>, nonce: Option<&str>) -> ByteString {
        let message = err.client_message();
        ServerFrame::Error { code: err.code(), message: &message, command, room, nonce, id: None }.to_text()
    }

    /// The error of a request about message `id` (an edit, a deletion, a reaction).
    pub fn error_about(err: &ChatError, command: &str, room: &str, id: i64) -> ByteString {
        let message = err.client_message();
        let (command, room) = (Some(command), Some(room));
        ServerFrame::Error { code: err.code(), message: &message, command, room, nonce: None, id: Some(id) }.to_text()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_frame() {
        let join = ClientFrame::parse(r#"{"type":"join_room","room":"lobby","name":"alice","since":12}"#).unwrap();
        assert!(matches!(join, ClientFrame::JoinRoom { since: Some(12), .. }));
        let send = ClientFrame::parse(r#"{"type":"send_message","room":"lobby","text":"hi","extra":1}"#).unwrap();
        assert!(matches!(send, ClientFrame::SendMessage { nonce: None, .. }));
        assert!(matches!(ClientFrame::parse(r#"{"type":"ping"}"#).unwrap(), ClientFrame::Ping));
    }

    #[test]
    fn names_what_is_wrong() {
        let msg = |s: &str| ClientFrame::parse(s).unwrap_err().to_string();
        assert!(msg("{not json").starts_with("malformed JSON"));
        assert!(msg(r#"{"type":"dance"}"#).contains("unknown variant `dance`"));
        assert!(msg(r#"{"type":"send_message","room":"lobby"}"#).contains("missing field `text`"));
        assert!(msg(r#"{"room":"lobby"}"#).contains("missing field `type`"));
    }

    #[test]
    fn message_frame_shape() {
        let m = ChatMessage {
            nonce: Some("c-1".into()),
            ..ChatMessage::new(
                crate::domain::RoomName::parse("lobby").unwrap(),
                7,
                "alice".into(),
                "<b>hi</b>".into(),
                0,
            )
        };
        let public = ServerFrame::Message(MessageView::public(&m)).to_text();
        assert_eq!(
            &*public,
            r#"{"type":"message","room":"lobby","id":7,"user":"alice","text":"<b>hi</b>","ts":"1970-01-01T00:00:00.000Z"}"#
        );
        let own = ServerFrame::Message(MessageView::for_sender(&m)).to_text();
        assert!(own.ends_with(r#","nonce":"c-1"}"#));

        let mut revised = ChatMessage { reply_to: Some(3), edited_at_ms: Some(1000), ..m };
        revised.react("👍", &"u:bob".into(), &"bob".into(), true);
        let frame = ServerFrame::Message(MessageView::public(&revised)).to_text();
        assert!(
            frame.ends_with(
                r#""reply_to":3,"edited_at":"1970-01-01T00:00:01.000Z","reactions":[{"emoji":"👍","count":1,"users":["bob"]}]}"#
            ),
            "{frame}"
        );
    }
}
