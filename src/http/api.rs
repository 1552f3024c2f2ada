//! The REST API the page (and monitoring) reads: paths with their state (only those the caller
//! may watch), sessions (the `api` permission), and signed HLS URLs for players that cannot
//! send an `Authorization` header.

use super::access::{self, plain};
use super::AppState;
use crate::auth::{Action, Identity, Protocol, MAX_SIGNED_URL_LIFETIME};
use crate::egress::webrtc::SendDelayFigures;
use crate::media::{AudioCodec, SourceAudio};
use crate::stream::{layer_name, PathState, Stream, StreamStatsSnapshot};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Serialize, utoipa::ToSchema)]
pub struct PathInfo {
    name: String,
    /// What feeds the path, for people: a camera URL without credentials, or the test pattern.
    source: String,
    #[serde(flatten)]
    state: PathState,
    /// Viewers now, by every way in.
    viewers: usize,
    /// The hub's figures (frames, keyframes, bitrate, resyncs, reconnects) and how long the
    /// viewers' packets waited in Lookout.
    #[schema(value_type = Object)]
    stats: StreamFigures,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<AudioInfo>,
    /// The lower-quality layers of the path's scene, best first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lower_layers: Vec<LayerInfo>,
}

/// The path's audio as its source gives it, and whether Opus is being made from it now (for
/// WebRTC viewers of AAC, LL-HLS players of G.711).
#[derive(Serialize, utoipa::ToSchema)]
struct AudioInfo {
    codec: &'static str,
    sample_rate: u32,
    making_opus: bool,
}

