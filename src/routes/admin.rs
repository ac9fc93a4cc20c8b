//! The admin console and its JSON API. An admin is a logged-in user with the
//! admin role, or a request bearing the configured admin token
//! (`Authorization: Bearer ...`). Every action is written to the audit log.
//!
//! Actions take JSON bodies: another site's page cannot send those with a
//! visitor's cookie (CORS), which is this API's CSRF protection.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::pages::render;
use crate::accounts::{self, name_key};
use crate::chat::message::{format_timestamp, now_ms};
use crate::chat::server::{
    DeleteMessage, EndConnections, Invite, Kick, ListRooms, Mute, SetClosed, SetPrivate, SetRole,
};
use crate::db::moderation::{self, AuditEntry, NewAuditEntry};
use crate::domain::{DisplayName, RoomName};
use crate::error::ChatError;
use crate::identity;
use crate::startup::AppState;

/// Who is acting, or the answer for someone who may not.
async fn admin(req: &HttpRequest, state: &AppState) -> Result<String, HttpResponse> {
    let unauthorized = || {
        HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"parlor-admin\""))
            .json(json!({ "error": "unauthorized", "message": "log in as an admin or send the admin bearer token" }))
    };
    if let Some(given) = identity::bearer_token(req) {
        return match state.admin_token.as_deref() {
            Some(token) if identity::constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok("admin token".into()),
            Some(_) => Err(unauthorized()),
            // Without a configured token there is no token to match.
            None => Err(HttpResponse::NotFound().finish()),
        };
    }
    match identity::current_user(req, state).await {
        Some(user) if user.is_admin => Ok(user.name.to_string()),
        Some(_) => Err(HttpResponse::Forbidden().json(json!({ "error": "forbidden", "message": "admins only" }))),
        // With no token configured the admin routes do not show themselves
        // to people who are not logged in.
        None if state.admin_token.is_none() => Err(HttpResponse::NotFound().finish()),
        None => Err(unauthorized()),
    }
}

macro_rules! require_admin {
    ($req:expr, $state:expr) => {
        match admin(&$req, &$state).await {
            Ok(actor) => actor,
            Err(response) => return Ok(response),
        }
    };
}

fn unknown_user(user: &DisplayName) -> HttpResponse {
    HttpResponse::NotFound().json(json!({ "error": "unknown_user", "message": format!("no account '{user}'") }))
}

