//! `/api/v1/sessions`: the viewers' WebRTC sessions (the `api` permission): list them, read
//! one, end one.

use super::access::authorize;
use super::error::ApiError;
use crate::auth::Action;
use crate::http::api::SessionInfo;
use crate::http::AppState;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::net::SocketAddr;

fn unknown_session(id: &str) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_session", format!("no session {id:?}")).into_response()
}

/// Every viewer session now.
#[utoipa::path(get, path = "/api/v1/sessions", operation_id = "session_list", tag = "sessions", responses((status = 200, description = "OK", body = Vec<SessionInfo>)))]
pub async fn list(State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Err(response) = authorize(&app, &connect_info, &headers, Action::Api, None).await {
        return response;
    }
    Json(app.sessions.list().iter().map(|session| SessionInfo::of(session)).collect::<Vec<_>>()).into_response()
}

/// One viewer session.
#[utoipa::path(get, path = "/api/v1/sessions/{id}", operation_id = "session_get", tag = "sessions", params(("id" = String, Path)),
    responses((status = 200, description = "OK", body = SessionInfo), (status = 404, description = "No such thing", body = ApiError)))]
pub async fn get(Path(id): Path<String>, State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Err(response) = authorize(&app, &connect_info, &headers, Action::Api, None).await {
        return response;
    }
    match app.sessions.get(&id) {
        Some(session) => Json(SessionInfo::of(&session)).into_response(),
        None => unknown_session(&id),
    }
}

/// Ends a viewer session; the viewer's page learns that it was closed.
#[utoipa::path(delete, path = "/api/v1/sessions/{id}", operation_id = "session_end", tag = "sessions", params(("id" = String, Path)),
    responses((status = 204, description = "Ended"), (status = 404, description = "No such thing", body = ApiError)))]
pub async fn end(Path(id): Path<String>, State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Err(response) = authorize(&app, &connect_info, &headers, Action::Api, None).await {
        return response;
    }
    if app.sessions.end(&id) {
        tracing::info!(session = %id, "session ended through the API");
        StatusCode::NO_CONTENT.into_response()
    } else {
        unknown_session(&id)
    }
}
