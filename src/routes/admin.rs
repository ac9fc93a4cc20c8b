//! The admin console and its JSON API. Every action is written to the
//! audit log.
//!
//! Actions take JSON bodies: another site's page cannot send those with a
//! visitor's cookie (CORS), which is this API's CSRF protection.

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use diesel::Connection;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tera::Context;

use super::body::{json_body, read_body, MAX_JSON_BODY};
use super::pages::render;
use super::{identity, AppState};
use crate::accounts;
use crate::chat::server::{
    AwaitCommitted, BanAccount, ChatServer, DeleteMessage, Invite, Kick, LetIn, ListRooms, Mute, SetClosed, SetPrivate,
    SetRole, TakeSnapshot, UnbanAccount,
};
use crate::clock::{format_timestamp, now_ms};
use crate::cluster::Cluster;
use crate::db::writer::Audit;
use crate::db::DbConnection;
use crate::db::{self, moderation};
use crate::domain::{DisplayName, RoomName};
use crate::error::{ChatError, DbError};
use crate::metrics::Metrics;
use crate::tokens::constant_time_eq;

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

pub(super) async fn authorize(req: &HttpRequest) -> Result<Admin, ChatError> {
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
    /// The audit entry for an action; it is written in the same transaction
    /// as the action's own change.
    fn audit(&self, action: &str, target: &str, detail: Option<String>) -> Audit {
        Audit { actor: self.name.clone(), action: action.into(), target: target.into(), detail }
    }

    /// Writes the audit entry for an action that changes nothing stored (a
    /// kick), once it was carried out.
    async fn record(&self, state: &AppState, audit: Audit) -> Result<(), ChatError> {
        db::run(&state.pool, move |conn| audit.write(conn)).await?;
        Ok(())
    }

    /// Runs `change` and writes its audit entry in one transaction.
    async fn commit<T: Send + 'static>(
        &self,
        state: &AppState,
        audit: Audit,
        change: impl FnOnce(&mut DbConnection) -> diesel::QueryResult<T> + Send + 'static,
    ) -> Result<T, ChatError> {
        db::run(&state.pool, move |conn| {
            conn.transaction(|conn| {
                let done = change(conn)?;
                audit.write(conn)?;
                Ok::<_, diesel::result::Error>(done)
            })
        })
        .await
    }
}

async fn recent_audit(state: &AppState) -> Result<Vec<moderation::AuditEntry>, ChatError> {
    db::run(&state.pool, |conn| moderation::recent(conn, 200)).await
}

/// Waits until the action the ChatServer queued, and its audit entry, are
/// committed: an admin's 200 means it is in the log.
async fn committed(state: &AppState) -> Result<(), ChatError> {
    let commit = state.chat.send(AwaitCommitted).await??;
    match actix_web::rt::time::timeout(COMMIT_WAIT, commit).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(()))) => Err(ChatError::Unavailable(
            "the database refused the change: it holds until a restart, and /admin/dead-letters lists it".into(),
        )),
        Ok(Err(_)) => Err(ChatError::Unavailable("the server stopped before the change was stored".into())),
        Err(_) => Err(ChatError::Unavailable("the change is in effect and queued, but not stored yet".into())),
    }
}

/// How long an admin action waits for its commit before answering that it
/// is only queued.
const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Admin {
    /// Changes `user`'s account (`change` gets its name key and answers how
    /// many rows it changed) with the audit entry for `action`. None
    /// changed (no such account, or not in a state to change) rolls both
    /// back and answers `unknown_user`.
    async fn change_account(
        &self,
        state: &AppState,
        user: &DisplayName,
        action: &str,
        change: impl FnOnce(&mut DbConnection, &str) -> diesel::QueryResult<usize> + Send + 'static,
    ) -> Result<(), ChatError> {
        let key = user.key();
        let audit = self.audit(action, user.as_str(), None);
        let changed = self
            .commit(state, audit, move |conn| match change(conn, &key)? {
                0 => Err(diesel::result::Error::NotFound),
                _ => Ok(()),
            })
            .await;
        match changed {
            Err(ChatError::Database(DbError::Query(diesel::result::Error::NotFound))) => {
                Err(ChatError::UnknownUser(user.to_string()))
            }
            other => other,
        }
    }
}

