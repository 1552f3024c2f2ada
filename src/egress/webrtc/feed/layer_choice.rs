//! Which of a path's layers one viewer should get, from its link's estimate and loss. The
//! "layers" here are the rungs of `layer_ladder`: the path's layers and, below them, the
//! lowest one's keyframes alone.
//!
//! Down at once when the link cannot carry the layer: the estimate stays below the layer's
//! bitrate for `DOWN_AFTER`, or the viewer reports heavy loss. Up when the estimate clears the
//! better layer's bitrate with headroom, or, because a congestion controller that backed off
//! climbs back far too slowly to tell, by trying the better layer after a probe interval that
//! doubles each time a try fails (a step down within `PROBE_GRACE`), so a link that cannot
//! carry it costs a short congested moment every minute at most, not a flap. A failed try
//! goes back to the layer it left, not lower. The forwarder switches only at the new layer's
//! next keyframe.
//!
//! The congestion that makes a viewer step down goes on until the switch and the link's queue
//! drains: meanwhile the loss-based half of the controller cuts its estimate every fifth of a
//! second, by up to a half, and on a link that keeps a few per cent of random loss it never
//! climbs back. So a step down also starts the estimate again, from what the link carried before it
//! was congested, never below the new layer's bitrate: the new layer is judged by its own
//! packets, not by the tail of the old one.

use serde::Serialize;
use std::time::{Duration, Instant};

/// How long the estimate must stay below the layer's bitrate: GCC's own filtering already
/// makes a drop a real signal; this rides out one noisy report.
const DOWN_AFTER: Duration = Duration::from_millis(500);
/// Loss the viewer reports that means congestion whatever the estimate says, once it holds for
/// `LOSS_HOLD`: a receiver reports about once a second, and a layer of 40 packets a second on a
/// link with 5% random loss reports more than 10% in one report of ten.
const HIGH_LOSS: f64 = 0.10;
const LOSS_HOLD: Duration = Duration::from_millis(2500);
/// Loss that steps down at once.
const SEVERE_LOSS: f64 = 0.20;
/// Receivers report loss about once a second, over the second before: a report this soon after
/// a switch may still describe the layer left, and would step down a second time for nothing.
const LOSS_SETTLE: Duration = Duration::from_secs(2);
/// How far the estimate must clear a better layer's bitrate to move up without a try.
const UP_HEADROOM: f64 = 1.3;
const FIRST_PROBE_AFTER: Duration = Duration::from_secs(4);
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(60);
/// A step down this soon after a step up means the try failed.
const PROBE_GRACE: Duration = Duration::from_secs(5);

/// What the chooser knows of the layers and the link at one moment.
pub struct LayerInputs<'a> {
    /// Each layer's bitrate, best first; `None` for a layer that is not live.
    pub bitrates: &'a [Option<f64>],
    /// Their names, for the reasons given.
    pub names: &'a [String],
    pub estimate_bps: Option<f64>,
    pub loss_fraction: Option<f64>,
    pub now: Instant,
}

/// A step to another layer, and why, for the log and the page.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStep {
    pub layer: usize,
    pub reason: String,
    /// The estimate starts again from this at the switch: a try of a better layer from that
    /// layer's bitrate, a step down from what the link carried before it was congested.
    pub restart_estimate_bps: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerMode {
    Auto,
    Pinned,
}

impl LayerMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LayerMode::Auto => "auto",
            LayerMode::Pinned => "pinned",
        }
    }
}

pub struct LayerChooser {
    current: usize,
    /// The layer a step was decided to, until the forwarder switches at its keyframe: the
    /// decision is not taken again (nor its back-off counted again) meanwhile.
    pending: Option<usize>,
    pinned: Option<usize>,
    below_since: Option<Instant>,
    /// Since when the reported loss has been above `HIGH_LOSS`.
    lossy_since: Option<Instant>,
    probe_interval: Duration,
    next_probe: Option<Instant>,
    last_step_up: Option<Instant>,
    /// The layer the last step up left, where a failed try goes back to.
    stepped_up_from: Option<usize>,
    /// The estimate when the last step up was decided: what the layer it left had.
    estimate_before_step_up: Option<f64>,
    last_switch: Option<Instant>,
}

impl LayerChooser {
    pub fn new(current: usize) -> Self {
        Self { current, pending: None, pinned: None, below_since: None, lossy_since: None, probe_interval: FIRST_PROBE_AFTER, next_probe: None, last_step_up: None, stepped_up_from: None, estimate_before_step_up: None, last_switch: None }
    }

    pub fn current(&self) -> usize {
        self.current
    }

