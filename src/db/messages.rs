//! The `messages` table: batch inserts for the writer, keyset pages for history.

use std::sync::Arc;

use diesel::prelude::*;

use super::schema::messages;
use super::DbConnection;
use crate::domain::{ChatMessage, RoomName};

/// Ids in the open interval (`after`, `below`), the latest `limit` of them.
#[derive(Debug, PartialEq, Eq)]
pub struct IdRange {
    pub after: i64,
    pub below: i64,
    pub limit: usize,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = messages)]
struct MessageRow {
    id: i64,
    author: String,
    body: String,
    created_at: i64,
    nonce: Option<String>,
    owner: Option<String>,
    reply_to: Option<i64>,
}

impl MessageRow {
    fn into_message(self, room: &RoomName) -> Arc<ChatMessage> {
        Arc::new(ChatMessage {
            nonce: self.nonce,
            owner: self.owner.map(Into::into),
            reply_to: self.reply_to,
            ..ChatMessage::new(room.clone(), self.id, self.author.into(), self.body, self.created_at)
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = messages)]
pub struct NewMessage<'a> {
    room: &'a str,
    id: i64,
    author: &'a str,
    body: &'a str,
    created_at: i64,
    nonce: Option<&'a str>,
    owner: Option<&'a str>,
    reply_to: Option<i64>,
}

impl<'a> From<&'a ChatMessage> for NewMessage<'a> {
    fn from(m: &'a ChatMessage) -> Self {
        Self {
            room: m.room.as_str(),
            id: m.id,
            author: &m.author,
            body: &m.text,
            created_at: m.created_at_ms,
            nonce: m.nonce.as_deref(),
            owner: m.owner.as_deref(),
            reply_to: m.reply_to,
        }
    }
}

/// Inserts messages, skipping any (room, id) already stored: a batch retried
/// after a commit whose acknowledgement was lost is written once.
pub fn insert_all(conn: &mut DbConnection, batch: &[NewMessage<'_>]) -> QueryResult<usize> {
    // Every backend allows at least 32766 bound parameters per statement; eight per row.
    batch.chunks(4000).map(|chunk| insert_ignoring_existing!(conn, messages::table, chunk)).sum()
}

/// The latest `range.limit` messages of `room` with ids strictly between
/// `range.after` and `range.below`, oldest first, as they were sent: their
/// edits and reactions are `revisions::apply`'s to add.
pub fn page(conn: &mut DbConnection, room: &RoomName, range: &IdRange) -> QueryResult<Vec<Arc<ChatMessage>>> {
    let rows: Vec<MessageRow> = messages::table
        .filter(messages::room.eq(room.as_str()))
        .filter(messages::id.gt(range.after))
        .filter(messages::id.lt(range.below))
        .order(messages::id.desc())
        .limit(i64::try_from(range.limit).unwrap_or(i64::MAX))
        .select(MessageRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().rev().map(|r| r.into_message(room)).collect())
}

/// Stored messages of `room` with this nonce and text, newest first: a
/// resend of one of them must not be stored again.
pub fn find_resend(
    conn: &mut DbConnection,
    room: &RoomName,
    nonce: &str,
    text: &str,
    limit: i64,
) -> QueryResult<Vec<Arc<ChatMessage>>> {
    let rows: Vec<MessageRow> = messages::table
        .filter(messages::room.eq(room.as_str()))
        .filter(messages::nonce.eq(nonce))
        .filter(messages::body.eq(text))
        .order(messages::id.desc())
        .limit(limit)
        .select(MessageRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(|r| r.into_message(room)).collect())
}

/// The highest message id of every room that has messages.
pub fn last_ids(conn: &mut DbConnection) -> QueryResult<Vec<(String, Option<i64>)>> {
    messages::table.group_by(messages::room).select((messages::room, diesel::dsl::max(messages::id))).load(conn)
}

/// The ids of `room` from `first` to `last` that are stored.
pub fn ids_between(conn: &mut DbConnection, room: &RoomName, first: i64, last: i64) -> QueryResult<Vec<i64>> {
    messages::table
        .filter(messages::room.eq(room.as_str()))
        .filter(messages::id.between(first, last))
        .select(messages::id)
        .load(conn)
}
