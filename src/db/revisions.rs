//! What happened to messages after they were sent: the `message_edits` and
//! `reactions` tables. Both are keyed by (room, message id) without a
//! foreign key, so that an edit or a reaction written before its message's
//! row (another node's writer may be a moment behind) is kept all the same.

use std::collections::HashMap;
use std::sync::Arc;

use diesel::prelude::*;

use super::schema::{message_edits, messages, reactions};
use super::DbConnection;
use crate::domain::{ChatMessage, Revision, RoomName};

/// (message id, emoji, owner, display name), oldest first.
type ReactionRow = (i64, String, String, String);

/// Writes a member's change to message `id` of `room`.
pub fn write(conn: &mut DbConnection, room: &str, id: i64, revision: &Revision) -> QueryResult<usize> {
    match revision {
        Revision::Edit { text, at_ms } => {
            diesel::delete(message_edits::table.find((room, id))).execute(conn)?;
            diesel::insert_into(message_edits::table)
                .values((
                    message_edits::room.eq(room),
                    message_edits::message_id.eq(id),
                    message_edits::body.eq(text),
                    message_edits::edited_at.eq(at_ms),
                ))
                .execute(conn)
        }
        Revision::Delete => delete(conn, room, id),
        Revision::React { emoji, owner, name, add: true, at_ms } => insert_ignoring_existing!(
            conn,
            reactions::table,
            (
                reactions::room.eq(room),
                reactions::message_id.eq(id),
                reactions::emoji.eq(emoji),
                reactions::owner.eq(&**owner),
                reactions::user_name.eq(&**name),
                reactions::created_at.eq(at_ms),
            )
        ),
        Revision::React { emoji, owner, add: false, .. } => {
            diesel::delete(reactions::table.find((room, id, emoji, &**owner))).execute(conn)
        }
    }
}

/// Removes a message and everything that was added to it.
pub fn delete(conn: &mut DbConnection, room: &str, id: i64) -> QueryResult<usize> {
    diesel::delete(message_edits::table.filter(message_edits::room.eq(room)).filter(message_edits::message_id.eq(id)))
        .execute(conn)?;
    diesel::delete(reactions::table.filter(reactions::room.eq(room)).filter(reactions::message_id.eq(id)))
        .execute(conn)?;
    diesel::delete(messages::table.find((room, id))).execute(conn)
}

/// `page` (one room's messages, oldest first) as they are now: with their
/// latest text and their reactions. Two range queries, whatever the page's size.
pub fn apply(
    conn: &mut DbConnection,
    room: &RoomName,
    page: Vec<Arc<ChatMessage>>,
) -> QueryResult<Vec<Arc<ChatMessage>>> {
    let (Some(first), Some(last)) = (page.first().map(|m| m.id), page.last().map(|m| m.id)) else {
        return Ok(page);
    };
    let edits: HashMap<i64, (String, i64)> = message_edits::table
        .filter(message_edits::room.eq(room.as_str()))
        .filter(message_edits::message_id.between(first, last))
        .select((message_edits::message_id, message_edits::body, message_edits::edited_at))
        .load::<(i64, String, i64)>(conn)?
        .into_iter()
        .map(|(id, body, at)| (id, (body, at)))
        .collect();
    let reacted: Vec<ReactionRow> = reactions::table
        .filter(reactions::room.eq(room.as_str()))
        .filter(reactions::message_id.between(first, last))
        .order((reactions::message_id, reactions::created_at, reactions::emoji, reactions::owner))
        .select((reactions::message_id, reactions::emoji, reactions::owner, reactions::user_name))
        .load(conn)?;
    if edits.is_empty() && reacted.is_empty() {
        return Ok(page);
    }
    let mut by_id: HashMap<i64, Vec<ReactionRow>> = HashMap::new();
    for row in reacted {
        by_id.entry(row.0).or_default().push(row);
    }
    Ok(page
        .into_iter()
        .map(|m| {
            let (edit, reacted) = (edits.get(&m.id), by_id.remove(&m.id));
            if edit.is_none() && reacted.is_none() {
                return m;
            }
            let mut message = (*m).clone();
            if let Some((text, at)) = edit {
                message.text.clone_from(text);
                message.edited_at_ms = Some(*at);
            }
            for (_, emoji, owner, name) in reacted.into_iter().flatten() {
                message.react(&emoji, &owner.into(), &name.into(), true);
            }
            Arc::new(message)
        })
        .collect())
}
