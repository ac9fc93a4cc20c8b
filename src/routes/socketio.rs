//! `/socket.io/`: Engine.IO's HTTP side. A `GET` without a sid is the
//! handshake (answered with the open packet on long-polling, or a WebSocket
//! for a client that starts there); with a sid, a `GET` waits for the
//! server's packets, a `POST` carries the client's, and a WebSocket
//! handshake upgrades the session. The same checks as `/ws` apply: the
//! Origin, the connection caps, who is logged in.

use std::sync::Arc;

use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use futures_util::StreamExt;
use serde::Deserialize;

use super::ws::{self, Accepted};
use super::AppState;
use crate::chat::link::Link;
use crate::chat::session::Identity;
use crate::error::ChatError;
use crate::socketio::packet::{EnginePacket, SEPARATOR};
use crate::socketio::polling::{PollRefused, Polling};
use crate::socketio::Connection;

/// Refusals, with the Engine.IO error codes clients know.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("Transport unknown")]
    TransportUnknown,
    #[error("Session ID unknown")]
    UnknownSession,
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    #[error("Bad request")]
    BadRequest(String),
    #[error("Forbidden")]
    Forbidden(String),
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
    #[error("Payload too large")]
    TooLarge(usize),
    /// Not Engine.IO's own: the server is full or stopping (503).
    #[error(transparent)]
    Chat(ChatError),
}

impl EngineError {
    fn code(&self) -> u8 {
        match self {
            Self::TransportUnknown => 0,
            Self::UnknownSession => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest(_) | Self::TooLarge(_) | Self::Chat(_) => 3,
            Self::Forbidden(_) => 4,
            Self::UnsupportedProtocolVersion => 5,
        }
    }
}

impl ResponseError for EngineError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Chat(e) => e.status_code(),
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// `{"code", "message"}` as Engine.IO servers answer, and what went
    /// wrong in words where there is more to say.
    fn error_response(&self) -> HttpResponse {
        let detail = match self {
            Self::BadRequest(why) | Self::Forbidden(why) => Some(why.clone()),
            Self::TooLarge(max) => Some(format!("a polling body is at most {max} bytes")),
            Self::Chat(e) => Some(e.client_message().to_string()),
            _ => None,
        };
        let mut body = serde_json::json!({"code": self.code(), "message": self.to_string()});
        if let Some(detail) = detail {
            body["detail"] = detail.into();
        }
        let mut response = HttpResponse::build(self.status_code());
        if let Self::Chat(e) = self {
            // `Retry-After`, when the server is only busy for a moment.
            for (name, value) in e.error_response().headers() {
                if name != header::CONTENT_TYPE {
                    response.insert_header((name.clone(), value.clone()));
                }
            }
        }
        response.json(body)
    }
}

impl From<ChatError> for EngineError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::ForbiddenOrigin => Self::Forbidden(e.client_message().to_string()),
            other => Self::Chat(other),
        }
    }
}

impl From<PollRefused> for EngineError {
    fn from(refused: PollRefused) -> Self {
        match refused {
            PollRefused::UnknownSession => Self::UnknownSession,
            PollRefused::BadRequest => {
                Self::BadRequest("one GET at a time, and none after the upgrade to WebSocket".into())
            }
        }
    }
}

#[derive(Deserialize)]
struct EngineQuery {
    #[serde(rename = "EIO")]
    eio: Option<String>,
    transport: Option<String>,
    sid: Option<String>,
}

/// Every request to `/socket.io/`; refusals too carry the CORS headers, so
/// that an allowed page can read them.
pub async fn engine(req: HttpRequest, body: web::Payload, state: web::Data<AppState>) -> HttpResponse {
    let response = answer(&req, body, &state).await.unwrap_or_else(|e| e.error_response());
    with_cors(&req, &state, response)
}

