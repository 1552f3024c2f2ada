//! When a path on demand opens and closes its camera, decided from the number of readers and
//! the time, without I/O: the first reader opens it at once; it closes `close_after` the last
//! one left, unless another came meanwhile.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAction {
    Open,
    Close,
}

#[derive(Debug)]
pub struct DemandSchedule {
    close_after: Duration,
    open: bool,
    /// When the camera closes, while it is open and nobody reads.
    close_at: Option<Instant>,
}

impl DemandSchedule {
    /// A schedule whose camera is closed.
    pub fn new(close_after: Duration) -> Self {
        Self { close_after, open: false, close_at: None }
    }

    /// The number of readers is now `readers`.
    pub fn on_readers(&mut self, readers: usize, now: Instant) -> Option<SourceAction> {
        if readers > 0 {
            self.close_at = None;
            if !self.open {
                self.open = true;
                return Some(SourceAction::Open);
            }
        } else if self.open && self.close_at.is_none() {
            self.close_at = Some(now + self.close_after);
        }
        None
    }

    /// When `handle_timeout` has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.close_at
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<SourceAction> {
        match self.close_at {
            Some(close_at) if close_at <= now => {
                self.close_at = None;
                self.open = false;
                Some(SourceAction::Close)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOSE_AFTER: Duration = Duration::from_secs(10);

    #[test]
    fn opens_for_the_first_reader_and_closes_after_the_last_has_been_gone_a_while() {
        let start = Instant::now();
        let mut schedule = DemandSchedule::new(CLOSE_AFTER);
        assert_eq!(schedule.poll_timeout(), None, "closed and nobody reads: nothing to do");
        assert_eq!(schedule.on_readers(1, start), Some(SourceAction::Open));
        assert_eq!(schedule.on_readers(2, start + Duration::from_secs(1)), None, "already open");
        assert_eq!(schedule.on_readers(0, start + Duration::from_secs(5)), None, "stays open a while");
        assert_eq!(schedule.poll_timeout(), Some(start + Duration::from_secs(15)));
        assert_eq!(schedule.handle_timeout(start + Duration::from_secs(14)), None);
        assert_eq!(schedule.handle_timeout(start + Duration::from_secs(15)), Some(SourceAction::Close));
        assert_eq!(schedule.poll_timeout(), None);
        assert_eq!(schedule.on_readers(1, start + Duration::from_secs(20)), Some(SourceAction::Open), "opens again");
    }

    #[test]
    fn a_reader_who_comes_back_in_time_keeps_it_open() {
        let start = Instant::now();
        let mut schedule = DemandSchedule::new(CLOSE_AFTER);
        schedule.on_readers(1, start);
        schedule.on_readers(0, start + Duration::from_secs(1));
        assert_eq!(schedule.on_readers(1, start + Duration::from_secs(9)), None, "still open: nothing to reopen");
        assert_eq!(schedule.poll_timeout(), None, "the close was called off");
        assert_eq!(schedule.handle_timeout(start + Duration::from_secs(30)), None);
        schedule.on_readers(0, start + Duration::from_secs(31));
        assert_eq!(schedule.poll_timeout(), Some(start + Duration::from_secs(41)), "counted from the last leave");
    }
}
