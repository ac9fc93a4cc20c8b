//! `GET /healthz`: up, the message log answers and keeps up. `GET /metrics`:
//! the figures operators watch, in Prometheus' text format.

use actix_web::{web, HttpRequest, HttpResponse};
use diesel::connection::SimpleConnection;
use serde_json::json;

use super::admin::authorize;
use super::AppState;
use crate::chat::server::{Snapshot, TakeSnapshot};
use crate::db;

/// 200 with `"status":"ok"`; 503 with `"status":"degraded"` when the
/// database (or, in a cluster, Redis) does not answer, or when a message has waited for it longer
/// than a moment (a stall: sends are refused once it lasts longer still).
pub async fn check(state: web::Data<AppState>) -> HttpResponse {
    let database = db::run(&state.pool, |conn| conn.batch_execute("SELECT 1")).await;
    let snapshot = state.chat.send(TakeSnapshot).await.unwrap_or_default();
    let stalled = u128::from(snapshot.oldest_unwritten_ms) > state.degraded_after.as_millis();
    if let Err(e) = &database {
        log::warn!("health check: {e}");
    }
    let database_ok = database.is_ok();
    let redis = match &state.cluster {
        Some(cluster) => Some(cluster.ping().await.is_ok()),
        None => None,
    };
    let redis_ok = redis.unwrap_or(true);
    let body = |status| {
        json!({
            "status": status,
            "database": if database_ok { "ok" } else { "unavailable" },
            "redis": redis.map(|ok| if ok { "ok" } else { "unavailable" }),
            "writer": if stalled { "stalled" } else { "ok" },
            "oldest_unwritten_ms": snapshot.oldest_unwritten_ms,
            "writer_queue_depth": snapshot.writer_queue_depth,
        })
    };
    if database_ok && redis_ok && !stalled {
        HttpResponse::Ok().json(body("ok"))
    } else {
        HttpResponse::ServiceUnavailable().json(body("degraded"))
    }
}

/// `GET /readyz`: whether a load balancer should send new clients here: 200
/// while serving, 503 from the moment the server begins to stop.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        HttpResponse::ServiceUnavailable().json(json!({ "status": "draining" }))
    } else {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    }
}

/// `GET /metrics`: open to clients on this machine (a Prometheus agent
/// beside Parlor), and otherwise to admins (the admin bearer token).
pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, actix_web::Error> {
    if !state.proxies.is_local(&req) {
        authorize(&req).await?;
    }
    let snapshot = state.chat.send(TakeSnapshot).await.unwrap_or_default();
    sample(&state, &snapshot);
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode()))
}

/// Copies the state figures into the gauges.
pub fn sample(state: &AppState, s: &Snapshot) {
    use crate::metrics::Kind;
    let m = &state.metrics;
    let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    m.connections
        .get_or_create(&Kind { kind: "guest" })
        .set(gauge(s.connections.saturating_sub(s.account_connections)));
    m.connections.get_or_create(&Kind { kind: "account" }).set(gauge(s.account_connections));
    m.rooms.set(gauge(s.rooms));
    m.members.set(gauge(s.members));
    m.session_queue_bytes.set(gauge(s.session_queue_bytes));
    m.socket_buffer_bytes.set(gauge(state.connections.buffered_bytes()));
    m.polling_sessions.set(gauge(state.polling.len()));
    m.writer_queue_depth.set(gauge(s.writer_queue_depth));
    m.oldest_unwritten_seconds.set(s.oldest_unwritten_ms as f64 / 1000.0);
}
