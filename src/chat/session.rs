//! `WsSession`: one WebSocket connection, an actor that owns its socket
//! (`connection.rs`). It turns frames into validated commands for the
//! ChatServer and writes what the ChatServer pushes.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::{CloseCode, CloseReason, OpCode, ProtocolError};
use bytestring::ByteString;

use super::connection::{Connection, FlushError, Frame, Overflow, State};
use super::history::{self, HistoryPage, HistoryPlan, HistoryQuery};
use super::server::{self, ChatServer, Push, SessionId, Who};
use crate::accounts::{name_key, NameRegistry, User};
use crate::db::DbPool;
use crate::domain::{DisplayName, MessageText, Nonce, RoomName};
use crate::error::ChatError;
use crate::protocol::{ClientFrame, MessageView, ServerFrame};
use crate::rate_limit::TokenBucket;

/// What every session applies; built once from the settings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Whether people without an account may join rooms.
    pub guests: bool,
    /// Registered names, which guests may not use.
    pub registry: Arc<NameRegistry>,
    /// Sessions running now, until each has written its close frame and
    /// ended (shutdown waits for them).
    pub running: Arc<AtomicUsize>,
    pub max_message_bytes: usize,
    pub max_frame_bytes: usize,
    /// Bytes that may wait to be written to one connection before its
    /// client counts as too slow and is dropped.
    pub max_buffered_bytes: usize,
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    pub outbound_queue: usize,
    pub rate_per_sec: f64,
    pub rate_burst: f64,
}

/// Typing notices from one session are passed on at most this often per room.
const TYPING_INTERVAL: Duration = Duration::from_secs(2);
/// Joins, leaves, history requests and typing notices one connection may make
/// per second on average, and in a burst. They cost the ChatServer work (a
/// join may create a room), so they are limited even where sends are not.
const COMMAND_RATE: f64 = 20.0;
const COMMAND_BURST: f64 = 60.0;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A frame waiting to be written behind a history answer that is still being
/// looked up, so that frames leave in the order the ChatServer pushed them.
enum Outgoing {
    Frame(ByteString),
    /// The answer to the lookup with this ticket, not ready yet.
    Awaiting(u64),
    Answer(Vec<ByteString>),
}

/// How long a closing connection may take to write its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A fragmented message being reassembled.
enum Fragments {
    Text(Vec<u8>),
    Binary,
}

/// Who is on the other end of a connection, as the handshake established it.
#[derive(Debug, Clone)]
pub enum Identity {
    /// Logged in: every message is theirs, whatever a frame says. `login`
    /// names the session (its token's hash), so logging out can end this
    /// connection too.
    User { user: User, login: String },
    /// A guest, with the name from their name cookie, if any.
    Guest { cookie_name: Option<DisplayName> },
}

pub struct WsSession {
    id: SessionId,
    server: Addr<ChatServer>,
    pool: DbPool,
    limits: Arc<SessionSettings>,
    identity: Identity,
    conn: Connection,
    last_heard: Instant,
    sends: TokenBucket,
    commands: TokenBucket,
    last_typing: HashMap<RoomName, Instant>,
    fragments: Option<Fragments>,
    /// Frames held while a history lookup is in flight; empty otherwise.
    outbox: VecDeque<Outgoing>,
    next_ticket: u64,
}

impl WsSession {
    pub fn new(
        server: Addr<ChatServer>,
        pool: DbPool,
        limits: Arc<SessionSettings>,
        identity: Identity,
        conn: Connection,
    ) -> Self {
        Self {
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            server,
            pool,
            sends: TokenBucket::new(limits.rate_per_sec, limits.rate_burst),
            commands: TokenBucket::new(COMMAND_RATE, COMMAND_BURST),
            limits,
            identity,
            conn,
            last_heard: Instant::now(),
            last_typing: HashMap::new(),
            fragments: None,
            outbox: VecDeque::new(),
            next_ticket: 0,
        }
    }

    /// Writes a frame now, or behind the frames already held.
    fn emit(&mut self, frame: ByteString, ctx: &mut Context<Self>) {
        if self.outbox.is_empty() {
            self.write(&frame, ctx);
        } else {
            self.hold(Outgoing::Frame(frame), ctx);
        }
    }

    fn hold(&mut self, item: Outgoing, ctx: &mut Context<Self>) {
        if self.outbox.len() >= self.limits.outbound_queue {
            log::warn!("session {}: too many frames held behind a history lookup; disconnecting", self.id);
            return self.close(ctx, CloseCode::Policy, "slow consumer");
        }
        self.outbox.push_back(item);
    }

