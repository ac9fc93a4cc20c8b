//! `GET /ws`: the WebSocket handshake. The transport (`crate::ws`) brings
//! the request here like any other; this handler decides whether the page
//! asking may connect and who is connecting, and the transport hands the
//! socket to a new session with that identity (`take_socket`), as it does
//! for Socket.IO's WebSockets (`routes::socketio`).

use std::sync::Arc;

use actix::Actor;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{identity, AppState};
use crate::chat::link::Link;
use crate::chat::session::{Identity, WsSession};
use crate::error::ChatError;
use crate::metrics::Reason;
use crate::socketio::polling::Polling;
use crate::socketio::Connection;
use crate::ws::{self, Socket};

/// What a handshake was accepted for: what becomes of its socket.
pub enum Accepted {
    /// A native client.
    Native(Identity),
    /// A Socket.IO client on the WebSocket transport from the start.
    SocketIo(Identity),
    /// A Socket.IO client upgrading from long-polling: the socket joins
    /// its session.
    Upgrade(Arc<Polling>),
}

pub async fn connect(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, actix_web::Error> {
    let handshake = admit(&req, &state)?;
    Ok(handshake.accept(Accepted::Native(identity(&req, &state).await)))
}

/// Checks that the page asking may connect, that the server takes new
/// connections, and that the request is a handshake with room for one more.
pub fn admit(req: &HttpRequest, state: &AppState) -> Result<ws::Handshake, actix_web::Error> {
    admissible(req, state)?;
    ws::handshake(req, place(req, state)?)
}

/// A place among the open connections for one more from this client, or
/// 503 at once.
pub fn place(req: &HttpRequest, state: &AppState) -> Result<ws::Registered, ChatError> {
    state.connections.register(state.proxies.client_ip(req)).map_err(|refused| {
        state.metrics.connections_refused.get_or_create(&Reason { reason: "connection_cap" }).inc();
        ChatError::Busy(match refused {
            ws::Refused::Full => "the server has all the connections it takes; try again shortly".into(),
            ws::Refused::AddressFull => "too many connections from your address; close one first".into(),
        })
    })
}

/// The Origin check, and whether the server takes new connections.
pub fn admissible(req: &HttpRequest, state: &AppState) -> Result<(), ChatError> {
    origin_checked(req, state)?;
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        // Behind a balancer the client's retry lands on another node.
        return Err(ChatError::Busy("this server is stopping; connect again".into()));
    }
    Ok(())
}

/// The Origin check alone.
pub fn origin_checked(req: &HttpRequest, state: &AppState) -> Result<(), ChatError> {
    if !origin_allowed(req, state) {
        return Err(ChatError::ForbiddenOrigin);
    }
    Ok(())
}

/// Who is connecting: the account logged in, or a guest.
pub async fn identity(req: &HttpRequest, state: &AppState) -> Identity {
    match identity::current_user(req, state).await {
        Some(user) => {
            let login = identity::login(req, &state.key).expect("a logged-in request has a token");
            Identity::User { user, login }
        }
        None => Identity::Guest {
            cookie_name: identity::display_name(req, &state.key),
            guest_id: identity::guest_id(req, &state.key),
            address: state.proxies.client_ip(req),
        },
    }
}

/// Starts the session of a new connection.
pub fn start_session(state: &AppState, identity: Identity, link: Link) {
    WsSession::new(state.chat.clone(), state.log.clone(), state.sessions.clone(), identity, link).start();
}

/// Where a socket goes once its handshake is answered.
pub fn take_socket(state: &AppState, socket: Socket, accepted: Accepted) {
    match accepted {
        Accepted::Native(identity) => start_session(state, identity, Link::Native(socket)),
        Accepted::SocketIo(identity) => {
            let connection = Connection::websocket(socket, state.engine.clone());
            start_session(state, identity, Link::SocketIo(Box::new(connection)));
        }
        Accepted::Upgrade(polling) => {
            if !polling.offer_upgrade(socket) {
                log::debug!("polling session {}: ended before its upgrade", polling.sid);
            }
        }
    }
}

/// Another site's page must not open a socket that carries our visitor's
/// cookie. Browsers always send `Origin` on a WebSocket handshake; clients
/// without one (bots, tools) have no visitor's cookie to abuse. Parlor's own
/// pages may connect, and so may the pages of `--allowed-origins`.
fn origin_allowed(req: &HttpRequest, state: &AppState) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let host = state.proxies.host(req);
    // Reached over HTTPS (Parlor's own TLS, or a trusted proxy's), our own
    // pages are https ones: a page from plain http on the same host (which
    // anyone on the network path can write) is not.
    let https = state.proxies.https(req);
    let scheme_ok = |scheme: &str| !https || scheme.eq_ignore_ascii_case("https");
    let own =
        origin.split_once("://").is_some_and(|(scheme, rest)| scheme_ok(scheme) && rest.eq_ignore_ascii_case(&host));
    own || state.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(origin))
}
