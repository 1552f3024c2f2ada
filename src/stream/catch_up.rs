//! Back to live after a camera stall. A camera on RTSP over TCP whose connection stalls keeps
//! capturing; when the connection moves again, seconds of frames arrive at once. Forwarded, they
//! reach a browser as a burst of late frames that it fast-forwards through or drops, and every
//! viewer sits that much behind until its jitter buffer catches up. Lookout instead withholds a
//! late backlog and resumes at the first keyframe that arrives on time: the viewer sees the
//! picture pause, then live again, with no frame skipped inside a GOP.
//!
//! Lateness is judged against the camera's own pace: `arrival − timestamp` is constant for a
//! camera that delivers frames as it captures them, so its running minimum (the `floor`) is
//! the on-time delivery, and a frame far above it is a backlog.

use std::time::{Duration, Instant};

/// A frame this far behind the camera's usual delivery is part of a backlog; ordinary jitter
/// (a keyframe crossing a slow uplink, Wi-Fi retries) stays well under it.
const BEHIND_TO_SKIP: Duration = Duration::from_millis(800);
/// Skipping ends at a keyframe at most this far behind: what follows it is near-live, so
/// viewers do not get a burst of their own.
const BEHIND_TO_RESUME: Duration = Duration::from_millis(250);
/// A camera that is late for this long has changed its pace (more buffering, a clock step),
/// not stalled: its next keyframe is taken as on time and the floor starts from it.
const GIVE_UP_AFTER: Duration = Duration::from_secs(4);
/// How fast the floor rises by itself, so that it follows a camera clock slower than Lookout's
/// instead of judging it ever later: 5 ms a second, far beyond any crystal's drift.
const FLOOR_RISE_PER_SECOND: f64 = 0.005;

pub(super) struct CatchUp {
    clock_rate: f64,
    /// The smallest `arrival − timestamp` seen, in seconds from `epoch`, and when.
    floor: Option<(f64, Instant)>,
    epoch: Instant,
    skipping: Option<Skipping>,
}

struct Skipping {
    since: Instant,
    frames: u64,
}

#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    Forward,
    /// Withheld; `began` is true for the first frame of a backlog.
    Withhold { began: bool, behind: Duration },
    /// Forwarded, and the backlog before it was withheld: this many frames.
    Resumed { withheld: u64 },
}

impl CatchUp {
    pub fn new(clock_rate: u32, epoch: Instant) -> Self {
        Self { clock_rate: f64::from(clock_rate), floor: None, epoch, skipping: None }
    }

    /// Judges a frame placed at `timestamp` (on the stream's continuous timeline) that arrived
    /// at `arrived`.
    pub fn judge(&mut self, timestamp: u64, keyframe: bool, arrived: Instant) -> Verdict {
        let lateness = arrived.saturating_duration_since(self.epoch).as_secs_f64() - timestamp as f64 / self.clock_rate;
        let floor = match self.floor {
            Some((floor, at)) => (floor + arrived.saturating_duration_since(at).as_secs_f64() * FLOOR_RISE_PER_SECOND).min(lateness),
            None => lateness,
        };
        self.floor = Some((floor, arrived));
        let behind = Duration::from_secs_f64((lateness - floor).max(0.0));
        match &mut self.skipping {
            None if behind < BEHIND_TO_SKIP => Verdict::Forward,
            None => {
                self.skipping = Some(Skipping { since: arrived, frames: 1 });
                Verdict::Withhold { began: true, behind }
            }
            Some(skipping) => {
                let gave_up = arrived.saturating_duration_since(skipping.since) >= GIVE_UP_AFTER;
                if keyframe && (behind <= BEHIND_TO_RESUME || gave_up) {
                    if gave_up {
                        self.floor = Some((lateness, arrived));
                    }
                    let withheld = skipping.frames;
                    self.skipping = None;
                    Verdict::Resumed { withheld }
                } else {
                    skipping.frames += 1;
                    Verdict::Withhold { began: false, behind }
                }
            }
        }
    }

