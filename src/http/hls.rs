//! HLS over HTTP: `/hls/NAME/index.m3u8` (multivariant), `stream.m3u8` (media playlist, with
//! blocking reload), `init.mp4`, `segN.m4s` and `partN.I.m4s`, served from the path's one muxer.
//!
//! A player may read a path with an `Authorization` header (hls.js, as the page sets it up) or
//! with a signed URL (`?sig=…`, from `POST /api/hls-url/NAME`), whose signature the playlists
//! then carry to every URI they list. The multivariant playlist also gives each player an id
//! for its media playlist's URI, by which it is counted (`egress::hls::players`).

use super::access;
use super::{cors, AppState};
use crate::auth::{Action, Protocol};
use crate::egress::hls::players::{new_player_id, PlayerKey};
use crate::egress::hls::{playlist, Muxer, Output};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request may wait for a fresh muxer to be ready for players (its first segment and
/// a little more: see `Output::ready_for_players`).
const FIRST_MEDIA_WAIT: Duration = Duration::from_secs(6);
const PLAYLIST: &str = "application/vnd.apple.mpegurl";
const MP4: &str = "video/mp4";

fn problem(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message + "\n").into_response()
}

fn unavailable(message: String) -> Response {
    let mut response = problem(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn body(content_type: &'static str, data: impl IntoResponse) -> Response {
    // Playlists change with every part; segments and parts never change, but are private
    // when access control is on: no shared cache may keep them.
    let cache = if content_type == PLAYLIST { "no-cache" } else { "private, max-age=60" };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], data).into_response()
}

/// Blocking playlist reload (RFC 8216bis §6.2.5.2): answer once this segment (and part) exists.
#[derive(Deserialize)]
pub struct Reload {
    #[serde(rename = "_HLS_msn")]
    msn: Option<u64>,
    #[serde(rename = "_HLS_part")]
    part: Option<usize>,
    /// A signed URL's signature (see `auth::UrlSigner`).
    sig: Option<String>,
    /// The id the multivariant playlist gave this player.
    player: Option<String>,
}

/// `/hls/NAME/FILE`, where NAME may itself hold '/'.
#[utoipa::path(get, path = "/hls/{*rest}", operation_id = "hls_request", tag = "hls", params(("rest" = String, Path, description = "NAME/index.m3u8, and the init section, segments and parts it names")), responses((status = 200, description = "LL-HLS playlists and fMP4 media"), (status = 404, description = "No such thing"), (status = 503, description = "Not available now")))]
pub async fn request(
    State(app): State<AppState>,
    Path(rest): Path<String>,
    Query(reload): Query<Reload>,
    connect_info: ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let Some((path, file)) = rest.rsplit_once('/') else {
        return cors::allow(&app, &headers, problem(StatusCode::NOT_FOUND, format!("no file in {rest:?}; try /hls/NAME/index.m3u8")), false);
    };
    let player = PlayerKey::of(reload.player.as_deref(), access::client_ip(&connect_info), headers.get(header::USER_AGENT).map(|v| v.as_bytes()));
    let response = match authorize(&app, path, &reload, &connect_info, &headers).await {
        Ok(()) => serve(&app, path, file, &reload, player).await,
        Err(response) => response,
    };
    cors::allow(&app, &headers, response, false)
}

/// The preflight of a player on another origin that sends `Authorization` (hls.js with a
/// token).
#[utoipa::path(options, path = "/hls/{*rest}", operation_id = "hls_preflight", tag = "hls", params(("rest" = String, Path)), responses((status = 204, description = "CORS preflight")))]
pub async fn preflight(State(app): State<AppState>, headers: HeaderMap) -> Response {
    cors::allow(&app, &headers, StatusCode::NO_CONTENT.into_response(), false)
}

async fn authorize(app: &AppState, path: &str, reload: &Reload, connect_info: &ConnectInfo<SocketAddr>, headers: &HeaderMap) -> Result<(), Response> {
    if let Some(signature) = &reload.sig {
        return app
            .access
            .identify_signed_url(path, signature)
            .map(drop)
            .map_err(|refused| problem(StatusCode::FORBIDDEN, format!("not allowed: {refused}")));
    }
    access::authorize(app, access::client_ip(connect_info), headers, Protocol::Hls, Action::Read, Some(path)).await.map(drop)
}

/// A playlist; fetched with a signed URL (already verified), it lists its URIs with the same
/// signature, and with `player`'s id when given.
fn playlist_body(text: String, reload: &Reload, player: Option<&str>) -> Response {
    let query: Vec<String> = [reload.sig.as_ref().map(|signature| format!("sig={signature}")), player.map(|id| format!("player={id}"))].into_iter().flatten().collect();
    match query.is_empty() {
        true => body(PLAYLIST, text),
        false => body(PLAYLIST, playlist::with_query(&text, &query.join("&"))),
    }
}

