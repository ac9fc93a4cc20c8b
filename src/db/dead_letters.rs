//! The `dead_letters` table: writes the database refused on their own,
//! kept aside (with the reason) so that the rest of the log goes on.

use diesel::prelude::*;

use super::schema::dead_letters;
use super::DbConnection;

#[derive(Debug, Insertable)]
#[diesel(table_name = dead_letters)]
pub struct NewDeadLetter<'a> {
    pub id: &'a str,
    pub at: i64,
    pub room: &'a str,
    pub message_id: Option<i64>,
    /// What was refused, as JSON.
    pub what: &'a str,
    pub error: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = dead_letters)]
pub struct DeadLetter {
    pub at: i64,
    pub room: String,
    pub message_id: Option<i64>,
    pub what: String,
    pub error: String,
}

pub fn insert(conn: &mut DbConnection, letter: &NewDeadLetter<'_>) -> QueryResult<usize> {
    diesel::insert_into(dead_letters::table).values(letter).execute(conn)
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    dead_letters::table.count().get_result(conn)
}

/// The latest, newest first.
pub fn recent(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<DeadLetter>> {
    dead_letters::table
        .order((dead_letters::at.desc(), dead_letters::id.desc()))
        .limit(limit)
        .select(DeadLetter::as_select())
        .load(conn)
}
