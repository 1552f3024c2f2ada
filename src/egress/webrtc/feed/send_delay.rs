//! How long a stream's packets wait inside Lookout: from the moment a frame is complete to the
//! moment each of its packets is handed to a viewer's connection. This is the latency the
//! gateway adds (pacing included); the network and the viewer add the rest.
//!
//! Every viewer's forwarder records every live packet, tens of thousands a second, so the
//! histogram is lock-free: fixed buckets of atomic counters, in two windows of `WINDOW` that
//! take turns. Figures come from the last complete window. A recorder that opens a window
//! clears it first; a sample that races with that clearing may be lost, which a measurement of
//! thousands of samples does not notice. The same buckets also count since the start, for the
//! metrics' histogram.

use crate::histogram::Histogram;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(5);

/// Bucket upper bounds in microseconds: 25 µs steps to 2 ms, 250 µs to 20 ms, 5 ms to 500 ms,
/// and one bucket for everything longer.
fn bucket_bounds() -> impl Iterator<Item = u64> {
    (1..=80).map(|i| i * 25).chain((1..=72).map(|i| 2_000 + i * 250)).chain((1..=96).map(|i| 20_000 + i * 5_000)).chain([u64::MAX])
}

const BUCKETS: usize = 80 + 72 + 96 + 1;

/// Upper bounds of the exported histogram, in seconds: each is also a bound of the buckets
/// above, so that every bucket falls wholly into one of these.
const EXPORTED_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5];

fn bucket_of(micros: u64) -> usize {
    match micros {
        0..=2_000 => (micros.saturating_sub(1) / 25) as usize,
        2_001..=20_000 => 80 + ((micros - 2_001) / 250) as usize,
        20_001..=500_000 => 152 + ((micros - 20_001) / 5_000) as usize,
        _ => BUCKETS - 1,
    }
}

struct Window {
    number: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Default for Window {
    fn default() -> Self {
        Self { number: AtomicU64::new(u64::MAX), buckets: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

pub struct SendDelay {
    started: Instant,
    windows: [Window; 2],
    since_start: [AtomicU64; BUCKETS],
    since_start_micros: AtomicU64,
}

impl Default for SendDelay {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            windows: Default::default(),
            since_start: std::array::from_fn(|_| AtomicU64::new(0)),
            since_start_micros: AtomicU64::new(0),
        }
    }
}

/// Percentiles of the last complete window, in microseconds (each the upper bound of its bucket).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SendDelayPercentiles {
    pub p50_us: u64,
    pub p99_us: u64,
    pub packets: u64,
}

impl SendDelay {
    pub fn record(&self, delay: Duration, now: Instant) {
        let number = self.window_number(now);
        let window = &self.windows[(number % 2) as usize];
        if window.number.load(Ordering::Relaxed) != number && window.number.swap(number, Ordering::Relaxed) != number {
            for bucket in &window.buckets {
                bucket.store(0, Ordering::Relaxed);
            }
        }
        let micros = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        let bucket = bucket_of(micros);
        window.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.since_start[bucket].fetch_add(1, Ordering::Relaxed);
        self.since_start_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Every delay recorded since the start, in seconds, in `EXPORTED_BUCKETS`.
    pub fn since_start(&self) -> Histogram {
        let mut counts = vec![0; EXPORTED_BUCKETS.len() + 1];
        for (bound, counter) in bucket_bounds().zip(&self.since_start) {
            let seconds = bound as f64 / 1e6;
            let exported = EXPORTED_BUCKETS.iter().position(|&upper| seconds <= upper).unwrap_or(EXPORTED_BUCKETS.len());
            counts[exported] += counter.load(Ordering::Relaxed);
        }
        Histogram::from_counts(EXPORTED_BUCKETS, counts, self.since_start_micros.load(Ordering::Relaxed) as f64 / 1e6)
    }

    /// The figures of the last complete window, if anything was sent in it.
    pub fn last_window(&self, now: Instant) -> Option<SendDelayPercentiles> {
        let number = self.window_number(now).checked_sub(1)?;
        let window = &self.windows[(number % 2) as usize];
        if window.number.load(Ordering::Relaxed) != number {
            return None;
        }
        let counts: Vec<u64> = window.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let packets: u64 = counts.iter().sum();
        let percentile = |q: f64| {
            let rank = ((packets as f64 * q).ceil() as u64).max(1);
            let mut seen = 0;
            bucket_bounds().zip(&counts).find_map(|(bound, &count)| {
                seen += count;
                (seen >= rank).then_some(bound)
            })
        };
        Some(SendDelayPercentiles { p50_us: percentile(0.5)?, p99_us: percentile(0.99)?, packets })
    }

    fn window_number(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.started).as_millis() / WINDOW.as_millis()) as u64
    }
}

