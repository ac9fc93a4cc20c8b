//! `WsSession`: one WebSocket connection. This module is the only one that
//! knows the transport (actix-web-actors): it turns frames into validated
//! commands for the ChatServer and writes what the ChatServer pushes.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use bytestring::ByteString;

use super::history::{self, HistoryPage, HistoryPlan, HistoryQuery};
use super::server::{self, ChatServer, Push, SessionId};
use crate::db::DbPool;
use crate::domain::{DisplayName, MessageText, Nonce, RoomName};
use crate::error::ChatError;
use crate::protocol::{ClientFrame, MessageView, ServerFrame, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT};

/// The limits every session applies; built once from the settings.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub max_message_bytes: usize,
    pub max_frame_bytes: usize,
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    pub outbound_queue: usize,
    pub rate_per_sec: f64,
    pub rate_burst: f64,
}

/// Typing notices from one session are passed on at most this often per room.
const TYPING_INTERVAL: Duration = Duration::from_secs(2);

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

pub struct WsSession {
    id: SessionId,
    server: Addr<ChatServer>,
    pool: DbPool,
    limits: Arc<SessionLimits>,
    /// The name from the session cookie, used when `join_room` has none.
    cookie_name: Option<DisplayName>,
    socket: Option<Arc<OwnedFd>>,
    last_heard: Instant,
    sends: TokenBucket,
    last_typing: HashMap<RoomName, Instant>,
    /// A fragmented text message being reassembled; `None` inside is binary.
    fragments: Option<Option<Vec<u8>>>,
}

impl WsSession {
    pub fn new(
        server: Addr<ChatServer>,
        pool: DbPool,
        limits: Arc<SessionLimits>,
        cookie_name: Option<DisplayName>,
        socket: Option<Arc<OwnedFd>>,
    ) -> Self {
        Self {
            id: NEXT_SESSION.fetch_add(1, Ordering::Relaxed),
            server,
            pool,
            sends: TokenBucket::new(limits.rate_per_sec, limits.rate_burst),
            limits,
            cookie_name,
            socket,
            last_heard: Instant::now(),
            last_typing: HashMap::new(),
            fragments: None,
        }
    }

    fn send_error(ctx: &mut ws::WebsocketContext<Self>, err: &ChatError, room: Option<&str>, nonce: Option<&str>) {
        ctx.text(ServerFrame::error(err, room, nonce));
    }

    fn close(ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, why: &str) {
        ctx.close(Some(CloseReason {
            code,
            description: Some(why.to_string()),
        }));
        ctx.stop();
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        let mut frame = match ClientFrame::parse(text) {
            Ok(frame) => frame,
            Err(e) => return Self::send_error(ctx, &e, None, None),
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
            Self::send_error(ctx, &e, room, nonce);
        }
    }

    /// Validates a frame and hands it to the ChatServer. The frame is taken
    /// by reference so an error can still name its room and nonce.
    fn forward(&mut self, frame: &mut ClientFrame, ctx: &mut ws::WebsocketContext<Self>) -> Result<(), ChatError> {
        let session = self.id;
        match frame {
            ClientFrame::JoinRoom { room, name, since } => {
                let room = RoomName::parse(room)?;
                let name = match name {
                    Some(name) => DisplayName::parse(name)?,
                    None => self.cookie_name.clone().ok_or_else(|| {
                        ChatError::InvalidName(
                            "a display name is required: send `name` or choose one on the home page".into(),
                        )
                    })?,
                };
                if since.is_some_and(|s| s < 0) {
                    return Err(ChatError::BadRequest("`since` must not be negative".into()));
                }
                self.server.do_send(server::Join {
                    session,
                    room,
                    name,
                    since: *since,
                });
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
                if !self.sends.take(Instant::now()) {
                    return Err(ChatError::RateLimited(
                        "sending too fast; message not accepted, slow down".into(),
                    ));
                }
                self.server.do_send(server::Send {
                    session,
                    room,
                    text,
                    nonce,
                });
            }
            ClientFrame::History { room, before, limit } => {
                let room = RoomName::parse(room)?;
                let limit = limit.unwrap_or(DEFAULT_HISTORY_LIMIT);
                if !(1..=MAX_HISTORY_LIMIT).contains(&limit) {
                    return Err(ChatError::BadRequest(format!(
                        "`limit` must be 1 to {MAX_HISTORY_LIMIT}"
                    )));
                }
                if before.is_some_and(|b| b < 1) {
                    return Err(ChatError::BadRequest(
                        "`before` must be a message id (1 or more)".into(),
                    ));
                }
                let query = HistoryQuery::Before {
                    before: before.unwrap_or(i64::MAX),
                    limit: usize::try_from(limit).expect("checked range"),
                };
                self.server.do_send(server::History { session, room, query });
            }
            ClientFrame::Typing { room } => {
                let room = RoomName::parse(room)?;
                let now = Instant::now();
                let recent = self
                    .last_typing
                    .get(&room)
                    .is_some_and(|at| now - *at < TYPING_INTERVAL);
                if !recent {
                    self.last_typing.insert(room.clone(), now);
                    self.server.do_send(server::Typing { session, room });
                }
            }
            ClientFrame::Ping => ctx.text(ServerFrame::Pong.to_text()),
        }
        Ok(())
    }

