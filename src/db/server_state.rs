//! The `server_state` table: whether the process that last used this
//! database stopped cleanly, which is what lets the next one trust that
//! every id handed out is in the log.

use diesel::prelude::*;

use super::schema::server_state;
use super::DbConnection;

const ROW: i16 = 1;

/// Marks a process as running from `now`; answers whether the one before
/// it stopped cleanly (a first start counts as clean: nothing came before).
pub fn begin_run(conn: &mut DbConnection, now: i64) -> QueryResult<bool> {
    let running: Option<i16> = server_state::table.find(ROW).select(server_state::running).first(conn).optional()?;
    let values =
        (server_state::running.eq(1), server_state::started_at.eq(now), server_state::stopped_at.eq(None::<i64>));
    match running {
        Some(running) => {
            diesel::update(server_state::table.find(ROW)).set(values).execute(conn)?;
            Ok(running == 0)
        }
        None => {
            diesel::insert_into(server_state::table).values((server_state::id.eq(ROW), values)).execute(conn)?;
            Ok(true)
        }
    }
}

/// Marks the run as ended cleanly: every id handed out is in the log.
pub fn end_run(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    diesel::update(server_state::table.find(ROW))
        .set((server_state::running.eq(0), server_state::stopped_at.eq(Some(now))))
        .execute(conn)
}
