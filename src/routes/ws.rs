//! `GET /ws`: the WebSocket handshake.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;

use crate::chat::session::{Identity, WsSession};
use crate::identity;
use crate::startup::{AppState, ConnSocket};

pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if !origin_allowed(&req, &state.allowed_origins) {
        return Ok(HttpResponse::Forbidden().json(serde_json::json!({
            "error": "forbidden_origin",
            "message": "pages from this origin may not open Parlor WebSockets",
        })));
    }
    let identity = match identity::current_user(&req, &state).await {
        Some(user) => {
            let token = identity::auth_token(&req, &state.key).expect("a logged-in request has a token");
            Identity::User { user, login: crate::accounts::token_hash(&token) }
        }
        None => Identity::Guest { cookie_name: identity::display_name(&req, &state.key) },
    };
    let session =
        WsSession::new(state.chat.clone(), state.pool.clone(), state.limits.clone(), identity, duplicate_socket(&req));
    ws::WsResponseBuilder::new(session, &req, stream).frame_size(state.limits.max_frame_bytes).start()
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

/// A second handle to this connection's socket. A client that stops reading
/// stalls its session's task behind a full socket; the ChatServer then shuts
/// the socket's read side through this handle, which the HTTP layer sees as
/// the connection ending, so the stalled connection is dropped. Owning a
/// duplicate (rather than the raw number) means the handle can never reach a
/// later connection that reuses the descriptor number.
fn duplicate_socket(req: &HttpRequest) -> Option<Arc<OwnedFd>> {
    let ConnSocket(fd) = *req.conn_data::<ConnSocket>()?;
    // SAFETY: `fd` is this request's own connection, which is open while its
    // handler runs; it is only borrowed long enough to duplicate it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned().ok().map(Arc::new)
}