    /// Writes a history answer. When the tail is not enough the database is
    /// queried on a blocking thread, and the session waits for it before
    /// handling anything else, so frames stay in order (`joined` before the
    /// live messages that follow it).
    fn answer_history(
        &mut self,
        ctx: &mut ws::WebsocketContext<Self>,
        query: HistoryQuery,
        plan: HistoryPlan,
        render: impl FnOnce(HistoryPage) -> ByteString + 'static,
    ) {
        let room = plan.room.clone();
        let lookup = history::resolve(plan, query, self.pool.clone());
        ctx.wait(lookup.into_actor(self).map(move |result, _, ctx| match result {
            Ok(page) => ctx.text(render(page)),
            Err(e) => Self::send_error(ctx, &e, Some(room.as_str()), None),
        }));
    }

    fn on_fragment(&mut self, item: Item, ctx: &mut ws::WebsocketContext<Self>) {
        let (chunk, last) = match item {
            Item::FirstText(b) => {
                self.fragments = Some(Some(Vec::new()));
                (b, false)
            }
            Item::FirstBinary(b) => {
                self.fragments = Some(None);
                (b, false)
            }
            Item::Continue(b) => (b, false),
            Item::Last(b) => (b, true),
        };
        let Some(buffer) = self.fragments.as_mut() else {
            return Self::close(ctx, CloseCode::Protocol, "continuation without a first fragment");
        };
        if let Some(text) = buffer {
            if text.len() + chunk.len() > self.limits.max_frame_bytes {
                return Self::close(ctx, CloseCode::Size, "message exceeds the frame size limit");
            }
            text.extend_from_slice(&chunk);
        }
        if last {
            match self.fragments.take().flatten().map(String::from_utf8) {
                Some(Ok(text)) => self.on_text(&text, ctx),
                Some(Err(_)) => Self::close(ctx, CloseCode::Invalid, "text message is not UTF-8"),
                None => Self::send_error(ctx, &binary_refused(), None, None),
            }
        }
    }
}

fn binary_refused() -> ChatError {
    ChatError::BadRequest("binary frames are not supported; send JSON text frames".into())
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The bound that makes a slow consumer visible: once this many frames
        // wait here, the ChatServer's `try_send` fails and it disconnects us.
        ctx.set_mailbox_capacity(self.limits.outbound_queue);
        ctx.run_interval(self.limits.heartbeat_interval, |act, ctx| {
            if act.last_heard.elapsed() > act.limits.client_timeout {
                log::info!("session {}: no sign of life from the client; disconnecting", act.id);
                return WsSession::close(ctx, CloseCode::Away, "heartbeat timeout");
            }
            ctx.ping(b"");
        });
        self.server.do_send(server::Connect {
            session: self.id,
            addr: ctx.address().recipient(),
            socket: self.socket.clone(),
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.server.do_send(server::Disconnect { session: self.id });
    }
}

impl Handler<Push> for WsSession {
    type Result = ();

    fn handle(&mut self, push: Push, ctx: &mut Self::Context) {
        match push {
            Push::Frame(frame) => ctx.text(frame),
            Push::Joined {
                room,
                members,
                query,
                plan,
            } => {
                self.answer_history(ctx, query, plan, move |page| {
                    ServerFrame::Joined {
                        room: room.as_str(),
                        members: members.iter().map(DisplayName::as_str).collect(),
                        history: MessageView::list(&page.messages),
                        truncated: page.truncated,
                    }
                    .to_text()
                });
            }
            Push::History { room, query, plan } => {
                self.answer_history(ctx, query, plan, move |page| {
                    ServerFrame::History {
                        room: room.as_str(),
                        messages: MessageView::list(&page.messages),
                    }
                    .to_text()
                });
            }
            Push::Close(reason) => {
                ctx.close(Some(reason));
                ctx.stop();
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Binary(_)) => Self::send_error(ctx, &binary_refused(), None, None),
            Ok(ws::Message::Continuation(item)) => self.on_fragment(item, ctx),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_) | ws::Message::Nop) => {}
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(ws::ProtocolError::Overflow) => Self::close(
                ctx,
                CloseCode::Size,
                &format!("frame exceeds {} bytes", self.limits.max_frame_bytes),
            ),
            Err(e) => {
                log::debug!("session {}: protocol error: {e}", self.id);
                Self::close(ctx, CloseCode::Protocol, "protocol error");
            }
        }
    }
}

/// Allows `burst` sends at once and `rate` per second after that.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst: burst.max(1.0),
            tokens: burst.max(1.0),
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TokenBucket;
    use std::time::{Duration, Instant};

    #[test]
    fn bucket_allows_burst_then_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3.0);
        assert!((0..3).all(|_| bucket.take(start)));
        assert!(!bucket.take(start));
        assert!(bucket.take(start + Duration::from_millis(500)));
        assert!(!bucket.take(start + Duration::from_millis(600)));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let mut bucket = TokenBucket::new(0.0, 1.0);
        assert!((0..1000).all(|_| bucket.take(Instant::now())));
    }
}
