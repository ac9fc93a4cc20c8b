//! Reading request bodies: size limits, and JSON only when the content type
//! says so.

use actix_web::error::{InternalError, JsonPayloadError, PayloadError};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::error::ChatError;

/// JSON bodies larger than this are refused with `too_large` before parsing.
pub const MAX_JSON_BODY: usize = 256 * 1024;

/// Whether the body is declared JSON (in any letter case). Another site's
/// page cannot send that content type with a visitor's cookie without CORS
/// consent, so JSON endpoints need no CSRF token; anything else is treated
/// as a form, which must carry one.
pub fn is_json(req: &HttpRequest) -> bool {
    matches!(req.mime_type(), Ok(Some(mime)) if mime.essence_str().eq_ignore_ascii_case("application/json"))
}

/// A JSON body, refused unless its content type says JSON.
pub fn json_body<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, ChatError> {
    if !is_json(req) {
        return Err(ChatError::BadRequest("send the body as application/json".into()));
    }
    serde_json::from_slice(body).map_err(|e| ChatError::BadRequest(format!("invalid JSON body: {e}")))
}

/// The request body, refused with `too_large` past `limit` bytes.
pub async fn read_body(
    mut payload: impl Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    limit: usize,
) -> Result<BytesMut, ChatError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ChatError::BadRequest(format!("reading the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ChatError::TooLarge(format!("the request body is over {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How `web::Json` bodies that cannot be read are answered.
pub fn json_rejection(err: JsonPayloadError) -> actix_web::Error {
    use JsonPayloadError as E;
    let e = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => ChatError::TooLarge(format!("request body: {err}")),
        E::Deserialize(inner) => ChatError::BadRequest(format!("invalid JSON body: {inner}")),
        E::ContentType => ChatError::BadRequest("send the body as application/json".into()),
        _ => ChatError::BadRequest(format!("invalid JSON body: {err}")),
    };
    InternalError::from_response(err, HttpResponse::from_error(e)).into()
}