    /// A new source session: its delivery is judged afresh.
    pub fn begin_session(&mut self) {
        self.floor = None;
        self.skipping = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(40);
    const TICKS_PER_FRAME: u64 = 3600;

    /// Frames every 40 ms, keyframe every `gop`, delivered on time except during `stall`,
    /// whose frames all arrive at its end.
    fn deliver(catch_up: &mut CatchUp, start: Instant, frames: std::ops::Range<u64>, gop: u64, stall: std::ops::Range<u64>) -> Vec<Verdict> {
        frames
            .map(|n| {
                let captured = start + FRAME * n as u32;
                let arrived = if stall.contains(&n) { start + FRAME * stall.end as u32 } else { captured + Duration::from_millis(5 + n % 7 * 10) };
                catch_up.judge(n * TICKS_PER_FRAME, n % gop == 0, arrived)
            })
            .collect()
    }

    #[test]
    fn jitter_of_a_hundred_milliseconds_is_forwarded() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(90_000, start);
        assert!(deliver(&mut catch_up, start, 0..500, 25, 0..0).iter().all(|v| *v == Verdict::Forward));
    }

    #[test]
    fn a_stall_backlog_is_withheld_up_to_the_next_keyframe_on_time() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(90_000, start);
        // Frames 30..70 (1.6 s) stall; keyframes every 25 frames: 50 arrives late, 75 on time.
        let verdicts = deliver(&mut catch_up, start, 0..100, 25, 30..70);
        assert!(verdicts[..30].iter().all(|v| *v == Verdict::Forward));
        assert!(matches!(verdicts[30], Verdict::Withhold { began: true, behind } if behind > Duration::from_millis(1500)), "{:?}", verdicts[30]);
        assert!(verdicts[31..75].iter().all(|v| matches!(v, Verdict::Withhold { began: false, .. })), "the late keyframe 50 and the near-live tail are withheld too");
        assert_eq!(verdicts[75], Verdict::Resumed { withheld: 45 });
        assert!(verdicts[76..].iter().all(|v| *v == Verdict::Forward));
    }

    #[test]
    fn a_camera_that_stays_later_is_followed_after_a_while() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(90_000, start);
        let on_time: Vec<Verdict> = (0..50).map(|n| catch_up.judge(n * TICKS_PER_FRAME, n % 25 == 0, start + FRAME * n as u32)).collect();
        assert!(on_time.iter().all(|v| *v == Verdict::Forward));
        // From frame 50 on, every frame arrives 2 s after its capture.
        let later: Vec<Verdict> =
            (50..300).map(|n| catch_up.judge(n * TICKS_PER_FRAME, n % 25 == 0, start + FRAME * n as u32 + Duration::from_secs(2))).collect();
        let resumed = later.iter().position(|v| matches!(v, Verdict::Resumed { .. })).expect("resumes");
        // GIVE_UP_AFTER is 100 frames; the next keyframe after that is frame 150.
        assert_eq!(resumed + 50, 150, "{:?}", later[resumed]);
        assert!(later[resumed + 1..].iter().all(|v| *v == Verdict::Forward), "and judges the new pace on time");
    }

    #[test]
    fn a_camera_clock_slower_than_lookouts_is_not_judged_ever_later() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(90_000, start);
        // 0.1% slow: after 30 minutes its frames arrive 1.8 s later than their timestamps say.
        let verdicts: Vec<Verdict> =
            (0..45_000u64).map(|n| catch_up.judge(n * TICKS_PER_FRAME, n % 25 == 0, start + FRAME.mul_f64(1.001) * n as u32)).collect();
        assert!(verdicts.iter().all(|v| *v == Verdict::Forward));
    }

    #[test]
    fn a_new_session_is_judged_afresh() {
        let start = Instant::now();
        let mut catch_up = CatchUp::new(90_000, start);
        assert_eq!(catch_up.judge(0, true, start), Verdict::Forward);
        catch_up.begin_session();
        assert_eq!(catch_up.judge(0, true, start + Duration::from_secs(10)), Verdict::Forward);
    }
}
