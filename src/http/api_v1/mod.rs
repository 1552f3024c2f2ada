//! The versioned REST API, `/api/v1`: paths (list, read, add, replace, patch, delete, many at
//! once, and a snapshot of each), viewer sessions, and the server's own facts. Its OpenAPI 3.1 document is made
//! from the handlers and types themselves (`openapi`), so it cannot drift from them.

mod access;
mod body;
mod error;
pub mod openapi;
mod paths;
mod server;
mod sessions;
mod snapshot;

pub use server::ServerFacts;

use super::AppState;
use axum::extract::DefaultBodyLimit;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(paths::list, paths::add))
        .routes(routes!(paths::add_batch))
        .routes(routes!(paths::get, paths::replace, paths::patch, paths::delete))
        .routes(routes!(snapshot::snapshot))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::get, sessions::end))
        .routes(routes!(server::info))
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
}
