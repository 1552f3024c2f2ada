//! WHEP (RFC 9725): POST an SDP offer to /whep/NAME, get the answer and a session Location;
//! DELETE that Location to end the session. Behind it are the same viewer sessions as /ws.

use super::AppState;
use crate::egress::webrtc::session::{OfferFrom, SessionError};
use crate::egress::webrtc::{ice_servers, ViewerSession};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lookout_signaling::MAX_MESSAGE_BYTES;
use std::sync::Arc;

const SDP: &str = "application/sdp";

/// WHEP players often run on another origin; let them read the answer and the Location.
fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, DELETE, PATCH, OPTIONS"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type, authorization, if-match"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("location, etag, link"));
    response
}

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    cors((status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.into() + "\n").into_response())
}

pub async fn options() -> Response {
    cors((StatusCode::NO_CONTENT, [("accept-post", SDP)]).into_response())
}

pub async fn create(State(app): State<AppState>, Path(path): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with(SDP) {
        return problem(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("the offer must be sent as {SDP}, not {content_type:?}"));
    }
    if body.len() > MAX_MESSAGE_BYTES {
        return problem(StatusCode::PAYLOAD_TOO_LARGE, format!("an SDP offer of {} bytes exceeds the limit of {MAX_MESSAGE_BYTES}", body.len()));
    }
    let Ok(offer) = String::from_utf8(body.to_vec()) else {
        return problem(StatusCode::BAD_REQUEST, "the SDP offer is not UTF-8 text");
    };
    let Some(stream) = app.registry.get(&path).cloned() else {
        return problem(StatusCode::NOT_FOUND, format!("no path {path:?}"));
    };
    let session = match ViewerSession::start(&stream, &app.network, OfferFrom::Viewer).await {
        Ok(session) => Arc::new(session),
        Err(error) => return session_problem(error),
    };
    let answer = match session.answer_offer(offer).await {
        Ok(answer) => answer,
        Err(error) => {
            session.close().await;
            return session_problem(error);
        }
    };
    let location = format!("/whep/{path}/{}", session.id);
    let ice_servers = app.network.ice_servers_for(&format!("viewer-{}", session.id));
    app.sessions.insert(session);
    let mut response = (StatusCode::CREATED, [(header::CONTENT_TYPE, SDP.to_owned()), (header::LOCATION, location)], answer).into_response();
    // The ICE servers the player may use, credentials included (RFC 9725 §4.6).
    for link in ice_servers::link_headers(&ice_servers) {
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, value);
        }
    }
    cors(response)
}

pub async fn delete(State(app): State<AppState>, Path((path, id)): Path<(String, String)>) -> Response {
    match app.sessions.get(&id).filter(|s| s.path == path) {
        Some(_) => {
            if let Some(session) = app.sessions.remove(&id) {
                session.close().await;
            }
            cors(StatusCode::OK.into_response())
        }
        None => problem(StatusCode::NOT_FOUND, "no such session"),
    }
}

/// Lookout gathers all its candidates before answering and needs none trickled from the
/// player (its own are found from the player's connectivity checks), so, as RFC 9725 allows,
/// trickle and ICE restart through PATCH are not supported.
pub async fn patch() -> Response {
    problem(StatusCode::METHOD_NOT_ALLOWED, "trickle ICE over PATCH is not supported; send all candidates in the offer")
}

fn session_problem(error: SessionError) -> Response {
    match error {
        SessionError::PathNotLive { .. } => {
            let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, error.to_string());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            response
        }
        SessionError::BadSdp(_) | SessionError::UnknownLayer { .. } => problem(StatusCode::BAD_REQUEST, error.to_string()),
        SessionError::ServerFull(_) => problem(StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
        SessionError::Internal(_) => problem(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}
