//! Answering history from the room's in-memory tail, and from the database
//! only for what lies below it.
//!
//! The ChatServer keeps, per room, the latest messages in order (its tail).
//! Every message below the tail's first id is already in the database; every
//! message the writer has not persisted yet is still in the tail. So a page is
//! the tail's part of the range plus, when that is not enough, one keyset
//! query for the rest below the tail.

use std::sync::Arc;

use crate::cluster::Recent;
use crate::db::messages::IdRange;
use crate::db::{self, DbPool};
use crate::domain::{ChatMessage, RoomName};
use crate::error::ChatError;
use crate::protocol::{DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryQuery {
    /// The latest `limit` messages with id > `since` (0: from the start).
    After { since: i64, limit: usize },
    /// The latest `limit` messages with id < `before`.
    Before { before: i64, limit: usize },
}

/// What the ChatServer knows of a range; resolved outside it, because
/// completing it may take a database query.
#[derive(Debug)]
pub struct HistoryPlan {
    pub room: RoomName,
    /// Tail messages in the range, oldest first: at most `limit + 1` for
    /// `After` (one more tells whether the page is truncated), `limit` for `Before`.
    pub from_tail: Vec<Arc<ChatMessage>>,
    /// Every message with a smaller id is in the database.
    pub db_below: i64,
}

#[derive(Debug, Default)]
pub struct HistoryPage {
    /// Oldest first.
    pub messages: Vec<Arc<ChatMessage>>,
    /// More messages in the range than fit in the page.
    pub truncated: bool,
}

impl HistoryQuery {
    /// The tail's share of the range; the tail is oldest first.
    pub fn plan<'a>(
        self,
        room: &RoomName,
        tail: impl DoubleEndedIterator<Item = &'a Arc<ChatMessage>>,
        db_below: i64,
    ) -> HistoryPlan {
        let in_range = |m: &&Arc<ChatMessage>| match self {
            Self::After { since, .. } => m.id > since,
            Self::Before { before, .. } => m.id < before,
        };
        let take = match self {
            Self::After { limit, .. } => limit + 1,
            Self::Before { limit, .. } => limit,
        };
        let mut from_tail: Vec<_> = tail.rev().filter(in_range).take(take).cloned().collect();
        from_tail.reverse();
        HistoryPlan { room: room.clone(), from_tail, db_below }
    }

    /// A `before` page as clients ask for it: `before` an id (default: the
    /// newest), `limit` 1 to 100 (default 50).
    pub fn before(before: Option<i64>, limit: Option<i64>) -> Result<Self, ChatError> {
        let limit = limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
        if !(1..=MAX_HISTORY_LIMIT).contains(&limit) {
            return Err(ChatError::BadRequest(format!("`limit` must be 1 to {MAX_HISTORY_LIMIT}")));
        }
        if before.is_some_and(|b| b < 1) {
            return Err(ChatError::BadRequest("`before` must be a message id (1 or more)".into()));
        }
        Ok(Self::Before { before: before.unwrap_or(i64::MAX), limit: usize::try_from(limit).expect("checked range") })
    }

    pub fn with_limit(self, limit: usize) -> Self {
        match self {
            Self::After { since, .. } => Self::After { since, limit },
            Self::Before { before, .. } => Self::Before { before, limit },
        }
    }

    pub fn limit(self) -> usize {
        match self {
            Self::After { limit, .. } | Self::Before { limit, .. } => limit,
        }
    }
}

impl HistoryPlan {
    /// The database range still needed, or `None` when the tail answers alone.
    pub fn missing(&self, query: HistoryQuery) -> Option<IdRange> {
        let have = self.from_tail.len();
        match query {
            HistoryQuery::After { since, limit } => (have <= limit && since < self.db_below - 1).then(|| IdRange {
                after: since,
                below: self.db_below,
                limit: limit + 1 - have,
            }),
            HistoryQuery::Before { before, limit } => {
                let below = before.min(self.db_below);
                (have < limit && below > 1).then(|| IdRange { after: 0, below, limit: limit - have })
            }
        }
    }

    /// The page, given the older messages fetched for `missing()` (oldest first).
    pub fn complete(self, query: HistoryQuery, older: Vec<Arc<ChatMessage>>) -> HistoryPage {
        let mut messages = older;
        messages.extend(self.from_tail);
        let excess = messages.len().saturating_sub(query.limit());
        messages.drain(..excess);
        HistoryPage { messages, truncated: excess > 0 }
    }

    /// The page when the tail alone answers it; the plan back otherwise.
    pub fn answer_from_memory(self, query: HistoryQuery) -> Result<HistoryPage, Self> {
        match self.missing(query) {
            None => Ok(self.complete(query, Vec::new())),
            Some(_) => Err(self),
        }
    }
}

/// Where what lies below a room's tail is: the database, and in a cluster
/// first the room's stream in Redis (which holds every node's latest
/// messages, some not in the database yet).
#[derive(Clone)]
pub struct MessageLog {
    pub pool: DbPool,
    pub recent: Option<Recent>,
}

