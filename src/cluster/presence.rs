//! Who is where, across the cluster. Each node keeps its members in the
//! rooms' members hashes and announces changes as `Event::Presence`; every
//! node keeps a roster of the others' from those events, read whole from
//! Redis whenever it (re)subscribes. A node renews its `alive` key every
//! `BEAT`; once it has expired (`ALIVE_FOR`), another node takes the dead
//! node's members out of every room and announces their leaving: a node
//! that dies leaves everyone's lists within `ALIVE_FOR + BEAT`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use redis::AsyncCommands;

use super::wire::{Event, RosterEntry};
use super::{unreachable, Inner, News};
use crate::error::ChatError;

pub const BEAT: Duration = Duration::from_secs(3);
pub const ALIVE_FOR: Duration = Duration::from_secs(10);

/// Every room's members on every node: room, then `(node, session, entry)`.
pub type Roster = HashMap<String, Vec<(String, u64, RosterEntry)>>;

pub(super) fn spawn(inner: Arc<Inner>) {
    actix::spawn(async move {
        // A node restarted under the same name (`--node-name`) within the
        // expiry: what its previous run left is cleared first.
        if let Err(e) = reap(&inner, &inner.settings.node).await {
            crate::warn_throttled!("presence: {e}");
        }
        loop {
            if let Err(e) = beat(&inner).await {
                crate::warn_throttled!("presence: {e}");
            }
            actix_web::rt::time::sleep(BEAT).await;
        }
    });
}

/// Says this node is alive, and clears up after nodes that are not.
async fn beat(inner: &Inner) -> Result<(), ChatError> {
    let mut redis = inner.redis.clone();
    let (keys, me) = (&inner.keys, inner.settings.node.as_str());
    let alive_ms = ALIVE_FOR.as_millis() as u64;
    let nodes: Vec<String> = redis::pipe()
        .pset_ex(keys.alive(me), 1, alive_ms)
        .ignore()
        .sadd(keys.nodes(), me)
        .ignore()
        .smembers(keys.nodes())
        .query_async::<(Vec<String>,)>(&mut redis)
        .await
        .map_err(unreachable)?
        .0;
    for node in nodes.iter().filter(|n| *n != me) {
        let alive: bool = redis.exists(keys.alive(node)).await.map_err(unreachable)?;
        if !alive {
            reap(inner, node).await?;
        }
    }
    Ok(())
}

/// Takes a dead node's members out of every room, telling every node.
async fn reap(inner: &Inner, dead: &str) -> Result<(), ChatError> {
    let mut redis = inner.redis.clone();
    let keys = &inner.keys;
    let locked: bool = redis::cmd("SET")
        .arg(keys.reaper_lock(dead))
        .arg(&inner.settings.node)
        .arg("NX")
        .arg("PX")
        .arg(ALIVE_FOR.as_millis() as u64)
        .query_async::<Option<String>>(&mut redis)
        .await
        .map_err(unreachable)?
        .is_some();
    if !locked {
        return Ok(());
    }
    let rooms: Vec<String> = redis.smembers(keys.node_rooms(dead)).await.map_err(unreachable)?;
    let prefix = format!("{dead}:");
    let mut gone = 0;
    for room in rooms {
        let members: HashMap<String, String> = redis.hgetall(keys.members(&room)).await.map_err(unreachable)?;
        for field in members.keys().filter(|f| f.starts_with(&prefix)) {
            let Ok(session) = field[prefix.len()..].parse::<u64>() else { continue };
            let event = Event::Presence { room: room.clone(), session, member: None, node: dead.to_string() };
            redis::pipe()
                .hdel(keys.members(&room), field)
                .ignore()
                .publish(keys.events_channel(), event.encode())
                .ignore()
                .query_async::<()>(&mut redis)
                .await
                .map_err(unreachable)?;
            gone += 1;
        }
    }
    redis::pipe()
        .del(keys.node_rooms(dead))
        .ignore()
        .srem(keys.nodes(), dead)
        .ignore()
        .query_async::<()>(&mut redis)
        .await
        .map_err(unreachable)?;
    if gone > 0 {
        log::warn!("presence: node {dead} stopped answering; {gone} of its connections left their rooms");
    }
    Ok(())
}

/// Every room's members as Redis has them, for a node that (re)subscribed.
pub(super) async fn roster(inner: &Inner) -> Result<Roster, ChatError> {
    let mut redis = inner.redis.clone();
    let rooms: Vec<String> = redis.smembers(inner.keys.present()).await.map_err(unreachable)?;
    let mut roster = Roster::new();
    for room in rooms {
        let members: HashMap<String, String> = redis.hgetall(inner.keys.members(&room)).await.map_err(unreachable)?;
        if members.is_empty() {
            let _: redis::RedisResult<()> = redis.srem(inner.keys.present(), &room).await;
            continue;
        }
        let entries = members
            .into_iter()
            .filter_map(|(field, value)| {
                let (node, session) = field.rsplit_once(':')?;
                let entry: RosterEntry = serde_json::from_str(&value).ok()?;
                Some((node.to_string(), session.parse().ok()?, entry))
            })
            .collect();
        roster.insert(room, entries);
    }
    Ok(roster)
}

/// Sends the roster to the ChatServer.
pub(super) async fn send_roster(inner: &Inner, news: &Recipient<News>) {
    match roster(inner).await {
        Ok(roster) => news.do_send(News::Roster(roster)),
        Err(e) => crate::warn_throttled!("presence: cannot read the roster: {e}"),
    }
}