    pub fn mode(&self) -> LayerMode {
        if self.pinned.is_some() {
            LayerMode::Pinned
        } else {
            LayerMode::Auto
        }
    }

    /// Pins a layer (the viewer chose it), or goes back to choosing with `None`.
    pub fn pin(&mut self, layer: Option<usize>) {
        self.pinned = layer;
    }

    /// The forwarder gave up the pending switch (that layer's stream ended).
    pub fn switch_abandoned(&mut self) {
        self.pending = None;
    }

    /// The forwarder switched to `layer` (at its keyframe).
    pub fn switched_to(&mut self, layer: usize, now: Instant) {
        self.pending = None;
        if layer < self.current {
            self.last_step_up = Some(now);
            self.stepped_up_from = Some(self.current);
        }
        self.current = layer;
        self.below_since = None;
        self.lossy_since = None;
        self.last_switch = Some(now);
    }

    /// The layer to move to, if the viewer should move (and is not already on its way).
    pub fn decide(&mut self, inputs: &LayerInputs) -> Option<LayerStep> {
        let step = self.choose(inputs)?;
        self.pending = Some(step.layer);
        Some(step)
    }

    fn choose(&mut self, inputs: &LayerInputs) -> Option<LayerStep> {
        let live = |layer: usize| inputs.bitrates.get(layer).copied().flatten().is_some();
        let best_live = (0..inputs.bitrates.len()).find(|&layer| live(layer))?;
        if let Some(pinned) = self.pinned {
            let wanted = pinned != self.current && Some(pinned) != self.pending && live(pinned);
            return wanted.then(|| step(pinned, "pinned by the viewer".to_owned(), None));
        }
        if self.pending.is_some() {
            return None;
        }
        if !live(self.current) {
            return Some(step(best_live, format!("{} is not live", inputs.names[self.current]), None));
        }
        if let Some(down) = self.step_down(inputs) {
            return Some(down);
        }
        self.step_up(inputs, best_live)
    }

    fn step_down(&mut self, inputs: &LayerInputs) -> Option<LayerStep> {
        let bitrate = inputs.bitrates[self.current]?;
        let settled = self.last_switch.is_none_or(|at| inputs.now.duration_since(at) >= LOSS_SETTLE);
        let high = inputs.loss_fraction.filter(|&loss| loss > HIGH_LOSS && settled);
        if high.is_none() {
            self.lossy_since = None;
        }
        let lossy = high.filter(|&loss| loss >= SEVERE_LOSS || inputs.now.duration_since(*self.lossy_since.get_or_insert(inputs.now)) >= LOSS_HOLD);
        let short = inputs.estimate_bps.filter(|&estimate| estimate < bitrate);
        if short.is_none() {
            self.below_since = None;
        }
        let held = short.is_some() && inputs.now.duration_since(*self.below_since.get_or_insert(inputs.now)) >= DOWN_AFTER;
        let reason = match (lossy, short) {
            (Some(loss), _) => format!("{:.0}% loss", loss * 100.0),
            (None, Some(estimate)) if held => format!("estimated {} < {} of {}", mbit(estimate), mbit(bitrate), inputs.names[self.current]),
            _ => return None,
        };
        let failed_try = self.last_step_up.is_some_and(|at| inputs.now.duration_since(at) < PROBE_GRACE);
        let live_lower = |layer: &usize| *layer > self.current && inputs.bitrates.get(*layer).copied().flatten().is_some();
        let target = if failed_try { self.stepped_up_from.filter(live_lower) } else { None };
        // Else the best lower layer the estimate carries, else the lowest live one.
        let lower: Vec<usize> = (self.current + 1..inputs.bitrates.len()).filter(live_lower).collect();
        let fits = |layer: &&usize| inputs.estimate_bps.zip(inputs.bitrates[**layer]).is_some_and(|(estimate, rate)| rate <= estimate);
        let target = target.or_else(|| lower.iter().find(fits).or(lower.last()).copied())?;
        let target_bitrate = inputs.bitrates[target]?;
        // Before a failed try, the layer it left had its own estimate; the try's congestion
        // says nothing about that layer. No higher than the bitrate of the layer being left, so
        // that the restart does not step straight back up.
        let carried = if failed_try { self.estimate_before_step_up } else { inputs.estimate_bps };
        let restart = carried.map_or(target_bitrate, |carried| carried.min(bitrate).max(target_bitrate));
        self.probe_interval = if failed_try { (self.probe_interval * 2).min(MAX_PROBE_INTERVAL) } else { FIRST_PROBE_AFTER };
        self.next_probe = Some(inputs.now + self.probe_interval);
        Some(step(target, reason, Some(restart)))
    }

