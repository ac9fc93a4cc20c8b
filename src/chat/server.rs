//! `ChatServer`: the one actor that owns every room and its members.
//!
//! It never touches the database. It gives each accepted message its room's
//! next id, fans it out, keeps it in the room's in-memory tail and hands it
//! to the writer thread. Sessions get frames through a bounded mailbox: a
//! session that cannot keep up is disconnected, so one stalled reader costs
//! bounded memory and never slows anyone else down.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason};
use bytestring::ByteString;

use super::history::{HistoryPlan, HistoryQuery};
use super::message::{format_timestamp, now_ms};
use super::ChatMessage;
use crate::accounts::name_key;
use crate::db::writer::{Watermarks, WriteOp};
use crate::domain::{DisplayName, MessageText, Nonce, RoomName};
use crate::error::ChatError;
use crate::protocol::{MessageView, PresenceAction, ServerFrame};

pub type SessionId = u64;

/// Rooms one connection may be in at once.
pub const MAX_ROOMS_PER_SESSION: usize = 100;
/// How far back a resent nonce is looked for.
const RESEND_WINDOW: usize = 256;

/// What the ChatServer hands a session.
#[derive(Message)]
#[rtype(result = "()")]
pub enum Push {
    /// A ready frame, shared by every recipient.
    Frame(ByteString),
    /// The answer to `join_room`; the session completes the history.
    Joined { room: RoomName, members: Vec<DisplayName>, query: HistoryQuery, plan: HistoryPlan },
    /// The answer to `history`; the session completes it.
    History { room: RoomName, query: HistoryQuery, plan: HistoryPlan },
    /// Close the connection.
    Close(CloseReason),
}

/// A new connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session: SessionId,
    pub addr: Recipient<Push>,
    /// The account of a logged-in connection.
    pub account: Option<Account>,
}

