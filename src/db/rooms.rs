//! The `rooms` table: rooms, their epochs, and the highest id each gave out.

use diesel::prelude::*;

use super::schema::rooms;
use super::DbConnection;

#[derive(Debug, Insertable)]
#[diesel(table_name = rooms)]
pub struct NewRoom<'a> {
    pub name: &'a str,
    pub created_at: i64,
    pub created_by: Option<&'a str>,
    pub epoch: &'a str,
}

/// A room as the ChatServer starts from it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = rooms)]
pub struct SavedRoom {
    pub name: String,
    pub epoch: String,
    pub last_id: i64,
}

/// Creates rooms that do not exist yet; a room keeps its first creator.
pub fn insert_all(conn: &mut DbConnection, batch: &[NewRoom<'_>]) -> QueryResult<usize> {
    batch.chunks(5000).map(|chunk| insert_ignoring_existing!(conn, rooms::table, chunk)).sum()
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<SavedRoom>> {
    rooms::table.select(SavedRoom::as_select()).load(conn)
}

/// Records that `room` gave out ids up to `id`; never lowers it.
pub fn raise_last_id(conn: &mut DbConnection, room: &str, id: i64) -> QueryResult<usize> {
    diesel::update(rooms::table.find(room).filter(rooms::last_id.lt(id))).set(rooms::last_id.eq(id)).execute(conn)
}

pub fn set_epoch(conn: &mut DbConnection, room: &str, epoch: &str) -> QueryResult<usize> {
    diesel::update(rooms::table.find(room)).set(rooms::epoch.eq(epoch)).execute(conn)
}

/// Gives every room the same new epoch: nothing about their ids is proven.
pub fn renew_all_epochs(conn: &mut DbConnection, epoch: &str) -> QueryResult<usize> {
    diesel::update(rooms::table).set(rooms::epoch.eq(epoch)).execute(conn)
}

/// A room's last id, if it exists.
pub fn last_id(conn: &mut DbConnection, room: &str) -> QueryResult<Option<i64>> {
    rooms::table.find(room).select(rooms::last_id).first(conn).optional()
}
