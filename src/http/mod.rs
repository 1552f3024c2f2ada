//! One axum router: the page, WebSocket signalling, WHEP, LL-HLS and the REST API, each way
//! in behind the same access control (`access`).

mod access;
mod api;
mod assets;
mod cors;
mod hls;
mod listener;
mod signaling;
mod tls;
mod whep;

use crate::auth::AccessControl;
use crate::egress::webrtc::{Network, SendDelays, Sessions};
use crate::limits::Limits;
use crate::stream::Registry;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

pub use listener::Listener;
pub use tls::{TlsCertificate, TlsError};
pub use whep::ResourceKeys as WhepResourceKeys;

#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub sessions: Sessions,
    pub network: Arc<Network>,
    /// How long each stream's packets waited in Lookout, as its viewers' forwarders record.
    pub send_delays: SendDelays,
    pub hls: crate::egress::hls::Hls,
    pub access: Arc<AccessControl>,
    pub limits: Arc<Limits>,
    /// Origins whose pages may read WHEP and LL-HLS answers; empty: any.
    pub allowed_origins: Arc<Vec<String>>,
    pub whep_resources: Arc<WhepResourceKeys>,
    /// Becomes true when the server stops: long-lived connections (WebSockets) end then.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The router; `Listener` serves it, with each client's address as `ConnectInfo`, which access
/// control needs.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::file))
        .route("/api/paths", get(api::paths))
        .route("/api/sessions", get(api::sessions))
        .route("/api/hls-url/{*path}", post(api::signed_hls_url))
        .route("/ws", get(signaling::upgrade))
        .route("/hls/{*rest}", get(hls::request).options(hls::preflight))
        .route("/whep/{*path}", post(whep::create).options(whep::options))
        .route("/whep-sessions/{resource}", axum::routing::delete(whep::delete).patch(whep::patch).options(whep::options))
        .with_state(state)
}