/// Whose a logged-in connection is, as the ChatServer keeps it: bans, role
/// changes and logouts reach open connections through this.
#[derive(Debug, Clone)]
pub struct Account {
    pub key: String,
    pub admin: bool,
    /// The login (its token's hash).
    pub login: String,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub session: SessionId,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Join {
    pub session: SessionId,
    pub room: RoomName,
    pub name: DisplayName,
    pub who: Who,
    pub since: Option<i64>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub session: SessionId,
    pub room: RoomName,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Send {
    pub session: SessionId,
    pub room: RoomName,
    pub text: MessageText,
    pub nonce: Option<Nonce>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Typing {
    pub session: SessionId,
    pub room: RoomName,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct History {
    pub session: SessionId,
    pub room: RoomName,
    pub query: HistoryQuery,
}

/// A message from HTTP (`POST /store_message`), delivered like a live one.
#[derive(Message)]
#[rtype(result = "Result<Arc<ChatMessage>, ChatError>")]
pub struct Post {
    pub room: RoomName,
    pub user: DisplayName,
    pub text: MessageText,
}

/// Creates a room (a fresh code when no name is given). Answers the room and
/// whether it is new.
#[derive(Message)]
#[rtype(result = "Result<(RoomName, bool), ChatError>")]
pub struct CreateRoom {
    pub name: Option<RoomName>,
    pub created_by: Option<DisplayName>,
}

/// History for HTTP, which needs no membership; a private room's only for
/// those who may enter it (to others it does not exist).
#[derive(Message)]
#[rtype(result = "Result<HistoryPlan, ChatError>")]
pub struct PlanHistory {
    pub room: RoomName,
    pub query: HistoryQuery,
    /// Who asks: `None` for nobody in particular, else (who, admin).
    pub viewer: Option<(Who, bool)>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RoomSummary {
    pub name: RoomName,
    pub members: Vec<DisplayName>,
    pub private: bool,
    /// Each connection in the room and since when, oldest first (for admins).
    pub connections: Vec<ConnectionSummary>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionSummary {
    pub name: DisplayName,
    pub since: String,
}

/// The rooms that have members, busiest first; private ones only for admins.
#[derive(Message)]
#[rtype(result = "Vec<RoomSummary>")]
pub struct ListRooms {
    pub include_private: bool,
}

/// From the writer: these ids are durable.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Persisted(pub Watermarks);

/// Stop accepting, close every session, and let the writer drain and end.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Whose a name in a room is: an account's (the same in every tab), or one
/// guest connection's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    User(String),
    Guest(SessionId),
}

struct Member {
    name: DisplayName,
    /// `name_key(&name)`, kept so that checking a joiner's name against a
    /// big room allocates nothing per member.
    key: String,
    who: Who,
    admin: bool,
    /// When this connection joined the room (Unix ms).
    joined_at_ms: i64,
    addr: Recipient<Push>,
}

struct Room {
    /// The last id given out; the next message gets `last_id + 1`.
    last_id: i64,
    /// Every id up to here is in the database.
    persisted_id: i64,
    members: HashMap<SessionId, Member>,
    /// The latest messages, oldest first: everything not yet persisted, and
    /// while the room has members at least `tail_len` more.
    tail: VecDeque<Arc<ChatMessage>>,
}

impl Room {
    fn new(last_id: i64) -> Self {
        Self { last_id, persisted_id: last_id, members: HashMap::new(), tail: VecDeque::new() }
    }

    fn db_below(&self) -> i64 {
        self.tail.front().map_or(self.last_id + 1, |m| m.id)
    }

    /// Drops persisted messages beyond what the tail keeps; an empty room
    /// keeps only what is not persisted yet.
    fn trim(&mut self, tail_len: usize) {
        let keep = if self.members.is_empty() { 0 } else { tail_len };
        while self.tail.len() > keep && self.tail.front().is_some_and(|m| m.id <= self.persisted_id) {
            self.tail.pop_front();
        }
    }

    fn connections(&self) -> Vec<ConnectionSummary> {
        let mut members: Vec<_> = self.members.values().collect();
        members.sort_by_key(|m| m.joined_at_ms);
        members
            .into_iter()
            .map(|m| ConnectionSummary { name: m.name.clone(), since: format_timestamp(m.joined_at_ms) })
            .collect()
    }

    fn member_names(&self) -> Vec<DisplayName> {
        let mut names: Vec<_> = self.members.values().map(|m| m.name.clone()).collect();
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names
    }
}

struct SessionEntry {
    addr: Recipient<Push>,
    rooms: HashSet<RoomName>,
    account: Option<Account>,
}

pub struct ChatServer {
    rooms: HashMap<RoomName, Room>,
    sessions: HashMap<SessionId, SessionEntry>,
    /// `None` once shutting down.
    writer: Option<SyncSender<WriteOp>>,
    history_on_join: usize,
    tail_len: usize,
    /// Sessions whose mailbox overflowed during the current handler.
    overflowed: Vec<SessionId>,
    /// Rooms an admin closed: no one may join them.
    closed: HashSet<RoomName>,
    /// (room, name key) → muted until (Unix ms).
    mutes: HashMap<(RoomName, String), i64>,
    /// Invite-only rooms.
    private: HashSet<RoomName>,
    /// The accounts (name keys) invited to each room.
    invites: HashMap<RoomName, HashSet<String>>,
    /// Banned accounts: their connections are refused.
    banned: HashSet<String>,
}

/// What admins decided about rooms, as the log has it at start-up.
#[derive(Debug, Default)]
pub struct RoomPolicies {
    pub closed: Vec<RoomName>,
    /// Private rooms with the accounts invited to them.
    pub private: Vec<(RoomName, Vec<String>)>,
    /// Running mutes: (room, name key, until in Unix ms).
    pub mutes: Vec<(RoomName, String, i64)>,
    /// Banned accounts (name keys).
    pub banned: Vec<String>,
}

impl Actor for ChatServer {
    type Context = Context<Self>;
}

impl ChatServer {
    /// `known_rooms`: every room in the log with its highest message id.
    pub fn new(
        known_rooms: Vec<(RoomName, i64)>,
        policies: RoomPolicies,
        writer: SyncSender<WriteOp>,
        history_on_join: usize,
    ) -> Self {
        Self {
            closed: policies.closed.into_iter().collect(),
            private: policies.private.iter().map(|(room, _)| room.clone()).collect(),
            invites: policies.private.into_iter().map(|(room, keys)| (room, keys.into_iter().collect())).collect(),
            banned: policies.banned.into_iter().collect(),
            mutes: policies.mutes.into_iter().map(|(room, key, until)| ((room, key), until)).collect(),
            rooms: known_rooms.into_iter().map(|(name, last)| (name, Room::new(last))).collect(),
            sessions: HashMap::new(),
            writer: Some(writer),
            history_on_join,
            tail_len: history_on_join.max(100),
            overflowed: Vec::new(),
        }
    }

    /// Hands a session something; a full mailbox marks it a slow consumer.
    fn push(&mut self, session: SessionId, push: Push) {
        if let Some(entry) = self.sessions.get(&session) {
            offer(&mut self.overflowed, session, &entry.addr, push);
        }
    }

    fn push_error(&mut self, session: SessionId, err: &ChatError, room: Option<&RoomName>, nonce: Option<&str>) {
        let frame = ServerFrame::error(err, room.map(RoomName::as_str), nonce);
        self.push(session, Push::Frame(frame));
    }

    /// Sends `frame` to every member of `room` except `skip`.
    /// Sends `frame` to every member of `room` except `skip`.
    fn broadcast(&mut self, room: &RoomName, frame: &ByteString, skip: Option<SessionId>) {
        let Some(room) = self.rooms.get(room) else { return };
        for (id, member) in &room.members {
            if Some(*id) != skip {
                offer(&mut self.overflowed, *id, &member.addr, Push::Frame(frame.clone()));
            }
        }
    }

    /// Disconnects sessions that overflowed, which may in turn overflow others
    /// with the `leave` notices it sends.
    fn evict_overflowed(&mut self) {
        while let Some(session) = self.overflowed.pop() {
            log::warn!("session {session}: outbound queue full; disconnecting a slow consumer");
            self.disconnect(session, "slow consumer");
        }
    }

    /// Closes a connection (1008 with `why`) and takes it out of its rooms.
    /// `do_send` passes the mailbox bound, and a session's own writes never
    /// block it, so even a session behind on its mailbox acts on this.
    fn disconnect(&mut self, session: SessionId, why: &str) {
        let Some(entry) = self.sessions.remove(&session) else { return };
        let reason = CloseReason { code: CloseCode::Policy, description: Some(why.into()) };
        entry.addr.do_send(Push::Close(reason));
        for room in &entry.rooms {
            self.remove_member(session, room);
        }
    }

    fn remove_member(&mut self, session: SessionId, room_name: &RoomName) {
        let Some(room) = self.rooms.get_mut(room_name) else { return };
        let Some(member) = room.members.remove(&session) else { return };
        room.trim(self.tail_len);
        self.announce(room_name, &member.name, PresenceAction::Leave, None);
    }

    /// Tells the members of `room` (but `skip`) that `name` came or went.
    fn announce(&mut self, room: &RoomName, name: &DisplayName, action: PresenceAction, skip: Option<SessionId>) {
        self.announce_counting(room, name, action, skip, 0);
    }

    /// Like `announce`, with `uncounted` members of the map left out of the
    /// count that goes with it.
    fn announce_counting(
        &mut self,
        room: &RoomName,
        name: &DisplayName,
        action: PresenceAction,
        skip: Option<SessionId>,
        uncounted: usize,
    ) {
        let Some(count) = self.rooms.get(room).map(|r| r.members.len() - uncounted) else { return };
        let frame =
            ServerFrame::Presence { room: room.as_str(), user: name.as_str(), action, members: count }.to_text();
        self.broadcast(room, &frame, skip);
    }

    fn sessions_where(&self, matches: impl Fn(&Account) -> bool) -> Vec<SessionId> {
        self.sessions
            .iter()
            .filter(|(_, entry)| entry.account.as_ref().is_some_and(&matches))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether `who` may be in `room`: anyone in a public room; in a private
    /// one, admins and invited accounts.
    fn may_enter(&self, room: &RoomName, who: &Who, admin: bool) -> bool {
        if admin || !self.private.contains(room) {
            return true;
        }
        matches!(who, Who::User(key) if self.invites.get(room).is_some_and(|keys| keys.contains(key)))
    }

    /// How much longer `name` is muted in `room`, if at all.
    fn muted_until(&mut self, room: &RoomName, name: &DisplayName) -> Option<std::time::Duration> {
        let key = (room.clone(), name_key(name));
        let left = *self.mutes.get(&key)? - now_ms();
        if left <= 0 {
            self.mutes.remove(&key);
            return None;
        }
        Some(std::time::Duration::from_millis(left.unsigned_abs()))
    }

    fn member_name(&self, session: SessionId, room: &RoomName) -> Option<DisplayName> {
        Some(self.rooms.get(room)?.members.get(&session)?.name.clone())
    }

    fn ensure_room(&mut self, name: &RoomName, created_by: Option<&DisplayName>) -> Result<bool, ChatError> {
        if self.rooms.contains_key(name) {
            return Ok(false);
        }
        self.enqueue(WriteOp::CreateRoom {
            name: name.clone(),
            created_at_ms: now_ms(),
            created_by: created_by.map(|n| Arc::from(n.as_str())),
        })?;
        self.rooms.insert(name.clone(), Room::new(0));
        Ok(true)
    }

    fn enqueue(&self, op: WriteOp) -> Result<(), ChatError> {
        let writer = self.writer.as_ref().ok_or_else(shutting_down)?;
        writer.try_send(op).map_err(|e| match e {
            TrySendError::Full(_) => {
                ChatError::Unavailable("the message log is behind; nothing was stored, try again shortly".into())
            }
            TrySendError::Disconnected(_) => shutting_down(),
        })
    }

    /// Gives the message its id, queues it for the log and delivers it.
    /// Nothing is delivered unless the writer took it.
    fn accept(
        &mut self,
        room_name: &RoomName,
        author: &DisplayName,
        text: MessageText,
        nonce: Option<Nonce>,
        sender: Option<SessionId>,
    ) -> Result<Arc<ChatMessage>, ChatError> {
        let room = self.rooms.get(room_name).ok_or_else(|| unknown_room(room_name))?;
        if let (Some(sender), Some(nonce)) = (sender, &nonce) {
            // A client that lost its connection before its own copy arrived
            // sends again with the same nonce: answer with the stored one.
            // Names are not identities (two guests may share one), so only
            // the very same text from the same name counts as a resend.
            let earlier = room
                .tail
                .iter()
                .rev()
                .take(RESEND_WINDOW)
                .find(|m| {
                    m.nonce.as_deref() == Some(nonce.as_str())
                        && *m.author == *author.as_str()
                        && m.text == text.as_str()
                })
                .cloned();
            if let Some(earlier) = earlier {
                let own = ServerFrame::Message(MessageView::for_sender(&earlier)).to_text();
                self.push(sender, Push::Frame(own));
                return Ok(earlier);
            }
        }
        let message = Arc::new(ChatMessage {
            room: room_name.clone(),
            id: room.last_id + 1,
            author: Arc::from(author.as_str()),
            text: text.into_string(),
            created_at_ms: now_ms(),
            nonce: nonce.map(Nonce::into_string),
        });
        self.enqueue(WriteOp::Message(message.clone()))?;
        let room = self.rooms.get_mut(room_name).expect("looked up above");
        room.last_id = message.id;
        room.tail.push_back(message.clone());
        room.trim(self.tail_len);

        let public = ServerFrame::Message(MessageView::public(&message)).to_text();
        match sender {
            Some(sender) if message.nonce.is_some() => {
                self.broadcast(room_name, &public, Some(sender));
                let own = ServerFrame::Message(MessageView::for_sender(&message)).to_text();
                self.push(sender, Push::Frame(own));
            }
            _ => self.broadcast(room_name, &public, None),
        }
        Ok(message)
    }

    fn is_member(&self, session: SessionId, room: &RoomName) -> bool {
        self.rooms.get(room).is_some_and(|r| r.members.contains_key(&session))
    }

    fn join(&mut self, msg: Join) -> Result<(), ChatError> {
        let Join { session, room: room_name, name, who, since } = msg;
        let Some(entry) = self.sessions.get(&session) else { return Ok(()) };
        let admin = entry.account.as_ref().is_some_and(|a| a.admin);
        if self.writer.is_none() {
            return Err(shutting_down());
        }
        if self.closed.contains(&room_name) {
            return Err(ChatError::RoomClosed(room_name.to_string()));
        }
        if !self.may_enter(&room_name, &who, admin) {
            return Err(ChatError::PrivateRoom(room_name.to_string()));
        }
        if entry.rooms.len() >= MAX_ROOMS_PER_SESSION && !entry.rooms.contains(&room_name) {
            return Err(ChatError::TooManyRooms(MAX_ROOMS_PER_SESSION));
        }
        let addr = entry.addr.clone();
        let key = name_key(&name);
        let taken = self
            .rooms
            .get(&room_name)
            .is_some_and(|room| room.members.iter().any(|(id, m)| *id != session && m.who != who && m.key == key));
        if taken {
            return Err(ChatError::InvalidName(format!("someone called '{name}' is already in this room")));
        }
        self.ensure_room(&room_name, Some(&name))?;
        let room = self.rooms.get_mut(&room_name).expect("ensured above");
        let member = Member { name: name.clone(), key, who, admin, joined_at_ms: now_ms(), addr };
        let previous = room.members.insert(session, member);
        let query = HistoryQuery::After { since: since.unwrap_or(0), limit: self.history_on_join };
        let plan = query.plan(&room_name, room.tail.iter(), room.db_below());
        let members = room.member_names();
        if let Some(entry) = self.sessions.get_mut(&session) {
            entry.rooms.insert(room_name.clone());
        }
        self.push(session, Push::Joined { room: room_name.clone(), members, query, plan });
        match previous {
            None => self.announce(&room_name, &name, PresenceAction::Join, Some(session)),
            // Joining again under another name: the others see the change.
            Some(old) if old.name != name => {
                // Counted as the old name leaving, then the new one joining.
                self.announce_counting(&room_name, &old.name, PresenceAction::Leave, Some(session), 1);
                self.announce(&room_name, &name, PresenceAction::Join, Some(session));
            }
            Some(_) => {}
        }
        Ok(())
    }
}

/// Delivers with `try_send`; a full mailbox puts the session on the list of
/// slow consumers to disconnect.
fn offer(overflowed: &mut Vec<SessionId>, session: SessionId, addr: &Recipient<Push>, push: Push) {
    if let Err(SendError::Full(_)) = addr.try_send(push) {
        overflowed.push(session);
    }
}

/// What every session is closed with when the server stops.
fn shutdown_close() -> CloseReason {
    CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) }
}

fn shutting_down() -> ChatError {
    ChatError::Unavailable("the server is shutting down".into())
}

fn unknown_room(room: &RoomName) -> ChatError {
    ChatError::UnknownRoom(room.to_string())
}

impl Handler<Connect> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        // A handshake that passed its login check just before a ban.
        let banned = msg.account.as_ref().is_some_and(|a| self.banned.contains(&a.key));
        if self.writer.is_none() && !banned {
            msg.addr.do_send(Push::Close(shutdown_close()));
        }
        let entry = SessionEntry { addr: msg.addr, rooms: HashSet::new(), account: msg.account };
        self.sessions.insert(msg.session, entry);
        if banned {
            self.disconnect(msg.session, "banned");
        }
    }
}

impl Handler<Disconnect> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        if let Some(entry) = self.sessions.remove(&msg.session) {
            for room in &entry.rooms {
                self.remove_member(msg.session, room);
            }
        }
        self.evict_overflowed();
    }
}

