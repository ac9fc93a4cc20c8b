//! The `users` and `sessions` tables.

use diesel::prelude::*;

use super::schema::{sessions, users};
use super::DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub name_key: String,
    pub name: String,
    pub password_hash: String,
    pub is_admin: i16,
    pub banned_at: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub name_key: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
    pub is_admin: i16,
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub user_key: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Creates the user unless the name is taken; says whether it was created.
pub fn insert_user(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<bool> {
    Ok(insert_ignoring_existing!(conn, users::table, user)? == 1)
}

pub fn find_user(conn: &mut DbConnection, name_key: &str) -> QueryResult<Option<UserRow>> {
    users::table.find(name_key).select(UserRow::as_select()).first(conn).optional()
}

pub fn set_password(conn: &mut DbConnection, name_key: &str, hash: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(name_key)).set(users::password_hash.eq(hash)).execute(conn)
}

pub fn banned_keys(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    users::table.filter(users::banned_at.is_not_null()).select(users::name_key).load(conn)
}

/// Ends every login of an account (used when its password is reset).
pub fn revoke_all_sessions(conn: &mut DbConnection, user_key: &str, now: i64) -> QueryResult<usize> {
    diesel::update(sessions::table.filter(sessions::user_key.eq(user_key)).filter(sessions::revoked_at.is_null()))
        .set(sessions::revoked_at.eq(Some(now)))
        .execute(conn)
}

pub fn unban(conn: &mut DbConnection, user_key: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(user_key)).set(users::banned_at.eq(None::<i64>)).execute(conn)
}

/// Every registered name, as it was registered.
pub fn all_names(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    users::table.select(users::name).load(conn)
}

pub fn insert_session(conn: &mut DbConnection, session: &NewSession<'_>) -> QueryResult<usize> {
    diesel::insert_into(sessions::table).values(session).execute(conn)
}

/// The user of a session that is neither revoked nor expired at `now`.
pub fn live_session_user(conn: &mut DbConnection, id_hash: &str, now: i64) -> QueryResult<Option<UserRow>> {
    let user_key: Option<String> = sessions::table
        .find(id_hash)
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select(sessions::user_key)
        .first(conn)
        .optional()?;
    match user_key {
        Some(key) => find_user(conn, &key),
        None => Ok(None),
    }
}

pub fn revoke_session(conn: &mut DbConnection, id_hash: &str, now: i64) -> QueryResult<usize> {
    diesel::update(sessions::table.find(id_hash)).set(sessions::revoked_at.eq(Some(now))).execute(conn)
}
