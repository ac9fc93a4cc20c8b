//! The `rooms` table.

use diesel::prelude::*;

use super::schema::rooms;
use super::DbConnection;

#[derive(Debug, Insertable)]
#[diesel(table_name = rooms)]
pub struct NewRoom<'a> {
    pub name: &'a str,
    pub created_at: i64,
    pub created_by: Option<&'a str>,
}

/// Creates rooms that do not exist yet; a room keeps its first creator.
pub fn insert_all(conn: &mut DbConnection, batch: &[NewRoom<'_>]) -> QueryResult<usize> {
    batch.chunks(5000).map(|chunk| insert_ignoring_existing!(conn, rooms::table, chunk)).sum()
}

pub fn all_names(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    rooms::table.select(rooms::name).load(conn)
}
