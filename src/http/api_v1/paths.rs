//! `/api/v1/paths`: the paths, with where each came from and how it is written; add, replace,
//! patch and delete the ones made through the API. Names with '/' (`garage/door`) are written
//! `garage%2Fdoor` in these URLs.

use super::access::{api_caller, authorize, refusal, require};
use super::body::{json_value, typed, ApiBody};
use super::error::ApiError;
use crate::auth::{Action, Protocol};
use crate::config::PathSpec;
use crate::http::access;
use crate::http::api::{path_info, readable_paths, PathInfo};
use crate::http::AppState;
use crate::paths::{apply_merge_patch, Origin, PathEntry, PathError};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Instant;

/// A path: how it is written, where that is, and what it is doing now.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PathResource {
    origin: Origin,
    /// The path as written, without its secrets (no password, no credentials in the URL).
    config: PathSpec,
    #[serde(flatten)]
    status: PathInfo,
}

/// A path to add: its name, and its `config` with the same fields as a `[paths.NAME]` table of
/// the file.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPath {
    /// 1-128 characters of letters, digits, '-', '_' or '.', in parts separated by '/'.
    name: String,
    config: PathSpec,
}

/// Paths to add together: all of them, or none when one is wrong.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPaths {
    paths: Vec<NewPath>,
}

/// The names of the paths a batch added.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AddedPaths {
    added: Vec<String>,
}

fn resource(app: &AppState, entry: PathEntry) -> PathResource {
    PathResource { origin: entry.origin, config: entry.spec, status: path_info(app, &entry.stream, Instant::now()) }
}

/// Every path the caller may watch.
#[utoipa::path(get, path = "/api/v1/paths", operation_id = "path_list", tag = "paths",
    responses((status = 200, description = "The paths the caller may watch, in name order", body = Vec<PathResource>)))]
pub async fn list(State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    let identity = match access::identify(&app, access::client_ip(&connect_info), &headers, Protocol::Http).await {
        Ok(identity) => identity,
        Err(response) => return refusal(response).await,
    };
    let readable = readable_paths(&app, &identity).await;
    if readable.is_empty() && identity.anonymous && app.access.is_configured() {
        if let Err(response) = access::require(&app, &identity, Action::Read, None).await {
            return refusal(response).await;
        }
    }
    let entries = app.paths.list().await;
    Json(entries.into_iter().filter(|entry| readable.contains(&entry.name)).map(|entry| resource(&app, entry)).collect::<Vec<_>>()).into_response()
}

/// One path.
#[utoipa::path(get, path = "/api/v1/paths/{name}", operation_id = "path_get", tag = "paths",
    params(("name" = String, Path, description = "The path's name; '/' in it written %2F")),
    responses((status = 200, description = "OK", body = PathResource), (status = 404, description = "No such thing", body = ApiError)))]
pub async fn get(Path(name): Path<String>, State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Err(response) = authorize(&app, &connect_info, &headers, Action::Read, Some(&name)).await {
        return response;
    }
    match app.paths.get(&name).await {
        Some(entry) => Json(resource(&app, entry)).into_response(),
        None => ApiError::unknown_path(&name).into_response(),
    }
}

/// Adds a path; its source starts at once, and it is kept across restarts.
#[utoipa::path(post, path = "/api/v1/paths", operation_id = "path_add", tag = "paths", request_body = NewPath,
    responses((status = 201, description = "Added and kept", body = PathResource), (status = 400, description = "Bad request: the error names the field at fault", body = ApiError), (status = 409, description = "Conflict: the error says with what", body = ApiError)))]
pub async fn add(State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap, ApiBody(body): ApiBody) -> Response {
    let added = async {
        let identity = api_caller(&app, &connect_info, &headers).await.map_err(Refused)?;
        let NewPath { name, config } = typed(json_value(&body)?)?;
        require(&app, &identity, Action::Api, Some(&name)).await.map_err(Refused)?;
        app.paths.add(vec![(name.clone(), config)], |_| ("name".to_owned(), "config".to_owned())).await?;
        Ok::<_, AddError>(name)
    };
    match added.await {
        Ok(name) => created(&app, &name).await,
        Err(error) => error.into_response(),
    }
}

/// Adds many paths at once: all of them, or none when one is wrong (the error names it as
/// `paths[INDEX].config.FIELD`).
#[utoipa::path(post, path = "/api/v1/batch/paths", operation_id = "path_add_batch", tag = "paths", request_body = NewPaths,
    responses((status = 201, description = "All added and kept", body = AddedPaths), (status = 400, description = "Bad request: the error names the field at fault", body = ApiError), (status = 409, description = "Conflict: the error says with what", body = ApiError)))]
