//! `WsSession`: one client connection, an actor that owns its link (a
//! native WebSocket, or a Socket.IO connection speaking the same frames).
//! It turns the client's messages into validated commands for the
//! ChatServer and writes what the ChatServer pushes.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;

use super::history::{self, HistoryPage, HistoryPlan, HistoryQuery, MessageLog};
use super::link::Link;
use super::server::{self, ChatServer, MemberChange, Push, SessionId, Who};
use crate::accounts::{NameRegistry, User};
use crate::clock::format_timestamp;
use crate::db;
use crate::domain::{DisplayName, Emoji, MessageText, Nonce, RoomName};
use crate::error::ChatError;
use crate::metrics::Metrics;
use crate::protocol::{ClientFrame, MessageView, ServerFrame};
use crate::rate_limit::TokenBucket;
use crate::ws::{CloseCode, Event};

/// What every session applies; built once from the settings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Whether people without an account may join rooms.
    pub guests: bool,
    /// Registered names, which guests may not use.
    pub registry: Arc<NameRegistry>,
    pub max_message_bytes: usize,
    /// Bytes of frames that may wait for a session (in its mailbox, or held
    /// behind a history lookup) before it counts as a slow consumer.
    pub max_queued_bytes: usize,
    pub rate_per_sec: f64,
    pub rate_burst: f64,
    pub metrics: Arc<Metrics>,
}

/// Sends with a nonce that are looked for in the log first, per connection.
/// A client resends what it has not seen confirmed first thing after it
/// reconnects, and whatever happened in between (a restart, an emptied
/// room, thousands of later messages) the log knows whether it was stored.
/// Later sends are checked against the room's memory only, which keeps the
/// database out of the path of a busy connection.
const RESEND_CHECKS: u32 = 64;
/// Resends matching a nonce and text in the log, looked at: at most one
/// per author in practice.
const RESEND_CANDIDATES: i64 = 8;

/// Typing notices from one session are passed on at most this often per room.
const TYPING_INTERVAL: Duration = Duration::from_secs(2);
/// Joins, leaves, history requests and typing notices one connection may make
/// per second on average, and in a burst. They cost the ChatServer work (a
/// join may create a room), so they are limited even where sends are not.
const COMMAND_RATE: f64 = 20.0;
const COMMAND_BURST: f64 = 60.0;

/// A frame waiting to be written behind a history answer that is still being
/// looked up, so that frames leave in the order the ChatServer pushed them.
enum Outgoing {
    Frame(ByteString),
    /// The answer to the lookup with this ticket, not ready yet.
    Awaiting(u64),
    Answer(Vec<ByteString>),
}

/// Who is on the other end of a connection, as the handshake established it.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Logged in: every message is theirs, whatever a frame says. `login`
    /// names the session (its token's hash), so logging out can end this
    /// connection too.
    User { user: User, login: String },
    /// A guest, with the name from their name cookie, if any, the id of
    /// their browser's guest cookie, if any (without one, each connection is
    /// a guest of its own), and the address they connect from (what keeps a
    /// kicked guest out, whatever name they come back under).
    Guest { cookie_name: Option<DisplayName>, guest_id: Option<String>, address: Option<IpAddr> },
}

pub struct WsSession {
    id: SessionId,
    server: Addr<ChatServer>,
    log: MessageLog,
    settings: Arc<SessionSettings>,
    identity: Identity,
    link: Link,
    sends: TokenBucket,
    commands: TokenBucket,
    last_typing: HashMap<RoomName, Instant>,
    /// Frames held while a history lookup is in flight; empty otherwise.
    outbox: VecDeque<Outgoing>,
    /// The bytes of the frames held there.
    held_bytes: usize,
    /// Bytes of frames the ChatServer queued in this session's mailbox and
    /// the session has not taken yet (the ChatServer's slow-consumer bound).
    queued_bytes: Arc<AtomicUsize>,
    next_ticket: u64,
    /// Sends left that look in the log for an earlier copy.
    resend_checks: u32,
    /// A lookup in the log is in flight (a resend check, or the message a
    /// change is about): the client's later frames wait in `waiting`.
    checking: bool,
    waiting: VecDeque<ByteString>,
    waiting_bytes: usize,
    /// A guest without a guest cookie is this connection alone: a random
    /// key, never reused, so that what it sent stays its own.
    connection_key: String,
}

