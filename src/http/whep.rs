//! WHEP (RFC 9725): POST an SDP offer to /whep/NAME (with an `Authorization` header when access
//! control asks for one), get the answer and a session Location; DELETE that Location to end
//! the session. Behind it are the same viewer sessions as /ws.

use super::access::{self, plain};
use super::{cors, AppState};
use crate::auth::{Action, Protocol};
use crate::egress::webrtc::session::viewer_session::{new_session_id, SessionError};
use crate::limits::SessionRefused;
use crate::egress::webrtc::transport::ice_servers;
use crate::egress::webrtc::ViewerSession;
use axum::body::Body;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lookout_signaling::MAX_MESSAGE_BYTES;
use std::net::SocketAddr;
use std::sync::Arc;

const SDP: &str = "application/sdp";

/// The secret part of a WHEP session's resource URL: a MAC over the session id under a key
/// made at start. Only the player that created the session learns it (from `Location`), and
/// only WHEP sessions have one, so no other client can end a session it did not create.
pub struct ResourceKeys(ring::hmac::Key);

impl Default for ResourceKeys {
    fn default() -> Self {
        Self(crate::auth::random_key())
    }
}

impl ResourceKeys {
    fn resource(&self, session_id: &str) -> String {
        let tag = ring::hmac::sign(&self.0, session_id.as_bytes());
        format!("{session_id}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The session id of a resource name, when its MAC is right (checked in constant time).
    fn session_of<'a>(&self, resource: &'a str) -> Option<&'a str> {
        let (id, tag) = resource.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        ring::hmac::verify(&self.0, id.as_bytes(), &tag).ok().map(|()| id)
    }
}

fn problem(app: &AppState, request: &HeaderMap, status: StatusCode, message: impl Into<String>) -> Response {
    cors::allow(app, request, plain(status, message), true)
}

#[utoipa::path(options, path = "/whep/{*path}", operation_id = "whep_options", tag = "webrtc", params(("path" = String, Path)), responses((status = 204, description = "CORS preflight; Accept-Post: application/sdp")))]
pub async fn options(State(app): State<AppState>, request: HeaderMap) -> Response {
    cors::allow(&app, &request, (StatusCode::NO_CONTENT, [("accept-post", SDP)]).into_response(), true)
}

