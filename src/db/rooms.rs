//! The `rooms` table: rooms, their epochs, and the highest id each gave out.

use diesel::prelude::*;

use super::schema::rooms;
use super::DbConnection;
use crate::domain::Encryption;

#[derive(Debug, Insertable)]
#[diesel(table_name = rooms)]
pub struct NewRoom<'a> {
    pub name: &'a str,
    pub created_at: i64,
    pub created_by: Option<&'a str>,
    pub epoch: &'a str,
    /// `KeySource::as_str` of an encrypted room; `None` for a plain one.
    pub encryption: Option<&'a str>,
    pub key_salt: Option<&'a str>,
}

/// A room as the ChatServer starts from it.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = rooms)]
pub struct SavedRoom {
    pub name: String,
    pub epoch: String,
    pub last_id: i64,
    pub encryption: Option<String>,
    pub key_salt: Option<String>,
}

impl SavedRoom {
    pub fn encryption(&self) -> Option<Encryption> {
        Encryption::from_columns(self.encryption.as_deref(), self.key_salt.clone())
    }
}

/// Creates rooms that do not exist yet; a room keeps its first creator.
/// A room the batch says is encrypted becomes so if its row says plain: in
/// a cluster, a node that took it for a new, plain room may have written it
/// first (Redis decides for every node; encryption is never undone).
pub fn insert_all(conn: &mut DbConnection, batch: &[NewRoom<'_>]) -> QueryResult<usize> {
    let inserted = batch.chunks(5000).map(|chunk| insert_ignoring_existing!(conn, rooms::table, chunk)).sum();
    for room in batch.iter().filter(|r| r.encryption.is_some()) {
        diesel::update(rooms::table.find(room.name).filter(rooms::encryption.is_null()))
            .set((rooms::encryption.eq(room.encryption), rooms::key_salt.eq(room.key_salt)))
            .execute(conn)?;
    }
    inserted
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

/// Whether `room` exists, and how it is encrypted if it is.
pub fn encryption_of(conn: &mut DbConnection, room: &str) -> QueryResult<Option<Option<Encryption>>> {
    let columns = rooms::table.find(room).select((rooms::encryption, rooms::key_salt)).first(conn).optional()?;
    Ok(columns.map(|(key, salt): (Option<String>, Option<String>)| Encryption::from_columns(key.as_deref(), salt)))
}

/// A room's last id, if it exists.
pub fn last_id(conn: &mut DbConnection, room: &str) -> QueryResult<Option<i64>> {
    rooms::table.find(room).select(rooms::last_id).first(conn).optional()
}
