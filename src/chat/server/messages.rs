//! Everything the ChatServer is asked, and what it pushes to sessions.
//! Sessions, routes and the writer talk to it only through these.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use actix::prelude::*;
use bytestring::ByteString;
use serde::Serialize;

use crate::chat::history::{HistoryPlan, HistoryQuery};
use crate::db::writer::{Audit, Committed};
use crate::domain::{ChatMessage, DisplayName, Emoji, Encryption, KeySource, MessageText, Nonce, RoomName};
use crate::error::ChatError;
use crate::ws::CloseReason;

pub type SessionId = u64;

/// Whose a name in a room is: an account's, or a guest's (the same in every
/// tab of one browser, by its guest cookie; one connection's without it).
/// Either way it may be in a room from several connections at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    User(String),
    Guest(String),
}

impl Who {
    /// How a message remembers whose it is (`ChatMessage::owner`).
    pub fn owner_key(&self) -> Arc<str> {
        match self {
            Self::User(key) => format!("u:{key}").into(),
            Self::Guest(id) => format!("g:{id}").into(),
        }
    }

    /// A guest's id (its browser's, or its connection's).
    pub fn guest_id(&self) -> Option<&str> {
        match self {
            Self::Guest(id) => Some(id),
            Self::User(_) => None,
        }
    }
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

/// What the ChatServer hands a session.
#[derive(Message)]
#[rtype(result = "()")]
pub enum Push {
    /// A ready frame, shared by every recipient.
    Frame(ByteString),
    /// The answer to `join_room`; the session completes the history.
    Joined {
        room: RoomName,
        epoch: String,
        members: Vec<DisplayName>,
        member_count: usize,
        query: HistoryQuery,
        plan: HistoryPlan,
        encryption: Option<Arc<Encryption>>,
        /// The joiner is muted in the room until then (Unix ms).
        muted_until: Option<i64>,
    },
    /// The answer to `history`; the session completes it.
    History { room: RoomName, query: HistoryQuery, plan: HistoryPlan },
    /// Close the connection.
    Close(CloseReason),
}

// What sessions ask, for their connection.

/// Where the ChatServer delivers to one session: its mailbox, and the bytes
/// of the frames waiting there, which the session counts off as it takes
/// them. A session is dropped as a slow consumer when too many bytes wait
/// for it, never for how many frames a burst queued.
#[derive(Clone)]
pub struct Outbox {
    pub addr: Recipient<Push>,
    pub queued_bytes: Arc<AtomicUsize>,
}

/// A new connection.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    pub session: SessionId,
    pub outbox: Outbox,
    /// The account of a logged-in connection.
    pub account: Option<Account>,
    /// A guest's address (accounts are known by their account).
    pub address: Option<std::net::IpAddr>,
}

/// The connection is closing: take it out of its rooms.
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
    /// Only messages after this id come with `joined`...
    pub since: Option<i64>,
    /// ...when they are ids of this epoch (or no epoch is given).
    pub epoch: Option<String>,
    /// An admin watching unseen (`Member::hidden`).
    pub hidden: bool,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave {
    pub session: SessionId,
    pub room: RoomName,
}

/// A member's message for its room.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SendMessage {
    pub session: SessionId,
    pub room: RoomName,
    pub text: MessageText,
    pub nonce: Option<Nonce>,
    /// The id of the room's message it answers.
    pub reply_to: Option<i64>,
    /// Messages in the log with the same nonce and text: if one is the
    /// sender's, this send is a resend of it.
    pub earlier: Vec<Arc<ChatMessage>>,
}

/// A member edits or deletes its own message, or reacts to any.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReviseMessage {
    pub session: SessionId,
    pub room: RoomName,
    pub id: i64,
    pub change: MemberChange,
    /// The message as the log has it now (the room's memory may be fresher,
    /// or may not hold it at all).
    pub stored: Option<Arc<ChatMessage>>,
}

#[derive(Debug)]
pub enum MemberChange {
    Edit(MessageText),
    Delete,
    React { emoji: Emoji, add: bool },
}

impl MemberChange {
    /// The command that asked for it.
    pub fn command(&self) -> &'static str {
        match self {
            MemberChange::Edit(_) => "edit_message",
            MemberChange::Delete => "delete_message",
            MemberChange::React { add: true, .. } => "add_reaction",
            MemberChange::React { add: false, .. } => "remove_reaction",
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Typing {
    pub session: SessionId,
    pub room: RoomName,
}

/// A member asks for a page of its room's history.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FetchHistory {
    pub session: SessionId,
    pub room: RoomName,
    pub query: HistoryQuery,
}

// What HTTP asks.

/// A bot's message (`POST /store_message`), delivered like a live one.
#[derive(Message)]
#[rtype(result = "Result<Stored, ChatError>")]
pub struct StoreMessage {
    pub room: RoomName,
    pub user: DisplayName,
    pub text: MessageText,
}

/// A message accepted over HTTP.
pub enum Stored {
    Numbered {
        message: Arc<ChatMessage>,
        /// The room's epoch, which the message's id belongs to.
        epoch: String,
        /// With `--durable-ack`: answers once the message is committed (or
        /// refused by the database).
        committed: Option<tokio::sync::oneshot::Receiver<Result<(), ChatError>>>,
    },
    /// In a cluster: answers once Redis has numbered it, with the message
    /// and its epoch.
    Numbering(tokio::sync::oneshot::Receiver<NumberedAnswer>),
}

/// A message Redis numbered, and its epoch; or why it could not.
pub type NumberedAnswer = Result<(Arc<ChatMessage>, String), ChatError>;

/// Creates a room (a fresh code when no name is given). A room that exists
/// is answered as it is, unless it is not encrypted the way `asked`.
#[derive(Message)]
#[rtype(result = "Result<RoomCreated, ChatError>")]
pub struct CreateRoom {
    pub name: Option<RoomName>,
    pub created_by: Option<DisplayName>,
    /// How the asker wants the room's key shared; `None`: whatever it is.
    pub asked: Option<KeySource>,
    /// The room's encryption if it is made now. In a cluster it is what
    /// Redis decided for the room, and holds for it whether new or not.
    pub encryption: Option<Encryption>,
}

pub struct RoomCreated {
    pub name: RoomName,
    /// It did not exist before.
    pub new: bool,
    pub encryption: Option<Arc<Encryption>>,
}

/// In a cluster: a room as Redis or the log has it (another node made it,
/// perhaps while this one was not listening): it exists, and this is
/// whether it is encrypted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LearnRoom {
    pub room: RoomName,
    pub encryption: Option<Encryption>,
}

