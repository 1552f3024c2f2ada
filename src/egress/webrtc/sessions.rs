//! Every live viewer session by id, so WHEP can end one and the API can list them.

use super::session::{is_terminal, ViewerSession};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
pub struct Sessions {
    map: Arc<Mutex<HashMap<String, Arc<ViewerSession>>>>,
}

impl Sessions {
    /// Registers a session and forgets it by itself when its connection fails or closes.
    pub fn insert(&self, session: Arc<ViewerSession>) {
        self.lock().insert(session.id.clone(), session.clone());
        let sessions = self.clone();
        let mut state = session.state();
        let id = session.id.clone();
        drop(session);
        tokio::spawn(async move {
            let _ = state.wait_for(|s| is_terminal(*s)).await;
            if let Some(session) = sessions.remove(&id) {
                session.close().await;
            }
        });
    }

    pub fn remove(&self, id: &str) -> Option<Arc<ViewerSession>> {
        self.lock().remove(id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<ViewerSession>> {
        self.lock().get(id).cloned()
    }

    pub fn list(&self) -> Vec<Arc<ViewerSession>> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ViewerSession>>> {
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
