//! HLS over HTTP: `/hls/NAME/index.m3u8` (multivariant), `stream.m3u8` (media playlist),
//! `init.mp4` and `segN.m4s`, served from the path's one muxer.

use super::AppState;
use crate::egress::hls::{playlist, TARGET_SEGMENT_DURATION};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// How long a request may wait for a fresh muxer's first segment.
const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(6);
const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const MP4: &str = "video/mp4";

fn problem(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message + "\n").into_response()
}

fn body(content_type: &'static str, data: impl IntoResponse) -> Response {
    // Playlists change every segment; segments never change.
    let cache = if content_type == PLAYLIST { "no-cache" } else { "max-age=60" };
    let mut response = ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], data).into_response();
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

pub async fn file(State(app): State<AppState>, Path((path, file)): Path<(String, String)>) -> Response {
    let Some(stream) = app.registry.get(&path).cloned() else {
        return problem(StatusCode::NOT_FOUND, format!("no path {path:?}"));
    };
    let muxer = app.hls.muxer(&stream);
    if !muxer.wait_for_first_segment(FIRST_SEGMENT_WAIT).await {
        let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, format!("path {path:?} has no video yet: {}", stream.state()));
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        return response;
    }
    let output = muxer.output();
    match file.as_str() {
        "index.m3u8" => body(PLAYLIST, playlist::multivariant(&output.codec, output.width, output.height, output.bandwidth_bps())),
        "stream.m3u8" => {
            let segments = output.segment_infos();
            let longest = segments.iter().map(|s| s.duration_secs.round() as u64).max().unwrap_or(0);
            body(PLAYLIST, playlist::media(longest.max(TARGET_SEGMENT_DURATION.as_secs()), &segments))
        }
        "init.mp4" => match &output.init {
            Some(init) => body(MP4, init.clone()),
            None => problem(StatusCode::SERVICE_UNAVAILABLE, "no initialization segment yet".into()),
        },
        _ => {
            let Some(sequence) = file.strip_prefix("seg").and_then(|f| f.strip_suffix(".m4s")).and_then(|n| n.parse::<u64>().ok()) else {
                return problem(StatusCode::NOT_FOUND, format!("no file {file:?}; try index.m3u8"));
            };
            match output.segments.iter().find(|s| s.sequence == sequence) {
                Some(segment) => body(MP4, segment.data.clone()),
                None => problem(StatusCode::NOT_FOUND, format!("segment {sequence} is not available (gone, or not made yet)")),
            }
        }
    }
}
