//! Access control for the API: the same decisions as everywhere (`http::access`), its refusals
//! in the API's JSON form.

use super::error::ApiError;
use crate::auth::{Action, Identity, Protocol};
use crate::http::{access, AppState};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// Allows `action` on `path` for the caller, or answers why not (401, 403, 429) as JSON.
pub async fn authorize(app: &AppState, connect_info: &ConnectInfo<SocketAddr>, headers: &HeaderMap, action: Action, path: Option<&str>) -> Result<(), Response> {
    match access::authorize(app, access::client_ip(connect_info), headers, Protocol::Http, action, path).await {
        Ok(_) => Ok(()),
        Err(response) => Err(refusal(response).await),
    }
}

/// Identifies a caller whose body names its paths, and refuses one who may use the API on no
/// path at all before that body is parsed: a stranger's body is not judged (only its size is,
/// as it is read).
pub async fn api_caller(app: &AppState, connect_info: &ConnectInfo<SocketAddr>, headers: &HeaderMap) -> Result<Identity, Response> {
    let identity = match access::identify(app, access::client_ip(connect_info), headers, Protocol::Http).await {
        Ok(identity) => identity,
        Err(response) => return Err(refusal(response).await),
    };
    if !identity.may_somewhere(Action::Api) {
        require(app, &identity, Action::Api, None).await?;
    }
    Ok(identity)
}

/// Allows `action` on `path` for a caller already identified, or answers why not as JSON.
pub async fn require(app: &AppState, identity: &Identity, action: Action, path: Option<&str>) -> Result<(), Response> {
    match access::require(app, identity, action, path).await {
        Ok(()) => Ok(()),
        Err(response) => Err(refusal(response).await),
    }
}

/// Access control's refusal (401, 403, 429, or 400 for a malformed credential) in the API's
/// form, its headers (`WWW-Authenticate`, `Retry-After`) kept.
pub async fn refusal(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let message = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => "refused".to_owned(),
    };
    let code = match parts.status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        _ => "bad_credential",
    };
    parts.headers.remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = ApiError::new(parts.status, code, message);
    (parts, body).into_response()
}
