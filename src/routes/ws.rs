//! `GET /ws`: the WebSocket handshake.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;

use crate::chat::session::WsSession;
use crate::identity;
use crate::startup::{AppState, ConnSocket};

pub async fn connect(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let session = WsSession::new(
        state.chat.clone(),
        state.pool.clone(),
        state.limits.clone(),
        identity::display_name(&req, &state.key),
        duplicate_socket(&req),
    );
    ws::WsResponseBuilder::new(session, &req, stream).frame_size(state.limits.max_frame_bytes).start()
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