impl Handler<Join> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Join, _: &mut Context<Self>) {
        let (session, room) = (msg.session, msg.room.clone());
        if let Err(e) = self.join(msg) {
            self.push_error(session, &e, Some(&room), None);
        }
        self.evict_overflowed();
    }
}

impl Handler<Leave> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Leave, _: &mut Context<Self>) {
        if self.is_member(msg.session, &msg.room) {
            if let Some(entry) = self.sessions.get_mut(&msg.session) {
                entry.rooms.remove(&msg.room);
            }
            self.remove_member(msg.session, &msg.room);
            let frame = ServerFrame::Left { room: msg.room.as_str() }.to_text();
            self.push(msg.session, Push::Frame(frame));
        } else {
            self.push_error(msg.session, &ChatError::NotJoined(msg.room.to_string()), Some(&msg.room), None);
        }
        self.evict_overflowed();
    }
}

impl Handler<Send> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Send, _: &mut Context<Self>) {
        let Send { session, room, text, nonce } = msg;
        let author = self.member_name(session, &room);
        let nonce_text = nonce.as_ref().map(|n| n.as_str().to_string());
        let muted = author.as_ref().and_then(|a| self.muted_until(&room, a));
        let result = match author {
            Some(_) if muted.is_some() => Err(ChatError::Muted(muted.unwrap_or_default().as_secs() + 1)),
            Some(author) => self.accept(&room, &author, text, nonce, Some(session)).map(drop),
            None => Err(ChatError::NotJoined(room.to_string())),
        };
        if let Err(e) = result {
            self.push_error(session, &e, Some(&room), nonce_text.as_deref());
        }
        self.evict_overflowed();
    }
}

