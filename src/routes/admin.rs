//! `GET /admin/rooms`: the active rooms and who is in them, for operators.
//! Needs `Authorization: Bearer <PARLOR_ADMIN_TOKEN>`; without a configured
//! token the admin routes do not exist (404).

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use tera::Context;

use super::pages::render;
use crate::chat::server::ListRooms;
use crate::error::ChatError;
use crate::identity;
use crate::startup::AppState;

pub async fn rooms(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ChatError> {
    let Some(token) = state.admin_token.as_deref() else {
        return Ok(HttpResponse::NotFound().finish());
    };
    if !bearer_matches(&req, token) {
        return Ok(HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"parlor-admin\""))
            .json(json!({ "error": "unauthorized", "message": "a valid admin bearer token is required" })));
    }
    let rooms = state.chat.send(ListRooms).await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(json!({ "rooms": rooms })));
    }
    let mut context = Context::new();
    context.insert("rooms", &rooms);
    Ok(render(&state, StatusCode::OK, "admin_rooms.html", &context))
}

fn bearer_matches(req: &HttpRequest, token: &str) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, given)| identity::constant_time_eq(given.trim().as_bytes(), token.as_bytes()))
}

fn wants_json(req: &HttpRequest) -> bool {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("application/json") || req.query_string().split('&').any(|p| p == "format=json")
}
