use std::sync::Arc;

use super::RoomName;

/// A message the server has accepted: it has its room's next id and is, or
/// soon will be, in the log. Shared (`Arc`) between the room's in-memory tail,
/// the database writer's queue and history replies. An edit or a reaction
/// makes a new copy with the change (`revised`), never changes one in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub room: RoomName,
    pub id: i64,
    pub author: Arc<str>,
    pub text: String,
    pub created_at_ms: i64,
    pub nonce: Option<String>,
    /// Whose it is (`Who::owner_key`): only they may edit or delete it.
    /// `None` for bots' messages and those stored before owners were kept.
    pub owner: Option<Arc<str>>,
    /// The message of the same room this one answers.
    pub reply_to: Option<i64>,
    /// When its text was last edited.
    pub edited_at_ms: Option<i64>,
    /// Each emoji with who reacted with it, in the order first used.
    pub reactions: Vec<Reaction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    /// (owner key, display name), in the order they reacted.
    pub by: Vec<(Arc<str>, Arc<str>)>,
}

/// What a member (or an admin) does to a message after it was sent.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revision {
    Edit { text: String, at_ms: i64 },
    Delete,
    React { emoji: String, owner: Arc<str>, name: Arc<str>, add: bool, at_ms: i64 },
}

/// Distinct emoji one message may carry: a cap on what a room of pranksters
/// can make every member store and render.
pub const MAX_REACTIONS_PER_MESSAGE: usize = 20;
/// People who may react with one emoji to one message: guests without a
/// cookie are a new person on every connection, so the bound cannot rest
/// on the number of people.
pub const MAX_REACTORS_PER_EMOJI: usize = 1000;

impl ChatMessage {
    /// A new message: not edited, no reactions yet.
    pub fn new(room: RoomName, id: i64, author: Arc<str>, text: String, created_at_ms: i64) -> Self {
        Self {
            room,
            id,
            author,
            text,
            created_at_ms,
            nonce: None,
            owner: None,
            reply_to: None,
            edited_at_ms: None,
            reactions: Vec::new(),
        }
    }

    /// This message with `revision` made (a deletion changes nothing here).
    pub fn revised(&self, revision: &Revision) -> Self {
        let mut message = self.clone();
        match revision {
            Revision::Edit { text, at_ms } => {
                message.text.clone_from(text);
                message.edited_at_ms = Some(*at_ms);
            }
            Revision::Delete => {}
            Revision::React { emoji, owner, name, add, .. } => message.react(emoji, owner, name, *add),
        }
        message
    }

    /// Adds or takes away `owner`'s `emoji`; doing it twice changes nothing.
    pub fn react(&mut self, emoji: &str, owner: &Arc<str>, name: &Arc<str>, add: bool) {
        let at = self.reactions.iter().position(|r| r.emoji == emoji);
        match (at, add) {
            (Some(i), true) => {
                let by = &mut self.reactions[i].by;
                if !by.iter().any(|(o, _)| o == owner) {
                    by.push((owner.clone(), name.clone()));
                }
            }
            (None, true) => {
                self.reactions.push(Reaction { emoji: emoji.into(), by: vec![(owner.clone(), name.clone())] });
            }
            (Some(i), false) => {
                self.reactions[i].by.retain(|(o, _)| o != owner);
                if self.reactions[i].by.is_empty() {
                    self.reactions.remove(i);
                }
            }
            (None, false) => {}
        }
    }

    /// Whether one more reaction with `emoji` would be too many: a 21st
    /// emoji, or a 1001st person on one.
    pub fn too_many_reactions(&self, emoji: &str) -> bool {
        match self.reactions.iter().find(|r| r.emoji == emoji) {
            Some(reaction) => reaction.by.len() >= MAX_REACTORS_PER_EMOJI,
            None => self.reactions.len() >= MAX_REACTIONS_PER_MESSAGE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_add_once_and_go_when_the_last_is_taken_back() {
        let room = RoomName::parse("r").unwrap();
        let mut m = ChatMessage::new(room, 1, "a".into(), "hi".into(), 0);
        let (ann, bob): (Arc<str>, Arc<str>) = ("u:ann".into(), "u:bob".into());
        m.react("👍", &ann, &"Ann".into(), true);
        m.react("👍", &ann, &"Ann".into(), true);
        m.react("👍", &bob, &"Bob".into(), true);
        m.react("🎉", &bob, &"Bob".into(), true);
        assert_eq!(m.reactions.len(), 2);
        assert_eq!(m.reactions[0].by.len(), 2, "Ann counted once");
        m.react("🎉", &bob, &"Bob".into(), false);
        m.react("🎉", &bob, &"Bob".into(), false);
        assert_eq!(m.reactions.len(), 1);
        m.react("👍", &ann, &"Ann".into(), false);
        assert_eq!(m.reactions[0].by, vec![(bob, "Bob".into())]);
    }

    #[test]
    fn an_edit_keeps_everything_but_the_text() {
        let room = RoomName::parse("r").unwrap();
        let m = ChatMessage { reply_to: Some(3), ..ChatMessage::new(room, 5, "a".into(), "old".into(), 7) };
        let edited = m.revised(&Revision::Edit { text: "new".into(), at_ms: 9 });
        assert_eq!(
            (edited.text.as_str(), edited.edited_at_ms, edited.reply_to, edited.id),
            ("new", Some(9), Some(3), 5)
        );
    }
}
