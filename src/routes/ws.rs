//! `GET /ws`: the WebSocket handshake. The transport (`crate::ws`) brings
//! the request here like any other; this handler decides whether the page
//! asking may connect and who is connecting, and the transport hands the
//! socket to a new session with that identity.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{identity, AppState};
use crate::chat::session::Identity;
use crate::error::ChatError;
use crate::metrics::Reason;
use crate::tokens::token_hash;
use crate::ws;

pub async fn connect(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, actix_web::Error> {
    if !origin_allowed(&req, &state) {
        return Err(ChatError::ForbiddenOrigin.into());
    }
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        // Behind a balancer the client's retry lands on another node.
        return Err(ChatError::Busy("this server is stopping; connect again".into()).into());
    }
    let handshake = ws::handshake(&req, &state.connections, state.proxies.client_ip(&req)).inspect_err(|e| {
        if e.as_error::<ChatError>().is_some_and(|e| matches!(e, ChatError::Busy(_))) {
            state.metrics.connections_refused.get_or_create(&Reason { reason: "connection_cap" }).inc();
        }
    })?;
    let identity = match identity::current_user(&req, &state).await {
        Some(user) => {
            let token = identity::auth_token(&req, &state.key).expect("a logged-in request has a token");
            Identity::User { user, login: token_hash(&token) }
        }
        None => Identity::Guest {
            cookie_name: identity::display_name(&req, &state.key),
            guest_id: identity::guest_id(&req, &state.key),
            address: state.proxies.client_ip(&req),
        },
    };
    Ok(handshake.accept(identity))
}

/// Another site's page must not open a socket that carries our visitor's
/// cookie. Browsers always send `Origin` on a WebSocket handshake; clients
/// without one (bots, tools) have no visitor's cookie to abuse. Parlor's own
/// pages may connect, and so may the pages of `--allowed-origins`.
fn origin_allowed(req: &HttpRequest, state: &AppState) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let host = state.proxies.host(req);
    // Serving TLS, our own pages are https ones: a page from plain http on
    // the same host (which anyone on the network path can write) is not.
    let scheme_ok = |scheme: &str| !state.proxies.serves_tls() || scheme.eq_ignore_ascii_case("https");
    let own =
        origin.split_once("://").is_some_and(|(scheme, rest)| scheme_ok(scheme) && rest.eq_ignore_ascii_case(&host));
    own || state.allowed_origins.iter().any(|a| a.eq_ignore_ascii_case(origin))
}
