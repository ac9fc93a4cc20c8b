//! One Socket.IO client: Engine.IO v4 underneath (its transport, long
//! polling or a WebSocket, and the upgrade from one to the other; pings),
//! Socket.IO v5 on top (CONNECT to the default namespace, EVENTs and ACKs).
//!
//! To the session that owns it, it looks like a native socket: it hands
//! over the client's events as native frames, and takes native frames to
//! write as events (or acknowledgements). Everything else (rooms, limits,
//! moderation) is the session's and the ChatServer's, the same for both.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use serde_json::Value;
use tokio::time::Sleep;

use super::acks::{Acks, Delivery, Expected};
use super::events::{self, Command};
use super::packet::{SocketKind, SocketPacket};
use super::polling::{Polling, PollingSessions};
use crate::error::ChatError;
use crate::protocol::ServerFrame;
use crate::ws::{CloseCode, CloseReason, Event, Socket, CLOSE_GRACE};

/// How long a client may take from probing a WebSocket to moving to it.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(10);
/// Packets handled in one turn before other sessions get theirs (a polling
/// body may bring thousands).
const PACKETS_PER_TURN: u32 = 64;

/// What the open packet promises, and what bounds a polling client.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// How often the server pings.
    pub ping_interval: Duration,
    /// How long after a ping the client may take to answer.
    pub ping_timeout: Duration,
    /// The largest message, and the largest polling body.
    pub max_payload: usize,
    /// Bytes that may wait for a polling client's next `GET`, or wait to be
    /// handled after its `POST`s.
    pub max_buffered: usize,
}

impl EngineSettings {
    /// The Engine.IO open packet for session `sid`.
    pub fn open_packet(&self, sid: &str, upgrades: &[&str]) -> String {
        let open = serde_json::json!({
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": self.ping_interval.as_millis() as u64,
            "pingTimeout": self.ping_timeout.as_millis() as u64,
            "maxPayload": self.max_payload,
        });
        format!("0{open}")
    }
}

pub struct Connection {
    id: u64,
    transport: Transport,
    settings: Arc<EngineSettings>,
    acks: Acks,
    /// The client connected to the default namespace: events flow.
    connected: bool,
    /// The name in CONNECT's `auth`, for joins that name no one.
    auth_name: Option<String>,
    /// Starts the nonces given to sends with a callback and no nonce, so
    /// that they are unique even across this client's reconnections.
    nonce_prefix: String,
    /// Binary attachments still to come for a packet that was refused.
    skip_binary: usize,
    /// Packets posted before an upgrade and not handled yet: they come
    /// before anything the WebSocket brings.
    posted: VecDeque<String>,
    /// Packets handled since the session last waited.
    packets_this_turn: u32,
}

// A connection ends on the WebSocket almost always: the socket is kept
// inline, the polling link (left behind by most after the upgrade) boxed.
#[allow(clippy::large_enum_variant)]
enum Transport {
    WebSocket(Socket),
    Polling(Box<PollingLink>),
}

/// The session's side of a polling client.
struct PollingLink {
    shared: Arc<Polling>,
    sessions: Arc<PollingSessions>,
    /// Its place among the open connections, held while it lasts.
    _place: crate::ws::Registered,
    /// The next ping while open; the end of the grace once closing.
    timer: Pin<Box<Sleep>>,
    /// A WebSocket the client is upgrading to, before it said so (`5`).
    probe: Option<Socket>,
    /// When a probe that has not moved the client is given up (checked at
    /// each ping).
    probe_deadline: Instant,
    state: LinkState,
    told_closing: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Open,
    Closing,
    Done,
}

/// What a polling link has for its connection.
enum Polled {
    Packet(String),
    /// The client moved to this WebSocket; the packets no poll fetched, and
    /// those posted and not yet handled.
    Upgraded(Box<Socket>, Vec<String>, VecDeque<String>),
    Event(Event),
}

/// What a client sent, as the transport delivered it.
enum Incoming {
    Text(ByteString),
    Binary,
}

impl Connection {
    /// A client that opened a WebSocket straight away: the open packet goes
    /// out first thing.
    pub fn websocket(mut socket: Socket, settings: Arc<EngineSettings>) -> Self {
        socket.ping_with_text("2");
        socket.send_text(&settings.open_packet(&crate::tokens::random_hex(10), &[]));
        Self::new(socket.id(), Transport::WebSocket(socket), settings)
    }