pub async fn add_batch(State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap, ApiBody(body): ApiBody) -> Response {
    let added = async {
        let identity = api_caller(&app, &connect_info, &headers).await.map_err(Refused)?;
        let NewPaths { paths } = typed(json_value(&body)?)?;
        let paths: Vec<(String, PathSpec)> = paths.into_iter().map(|path| (path.name, path.config)).collect();
        for (name, _) in &paths {
            require(&app, &identity, Action::Api, Some(name)).await.map_err(Refused)?;
        }
        let names: Vec<String> = paths.iter().map(|(name, _)| name.clone()).collect();
        app.paths.add(paths, |index| (format!("paths[{index}].name"), format!("paths[{index}].config"))).await?;
        Ok::<_, AddError>(names)
    };
    match added.await {
        Ok(added) => {
            tracing::info!(paths = added.len(), "paths added through the API");
            (StatusCode::CREATED, Json(AddedPaths { added })).into_response()
        }
        Err(error) => error.into_response(),
    }
}

/// Replaces a path made through the API (or adds it): only its sources that changed restart,
/// and its viewers stay connected when it keeps as many layers.
#[utoipa::path(put, path = "/api/v1/paths/{name}", operation_id = "path_replace", tag = "paths", request_body = PathSpec,
    params(("name" = String, Path, description = "The path's name; '/' in it written %2F")),
    responses((status = 200, description = "OK", body = PathResource), (status = 201, description = "Added", body = PathResource), (status = 400, description = "Bad request: the error names the field at fault", body = ApiError), (status = 409, description = "The path comes from the configuration file", body = ApiError)))]
pub async fn replace(Path(name): Path<String>, State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap, ApiBody(body): ApiBody) -> Response {
    if let Err(response) = authorize(&app, &connect_info, &headers, Action::Api, Some(&name)).await {
        return response;
    }
    let spec = match json_value(&body).and_then(typed::<PathSpec>) {
        Ok(spec) => spec,
        Err(error) => return error.into_response(),
    };
    match app.paths.replace(&name, spec.clone()).await {
        Ok(()) => current(&app, &name).await,
        Err(PathError::NotFound(_)) => match app.paths.add(vec![(name.clone(), spec)], |_| (String::new(), String::new())).await {
            Ok(()) => created(&app, &name).await,
            Err(error) => ApiError::from(error).into_response(),
        },
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// Changes some fields of a path made through the API (a JSON Merge Patch, RFC 7386:
/// `null` removes a field).
#[utoipa::path(patch, path = "/api/v1/paths/{name}", operation_id = "path_patch", tag = "paths", request_body(content = Object, content_type = "application/merge-patch+json"),
    params(("name" = String, Path, description = "The path's name; '/' in it written %2F")),
    responses((status = 200, description = "OK", body = PathResource), (status = 400, description = "Bad request: the error names the field at fault", body = ApiError), (status = 404, description = "No such thing", body = ApiError), (status = 409, description = "Conflict: the error says with what", body = ApiError)))]
pub async fn patch(Path(name): Path<String>, State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap, ApiBody(body): ApiBody) -> Response {
    if let Err(response) = authorize(&app, &connect_info, &headers, Action::Api, Some(&name)).await {
        return response;
    }
    let patched = async {
        let patch = json_value(&body)?;
        app.paths
            .modify(&name, |stored| {
                let mut value = serde_json::to_value(stored).map_err(|error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "bad_json", error.to_string()))?;
                apply_merge_patch(&mut value, &patch);
                typed::<PathSpec>(value)
            })
            .await
    };
    match patched.await {
        Ok(()) => current(&app, &name).await,
        Err(error) => error.into_response(),
    }
}

/// Deletes a path made through the API: its source stops and its viewers are ended, told why.
#[utoipa::path(delete, path = "/api/v1/paths/{name}", operation_id = "path_delete", tag = "paths",
    params(("name" = String, Path, description = "The path's name; '/' in it written %2F")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such thing", body = ApiError), (status = 409, description = "Conflict: the error says with what", body = ApiError)))]
pub async fn delete(Path(name): Path<String>, State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Err(response) = authorize(&app, &connect_info, &headers, Action::Api, Some(&name)).await {
        return response;
    }
    match app.paths.delete(&name).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

async fn current(app: &AppState, name: &str) -> Response {
    match app.paths.get(name).await {
        Some(entry) => Json(resource(app, entry)).into_response(),
        None => ApiError::unknown_path(name).into_response(),
    }
}

async fn created(app: &AppState, name: &str) -> Response {
    let location = format!("/api/v1/paths/{}", name.replace('/', "%2F"));
    let mut response = current(app, name).await;
    *response.status_mut() = StatusCode::CREATED;
    if let Ok(location) = location.parse() {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Why adding failed: the body, access control, or the change itself.
enum AddError {
    Api(ApiError),
    Refused(Response),
}

use AddError::Refused;

impl From<ApiError> for AddError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<PathError> for AddError {
    fn from(error: PathError) -> Self {
        Self::Api(error.into())
    }
}

impl IntoResponse for AddError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(error) => error.into_response(),
            Self::Refused(response) => response,
        }
    }
}
