//! The admin console and its JSON API. Every action is written to the
//! audit log.
//!
//! Actions take JSON bodies: another site's page cannot send those with a
//! visitor's cookie (CORS), which is this API's CSRF protection.

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::body::{json_body, read_body, MAX_JSON_BODY};
use super::pages::render;
use super::{identity, AppState};
use crate::accounts;
use crate::chat::server::{BanAccount, DeleteMessage, Invite, Kick, ListRooms, Mute, SetClosed, SetPrivate, SetRole};
use crate::clock::{format_timestamp, now_ms};
use crate::db::{self, moderation};
use crate::domain::{DisplayName, RoomName};
use crate::error::ChatError;
use crate::tokens::{constant_time_eq, random_hex};

/// The caller of an admin route: a logged-in user with the admin role, or
/// the bearer of the configured admin token (`Authorization: Bearer ...`).
/// Anyone else is answered before the handler runs.
pub struct Admin {
    /// Who acts, for the audit log.
    name: String,
}

/// An admin action with its JSON body, read only once the caller is known
/// to be an admin.
pub struct AdminJson<T>(Admin, T);

impl FromRequest for Admin {
    type Error = ChatError;
    type Future = LocalBoxFuture<'static, Result<Self, ChatError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authorize(&req).await })
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for AdminJson<T> {
    type Error = ChatError;
    type Future = LocalBoxFuture<'static, Result<Self, ChatError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let (req, payload) = (req.clone(), payload.take());
        Box::pin(async move {
            let admin = authorize(&req).await?;
            let body = read_body(payload, MAX_JSON_BODY).await?;
            Ok(AdminJson(admin, json_body(&req, &body)?))
        })
    }
}

async fn authorize(req: &HttpRequest) -> Result<Admin, ChatError> {
    let state = req.app_data::<web::Data<AppState>>().expect("the app has its state");
    let unauthorized = || ChatError::Unauthorized("log in as an admin or send the admin bearer token".into());
    if let Some(given) = identity::bearer_token(req) {
        return match &state.admin_token {
            Some(token) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => {
                Ok(Admin { name: "admin token".into() })
            }
            Some(_) => Err(unauthorized()),
            // Without a configured token there is no token to match.
            None => Err(ChatError::no_route(req)),
        };
    }
    match identity::current_user(req, state).await {
        Some(user) if user.is_admin => Ok(Admin { name: user.name.to_string() }),
        Some(_) => Err(ChatError::Forbidden("admins only".into())),
        // With no token configured the admin routes do not show themselves
        // to people who are not logged in.
        None if state.admin_token.is_none() => Err(ChatError::no_route(req)),
        None => Err(unauthorized()),
    }
}

impl Admin {
    /// Writes the audit entry for an action that was carried out.
    async fn record(
        &self,
        state: &AppState,
        action: &str,
        target: &str,
        detail: Option<String>,
    ) -> Result<(), ChatError> {
        let (actor, action, target) = (self.name.clone(), action.to_string(), target.to_string());
        db::run(&state.pool, move |conn| {
            let id = random_hex(16);
            let entry = moderation::NewAuditEntry {
                id: &id,
                at: now_ms(),
                actor: &actor,
                action: &action,
                target: &target,
                detail: detail.as_deref(),
            };
            moderation::record(conn, &entry)
        })
        .await?;
        Ok(())
    }
}

async fn recent_audit(state: &AppState) -> Result<Vec<moderation::AuditEntry>, ChatError> {
    db::run(&state.pool, |conn| moderation::recent(conn, 200)).await
}

fn wants_json(req: &HttpRequest) -> bool {
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("application/json") || req.query_string().split('&').any(|p| p == "format=json")
}

// The bodies of the actions.

#[derive(Debug, Deserialize)]
pub struct UserBody {
    user: String,
}

#[derive(Debug, Deserialize)]
pub struct MuteBody {
    user: String,
    minutes: u64,
}

#[derive(Debug, Deserialize)]
pub struct RoleBody {
    admin: bool,
}

#[derive(Debug, Deserialize)]
pub struct BotBody {
    name: String,
}

#[derive(Debug, Deserialize)]
pub struct PrivacyBody {
    private: bool,
}

/// Any JSON (`{}`): the actions that need no details still take a JSON body,
/// which is what keeps other sites from sending them.
type AnyJson = serde_json::Value;

/// `GET /admin` and `GET /admin/rooms`: the active rooms and who is in them
/// (HTML, or JSON when asked), with the audit log on the console.
pub async fn rooms(_: Admin, req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ChatError> {
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
pub async fn audit_log(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ChatError> {
    Ok(HttpResponse::Ok().json(json!({ "entries": recent_audit(&state).await? })))
}

/// `POST /admin/rooms/{room}/kick` `{"user"}`
pub async fn kick(
    AdminJson(admin, body): AdminJson<UserBody>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let room = RoomName::parse(&path)?;
    let user = DisplayName::parse(&body.user)?;
    let kicked = state.chat.send(Kick { room: room.clone(), user: user.clone() }).await?;
    admin.record(&state, "kick", &format!("{user} from {room}"), Some(format!("{kicked} connections"))).await?;
    Ok(HttpResponse::Ok().json(json!({ "kicked": kicked })))
}

/// `POST /admin/rooms/{room}/close` `{}` and `POST /admin/rooms/{room}/reopen` `{}`
pub async fn close_or_reopen(
    AdminJson(admin, _): AdminJson<AnyJson>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let (room, action) = path.into_inner();
    let closed = action == "close";
    let room = RoomName::parse(&room)?;
    if !state.chat.send(SetClosed { room: room.clone(), closed }).await?? {
        return Err(ChatError::UnknownRoom(room.to_string()));
    }
    admin.record(&state, if closed { "close_room" } else { "reopen_room" }, room.as_str(), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "closed": closed })))
}

