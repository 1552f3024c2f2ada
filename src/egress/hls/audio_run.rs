//! The audio track of an HLS muxer, whatever its codec: units (AAC access units, Opus packets)
//! wait here until the part whose time they fall in is cut, and are placed on the track's
//! timeline by their capture time against the video's.
//!
//! The audio track starts at its first unit captured at or after the first keyframe muxed (the
//! video's time zero), at that unit's capture time past the keyframe's, in ticks of the track's
//! timescale, less the codec's delay (Opus's pre-skip: what a packet decodes to lags what its
//! encoder took in by that much, so placing it that much earlier puts the sound where it was
//! captured). From there it follows the source's audio clock, so gaps stay gaps and the two
//! tracks keep the sync the camera gave them.

use super::fmp4::{Sample, TrackRun, AUDIO_TRACK};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::SystemTime;

/// Units waiting beyond this many are dropped, oldest first (video stopped coming).
const MAX_PENDING: usize = 1024;

/// One unit of the track.
#[derive(Debug, Clone)]
pub struct AudioUnit {
    /// In the track's timescale, continuous as the source's clock is.
    pub timestamp: u64,
    pub data: Bytes,
    /// When its first sample was captured, on the video's clock.
    pub captured_at: SystemTime,
    /// How long it plays, in the track's timescale: the duration of a part's last unit.
    pub duration: u32,
}

pub struct AudioRun {
    timescale: u32,
    /// The codec's delay, in ticks.
    delay: u32,
    /// The first unit placed: (its timestamp, its decode time on the track).
    anchor: Option<(u64, u64)>,
    pending: VecDeque<AudioUnit>,
}

/// The units of one part, in order, with their decode time.
pub struct AudioPart {
    decode_time: u64,
    units: Vec<AudioUnit>,
}

impl AudioPart {
    pub fn track_run(&self) -> TrackRun<'_> {
        let samples = self
            .units
            .iter()
            .enumerate()
            .map(|(i, unit)| {
                let duration = self.units.get(i + 1).map_or(unit.duration, |next| next.timestamp.saturating_sub(unit.timestamp) as u32);
                Sample { data: &unit.data, duration, keyframe: true }
            })
            .collect();
        TrackRun { track_id: AUDIO_TRACK, decode_time: self.decode_time, samples }
    }
}

impl AudioRun {
    /// A track of `timescale` ticks a second whose codec delays its sound by `delay` ticks.
    pub fn new(timescale: u32, delay: u32) -> Self {
        Self { timescale, delay, anchor: None, pending: VecDeque::new() }
    }

    /// When the newest unit waiting to be placed was captured.
    pub fn newest_captured_at(&self) -> Option<SystemTime> {
        self.pending.back().map(|unit| unit.captured_at)
    }

    pub fn push(&mut self, unit: AudioUnit) {
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(unit);
    }

    fn decode_time(&self, unit: &AudioUnit) -> Option<u64> {
        let (timestamp, decode_time) = self.anchor?;
        unit.timestamp.checked_sub(timestamp).map(|since| decode_time + since)
    }

    /// Takes the units that start before `end_secs` on the video's timeline, whose zero is
    /// the keyframe captured at `origin`; units before zero, or before the anchor, are dropped.
    pub fn take_until(&mut self, origin: SystemTime, end_secs: f64) -> Option<AudioPart> {
        let rate = f64::from(self.timescale);
        if self.anchor.is_none() {
            while let Some(first) = self.pending.front() {
                let after = first.captured_at.duration_since(origin).map(|after| (after.as_secs_f64() * rate).round() as u64);
                match after.ok().and_then(|after| after.checked_sub(u64::from(self.delay))) {
                    Some(decode_time) => {
                        self.anchor = Some((first.timestamp, decode_time));
                        break;
                    }
                    None => {
                        self.pending.pop_front();
                    }
                }
            }
        }
        let mut units = Vec::new();
        while let Some(first) = self.pending.front() {
            match self.decode_time(first) {
                None => {
                    self.pending.pop_front();
                }
                Some(time) if (time as f64) < end_secs * rate => units.extend(self.pending.pop_front()),
                Some(_) => break,
            }
        }
        let decode_time = self.decode_time(units.first()?)?;
        Some(AudioPart { decode_time, units })
    }

    /// Drops the units before `secs` on the video's timeline: the video they went with is gone.
    pub fn drop_before(&mut self, secs: f64) {
        if self.anchor.is_none() {
            return; // placing the first unit drops those before the video's zero anyway
        }
        let rate = f64::from(self.timescale);
        while self.pending.front().is_some_and(|f| self.decode_time(f).is_none_or(|time| (time as f64) < secs * rate)) {
            self.pending.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Units of `length` ticks at 16 kHz, the first captured at `start`.
    fn units(start: SystemTime, count: u64, length: u32) -> Vec<AudioUnit> {
        (0..count)
            .map(|i| {
                let captured_at = start + Duration::from_secs_f64((i * u64::from(length)) as f64 / 16_000.0);
                AudioUnit { timestamp: 5_000 + u64::from(length) * i, data: Bytes::from(vec![i as u8]), captured_at, duration: length }
            })
            .collect()
    }

    #[test]
    fn audio_starts_at_its_capture_time_after_the_keyframe_and_follows_its_clock() {
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut run = AudioRun::new(16_000, 0);
        // Two units of 64 ms captured before the keyframe, then 30 ms after it, and so on.
        for unit in units(origin - Duration::from_millis(98), 10, 1024) {
            run.push(unit);
        }
        let part = run.take_until(origin, 0.2).expect("audio in the first 200 ms");
        assert_eq!(part.decode_time, 480, "30 ms at 16 kHz: the first unit at or after the keyframe");
        let track = part.track_run();
        assert_eq!(track.samples.len(), 3, "units starting at 30, 94 and 158 ms");
        assert_eq!(track.samples.iter().map(|s| s.duration).collect::<Vec<_>>(), vec![1024; 3]);
        let next = run.take_until(origin, 0.4).expect("the next part's audio");
        assert_eq!(next.decode_time, 480 + 3 * 1024, "continuous");
        assert!(run.take_until(origin, 0.4).is_none(), "nothing left before 400 ms");
    }

    #[test]
    fn a_codec_delay_places_units_that_much_earlier() {
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        // 20 ms units with a 40-tick delay: the one captured 1 ms after the keyframe (16 ticks)
        // would start before zero, so the next one, 21 ms after, is the first.
        let mut run = AudioRun::new(16_000, 40);
        for unit in units(origin + Duration::from_millis(1), 5, 320) {
            run.push(unit);
        }
        let part = run.take_until(origin, 1.0).expect("audio");
        assert_eq!(part.decode_time, 336 - 40);
        let track = part.track_run();
        assert_eq!(track.samples.len(), 4);
        assert_eq!(track.samples.last().map(|s| s.duration), Some(320), "the last unit lasts its own length");
    }

    #[test]
    fn units_of_dropped_video_are_dropped() {
        let origin = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mut run = AudioRun::new(16_000, 0);
        let units = units(origin, 20, 1024);
        run.push(units[0].clone());
        assert!(run.take_until(origin, 0.01).is_some(), "anchored");
        for unit in &units[1..] {
            run.push(unit.clone());
        }
        run.drop_before(0.5);
        let part = run.take_until(origin, 10.0).expect("audio after 500 ms");
        assert_eq!(part.decode_time, 8 * 1024, "the first unit at or after 500 ms");
    }
}
