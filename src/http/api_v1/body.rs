//! Reading the API's JSON bodies, so that an error names the field at fault the way the body
//! writes it.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Bodies are small: a batch of a few hundred cameras fits many times over. The API's routes
/// are limited to this (`DefaultBodyLimit`).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A request's body, refused in the API's form when it is too large or cannot be read.
pub struct ApiBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state).await.map(ApiBody).map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body is over {MAX_BODY_BYTES} bytes")),
            status => ApiError::new(status, "bad_body", rejection.body_text()),
        })
    }
}

/// Reads `bytes` as JSON.
pub fn json_value(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("the body is not JSON: {error}")))
}

/// Reads `value` as a `T`; an error names the field at fault (`config.layers[0].source`).
pub fn typed<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        // "." is the body itself (no field to name).
        let at = error.path().to_string().trim_start_matches('.').to_owned();
        let inner = error.into_inner().to_string();
        // A missing field is reported at the object that lacks it; name the field itself.
        let field = match missing_field_name(&inner) {
            Some(missing) if at.is_empty() => missing.to_owned(),
            Some(missing) => format!("{at}.{missing}"),
            None => at,
        };
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_field", inner).with_field(field)
    })
}

/// serde's words for a missing field: "missing field `source`".
fn missing_field_name(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PathSpec;
    use serde_json::json;

    fn field_of(value: Value) -> Option<String> {
        let error = typed::<PathSpec>(value).expect_err("invalid");
        serde_json::to_value(&error).expect("serializes")["field"].as_str().map(str::to_owned)
    }

    #[test]
    fn errors_name_the_field_as_the_body_writes_it() {
        assert_eq!(field_of(json!({"source": "testpattern", "transprot": "tcp"})).as_deref(), Some("transprot"));
        assert_eq!(field_of(json!({"source": 5})).as_deref(), Some("source"));
        assert_eq!(field_of(json!({"source": "rtsp://x/y", "layers": [{"source": "rtsp://x/z", "colour": 1}]})).as_deref(), Some("layers[0].colour"));
        assert_eq!(field_of(json!({"source": "testpattern", "test_pattern": {"fps": "fast"}})).as_deref(), Some("test_pattern.fps"));
        assert_eq!(field_of(json!({"transport": "udp"})).as_deref(), Some("source"), "a missing field is named");
        assert_eq!(field_of(json!({"source": "rtsp://x/y", "layers": [{}]})).as_deref(), Some("layers[0].source"));
    }
}