    /// A polling client, whose open packet was the handshake's answer.
    pub fn polling(
        shared: Arc<Polling>,
        sessions: Arc<PollingSessions>,
        place: crate::ws::Registered,
        settings: Arc<EngineSettings>,
    ) -> Self {
        let timer = Box::pin(tokio::time::sleep(settings.ping_interval));
        let link = PollingLink {
            shared,
            sessions,
            _place: place,
            timer,
            probe: None,
            probe_deadline: Instant::now(),
            state: LinkState::Open,
            told_closing: false,
        };
        Self::new(crate::ws::next_id(), Transport::Polling(Box::new(link)), settings)
    }

    fn new(id: u64, transport: Transport, settings: Arc<EngineSettings>) -> Self {
        Self {
            id,
            transport,
            settings,
            acks: Acks::default(),
            connected: false,
            auth_name: None,
            nonce_prefix: format!("sio-{}-", crate::tokens::random_hex(6)),
            skip_binary: 0,
            posted: VecDeque::new(),
            packets_this_turn: 0,
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Writes a native frame: as an event named after its type, as the
    /// answer to a callback, or both (see `acks`). Nothing goes to a client
    /// that has not connected to the namespace.
    pub fn send_text(&mut self, frame: &str) {
        if !self.connected {
            return;
        }
        match self.acks.deliver(frame) {
            Delivery::Event => self.send_event(frame),
            Delivery::AckOnly(ack) => self.send_ack(ack, frame),
            Delivery::EventAndAck(ack) => {
                self.send_event(frame);
                self.send_ack(ack, frame);
            }
        }
    }

    fn send_event(&mut self, frame: &str) {
        let Some(parts) = events::event_parts(frame) else {
            // Its length only: a frame can carry a message's text.
            return log::error!("connection {}: a {}-byte frame not tagged by its type first", self.id, frame.len());
        };
        match &mut self.transport {
            Transport::WebSocket(socket) => socket.send_text_parts(&parts),
            Transport::Polling(_) => self.send_packet(parts.concat()),
        }
    }

    /// The answer to ack `ack`: `frame` as its argument (none if empty).
    fn send_ack(&mut self, ack: u64, frame: &str) {
        self.send_packet(format!("43{ack}[{frame}]"));
    }

    /// Writes an Engine.IO packet on the current transport.
    fn send_packet(&mut self, packet: String) {
        match &mut self.transport {
            Transport::WebSocket(socket) => socket.send_text(&packet),
            Transport::Polling(link) => {
                if link.state == LinkState::Open && !link.shared.push(packet, self.settings.max_buffered) {
                    crate::warn_throttled!("connection {}: a polling client stopped fetching; disconnecting", self.id);
                    link.shared.abandon();
                    link.begin_close();
                }
            }
        }
    }

    /// Closes with `code` and `why`; see `close_with`.
    pub fn close(&mut self, code: CloseCode, why: &str) {
        self.close_with(Some(CloseReason { code, description: Some(why.to_string()) }));
    }

    /// Ends the connection. A policy close (the server put the client out)
    /// first tells the client it was disconnected from the namespace, so
    /// that it does not reconnect on its own; other closes (a restart, a
    /// shutdown) leave reconnecting to it.
    pub fn close_with(&mut self, reason: Option<CloseReason>) {
        if self.connected && reason.as_ref().is_some_and(|r| r.code == CloseCode::Policy) {
            self.send_packet("41".into());
        }
        self.connected = false;
        match &mut self.transport {
            Transport::WebSocket(socket) => socket.close_with(reason),
            Transport::Polling(link) => {
                if link.state == LinkState::Open {
                    link.shared.push("1".into(), usize::MAX);
                    link.begin_close();
                }
            }
        }
    }

    /// The client's next event, as a native frame, or the end of the
    /// connection; Engine.IO and Socket.IO's own packets are answered on
    /// the way.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        loop {
            if self.packets_this_turn >= PACKETS_PER_TURN {
                // More may be waiting: come back after the others had a turn.
                self.packets_this_turn = 0;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let incoming = match (self.posted.pop_front(), &mut self.transport) {
                (Some(posted), _) => Incoming::Text(posted.into()),
                (None, Transport::WebSocket(socket)) => match socket.poll_event(cx) {
                    Poll::Ready(Event::Text(text)) => Incoming::Text(text),
                    Poll::Ready(Event::Binary) => Incoming::Binary,
                    Poll::Pending => {
                        self.packets_this_turn = 0;
                        return Poll::Pending;
                    }
                    other => return other,
                },
                (None, Transport::Polling(link)) => match link.poll(cx, &self.settings) {
                    Poll::Ready(Polled::Packet(text)) => Incoming::Text(text.into()),
                    Poll::Ready(Polled::Upgraded(socket, unfetched, posted)) => {
                        // The packets no GET took yet go out first, in order.
                        self.transport = Transport::WebSocket(*socket);
                        unfetched.into_iter().for_each(|packet| self.send_packet(packet));
                        self.posted = posted;
                        continue;
                    }
                    Poll::Ready(Polled::Event(event)) => return Poll::Ready(event),
                    Poll::Pending => {
                        self.packets_this_turn = 0;
                        return Poll::Pending;
                    }
                },
            };
            self.packets_this_turn += 1;
            if let Some(frame) = self.on_engine_packet(incoming) {
                return Poll::Ready(Event::Text(frame));
            }
        }
    }

    /// An Engine.IO packet from the client: the native frame it carries,
    /// if any.
    fn on_engine_packet(&mut self, incoming: Incoming) -> Option<ByteString> {
        let text = match incoming {
            Incoming::Text(text) if !text.starts_with('b') => text,
            // Binary data: an attachment of a packet already refused, or
            // one nobody announced.
            _ => {
                if self.skip_binary > 0 {
                    self.skip_binary -= 1;
                } else {
                    self.answer_error(None, binary_refused());
                }
                return None;
            }
        };
        match text.as_bytes().first() {
            Some(b'4') => self.on_socket_packet(&text[1..]),
            // Clients ping only to probe an upgrade; answer any.
            Some(b'2') => {
                self.send_packet(format!("3{}", &text[1..]));
                None
            }
            // A pong: the transport already noted that the client is there.
            Some(b'3' | b'5' | b'6') => None,
            Some(b'1') => {
                self.close(CloseCode::Normal, "the client closed");
                None
            }
            _ => {
                log::info!("connection {}: not an Engine.IO packet; disconnecting", self.id);
                self.close(CloseCode::Invalid, "malformed Engine.IO packet");
                None
            }
        }
    }

    fn on_socket_packet(&mut self, text: &str) -> Option<ByteString> {
        let packet = match SocketPacket::decode(text) {
            Ok(packet) => packet,
            Err(e) => {
                // What Socket.IO servers do with a packet they cannot parse.
                log::info!("connection {}: {e}; disconnecting", self.id);
                self.close(CloseCode::Invalid, &format!("malformed Socket.IO packet: {e}"));
                return None;
            }
        };
        match packet.kind {
            SocketKind::Connect => self.on_connect(packet),
            SocketKind::Disconnect if packet.namespace == "/" => {
                self.connected = false;
                self.close(CloseCode::Normal, "the client disconnected");
            }
            SocketKind::Event if self.connected && packet.namespace == "/" => return self.on_event(packet),
            SocketKind::BinaryEvent | SocketKind::BinaryAck => {
                self.skip_binary = packet.attachments;
                let ack = packet.ack.filter(|_| packet.kind == SocketKind::BinaryEvent);
                self.answer_error(ack, binary_refused());
            }
            // Events for a namespace the client is not connected to are
            // dropped, as the specification says; the server asks for no
            // acknowledgements, and CONNECT_ERROR is the server's to send.
            _ => log::debug!("connection {}: ignored a {:?} packet", self.id, packet.kind),
        }
        None
    }

    fn on_connect(&mut self, packet: SocketPacket) {
        if packet.namespace != "/" {
            return self.refuse_connect(packet.namespace, "Invalid namespace");
        }
        match auth_name(packet.data.as_ref()) {
            Ok(name) => {
                self.auth_name = name;
                self.connected = true;
                let sid = crate::tokens::random_hex(10);
                self.send_packet(format!("40{{\"sid\":\"{sid}\"}}"));
            }
            Err(why) => self.refuse_connect(packet.namespace, why),
        }
    }

    /// CONNECT_ERROR for `namespace`, saying `why`.
    fn refuse_connect(&mut self, namespace: String, why: &str) {
        let error = serde_json::json!({"message": why});
        let refusal = SocketPacket { namespace, ..SocketPacket::new(SocketKind::ConnectError, Some(error)) };
        self.send_packet(format!("4{}", refusal.encode()));
    }

    fn on_event(&mut self, packet: SocketPacket) -> Option<ByteString> {
        let data = packet.data.unwrap_or(Value::Null);
        let mut command = match Command::from_event(&data) {
            Ok(command) => command,
            Err(e) => {
                self.answer_error(packet.ack, ChatError::BadRequest(e.to_string()));
                return None;
            }
        };
        if command.name == "join_room" && !command.fields.contains_key("name") {
            if let Some(name) = &self.auth_name {
                command.fields.insert("name".into(), name.clone().into());
            }
        }
        let Some(ack) = packet.ack else { return Some(command.into_native().into()) };
        if command.name == "send_message" && !command.fields.contains_key("nonce") {
            // Its answer is told apart by its nonce.
            command.fields.insert("nonce".into(), format!("{}{ack}", self.nonce_prefix).into());
        }
        let name = command.name;
        let native = command.into_native();
        match self.acks.expect(ack, name, &native) {
            Expected::Later => {}
            Expected::AtOnce => self.send_ack(ack, ""),
            Expected::Refused(error) => {
                self.send_ack(ack, &error);
                return None;
            }
        }
        Some(native.into())
    }

    /// An error about a packet the server does not pass on: to its callback
    /// when it has one, as an `error` event otherwise.
    fn answer_error(&mut self, ack: Option<u64>, error: ChatError) {
        if !self.connected {
            return;
        }
        let frame = ServerFrame::error(&error, None, None, None);
        match ack {
            Some(ack) => self.send_ack(ack, &frame),
            None => self.send_event(&frame),
        }
    }
}

fn binary_refused() -> ChatError {
    ChatError::BadRequest("binary attachments are not supported; send JSON".into())
}

/// The display name in CONNECT's `auth` (`name`, or `username` as
/// Flask-SocketIO apps call it), validated when it is used to join.
fn auth_name(auth: Option<&Value>) -> Result<Option<String>, &'static str> {
    match auth {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(fields)) => match fields.get("name").or_else(|| fields.get("username")) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(name)) => Ok(Some(name.clone())),
            Some(_) => Err("`auth.name` must be a string"),
        },
        Some(_) => Err("`auth` must be an object"),
    }
}