impl Handler<Typing> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Typing, _: &mut Context<Self>) {
        let name = self.member_name(msg.session, &msg.room);
        match name {
            Some(name) => {
                let frame = ServerFrame::Typing { room: msg.room.as_str(), user: name.as_str() }.to_text();
                self.broadcast(&msg.room, &frame, Some(msg.session));
            }
            None => self.push_error(msg.session, &ChatError::NotJoined(msg.room.to_string()), Some(&msg.room), None),
        }
        self.evict_overflowed();
    }
}

impl Handler<History> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: History, _: &mut Context<Self>) {
        let plan = self
            .rooms
            .get(&msg.room)
            .filter(|r| r.members.contains_key(&msg.session))
            .map(|r| msg.query.plan(&msg.room, r.tail.iter(), r.db_below()));
        match plan {
            Some(plan) => self.push(msg.session, Push::History { room: msg.room, query: msg.query, plan }),
            None => self.push_error(msg.session, &ChatError::NotJoined(msg.room.to_string()), Some(&msg.room), None),
        }
        self.evict_overflowed();
    }
}

impl Handler<Post> for ChatServer {
    type Result = Result<Arc<ChatMessage>, ChatError>;

    fn handle(&mut self, msg: Post, _: &mut Context<Self>) -> Self::Result {
        if self.closed.contains(&msg.room) {
            return Err(ChatError::RoomClosed(msg.room.to_string()));
        }
        let result = self.accept(&msg.room, &msg.user, msg.text, None, None);
        self.evict_overflowed();
        result
    }
}

