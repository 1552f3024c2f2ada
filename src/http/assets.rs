//! The page, embedded in the binary so that `cargo run` needs nothing beside it, and the
//! `<lookout-player>` element other sites load from here (so its files answer other origins, as
//! LL-HLS does).

use super::{cors, AppState};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("../../web/index.html");

/// (name, content type, content) of every file under /assets/.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript", include_str!("../../web/app.js")),
    ("lookout-player.js", "text/javascript", include_str!("../../web/lookout-player.js")),
    ("player.js", "text/javascript", include_str!("../../web/player.js")),
    ("autoplay.js", "text/javascript", include_str!("../../web/autoplay.js")),
    ("barcode.js", "text/javascript", include_str!("../../web/barcode.js")),
    ("llhls.js", "text/javascript", include_str!("../../web/llhls.js")),
    ("lipsync.js", "text/javascript", include_str!("../../web/lipsync.js")),
    ("wall.js", "text/javascript", include_str!("../../web/wall.js")),
    ("style.css", "text/css", include_str!("../../web/style.css")),
];

/// hls.js, installed from npm by build.rs (see web/package.json); absent from a build made
/// without npm.
#[cfg(has_hlsjs)]
const HLSJS: Option<&str> = Some(include_str!(env!("LOOKOUT_HLSJS")));
#[cfg(not(has_hlsjs))]
const HLSJS: Option<&str> = None;

#[utoipa::path(get, path = "/", operation_id = "page_index", tag = "page", responses((status = 200, description = "The page that plays a path (`/?path=NAME`)", content_type = "text/html", body = String)))]
pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

#[utoipa::path(get, path = "/assets/{file}", operation_id = "page_file", tag = "page", params(("file" = String, Path)), responses((status = 200, description = "One of the page's scripts or styles"), (status = 404, description = "No such thing")))]
pub async fn file(State(app): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    cors::allow(&app, &headers, asset(&name), false)
}

fn asset(name: &str) -> Response {
    if name == "hls.mjs" {
        return match HLSJS {
            // Versioned by the binary that serves it.
            Some(body) => ([(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "max-age=3600")], body).into_response(),
            None => (StatusCode::NOT_FOUND, "this Lookout was built without hls.js (npm was not available to the build)").into_response(),
        };
    }
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