/// `DELETE /admin/rooms/{room}/messages/{id}`
pub async fn delete_message(
    admin: Admin,
    path: web::Path<(String, i64)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let (room, id) = path.into_inner();
    let room = RoomName::parse(&room)?;
    state.chat.send(DeleteMessage { room: room.clone(), id }).await??;
    admin.record(&state, "delete_message", &format!("{room}#{id}"), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "deleted": id })))
}

/// `POST /admin/rooms/{room}/mute` `{"user", "minutes"}`
pub async fn mute(
    AdminJson(admin, body): AdminJson<MuteBody>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let room = RoomName::parse(&path)?;
    let user = DisplayName::parse(&body.user)?;
    if !(1..=7 * 24 * 60).contains(&body.minutes) {
        return Err(ChatError::BadRequest("`minutes` must be 1 to 10080 (a week)".into()));
    }
    let until_ms = now_ms() + i64::try_from(body.minutes * 60_000).expect("a week of milliseconds fits");
    state.chat.send(Mute { room: room.clone(), user: user.clone(), until_ms }).await??;
    admin.record(&state, "mute", &format!("{user} in {room}"), Some(format!("{} minutes", body.minutes))).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "user": user, "minutes": body.minutes })))
}

/// `POST /admin/users/{name}/ban` `{}`: the account can no longer log in,
/// its logins stop working, and its open connections end at once.
pub async fn ban(
    AdminJson(admin, _): AdminJson<AnyJson>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let user = DisplayName::parse(&path)?;
    let key = user.key();
    let banned_key = key.clone();
    let found = db::run(&state.pool, move |conn| moderation::ban(conn, &banned_key, now_ms())).await?;
    if found == 0 {
        return Err(ChatError::UnknownUser(user.to_string()));
    }
    let ended = state.chat.send(BanAccount { user_key: key }).await?;
    admin.record(&state, "ban", user.as_str(), Some(format!("{ended} connections ended"))).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user, "banned": true, "connections_ended": ended })))
}

/// `POST /admin/users/{name}/role` `{"admin": true|false}`
pub async fn set_role(
    AdminJson(admin, body): AdminJson<RoleBody>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let user = DisplayName::parse(&path)?;
    let (key, role) = (user.key(), body.admin);
    let user_key = key.clone();
    let found = db::run(&state.pool, move |conn| moderation::set_admin(conn, &key, role)).await?;
    if found == 0 {
        return Err(ChatError::UnknownUser(user.to_string()));
    }
    // Open connections of that account gain or lose the role at once.
    state.chat.send(SetRole { user_key, admin: role }).await?;
    admin.record(&state, if role { "grant_admin" } else { "revoke_admin" }, user.as_str(), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user, "admin": role })))
}

/// `POST /admin/bots` `{"name"}`: a token for `POST /store_message`, shown
/// this once (only its hash is kept).
pub async fn create_bot(
    AdminJson(admin, body): AdminJson<BotBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let bot = DisplayName::parse(&body.name)?;
    let token = accounts::create_bot_token(&state.pool, &bot, &admin.name).await?;
    admin.record(&state, "create_bot", bot.as_str(), None).await?;
    Ok(HttpResponse::Created().json(json!({ "bot": bot, "token": token })))
}

/// `POST /admin/rooms/{room}/privacy` `{"private": true|false}`: invite-only
/// or public. Members who may not stay in a room made private get `kicked`.
pub async fn set_privacy(
    AdminJson(admin, body): AdminJson<PrivacyBody>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let room = RoomName::parse(&path)?;
    if !state.chat.send(SetPrivate { room: room.clone(), private: body.private }).await?? {
        return Err(ChatError::UnknownRoom(room.to_string()));
    }
    admin.record(&state, if body.private { "make_private" } else { "make_public" }, room.as_str(), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "private": body.private })))
}

/// `POST /admin/rooms/{room}/invite` `{"user"}`: lets an account into the
/// room while it is private.
pub async fn invite(
    AdminJson(admin, body): AdminJson<UserBody>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let room = RoomName::parse(&path)?;
    let user = DisplayName::parse(&body.user)?;
    // Only an existing account: inviting a free name would let in whoever
    // registers it first.
    let key = user.key();
    if db::run(&state.pool, move |conn| db::accounts::find_user(conn, &key)).await?.is_none() {
        return Err(ChatError::UnknownUser(user.to_string()));
    }
    let by = admin.name.clone();
    if !state.chat.send(Invite { room: room.clone(), user: user.clone(), by }).await?? {
        return Err(ChatError::UnknownRoom(room.to_string()));
    }
    admin.record(&state, "invite", &format!("{user} to {room}"), None).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "invited": user })))
}
