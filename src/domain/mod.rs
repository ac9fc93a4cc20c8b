//! Values that are valid by construction: once a `RoomName` or `DisplayName`
//! exists, nothing downstream has to check it again. And `ChatMessage`, a
//! message the server accepted, made of such values.

mod chat_message;
mod display_name;
mod emoji;
mod encryption;
mod message_text;
mod room_name;

pub use chat_message::{ChatMessage, Reaction, Revision, MAX_REACTIONS_PER_MESSAGE, MAX_REACTORS_PER_EMOJI};
pub use display_name::{skeleton_of, DisplayName};
pub use emoji::Emoji;
pub use encryption::{is_envelope, Encryption, KeySource};
pub use message_text::{MessageText, Nonce};
pub use room_name::RoomName;