/// An action's JSON body, read only once the caller is known to be an admin.
/// It must say `application/json`: another site's page cannot send that with
/// a visitor's cookie without CORS consent, which is the CSRF protection.
fn json_body<T: serde::de::DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ChatError> {
    let json = matches!(req.mime_type(), Ok(Some(m)) if m.essence_str().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(ChatError::BadRequest("send the body as application/json".into()));
    }
    serde_json::from_slice(body).map_err(|e| ChatError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Writes the audit entry for an action that was carried out.
async fn audit(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> Result<(), ChatError> {
    let pool = state.pool.clone();
    let (actor, action, target) = (actor.to_string(), action.to_string(), target.to_string());
    web::block(move || -> Result<(), ChatError> {
        let id = identity::random_hex(16);
        let entry = NewAuditEntry {
            id: &id,
            at: now_ms(),
            actor: &actor,
            action: &action,
            target: &target,
            detail: detail.as_deref(),
        };
        moderation::record(&mut *pool.get()?, &entry)?;
        Ok(())
    })
    .await??;
    Ok(())
}

async fn recent_audit(state: &AppState) -> Result<Vec<AuditEntry>, ChatError> {
    let pool = state.pool.clone();
    web::block(move || moderation::recent(&mut *pool.get()?, 200).map_err(ChatError::from)).await?
}

fn wants_json(req: &HttpRequest) -> bool {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("application/json") || req.query_string().split('&').any(|p| p == "format=json")
}

/// `GET /admin` and `GET /admin/rooms`: the active rooms and who is in them
/// (HTML, or JSON when asked), with the audit log on the console.
pub async fn rooms(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ChatError> {
    let _actor = require_admin!(req, state);
    let rooms = state.chat.send(ListRooms { include_private: true }).await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(json!({ "rooms": rooms })));
    }
    let audit: Vec<_> = recent_audit(&state)
        .await?
        .into_iter()
        .map(|e| json!({ "at": format_timestamp(e.at), "actor": e.actor, "action": e.action, "target": e.target, "detail": e.detail }))
        .collect();
    let mut context = Context::new();
    context.insert("rooms", &rooms);
    context.insert("audit", &audit);
    Ok(render(&state, StatusCode::OK, "admin_rooms.html", &context))
}

/// `GET /admin/audit`: the latest 200 entries, newest first.
pub async fn audit_log(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ChatError> {
    let _actor = require_admin!(req, state);
    Ok(HttpResponse::Ok().json(json!({ "entries": recent_audit(&state).await? })))
}

#[derive(Debug, Deserialize)]
pub struct UserBody {
    user: String,
}

/// `POST /admin/rooms/{room}/kick` `{"user"}`
pub async fn kick(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let actor = require_admin!(req, state);
    let body: UserBody = json_body(&req, &body)?;
    let room = RoomName::parse(&path)?;
    let user = DisplayName::parse(&body.user)?;
    let kicked = state.chat.send(Kick { room: room.clone(), user: user.clone() }).await?;
    audit(&state, &actor, "kick", &format!("{user} from {room}"), Some(format!("{kicked} connections"))).await?;
    Ok(HttpResponse::Ok().json(json!({ "kicked": kicked })))
}

async fn set_closed(
    req: HttpRequest,
    room: &str,
    body: &[u8],
    state: &AppState,
    closed: bool,
) -> Result<HttpResponse, ChatError> {
    let actor = require_admin!(req, state);
    let _: serde_json::Value = json_body(&req, body)?;
    let room = RoomName::parse(room)?;
    if !state.chat.send(SetClosed { room: room.clone(), closed }).await?? {
        return Err(ChatError::UnknownRoom(room.to_string()));
    }
    audit(state, &actor, if closed { "close_room" } else { "reopen_room" }, room.as_str(), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "closed": closed })))
}

/// `POST /admin/rooms/{room}/close` `{}`
pub async fn close_room(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    set_closed(req, &path, &body, &state, true).await
}

/// `POST /admin/rooms/{room}/reopen` `{}`
pub async fn reopen_room(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    set_closed(req, &path, &body, &state, false).await
}

/// `DELETE /admin/rooms/{room}/messages/{id}`
pub async fn delete_message(
    req: HttpRequest,
    path: web::Path<(String, i64)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let actor = require_admin!(req, state);
    let (room, id) = path.into_inner();
    let room = RoomName::parse(&room)?;
    state.chat.send(DeleteMessage { room: room.clone(), id }).await??;
    audit(&state, &actor, "delete_message", &format!("{room}#{id}"), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "deleted": id })))
}

#[derive(Debug, Deserialize)]
pub struct MuteBody {
    user: String,
    minutes: u64,
}

/// `POST /admin/rooms/{room}/mute` `{"user", "minutes"}`
pub async fn mute(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let actor = require_admin!(req, state);
    let body: MuteBody = json_body(&req, &body)?;
    let room = RoomName::parse(&path)?;
    let user = DisplayName::parse(&body.user)?;
    if !(1..=7 * 24 * 60).contains(&body.minutes) {
        return Err(ChatError::BadRequest("`minutes` must be 1 to 10080 (a week)".into()));
    }
    let until_ms = now_ms() + i64::try_from(body.minutes * 60_000).expect("a week of milliseconds fits");
    state.chat.send(Mute { room: room.clone(), user: user.clone(), until_ms }).await??;
    audit(&state, &actor, "mute", &format!("{user} in {room}"), Some(format!("{} minutes", body.minutes))).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "user": user, "minutes": body.minutes })))
}

