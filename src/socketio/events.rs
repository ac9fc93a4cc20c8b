//! Socket.IO events as the native protocol's frames, one to one: a client
//! emits `send_message` with the fields of the native frame, and receives
//! `message`, `presence`, `error`... named after the native frame's type,
//! with the same fields. Field names common in Flask-SocketIO chat apps are
//! taken as aliases (`username` for `name`, `message` for `text`).

use serde_json::{Map, Value};

/// Events a client may emit: the native protocol's commands.
pub const COMMANDS: &[&str] = &[
    "join_room",
    "leave_room",
    "send_message",
    "history",
    "typing",
    "ping",
    "edit_message",
    "delete_message",
    "add_reaction",
    "remove_reaction",
];

/// (alias, native field): what Flask-SocketIO apps commonly call them.
const ALIASES: &[(&str, &str)] = &[("username", "name"), ("message", "text")];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("an event is an array: its name, then its arguments")]
    NotAnEvent,
    #[error("unknown event {0:?}; the events are the protocol's commands (docs/protocol.md)")]
    Unknown(String),
    #[error("the event's argument must be an object with the command's fields")]
    NotAnObject,
}

/// A command a client emitted, with the native frame's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// The native frame's `type`, one of `COMMANDS`.
    pub name: &'static str,
    /// Its fields, aliases already renamed.
    pub fields: Map<String, Value>,
}

impl Command {
    /// An EVENT packet's data (`["send_message", {...}]`) as a command.
    pub fn from_event(data: &Value) -> Result<Self, EventError> {
        let args = data.as_array().ok_or(EventError::NotAnEvent)?;
        let asked = args.first().and_then(Value::as_str).ok_or(EventError::NotAnEvent)?;
        let name = COMMANDS
            .iter()
            .find(|c| **c == asked)
            .ok_or_else(|| EventError::Unknown(asked.chars().take(64).collect()))?;
        let mut fields = match args.get(1) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(fields)) => fields.clone(),
            Some(_) => return Err(EventError::NotAnObject),
        };
        for (alias, native) in ALIASES {
            if !fields.contains_key(*native) {
                if let Some(value) = fields.remove(*alias) {
                    fields.insert((*native).to_string(), value);
                }
            }
        }
        Ok(Self { name, fields })
    }

    /// A field as a string, if it is one.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    /// The native frame, ready for the native parser.
    pub fn into_native(mut self) -> String {
        self.fields.insert("type".into(), Value::String(self.name.into()));
        Value::Object(self.fields).to_string()
    }
}

/// A native frame (`{"type":"message",...}`, as the server writes them:
/// the type first) as an Engine.IO message carrying a Socket.IO EVENT,
/// `42["message",{...}]`, spliced without parsing it again. It comes in
/// parts that borrow from the frame, to be written one after the other:
/// this runs for every frame a Socket.IO member of a busy room receives.
pub fn event_parts(frame: &str) -> Option<[&str; 5]> {
    let rest = frame.strip_prefix("{\"type\":\"")?;
    let (name, rest) = rest.split_once('"')?;
    let fields = match rest.strip_prefix(',') {
        Some(fields) => fields,
        None if rest == "}" => "}",
        None => return None,
    };
    Some(["42[\"", name, "\",{", fields, "]"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn to_native(data: &Value) -> Result<String, EventError> {
        Command::from_event(data).map(Command::into_native)
    }

    fn from_native(frame: &str) -> Option<String> {
        event_parts(frame).map(|parts| parts.concat())
    }

    #[test]
    fn events_become_native_frames_with_flask_names_as_aliases() {
        let native =
            to_native(&json!(["send_message", {"room": "lobby", "message": "hi", "username": "ann"}])).unwrap();
        let native: Value = serde_json::from_str(&native).unwrap();
        assert_eq!(native, json!({"type": "send_message", "room": "lobby", "text": "hi", "name": "ann"}));
        // The native name wins over its alias.
        let native = to_native(&json!(["join_room", {"room": "a", "name": "x", "username": "y"}])).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&native).unwrap()["name"], "x");
        assert_eq!(to_native(&json!(["ping"])).unwrap(), r#"{"type":"ping"}"#);
        let parsed = crate::protocol::ClientFrame::parse(&to_native(&json!(["typing", {"room": "a"}])).unwrap());
        assert!(matches!(parsed, Ok(crate::protocol::ClientFrame::Typing { .. })));
    }

    #[test]
    fn what_is_not_a_command_is_refused() {
        assert_eq!(to_native(&json!({"a": 1})), Err(EventError::NotAnEvent));
        assert_eq!(to_native(&json!([])), Err(EventError::NotAnEvent));
        assert_eq!(to_native(&json!([7])), Err(EventError::NotAnEvent));
        assert_eq!(to_native(&json!(["disconnect"])), Err(EventError::Unknown("disconnect".into())));
        assert_eq!(to_native(&json!(["send_message", "hi"])), Err(EventError::NotAnObject));
    }

    #[test]
    fn native_frames_become_events_named_after_their_type() {
        let frame = crate::protocol::ServerFrame::Typing { room: "lobby", user: "ann" }.to_text();
        assert_eq!(from_native(&frame).unwrap(), r#"42["typing",{"room":"lobby","user":"ann"}]"#);
        let pong = crate::protocol::ServerFrame::Pong.to_text();
        assert_eq!(from_native(&pong).unwrap(), r#"42["pong",{}]"#);
        let error =
            crate::protocol::ServerFrame::error(&crate::error::ChatError::NotJoined("x".into()), None, Some("x"), None);
        let event: Value = serde_json::from_str(&from_native(&error).unwrap()[2..]).unwrap();
        assert_eq!((event[0].as_str(), event[1]["code"].as_str()), (Some("error"), Some("not_joined")));
        assert_eq!(from_native("{\"room\":\"x\"}"), None);
    }
}
