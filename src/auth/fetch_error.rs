//! Why a request to the identity provider's key set or to the user's backend got no usable
//! answer. The URL stays out of the words: its query may hold a secret.

use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("{}", describe(.0))]
    Request(Arc<reqwest::Error>),
    #[error("it answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the answer is not a JWKS document: {0}")]
    NotJwks(Arc<serde_json::Error>),
}

impl FetchError {
    /// A failed request, which had `timeout` to answer.
    pub fn of_request(error: reqwest::Error, timeout: Duration) -> Self {
        if error.is_timeout() {
            Self::Timeout(timeout)
        } else {
            Self::Request(Arc::new(error.without_url()))
        }
    }
}

fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "the answer was cut short or unreadable"
    } else {
        "the request failed"
    };
    match std::error::Error::source(error) {
        Some(source) => format!("{kind}: {source}"),
        None => kind.to_owned(),
    }
}
