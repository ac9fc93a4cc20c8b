//! From an HTTP request to a socket a session owns.
//!
//! Upgrade requests do not stay in the HTTP layer: `http_service` routes
//! them with their raw connection to `take_over`, which runs the request
//! through the app like any other (so the route handler decides, with the
//! usual middleware, state and extractors). When the handler answered with
//! `Handshake::accept`, it writes the 101 and hands the socket to a new
//! session; everything else gets its answer and the connection ends.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::{h1, ConnectionType, HttpMessage, HttpService, Request, Response};
use actix_service::{fn_factory, fn_service, Service, ServiceFactory, ServiceFactoryExt};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::rt::net::TcpStream;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use bytes::{Bytes, BytesMut};
use futures_util::future::{ready, Either};
use futures_util::SinkExt;
use tokio_rustls::TlsAcceptor;

use super::live::Registered;
use super::socket::{Limits, Socket};
use crate::error::ChatError;
use crate::tls::{self, Stream};

/// Marks a request that came through `take_over`, the only path on which a
/// 101 can be followed by a session.
struct ViaUpgrade;

/// What the route decided for an accepted handshake, and the connection's
/// place in the count, carried to `take_over` in the response's extensions.
struct Accepted<T>(T, Registered);

/// The most of an ordinary answer `take_over` buffers (its own errors and
/// the handshake's refusals are small).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A valid WebSocket handshake with a place among the open connections,
/// not answered yet.
pub struct Handshake(HttpResponse, Registered);

/// Checks that `req` is a WebSocket handshake this server can take over;
/// `place` is the connection's place among the open ones, held by the
/// socket from then on.
pub fn handshake(req: &HttpRequest, place: Registered) -> Result<Handshake, actix_web::Error> {
    if req.extensions().get::<ViaUpgrade>().is_none() {
        // A handshake the HTTP layer does not treat as an upgrade (say,
        // `Upgrade: websocket, foo`) would get a 101 and no session.
        let why = "a WebSocket handshake needs `Connection: Upgrade` and `Upgrade: websocket`";
        return Err(ChatError::BadRequest(why.into()).into());
    }
    let response = HttpResponse::from(actix_http::ws::handshake(req.head())?.finish()).map_into_boxed_body();
    Ok(Handshake(response, place))
}

impl Handshake {
    /// The 101 answer. `with` goes to the session that takes the socket.
    pub fn accept<T: 'static>(self, with: T) -> HttpResponse {
        let Handshake(mut response, place) = self;
        response.extensions_mut().insert(Accepted(with, place));
        response
    }
}

/// What `take_over` needs besides the request.
struct Handoff<F> {
    paths: &'static [&'static str],
    limits: Arc<Limits>,
    start: F,
}

/// One worker's HTTP/1 service, over TLS when `tls` is given: `make_app`
/// answers requests; upgrade requests to one of `paths` that its handler accepts
/// become sockets, handed with what the handler accepted them with to
/// `start`.
pub fn http_service<A, S, B, T, F>(
    make_app: A,
    paths: &'static [&'static str],
    limits: Arc<Limits>,
    tls: Option<TlsAcceptor>,
    start: F,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = actix_http::error::DispatchError, InitError = ()>
where
    A: Fn() -> S + 'static,
    S: ServiceFactory<Request, Config = (), Response = ServiceResponse<B>, Error = actix_web::Error, InitError = ()>
        + 'static,
    S::Service: 'static,
    S::Future: 'static,
    <S::Service as Service<Request>>::Future: 'static,
    B: MessageBody + 'static,
    T: 'static,
    F: Fn(Socket, T) + 'static,
{
    let app = make_app();
    let make_app = Rc::new(make_app);
    let handoff = Rc::new(Handoff { paths, limits, start });
    let upgrade = fn_factory(move || {
        let (app, handoff) = (make_app(), handoff.clone());
        async move {
            let app = Rc::new(app.new_service(()).await.map_err(|_| ())?);
            Ok::<_, ()>(fn_service(move |(req, framed)| take_over(req, framed, app.clone(), handoff.clone())))
        }
    });
    let h1 = HttpService::build().client_disconnect_timeout(Duration::from_secs(1)).upgrade(upgrade).h1(app);
    // Every connection's task is sized for the larger of this future and
    // the HTTP dispatcher's, for as long as the connection is HTTP: the TLS
    // handshake (large, and only on a TLS port) is boxed, so plain
    // connections carry none of it.
    let handshake = fn_service(move |tcp: TcpStream| {
        let peer = tcp.peer_addr().ok();
        match tls.clone() {
            None => Either::Left(ready(Ok((Stream::Plain(tcp), peer)))),
            Some(acceptor) => Either::Right(Box::pin(async move {
                let stream = tls::handshake(tcp, acceptor).await.map_err(actix_http::error::DispatchError::Io)?;
                Ok((stream, peer))
            })),
        }
    });
    handshake.and_then(h1)
}

/// Every upgrade request comes here with its connection. Only `paths`
/// upgrade; anything else gets a small 400 and the connection ends.
async fn take_over<S, B, T, F>(
    req: Request,
    mut framed: Framed<Stream, h1::Codec>,
    app: Rc<S>,
    handoff: Rc<Handoff<F>>,
) -> Result<(), actix_web::Error>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
    T: 'static,
    F: Fn(Socket, T),
{
    let response: Response<BoxBody> = if handoff.paths.contains(&req.path()) {
        req.extensions_mut().insert(ViaUpgrade);
        match app.call(req).await {
            Ok(response) => Response::<B>::from(response).map_into_boxed_body(),
            Err(e) => e.error_response().into(),
        }
    } else {
        let why = format!("only {} accept an upgrade", handoff.paths.join(" and "));
        ChatError::BadRequest(why).error_response().into()
    };
    let (mut head, body) = response.into_parts();
    let accepted = head.extensions_mut().remove::<Accepted<T>>();
    let sent = match accepted {
        Some(Accepted(with, place)) if head.status() == StatusCode::SWITCHING_PROTOCOLS => {
            framed.send(h1::Message::Item((head, BodySize::None))).await.map(|()| {
                let parts = framed.into_parts();
                // The HTTP layer's own `tcp_nodelay` does not reach sockets
                // accepted for HTTP/1.
                let _ = parts.io.set_nodelay(true);
                // The HTTP layer's buffers are sized for requests; keep only
                // what the client sent after its handshake, if anything.
                let leftover =
                    if parts.read_buf.is_empty() { BytesMut::new() } else { BytesMut::from(&parts.read_buf[..]) };
                let socket = Socket::new(parts.io, leftover, handoff.limits.clone(), place);
                (handoff.start)(socket, with);
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

async fn send_whole(framed: &mut Framed<Stream, h1::Codec>, head: Response<()>, body: Bytes) -> std::io::Result<()> {
    framed.send(h1::Message::Item((head, BodySize::Sized(body.len() as u64)))).await?;
    if !body.is_empty() {
        framed.send(h1::Message::Chunk(Some(body))).await?;
    }
    framed.send(h1::Message::Chunk(None)).await
}
