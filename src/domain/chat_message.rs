use std::sync::Arc;

use super::RoomName;

/// A message the server has accepted: it has its room's next id and is, or
/// soon will be, in the log. Shared (`Arc`) between the room's in-memory tail,
/// the database writer's queue and history replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub room: RoomName,
    pub id: i64,
    pub author: Arc<str>,
    pub text: String,
    pub created_at_ms: i64,
    pub nonce: Option<String>,
}
