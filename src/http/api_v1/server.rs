//! `/api/v1/server`: what is running (version, build, uptime) and where it listens.

use super::access::authorize;
use crate::auth::Action;
use crate::http::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What the server knows of itself from its start.
pub struct ServerFacts {
    pub started: Instant,
    pub started_at: SystemTime,
    /// The page's address, `http://` or `https://`.
    pub http: String,
    /// The WebRTC media ports, in words.
    pub media: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ServerInfo {
    version: &'static str,
    build: Build,
    uptime_secs: u64,
    /// When the server started, in milliseconds since 1970 (UTC).
    started_at_ms: u128,
    listeners: Listeners,
    paths: usize,
    sessions: usize,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Build {
    /// `release` or `debug`.
    profile: &'static str,
    target_os: &'static str,
    target_arch: &'static str,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Listeners {
    http: String,
    media: String,
}

/// The server's version, build, uptime and listeners.
#[utoipa::path(get, path = "/api/v1/server", operation_id = "server_info", tag = "server", responses((status = 200, description = "OK", body = ServerInfo)))]
pub async fn info(State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Err(response) = authorize(&app, &connect_info, &headers, Action::Api, None).await {
        return response;
    }
    let facts = &app.facts;
    Json(ServerInfo {
        version: env!("CARGO_PKG_VERSION"),
        build: Build {
            profile: if cfg!(debug_assertions) { "debug" } else { "release" },
            target_os: std::env::consts::OS,
            target_arch: std::env::consts::ARCH,
        },
        uptime_secs: facts.started.elapsed().as_secs(),
        started_at_ms: facts.started_at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis(),
        listeners: Listeners { http: facts.http.clone(), media: facts.media.clone() },
        paths: app.registry.list().len(),
        sessions: app.sessions.list().len(),
    })
    .into_response()
}
