//! What viewers' pages report of their own playback (`qoe` over /ws: time to the first frame,
//! freezes, frames dropped, glass-to-glass latency, jitter-buffer delay), added up by path for
//! the metrics. A page's figures are its session's totals so far; each report adds what grew
//! since the session's previous one, and the first frame counts once per session.

use crate::histogram::Histogram;
use lookout_signaling::QoeReport;

/// Upper bounds of the latency histograms' buckets, in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0];
/// Upper bounds of the first-frame histogram's buckets, in seconds.
pub const FIRST_FRAME_BUCKETS: &[f64] = &[0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0];

#[derive(Debug, Clone, PartialEq)]
pub struct PathExperience {
    pub first_frame: Histogram,
    pub glass_to_glass: Histogram,
    pub jitter_buffer: Histogram,
    pub freezes: u64,
    pub freeze_seconds: f64,
    pub frames_dropped: u64,
    pub reports: u64,
}

impl Default for PathExperience {
    fn default() -> Self {
        Self {
            first_frame: Histogram::new(FIRST_FRAME_BUCKETS),
            glass_to_glass: Histogram::new(LATENCY_BUCKETS),
            jitter_buffer: Histogram::new(LATENCY_BUCKETS),
            freezes: 0,
            freeze_seconds: 0.0,
            frames_dropped: 0,
            reports: 0,
        }
    }
}

impl PathExperience {
    /// A session's `report`, after its `previous` one.
    pub fn add(&mut self, report: &QoeReport, previous: Option<&QoeReport>) {
        self.reports += 1;
        if let (Some(ms), None) = (report.first_frame_ms, previous.and_then(|previous| previous.first_frame_ms)) {
            self.first_frame.observe(ms / 1000.0);
        }
        if let Some(ms) = report.glass_to_glass_ms {
            self.glass_to_glass.observe(ms / 1000.0);
        }
        if let Some(ms) = report.jitter_buffer_ms {
            self.jitter_buffer.observe(ms / 1000.0);
        }
        let before = previous.cloned().unwrap_or_default();
        self.freezes = self.freezes.saturating_add(report.freezes.saturating_sub(before.freezes));
        self.freeze_seconds += (report.freeze_seconds - before.freeze_seconds).max(0.0);
        self.frames_dropped = self.frames_dropped.saturating_add(report.frames_dropped.saturating_sub(before.frames_dropped));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_add_what_grew_and_the_first_frame_once() {
        let mut path = PathExperience::default();
        let first = QoeReport { first_frame_ms: Some(250.0), freezes: 1, freeze_seconds: 0.4, frames_dropped: 2, glass_to_glass_ms: Some(80.0), jitter_buffer_ms: Some(20.0) };
        path.add(&first, None);
        let second = QoeReport { freezes: 3, freeze_seconds: 1.0, frames_dropped: 2, glass_to_glass_ms: Some(90.0), ..first.clone() };
        path.add(&second, Some(&first));
        assert_eq!((path.first_frame.count(), path.glass_to_glass.count(), path.reports), (1, 2, 2));
        assert_eq!((path.freezes, path.frames_dropped), (3, 2));
        assert!((path.freeze_seconds - 1.0).abs() < 1e-9);
        // A page that counts from zero again (it reloaded) adds nothing until it passes the old.
        path.add(&QoeReport::default(), Some(&second));
        assert_eq!(path.freezes, 3);
    }
}