#[utoipa::path(post, path = "/whep/{*path}", operation_id = "whep_create", tag = "webrtc", params(("path" = String, Path, description = "The path to watch")), request_body(content = String, content_type = "application/sdp"), responses((status = 201, description = "The SDP answer; Location names the session", content_type = "application/sdp", body = String), (status = 400, description = "Bad request: the error names the field at fault"), (status = 404, description = "No such thing"), (status = 503, description = "Not available now")))]
pub async fn create(State(app): State<AppState>, Path(path): Path<String>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap, body: Body) -> Response {
    let ip = access::client_ip(&connect_info);
    let identity = match access::identify(&app, ip, &headers, Protocol::Whep).await {
        Ok(identity) => identity,
        Err(response) => return cors::allow(&app, &headers, response, true),
    };
    // Admitted first, so that the limits bound the questions the auth backend is asked too.
    let slot = match app.limits.admit_session(ip, &path) {
        Ok(slot) => slot,
        Err(refused) => {
            let status = match refused {
                SessionRefused::TooFast(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let mut response = problem(&app, &headers, status, refused.to_string());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(refused.retry_after().as_secs()));
            return response;
        }
    };
    let session_id = new_session_id();
    if let Err(response) = access::require(&app, &identity.for_session(&session_id), Action::Read, Some(&path)).await {
        return cors::allow(&app, &headers, response, true);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with(SDP) {
        return problem(&app, &headers, StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("the offer must be sent as {SDP}, not {content_type:?}"));
    }
    // Read within the limits of time and size: a slow or endless body is cut off before it
    // holds a connection or memory.
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_MESSAGE_BYTES) {
        return problem(&app, &headers, StatusCode::PAYLOAD_TOO_LARGE, format!("an SDP offer is at most {MAX_MESSAGE_BYTES} bytes"));
    }
    let body = match tokio::time::timeout(app.limits.settings.body_read, axum::body::to_bytes(body, MAX_MESSAGE_BYTES)).await {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            let problem_text = format!("the offer could not be read whole (over {MAX_MESSAGE_BYTES} bytes, or cut short): {error}");
            return problem(&app, &headers, StatusCode::BAD_REQUEST, problem_text);
        }
        Err(_) => {
            let seconds = app.limits.settings.body_read.as_secs_f64();
            return problem(&app, &headers, StatusCode::REQUEST_TIMEOUT, format!("the offer did not arrive within {seconds} s"));
        }
    };
    let Ok(offer) = String::from_utf8(body.to_vec()) else {
        return problem(&app, &headers, StatusCode::BAD_REQUEST, "the SDP offer is not UTF-8 text");
    };
    let Some(stream) = app.registry.get(&path) else {
        return problem(&app, &headers, StatusCode::NOT_FOUND, format!("no path {path:?}"));
    };
    let session = match ViewerSession::start(&stream, &app.network, app.sessions.send_delays(), session_id, slot).await {
        Ok(session) => Arc::new(session),
        Err(error) => return session_problem(&app, &headers, error),
    };
    let answer = match session.answer_offer(&offer) {
        Ok(answer) => answer,
        Err(error) => {
            session.close();
            return session_problem(&app, &headers, error);
        }
    };
    let location = format!("/whep-sessions/{}", app.whep_resources.resource(&session.id));
    let ice_servers = app.network.ice_servers_for(&format!("viewer-{}", session.id));
    tracing::info!(session = %session.id, path = %path, who = %identity.who, "WHEP session created");
    app.sessions.insert(session);
    let mut response = (StatusCode::CREATED, [(header::CONTENT_TYPE, SDP.to_owned()), (header::LOCATION, location)], answer).into_response();
    // The ICE servers the player may use, credentials included (RFC 9725 §4.6).
    for link in ice_servers::link_headers(&ice_servers) {
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, value);
        }
    }
    cors::allow(&app, &headers, response, true)
}

/// `DELETE /whep-sessions/RESOURCE`: ends the session whose resource URL this is. Knowing the
/// URL is the permission (RFC 9725 leaves the resource's authorization to the server).
#[utoipa::path(delete, path = "/whep-sessions/{resource}", operation_id = "whep_delete", tag = "webrtc", params(("resource" = String, Path)), responses((status = 200, description = "Session ended"), (status = 404, description = "No such thing")))]
pub async fn delete(State(app): State<AppState>, Path(resource): Path<String>, headers: HeaderMap) -> Response {
    let session = app.whep_resources.session_of(&resource).and_then(|id| app.sessions.remove(id));
    match session {
        Some(session) => {
            session.close();
            cors::allow(&app, &headers, StatusCode::OK.into_response(), true)
        }
        None => problem(&app, &headers, StatusCode::NOT_FOUND, "no such session"),
    }
}

/// Lookout gathers all its candidates before answering and needs none trickled from the
/// player (its own are found from the player's connectivity checks), so, as RFC 9725 allows,
/// trickle and ICE restart through PATCH are not supported.
#[utoipa::path(patch, path = "/whep-sessions/{resource}", operation_id = "whep_patch", tag = "webrtc", params(("resource" = String, Path)), responses((status = 405, description = "Trickle ICE is not taken: the offer carries every candidate")))]
pub async fn patch(State(app): State<AppState>, headers: HeaderMap) -> Response {
    problem(&app, &headers, StatusCode::METHOD_NOT_ALLOWED, "trickle ICE over PATCH is not supported; send all candidates in the offer")
}

fn session_problem(app: &AppState, request: &HeaderMap, error: SessionError) -> Response {
    let status = match error {
        SessionError::PathNotLive { .. } | SessionError::ServerFull(_) => StatusCode::SERVICE_UNAVAILABLE,
        SessionError::BadSdp(_) | SessionError::BadCandidate(_) | SessionError::UnknownLayer(_) | SessionError::UnknownTrack { .. } => StatusCode::BAD_REQUEST,
        SessionError::Setup(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let not_live = matches!(error, SessionError::PathNotLive { .. });
    let mut response = problem(app, request, status, error.to_string());
    if not_live {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    }
    response
}
