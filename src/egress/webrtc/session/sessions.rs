//! Every live viewer session by id, so WHEP can end one and the API can list them.

use crate::egress::webrtc::session::viewer_session::ViewerSession;
use crate::egress::webrtc::rtcp::viewer_activity::VIEWER_SILENCE_TIMEOUT;
use std::collections::HashMap;
use std::sync::Arc;
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// How often a session's viewer is checked for silence.
const ACTIVITY_CHECK_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Default, Clone)]
pub struct Sessions {
    map: Arc<Mutex<HashMap<String, Arc<ViewerSession>>>>,
}

impl Sessions {
    /// Registers a session and forgets it by itself when its connection fails or closes, or
    /// when the viewer has gone silent.
    pub fn insert(&self, session: Arc<ViewerSession>) {
        self.map.lock().insert(session.id.clone(), session.clone());
        let sessions = self.clone();
        let mut state = session.state();
        let id = session.id.clone();
        let watched = Arc::downgrade(&session);
        drop(session);
        tokio::spawn(async move {
            let mut checks = tokio::time::interval(ACTIVITY_CHECK_INTERVAL);
            while !state.borrow_and_update().is_terminal() {
                tokio::select! {
                    changed = state.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    _ = checks.tick() => {
                        let Some(session) = watched.upgrade() else { break };
                        let silent_for = session.silent_for(Instant::now());
                        if silent_for > VIEWER_SILENCE_TIMEOUT {
                            tracing::info!(session = %id, path = %session.path, "the viewer sent nothing for {} s: ending its session", silent_for.as_secs());
                            break;
                        }
                    }
                }
            }
            if let Some(session) = sessions.remove(&id) {
                session.close();
            }
        });
    }

    pub fn remove(&self, id: &str) -> Option<Arc<ViewerSession>> {
        self.map.lock().remove(id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<ViewerSession>> {
        self.map.lock().get(id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<ViewerSession>> {
        self.map.lock().values().cloned().collect()
    }

    /// Ends one session; `false` when there is none of that id.
    pub fn end(&self, id: &str) -> bool {
        let session = self.remove(id);
        if let Some(session) = &session {
            session.close();
        }
        session.is_some()
    }

    /// Ends every session of `path` (which went away), and says how many there were.
    pub fn end_path(&self, path: &str) -> usize {
        let ended: Vec<Arc<ViewerSession>> = {
            let mut map = self.map.lock();
            let ids: Vec<String> = map.values().filter(|session| session.path == path).map(|session| session.id.clone()).collect();
            ids.iter().filter_map(|id| map.remove(id)).collect()
        };
        for session in &ended {
            session.close();
        }
        ended.len()
    }
}