/// One stream's send delays (a path's, or a layer's): in all, and beyond the pacer's intended
/// wait (Lookout's own processing and queueing).
#[derive(Default)]
pub struct StreamSendDelay {
    all: SendDelay,
    beyond_pacing: SendDelay,
}

/// A stream's send delays over the last complete window; `None` when nobody watched.
#[derive(Debug, Default, Serialize)]
pub struct SendDelayFigures {
    pub send_delay: Option<SendDelayPercentiles>,
    pub send_delay_beyond_pacing: Option<SendDelayPercentiles>,
}

impl StreamSendDelay {
    /// Notes how long a packet of a live frame waited in Lookout before it went to a viewer,
    /// `paced` of it on purpose, in its viewer's pacer.
    pub fn record(&self, delay: Duration, paced: Duration, now: Instant) {
        self.all.record(delay, now);
        self.beyond_pacing.record(delay.saturating_sub(paced), now);
    }

    fn figures(&self, now: Instant) -> SendDelayFigures {
        SendDelayFigures { send_delay: self.all.last_window(now), send_delay_beyond_pacing: self.beyond_pacing.last_window(now) }
    }
}

/// Every stream's send delays by name, as its viewers' forwarders record them: kept by the
/// egress, not in the stream hub, which knows nothing of viewers.
#[derive(Clone, Default)]
pub struct SendDelays(Arc<Mutex<HashMap<String, Arc<StreamSendDelay>>>>);

impl SendDelays {
    /// The recorder of `stream`'s send delays (made on first use).
    pub fn of(&self, stream: &str) -> Arc<StreamSendDelay> {
        self.0.lock().entry(stream.to_owned()).or_default().clone()
    }

    /// Forgets `stream`, which went away.
    pub fn forget(&self, stream: &str) {
        self.0.lock().remove(stream);
    }

    pub fn figures(&self, stream: &str, now: Instant) -> SendDelayFigures {
        self.0.lock().get(stream).map(|delay| delay.figures(now)).unwrap_or_default()
    }

    /// Every send delay of `stream` since the start; `None` when nobody watched it yet.
    pub fn since_start(&self, stream: &str) -> Option<Histogram> {
        self.0.lock().get(stream).map(|delay| delay.all.since_start())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_bounds() {
        let bounds: Vec<u64> = bucket_bounds().collect();
        assert_eq!(bounds.len(), BUCKETS);
        for (index, &bound) in bounds.iter().enumerate().take(BUCKETS - 1) {
            assert_eq!(bucket_of(bound), index, "{bound} µs");
            assert_eq!(bucket_of(bound + 1), index + 1, "{} µs", bound + 1);
        }
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_come_from_the_last_complete_window() {
        let delays = SendDelay::default();
        let start = delays.started;
        assert_eq!(delays.last_window(start), None);
        for i in 0..100u64 {
            // 98 packets at 100-120 µs, two late ones.
            let micros = if i < 98 { 100 + i % 20 } else { 7_000 };
            delays.record(Duration::from_micros(micros), start + Duration::from_millis(i));
        }
        assert_eq!(delays.last_window(start + Duration::from_secs(1)), None, "the window is not complete yet");
        let figures = delays.last_window(start + WINDOW + Duration::from_secs(1)).expect("figures");
        assert_eq!(figures, SendDelayPercentiles { p50_us: 125, p99_us: 7_000, packets: 100 });
        // A new window starts empty, and the one before it is gone two windows later.
        delays.record(Duration::from_micros(10), start + WINDOW * 2);
        assert_eq!(delays.last_window(start + WINDOW * 3).map(|f| (f.p50_us, f.packets)), Some((25, 1)));
        assert_eq!(delays.last_window(start + WINDOW * 4), None, "nothing sent in the window before");
    }

    #[test]
    fn the_exported_histogram_counts_everything_since_the_start() {
        let delays = SendDelay::default();
        let start = delays.started;
        for (micros, at) in [(80, 0), (100, 1), (101, 1), (7_000, 1), (900_000, 2)] {
            delays.record(Duration::from_micros(micros), start + WINDOW * at);
        }
        let histogram = delays.since_start();
        let buckets = histogram.buckets();
        assert_eq!(buckets[0], (0.0001, 2), "up to 100 µs, from the first window");
        assert_eq!(buckets[1], (0.00025, 1));
        assert_eq!(buckets[6], (0.01, 1), "7 ms");
        assert_eq!(buckets[12], (f64::INFINITY, 1), "beyond 500 ms");
        assert_eq!(histogram.count(), 5);
        assert!((histogram.sum() - 0.907281).abs() < 1e-9, "{}", histogram.sum());
        assert!(EXPORTED_BUCKETS.iter().all(|&upper| bucket_bounds().any(|bound| bound as f64 / 1e6 == upper)), "every exported bound is a bucket's");
    }
}