/// Mutes `user` in `room` until `until_ms` (now or earlier: lifts it), on
/// every node and in the log, and answers once it is stored.
async fn set_mute(
    state: &AppState,
    room: &RoomName,
    user: &DisplayName,
    until_ms: i64,
    audit: Audit,
) -> Result<(), ChatError> {
    state.chat.send(Mute { room: room.clone(), user: user.clone(), until_ms, audit }).await??;
    committed(state).await
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
pub struct RoomBanBody {
    user: String,
    minutes: Option<u64>,
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
/// (HTML, or JSON when asked), with the audit log on the console. A browser
/// that may not see it gets a page saying so, with the way to log in.
pub async fn rooms(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ChatError> {
    if let Err(refused) = authorize(&req).await {
        let browser =
            req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
        return match refused {
            ChatError::Unauthorized(_) | ChatError::Forbidden(_) if browser => {
                let mut context = Context::new();
                context.insert("logged_in", &matches!(refused, ChatError::Forbidden(_)));
                Ok(render(&state, refused.status_code(), "admins_only.html", &context))
            }
            refused => Err(refused),
        };
    }
    let rooms = state.chat.send(ListRooms { include_private: true }).await?;
    if wants_json(&req) {
        return Ok(HttpResponse::Ok().json(json!({ "rooms": rooms })));
    }
    let audit: Vec<_> = recent_audit(&state)
        .await?
        .into_iter()
        .map(|e| json!({ "at": format_timestamp(e.at), "actor": e.actor, "action": e.action, "target": e.target, "detail": e.detail }))
        .collect();
    // What admins decided that is still in force, each with its undoing:
    // closed rooms have no members, so they are not among the rooms above.
    let (closed, mutes, bans, kept_out) = db::run(&state.pool, |conn| {
        let now = now_ms();
        Ok::<_, diesel::result::Error>((
            moderation::closed_rooms(conn)?,
            moderation::live_mutes(conn, now)?,
            moderation::bans(conn)?,
            moderation::kept_out(conn, now)?,
        ))
    })
    .await?;
    // One line per person and room, however many browsers and addresses
    // of theirs are kept out with them.
    let mut room_bans: Vec<serde_json::Value> = Vec::new();
    for row in kept_out {
        let same = |b: &serde_json::Value| b["room"] == row.room.as_str() && b["key"] == row.name_key.as_str();
        let guest = row.target.starts_with("guest:") || row.target.starts_with("addr:");
        if let Some(entry) = room_bans.iter_mut().find(|b| same(b)) {
            entry["guest"] = (entry["guest"].as_bool() == Some(true) || guest).into();
            continue;
        }
        let until = (row.until < UNTIL_LIFTED_MS).then(|| format_timestamp(row.until));
        room_bans.push(
            json!({ "room": row.room, "key": row.name_key, "user": row.user_name, "until": until, "guest": guest }),
        );
    }
    let mutes: Vec<_> = mutes
        .into_iter()
        .map(|(room, user, until)| json!({ "room": room, "user": user, "until": format_timestamp(until) }))
        .collect();
    let bans: Vec<_> = bans.into_iter().map(|(user, at)| json!({ "user": user, "at": format_timestamp(at) })).collect();
    let mut context = Context::new();
    context.insert("rooms", &rooms);
    context.insert("audit", &audit);
    context.insert("closed", &closed);
    context.insert("mutes", &mutes);
    context.insert("bans", &bans);
    context.insert("room_bans", &room_bans);
    context.insert("admin", &true);
    Ok(render(&state, StatusCode::OK, "admin_rooms.html", &context))
}

/// `GET /admin/stats`: the live figures the console charts (and its
/// counters, from which it works out rates); in a cluster also every
/// node's, as each last reported them.
pub async fn stats(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ChatError> {
    let mut figures = figures(&state.chat, &state.metrics).await?;
    if let Some(cluster) = &state.cluster {
        figures["node"] = cluster.node().into();
        // Without Redis the node still shows its own figures.
        figures["nodes"] = cluster.figures_of_nodes(FIGURES_FRESH).await.map_or(serde_json::Value::Null, Into::into);
    }
    Ok(HttpResponse::Ok().json(figures))
}

/// A node's figures older than this are left out of the console's list:
/// that node stopped, or cannot reach Redis.
const FIGURES_FRESH: std::time::Duration = std::time::Duration::from_secs(10);
/// How often each node of a cluster shares its figures.
pub const REPORT_FIGURES_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// This node's live figures.
pub async fn figures(chat: &actix::Addr<ChatServer>, m: &Metrics) -> Result<serde_json::Value, ChatError> {
    let s = chat.send(TakeSnapshot).await?;
    Ok(json!({
        "at_ms": now_ms(),
        "connections": s.connections,
        "rooms": s.rooms,
        "members": s.members,
        "writer_queue_depth": s.writer_queue_depth,
        "oldest_unwritten_ms": s.oldest_unwritten_ms,
        "messages_accepted": m.messages_accepted.get(),
        "deliveries": m.deliveries.get(),
        "dead_letters": m.dead_letters.get(),
        "slow_consumers": m.slow_consumers.get(),
    }))
}

/// In a cluster: shares this node's figures every few seconds, for as long
/// as the ChatServer runs.
pub async fn report_figures(chat: actix::Addr<ChatServer>, metrics: std::sync::Arc<Metrics>, cluster: Cluster) {
    let mut every = actix_web::rt::time::interval(REPORT_FIGURES_EVERY);
    loop {
        every.tick().await;
        let Ok(figures) = figures(&chat, &metrics).await else { return };
        // Redis away: the next round tries again (the console shows the
        // node as missing meanwhile).
        let _ = cluster.report_figures(&figures).await;
    }
}

/// `GET /admin/dead-letters`: how many writes the database refused and set
/// aside, and the latest 200 of them, newest first.
pub async fn dead_letters(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ChatError> {
    let (count, recent) = db::run(&state.pool, |conn| {
        Ok::<_, diesel::result::Error>((db::dead_letters::count(conn)?, db::dead_letters::recent(conn, 200)?))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "count": count, "entries": recent })))
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
    let kicked = keep_out(&admin, &state, &room, &user, None, "kick", None).await?;
    Ok(HttpResponse::Ok().json(json!({ "kicked": kicked })))
}

/// Takes `user` out of `room` and keeps them out until `until_ms` (or for
/// the kick cooldown); audited as `action`. Answers how many connections
/// went.
async fn keep_out(
    admin: &Admin,
    state: &AppState,
    room: &RoomName,
    user: &DisplayName,
    until_ms: Option<i64>,
    action: &str,
    how_long: Option<String>,
) -> Result<usize, ChatError> {
    let kicked = state.chat.send(Kick { room: room.clone(), user: user.clone(), until_ms }).await??;
    // Done (they are out): on record before waiting for the log.
    let connections = format!("{kicked} connections");
    let detail = how_long.map_or_else(|| connections.clone(), |h| format!("{h}, {connections}"));
    admin.record(state, admin.audit(action, &format!("{user} from {room}"), Some(detail))).await?;
    committed(state).await?;
    Ok(kicked)
}

/// Kept out "until lifted": the end of year 9999, which every backend
/// stores and every clock formats.
pub const UNTIL_LIFTED_MS: i64 = 253_402_300_799_000;

/// `POST /admin/rooms/{room}/ban` `{"user", "minutes"?}`: takes everyone
/// called `user` out of the room and keeps them out, for `minutes` or until
/// lifted: an account by its name, a guest by its name, its browser and its
/// address, whatever name it comes back under.
pub async fn ban_from_room(
    AdminJson(admin, body): AdminJson<RoomBanBody>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let room = RoomName::parse(&path)?;
    let user = DisplayName::parse(&body.user)?;
    let until_ms = match body.minutes {
        None => UNTIL_LIFTED_MS,
        Some(minutes) if (1..=366 * 24 * 60).contains(&minutes) => {
            now_ms() + i64::try_from(minutes * 60_000).expect("a year of milliseconds fits")
        }
        Some(_) => return Err(ChatError::BadRequest("`minutes` must be 1 to 527040 (a year), or absent".into())),
    };
    let how_long = body.minutes.map_or_else(|| "until lifted".to_string(), |m| format!("{m} minutes"));
    let kicked = keep_out(&admin, &state, &room, &user, Some(until_ms), "room_ban", Some(how_long)).await?;
    let until = (until_ms < UNTIL_LIFTED_MS).then(|| format_timestamp(until_ms));
    Ok(HttpResponse::Ok().json(json!({ "room": room, "user": user, "kicked": kicked, "until": until })))
}

/// `POST /admin/rooms/{room}/unban` `{"user"}`: lifts a room ban (or what
/// is left of a kick's cooldown).
pub async fn unban_from_room(
    AdminJson(admin, body): AdminJson<UserBody>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let room = RoomName::parse(&path)?;
    let user = DisplayName::parse(&body.user)?;
    state.chat.send(LetIn { room: room.clone(), user: user.clone() }).await??;
    committed(&state).await?;
    admin.record(&state, admin.audit("room_unban", &format!("{user} in {room}"), None)).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "user": user, "banned": false })))
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
    let audit = admin.audit(if closed { "close_room" } else { "reopen_room" }, room.as_str(), None);
    if !state.chat.send(SetClosed { room: room.clone(), closed, audit }).await?? {
        return Err(ChatError::UnknownRoom(room.to_string()));
    }
    committed(&state).await?;
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
    let audit = admin.audit("delete_message", &format!("{room}#{id}"), None);
    state.chat.send(DeleteMessage { room: room.clone(), id, audit }).await??;
    committed(&state).await?;
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
    let audit = admin.audit("mute", &format!("{user} in {room}"), Some(format!("{} minutes", body.minutes)));
    set_mute(&state, &room, &user, until_ms, audit).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "user": user, "minutes": body.minutes })))
}

