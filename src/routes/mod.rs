//! HTTP routes, one file per area, and what they share: the application
//! state (`state`), who is asking (`identity`) and request bodies (`body`).

pub mod accounts;
pub mod admin;
pub mod body;
pub mod client;
pub mod health;
pub mod identity;
pub mod pages;
pub mod rooms;
pub mod socketio;
pub mod state;
pub mod ws;

use actix_web::error::InternalError;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::{guard, web, HttpRequest, HttpResponse, Route};

pub use state::{AccountSettings, AppState};

use crate::error::ChatError;

/// The path WebSocket clients connect to.
pub const WS_PATH: &str = "/ws";
/// Where Socket.IO clients connect (they ask for `/socket.io/` by default).
pub const SOCKETIO_PATH: &str = "/socket.io/";
/// The paths that take WebSocket upgrades.
pub const UPGRADE_PATHS: &[&str] = &[WS_PATH, SOCKETIO_PATH];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default().limit(body::MAX_JSON_BODY).error_handler(|err, _| body::json_rejection(err)),
    )
    .app_data(web::FormConfig::default().limit(body::MAX_JSON_BODY))
    .app_data(web::QueryConfig::default().error_handler(|err, _| {
        let e = ChatError::BadRequest(format!("invalid query: {err}"));
        InternalError::from_response(err, HttpResponse::from_error(e)).into()
    }))
    .route("/", get().to(pages::home))
    .route("/chat/{room}", get().to(pages::room))
    .route(WS_PATH, web::get().to(ws::connect))
    .route(SOCKETIO_PATH, web::route().guard(guard::Any(guard::Get()).or(guard::Post())).to(socketio::engine))
    .route("/create_room", web::post().to(rooms::create_room))
    .route("/store_message", web::post().to(rooms::store_message))
    .route("/api/rooms", get().to(rooms::active_rooms))
    .route("/api/rooms/{room}/messages", get().to(rooms::messages))
    .route("/admin", get().to(admin::rooms))
    .route("/admin/rooms", get().to(admin::rooms))
    .route("/admin/audit", get().to(admin::audit_log))
    .route("/admin/rooms/{room}/kick", web::post().to(admin::kick))
    .route("/admin/rooms/{room}/{action:close|reopen}", web::post().to(admin::close_or_reopen))
    .route("/admin/rooms/{room}/mute", web::post().to(admin::mute))
    .route("/admin/rooms/{room}/unmute", web::post().to(admin::unmute))
    .route("/admin/rooms/{room}/ban", web::post().to(admin::ban_from_room))
    .route("/admin/rooms/{room}/unban", web::post().to(admin::unban_from_room))
    .route("/admin/rooms/{room}/privacy", web::post().to(admin::set_privacy))
    .route("/admin/rooms/{room}/invite", web::post().to(admin::invite))
    .route("/admin/rooms/{room}/messages/{id}", web::delete().to(admin::delete_message))
    .route("/admin/users/{name}/ban", web::post().to(admin::ban))
    .route("/admin/users/{name}/unban", web::post().to(admin::unban))
    .route("/admin/users/{name}/role", web::post().to(admin::set_role))
    .route("/admin/bots", web::post().to(admin::create_bot))
    .route("/signup", get().to(accounts::signup_page))
    .route("/signup", web::post().to(accounts::sign_up))
    .route("/login", get().to(accounts::login_page))
    .route("/login", web::post().to(accounts::log_in))
    .route("/logout", web::post().to(accounts::log_out))
    .route("/healthz", get().to(health::check))
    .route("/readyz", get().to(health::ready))
    .route("/metrics", get().to(health::metrics))
    .route("/admin/dead-letters", get().to(admin::dead_letters))
    .route("/admin/stats", get().to(admin::stats))
    .default_service(web::to(not_found));
}

/// A route for `GET`, and for `HEAD` (the same answer without its body).
fn get() -> Route {
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The pages load their scripts and styles from `/static` only and open
/// WebSockets to their own host: anything else a page tries (injected
/// script, framing by another site) is refused by the browser.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Headers every answer carries (a handler's own take precedence).
pub fn security_headers(hsts: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"));
    if !hsts {
        return headers;
    }
    // Served over TLS: browsers go straight to HTTPS for a year. Not
    // `includeSubDomains`: other hosts under the same domain are not ours
    // to decide for.
    headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ChatError> {
    Err(ChatError::no_route(&req))
}
