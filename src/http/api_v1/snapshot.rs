//! `GET /api/v1/paths/{name}/snapshot.jpg`: a JPEG of the path's latest keyframe, for
//! dashboards (the `read` permission, as for watching).

use super::access::authorize;
use super::error::ApiError;
use crate::auth::Action;
use crate::egress::snapshot::SnapshotError;
use crate::http::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SnapshotQuery {
    /// The image's width in pixels, 16 to 3840 (at most the picture's own); the height keeps
    /// the aspect. Default: the picture's own.
    width: Option<u32>,
}

/// The path's latest keyframe as a JPEG. A path on demand opens its camera for it.
#[utoipa::path(get, path = "/api/v1/paths/{name}/snapshot.jpg", operation_id = "path_snapshot", tag = "paths",
    params(("name" = String, Path, description = "The path's name; '/' in it written %2F"), SnapshotQuery),
    responses(
        (status = 200, description = "The picture", content_type = "image/jpeg", body = Vec<u8>),
        (status = 404, description = "No such thing", body = ApiError),
        (status = 503, description = "The path has no picture now, or too many snapshots are being made", body = ApiError)))]
pub async fn snapshot(
    Path(name): Path<String>,
    query: Result<Query<SnapshotQuery>, QueryRejection>,
    State(app): State<AppState>,
    connect_info: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = authorize(&app, &connect_info, &headers, Action::Read, Some(&name)).await {
        return response;
    }
    let Query(query) = match query {
        Ok(query) => query,
        // `width` is the only parameter.
        Err(rejection) => return ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", rejection.body_text()).with_field("width").into_response(),
    };
    if query.width.is_some_and(|width| !(16..=3840).contains(&width)) {
        return ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", "width must be from 16 to 3840").with_field("width").into_response();
    }
    let Some(stream) = app.registry.get(&name) else {
        return ApiError::unknown_path(&name).into_response();
    };
    match app.snapshots.jpeg(&stream, query.width).await {
        Ok(jpeg) => ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-cache")], jpeg).into_response(),
        Err(error @ SnapshotError::NotLive { .. }) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_live", error.to_string()).into_response(),
        Err(error @ SnapshotError::Busy) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", error.to_string()).into_response(),
        Err(error) => {
            tracing::warn!(path = %name, "snapshot failed: {error}");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "snapshot_failed", error.to_string()).into_response()
        }
    }
}