    /// Writes held frames up to the first answer still being looked up.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        while let Some(item) = self.outbox.front() {
            if matches!(item, Outgoing::Awaiting(_)) {
                break;
            }
            match self.outbox.pop_front() {
                Some(Outgoing::Frame(frame)) => self.write(&frame, ctx),
                Some(Outgoing::Answer(frames)) => frames.iter().for_each(|f| self.write(f, ctx)),
                _ => unreachable!("checked above"),
            }
        }
    }

    fn send_error(&mut self, ctx: &mut Context<Self>, err: &ChatError, room: Option<&str>, nonce: Option<&str>) {
        self.emit(ServerFrame::error(err, room, nonce), ctx);
    }

    /// Writes a frame; a client this far behind is dropped at once (it is
    /// not reading, so a close frame would never reach it).
    fn write(&mut self, frame: &str, ctx: &mut Context<Self>) {
        let queued = self.conn.text(frame.as_bytes());
        self.unless_overflowed(queued, ctx);
    }

    /// Drops the connection if queueing a frame found the client too far
    /// behind.
    fn unless_overflowed(&mut self, queued: Result<(), Overflow>, ctx: &mut Context<Self>) {
        if queued.is_err() {
            self.write_overflowed(ctx);
        }
    }

    fn write_overflowed(&mut self, ctx: &mut Context<Self>) {
        log::warn!("session {}: too much waiting to be written; disconnecting a slow consumer", self.id);
        self.conn.abort();
        ctx.stop();
    }

    fn close(&mut self, ctx: &mut Context<Self>, code: CloseCode, why: &str) {
        self.close_with(ctx, Some(CloseReason { code, description: Some(why.to_string()) }));
    }

    /// Sends a close frame and ends the session once it is written, or
    /// after a grace period if the client does not take it.
    /// The session leaves its rooms at once: the others should not wait for
    /// the close handshake to see it go.
    fn close_with(&mut self, ctx: &mut Context<Self>, reason: Option<CloseReason>) {
        if self.conn.state() == State::Open {
            self.conn.close(reason);
            self.server.do_send(server::Disconnect { session: self.id });
            ctx.run_later(CLOSE_GRACE, |_, ctx| ctx.stop());
        }
    }

    fn on_text(&mut self, text: &str, ctx: &mut Context<Self>) {
        let mut frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(e) => return self.send_error(ctx, &e, None, None),
        };
        if let Err(e) = self.forward(&mut frame, ctx) {
            let (room, nonce) = match &frame {
                ClientFrame::JoinRoom { room, .. }
                | ClientFrame::LeaveRoom { room }
                | ClientFrame::History { room, .. }
                | ClientFrame::Typing { room } => (Some(room.as_str()), None),
                ClientFrame::SendMessage { room, nonce, .. } => (Some(room.as_str()), nonce.as_deref()),
                ClientFrame::Ping => (None, None),
            };
            self.send_error(ctx, &e, room, nonce);
        }
    }

    /// Validates a frame and hands it to the ChatServer. The frame is taken
    /// by reference so an error can still name its room and nonce.
    fn forward(&mut self, frame: &mut ClientFrame, ctx: &mut Context<Self>) -> Result<(), ChatError> {
        let session = self.id;
        let now = Instant::now();
        let is_command = !matches!(frame, ClientFrame::SendMessage { .. } | ClientFrame::Ping);
        if is_command && !self.commands.take(now) {
            return Err(ChatError::RateLimited("too many requests; slow down".into()));
        }
        match frame {
            ClientFrame::JoinRoom { room, name, since } => {
                let room = RoomName::parse(room)?;
                let (name, who) = self.who_joins(name.as_deref())?;
                if since.is_some_and(|s| s < 0) {
                    return Err(ChatError::BadRequest("`since` must not be negative".into()));
                }
                let since = *since;
                self.server.do_send(server::Join { session, room, name, who, since });
            }
            ClientFrame::LeaveRoom { room } => {
                let room = RoomName::parse(room)?;
                self.last_typing.remove(&room);
                self.server.do_send(server::Leave { session, room });
            }
            ClientFrame::SendMessage { room, text, nonce } => {
                let room = RoomName::parse(room)?;
                let nonce = nonce.clone().map(Nonce::parse).transpose()?;
                let text = MessageText::parse(std::mem::take(text), self.limits.max_message_bytes)?;
                if !self.sends.take(now) {
                    return Err(ChatError::RateLimited("sending too fast; message not accepted, slow down".into()));
                }
                // Members stop showing "typing" when the message arrives, so
                // the next typing notice in this room may go out at once.
                self.last_typing.remove(&room);
                self.server.do_send(server::Send { session, room, text, nonce });
            }
            ClientFrame::History { room, before, limit } => {
                let room = RoomName::parse(room)?;
                let query = HistoryQuery::before(*before, *limit)?;
                self.server.do_send(server::History { session, room, query });
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
            ClientFrame::Ping => self.emit(ServerFrame::Pong.to_text(), ctx),
        }
        Ok(())
    }

    /// The name this connection joins under, and whose it is. A logged-in
    /// user is always their account's name; a guest picks one that no
    /// registered user has.
    fn who_joins(&self, asked: Option<&str>) -> Result<(DisplayName, Who), ChatError> {
        match &self.identity {
            Identity::User { user, .. } => Ok((user.name.clone(), Who::User(name_key(&user.name)))),
            Identity::Guest { .. } if !self.limits.guests => {
                Err(ChatError::Unauthorized("this server has no guest access: log in to chat".into()))
            }
            Identity::Guest { cookie_name } => {
                let name = match asked {
                    Some(name) => DisplayName::parse(name)?,
                    None => cookie_name.clone().ok_or_else(|| {
                        ChatError::InvalidName(
                            "a display name is required: send `name` or choose one on the home page".into(),
                        )
                    })?,
                };
                if self.limits.registry.is_registered(&name) {
                    return Err(ChatError::InvalidName(format!(
                        "'{name}' belongs to a registered user: log in to use it"
                    )));
                }
                Ok((name, Who::Guest(self.id)))
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
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.hold(Outgoing::Awaiting(ticket), ctx);
        let lookup = history::resolve(plan, query, self.pool.clone());
        ctx.spawn(lookup.into_actor(self).map(move |result, act, ctx| {
            let slot = act.outbox.iter_mut().find(|item| matches!(item, Outgoing::Awaiting(t) if *t == ticket));
            if let Some(slot) = slot {
                *slot = Outgoing::Answer(render(result));
                act.flush(ctx);
            }
        }));
    }

    /// One frame from the client.
    fn on_frame(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        let Frame { fin, opcode, payload } = frame;
        let control = matches!(opcode, OpCode::Ping | OpCode::Pong | OpCode::Close);
        if control && (!fin || payload.len() > 125) {
            // RFC 6455 5.5: control frames are never fragmented and carry
            // at most 125 bytes.
            return self.close(ctx, CloseCode::Protocol, "protocol error");
        }
        match opcode {
            OpCode::Text if fin && self.fragments.is_none() => match std::str::from_utf8(&payload) {
                Ok(text) => self.on_text(text, ctx),
                Err(_) => self.close(ctx, CloseCode::Invalid, "text is not valid UTF-8"),
            },
            OpCode::Binary if fin && self.fragments.is_none() => self.send_error(ctx, &binary_refused(), None, None),
            OpCode::Text | OpCode::Binary if self.fragments.is_some() => {
                self.close(ctx, CloseCode::Protocol, "a new message inside a fragmented one")
            }
            OpCode::Text => {
                self.fragments = Some(Fragments::Text(payload.to_vec()));
            }
            OpCode::Binary => self.fragments = Some(Fragments::Binary),
            OpCode::Continue => self.on_fragment(&payload, fin, ctx),
            OpCode::Ping => {
                let queued = self.conn.pong(&payload);
                self.unless_overflowed(queued, ctx);
            }
            OpCode::Pong => {}
            OpCode::Close => {
                // Answer with the client's own close code, as RFC 6455 asks.
                match actix_http::ws::Parser::try_parse_close_payload(&payload) {
                    Ok(reason) => self.close_with(ctx, reason),
                    Err(e) => self.on_protocol_error(e, ctx),
                }
            }
            OpCode::Bad => self.close(ctx, CloseCode::Protocol, "protocol error"),
        }
    }

    fn on_fragment(&mut self, chunk: &[u8], last: bool, ctx: &mut Context<Self>) {
        match self.fragments.as_mut() {
            None => return self.close(ctx, CloseCode::Protocol, "continuation without a first fragment"),
            Some(Fragments::Text(text)) => {
                if text.len() + chunk.len() > self.limits.max_frame_bytes {
                    return self.close_oversize(ctx);
                }
                text.extend_from_slice(chunk);
            }
            Some(Fragments::Binary) => {}
        }
        if last {
            match self.fragments.take() {
                Some(Fragments::Text(bytes)) => match String::from_utf8(bytes) {
                    Ok(text) => self.on_text(&text, ctx),
                    Err(_) => self.close(ctx, CloseCode::Invalid, "text is not valid UTF-8"),
                },
                _ => self.send_error(ctx, &binary_refused(), None, None),
            }
        }
    }

    /// 1009: a frame, or a fragmented message, over the transport limit.
    fn close_oversize(&mut self, ctx: &mut Context<Self>) {
        let why = format!("frame exceeds {} bytes", self.limits.max_frame_bytes);
        self.close(ctx, CloseCode::Size, &why);
    }

    fn on_protocol_error(&mut self, error: ProtocolError, ctx: &mut Context<Self>) {
        match error {
            ProtocolError::Overflow => self.close_oversize(ctx),
            e => {
                log::debug!("session {}: protocol error: {e}", self.id);
                self.close(ctx, CloseCode::Protocol, "protocol error");
            }
        }
    }
}

fn binary_refused() -> ChatError {
    ChatError::BadRequest("binary frames are not supported; send JSON text frames".into())
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.limits.running.fetch_add(1, Ordering::Relaxed);
        // The bound that makes a slow consumer visible: once this many frames
        // wait here, the ChatServer's `try_send` fails and it disconnects us.
        ctx.set_mailbox_capacity(self.limits.outbound_queue);
        ctx.run_interval(self.limits.heartbeat_interval, |act, ctx| {
            if act.last_heard.elapsed() > act.limits.client_timeout {
                log::info!("session {}: no sign of life from the client; disconnecting", act.id);
                return act.close(ctx, CloseCode::Away, "heartbeat timeout");
            }
            let queued = act.conn.ping();
            act.unless_overflowed(queued, ctx);
        });
        ctx.spawn(Io);
        let account = match &self.identity {
            Identity::User { user, login } => {
                Some(server::Account { key: name_key(&user.name), admin: user.is_admin, login: login.clone() })
            }
            Identity::Guest { .. } => None,
        };
        self.server.do_send(server::Connect { session: self.id, addr: ctx.address().recipient(), account });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.limits.running.fetch_sub(1, Ordering::Relaxed);
        self.server.do_send(server::Disconnect { session: self.id });
    }
}

impl Handler<Push> for WsSession {
    type Result = ();

    fn handle(&mut self, push: Push, ctx: &mut Self::Context) {
        match push {
            Push::Frame(frame) => self.emit(frame, ctx),
            Push::Joined { room, members, query, plan } => {
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
                        history: MessageView::list(&page.messages),
                        truncated: page.truncated,
                    }
                    .to_text();
                    match error {
                        Some(e) => vec![ServerFrame::error(&e, Some(room.as_str()), None), joined],
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
                        Err(e) => ServerFrame::error(&e, Some(room.as_str()), None),
                    }]
                });
            }
            Push::Close(reason) => self.close_with(ctx, Some(reason)),
        }
    }
}

