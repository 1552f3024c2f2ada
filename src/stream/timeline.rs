//! Keeps the timestamps readers see continuous when a source reconnects and its clock starts
//! again: each source session is shifted to follow the last frame by the wall-clock gap, so a
//! viewer's decoder and jitter buffer see a pause, not a jump back or far ahead.

use std::time::Instant;

pub(super) struct Timeline {
    clock_rate: u32,
    /// The last timestamp placed, and when.
    last: Option<(u64, Instant)>,
    /// Added to this source session's timestamps; chosen at its first frame.
    session_offset: Option<i128>,
}

impl Timeline {
    pub fn new(clock_rate: u32) -> Self {
        Self { clock_rate, last: None, session_offset: None }
    }

    /// The source started a new session: its next timestamp starts a new offset.
    pub fn begin_session(&mut self) {
        self.session_offset = None;
    }

    /// A clock of another rate (a camera that came back with another audio codec): the
    /// session offset is chosen again, in the new rate.
    pub fn set_clock_rate(&mut self, clock_rate: u32) {
        if clock_rate != self.clock_rate {
            if let Some((last, at)) = self.last {
                self.last = Some((last * u64::from(clock_rate) / u64::from(self.clock_rate.max(1)), at));
            }
            self.clock_rate = clock_rate;
            self.session_offset = None;
        }
    }

    /// The source's timestamp on the readers' continuous timeline.
    pub fn place(&mut self, source_timestamp: u64, now: Instant) -> u64 {
        let clock_rate = self.clock_rate;
        let offset = *self.session_offset.get_or_insert_with(|| match self.last {
            Some((last, at)) => {
                let gap = (now.saturating_duration_since(at).as_secs_f64() * f64::from(clock_rate)) as i128;
                i128::from(last) + gap.max(1) - i128::from(source_timestamp)
            }
            None => 0,
        });
        let timestamp = (i128::from(source_timestamp) + offset).max(0) as u64;
        self.last = Some((timestamp, now));
        timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_new_session_follows_the_last_frame_by_the_time_between_them() {
        let start = Instant::now();
        let mut timeline = Timeline::new(8000);
        assert_eq!(timeline.place(1_000, start), 1_000, "the first session keeps its own clock");
        assert_eq!(timeline.place(1_160, start + Duration::from_millis(20)), 1_160);
        timeline.begin_session();
        // The camera came back 2 s later with its clock at zero.
        assert_eq!(timeline.place(0, start + Duration::from_millis(2020)), 1_160 + 16_000);
        assert_eq!(timeline.place(160, start + Duration::from_millis(2040)), 1_160 + 16_160, "and keeps its own spacing");
    }

    #[test]
    fn a_new_clock_rate_is_followed_in_that_rate() {
        let start = Instant::now();
        let mut timeline = Timeline::new(8000);
        timeline.place(8_000, start);
        timeline.set_clock_rate(48_000);
        assert_eq!(timeline.place(0, start + Duration::from_secs(1)), 48_000 + 48_000);
    }
}
