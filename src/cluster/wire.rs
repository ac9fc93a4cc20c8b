//! What nodes tell each other through Redis. A message is published (and
//! kept in its room's stream) as one JSON object; its `id` and `epoch` are
//! written in by the script that gives the id out, so the node only ever
//! builds the rest.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::{ChatMessage, Encryption, Revision, RoomName};
use crate::error::ChatError;

/// A message as it travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireMessage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub id: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    /// The node that accepted it, and the connection there that sent it:
    /// that node gives the sender its own copy (with the nonce). First, so
    /// that a node finds its own messages on the channel without parsing
    /// them (`is_from`).
    pub node: String,
    pub room: String,
    pub author: String,
    pub text: String,
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
}

fn is_zero(id: &i64) -> bool {
    *id == 0
}

/// Whether a published message (as the send script made it) came from
/// `node`: its `"node"` field comes right after the id and the epoch.
pub fn is_from(raw: &[u8], node_field: &[u8]) -> bool {
    let head = &raw[..raw.len().min(node_field.len() + 64)];
    head.windows(node_field.len()).any(|w| w == node_field)
}

/// What `is_from` looks for: `"node":"<name>"`.
pub fn node_field(node: &str) -> Vec<u8> {
    format!("\"node\":{}", serde_json::to_string(node).expect("strings serialize")).into_bytes()
}

impl WireMessage {
    pub fn decode(raw: &[u8]) -> Result<Self, ChatError> {
        serde_json::from_slice(raw).map_err(|e| ChatError::Unavailable(format!("a malformed message in Redis: {e}")))
    }

    /// The message, and the epoch its id belongs to.
    pub fn into_message(self) -> Result<(Arc<ChatMessage>, String), ChatError> {
        let room = RoomName::parse(&self.room)?;
        let message = ChatMessage {
            nonce: self.nonce,
            owner: self.owner.map(Into::into),
            reply_to: self.reply_to,
            ..ChatMessage::new(room, self.id, self.author.into(), self.text, self.ts)
        };
        Ok((Arc::new(message), self.epoch))
    }
}

/// Everything else nodes tell each other, on the events channel.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// A room was created on `node`: the others know it exists, and, when
    /// Redis had decided it (`encryption_tag`), whether it is encrypted.
    RoomCreated {
        room: String,
        node: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encryption: Option<String>,
    },
    /// An admin's decision, made on `node`: every other node carries it
    /// out on its own connections.
    Enforce { enforcement: Enforcement, node: String },
    /// A member on `node` edited or reacted to message `id` of `room`.
    Revised { room: String, id: i64, revision: Revision, node: String },
    /// A connection on `node` joined `room` (or changed its name there), or
    /// left it.
    Presence { room: String, session: u64, member: Option<RosterEntry>, node: String },
}

/// How Redis (and the `RoomCreated` event) says whether a room is
/// encrypted: `plain`, or `<key source>:<salt>`.
pub fn encryption_tag(encryption: Option<&Encryption>) -> String {
    match encryption {
        None => "plain".into(),
        Some(e) => format!("{}:{}", e.key.as_str(), e.salt),
    }
}

/// The other way; anything but `plain` is an encrypted room, whatever this
/// version makes of it (no plaintext may get in by a misreading).
pub fn from_encryption_tag(tag: &str) -> Option<Encryption> {
    if tag == "plain" {
        return None;
    }
    let (key, salt) = tag.split_once(':').unwrap_or((tag, ""));
    Encryption::from_columns(Some(key), Some(salt.to_string()))
}

/// A member as every node's roster keeps it, and as Redis keeps it in the
/// room's members hash (field `<node>:<session>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RosterEntry {
    pub name: String,
    pub node: String,
    /// When the connection joined (Unix ms).
    pub since: i64,
    /// A guest's connection, not an account's (what admins may do differs).
    #[serde(default)]
    pub guest: bool,
}

/// What an admin's decision does to live connections and rules (what it
/// writes to the database, the deciding node has written).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Enforcement {
    /// Members whose name has this key leave the room, and are kept out
    /// until then (Unix ms; none: free to come back).
    Kick {
        room: String,
        name_key: String,
        #[serde(default)]
        until_ms: Option<i64>,
        /// The name as the admin wrote it (for the log's list).
        #[serde(default)]
        name: String,
    },
    /// Whoever is called `name_key` may come back into `room`, with the
    /// guests and addresses kept out with them.
    LetIn {
        room: String,
        name_key: String,
    },
    /// A ban lifted: the account may connect again.
    Unban {
        user_key: String,
    },
    /// Guests a kick or a room ban took out on `node`, kept out by their
    /// guest ids and addresses on every node until then (Unix ms).
    KeepOut {
        room: String,
        name_key: String,
        #[serde(default)]
        guests: Vec<String>,
        addresses: Vec<std::net::IpAddr>,
        until_ms: i64,
    },
    Close {
        room: String,
        closed: bool,
    },
    Delete {
        room: String,
        id: i64,
    },
    Ban {
        user_key: String,
    },
    EndLogin {
        login: String,
    },
    SetRole {
        user_key: String,
        admin: bool,
    },
    Mute {
        room: String,
        user_key: String,
        until_ms: i64,
    },
    SetPrivate {
        room: String,
        private: bool,
    },
    Invite {
        room: String,
        user_key: String,
    },
}

impl Event {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("events serialize")
    }

    pub fn decode(raw: &[u8]) -> Result<Self, ChatError> {
        serde_json::from_slice(raw).map_err(|e| ChatError::Unavailable(format!("a malformed event in Redis: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_body_gets_its_id_and_epoch_spliced_in_front() {
        let body = WireMessage {
            id: 0,
            epoch: String::new(),
            room: "lobby".into(),
            author: "ann".into(),
            text: "hi \"there\"".into(),
            ts: 5,
            nonce: Some("n1".into()),
            node: "a1".into(),
            session: Some(3),
            owner: Some("g:x".into()),
            reply_to: Some(2),
        };
        let json = serde_json::to_string(&body).unwrap();
        assert!(json.starts_with("{\"node\":"), "the script splices after the brace: {json}");
        // What the send script does with it.
        let spliced = format!("{{\"id\":7,\"epoch\":\"e1\",{}", &json[1..]);
        assert!(is_from(spliced.as_bytes(), &node_field("a1")));
        assert!(!is_from(spliced.as_bytes(), &node_field("a")));
        let (message, epoch) = WireMessage::decode(spliced.as_bytes()).unwrap().into_message().unwrap();
        assert_eq!((message.id, epoch.as_str(), &*message.author), (7, "e1", "ann"));
        assert_eq!(message.text, "hi \"there\"");
        assert_eq!((message.owner.as_deref(), message.reply_to), (Some("g:x"), Some(2)));
    }
}