/// Drives the session's socket: reads and handles the client's frames,
/// writes what is queued, and ends the session when the connection ends.
struct Io;

/// Reads handled in one turn before other work gets its chance.
const READS_PER_TURN: usize = 16;

impl ActorFuture<WsSession> for Io {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut WsSession,
        ctx: &mut Context<WsSession>,
        task: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        loop {
            act.read_and_handle(ctx, task);
            let was = act.conn.state();
            match act.conn.poll_flush(task) {
                Poll::Ready(Ok(())) => match act.conn.state() {
                    State::Done => break,
                    // The close frame just went out: start draining now.
                    State::Draining if was != State::Draining => continue,
                    _ => return Poll::Pending,
                },
                Poll::Ready(Err(FlushError::Overflow)) => {
                    act.write_overflowed(ctx);
                    break;
                }
                Poll::Ready(Err(FlushError::Io(_))) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        ctx.stop();
        Poll::Ready(())
    }
}

impl WsSession {
    /// Reads what the client sent and handles every complete frame, for a
    /// bounded number of reads so one busy client cannot hold the thread.
    fn read_and_handle(&mut self, ctx: &mut Context<Self>, task: &mut std::task::Context<'_>) {
        for _ in 0..READS_PER_TURN {
            loop {
                match self.conn.next_frame() {
                    Ok(Some(frame)) => self.on_frame(frame, ctx),
                    Ok(None) => break,
                    Err(e) => {
                        self.on_protocol_error(e, ctx);
                        break;
                    }
                }
            }
            if !self.conn.reading() {
                return;
            }
            match self.conn.poll_read(task) {
                Poll::Ready(Ok(true)) => self.last_heard = Instant::now(),
                // The client closed its side: what is queued for it still
                // goes out, followed by our close frame.
                Poll::Ready(Ok(false)) if self.conn.state() == State::Open => {
                    self.close_with(ctx, None);
                    return;
                }
                Poll::Ready(Ok(false) | Err(_)) => {
                    self.conn.finished_reading();
                    return;
                }
                Poll::Pending => return,
            }
        }
        task.waker().wake_by_ref();
    }
}
