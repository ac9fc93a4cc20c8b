//! `GET /healthz`: up, and the message log answers.

use actix_web::{web, HttpResponse};
use diesel::connection::SimpleConnection;
use serde_json::json;

use super::AppState;
use crate::db;

pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    match db::run(&state.pool, |conn| conn.batch_execute("SELECT 1")).await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ok", "database": "ok" })),
        Err(e) => {
            log::warn!("health check: {e}");
            HttpResponse::ServiceUnavailable().json(json!({ "status": "degraded", "database": "unavailable" }))
        }
    }
}