impl WsSession {
    pub fn new(
        server: Addr<ChatServer>,
        log: MessageLog,
        settings: Arc<SessionSettings>,
        identity: Identity,
        link: Link,
    ) -> Self {
        Self {
            // The transport's number for the connection, so that its log
            // lines and the session's name the same one.
            id: link.id(),
            server,
            log,
            sends: TokenBucket::new(settings.rate_per_sec, settings.rate_burst),
            commands: TokenBucket::new(COMMAND_RATE, COMMAND_BURST),
            settings,
            identity,
            link,
            last_typing: HashMap::new(),
            outbox: VecDeque::new(),
            held_bytes: 0,
            queued_bytes: Arc::default(),
            next_ticket: 0,
            resend_checks: RESEND_CHECKS,
            checking: false,
            waiting: VecDeque::new(),
            waiting_bytes: 0,
            connection_key: format!("c-{}", crate::tokens::random_hex(12)),
        }
    }

    /// Writes a frame now, or behind the frames already held.
    fn emit(&mut self, frame: ByteString) {
        if self.outbox.is_empty() {
            self.link.send_text(&frame);
        } else {
            self.hold(Outgoing::Frame(frame));
        }
    }

    /// Holds a frame behind a history lookup in flight; too many bytes held
    /// (the database is that slow, or the room that busy) count as a slow
    /// consumer, as they do in the mailbox.
    fn hold(&mut self, item: Outgoing) {
        if let Outgoing::Frame(frame) = &item {
            if self.held_bytes + frame.len() > self.settings.max_queued_bytes {
                crate::warn_throttled!("session {}: too much held behind a history lookup; disconnecting", self.id);
                return self.link.close(CloseCode::Policy, "slow consumer");
            }
            self.held_bytes += frame.len();
        }
        self.outbox.push_back(item);
    }

    /// Writes held frames up to the first answer still being looked up.
    fn flush(&mut self) {
        while let Some(item) = self.outbox.front() {
            if matches!(item, Outgoing::Awaiting(_)) {
                break;
            }
            match self.outbox.pop_front() {
                Some(Outgoing::Frame(frame)) => {
                    self.held_bytes -= frame.len();
                    self.link.send_text(&frame);
                }
                Some(Outgoing::Answer(frames)) => frames.iter().for_each(|f| self.link.send_text(f)),
                _ => unreachable!("checked above"),
            }
        }
    }

    /// An error about no command in particular (a frame that is not one).
    fn send_error(&mut self, err: &ChatError) {
        self.emit(ServerFrame::error(err, None, None, None));
    }

    /// Hands a send to the ChatServer; one of the first sends with a nonce
    /// goes after the log has been asked for an earlier copy.
    fn send(&mut self, ctx: &mut Context<Self>, mut msg: server::SendMessage) {
        let Some(nonce) = msg.nonce.as_ref().filter(|_| self.resend_checks > 0) else {
            return self.server.do_send(msg);
        };
        self.resend_checks -= 1;
        let (pool, room, nonce, text) =
            (self.log.pool.clone(), msg.room.clone(), nonce.as_str().to_string(), msg.text.as_str().to_string());
        let lookup = async move {
            db::run(&pool, move |conn| db::messages::find_resend(conn, &room, &nonce, &text, RESEND_CANDIDATES)).await
        };
        self.look_up_then(ctx, lookup, move |act, found| {
            match found {
                Ok(earlier) => msg.earlier = earlier,
                // Without the log the room's memory still catches a quick
                // resend; refusing the send would lose more than it saves.
                Err(e) => crate::warn_throttled!("cannot look for an earlier copy of a resend: {e}"),
            }
            act.server.do_send(msg);
        });
    }

    /// Hands a change to a message to the ChatServer with the message as
    /// the log has it: the room's memory holds only its latest messages.
    fn revise(&mut self, ctx: &mut Context<Self>, mut msg: server::ReviseMessage) {
        let (log, room, id) = (self.log.clone(), msg.room.clone(), msg.id);
        let lookup = async move { log.message(&room, id).await };
        self.look_up_then(ctx, lookup, move |act, found| match found {
            Ok(stored) => {
                msg.stored = stored;
                act.server.do_send(msg);
            }
            Err(e) => act.emit(ServerFrame::error_about(&e, msg.change.command(), msg.room.as_str(), msg.id)),
        });
    }