impl Handler<CreateRoom> for ChatServer {
    type Result = Result<(RoomName, bool), ChatError>;

    fn handle(&mut self, msg: CreateRoom, _: &mut Context<Self>) -> Self::Result {
        if self.writer.is_none() {
            return Err(shutting_down());
        }
        let name = match msg.name {
            Some(name) => name,
            None => std::iter::repeat_with(RoomName::generate)
                .find(|code| !self.rooms.contains_key(code))
                .expect("an endless supply of codes has a free one"),
        };
        let created = self.ensure_room(&name, msg.created_by.as_ref())?;
        Ok((name, created))
    }
}

impl Handler<PlanHistory> for ChatServer {
    type Result = Result<HistoryPlan, ChatError>;

    fn handle(&mut self, msg: PlanHistory, _: &mut Context<Self>) -> Self::Result {
        let allowed = match &msg.viewer {
            Some((who, admin)) => self.may_enter(&msg.room, who, *admin),
            None => !self.private.contains(&msg.room),
        };
        let room = self.rooms.get(&msg.room).filter(|_| allowed).ok_or_else(|| unknown_room(&msg.room))?;
        Ok(msg.query.plan(&msg.room, room.tail.iter(), room.db_below()))
    }
}

impl Handler<ListRooms> for ChatServer {
    type Result = MessageResult<ListRooms>;

