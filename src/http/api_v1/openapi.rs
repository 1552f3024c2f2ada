//! The OpenAPI document of every route the router has, served at `/api/v1/openapi.json`.

use axum::extract::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use utoipa::openapi::{InfoBuilder, OpenApi};

/// The document, written once when the router is built.
#[derive(Clone)]
pub struct Document(pub Arc<String>);

impl Document {
    /// Completes what the routes gave (`api`) and writes it out. axum's catch-all segments
    /// (`{*rest}`) become plain OpenAPI parameters (`{rest}`).
    pub fn new(mut api: OpenApi) -> Self {
        api.info = InfoBuilder::new()
            .title("Lookout")
            .version(env!("CARGO_PKG_VERSION"))
            .description(Some("A camera streaming gateway: RTSP cameras to WebRTC and LL-HLS viewers. Errors of /api/v1 are JSON {code, message, field}."))
            .build();
        let paths = std::mem::take(&mut api.paths.paths);
        api.paths.paths = paths.into_iter().map(|(path, item)| (path.replace("{*", "{"), item)).collect();
        Self(Arc::new(api.to_pretty_json().unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))))
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi_document", tag = "server", responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json", body = Object)))]
pub async fn document(Extension(document): Extension<Document>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document.0.as_str().to_owned()).into_response()
}