/// History for HTTP, which needs no membership; a private room's only for
/// those who may enter it (to others it does not exist).
#[derive(Message)]
#[rtype(result = "Result<PlannedHistory, ChatError>")]
pub struct PlanHistory {
    pub room: RoomName,
    pub query: HistoryQuery,
    /// Who asks: `None` for nobody in particular, else (who, admin).
    pub viewer: Option<(Who, bool)>,
}

pub struct PlannedHistory {
    pub plan: HistoryPlan,
    /// Empty in a cluster when this node does not follow the room.
    pub epoch: String,
    pub encryption: Option<Arc<Encryption>>,
}

/// The rooms that have members, busiest first; private ones only for admins.
#[derive(Message)]
#[rtype(result = "Vec<RoomSummary>")]
pub struct ListRooms {
    pub include_private: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomSummary {
    pub name: RoomName,
    pub members: Vec<DisplayName>,
    pub private: bool,
    pub encrypted: bool,
    /// Each connection in the room and since when, oldest first (for admins).
    pub connections: Vec<ConnectionSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionSummary {
    pub name: DisplayName,
    pub since: String,
    /// In a cluster, the node it is connected to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// A guest (no account: nothing to ban).
    pub guest: bool,
}

// What admins ask.

/// Takes everyone called `user` out of `room`, and keeps them out until
/// `until_ms` (a room ban), or else for `--kick-cooldown-secs` (a kick):
/// guests by their guest id and address too, whatever name they come back
/// under. Answers how many connections that was.
#[derive(Message)]
#[rtype(result = "Result<usize, ChatError>")]
pub struct Kick {
    pub room: RoomName,
    pub user: DisplayName,
    pub until_ms: Option<i64>,
}

/// Lifts a room ban (or a kick's cooldown): `user` may come back into `room`.
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub struct LetIn {
    pub room: RoomName,
    pub user: DisplayName,
}

/// Closes a room (its members are sent out, no one may join) or reopens it.
/// Answers whether the room exists.
#[derive(Message)]
#[rtype(result = "Result<bool, ChatError>")]
pub struct SetClosed {
    pub room: RoomName,
    pub closed: bool,
    pub audit: Audit,
}

/// Removes a message from the room, its members' views and the log.
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub struct DeleteMessage {
    pub room: RoomName,
    pub id: i64,
    pub audit: Audit,
}

/// The account (banned in the database) may no longer connect, and its open
/// connections end at once. Answers how many ended.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct BanAccount {
    pub user_key: String,
}

/// A ban lifted (the log already says so): the account may connect again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnbanAccount {
    pub user_key: String,
}

/// A login ended (logout): its open connections end too.
#[derive(Message)]
#[rtype(result = "()")]
pub struct EndLogin {
    pub login: String,
}

/// An account gained or lost the admin role: its open connections follow.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetRole {
    pub user_key: String,
    pub admin: bool,
}

/// `user` may not send in `room` until `until_ms` (Unix ms).
#[derive(Message)]
#[rtype(result = "Result<(), ChatError>")]
pub struct Mute {
    pub room: RoomName,
    pub user: DisplayName,
    pub until_ms: i64,
    pub audit: Audit,
}

/// Makes a room invite-only (members who may not stay are sent out with
/// `kicked`) or public again. Answers whether the room exists.
#[derive(Message)]
#[rtype(result = "Result<bool, ChatError>")]
pub struct SetPrivate {
    pub room: RoomName,
    pub private: bool,
    pub audit: Audit,
}

/// Lets an account into a private room. Answers whether the room exists.
#[derive(Message)]
#[rtype(result = "Result<bool, ChatError>")]
pub struct Invite {
    pub room: RoomName,
    pub user: DisplayName,
    pub audit: Audit,
}

/// Answers once every change queued so far (an admin's action and its
/// audit entry, say) is committed.
#[derive(Message)]
#[rtype(result = "Result<tokio::sync::oneshot::Receiver<Result<(), ()>>, ChatError>")]
pub struct AwaitCommitted;

// What the application itself says.

/// From the writer: these ids are settled (committed, or set aside).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Persisted(pub Committed);

/// The figures `/metrics` and the admin console sample.
#[derive(Message)]
#[rtype(result = "Snapshot")]
pub struct TakeSnapshot;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Snapshot {
    pub connections: usize,
    /// Of those, logged in.
    pub account_connections: usize,
    /// Rooms with members.
    pub rooms: usize,
    /// Room memberships.
    pub members: usize,
    pub session_queue_bytes: usize,
    pub writer_queue_depth: usize,
    pub oldest_unwritten_ms: u64,
}

/// Stop accepting, close every session, and let the writer drain and end.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;