    fn handle(&mut self, msg: ListRooms, _: &mut Context<Self>) -> Self::Result {
        let mut rooms: Vec<_> = self
            .rooms
            .iter()
            .filter(|(name, room)| !room.members.is_empty() && (msg.include_private || !self.private.contains(*name)))
            .map(|(name, room)| RoomSummary {
                name: name.clone(),
                members: room.member_names(),
                private: self.private.contains(name),
                connections: room.connections(),
            })
            .collect();
        rooms.sort_by(|a, b| b.members.len().cmp(&a.members.len()).then_with(|| a.name.cmp(&b.name)));
        MessageResult(rooms)
    }
}

impl Handler<Persisted> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: Persisted, _: &mut Context<Self>) {
        for (name, id) in msg.0 {
            if let Some(room) = self.rooms.get_mut(&name) {
                room.persisted_id = room.persisted_id.max(id);
                room.trim(self.tail_len);
            }
        }
    }
}

impl Handler<Shutdown> for ChatServer {
    type Result = ();

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) {
        // Dropping the only sender lets the writer drain its queue and end.
        self.writer = None;
        for entry in self.sessions.values() {
            entry.addr.do_send(Push::Close(shutdown_close()));
        }
    }
}

/// Admin: takes everyone called `user` out of `room`; answers how many
/// connections that was.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Kick {
    pub room: RoomName,
    pub user: DisplayName,
}