/// `POST /admin/rooms/{room}/unmute` `{"user"}`: lifts a mute at once.
pub async fn unmute(
    AdminJson(admin, body): AdminJson<UserBody>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let room = RoomName::parse(&path)?;
    let user = DisplayName::parse(&body.user)?;
    let audit = admin.audit("unmute", &format!("{user} in {room}"), None);
    // A mute that ends now: the same path as any mute, so every node and
    // the log agree.
    set_mute(&state, &room, &user, now_ms(), audit).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "user": user, "muted": false })))
}

/// `POST /admin/users/{name}/unban` `{}`: the account may log in and
/// connect again.
pub async fn unban(
    AdminJson(admin, _): AdminJson<AnyJson>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let user = DisplayName::parse(&path)?;
    admin.change_account(&state, &user, "unban", moderation::unban).await?;
    state.chat.send(UnbanAccount { user_key: user.key() }).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user, "banned": false })))
}

/// `POST /admin/users/{name}/ban` `{}`: the account can no longer log in,
/// its logins stop working, and its open connections end at once.
pub async fn ban(
    AdminJson(admin, _): AdminJson<AnyJson>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let user = DisplayName::parse(&path)?;
    admin.change_account(&state, &user, "ban", |conn, key| moderation::ban(conn, key, now_ms())).await?;
    let ended = state.chat.send(BanAccount { user_key: user.key() }).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user, "banned": true, "connections_ended": ended })))
}