impl AudioInfo {
    fn of(stream: &Stream) -> Option<Self> {
        let (codec, sample_rate) = match stream.source_audio()? {
            SourceAudio::Rtp(AudioCodec::Pcmu) => ("pcmu", 8_000),
            SourceAudio::Rtp(AudioCodec::Pcma) => ("pcma", 8_000),
            SourceAudio::Rtp(AudioCodec::Opus) => ("opus", 48_000),
            SourceAudio::Aac(config) => ("aac", config.sample_rate),
        };
        Some(Self { codec, sample_rate, making_opus: stream.making_opus() })
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LayerInfo {
    name: String,
    source: String,
    #[serde(flatten)]
    state: PathState,
    #[schema(value_type = Object)]
    stats: StreamFigures,
}

/// A stream's figures: the hub's, and how long its viewers' packets waited in Lookout.
#[derive(Serialize)]
struct StreamFigures {
    #[serde(flatten)]
    hub: StreamStatsSnapshot,
    #[serde(flatten)]
    send_delay: SendDelayFigures,
}

fn figures(app: &AppState, stream: &Stream, now: Instant) -> StreamFigures {
    StreamFigures { hub: stream.stats(), send_delay: app.sessions.send_delays().figures(stream.name(), now) }
}

/// What a path is doing now: its source's state, its viewers, its figures and its layers'.
pub fn path_info(app: &AppState, stream: &Stream, now: Instant) -> PathInfo {
    PathInfo {
        name: stream.name().to_owned(),
        source: stream.source_description(),
        state: stream.state(),
        viewers: app.limits.viewers.of(stream.name()),
        stats: figures(app, stream, now),
        audio: AudioInfo::of(stream),
        lower_layers: stream
            .lower_layers()
            .iter()
            .zip(1..)
            .map(|(layer, index)| LayerInfo { name: layer_name(index), source: layer.source_description(), state: layer.state(), stats: figures(app, layer, now) })
            .collect(),
    }
}

/// The names of the paths `identity` may watch, in name order.
pub async fn readable_paths(app: &AppState, identity: &Identity) -> Vec<String> {
    let names: Vec<String> = app.registry.list().iter().map(|s| s.name().to_owned()).collect();
    let allowed = futures::future::join_all(names.iter().map(|name| identity.allows(Action::Read, Some(name)))).await;
    names.into_iter().zip(allowed).filter(|(_, allowed)| *allowed).map(|(name, _)| name).collect()
}

#[utoipa::path(get, path = "/api/paths", operation_id = "legacy_paths", tag = "deprecated", responses((status = 200, description = "OK", body = Vec<PathInfo>)))]
#[deprecated(note = "kept for a deprecation period: read /api/v1/paths")]
pub async fn paths(State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    let identity = match access::identify(&app, access::client_ip(&connect_info), &headers, Protocol::Http).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let readable = readable_paths(&app, &identity).await;
    // An anonymous caller who may watch nothing is asked for credentials (browsers then show
    // their login prompt for Basic users); anyone else gets the list, perhaps empty.
    if readable.is_empty() && identity.anonymous && app.access.is_configured() {
        if let Err(response) = access::require(&app, &identity, Action::Read, None).await {
            return response;
        }
    }
    let now = Instant::now();
    Json(readable.iter().filter_map(|name| app.registry.get(name)).map(|stream| path_info(&app, &stream, now)).collect::<Vec<_>>())
    .into_response()
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    id: String,
    /// The path it watches, or `wall of N` for a wall of cameras.
    path: String,
    /// The connection's state: `new`, `connecting`, `connected`, `failed` or `closed`.
    state: String,
    /// What the viewer was sent of its (first) video track and what its link reports
    /// (frames, packets, bytes, NACKs, PLIs, RTT, loss, estimated bitrate, layer).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    stats: Option<crate::egress::webrtc::session::video_track::TrackStats>,
    /// A wall's tiles: the path each shows now (null for none), in track order.
    #[serde(skip_serializing_if = "Option::is_none")]
    tiles: Option<Vec<Option<String>>>,
}

impl SessionInfo {
    pub fn of(session: &crate::egress::webrtc::ViewerSession) -> Self {
        let stats = session.video_stats();
        let tiles = session.is_wall().then(|| session.paths());
        Self { id: session.id.clone(), path: session.label.clone(), state: session.state().borrow().to_string(), stats, tiles }
    }
}

#[utoipa::path(get, path = "/api/sessions", operation_id = "legacy_sessions", tag = "deprecated", responses((status = 200, description = "OK", body = Vec<SessionInfo>)))]
#[deprecated(note = "kept for a deprecation period: read /api/v1/sessions")]
pub async fn sessions(State(app): State<AppState>, connect_info: ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Err(response) = access::authorize(&app, access::client_ip(&connect_info), &headers, Protocol::Http, Action::Api, None).await {
        return response;
    }
    Json(
        app.sessions
            .list()
            .iter()
            .map(|session| SessionInfo::of(session))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

#[derive(Deserialize)]
pub struct SignedUrlRequest {
    /// How long the URL works, in seconds; default an hour, at most a week.
    ttl_secs: Option<u64>,
}

#[derive(Serialize)]
struct SignedUrl {
    url: String,
    expires_at_ms: u128,
}

/// `POST /api/hls-url/NAME?ttl_secs=N`: a signed, expiring LL-HLS URL of a path the caller may
/// watch, for players that cannot send an `Authorization` header.
#[utoipa::path(post, path = "/api/hls-url/{*path}", operation_id = "legacy_signed_hls_url", tag = "hls", params(("path" = String, Path), ("ttl_secs" = Option<u64>, Query, description = "How long the URL works; default an hour, at most a week")), responses((status = 200, description = "A signed, expiring LL-HLS URL", body = Object), (status = 404, description = "No such thing")))]
pub async fn signed_hls_url(
    State(app): State<AppState>,
    Path(path): Path<String>,
    Query(request): Query<SignedUrlRequest>,
    connect_info: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = access::authorize(&app, access::client_ip(&connect_info), &headers, Protocol::Http, Action::Read, Some(&path)).await {
        return response;
    }
    if app.registry.get(&path).is_none() {
        return plain(StatusCode::NOT_FOUND, format!("no path {path:?}"));
    }
    let ttl = Duration::from_secs(request.ttl_secs.unwrap_or(3600));
    if ttl.is_zero() || ttl > MAX_SIGNED_URL_LIFETIME {
        return plain(StatusCode::BAD_REQUEST, format!("ttl_secs must be from 1 to {}", MAX_SIGNED_URL_LIFETIME.as_secs()));
    }
    let (signature, expires) = app.access.url_signer.sign(&path, ttl, SystemTime::now());
    let url = format!("/hls/{path}/index.m3u8?sig={signature}");
    let expires_at_ms = expires.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    ([(header::CACHE_CONTROL, "no-store")], Json(SignedUrl { url, expires_at_ms })).into_response()
}