    fn step_up(&mut self, inputs: &LayerInputs, best_live: usize) -> Option<LayerStep> {
        if self.current <= best_live || inputs.loss_fraction.is_some_and(|loss| loss > HIGH_LOSS) {
            return None;
        }
        let better = (best_live..self.current).rev().find(|&layer| inputs.bitrates[layer].is_some())?;
        let better_bitrate = inputs.bitrates[better]?;
        let up = if let Some(estimate) = inputs.estimate_bps.filter(|&estimate| estimate >= better_bitrate * UP_HEADROOM) {
            let reason = format!("estimated {} carries {} ({})", mbit(estimate), inputs.names[better], mbit(better_bitrate));
            step(better, reason, None)
        } else {
            let due = *self.next_probe.get_or_insert(inputs.now + self.probe_interval);
            if inputs.now < due {
                return None;
            }
            self.next_probe = Some(inputs.now + self.probe_interval);
            let reason = format!("trying {} again (every {} s while it fails)", inputs.names[better], self.probe_interval.as_secs());
            step(better, reason, Some(better_bitrate * UP_HEADROOM))
        };
        self.estimate_before_step_up = inputs.estimate_bps;
        Some(up)
    }
}

fn step(layer: usize, reason: String, restart_estimate_bps: Option<f64>) -> LayerStep {
    LayerStep { layer, reason, restart_estimate_bps }
}

