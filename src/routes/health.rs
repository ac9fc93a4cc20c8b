//! `GET /healthz`: up, and the message log answers.

use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde_json::json;

use crate::error::ChatError;
use crate::startup::AppState;

pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let db = web::block(move || -> Result<(), ChatError> {
        pool.get()?.batch_execute("SELECT 1")?;
        Ok(())
    })
    .await
    .map_err(ChatError::from)
    .and_then(|r| r);
    match db {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ok", "database": "ok" })),
        Err(e) => {
            log::warn!("health check: {e}");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "degraded", "database": "unavailable" }))
        }
    }
}
