//! One error type for everything a client can get wrong or the server can fail
//! at. It maps once to a protocol `error` code (`code`) and once to an HTTP
//! answer (`ResponseError`).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    InvalidRoom(String),
    #[error("{0}")]
    InvalidName(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("not joined to room '{0}'")]
    NotJoined(String),
    #[error("no room named '{0}'")]
    UnknownRoom(String),
    #[error("no account '{0}'")]
    UnknownUser(String),
    #[error("room '{room}' has no message {id}")]
    UnknownMessage { room: String, id: i64 },
    /// Editing or deleting a message someone else sent.
    #[error("message {0} is not yours: only its author may change it")]
    NotYours(i64),
    #[error("room '{0}' is invite-only")]
    PrivateRoom(String),
    #[error(
        "room '{0}' is end-to-end encrypted: its messages must be sent encrypted (v1 envelopes, see docs/protocol.md)"
    )]
    EncryptionRequired(String),
    /// The room exists, not in the form the request asked for.
    #[error("{0}")]
    RoomExists(String),
    /// Kicked or banned by an admin (`minutes` is `u64::MAX` for a ban
    /// until lifted).
    #[error("an admin removed you from room '{room}'; {}", come_back(*minutes))]
    KeptOut { room: String, minutes: u64 },
    #[error("room '{0}' is closed")]
    RoomClosed(String),
    #[error("you are muted in this room for {0} more seconds")]
    Muted(u64),
    #[error("a connection may be in at most {0} rooms; leave one first")]
    TooManyRooms(usize),
    #[error("{0}")]
    RateLimited(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("pages from this origin may not open Parlor WebSockets")]
    ForbiddenOrigin,
    /// No such route (or one that does not show itself to this caller).
    #[error("no route for {0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("the message log refused this message: it was not stored, and no one received it")]
    NotStored,
    /// Too much of something expensive at once: try again in a moment.
    #[error("{0}")]
    Busy(String),
    /// The cause stays in the error (for the server log); clients get a
    /// plain `unavailable`.
    #[error(transparent)]
    Database(#[from] DbError),
}

/// When someone kept out of a room may come back.
fn come_back(minutes: u64) -> String {
    // Longer than a year is a ban until an admin lifts it.
    if minutes > 366 * 24 * 60 {
        "you may not come back until an admin lets you".into()
    } else {
        format!("you may come back in {minutes} minute(s)")
    }
}

/// Seconds a `Busy` answer asks the client to wait.
pub const RETRY_BUSY_AFTER_SECS: u64 = 1;

/// What went wrong talking to the database, kept whole for the server log.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("no database connection: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("cannot connect to the database: {0}")]
    Connect(String),
}

impl ChatError {
    /// The `code` of the protocol's `error` frame and of HTTP error bodies;
    /// part of the public contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidRoom(_) => "invalid_room",
            Self::InvalidName(_) => "invalid_name",
            Self::TooLarge(_) => "too_large",
            Self::NotJoined(_) => "not_joined",
            Self::NotStored => "not_stored",
            Self::UnknownRoom(_) => "unknown_room",
            Self::UnknownUser(_) => "unknown_user",
            Self::UnknownMessage { .. } => "unknown_message",
            Self::NotYours(_) => "not_yours",
            Self::TooManyRooms(_) => "too_many_rooms",
            Self::RoomClosed(_) => "room_closed",
            Self::EncryptionRequired(_) => "encryption_required",
            Self::KeptOut { .. } => "kicked",
            Self::RoomExists(_) => "room_exists",
            Self::PrivateRoom(_) => "private_room",
            Self::Muted(_) => "muted",
            Self::RateLimited(_) => "rate_limited",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::ForbiddenOrigin => "forbidden_origin",
            Self::NotFound(_) => "not_found",
            Self::Unavailable(_) | Self::Busy(_) | Self::Database(_) => "unavailable",
        }
    }

    /// The answer for a path that does not exist, or does not show itself
    /// to this caller.
    pub fn no_route(req: &actix_web::HttpRequest) -> Self {
        Self::NotFound(format!("{} {}", req.method(), req.path()))
    }

    /// The text a client sees. The database's own words go to the server
    /// log only.
    pub fn client_message(&self) -> String {
        match self {
            Self::Database(cause) => {
                log::error!("{cause}");
                "the message log is unavailable; try again shortly".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl From<diesel::result::Error> for ChatError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Database(e.into())
    }
}

impl From<diesel::r2d2::PoolError> for ChatError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Self::Database(e.into())
    }
}

impl From<actix::MailboxError> for ChatError {
    fn from(_: actix::MailboxError) -> Self {
        Self::Unavailable("the chat server is not running".into())
    }
}

impl From<actix_web::error::BlockingError> for ChatError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        Self::Unavailable("the server is shutting down".into())
    }
}

impl ResponseError for ChatError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidRoom(_) | Self::InvalidName(_) => StatusCode::BAD_REQUEST,
            Self::NotJoined(_) | Self::TooManyRooms(_) | Self::RoomExists(_) => StatusCode::CONFLICT,
            Self::EncryptionRequired(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotStored => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UnknownRoom(_) | Self::UnknownUser(_) | Self::UnknownMessage { .. } | Self::NotFound(_) => {
                StatusCode::NOT_FOUND
            }
            Self::RoomClosed(_) => StatusCode::GONE,
            Self::PrivateRoom(_)
            | Self::Muted(_)
            | Self::KeptOut { .. }
            | Self::NotYours(_)
            | Self::Forbidden(_)
            | Self::ForbiddenOrigin => StatusCode::FORBIDDEN,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Unavailable(_) | Self::Busy(_) | Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            // RFC 9110: a 401 names the scheme that would have worked.
            Self::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"parlor\""));
            }
            Self::Busy(_) => {
                response.insert_header((header::RETRY_AFTER, RETRY_BUSY_AFTER_SECS.to_string()));
            }
            _ => {}
        }
        response.json(json!({ "error": self.code(), "message": self.client_message() }))
    }
}
