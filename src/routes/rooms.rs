//! Rooms over HTTP: create one, post into one, read its history, list the
//! active ones.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::body::{is_json, read_body, MAX_JSON_BODY};
use super::{identity, pages, AppState};
use crate::accounts;
use crate::chat::history::{self, HistoryQuery};
use crate::chat::server::{
    CreateRoom, LearnRoom, ListRooms, PlanHistory, PlannedHistory, RoomCreated, StoreMessage, Stored, Who,
};
use crate::domain::{DisplayName, Encryption, KeySource, MessageText, RoomName};
use crate::error::ChatError;
use crate::protocol::MessageView;

#[derive(Debug, Deserialize)]
pub struct CreateRoomRequest {
    /// A name to create (or join when it exists); blank for a fresh code.
    room: Option<String>,
    /// A display name to remember in the session cookie.
    name: Option<String>,
    /// `"link"` or `"passphrase"`: an end-to-end encrypted room, whose key
    /// the browser makes and shares (the server never sees it).
    encryption: Option<String>,
    /// Forms only: the CSRF token the form was rendered with.
    csrf: Option<String>,
}

fn room_url(room: &RoomName) -> String {
    format!("/chat/{room}")
}

/// `POST /create_room`, JSON or form. JSON gets `{room, url, created}`
/// (201 when new); a form post is redirected into the room, or shown the
/// home page again with each error next to its field.
pub async fn create_room(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let body = read_body(payload, MAX_JSON_BODY).await?;
    // A request without a JSON content type could come from another site's
    // page, so it is treated as a form, which must carry the CSRF token.
    let json = is_json(&req);
    let request: Result<CreateRoomRequest, ChatError> = if json {
        serde_json::from_slice(&body).map_err(|e| ChatError::BadRequest(format!("invalid JSON body: {e}")))
    } else {
        serde_urlencoded::from_bytes(&body).map_err(|e| ChatError::BadRequest(format!("invalid form: {e}")))
    };
    let request = match request {
        Ok(request) => request,
        Err(e) if !json => {
            let errors = pages::FieldErrors::room(&e);
            return Ok(pages::home_with_errors(&req, &state, StatusCode::BAD_REQUEST, &errors).await);
        }
        Err(e) => return Err(e.into()),
    };
    // A form can be posted from any site; only ours knows the token. (JSON
    // needs a content type other sites cannot send without CORS consent.)
    if !json && !identity::csrf_valid(&req, request.csrf.as_deref()) {
        let expired = ChatError::BadRequest("the form had expired; please send it again".into());
        let errors = pages::FieldErrors {
            room: request.room.clone(),
            name: request.name.clone(),
            ..pages::FieldErrors::room(&expired)
        };
        return Ok(pages::home_with_errors(&req, &state, StatusCode::FORBIDDEN, &errors).await);
    }
    let room = request.room.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let name = request.name.as_deref().map(str::trim).filter(|n| !n.is_empty());

    let parsed_name = name.map(DisplayName::parse).transpose();
    let parsed_room = room.map(RoomName::parse).transpose();
    let (name, room) = match (parsed_name, parsed_room) {
        (Ok(name), Ok(room)) => (name, room),
        (name_result, room_result) if !json => {
            let errors = pages::FieldErrors {
                room: room.map(str::to_string),
                name: name.map(str::to_string),
                room_error: room_result.err().map(|e| e.to_string()),
                name_error: name_result.err().map(|e| e.to_string()),
            };
            return Ok(pages::home_with_errors(&req, &state, StatusCode::BAD_REQUEST, &errors).await);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
    };

    let asked = request.encryption.as_deref().filter(|e| !e.is_empty()).map(KeySource::parse).transpose()?;
    let mut encryption = asked.map(Encryption::new);
    let room = match &state.cluster {
        // Whether the room is encrypted is decided once, in Redis, for
        // every node: by whoever made it first (another node, perhaps), or
        // now.
        Some(cluster) => {
            let room = room.unwrap_or_else(RoomName::generate);
            // Made on another node while this one was not listening: known
            // here first, so it is not made again.
            learn_room(&state, &room).await?;
            encryption = cluster.claim_room(&room, encryption).await?;
            Some(room)
        }
        None => room,
    };
    let created_by = name.clone().or_else(|| identity::display_name(&req, &state.key));
    let ask = CreateRoom { name: room, created_by, asked, encryption };
    let RoomCreated { name: room, new: created, encryption } =
        state.chat.send(ask).await.map_err(ChatError::from)??;

    let url = room_url(&room);
    let mut response = if json {
        let mut r = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
        r.insert_header((header::LOCATION, url.clone()));
        let mut answer = json!({ "room": room, "url": url, "created": created });
        if let Some(encryption) = &encryption {
            answer["encryption"] = json!(encryption);
        }
        r.json(answer)
    } else {
        HttpResponse::SeeOther().insert_header((header::LOCATION, url)).finish()
    };
    if let Some(name) = &name {
        let secure = state.proxies.https(&req);
        response.add_cookie(&identity::name_cookie(name, &state.key, secure))?;
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct StoreMessageRequest {
    room: String,
    text: String,
}

/// `POST /store_message`: a message from a bot or integration, stored and
/// delivered to the room's live members like any other. It needs a bot token
/// (`Authorization: Bearer ...`, made by an admin) and posts under that
/// bot's name; a `user` in the body is ignored.
pub async fn store_message(
    req: HttpRequest,
    body: web::Json<StoreMessageRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let no_token = || ChatError::Unauthorized("a bot token is required: Authorization: Bearer <token>".into());
    let token = identity::bearer_token(&req).ok_or_else(no_token)?;
    let bot = accounts::bot_of(&state.pool, &token).await?.ok_or_else(no_token)?;
    let StoreMessageRequest { room, text, .. } = body.into_inner();
    let room = RoomName::parse(&room)?;
    let post = || -> Result<StoreMessage, ChatError> {
        Ok(StoreMessage {
            room: room.clone(),
            user: DisplayName::parse(&bot)?,
            text: MessageText::parse(text.clone(), state.sessions.max_message_bytes)?,
        })
    };
    let stored = match state.chat.send(post()?).await? {
        Err(ChatError::UnknownRoom(_)) if learn_room(&state, &room).await? => state.chat.send(post()?).await?,
        stored => stored,
    };
    let shutting_down = |_| ChatError::Unavailable("the server is shutting down".into());
    let (message, epoch) = match stored? {
        Stored::Numbered { message, epoch, committed } => {
            if let Some(committed) = committed {
                // `--durable-ack`: answered once the log has it.
                committed.await.map_err(shutting_down)??;
            }
            (message, epoch)
        }
        Stored::Numbering(numbered) => numbered.await.map_err(shutting_down)??,
    };
    let mut answer = serde_json::to_value(MessageView::public(&message)).expect("a message is JSON");
    answer["epoch"] = epoch.into();
    Ok(HttpResponse::Created().json(answer))
}

#[derive(Debug, Deserialize)]
pub struct PageQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/rooms/{room}/messages?before=&limit=`: newest first; pass the
/// answer's `next_before` as `before` for the next, older page.
pub async fn messages(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<PageQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ChatError> {
    let room = RoomName::parse(&path)?;
    let asked = HistoryQuery::before(query.before, query.limit)?;
    let limit = asked.limit();
    // One more than asked tells whether another page exists.
    let probe = asked.with_limit(limit + 1);
    let viewer = identity::current_user(&req, &state).await.map(|u| (Who::User(u.name.key()), u.is_admin));
    let plan_history = || PlanHistory { room: room.clone(), query: probe, viewer: viewer.clone() };
    let PlannedHistory { plan, epoch, encryption } = match state.chat.send(plan_history()).await? {
        Err(ChatError::UnknownRoom(_)) if learn_room(&state, &room).await? => state.chat.send(plan_history()).await??,
        planned => planned?,
    };
    let mut page = history::resolve(plan, probe, &state.log).await?;
    let epoch = match (&state.log.recent, epoch.is_empty()) {
        (Some(recent), true) => recent.epoch(&room).await?.unwrap_or_default(),
        _ => epoch,
    };
    let more = page.messages.len() > limit;
    if more {
        page.messages.remove(0);
    }
    let next_before = more.then(|| page.messages[0].id);
    let newest_first: Vec<_> = page.messages.iter().rev().map(|m| MessageView::public(m)).collect();
    let mut page = json!({ "room": room, "epoch": epoch, "messages": newest_first, "next_before": next_before });
    if let Some(encryption) = &encryption {
        page["encryption"] = json!(encryption);
    }
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/rooms`: rooms with members, busiest first, with counts only.
pub async fn active_rooms(state: web::Data<AppState>) -> Result<HttpResponse, ChatError> {
    let rooms = state.chat.send(ListRooms { include_private: false }).await?;
    let listing: Vec<_> =
        rooms.iter().map(|r| json!({ "name": r.name, "members": r.members.len(), "url": room_url(&r.name) })).collect();
    Ok(HttpResponse::Ok().json(json!({ "rooms": listing })))
}

/// In a cluster, a room another node made while this one was not listening
/// is unknown here until asked about: whether Redis or the log has it
/// (then this node knows it from now on).
async fn learn_room(state: &AppState, room: &RoomName) -> Result<bool, ChatError> {
    let Some(cluster) = &state.cluster else { return Ok(false) };
    let Some(encryption) = cluster.find_room(room).await? else { return Ok(false) };
    state.chat.send(LearnRoom { room: room.clone(), encryption }).await?;
    Ok(true)
}
