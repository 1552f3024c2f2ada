//! The API's errors: JSON `{code, message, field}`, the field named when one is at fault, as
//! the configuration's errors name theirs.

use crate::config::ConfigError;
use crate::paths::PathError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// What went wrong, for programs: `bad_json`, `body_too_large`, `invalid_field`,
    /// `path_exists`, `unknown_path`, `path_from_file`, `unknown_session`, `not_kept`,
    /// `not_live`, `busy`, `snapshot_failed`, `unauthorized`, `forbidden`, `rate_limited`,
    /// `bad_credential`.
    code: &'static str,
    /// What went wrong, for people.
    message: String,
    /// The field at fault, as written in the body (`source`, `layers[0].source`,
    /// `paths[2].name`), when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        let field = field.into();
        self.field = (!field.is_empty()).then_some(field);
        self
    }

    pub fn unknown_path(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "unknown_path", format!("no path {name:?}"))
    }
}

impl From<PathError> for ApiError {
    fn from(error: PathError) -> Self {
        let message = error.to_string();
        match error {
            PathError::Invalid(ConfigError::Invalid { field, problem }) => Self::new(StatusCode::BAD_REQUEST, "invalid_field", problem).with_field(field),
            PathError::Invalid(_) => Self::new(StatusCode::BAD_REQUEST, "bad_json", message),
            PathError::Exists { field, .. } => Self::new(StatusCode::CONFLICT, "path_exists", message).with_field(field),
            PathError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "unknown_path", message),
            PathError::FromFile(_) => Self::new(StatusCode::CONFLICT, "path_from_file", message),
            PathError::Store(ref store) => {
                tracing::error!("a change through the API was refused: {store}");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "not_kept", message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, [(header::CACHE_CONTROL, "no-store")], Json(self)).into_response()
    }
}
