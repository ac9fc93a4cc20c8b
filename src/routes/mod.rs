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
pub mod state;
pub mod ws;

use actix_web::error::InternalError;
use actix_web::{web, HttpRequest, HttpResponse};

pub use state::{AccountSettings, AppState};

use crate::error::ChatError;

/// The path WebSocket clients connect to.
pub const WS_PATH: &str = "/ws";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default().limit(body::MAX_JSON_BODY).error_handler(|err, _| body::json_rejection(err)),
    )
    .app_data(web::FormConfig::default().limit(body::MAX_JSON_BODY))
    .app_data(web::QueryConfig::default().error_handler(|err, _| {
        let e = ChatError::BadRequest(format!("invalid query: {err}"));
        InternalError::from_response(err, HttpResponse::from_error(e)).into()
    }))
    .route("/", web::get().to(pages::home))
    .route("/chat/{room}", web::get().to(pages::room))
    .route(WS_PATH, web::get().to(ws::connect))
    .route("/create_room", web::post().to(rooms::create_room))
    .route("/store_message", web::post().to(rooms::store_message))
    .route("/api/rooms", web::get().to(rooms::active_rooms))
    .route("/api/rooms/{room}/messages", web::get().to(rooms::messages))
    .route("/admin", web::get().to(admin::rooms))
    .route("/admin/rooms", web::get().to(admin::rooms))
    .route("/admin/audit", web::get().to(admin::audit_log))
    .route("/admin/rooms/{room}/kick", web::post().to(admin::kick))
    .route("/admin/rooms/{room}/{action:close|reopen}", web::post().to(admin::close_or_reopen))
    .route("/admin/rooms/{room}/mute", web::post().to(admin::mute))
    .route("/admin/rooms/{room}/privacy", web::post().to(admin::set_privacy))
    .route("/admin/rooms/{room}/invite", web::post().to(admin::invite))
    .route("/admin/rooms/{room}/messages/{id}", web::delete().to(admin::delete_message))
    .route("/admin/users/{name}/ban", web::post().to(admin::ban))
    .route("/admin/users/{name}/role", web::post().to(admin::set_role))
    .route("/admin/bots", web::post().to(admin::create_bot))
    .route("/signup", web::get().to(accounts::signup_page))
    .route("/signup", web::post().to(accounts::sign_up))
    .route("/login", web::get().to(accounts::login_page))
    .route("/login", web::post().to(accounts::log_in))
    .route("/logout", web::post().to(accounts::log_out))
    .route("/healthz", web::get().to(health::check))
    .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ChatError> {
    Err(ChatError::no_route(&req))
}
