//! `GET /ws`: the WebSocket handshake.
//!
//! Upgrade requests do not stay in the HTTP layer: `upgrade` below receives
//! the raw connection, runs the request through the app like any other (so
//! `connect` decides, with the usual middleware, state and extractors), and
//! when `connect` accepted it, writes the 101 and hands the socket to a new
//! `WsSession`. Everything else gets its response and the connection ends.

use std::rc::Rc;

use actix::Actor;
use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::{h1, ConnectionType, HttpMessage, Request, Response};
use actix_service::Service;
use actix_web::dev::ServiceResponse;
use actix_web::http::{header, StatusCode};
use actix_web::rt::net::TcpStream;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;

use crate::chat::connection::Connection;
use crate::chat::session::{Identity, WsSession};
use crate::error::ChatError;
use crate::identity;
use crate::startup::AppState;

/// What `connect` decided for an accepted handshake, carried to `upgrade` in
/// the response's extensions.
struct Accepted(Identity);

/// Marks a request that came through `upgrade`, the only path on which a
/// 101 can be followed by a session.
struct ViaUpgrade;

/// The most of an ordinary answer `upgrade` buffers (its own errors and the
/// handshake's refusals are small).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub async fn connect(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, actix_web::Error> {
    if !origin_allowed(&req, &state.allowed_origins) {
        return Ok(HttpResponse::Forbidden().json(serde_json::json!({
            "error": "forbidden_origin",
            "message": "pages from this origin may not open Parlor WebSockets",
        })));
    }
    if req.extensions().get::<ViaUpgrade>().is_none() {
        // A handshake the HTTP layer does not treat as an upgrade (say,
        // `Upgrade: websocket, foo`) would get a 101 and no session.
        let why = "a WebSocket handshake needs `Connection: Upgrade` and `Upgrade: websocket`";
        return Ok(ChatError::BadRequest(why.into()).error_response());
    }
    let mut response = HttpResponse::from(actix_http::ws::handshake(req.head())?.finish()).map_into_boxed_body();
    let identity = match identity::current_user(&req, &state).await {
        Some(user) => {
            let token = identity::auth_token(&req, &state.key).expect("a logged-in request has a token");
            Identity::User { user, login: crate::accounts::token_hash(&token) }
        }
        None => Identity::Guest { cookie_name: identity::display_name(&req, &state.key) },
    };
    response.extensions_mut().insert(Accepted(identity));
    Ok(response)
}

/// Every upgrade request comes here with its connection. Only `/ws`
/// upgrades; anything else gets a small 400 and the connection ends.
pub async fn upgrade<S, B>(
    req: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
    app: Rc<S>,
    state: web::Data<AppState>,
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    let response: Response<BoxBody> = if req.path() == "/ws" {
        req.extensions_mut().insert(ViaUpgrade);
        match app.call(req).await {
            Ok(response) => Response::<B>::from(response).map_into_boxed_body(),
            Err(e) => e.error_response().into(),
        }
    } else {
        ChatError::BadRequest("only /ws accepts an upgrade".into()).error_response().into()
    };
    let (mut head, body) = response.into_parts();
    let accepted = head.extensions_mut().remove::<Accepted>();
    let sent = match accepted {
        Some(Accepted(identity)) if head.status() == StatusCode::SWITCHING_PROTOCOLS => {
            framed.send(h1::Message::Item((head, BodySize::None))).await.map(|()| {
                let parts = framed.into_parts();
                // Chat frames are small and latency-bound: never hold them
                // back waiting for an ACK (Nagle). The HTTP layer's own
                // `tcp_nodelay` does not reach sockets accepted for HTTP/1.
                let _ = parts.io.set_nodelay(true);
                // The HTTP layer's buffers are sized for requests; keep only
                // what the client sent after its handshake, if anything.
                let leftover =
                    if parts.read_buf.is_empty() { BytesMut::new() } else { BytesMut::from(&parts.read_buf[..]) };
                let limits = &state.limits;
                let conn = Connection::new(parts.io, leftover, limits.max_frame_bytes, limits.max_buffered_bytes);
                WsSession::new(state.chat.clone(), state.pool.clone(), limits.clone(), identity, conn).start();
            })
        }
        _ => {
            // An ordinary answer (a refusal): sent whole, then the
            // connection ends, as the header says.
            let body = match actix_http::body::to_bytes_limited(body, MAX_ANSWER_BYTES).await {
                Ok(Ok(body)) => body,
                _ => Bytes::from_static(b"the answer to this upgrade request is too large"),
            };
            head.head_mut().set_connection_type(ConnectionType::Close);
            send_whole(&mut framed, head, body).await
        }
    };
    if let Err(e) = sent {
        // The client went away mid-handshake: nothing to do.
        log::debug!("upgrade request: {e}");
    }
    Ok(())
}

async fn send_whole(framed: &mut Framed<TcpStream, h1::Codec>, head: Response<()>, body: Bytes) -> std::io::Result<()> {
    framed.send(h1::Message::Item((head, BodySize::Sized(body.len() as u64)))).await?;
    if !body.is_empty() {
        framed.send(h1::Message::Chunk(Some(body))).await?;
    }
    framed.send(h1::Message::Chunk(None)).await
}

/// Another site's page must not open a socket that carries our visitor's
/// cookie. Browsers always send `Origin` on a WebSocket handshake; clients
/// without one (bots, tools) have no visitor's cookie to abuse.
fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    if allowed.is_empty() {
        let host = req.connection_info().host().to_ascii_lowercase();
        return origin.split_once("://").is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(&host));
    }
    allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
}
