//! One axum router: the page, WebSocket signalling, WHEP, LL-HLS, the REST API and the
//! metrics, each way in behind the same access control (`access`).

mod access;
mod api;
mod api_v1;
mod assets;
mod cors;
mod health;
mod hls;
mod listener;
mod metrics;
mod signaling;
mod tls;
mod whep;

use crate::auth::AccessControl;
use crate::egress::webrtc::{Network, Sessions};
use crate::limits::Limits;
use crate::paths::PathManager;
use crate::stream::Registry;
use axum::Router;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use api_v1::ServerFacts;

pub use listener::Listener;
pub use tls::{TlsCertificate, TlsError};
pub use whep::ResourceKeys as WhepResourceKeys;

#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    /// Adds, changes and removes paths (the API, SIGHUP).
    pub paths: Arc<PathManager>,
    pub facts: Arc<ServerFacts>,
    pub sessions: Sessions,
    pub network: Arc<Network>,
    pub hls: crate::egress::hls::Hls,
    pub snapshots: Arc<crate::egress::snapshot::Snapshots>,
    pub access: Arc<AccessControl>,
    pub limits: Arc<Limits>,
    /// Origins whose pages may read WHEP and LL-HLS answers; empty: any.
    pub allowed_origins: Arc<Vec<String>>,
    pub whep_resources: Arc<WhepResourceKeys>,
    /// Becomes true when the server stops: long-lived connections (WebSockets) end then.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The open signalling sockets, which a stopping server waits for.
    pub sockets: tokio_util::task::TaskTracker,
}

/// The router; `Listener` serves it, with each client's address as `ConnectInfo`, which access
/// control needs. Every route is registered with its OpenAPI description, so the document
/// served at `/api/v1/openapi.json` lists them all.
#[allow(deprecated)] // `/api/paths` and `/api/sessions` are served for a deprecation period
pub fn router(state: AppState) -> Router {
    let (router, api) = OpenApiRouter::new()
        .routes(routes!(assets::index))
        .routes(routes!(assets::file))
        .routes(routes!(health::alive))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::scrape))
        .routes(routes!(api::paths))
        .routes(routes!(api::sessions))
        .routes(routes!(api::signed_hls_url))
        .merge(api_v1::routes())
        .routes(routes!(api_v1::openapi::document))
        .routes(routes!(signaling::upgrade))
        .routes(routes!(hls::request, hls::preflight))
        .routes(routes!(whep::create, whep::options))
        .routes(routes!(whep::delete, whep::patch))
        .with_state(state)
        .split_for_parts();
    router.layer(axum::Extension(api_v1::openapi::Document::new(api)))
}