/// Admin: closes a room (its members are sent out, no one may join) or
/// reopens it. Answers whether the room exists.
#[derive(Message)]
#[rtype(result = "Result<bool, ChatError>")]
pub struct SetClosed {
    pub room: RoomName,
    pub closed: bool,
}

/// Admin: removes a message from the room, its members' views and the log.
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub struct DeleteMessage {
    pub room: RoomName,
    pub id: i64,
}

/// Admin: ends every connection of a (now banned) account at once.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct EndConnections {
    pub user_key: String,
}

/// Admin: `user` may not send in `room` until `until_ms` (Unix ms).
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub struct Mute {
    pub room: RoomName,
    pub user: DisplayName,
    pub until_ms: i64,
}

impl Handler<Kick> for ChatServer {
    type Result = usize;

    fn handle(&mut self, msg: Kick, _: &mut Context<Self>) -> usize {
        let key = name_key(&msg.user);
        let kicked: Vec<SessionId> = self.rooms.get(&msg.room).map_or_else(Vec::new, |room| {
            room.members.iter().filter(|(_, m)| name_key(&m.name) == key).map(|(id, _)| *id).collect()
        });
        let frame = ServerFrame::Kicked { room: msg.room.as_str() }.to_text();
        for session in &kicked {
            if let Some(entry) = self.sessions.get_mut(session) {
                entry.rooms.remove(&msg.room);
            }
            self.push(*session, Push::Frame(frame.clone()));
            self.remove_member(*session, &msg.room);
        }
        self.evict_overflowed();
        kicked.len()
    }
}

impl Handler<SetClosed> for ChatServer {
    type Result = Result<bool, ChatError>;

    fn handle(&mut self, msg: SetClosed, _: &mut Context<Self>) -> Self::Result {
        if !self.rooms.contains_key(&msg.room) {
            return Ok(false);
        }
        self.enqueue(WriteOp::SetClosed { room: msg.room.clone(), closed_at: msg.closed.then(now_ms) })?;
        if !msg.closed {
            self.closed.remove(&msg.room);
            return Ok(true);
        }
        self.closed.insert(msg.room.clone());
        let frame = ServerFrame::RoomClosed { room: msg.room.as_str() }.to_text();
        let members: Vec<SessionId> =
            self.rooms.get(&msg.room).map_or_else(Vec::new, |r| r.members.keys().copied().collect());
        for session in members {
            if let Some(entry) = self.sessions.get_mut(&session) {
                entry.rooms.remove(&msg.room);
            }
            self.push(session, Push::Frame(frame.clone()));
        }
        if let Some(room) = self.rooms.get_mut(&msg.room) {
            room.members.clear();
            room.trim(self.tail_len);
        }
        self.evict_overflowed();
        Ok(true)
    }
}

impl Handler<DeleteMessage> for ChatServer {
    type Result = Result<(), ChatError>;

    fn handle(&mut self, msg: DeleteMessage, _: &mut Context<Self>) -> Self::Result {
        let room = self.rooms.get(&msg.room).ok_or_else(|| unknown_room(&msg.room))?;
        if msg.id < 1 || msg.id > room.last_id {
            return Err(ChatError::BadRequest(format!("room '{}' has no message {}", msg.room, msg.id)));
        }
        // Through the writer, so it lands after the message's own insert.
        self.enqueue(WriteOp::DeleteMessage { room: msg.room.clone(), id: msg.id })?;
        if let Some(room) = self.rooms.get_mut(&msg.room) {
            room.tail.retain(|m| m.id != msg.id);
        }
        let frame = ServerFrame::MessageDeleted { room: msg.room.as_str(), id: msg.id }.to_text();
        self.broadcast(&msg.room, &frame, None);
        self.evict_overflowed();
        Ok(())
    }
}

