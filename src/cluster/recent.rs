//! History from a room's stream in Redis, which holds the latest messages
//! of every node, including those the database does not have yet.

use std::sync::Arc;

use redis::streams::StreamRangeReply;
use redis::AsyncCommands;

use super::bus::deliveries;
use super::{unreachable, Inner};
use crate::db::messages::IdRange;
use crate::domain::{ChatMessage, RoomName};
use crate::error::ChatError;

#[derive(Clone)]
pub struct Recent {
    inner: Arc<Inner>,
}

/// What the stream holds of a range.
pub struct FromStream {
    /// The latest of the range in the stream, oldest first.
    pub messages: Vec<Arc<ChatMessage>>,
    /// The stream's first id (`i64::MAX` when it is empty): ids below it
    /// are the database's to answer.
    pub stream_start: i64,
}

impl Recent {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        Self { inner }
    }

    /// The latest `range.limit` messages of the range that the stream holds.
    /// The stream is a contiguous run of a room's latest ids, so whatever of
    /// the range lies below its first entry is the database's to answer.
    pub async fn page(&self, room: &RoomName, range: &IdRange) -> Result<FromStream, ChatError> {
        let mut redis = self.inner.redis.clone();
        let keys = &self.inner.keys;
        let (reply, first): (StreamRangeReply, StreamRangeReply) = redis::pipe()
            .xrevrange_count(
                keys.log(room),
                format!("{}-0", range.below - 1),
                format!("{}-0", range.after + 1),
                range.limit,
            )
            .xrange_count(keys.log(room), "-", "+", 1)
            .query_async(&mut redis)
            .await
            .map_err(unreachable)?;
        let mut messages: Vec<Arc<ChatMessage>> =
            deliveries(&self.inner, reply).into_iter().map(|d| d.message).collect();
        messages.reverse();
        let stream_start = deliveries(&self.inner, first).first().map_or(i64::MAX, |d| d.message.id);
        Ok(FromStream { messages, stream_start })
    }

    /// The room's epoch in Redis.
    pub async fn epoch(&self, room: &RoomName) -> Result<Option<String>, ChatError> {
        let mut redis = self.inner.redis.clone();
        redis.get(self.inner.keys.epoch(room)).await.map_err(unreachable)
    }
}
