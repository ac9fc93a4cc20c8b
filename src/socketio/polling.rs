//! HTTP long-polling, Engine.IO's first transport: the client `POST`s
//! packets and keeps one `GET` waiting for the server's. What one polling
//! client has in flight lives here, shared between the session that owns
//! the connection and the HTTP requests that carry it (which may run on
//! other threads).
//!
//! Everything is bounded: packets waiting for the next `GET` (a client
//! that stops polling is disconnected once they pass the session's write
//! bound, or once it stays silent past the ping timeout), and packets
//! posted faster than the session takes them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::packet::join_payload;
use crate::ws::Socket;

/// Why a polling request is refused; each maps to an Engine.IO error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollRefused {
    /// No such session, or it ended (code 1).
    UnknownSession,
    /// A second `GET` while one waits, a poll after the upgrade, or a body
    /// that is not Engine.IO packets (code 3).
    BadRequest,
}

/// The polling sessions of this process, by sid.
#[derive(Default)]
pub struct PollingSessions {
    by_sid: Mutex<HashMap<String, Arc<Polling>>>,
}

impl PollingSessions {
    pub fn insert(&self, polling: Arc<Polling>) {
        lock(&self.by_sid).insert(polling.sid.clone(), polling);
    }

    pub fn get(&self, sid: &str) -> Option<Arc<Polling>> {
        lock(&self.by_sid).get(sid).cloned()
    }

    pub fn remove(&self, sid: &str) {
        lock(&self.by_sid).remove(sid);
    }

    /// Sessions held (for tests and figures).
    pub fn len(&self) -> usize {
        lock(&self.by_sid).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One polling client's packets in flight.
pub struct Polling {
    pub sid: String,
    /// The login (its token's hash) of the account the session is, which
    /// every request of it must carry; `None` for a guest.
    pub owner: Option<String>,
    inner: Mutex<Inner>,
    /// Wakes the waiting `GET`.
    ready: Notify,
}

struct Inner {
    /// Encoded packets for the next `GET`, and their bytes.
    outgoing: Vec<String>,
    outgoing_bytes: usize,
    /// Packets posted and not yet taken by the session, and their bytes.
    incoming: VecDeque<String>,
    incoming_bytes: usize,
    /// A `GET` is waiting.
    polling: bool,
    /// Wakes the session, after a post or an upgrade.
    session: Option<Waker>,
    /// When the client last posted (a pong at least once per ping).
    last_post: Instant,
    /// A WebSocket handed over for the upgrade, not yet taken.
    upgrade: Option<Socket>,
    /// The client is probing a WebSocket: polls are answered at once, so
    /// that the client can pause polling and move.
    upgrading: bool,
    /// The connection moved to the WebSocket: polls are over.
    upgraded: bool,
    /// The session ended: what is left goes out with the next `GET`.
    closed: bool,
}

/// Takes a lock even if another thread panicked holding it: the data is
/// queues of strings, valid at every step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Polling {
    pub fn new(sid: String, owner: Option<String>) -> Self {
        Self {
            sid,
            owner,
            inner: Mutex::new(Inner {
                outgoing: Vec::new(),
                outgoing_bytes: 0,
                incoming: VecDeque::new(),
                incoming_bytes: 0,
                polling: false,
                session: None,
                last_post: Instant::now(),
                upgrade: None,
                upgrading: false,
                upgraded: false,
                closed: false,
            }),
            ready: Notify::new(),
        }
    }

    // What the HTTP requests do.

    /// A `GET`: the packets waiting, joined with the record separator, as
    /// soon as there are any; a noop packet after `wait` without any (the
    /// server pings more often than that, so only a stalled session gets
    /// one).
    pub async fn poll(&self, wait: Duration) -> Result<String, PollRefused> {
        {
            let mut inner = lock(&self.inner);
            if inner.polling {
                // Engine.IO allows one GET at a time: a second one means a
                // confused client, which the specification disconnects.
                inner.closed = true;
                wake(&mut inner);
                drop(inner);
                self.ready.notify_one();
                return Err(PollRefused::BadRequest);
            }
            if inner.upgraded {
                return Err(PollRefused::BadRequest);
            }
            if inner.outgoing.is_empty() && inner.closed {
                return Err(PollRefused::UnknownSession);
            }
            inner.polling = true;
        }
        let _done = Waiting(self);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            {
                let mut inner = lock(&self.inner);
                if !inner.outgoing.is_empty() || inner.closed || inner.upgrading || inner.upgraded {
                    return Ok(take_outgoing(&mut inner));
                }
            }
            if tokio::time::timeout_at(deadline, self.ready.notified()).await.is_err() {
                return Ok("6".into());
            }
        }
    }

    /// A `POST`'s packets, for the session. More than `bound` bytes left
    /// untaken means a client that posts faster than it is served: the
    /// session ends, as for a slow consumer.
    pub fn post(&self, packets: Vec<String>, bound: usize) -> Result<(), PollRefused> {
        let mut inner = lock(&self.inner);
        if inner.closed {
            return Err(PollRefused::UnknownSession);
        }
        if inner.upgraded {
            return Err(PollRefused::BadRequest);
        }
        inner.last_post = Instant::now();
        let bytes: usize = packets.iter().map(|p| cost(p)).sum();
        if inner.incoming_bytes + bytes > bound {
            crate::warn_throttled!("polling session {}: too much posted and not yet handled; disconnecting", self.sid);
            inner.closed = true;
        } else {
            inner.incoming_bytes += bytes;
            inner.incoming.extend(packets);
        }
        wake(&mut inner);
        Ok(())
    }

