//! Whether a viewer is still there, judged by Lookout rather than by the ICE agent.
//!
//! Browsers move to a better candidate pair once it checks out (Chromium on one host: from the
//! loopback pair to the interface's), and then send their consent checks and media on the new
//! pair only; an agent watching the first pair would declare the connection gone while media
//! flows both ways. So Lookout's ICE never times a connection out by itself (`full_ice.rs`
//! turns rtc-ice's timers off) and a session ends when the viewer has sent no RTCP for
//! `VIEWER_SILENCE_TIMEOUT`: browsers and WebRTC stacks send receiver reports every second or
//! so, with or without media arriving, on whichever pair they use.

use crate::egress::webrtc::rtcp::observer::RtcpObserver;
use rtc::interceptor::TaggedPacket;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// RFC 7675's consent timeout: a viewer silent this long is gone.
pub const VIEWER_SILENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// When the viewer was last heard from, as milliseconds after `since`.
pub struct ViewerActivity {
    since: Instant,
    last_heard_ms: AtomicU64,
}

impl ViewerActivity {
    /// A viewer counts as heard at its session's start, so that it has the whole timeout to
    /// connect.
    pub fn new(now: Instant) -> Arc<Self> {
        Arc::new(Self { since: now, last_heard_ms: AtomicU64::new(0) })
    }

    pub fn heard(&self, now: Instant) {
        let ms = now.saturating_duration_since(self.since).as_millis() as u64;
        self.last_heard_ms.fetch_max(ms, Ordering::Relaxed);
    }

    pub fn silent_for(&self, now: Instant) -> Duration {
        let last_heard = self.since + Duration::from_millis(self.last_heard_ms.load(Ordering::Relaxed));
        now.saturating_duration_since(last_heard)
    }
}

/// Notes every RTCP packet from the viewer as an `RtcpTap` shows them.
pub struct ActivityWatcher(pub Arc<ViewerActivity>);

impl RtcpObserver for ActivityWatcher {
    fn observe(&mut self, _packet: &dyn rtc::rtcp::packet::Packet, now: Instant, _replies: &mut VecDeque<TaggedPacket>) {
        self.0.heard(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_from_the_last_packet_heard() {
        let start = Instant::now();
        let activity = ViewerActivity::new(start);
        assert_eq!(activity.silent_for(start + Duration::from_secs(3)), Duration::from_secs(3), "from the start");
        activity.heard(start + Duration::from_secs(10));
        activity.heard(start + Duration::from_secs(4)); // a late-noted packet does not go back
        assert_eq!(activity.silent_for(start + Duration::from_secs(12)), Duration::from_secs(2));
    }
}
