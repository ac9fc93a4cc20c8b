//! The HTML pages: home and room. Templates are compiled into the binary;
//! tera escapes every value, so names and text are always shown as text.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use tera::{Context, Tera};

use super::{identity, AppState};
use crate::chat::server::ListRooms;
use crate::domain::RoomName;
use crate::error::ChatError;

pub fn templates() -> Result<Tera, tera::Error> {
    let mut tera = Tera::default();
    tera.add_raw_templates([
        ("base.html", include_str!("../../templates/base.html")),
        ("home.html", include_str!("../../templates/home.html")),
        ("room.html", include_str!("../../templates/room.html")),
        ("admin_rooms.html", include_str!("../../templates/admin_rooms.html")),
        ("account.html", include_str!("../../templates/account.html")),
        ("admins_only.html", include_str!("../../templates/admins_only.html")),
    ])?;
    Ok(tera)
}

pub fn render(state: &AppState, status: StatusCode, template: &str, context: &Context) -> HttpResponse {
    match state.templates.render(template, context) {
        Ok(html) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html),
        Err(e) => {
            log::error!("rendering {template}: {e:?}");
            HttpResponse::InternalServerError().body("page rendering failed")
        }
    }
}

/// Renders a page with a form: the form carries the visitor's CSRF token,
/// and a visitor without one gets its cookie.
pub fn render_form(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    template: &str,
    mut context: Context,
) -> HttpResponse {
    let (csrf, new_cookie) = identity::csrf_token(req, state.proxies.https(req));
    context.insert("csrf", &csrf);
    let mut page = render(state, status, template, &context);
    if let Some(cookie) = new_cookie {
        let _ = page.add_cookie(&cookie);
    }
    page
}

#[derive(Serialize)]
struct RoomListing {
    name: RoomName,
    members: usize,
}

/// What the home form shows back: the values typed and the error beside the
/// field each belongs to.
#[derive(Debug, Default, Serialize)]
pub struct FieldErrors {
    pub room: Option<String>,
    pub name: Option<String>,
    pub room_error: Option<String>,
    pub name_error: Option<String>,
}

impl FieldErrors {
    /// An error about the request as a whole, shown by the room field.
    pub fn room(err: &ChatError) -> Self {
        Self { room_error: Some(err.to_string()), ..Self::default() }
    }
}

async fn home_page(req: &HttpRequest, state: &AppState, status: StatusCode, form: &FieldErrors) -> HttpResponse {
    let rooms: Vec<RoomListing> = match state.chat.send(ListRooms { include_private: false }).await {
        Ok(rooms) => rooms.into_iter().map(|r| RoomListing { name: r.name, members: r.members.len() }).collect(),
        Err(_) => Vec::new(),
    };
    let user = identity::current_user(req, state).await;
    let cookie_name = identity::display_name(req, &state.key);
    let mut context = Context::new();
    context.insert("rooms", &rooms);
    context.insert("user", &user.as_ref().map(|u| u.name.as_str()));
    context.insert("admin", &user.as_ref().is_some_and(|u| u.is_admin));
    let name =
        user.as_ref().map(|u| u.name.as_str()).or(form.name.as_deref()).or(cookie_name.as_ref().map(|n| n.as_str()));
    context.insert("name", &name);
    context.insert("form", form);
    render_form(req, state, status, "home.html", context)
}

/// `GET /`
pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    home_page(&req, &state, StatusCode::OK, &FieldErrors::default()).await
}

/// The home page again, with the errors next to their fields.
pub async fn home_with_errors(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    errors: &FieldErrors,
) -> HttpResponse {
    home_page(req, state, status, errors).await
}

/// `GET /chat/{room}`
pub async fn room(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    let room = match RoomName::parse(&path) {
        Ok(room) => room,
        Err(e) => {
            let form = FieldErrors { room: Some(path.into_inner()), ..FieldErrors::room(&e) };
            return home_with_errors(&req, &state, StatusCode::BAD_REQUEST, &form).await;
        }
    };
    // A logged-in person is their account, whatever name cookie they have.
    let user = identity::current_user(&req, &state).await;
    let name = user.as_ref().map(|u| u.name.clone()).or_else(|| identity::display_name(&req, &state.key));
    let mut context = Context::new();
    context.insert("room", &room);
    context.insert("name", &name);
    context.insert("account", &user.as_ref().map(|u| u.name.as_str()));
    context.insert("admin", &user.is_some_and(|u| u.is_admin));
    context.insert("max_message_bytes", &state.sessions.max_message_bytes);
    // With a form: logging out from the room page.
    let mut page = render_form(&req, &state, StatusCode::OK, "room.html", context);
    // What the page sends is this browser's to edit and delete later, in
    // any tab; the WebSocket handshake carries the cookie.
    if let Some(cookie) = identity::new_guest_cookie(&req, &state.key, state.proxies.https(&req)) {
        let _ = page.add_cookie(&cookie);
    }
    page
}