fn mbit(bits_per_second: f64) -> String {
    format!("{:.2} Mbit/s", bits_per_second / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIN: Option<f64> = Some(2_500_000.0);
    const SUB: Option<f64> = Some(300_000.0);

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    const NAMES: [&str; 4] = ["main", "sub", "sub2", "keyframes"];

    fn inputs(bitrates: &[Option<f64>], estimate_bps: Option<f64>, loss_fraction: Option<f64>, now: Instant) -> LayerInputs<'_> {
        static NAMED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let names = NAMED.get_or_init(|| NAMES.iter().map(|name| name.to_string()).collect());
        LayerInputs { bitrates, names, estimate_bps, loss_fraction, now }
    }

    #[test]
    fn a_short_estimate_steps_down_only_once_it_holds() {
        let start = Instant::now();
        let mut chooser = LayerChooser::new(0);
        let layers = [MAIN, SUB];
        assert_eq!(chooser.decide(&inputs(&layers, Some(9e6), Some(0.0), start)), None, "a good link stays");
        assert_eq!(chooser.decide(&inputs(&layers, Some(1e6), None, at(start, 100))), None, "one short report is not enough");
        assert_eq!(chooser.decide(&inputs(&layers, Some(3e6), None, at(start, 300))), None);
        assert_eq!(chooser.decide(&inputs(&layers, Some(1e6), None, at(start, 400))), None, "the clock starts again");
        let down = chooser.decide(&inputs(&layers, Some(1e6), None, at(start, 900))).expect("a step down");
        assert_eq!((down.layer, down.reason.as_str()), (1, "estimated 1.00 Mbit/s < 2.50 Mbit/s of main"));
    }

    #[test]
    fn a_path_of_one_layer_steps_down_to_its_keyframes_and_back_up() {
        let start = Instant::now();
        let mut chooser = LayerChooser::new(0);
        let rungs = [MAIN, Some(100_000.0)];
        chooser.decide(&inputs(&rungs, Some(5e5), None, start));
        let down = chooser.decide(&inputs(&rungs, Some(5e5), None, start + DOWN_AFTER)).expect("down");
        assert_eq!((down.layer, down.reason.as_str()), (1, "estimated 0.50 Mbit/s < 2.50 Mbit/s of main"));
        chooser.switched_to(1, start + DOWN_AFTER);
        let up = chooser.decide(&inputs(&rungs, Some(3.3e6), None, start + DOWN_AFTER * 2)).expect("up");
        assert_eq!(up.layer, 0);
    }

    #[test]
    fn heavy_loss_steps_down_at_once() {
        let mut chooser = LayerChooser::new(0);
        let down = chooser.decide(&inputs(&[MAIN, SUB], Some(9e6), Some(0.2), Instant::now())).expect("a step down");
        assert_eq!((down.layer, down.reason.as_str()), (1, "20% loss"));
    }

    #[test]
    fn moderate_loss_steps_down_once_it_holds() {
        let start = Instant::now();
        let mut chooser = LayerChooser::new(0);
        let layers = [MAIN, SUB];
        assert_eq!(chooser.decide(&inputs(&layers, Some(9e6), Some(0.12), start)), None, "one report");
        assert_eq!(chooser.decide(&inputs(&layers, Some(9e6), Some(0.04), at(start, 1000))), None);
        assert_eq!(chooser.decide(&inputs(&layers, Some(9e6), Some(0.12), at(start, 2000))), None, "the clock starts again");
        assert_eq!(chooser.decide(&inputs(&layers, Some(9e6), Some(0.15), at(start, 4000))), None);
        let down = chooser.decide(&inputs(&layers, Some(9e6), Some(0.13), at(start, 4500))).expect("a step down");
        assert_eq!((down.layer, down.reason.as_str()), (1, "13% loss"));
    }

    #[test]
    fn loss_reported_just_after_a_switch_does_not_step_down_again() {
        let start = Instant::now();
        let rungs = [MAIN, SUB, Some(50_000.0)];
        let mut chooser = LayerChooser::new(0);
        let down = chooser.decide(&inputs(&rungs, Some(9e6), Some(0.7), start)).expect("down");
        chooser.switched_to(down.layer, start);
        // The next report still covers main's lost packets.
        assert_eq!(chooser.decide(&inputs(&rungs, Some(9e6), Some(0.5), at(start, 1000))), None);
        let again = chooser.decide(&inputs(&rungs, Some(9e6), Some(0.3), start + LOSS_SETTLE)).expect("sub itself loses");
        assert_eq!(again.layer, 2);
    }

    #[test]
    fn a_step_down_goes_to_the_best_layer_that_fits() {
        let mut chooser = LayerChooser::new(0);
        let layers = [MAIN, Some(1_000_000.0), SUB];
        let down = chooser.decide(&inputs(&layers, None, Some(0.5), Instant::now())).expect("down");
        assert_eq!(down.layer, 2, "no estimate: the lowest");
        let mut chooser = LayerChooser::new(0);
        let down = chooser.decide(&inputs(&layers, Some(1.2e6), Some(0.5), Instant::now())).expect("down");
        assert_eq!(down.layer, 1);
    }

    #[test]
    fn an_estimate_with_headroom_steps_up() {
        let start = Instant::now();
        let mut chooser = LayerChooser::new(1);
        assert_eq!(chooser.decide(&inputs(&[MAIN, SUB], Some(3e6), None, start)), None, "not enough headroom");
        let up = chooser.decide(&inputs(&[MAIN, SUB], Some(3.3e6), None, at(start, 100))).expect("up");
        assert_eq!((up.layer, up.restart_estimate_bps), (0, None));
    }

    #[test]
    fn failed_tries_back_off_and_a_held_one_resets() {
        let start = Instant::now();
        let layers = [MAIN, SUB];
        let mut chooser = LayerChooser::new(0);
        let mut now = at(start, 0);
        chooser.decide(&inputs(&layers, Some(1e6), None, now));
        now += DOWN_AFTER;
        let down = chooser.decide(&inputs(&layers, Some(1e6), None, now)).expect("down");
        chooser.switched_to(down.layer, now);
        let mut intervals = Vec::new();
        for _ in 0..5 {
            let went_down = now;
            let probe = loop {
                now += Duration::from_millis(250);
                if let Some(step) = chooser.decide(&inputs(&layers, Some(1e6), Some(0.0), now)) {
                    break step;
                }
            };
            assert_eq!(probe.layer, 0);
            assert_eq!(probe.restart_estimate_bps, Some(2_500_000.0 * UP_HEADROOM));
            intervals.push((now - went_down).as_secs());
            chooser.switched_to(0, now);
            // The link still cannot carry it: down again a second later.
            now += Duration::from_millis(500);
            assert_eq!(chooser.decide(&inputs(&layers, Some(1e6), None, now)), None);
            now += DOWN_AFTER;
            let down = chooser.decide(&inputs(&layers, Some(1e6), None, now)).expect("down again");
            chooser.switched_to(down.layer, now);
        }
        assert_eq!(intervals, vec![4, 8, 16, 32, 60]);

        // A try that holds past the grace period resets the interval.
        let up_at = loop {
            now += Duration::from_millis(250);
            if chooser.decide(&inputs(&layers, Some(1e6), Some(0.0), now)).is_some() {
                break now;
            }
        };
        chooser.switched_to(0, up_at);
        now = up_at + PROBE_GRACE + Duration::from_secs(1);
        chooser.decide(&inputs(&layers, Some(1e6), None, now));
        now += DOWN_AFTER;
        let down = chooser.decide(&inputs(&layers, Some(1e6), None, now)).expect("down");
        chooser.switched_to(down.layer, now);
        let down_at = now;
        let probe_at = loop {
            now += Duration::from_millis(250);
            if chooser.decide(&inputs(&layers, Some(1e6), Some(0.0), now)).is_some() {
                break now;
            }
        };
        assert_eq!((probe_at - down_at).as_secs(), FIRST_PROBE_AFTER.as_secs());
    }

    /// On a 1 Mbit/s link a try of main congests it, and the controller's estimate collapses
    /// far below what the link carries: the viewer goes back to sub, not to the keyframes, and
    /// the estimate starts again from what sub had.
    #[test]
    fn a_failed_try_goes_back_to_the_layer_it_left_with_its_estimate() {
        let start = Instant::now();
        let rungs = [MAIN, SUB, Some(50_000.0)];
        let mut chooser = LayerChooser::new(1);
        let mut now = start;
        let probe = loop {
            now += Duration::from_millis(250);
            if let Some(step) = chooser.decide(&inputs(&rungs, Some(900_000.0), Some(0.03), now)) {
                break step;
            }
        };
        assert_eq!((probe.layer, probe.restart_estimate_bps), (0, Some(2_500_000.0 * UP_HEADROOM)));
        chooser.switched_to(0, now);
        now += Duration::from_secs(2);
        let back = chooser.decide(&inputs(&rungs, Some(80_000.0), Some(0.6), now)).expect("the try failed");
        assert_eq!((back.layer, back.reason.as_str(), back.restart_estimate_bps), (1, "60% loss", Some(900_000.0)));

        // A try that the estimate alone decided restarts below main, not straight back up.
        let mut chooser = LayerChooser::new(1);
        let up = chooser.decide(&inputs(&rungs, Some(4e6), Some(0.0), start)).expect("up");
        chooser.switched_to(up.layer, start);
        let back = chooser.decide(&inputs(&rungs, Some(9e6), Some(0.5), at(start, 3000))).expect("the try failed");
        assert_eq!((back.layer, back.restart_estimate_bps), (1, Some(2_500_000.0)));
    }

    #[test]
    fn a_step_down_restarts_the_estimate_from_what_the_link_carried() {
        let rungs = [MAIN, SUB, Some(50_000.0)];
        let mut chooser = LayerChooser::new(0);
        let down = chooser.decide(&inputs(&rungs, Some(800_000.0), Some(0.4), Instant::now())).expect("down");
        assert_eq!((down.layer, down.restart_estimate_bps), (1, Some(800_000.0)));
        let mut chooser = LayerChooser::new(0);
        let down = chooser.decide(&inputs(&rungs, Some(9e6), Some(0.4), Instant::now())).expect("down");
        assert_eq!((down.layer, down.restart_estimate_bps), (1, Some(2_500_000.0)), "no higher than the layer left");
        let mut chooser = LayerChooser::new(0);
        let down = chooser.decide(&inputs(&rungs, Some(20_000.0), Some(0.4), Instant::now())).expect("down");
        assert_eq!((down.layer, down.restart_estimate_bps), (2, Some(50_000.0)), "no lower than the layer taken");
    }

    #[test]
    fn a_decision_is_not_taken_again_while_its_switch_is_pending() {
        let start = Instant::now();
        let layers = [MAIN, SUB];
        let mut chooser = LayerChooser::new(0);
        chooser.decide(&inputs(&layers, Some(1e6), None, start));
        assert!(chooser.decide(&inputs(&layers, Some(1e6), None, start + DOWN_AFTER)).is_some());
        for ms in [250, 500, 750] {
            assert_eq!(chooser.decide(&inputs(&layers, Some(1e6), None, start + DOWN_AFTER + Duration::from_millis(ms))), None, "pending");
        }
        chooser.switch_abandoned();
        assert!(chooser.decide(&inputs(&layers, Some(1e6), None, start + DOWN_AFTER * 3)).is_some(), "decided again once given up");
    }

    #[test]
    fn a_pin_wins_and_a_dead_layer_is_left() {
        let now = Instant::now();
        let mut chooser = LayerChooser::new(0);
        chooser.pin(Some(1));
        let pinned = chooser.decide(&inputs(&[MAIN, SUB], Some(9e6), None, now)).expect("pinned");
        assert_eq!((pinned.layer, chooser.mode()), (1, LayerMode::Pinned));
        chooser.switched_to(1, now);
        assert_eq!(chooser.decide(&inputs(&[MAIN, SUB], Some(9e6), None, now)), None, "stays pinned");
        chooser.pin(None);
        let left = chooser.decide(&inputs(&[MAIN, None], Some(9e6), None, now));
        assert_eq!(left.map(|s| s.reason), Some("sub is not live".to_owned()));
    }
}
