//! The REST API the page (and monitoring) reads: paths with their state, and sessions.

use super::AppState;
use crate::stream::{layer_name, PathState, StreamStatsSnapshot};
use axum::extract::State;
use axum::Json;
use serde::Serialize;

#[derive(Serialize)]
pub struct PathInfo {
    name: String,
    source: String,
    #[serde(flatten)]
    state: PathState,
    viewers: usize,
    stats: StreamStatsSnapshot,
    /// The lower-quality layers of the path's scene, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lower_layers: Vec<LayerInfo>,
}

#[derive(Serialize)]
pub struct LayerInfo {
    name: String,
    source: String,
    #[serde(flatten)]
    state: PathState,
    stats: StreamStatsSnapshot,
}

pub async fn paths(State(app): State<AppState>) -> Json<Vec<PathInfo>> {
    Json(
        app.registry
            .iter()
            .map(|stream| PathInfo {
                name: stream.name().to_owned(),
                source: stream.source_description().to_owned(),
                state: stream.state(),
                viewers: stream.viewer_count(),
                stats: stream.stats(),
                lower_layers: stream
                    .lower_layers()
                    .iter()
                    .zip(1..)
                    .map(|(layer, index)| LayerInfo {
                        name: layer_name(index),
                        source: layer.source_description().to_owned(),
                        state: layer.state(),
                        stats: layer.stats(),
                    })
                    .collect(),
            })
            .collect(),
    )
}

#[derive(Serialize)]
pub struct SessionInfo {
    id: String,
    path: String,
    state: String,
    #[serde(flatten)]
    stats: crate::egress::webrtc::session::SessionStats,
}

pub async fn sessions(State(app): State<AppState>) -> Json<Vec<SessionInfo>> {
    Json(
        app.sessions
            .list()
            .iter()
            .map(|s| SessionInfo { id: s.id.clone(), path: s.path.clone(), state: s.state().borrow().to_string(), stats: s.stats() })
            .collect(),
    )
}