impl PollingLink {
    fn begin_close(&mut self) {
        if self.state == LinkState::Open {
            self.state = LinkState::Closing;
            self.shared.close();
            self.timer.as_mut().reset(tokio::time::Instant::now() + CLOSE_GRACE);
        }
    }

    fn poll(&mut self, cx: &mut Context<'_>, settings: &EngineSettings) -> Poll<Polled> {
        loop {
            if self.state != LinkState::Open && !self.told_closing {
                self.told_closing = true;
                return Poll::Ready(Polled::Event(Event::Closing));
            }
            if self.state == LinkState::Done {
                return Poll::Ready(Polled::Event(Event::Closed));
            }
            if self.state == LinkState::Open {
                if self.shared.closed() {
                    // The client broke the rules, or posted faster than served.
                    self.begin_close();
                    continue;
                }
                if let Some(packet) = self.shared.next_incoming(cx.waker()) {
                    return Poll::Ready(Polled::Packet(packet));
                }
                if let Some(upgraded) = self.poll_probe(cx) {
                    return Poll::Ready(upgraded);
                }
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.probe.is_some() && Instant::now() > self.probe_deadline {
                log::debug!("polling session {}: the upgrade did not finish; staying on polling", self.shared.sid);
                self.probe = None;
                self.shared.set_upgrading(false);
            }
            if self.state == LinkState::Closing {
                self.state = LinkState::Done;
            } else if self.shared.silent_for() > settings.ping_interval + settings.ping_timeout {
                log::info!("polling session {}: no pong from the client; disconnecting", self.shared.sid);
                self.begin_close();
            } else {
                self.shared.push("2".into(), usize::MAX);
                self.timer.as_mut().reset(tokio::time::Instant::now() + settings.ping_interval);
            }
        }
    }

    /// Follows an upgrade: the client probes the WebSocket (`2probe`,
    /// answered `3probe`, while polls are answered at once so that polling
    /// pauses), then says it moved (`5`).
    fn poll_probe(&mut self, cx: &mut Context<'_>) -> Option<Polled> {
        if self.probe.is_none() {
            self.probe = self.shared.take_upgrade().map(|mut socket| {
                socket.ping_with_text("2");
                socket
            });
            self.probe_deadline = Instant::now() + UPGRADE_TIMEOUT;
        }
        let probe = self.probe.as_mut()?;
        loop {
            match probe.poll_event(cx) {
                Poll::Ready(Event::Text(text)) if text == "2probe" => {
                    probe.send_text("3probe");
                    self.shared.set_upgrading(true);
                }
                Poll::Ready(Event::Text(text)) if text == "5" => {
                    let socket = self.probe.take().expect("probing");
                    let (unfetched, posted) = self.shared.finish_upgrade();
                    return Some(Polled::Upgraded(Box::new(socket), unfetched, posted));
                }
                // Nothing else belongs on a WebSocket before the upgrade.
                Poll::Ready(Event::Text(_) | Event::Binary) => {}
                Poll::Ready(Event::Closing | Event::Closed) => {
                    self.probe = None;
                    self.shared.set_upgrading(false);
                    return None;
                }
                Poll::Pending => return None,
            }
        }
    }
}

impl Drop for PollingLink {
    fn drop(&mut self) {
        self.shared.close();
        self.sessions.remove(&self.shared.sid);
    }
}