async fn answer(req: &HttpRequest, body: web::Payload, state: &AppState) -> Result<HttpResponse, EngineError> {
    let query = web::Query::<EngineQuery>::from_query(req.query_string())
        .map_err(|e| EngineError::BadRequest(format!("invalid query: {e}")))?
        .into_inner();
    if query.eio.as_deref() != Some("4") {
        return Err(EngineError::UnsupportedProtocolVersion);
    }
    let websocket = match query.transport.as_deref() {
        Some("polling") => false,
        Some("websocket") => true,
        _ => return Err(EngineError::TransportUnknown),
    };
    let Some(sid) = query.sid else {
        if req.method() != Method::GET {
            return Err(EngineError::BadHandshakeMethod);
        }
        // A new connection passes the Origin check and needs a server that
        // takes new connections; a draining server lets the polls of its
        // sessions go on below, as it lets their WebSockets.
        ws::admissible(req, state)?;
        let identity = ws::identity(req, state).await;
        return match websocket {
            true => Ok(websocket_handshake(req, state)?.accept(Accepted::SocketIo(identity))),
            false => open_polling(req, state, identity),
        };
    };
    let polling = state.polling.get(&sid).ok_or(EngineError::UnknownSession)?;
    if polling.owner.is_some() && polling.owner != super::identity::login(req, &state.key) {
        // A sid seen in a log must not let its reader act as the account.
        return Err(EngineError::Forbidden("this session belongs to another login".into()));
    }
    if websocket {
        ws::admissible(req, state)?;
        Ok(websocket_handshake(req, state)?.accept(Accepted::Upgrade(polling)))
    } else if req.method() == Method::POST {
        ws::origin_checked(req, state)?;
        post(body, &polling, state).await
    } else {
        ws::origin_checked(req, state)?;
        // Pings come every ping interval: a GET waits no longer than that
        // unless the session is stuck, and then gets a noop.
        let wait = state.engine.ping_interval + state.engine.ping_timeout;
        Ok(text(polling.poll(wait).await?))
    }
}

/// A WebSocket handshake with a place among the open connections.
fn websocket_handshake(req: &HttpRequest, state: &AppState) -> Result<crate::ws::Handshake, EngineError> {
    let place = ws::place(req, state)?;
    crate::ws::handshake(req, place).map_err(|e| EngineError::BadRequest(e.to_string()))
}

/// The long-polling handshake: a session, and its open packet.
fn open_polling(req: &HttpRequest, state: &AppState, identity: Identity) -> Result<HttpResponse, EngineError> {
    let place = ws::place(req, state)?;
    let owner = match &identity {
        Identity::User { login, .. } => Some(login.clone()),
        Identity::Guest { .. } => None,
    };
    let sid = crate::tokens::random_hex(15);
    let polling = Arc::new(Polling::new(sid.clone(), owner));
    state.polling.insert(polling.clone());
    let connection = Connection::polling(polling, state.polling.clone(), place, state.engine.clone());
    ws::start_session(state, identity, Link::SocketIo(Box::new(connection)));
    Ok(text(state.engine.open_packet(&sid, &["websocket"])))
}

/// A `POST`: the client's packets, checked whole before any is handed on.
async fn post(mut body: web::Payload, polling: &Polling, state: &AppState) -> Result<HttpResponse, EngineError> {
    let max = state.engine.max_payload;
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| EngineError::BadRequest(format!("reading the body: {e}")))?;
        if bytes.len() + chunk.len() > max {
            polling.close();
            return Err(EngineError::TooLarge(max));
        }
        bytes.extend_from_slice(&chunk);
    }
    let refuse = |why: String| {
        // A client that sends what it should not is disconnected, as
        // Engine.IO servers do.
        polling.close();
        EngineError::BadRequest(why)
    };
    let body = std::str::from_utf8(&bytes).map_err(|_| refuse("a polling body is UTF-8 text".into()))?;
    let packets: Vec<String> = body.split(SEPARATOR).map(str::to_string).collect();
    if let Some(e) = packets.iter().find_map(|p| EnginePacket::check(p).err()) {
        return Err(refuse(format!("not Engine.IO packets: {e}")));
    }
    polling.post(packets, state.engine.max_buffered)?;
    Ok(text("ok".into()))
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=UTF-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// Pages of `--allowed-origins` may poll with their visitor's cookies.
fn with_cors(req: &HttpRequest, state: &AppState, mut response: HttpResponse) -> HttpResponse {
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok());
    if let Some(origin) = origin.filter(|o| state.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(o))) {
        if let Ok(value) = header::HeaderValue::from_str(origin) {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, header::HeaderValue::from_static("true"));
            headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
        }
    }
    response
}