/// `POST /admin/users/{name}/ban` `{}`: the account can no longer log in,
/// its logins stop working, and its open connections end at once.
pub async fn ban(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let actor = require_admin!(req, state);
    let _: serde_json::Value = json_body(&req, &body)?;
    let user = DisplayName::parse(&path)?;
    let key = name_key(&user);
    let pool = state.pool.clone();
    let banned_key = key.clone();
    let found = web::block(move || moderation::ban(&mut *pool.get()?, &banned_key, now_ms()).map_err(ChatError::from))
        .await??;
    if found == 0 {
        return Ok(unknown_user(&user));
    }
    let ended = state.chat.send(EndConnections { user_key: key }).await?;
    audit(&state, &actor, "ban", user.as_str(), Some(format!("{ended} connections ended"))).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user, "banned": true, "connections_ended": ended })))
}

#[derive(Debug, Deserialize)]
pub struct RoleBody {
    admin: bool,
}

/// `POST /admin/users/{name}/role` `{"admin": true|false}`
pub async fn set_role(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let actor = require_admin!(req, state);
    let body: RoleBody = json_body(&req, &body)?;
    let user = DisplayName::parse(&path)?;
    let (pool, key, admin) = (state.pool.clone(), name_key(&user), body.admin);
    let user_key = key.clone();
    let found =
        web::block(move || moderation::set_admin(&mut *pool.get()?, &key, admin).map_err(ChatError::from)).await??;
    if found == 0 {
        return Ok(unknown_user(&user));
    }
    // Open connections of that account gain or lose the role at once.
    state.chat.send(SetRole { user_key, admin }).await?;
    audit(&state, &actor, if admin { "grant_admin" } else { "revoke_admin" }, user.as_str(), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user, "admin": admin })))
}

#[derive(Debug, Deserialize)]
pub struct BotBody {
    name: String,
}

/// `POST /admin/bots` `{"name"}`: a token for `POST /store_message`, shown
/// this once (only its hash is kept).
pub async fn create_bot(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let actor = require_admin!(req, state);
    let body: BotBody = json_body(&req, &body)?;
    let bot = DisplayName::parse(&body.name)?;
    let (pool, name, creator) = (state.pool.clone(), bot.to_string(), actor.clone());
    let token = web::block(move || accounts::create_bot_token(&pool, &name, &creator)).await??;
    audit(&state, &actor, "create_bot", bot.as_str(), None).await?;
    Ok(HttpResponse::Created().json(json!({ "bot": bot, "token": token })))
}

#[derive(Debug, Deserialize)]
pub struct PrivacyBody {
    private: bool,
}

/// `POST /admin/rooms/{room}/privacy` `{"private": true|false}`: invite-only
/// or public. Members who may not stay in a room made private get `kicked`.
pub async fn set_privacy(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let actor = require_admin!(req, state);
    let body: PrivacyBody = json_body(&req, &body)?;
    let room = RoomName::parse(&path)?;
    if !state.chat.send(SetPrivate { room: room.clone(), private: body.private }).await?? {
        return Err(ChatError::UnknownRoom(room.to_string()));
    }
    audit(&state, &actor, if body.private { "make_private" } else { "make_public" }, room.as_str(), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "private": body.private })))
}

/// `POST /admin/rooms/{room}/invite` `{"user"}`: lets an account into the
/// room while it is private.
pub async fn invite(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let actor = require_admin!(req, state);
    let body: UserBody = json_body(&req, &body)?;
    let room = RoomName::parse(&path)?;
    let user = DisplayName::parse(&body.user)?;
    // Only an existing account: inviting a free name would let in whoever
    // registers it first.
    let (pool, key) = (state.pool.clone(), name_key(&user));
    let account =
        web::block(move || crate::db::accounts::find_user(&mut *pool.get()?, &key).map_err(ChatError::from)).await??;
    if account.is_none() {
        return Ok(unknown_user(&user));
    }
    if !state.chat.send(Invite { room: room.clone(), user: user.clone(), by: actor.clone() }).await?? {
        return Err(ChatError::UnknownRoom(room.to_string()));
    }
    audit(&state, &actor, "invite", &format!("{user} to {room}"), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "invited": user })))
}
