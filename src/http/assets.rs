//! The page, embedded in the binary so that `cargo run` needs nothing beside it.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("../../web/index.html");

/// (name, content type, content) of every file under /assets/.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript", include_str!("../../web/app.js")),
    ("player.js", "text/javascript", include_str!("../../web/player.js")),
    ("barcode.js", "text/javascript", include_str!("../../web/barcode.js")),
    ("style.css", "text/css", include_str!("../../web/style.css")),
];

pub async fn index() -> Html<&'static str> {
    Html(INDEX)
}

pub async fn file(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, body)) => ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "no-cache")], *body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
