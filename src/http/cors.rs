//! Cross-origin answers for WHEP and LL-HLS, whose players often run on other origins: any
//! origin by default, or only those `[auth] allowed_origins` lists.

use super::AppState;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

/// Adds `Access-Control-Allow-Origin` (and, for WHEP, the methods and headers) when the
/// request's origin is allowed; a refused origin gets no such header, so its page cannot read
/// the answer.
pub fn allow(app: &AppState, request: &HeaderMap, mut response: Response, whep: bool) -> Response {
    let origin = match app.allowed_origins.as_slice() {
        [] => Some(HeaderValue::from_static("*")),
        allowed => request
            .get(header::ORIGIN)
            .filter(|origin| allowed.iter().any(|a| a.as_bytes() == origin.as_bytes()))
            .cloned(),
    };
    let headers = response.headers_mut();
    if !app.allowed_origins.is_empty() {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    let Some(origin) = origin else { return response };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if whep {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, DELETE, PATCH, OPTIONS"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, authorization, if-match"));
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("location, etag, link"));
    } else {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, OPTIONS"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("authorization"));
    }
    response
}

/// Whether a WebSocket may be opened from the request's origin: any without `allowed_origins`;
/// with it, those listed and the page's own (an Origin naming the Host the request went to).
/// Clients that are not browsers send no Origin and are not held to it.
pub fn origin_may_connect(app: &AppState, request: &HeaderMap) -> bool {
    let Some(origin) = request.get(header::ORIGIN) else { return true };
    if app.allowed_origins.is_empty() || app.allowed_origins.iter().any(|a| a.as_bytes() == origin.as_bytes()) {
        return true;
    }
    let host = request.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.to_str().ok().and_then(|o| o.split_once("://")).map(|(_, host)| host);
    host.is_some() && host == origin_host
}
