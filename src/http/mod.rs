//! One axum router: the page, WebSocket signalling, WHEP and the REST API.

mod api;
mod assets;
mod hls;
mod signaling;
mod whep;

use crate::egress::webrtc::{Network, Sessions};
use std::sync::Arc;
use crate::stream::Registry;
use axum::routing::{get, post};
use axum::Router;

#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub sessions: Sessions,
    pub network: Arc<Network>,
    pub hls: crate::egress::hls::Hls,
    /// Becomes true when the server stops: long-lived connections (WebSockets) end then.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/api/paths", get(api::paths))
        .route("/api/sessions", get(api::sessions))
        .route("/ws", get(signaling::upgrade))
        .route("/hls/{path}/{file}", get(hls::file))
        .route("/whep/{path}", post(whep::create).options(whep::options))
        .route("/whep/{path}/{session}", axum::routing::delete(whep::delete).patch(whep::patch).options(whep::options))
        .with_state(state)
}
