//! The `audit_log` and `bot_tokens` tables, and the moderation changes to
//! `users`, `rooms` and `messages`.

use diesel::prelude::*;

use super::schema::{audit_log, bot_tokens, messages, mutes, room_bans, room_invites, rooms, users};
use super::DbConnection;

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAuditEntry<'a> {
    pub id: &'a str,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

pub fn record(conn: &mut DbConnection, entry: &NewAuditEntry<'_>) -> QueryResult<usize> {
    diesel::insert_into(audit_log::table).values(entry).execute(conn)
}

/// The latest entries, newest first.
pub fn recent(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<AuditEntry>> {
    audit_log::table
        .order((audit_log::at.desc(), audit_log::id.desc()))
        .limit(limit)
        .select(AuditEntry::as_select())
        .load(conn)
}

#[derive(Debug, Insertable)]
#[diesel(table_name = bot_tokens)]
pub struct NewBotToken<'a> {
    pub token_hash: &'a str,
    pub bot_name: &'a str,
    pub created_by: &'a str,
    pub created_at: i64,
}

pub fn insert_bot_token(conn: &mut DbConnection, token: &NewBotToken<'_>) -> QueryResult<usize> {
    diesel::insert_into(bot_tokens::table).values(token).execute(conn)
}

/// The bot a live token belongs to.
pub fn bot_of(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<String>> {
    bot_tokens::table
        .find(token_hash)
        .filter(bot_tokens::revoked_at.is_null())
        .select(bot_tokens::bot_name)
        .first(conn)
        .optional()
}

pub fn set_admin(conn: &mut DbConnection, name_key: &str, admin: bool) -> QueryResult<usize> {
    diesel::update(users::table.find(name_key)).set(users::is_admin.eq(i16::from(admin))).execute(conn)
}

pub fn ban(conn: &mut DbConnection, name_key: &str, at: i64) -> QueryResult<usize> {
    diesel::update(users::table.find(name_key)).set(users::banned_at.eq(Some(at))).execute(conn)
}

/// Lifts a ban; answers 0 for an account that is not banned (or none).
pub fn unban(conn: &mut DbConnection, name_key: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(name_key).filter(users::banned_at.is_not_null()))
        .set(users::banned_at.eq(None::<i64>))
        .execute(conn)
}

/// Banned accounts by name, with when (Unix ms), newest first.
pub fn bans(conn: &mut DbConnection) -> QueryResult<Vec<(String, i64)>> {
    let rows: Vec<(String, Option<i64>)> = users::table
        .filter(users::banned_at.is_not_null())
        .select((users::name, users::banned_at))
        .order(users::banned_at.desc())
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(name, at)| Some((name, at?))).collect())
}

/// What the audit log keeps of a message about to be deleted: its author
/// and text (at most `AUDIT_TEXT_CHARS` of it; in an end-to-end encrypted
/// room the text is not readable here, and the log says so).
pub fn message_for_audit(conn: &mut DbConnection, room: &str, id: i64) -> QueryResult<Option<String>> {
    const AUDIT_TEXT_CHARS: usize = 500;
    let found: Option<(String, String)> =
        messages::table.find((room, id)).select((messages::author, messages::body)).first(conn).optional()?;
    // By the room, not by the text's shape: a plain room's text may look
    // like an envelope, and is still what its author wrote.
    let encrypted = found.is_some() && super::rooms::encryption_of(conn, room)?.flatten().is_some();
    Ok(found.map(|(author, body)| {
        let text = if encrypted {
            "(end-to-end encrypted)".to_string()
        } else {
            let mut shown: String = body.chars().take(AUDIT_TEXT_CHARS).collect();
            if shown.len() < body.len() {
                shown.push('…');
            }
            format!("{shown:?}")
        };
        format!("by {author}: {text}")
    }))
}

pub fn delete_message(conn: &mut DbConnection, room: &str, id: i64) -> QueryResult<usize> {
    super::revisions::delete(conn, room, id)
}

pub fn set_room_closed(conn: &mut DbConnection, room: &str, closed_at: Option<i64>) -> QueryResult<usize> {
    diesel::update(rooms::table.find(room)).set(rooms::closed_at.eq(closed_at)).execute(conn)
}