/// `POST /admin/users/{name}/role` `{"admin": true|false}`
pub async fn set_role(
    AdminJson(admin, body): AdminJson<RoleBody>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let user = DisplayName::parse(&path)?;
    let role = body.admin;
    let action = if role { "grant_admin" } else { "revoke_admin" };
    admin.change_account(&state, &user, action, move |conn, key| moderation::set_admin(conn, key, role)).await?;
    // Open connections of that account gain or lose the role at once.
    state.chat.send(SetRole { user_key: user.key(), admin: role }).await?;
    Ok(HttpResponse::Ok().json(json!({ "user": user, "admin": role })))
}

/// `POST /admin/bots` `{"name"}`: a token for `POST /store_message`, shown
/// this once (only its hash is kept).
pub async fn create_bot(
    AdminJson(admin, body): AdminJson<BotBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let bot = DisplayName::parse(&body.name)?;
    let token = accounts::create_bot_token(&state.pool, &bot, admin.audit("create_bot", bot.as_str(), None)).await?;
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
    let audit = admin.audit(if body.private { "make_private" } else { "make_public" }, room.as_str(), None);
    if !state.chat.send(SetPrivate { room: room.clone(), private: body.private, audit }).await?? {
        return Err(ChatError::UnknownRoom(room.to_string()));
    }
    committed(&state).await?;
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
    let audit = admin.audit("invite", &format!("{user} to {room}"), None);
    if !state.chat.send(Invite { room: room.clone(), user: user.clone(), audit }).await?? {
        return Err(ChatError::UnknownRoom(room.to_string()));
    }
    committed(&state).await?;
    Ok(HttpResponse::Ok().json(json!({ "room": room, "invited": user })))
}
