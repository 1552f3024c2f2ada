//! The identity provider's signing keys, from its JWKS URL: fetched at start, kept, and fetched
//! again when a token names a key id not seen yet (the provider rotated its keys), at most once
//! per `MIN_REFETCH` so that tokens with made-up key ids cannot make Lookout hammer the provider.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;

use super::fetch_error::FetchError;

/// The least time between two fetches of the key set.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// Keys older than this are fetched again on the next use, rotation or not.
const MAX_AGE: Duration = Duration::from_secs(3600);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A key set is a few kilobytes; anything far larger is not one.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// A verification key and the algorithms it may be used with.
#[derive(Clone)]
pub struct VerificationKey {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
}

impl VerificationKey {
    /// The algorithms of the key's family, or only the one the key names.
    pub fn new(key: DecodingKey, named: Option<Algorithm>) -> Self {
        let algorithms = match named {
            Some(algorithm) if key.family().algorithms().contains(&algorithm) => vec![algorithm],
            // A key that names an algorithm of another family can verify nothing.
            Some(_) => Vec::new(),
            None => key.family().algorithms().to_vec(),
        };
        Self { key, algorithms }
    }
}

/// Why no key could be found for a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyLookupError {
    #[error("the identity provider's keys could not be fetched from {url}: {reason}")]
    Unavailable { url: String, reason: FetchError },
    #[error("the identity provider's keys have not been fetched from {0} yet")]
    NotFetched(String),
    #[error("no key with id {0:?} in the identity provider's key set")]
    UnknownKeyId(String),
    #[error("the token names no key id and the key set has {0} keys")]
    NoKeyId(usize),
}

struct Fetched {
    keys: HashMap<String, VerificationKey>,
    /// Keys without an id, usable only by tokens without one.
    anonymous: Vec<VerificationKey>,
    at: Instant,
}

pub struct Jwks {
    url: Url,
    client: reqwest::Client,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    fetched: Option<Fetched>,
    last_attempt: Option<Instant>,
    last_error: Option<FetchError>,
}

impl Jwks {
    pub fn new(url: Url, client: reqwest::Client) -> Self {
        Self { url, client, state: Mutex::default() }
    }

    /// Fetches the key set now (at start), logging instead of failing: the provider may be up
    /// later, and tokens are refused meanwhile.
    pub async fn prefetch(&self) {
        let mut state = self.state.lock().await;
        if let Err(reason) = self.refresh(&mut state).await {
            tracing::warn!(url = %self.url, "cannot fetch the JWKS at start: {reason}; tokens are refused until it can be fetched");
        }
    }

    /// The key for a token's `kid`, fetching the set again when the id is new to it.
    pub async fn key(&self, kid: Option<&str>) -> Result<VerificationKey, KeyLookupError> {
        let mut state = self.state.lock().await;
        let stale = state.fetched.as_ref().is_none_or(|f| f.at.elapsed() > MAX_AGE);
        let known = state.fetched.as_ref().and_then(|f| find(f, kid).ok());
        if let (Some(key), false) = (&known, stale) {
            return Ok(key.clone());
        }
        let may_fetch = state.last_attempt.is_none_or(|at| at.elapsed() >= MIN_REFETCH);
        if may_fetch {
            if let Err(reason) = self.refresh(&mut state).await {
                tracing::warn!(url = %self.url, "cannot fetch the JWKS: {reason}");
            }
        }
        match &state.fetched {
            Some(fetched) => find(fetched, kid),
            None => Err(match state.last_error.clone() {
                Some(reason) => KeyLookupError::Unavailable { url: self.url.to_string(), reason },
                None => KeyLookupError::NotFetched(self.url.to_string()),
            }),
        }
    }

    async fn refresh(&self, state: &mut State) -> Result<(), FetchError> {
        state.last_attempt = Some(Instant::now());
        let result = self.fetch().await;
        match result {
            Ok(fetched) => {
                tracing::info!(url = %self.url, keys = fetched.keys.len() + fetched.anonymous.len(), "fetched the identity provider's keys");
                state.fetched = Some(fetched);
                state.last_error = None;
                Ok(())
            }
            Err(reason) => {
                state.last_error = Some(reason.clone());
                Err(reason)
            }
        }
    }

    async fn fetch(&self) -> Result<Fetched, FetchError> {
        let failed = |error| FetchError::of_request(error, FETCH_TIMEOUT);
        let response = self.client.get(self.url.clone()).timeout(FETCH_TIMEOUT).send().await.map_err(failed)?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status()));
        }
        if response.content_length().is_some_and(|length| length > MAX_JWKS_BYTES as u64) {
            return Err(FetchError::TooLarge(MAX_JWKS_BYTES));
        }
        let body = response.bytes().await.map_err(failed)?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge(MAX_JWKS_BYTES));
        }
        parse(&body)
    }
}

/// Reads a JWKS document. Keys that cannot be used (an unknown type, bad parameters) are
/// skipped with a warning rather than failing the whole set.
fn parse(body: &[u8]) -> Result<Fetched, FetchError> {
    let set: JwkSet = serde_json::from_slice(body).map_err(|e| FetchError::NotJwks(std::sync::Arc::new(e)))?;
    let mut keys = HashMap::new();
    let mut anonymous = Vec::new();
    for jwk in &set.keys {
        let key = match DecodingKey::from_jwk(jwk) {
            Ok(key) => key,
            Err(error) => {
                tracing::warn!(kid = ?jwk.common.key_id, "skipping a key of the JWKS: {error}");
                continue;
            }
        };
        let named = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
        let key = VerificationKey::new(key, named);
        match &jwk.common.key_id {
            Some(kid) => {
                keys.insert(kid.clone(), key);
            }
            None => anonymous.push(key),
        }
    }
    Ok(Fetched { keys, anonymous, at: Instant::now() })
}

fn find(fetched: &Fetched, kid: Option<&str>) -> Result<VerificationKey, KeyLookupError> {
    match kid {
        Some(kid) => fetched.keys.get(kid).cloned().ok_or_else(|| KeyLookupError::UnknownKeyId(kid.to_owned())),
        None => match (fetched.anonymous.as_slice(), fetched.keys.len()) {
            ([only], 0) => Ok(only.clone()),
            ([], 1) => Ok(fetched.keys.values().next().cloned().expect("one key")),
            _ => Err(KeyLookupError::NoKeyId(fetched.anonymous.len() + fetched.keys.len())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SET: &str = r#"{"keys":[
        {"kty":"oct","kid":"hmac-1","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
        {"kty":"oct","kid":"bad-alg","alg":"RS256","k":"c2VjcmV0"}
    ]}"#;

    #[test]
    fn keys_are_found_by_id_and_keep_their_algorithm() {
        let fetched = parse(SET.as_bytes()).expect("the set parses");
        let key = find(&fetched, Some("hmac-1")).expect("key");
        assert_eq!(key.algorithms, vec![Algorithm::HS256]);
        let confused = find(&fetched, Some("bad-alg")).expect("key");
        assert!(confused.algorithms.is_empty(), "an HMAC key naming RS256 verifies nothing");
        assert!(matches!(find(&fetched, Some("nope")), Err(KeyLookupError::UnknownKeyId(_))));
        assert!(matches!(find(&fetched, None), Err(KeyLookupError::NoKeyId(_))));
        assert!(parse(b"not json").is_err());
    }
}