impl Handler<EndConnections> for ChatServer {
    type Result = usize;

    fn handle(&mut self, msg: EndConnections, _: &mut Context<Self>) -> usize {
        let sessions = self.sessions_where(|a| a.key == msg.user_key);
        self.banned.insert(msg.user_key);
        for session in &sessions {
            self.disconnect(*session, "banned");
        }
        self.evict_overflowed();
        sessions.len()
    }
}

/// A login ended (logout): its open connections end too.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndLogin {
    pub login: String,
}

impl Handler<EndLogin> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: EndLogin, _: &mut Context<Self>) {
        for session in self.sessions_where(|a| a.login == msg.login) {
            self.disconnect(session, "logged out");
        }
        self.evict_overflowed();
    }
}

/// An account gained or lost the admin role: its open connections follow.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetRole {
    pub user_key: String,
    pub admin: bool,
}

impl Handler<SetRole> for ChatServer {
    type Result = ();

    fn handle(&mut self, msg: SetRole, _: &mut Context<Self>) {
        for entry in self.sessions.values_mut() {
            if let Some(account) = entry.account.as_mut().filter(|a| a.key == msg.user_key) {
                account.admin = msg.admin;
            }
        }
        for room in self.rooms.values_mut() {
            for member in room.members.values_mut() {
                if member.who == Who::User(msg.user_key.clone()) {
                    member.admin = msg.admin;
                }
            }
        }
    }
}

impl Handler<Mute> for ChatServer {
    type Result = Result<(), ChatError>;

    fn handle(&mut self, msg: Mute, _: &mut Context<Self>) -> Self::Result {
        let key = name_key(&msg.user);
        self.enqueue(WriteOp::Mute { room: msg.room.clone(), user_key: key.clone(), until_ms: msg.until_ms })?;
        self.mutes.insert((msg.room, key), msg.until_ms);
        Ok(())
    }
}

/// Admin: makes a room invite-only (members who may not stay are sent out
/// with `kicked`) or public again. Answers whether the room exists.
#[derive(Message)]
#[rtype(result = "Result<bool, ChatError>")]
pub struct SetPrivate {
    pub room: RoomName,
    pub private: bool,
}

/// Admin: lets an account into a private room.
#[derive(Message)]
#[rtype(result = "Result<bool, ChatError>")]
pub struct Invite {
    pub room: RoomName,
    pub user: DisplayName,
    pub by: String,
}

impl Handler<SetPrivate> for ChatServer {
    type Result = Result<bool, ChatError>;

    fn handle(&mut self, msg: SetPrivate, _: &mut Context<Self>) -> Self::Result {
        if !self.rooms.contains_key(&msg.room) {
            return Ok(false);
        }
        self.enqueue(WriteOp::SetPrivate { room: msg.room.clone(), private: msg.private })?;
        if !msg.private {
            self.private.remove(&msg.room);
            return Ok(true);
        }
        self.private.insert(msg.room.clone());
        let out: Vec<SessionId> = self.rooms.get(&msg.room).map_or_else(Vec::new, |room| {
            room.members
                .iter()
                .filter(|(_, m)| !self.may_enter(&msg.room, &m.who, m.admin))
                .map(|(id, _)| *id)
                .collect()
        });
        let frame = ServerFrame::Kicked { room: msg.room.as_str() }.to_text();
        for session in out {
            if let Some(entry) = self.sessions.get_mut(&session) {
                entry.rooms.remove(&msg.room);
            }
            self.push(session, Push::Frame(frame.clone()));
            self.remove_member(session, &msg.room);
        }
        self.evict_overflowed();
        Ok(true)
    }
}

impl Handler<Invite> for ChatServer {
    type Result = Result<bool, ChatError>;

    fn handle(&mut self, msg: Invite, _: &mut Context<Self>) -> Self::Result {
        if !self.rooms.contains_key(&msg.room) {
            return Ok(false);
        }
        let key = name_key(&msg.user);
        self.enqueue(WriteOp::Invite { room: msg.room.clone(), user_key: key.clone(), invited_by: msg.by })?;
        self.invites.entry(msg.room).or_default().insert(key);
        Ok(true)
    }
}