    /// Runs `lookup`, then `then` with its result. Frames the client sends
    /// meanwhile wait in `waiting`, so that everything is handled in the
    /// order it was sent, while the socket goes on writing, pinging and
    /// closing as usual.
    fn look_up_then<T: 'static>(
        &mut self,
        ctx: &mut Context<Self>,
        lookup: impl std::future::Future<Output = T> + 'static,
        then: impl FnOnce(&mut Self, T) + 'static,
    ) {
        self.checking = true;
        ctx.spawn(lookup.into_actor(self).map(move |result, act, ctx| {
            then(act, result);
            act.checking = false;
            // The frames that came meanwhile, until one starts another lookup.
            while !act.checking {
                let Some(text) = act.waiting.pop_front() else { break };
                act.waiting_bytes -= text.len();
                act.on_text(ctx, &text);
            }
        }));
    }

    /// A frame read while a lookup is in flight waits for it; a client that
    /// piles up more than the session's queue bound meanwhile counts as a
    /// slow consumer.
    fn hold_incoming(&mut self, text: ByteString) {
        if self.waiting_bytes + text.len() > self.settings.max_queued_bytes {
            crate::warn_throttled!("session {}: too much sent during a lookup; disconnecting", self.id);
            return self.link.close(CloseCode::Policy, "slow consumer");
        }
        self.waiting_bytes += text.len();
        self.waiting.push_back(text);
    }

    fn on_text(&mut self, ctx: &mut Context<Self>, text: &str) {
        let mut frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(e) => return self.send_error(&e),
        };
        if let Err(e) = self.forward(ctx, &mut frame) {
            let command = Some(frame.name());
            let error = match &frame {
                ClientFrame::JoinRoom { room, .. }
                | ClientFrame::LeaveRoom { room }
                | ClientFrame::History { room, .. }
                | ClientFrame::Typing { room } => ServerFrame::error(&e, command, Some(room), None),
                ClientFrame::SendMessage { room, nonce, .. } => {
                    self.settings.metrics.refused(e.code());
                    ServerFrame::error(&e, command, Some(room), nonce.as_deref())
                }
                ClientFrame::EditMessage { room, id, .. }
                | ClientFrame::DeleteMessage { room, id }
                | ClientFrame::AddReaction { room, id, .. }
                | ClientFrame::RemoveReaction { room, id, .. } => ServerFrame::error_about(&e, frame.name(), room, *id),
                ClientFrame::Ping => ServerFrame::error(&e, command, None, None),
            };
            self.emit(error);
        }
    }

    /// Validates a frame and hands it to the ChatServer. The frame is taken
    /// by reference so an error can still name its room and nonce.
    fn forward(&mut self, ctx: &mut Context<Self>, frame: &mut ClientFrame) -> Result<(), ChatError> {
        let session = self.id;
        let now = Instant::now();
        let is_command = !matches!(frame, ClientFrame::SendMessage { .. } | ClientFrame::Ping);
        if is_command && !self.commands.take(now) {
            return Err(ChatError::RateLimited("too many requests; slow down".into()));
        }
        match frame {
            ClientFrame::JoinRoom { room, name, since, epoch, hidden } => {
                let room = RoomName::parse(room)?;
                let (name, who) = self.who_joins(name.as_deref())?;
                if since.is_some_and(|s| s < 0) {
                    return Err(ChatError::BadRequest("`since` must not be negative".into()));
                }
                if epoch.as_ref().is_some_and(|e| e.len() > 64) {
                    return Err(ChatError::BadRequest("`epoch` is at most 64 bytes".into()));
                }
                let (since, epoch, hidden) = (*since, epoch.take(), *hidden);
                self.server.do_send(server::Join { session, room, name, who, since, epoch, hidden });
            }
            ClientFrame::LeaveRoom { room } => {
                let room = RoomName::parse(room)?;
                self.last_typing.remove(&room);
                self.server.do_send(server::Leave { session, room });
            }
            ClientFrame::SendMessage { room, text, nonce, reply_to } => {
                let room = RoomName::parse(room)?;
                let nonce = nonce.clone().map(Nonce::parse).transpose()?;
                let text = MessageText::parse(std::mem::take(text), self.settings.max_message_bytes)?;
                let reply_to = reply_to.map(message_id).transpose()?;
                if !self.sends.take(now) {
                    return Err(ChatError::RateLimited("sending too fast; message not accepted, slow down".into()));
                }
                // Members stop showing "typing" when the message arrives, so
                // the next typing notice in this room may go out at once.
                self.last_typing.remove(&room);
                self.send(ctx, server::SendMessage { session, room, text, nonce, reply_to, earlier: Vec::new() });
            }
            ClientFrame::EditMessage { room, id, text } => {
                let text = MessageText::parse(std::mem::take(text), self.settings.max_message_bytes)?;
                self.revise_frame(ctx, room, *id, MemberChange::Edit(text))?;
            }
            ClientFrame::DeleteMessage { room, id } => self.revise_frame(ctx, room, *id, MemberChange::Delete)?,
            ClientFrame::AddReaction { room, id, emoji } => {
                let emoji = Emoji::parse(std::mem::take(emoji))?;
                self.revise_frame(ctx, room, *id, MemberChange::React { emoji, add: true })?;
            }
            ClientFrame::RemoveReaction { room, id, emoji } => {
                let emoji = Emoji::parse(std::mem::take(emoji))?;
                self.revise_frame(ctx, room, *id, MemberChange::React { emoji, add: false })?;
            }
            ClientFrame::History { room, before, limit } => {
                let room = RoomName::parse(room)?;
                let query = HistoryQuery::before(*before, *limit)?;
                self.server.do_send(server::FetchHistory { session, room, query });
            }
            ClientFrame::Typing { room } => {
                let room = RoomName::parse(room)?;
                if self.last_typing.get(&room).is_some_and(|at| now - *at < TYPING_INTERVAL) {
                    return Ok(());
                }
                // Only recent entries matter; forget the rest so that naming
                // endless rooms cannot grow the map.
                self.last_typing.retain(|_, at| now - *at < TYPING_INTERVAL);
                self.last_typing.insert(room.clone(), now);
                self.server.do_send(server::Typing { session, room });
            }
            ClientFrame::Ping => self.emit(ServerFrame::Pong.to_text()),
        }
        Ok(())
    }

    /// A change to message `id` of `room`, checked as far as the session can.
    fn revise_frame(
        &mut self,
        ctx: &mut Context<Self>,
        room: &str,
        id: i64,
        change: MemberChange,
    ) -> Result<(), ChatError> {
        let room = RoomName::parse(room)?;
        let id = message_id(id)?;
        self.revise(ctx, server::ReviseMessage { session: self.id, room, id, change, stored: None });
        Ok(())
    }

    /// The name this connection joins under, and whose it is. A logged-in
    /// user is always their account's name; a guest picks one that no
    /// registered user has.
    fn who_joins(&self, asked: Option<&str>) -> Result<(DisplayName, Who), ChatError> {
        match &self.identity {
            Identity::User { user, .. } => Ok((user.name.clone(), Who::User(user.name.key()))),
            Identity::Guest { .. } if !self.settings.guests => {
                Err(ChatError::Unauthorized("this server has no guest access: log in to chat".into()))
            }
            Identity::Guest { cookie_name, guest_id, .. } => {
                let name = match asked {
                    Some(name) => DisplayName::parse(name)?,
                    None => cookie_name.clone().ok_or_else(|| {
                        ChatError::InvalidName(
                            "a display name is required: send `name` or choose one on the home page".into(),
                        )
                    })?,
                };
                if self.settings.registry.looks_registered(&name) {
                    return Err(ChatError::InvalidName(format!(
                        "'{name}' belongs to a registered user, or looks like their name: log in to use it"
                    )));
                }
                let id = guest_id.clone().unwrap_or_else(|| self.connection_key.clone());
                Ok((name, Who::Guest(id)))
            }
        }
    }

    /// Writes a history answer once it is complete. Completing it may take a
    /// database query on a blocking thread; meanwhile the session keeps
    /// handling frames, holding what it would write until the answer is out,
    /// so frames leave in order (`joined` before the live messages after it).
    fn answer_history(
        &mut self,
        ctx: &mut Context<Self>,
        query: HistoryQuery,
        plan: HistoryPlan,
        render: impl FnOnce(Result<HistoryPage, ChatError>) -> Vec<ByteString> + 'static,
    ) {
        // Most answers come from the room's tail: written at once, no lookup.
        let plan = match plan.answer_from_memory(query) {
            Ok(page) => return render(Ok(page)).into_iter().for_each(|frame| self.emit(frame)),
            Err(plan) => plan,
        };
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.hold(Outgoing::Awaiting(ticket));
        let log = self.log.clone();
        let lookup = async move { history::from_log(plan, query, &log).await };
        ctx.spawn(lookup.into_actor(self).map(move |result, act, _| {
            let slot = act.outbox.iter_mut().find(|item| matches!(item, Outgoing::Awaiting(t) if *t == ticket));
            if let Some(slot) = slot {
                *slot = Outgoing::Answer(render(result));
                act.flush();
            }
        }));
    }
}