impl MessageLog {
    /// The latest `range.limit` messages of the range, oldest first, as
    /// they are now (edited, with their reactions).
    async fn page(&self, room: &RoomName, range: IdRange) -> Result<Vec<Arc<ChatMessage>>, ChatError> {
        let mut range = Some(range);
        let mut newer = Vec::new();
        if let (Some(recent), Some(wanted)) = (&self.recent, &range) {
            let from_stream = recent.page(room, wanted).await?;
            newer = from_stream.messages;
            let below = wanted.below.min(from_stream.stream_start);
            range = (newer.len() < wanted.limit && below > wanted.after + 1).then(|| IdRange {
                after: wanted.after,
                below,
                limit: wanted.limit - newer.len(),
            });
        }
        let room = room.clone();
        db::run(&self.pool, move |conn| {
            let mut page = match range {
                Some(range) => db::messages::page(conn, &room, &range)?,
                None => Vec::new(),
            };
            page.extend(newer);
            db::revisions::apply(conn, &room, page)
        })
        .await
    }

    /// Message `id` of `room` as it is now, if the log has it.
    pub async fn message(&self, room: &RoomName, id: i64) -> Result<Option<Arc<ChatMessage>>, ChatError> {
        let mut page = self.page(room, IdRange { after: id - 1, below: id.saturating_add(1), limit: 1 }).await?;
        Ok(page.pop().filter(|m| m.id == id))
    }
}

/// Completes a plan: from memory at once when the tail covers the range,
/// otherwise with one lookup for what lies below the tail.
pub async fn resolve(plan: HistoryPlan, query: HistoryQuery, log: &MessageLog) -> Result<HistoryPage, ChatError> {
    match plan.answer_from_memory(query) {
        Ok(page) => Ok(page),
        Err(plan) => from_log(plan, query, log).await,
    }
}

/// Completes a plan the tail does not cover, with one lookup for what lies
/// below it.
pub async fn from_log(plan: HistoryPlan, query: HistoryQuery, log: &MessageLog) -> Result<HistoryPage, ChatError> {
    let older = match plan.missing(query) {
        Some(range) => log.page(&plan.room, range).await?,
        None => Vec::new(),
    };
    Ok(plan.complete(query, older))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(room: &RoomName, ids: std::ops::RangeInclusive<i64>) -> Vec<Arc<ChatMessage>> {
        ids.map(|id| Arc::new(ChatMessage::new(room.clone(), id, "a".into(), format!("m{id}"), 0))).collect()
    }

    fn ids(page: &HistoryPage) -> Vec<i64> {
        page.messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn after_answered_by_tail_when_it_reaches_since() {
        let room = RoomName::parse("r").unwrap();
        let tail = msgs(&room, 11..=20); // 1..=10 are only in the database
        let q = HistoryQuery::After { since: 12, limit: 50 };
        let page = q.plan(&room, tail.iter(), 11).answer_from_memory(q).unwrap();
        assert_eq!(ids(&page), (13..=20).collect::<Vec<_>>());
        assert!(!page.truncated);
    }

    #[test]
    fn after_needs_database_below_tail() {
        let room = RoomName::parse("r").unwrap();
        let tail = msgs(&room, 11..=20);
        let q = HistoryQuery::After { since: 5, limit: 8 };
        let plan = q.plan(&room, tail.iter(), 11);
        // Eight fit, and ten newer than 5 exist in the tail alone: truncated, no query.
        let page = plan.answer_from_memory(q).unwrap();
        assert_eq!(ids(&page), (13..=20).collect::<Vec<_>>());
        assert!(page.truncated);

        let q = HistoryQuery::After { since: 5, limit: 50 };
        let plan = q.plan(&room, tail.iter(), 11);
        assert_eq!(plan.missing(q), Some(IdRange { after: 5, below: 11, limit: 41 }));
        let page = plan.complete(q, msgs(&room, 6..=10));
        assert_eq!(ids(&page), (6..=20).collect::<Vec<_>>());
        assert!(!page.truncated);
    }

    #[test]
    fn after_truncates_to_the_latest() {
        let room = RoomName::parse("r").unwrap();
        let tail = msgs(&room, 11..=20);
        let q = HistoryQuery::After { since: 0, limit: 12 };
        let plan = q.plan(&room, tail.iter(), 11);
        assert_eq!(plan.missing(q), Some(IdRange { after: 0, below: 11, limit: 3 }));
        let page = plan.complete(q, msgs(&room, 8..=10));
        assert_eq!(ids(&page), (9..=20).collect::<Vec<_>>());
        assert!(page.truncated);
    }

    #[test]
    fn before_pages_down_through_tail_then_database() {
        let room = RoomName::parse("r").unwrap();
        let tail = msgs(&room, 11..=20);
        let q = HistoryQuery::Before { before: 18, limit: 5 };
        let page = q.plan(&room, tail.iter(), 11).answer_from_memory(q).unwrap();
        assert_eq!(ids(&page), (13..=17).collect::<Vec<_>>());

        let q = HistoryQuery::Before { before: 13, limit: 5 };
        let plan = q.plan(&room, tail.iter(), 11);
        assert_eq!(plan.missing(q), Some(IdRange { after: 0, below: 11, limit: 3 }));

        let q = HistoryQuery::Before { before: 4, limit: 5 };
        let plan = q.plan(&room, tail.iter(), 11);
        assert_eq!(plan.missing(q), Some(IdRange { after: 0, below: 4, limit: 5 }));
    }

    #[test]
    fn empty_room_needs_nothing() {
        let room = RoomName::parse("r").unwrap();
        let q = HistoryQuery::Before { before: i64::MAX, limit: 5 };
        let page = q.plan(&room, [].iter(), 1).answer_from_memory(q).unwrap();
        assert!(page.messages.is_empty());
        let q = HistoryQuery::After { since: 0, limit: 5 };
        assert!(q.plan(&room, [].iter(), 1).answer_from_memory(q).is_ok());
    }
}
