//! Every live viewer session by id, so WHEP can end one and the API can list them; and what the
//! sessions of each path add up to, for the metrics, until the path goes away.

use crate::egress::webrtc::feed::send_delay::SendDelays;
use crate::egress::webrtc::session::viewer_session::ViewerSession;
use crate::egress::webrtc::rtcp::viewer_activity::VIEWER_SILENCE_TIMEOUT;
use crate::egress::webrtc::session::experience::PathExperience;
use crate::egress::webrtc::session::viewer_totals::ViewerTotals;
use crate::stream::Stream;
use lookout_signaling::QoeReport;
use std::collections::HashMap;
use std::sync::Arc;
use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// How often a session's viewer is checked for silence.
const ACTIVITY_CHECK_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Default, Clone)]
pub struct Sessions {
    map: Arc<Mutex<HashMap<String, Arc<ViewerSession>>>>,
    /// What the sessions that ended were sent, by path.
    ended: Arc<Mutex<HashMap<String, ViewerTotals>>>,
    /// What viewers' pages reported of their playback, by path.
    experience: Arc<Mutex<HashMap<String, PathExperience>>>,
    /// How long the packets of each path's layers waited in Lookout.
    send_delays: SendDelays,
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
                            tracing::info!(session = %id, path = %session.label, "the viewer sent nothing for {} s: ending its session", silent_for.as_secs());
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
        // Counted in `ended` before it leaves the map (both locked, map first, as in
        // `totals_by_path`), so that a scrape meanwhile sees it in one or the other.
        let mut map = self.map.lock();
        let session = map.remove(id);
        if let Some(session) = &session {
            session.add_figures(&mut self.ended.lock());
        }
        session
    }

    /// A viewer's page reported its playback so far.
    pub fn report_experience(&self, session: &ViewerSession, report: QoeReport) {
        // A page may report once more after its session ended (its path removed, say).
        if !self.map.lock().contains_key(&session.id) {
            return;
        }
        // A wall's page reports for all its tiles together: no one path's experience.
        let Some(path) = session.single_path() else { return };
        let previous = session.replace_experience(report.clone());
        self.experience.lock().entry(path).or_default().add(&report, previous.as_ref());
    }

    /// What viewers' pages reported, by path.
    pub fn experience_by_path(&self) -> HashMap<String, PathExperience> {
        self.experience.lock().clone()
    }

    /// What every session of each path was sent, ended ones included.
    pub fn totals_by_path(&self) -> HashMap<String, ViewerTotals> {
        let map = self.map.lock();
        let mut totals = self.ended.lock().clone();
        for session in map.values() {
            session.add_figures(&mut totals);
        }
        totals
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

    /// Ends every session of `path` (which went away or starts afresh), and says how many
    /// there were; the tiles of walls that show it go blank.
    pub fn end_path(&self, path: &str) -> usize {
        let showing: Vec<Arc<ViewerSession>> =
            self.map.lock().values().filter(|session| session.paths().iter().any(|shown| shown.as_deref() == Some(path))).cloned().collect();
        let (walls, single): (Vec<_>, Vec<_>) = showing.into_iter().partition(|session| session.is_wall());
        walls.iter().for_each(|wall| wall.blank(path));
        let ended: Vec<Arc<ViewerSession>> = single.iter().filter_map(|session| self.remove(&session.id)).collect();
        for session in &ended {
            session.close();
        }
        ended.len()
    }

    /// Forgets what the sessions of `path`, deleted, added up to: its metrics go with it.
    pub fn forget_path(&self, path: &Arc<Stream>) {
        self.map.lock().values().for_each(|session| session.forget_path(path.name()));
        self.ended.lock().remove(path.name());
        self.experience.lock().remove(path.name());
        for layer in path.layers() {
            self.send_delays.forget(layer.name());
        }
    }

    pub fn send_delays(&self) -> &SendDelays {
        &self.send_delays
    }
}
