//! One error type for everything a client can get wrong or the server can fail
//! at. It maps once to a protocol `error` code and once to an HTTP status.

use actix_web::http::StatusCode;
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
    #[error("room '{0}' is invite-only")]
    PrivateRoom(String),
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
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

impl ChatError {
    /// The `code` of the protocol's `error` frame; part of the public contract.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::InvalidRoom(_) => "invalid_room",
            Self::InvalidName(_) => "invalid_name",
            Self::TooLarge(_) => "too_large",
            Self::NotJoined(_) => "not_joined",
            Self::UnknownRoom(_) => "unknown_room",
            Self::TooManyRooms(_) => "too_many_rooms",
            Self::RoomClosed(_) => "room_closed",
            Self::PrivateRoom(_) => "private_room",
            Self::Muted(_) => "muted",
            Self::RateLimited(_) => "rate_limited",
            Self::Unauthorized(_) => "unauthorized",
            Self::Unavailable(_) | Self::Database(_) => "unavailable",
        }
    }
}

impl ChatError {
    /// The text a client sees. The database's own words stay in the server log.
    pub fn client_message(&self) -> String {
        match self {
            Self::Database(detail) => {
                log::error!("{detail}");
                "the message log is unavailable; try again shortly".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl From<diesel::result::Error> for ChatError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Database(e.to_string())
    }
}

impl From<diesel::r2d2::PoolError> for ChatError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Self::Database(e.to_string())
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
            Self::NotJoined(_) => StatusCode::CONFLICT,
            Self::UnknownRoom(_) => StatusCode::NOT_FOUND,
            Self::TooManyRooms(_) => StatusCode::CONFLICT,
            Self::RoomClosed(_) => StatusCode::GONE,
            Self::PrivateRoom(_) => StatusCode::FORBIDDEN,
            Self::Muted(_) => StatusCode::FORBIDDEN,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Unavailable(_) | Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(json!({ "error": self.code(), "message": self.client_message() }))
    }
}