    /// A WebSocket opened to upgrade this session. False when the session
    /// is over or already upgrading: the socket is dropped.
    pub fn offer_upgrade(&self, socket: Socket) -> bool {
        let mut inner = lock(&self.inner);
        if inner.closed || inner.upgraded || inner.upgrade.is_some() {
            return false;
        }
        inner.upgrade = Some(socket);
        wake(&mut inner);
        true
    }

    // What the session does.

    /// Queues an encoded packet for the next `GET`. False when more than
    /// `bound` bytes would wait: the client stopped polling.
    /// One packet is always taken (a `joined` with a long history may be
    /// larger than the bound on its own).
    pub fn push(&self, packet: String, bound: usize) -> bool {
        let mut inner = lock(&self.inner);
        if !inner.outgoing.is_empty() && inner.outgoing_bytes + cost(&packet) > bound {
            return false;
        }
        inner.outgoing_bytes += cost(&packet);
        inner.outgoing.push(packet);
        drop(inner);
        self.ready.notify_one();
        true
    }

    /// The next packet posted, if any; otherwise `waker` is woken when one is.
    pub fn next_incoming(&self, waker: &Waker) -> Option<String> {
        let mut inner = lock(&self.inner);
        match inner.incoming.pop_front() {
            Some(packet) => {
                inner.incoming_bytes -= cost(&packet);
                Some(packet)
            }
            None => {
                if !inner.session.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    inner.session = Some(waker.clone());
                }
                None
            }
        }
    }

    /// The WebSocket offered for the upgrade, if one was.
    pub fn take_upgrade(&self) -> Option<Socket> {
        lock(&self.inner).upgrade.take()
    }

    /// The client probed the WebSocket (or the probe failed): the waiting
    /// `GET`, and any that comes meanwhile, are answered at once.
    pub fn set_upgrading(&self, upgrading: bool) {
        lock(&self.inner).upgrading = upgrading;
        self.ready.notify_one();
    }

    /// The connection moved to the WebSocket: the packets no `GET` took yet,
    /// to go out there, and those posted that the session has not taken
    /// yet (the client posts, and only then says it moved), to be handled
    /// before anything from the WebSocket. A waiting `GET` is answered with
    /// a noop; later polls and posts are refused.
    pub fn finish_upgrade(&self) -> (Vec<String>, VecDeque<String>) {
        let mut inner = lock(&self.inner);
        inner.upgraded = true;
        inner.outgoing_bytes = 0;
        inner.incoming_bytes = 0;
        let left = (std::mem::take(&mut inner.outgoing), std::mem::take(&mut inner.incoming));
        drop(inner);
        self.ready.notify_one();
        left
    }

    /// The client fell too far behind: what waits for it is dropped (it is
    /// not fetching it anyway), and the next poll gets the close.
    pub fn abandon(&self) {
        let mut inner = lock(&self.inner);
        inner.outgoing = vec!["1".into()];
        inner.outgoing_bytes = 1;
        inner.closed = true;
        drop(inner);
        self.ready.notify_one();
    }

    /// The session ended, gave up on the client, or the client broke the
    /// rules: the waiting `GET` and the session both learn of it at once.
    pub fn close(&self) {
        let mut inner = lock(&self.inner);
        inner.closed = true;
        wake(&mut inner);
        drop(inner);
        self.ready.notify_one();
    }

    /// How long the client has not posted.
    pub fn silent_for(&self) -> Duration {
        lock(&self.inner).last_post.elapsed()
    }

    /// The client broke the rules (a second `GET`), or the post bound was
    /// passed: the session should end.
    pub fn closed(&self) -> bool {
        lock(&self.inner).closed
    }
}

/// What a queued packet costs: its bytes, and the string that holds them
/// (a body of many tiny packets is not cheap).
fn cost(packet: &str) -> usize {
    packet.len() + std::mem::size_of::<String>()
}

fn wake(inner: &mut Inner) {
    if let Some(waker) = inner.session.take() {
        waker.wake();
    }
}

/// An answer for a `GET`: what waits, or noop if nothing (during or after
/// an upgrade).
fn take_outgoing(inner: &mut Inner) -> String {
    if inner.outgoing.is_empty() {
        return "6".into();
    }
    inner.outgoing_bytes = 0;
    join_payload(&std::mem::take(&mut inner.outgoing))
}

/// Ends a `GET`'s wait, however it ends (answered, or dropped because its
/// client went away), so the next one may come.
struct Waiting<'a>(&'a Polling);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        lock(&self.0.inner).polling = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_get_takes_what_waits_joined_and_a_second_get_is_refused() {
        let polling = Arc::new(Polling::new("s".into(), None));
        assert!(polling.push("42[\"a\",{}]".into(), 1024));
        assert!(polling.push("2".into(), 1024));
        assert_eq!(polling.poll(Duration::from_secs(1)).await, Ok("42[\"a\",{}]\u{1e}2".into()));

        let waiting = tokio::spawn({
            let polling = polling.clone();
            async move { polling.poll(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(polling.poll(Duration::from_secs(1)).await, Err(PollRefused::BadRequest));
        assert!(polling.closed(), "two GETs at once end the session");
        assert_eq!(waiting.await.unwrap(), Ok("6".into()));
        assert_eq!(polling.poll(Duration::from_secs(1)).await, Err(PollRefused::UnknownSession));
    }

    #[tokio::test]
    async fn what_waits_is_bounded() {
        let polling = Polling::new("s".into(), None);
        assert!(polling.push("x".repeat(600), 1000));
        assert!(!polling.push("x".repeat(600), 1000), "a client that stops polling is not buffered forever");
        assert_eq!(polling.post(vec!["4".repeat(800)], 1000), Ok(()));
        assert!(!polling.closed());
        assert_eq!(polling.post(vec!["4".repeat(800)], 1000), Ok(()));
        assert!(polling.closed(), "posting faster than served ends the session");
    }
}
