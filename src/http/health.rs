//! Health for orchestrators and load balancers: `/healthz` answers while the process does;
//! `/readyz` while it takes viewers (its listeners are bound and its configuration loaded by
//! the time it answers at all), and 503 once it is stopping.

use super::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "health_alive", tag = "health", responses((status = 200, description = "Alive", body = String)))]
pub async fn alive() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// The server takes viewers.
#[utoipa::path(get, path = "/readyz", operation_id = "health_ready", tag = "health",
    responses((status = 200, description = "Ready", body = String), (status = 503, description = "Stopping", body = String)))]
pub async fn ready(State(app): State<AppState>) -> Response {
    if *app.shutdown.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}