/// A message id as frames give it: 1 or more.
fn message_id(id: i64) -> Result<i64, ChatError> {
    if id < 1 {
        return Err(ChatError::BadRequest("a message id is 1 or more".into()));
    }
    Ok(id)
}

fn binary_refused() -> ChatError {
    ChatError::BadRequest("binary frames are not supported; send JSON text frames".into())
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.spawn(Io);
        let (account, address) = match &self.identity {
            Identity::User { user, login } => {
                (Some(server::Account { key: user.name.key(), admin: user.is_admin, login: login.clone() }), None)
            }
            Identity::Guest { address, .. } => (None, *address),
        };
        let outbox = server::Outbox { addr: ctx.address().recipient(), queued_bytes: self.queued_bytes.clone() };
        self.server.do_send(server::Connect { session: self.id, outbox, account, address });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.server.do_send(server::Disconnect { session: self.id });
    }
}

impl Handler<Push> for WsSession {
    type Result = ();

    fn handle(&mut self, push: Push, ctx: &mut Self::Context) {
        match push {
            Push::Frame(frame) => {
                self.queued_bytes.fetch_sub(frame.len(), Ordering::Relaxed);
                self.emit(frame);
            }
            Push::Joined { room, epoch, members, member_count, query, plan, encryption, muted_until } => {
                self.answer_history(ctx, query, plan, move |result| {
                    // The session is a member either way: a `joined` always
                    // comes before the room's live frames. Without history
                    // it says `truncated`, so the client pages for it.
                    let (page, error) = match result {
                        Ok(page) => (page, None),
                        Err(e) => (HistoryPage { messages: Vec::new(), truncated: true }, Some(e)),
                    };
                    let joined = ServerFrame::Joined {
                        room: room.as_str(),
                        members: members.iter().map(DisplayName::as_str).collect(),
                        member_count,
                        history: MessageView::list(&page.messages),
                        truncated: page.truncated,
                        epoch: &epoch,
                        encryption: encryption.as_deref(),
                        muted_until: muted_until.map(format_timestamp),
                    }
                    .to_text();
                    match error {
                        // The join itself succeeded: this error answers
                        // no command, it says the history is missing.
                        Some(e) => vec![ServerFrame::error(&e, None, Some(room.as_str()), None), joined],
                        None => vec![joined],
                    }
                });
            }
            Push::History { room, query, plan } => {
                self.answer_history(ctx, query, plan, move |result| {
                    vec![match result {
                        Ok(page) => {
                            ServerFrame::History { room: room.as_str(), messages: MessageView::list(&page.messages) }
                                .to_text()
                        }
                        Err(e) => ServerFrame::error(&e, Some("history"), Some(room.as_str()), None),
                    }]
                });
            }
            Push::Close(reason) => self.link.close_with(Some(reason)),
        }
    }
}

/// Drives the session's socket: handles the client's messages as they
/// come, and ends the session with the connection.
struct Io;

impl ActorFuture<WsSession> for Io {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut WsSession,
        ctx: &mut Context<WsSession>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        loop {
            match act.link.poll_event(task) {
                Poll::Ready(Event::Text(text)) if act.checking => act.hold_incoming(text),
                Poll::Ready(Event::Text(text)) => act.on_text(ctx, &text),
                Poll::Ready(Event::Binary) => act.send_error(&binary_refused()),
                // The others should not wait for the close handshake to see
                // this connection leave.
                Poll::Ready(Event::Closing) => act.server.do_send(server::Disconnect { session: act.id }),
                Poll::Ready(Event::Closed) => {
                    ctx.stop();
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