async fn serve(app: &AppState, path: &str, file: &str, reload: &Reload, player: PlayerKey) -> Response {
    let Some(stream) = app.registry.get(path) else {
        return problem(StatusCode::NOT_FOUND, format!("no path {path:?}"));
    };
    let muxer = app.hls.muxer(&stream);
    if !muxer.wait_until(FIRST_MEDIA_WAIT, Output::ready_for_players).await {
        return unavailable(format!("path {path:?} has no video yet: {}", stream.state()));
    }
    if let Some(part) = parse_part(file) {
        return serve_part(app, &muxer, part).await;
    }
    match file {
        "stream.m3u8" => {
            app.hls.players.seen(path, player, Instant::now());
            media_playlist(app, &muxer, reload).await
        }
        "index.m3u8" => {
            let o = muxer.output();
            playlist_body(playlist::multivariant(&o.codec, o.width, o.height, o.bandwidth_bps()), reload, Some(&new_player_id()))
        }
        "init.mp4" => match muxer.output().init.clone() {
            Some(init) => body(MP4, init),
            None => unavailable("no initialization segment yet".into()),
        },
        _ => {
            let Some(sequence) = file.strip_prefix("seg").and_then(|f| f.strip_suffix(".m4s")).and_then(|n| n.parse::<u64>().ok()) else {
                return problem(StatusCode::NOT_FOUND, format!("no file {file:?}; try index.m3u8"));
            };
            match muxer.output().segments.iter().find(|s| s.sequence == sequence) {
                Some(segment) => body(MP4, segment.data.clone()),
                None => problem(StatusCode::NOT_FOUND, format!("segment {sequence} is not available (gone, or not made yet)")),
            }
        }
    }
}

/// `partN.I.m4s` → (N, I).
fn parse_part(file: &str) -> Option<(u64, usize)> {
    let (sequence, index) = file.strip_prefix("part")?.strip_suffix(".m4s")?.split_once('.')?;
    Some((sequence.parse().ok()?, index.parse().ok()?))
}

/// Waits for the output to be ready, within the bound on waiting requests and on time.
async fn wait(app: &AppState, muxer: &Muxer, ready: impl Fn(&Output) -> bool) -> Result<bool, Response> {
    if ready(&muxer.output()) {
        return Ok(true);
    }
    let Ok(_slot) = app.hls.waiting_slots.clone().try_acquire_owned() else {
        return Err(unavailable("too many requests are waiting for new media; retry".into()));
    };
    // Three target durations, as the specification allows a server to hold a request.
    Ok(muxer.wait_until(3 * muxer.target_duration, ready).await)
}

async fn media_playlist(app: &AppState, muxer: &Arc<Muxer>, reload: &Reload) -> Response {
    match (reload.msn, reload.part) {
        (None, Some(_)) => return problem(StatusCode::BAD_REQUEST, "_HLS_part needs _HLS_msn".into()),
        (Some(msn), part) => {
            let next = muxer.output().next_sequence();
            if msn > next + 2 {
                return problem(StatusCode::BAD_REQUEST, format!("_HLS_msn={msn} is beyond the live edge (next segment is {next})"));
            }
            // Part P of segment N exists, or N is finished, or a later segment began.
            let ready = move |o: &Output| o.has(msn, part) || o.has(msn, None) || o.next_sequence() > msn + 1;
            match wait(app, muxer, ready).await {
                Ok(true) => {}
                Ok(false) => return unavailable(format!("segment {msn} did not come in time")),
                Err(response) => return response,
            }
        }
        (None, None) => {}
    }
    let output = muxer.output();
    let segments = output.segment_infos();
    let building = output.building_info();
    let longest = segments.iter().map(|s| s.duration_secs.round() as u64).max().unwrap_or(0);
    let target = longest.max(muxer.target_duration.as_secs());
    let text = playlist::media(target, muxer.part_target.as_secs_f64(), &segments, building.as_ref().map(|(s, p)| (*s, p.as_slice())));
    playlist_body(text, reload, None)
}

async fn serve_part(app: &AppState, muxer: &Arc<Muxer>, (sequence, index): (u64, usize)) -> Response {
    let next = muxer.output().next_sequence();
    // The part the playlist hints at may be asked for before it exists: wait for it, or for its
    // segment to end without it (a keyframe came first); then answer 404 at once, so that the
    // player moves on to the next segment's first part instead of stalling.
    if sequence >= next && sequence <= next + 1 {
        let ready = move |o: &Output| o.has(sequence, Some(index)) || o.has(sequence, None) || o.next_sequence() > sequence + 1;
        if let Err(response) = wait(app, muxer, ready).await {
            return response;
        }
    }
    match muxer.output().part(sequence, index) {
        Some(data) => body(MP4, data),
        None => problem(StatusCode::NOT_FOUND, format!("part {index} of segment {sequence} is not available (gone, or not made yet)")),
    }
}
