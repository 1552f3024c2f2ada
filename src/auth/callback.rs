//! The user's backend decides (as Flussonic's `on_play` does): Lookout POSTs what the caller
//! asks for as JSON to a configured URL, and a 2xx answer allows it. Answers are remembered
//! briefly; a backend that is down, slow or answers nonsense denies (fails closed).

use super::fetch_error::FetchError;
use super::keys;
use super::permission::Action;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use url::Url;

const REMEMBERED_MAX: usize = 16_384;

/// What the backend is asked, as the JSON body of the POST.
#[derive(Debug, Serialize)]
pub struct CallbackQuestion<'a> {
    pub action: Action,
    pub path: Option<&'a str>,
    /// `ws`, `whep`, `hls` or `http` (the API and metrics).
    pub protocol: &'a str,
    pub ip: IpAddr,
    pub user: Option<&'a str>,
    /// The password that came with `user` (HTTP Basic): the backend is the one to check it.
    pub password: Option<&'a str>,
    pub token: Option<&'a str>,
    /// The viewer session the caller would start (/ws and WHEP); none for HLS and the API.
    pub session: Option<&'a str>,
}

impl std::fmt::Debug for CallbackAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallbackAnswer::Allowed => f.write_str("allowed"),
            CallbackAnswer::Denied(status) => write!(f, "denied ({status})"),
            CallbackAnswer::Unavailable(reason) => write!(f, "unavailable ({reason})"),
        }
    }
}

#[derive(Clone)]
pub enum CallbackAnswer {
    Allowed,
    /// The backend answered with this non-2xx status.
    Denied(u16),
    /// The backend could not be asked (down, slow, failing): denied, with the reason.
    Unavailable(FetchError),
}

pub struct Callback {
    url: Url,
    client: reqwest::Client,
    timeout: Duration,
    remember: Duration,
    remembered: Mutex<HashMap<[u8; 32], (bool, Instant)>>,
    cache_key: ring::hmac::Key,
    /// When the backend last failed in the log, so that a flood is one line, not thousands.
    last_failure_logged: Mutex<Option<Instant>>,
}

impl Callback {
    pub fn new(url: Url, client: reqwest::Client, timeout: Duration, remember: Duration) -> Self {
        let cache_key = keys::random_key();
        Self { url, client, timeout, remember, remembered: Mutex::default(), cache_key, last_failure_logged: Mutex::default() }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub async fn ask(&self, question: &CallbackQuestion<'_>) -> CallbackAnswer {
        let key = self.key_of(question);
        let now = Instant::now();
        if let Some((allowed, _)) = self.remembered.lock().get(&key).filter(|(_, at)| now.duration_since(*at) < self.remember) {
            return if *allowed { CallbackAnswer::Allowed } else { CallbackAnswer::Denied(403) };
        }
        let answer = self.post(question).await;
        let decided = match &answer {
            CallbackAnswer::Allowed => Some(true),
            CallbackAnswer::Denied(_) => Some(false),
            CallbackAnswer::Unavailable(reason) => {
                self.log_failure(reason);
                None
            }
        };
        // A question about a new session is never asked again: remembering it only crowds out
        // the answers that are reused.
        if let Some(allowed) = decided.filter(|_| question.session.is_none()) {
            let mut remembered = self.remembered.lock();
            if remembered.len() >= REMEMBERED_MAX {
                let remember = self.remember;
                remembered.retain(|_, (_, at)| now.duration_since(*at) < remember);
                if remembered.len() >= REMEMBERED_MAX {
                    remembered.clear();
                }
            }
            remembered.insert(key, (allowed, now));
        }
        answer
    }

    async fn post(&self, question: &CallbackQuestion<'_>) -> CallbackAnswer {
        let sent = self.client.post(self.url.clone()).json(question).timeout(self.timeout).send().await;
        match sent {
            Ok(response) if response.status().is_success() => CallbackAnswer::Allowed,
            Ok(response) if response.status().is_server_error() => CallbackAnswer::Unavailable(FetchError::Status(response.status())),
            Ok(response) => CallbackAnswer::Denied(response.status().as_u16()),
            Err(error) => CallbackAnswer::Unavailable(FetchError::of_request(error, self.timeout)),
        }
    }

    fn log_failure(&self, reason: &FetchError) {
        let mut last = self.last_failure_logged.lock();
        if last.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::error!(url = %self.url, "the auth callback failed ({reason}): denying, as it fails closed (logged at most every 10 s)");
        }
    }

    /// Everything the answer may depend on. Questions about a new session are not remembered
    /// (the backend may count sessions); requests without one, such as a player's HLS segments,
    /// are.
    fn key_of(&self, q: &CallbackQuestion<'_>) -> [u8; 32] {
        let ip = q.ip.to_string();
        let parts = [Some(q.action.as_str()), q.path, Some(q.protocol), Some(ip.as_str()), q.user, q.password, q.token];
        keys::digest(&self.cache_key, parts.map(|part| part.map(str::as_bytes)))
    }
}