pub fn closed_rooms(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    rooms::table.filter(rooms::closed_at.is_not_null()).select(rooms::name).load(conn)
}

pub fn set_private(conn: &mut DbConnection, room: &str, private: bool) -> QueryResult<usize> {
    diesel::update(rooms::table.find(room)).set(rooms::private.eq(i16::from(private))).execute(conn)
}

#[derive(Debug, Insertable)]
#[diesel(table_name = room_invites)]
pub struct NewInvite<'a> {
    pub room: &'a str,
    pub user_key: &'a str,
    pub invited_by: &'a str,
    pub created_at: i64,
}

pub fn invite(conn: &mut DbConnection, invite: &NewInvite<'_>) -> QueryResult<usize> {
    insert_ignoring_existing!(conn, room_invites::table, invite)
}

/// Every private room with the accounts invited to it.
pub fn private_rooms(conn: &mut DbConnection) -> QueryResult<Vec<(String, Vec<String>)>> {
    let names: Vec<String> = rooms::table.filter(rooms::private.ne(0)).select(rooms::name).load(conn)?;
    let invites: Vec<(String, String)> =
        room_invites::table.select((room_invites::room, room_invites::user_key)).load(conn)?;
    Ok(names
        .into_iter()
        .map(|name| {
            let keys = invites.iter().filter(|(room, _)| *room == name).map(|(_, key)| key.clone()).collect();
            (name, keys)
        })
        .collect())
}

/// Mutes `user_key` in `room` until `until` (Unix ms), replacing any mute.
pub fn mute(conn: &mut DbConnection, room: &str, user_key: &str, until: i64) -> QueryResult<usize> {
    diesel::delete(mutes::table.find((room, user_key))).execute(conn)?;
    diesel::insert_into(mutes::table)
        .values((mutes::room.eq(room), mutes::user_key.eq(user_key), mutes::until.eq(until)))
        .execute(conn)
}

/// Mutes still running at `now`: (room, user key, until).
pub fn live_mutes(conn: &mut DbConnection, now: i64) -> QueryResult<Vec<(String, String, i64)>> {
    mutes::table.filter(mutes::until.gt(now)).select((mutes::room, mutes::user_key, mutes::until)).load(conn)
}

/// One row of `room_bans`: someone kept out of a room until `until`.
#[derive(Debug, Clone, Queryable)]
pub struct KeptOutRow {
    pub room: String,
    /// `name:<key>`, `guest:<id>` or `addr:<ip>`.
    pub target: String,
    pub name_key: String,
    pub user_name: String,
    pub until: i64,
}

/// Keeps `targets` (see `KeptOutRow::target`) of the person `name_key`
/// out of `room` until `until`, or longer when already so: a kick never
/// shortens a ban.
pub fn keep_out(
    conn: &mut DbConnection,
    room: &str,
    name_key: &str,
    user_name: &str,
    targets: &[String],
    until: i64,
) -> QueryResult<usize> {
    let mut written = 0;
    for target in targets {
        let row = room_bans::table.find((room, target, name_key));
        let until = row.select(room_bans::until).first::<i64>(conn).optional()?.map_or(until, |kept| kept.max(until));
        diesel::delete(row).execute(conn)?;
        written += diesel::insert_into(room_bans::table)
            .values((
                room_bans::room.eq(room),
                room_bans::target.eq(target),
                room_bans::name_key.eq(name_key),
                room_bans::user_name.eq(user_name),
                room_bans::until.eq(until),
            ))
            .execute(conn)?;
    }
    Ok(written)
}

/// Lets the person `name_key` into `room` again, by every target.
pub fn let_in(conn: &mut DbConnection, room: &str, name_key: &str) -> QueryResult<usize> {
    diesel::delete(room_bans::table.filter(room_bans::room.eq(room)).filter(room_bans::name_key.eq(name_key)))
        .execute(conn)
}

/// Everyone still kept out of a room at `now`.
pub fn kept_out(conn: &mut DbConnection, now: i64) -> QueryResult<Vec<KeptOutRow>> {
    room_bans::table
        .filter(room_bans::until.gt(now))
        .order((room_bans::room, room_bans::name_key))
        .select((room_bans::room, room_bans::target, room_bans::name_key, room_bans::user_name, room_bans::until))
        .load(conn)
}
