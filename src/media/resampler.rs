//! Sample-rate conversion by a rational factor, for camera audio at a rate the Opus encoder
//! does not take (44.1 kHz and its relatives 22.05 and 11.025 kHz, 32 kHz, 64 to 96 kHz).
//!
//! A polyphase windowed-sinc filter of our own rather than a crate (rubato would do it too,
//! through its own buffer-adapter crates): camera rates come from AAC's table, so every ratio
//! is a small fraction (44.1 to 48 kHz is 160/147) and an exact filter needs one table of at
//! most a few hundred phases. Output sample `n` then lies exactly at input time `n * in/out`,
//! which is what keeps the Opus timestamps and capture times exact, with no drift to correct.

/// Taps on each side of an output sample, at the input rate, when upsampling; scaled up by
/// the ratio when downsampling so that the transition band stays as narrow at the output.
/// With a Blackman window: flat to about 0.43 of the lower rate, over 70 dB down past 0.52.
const HALF_TAPS: usize = 32;
/// The passband edge as a fraction of the lower rate's Nyquist frequency.
const CUTOFF: f64 = 0.95;
/// Ratios whose reduced output term is larger need a table too large to keep per stream.
const MAX_PHASES: u32 = 1_024;
/// Downsampling further than this costs too many taps per output sample.
const MAX_DOWNSAMPLING: u32 = 8;

#[derive(Debug, thiserror::Error)]
#[error("no resampling from {from} Hz to {to} Hz (the ratio must reduce to at most {MAX_PHASES} phases and {MAX_DOWNSAMPLING}:1)")]
pub struct UnsupportedRatio {
    pub from: u32,
    pub to: u32,
}

pub struct Resampler {
    /// The ratio out/in, reduced: `up` phases, `down` input steps of a phase per output.
    up: u64,
    down: u64,
    half_taps: usize,
    /// Phase after phase, `2 * half_taps` coefficients each.
    coefficients: Vec<f32>,
    /// Input not yet used by every output that needs it, led by the history the next output's
    /// filter reaches back to (silence at the start).
    input: Vec<f32>,
    /// Where the next output sample lies in `input`, in units of 1/`up` input samples.
    position: u64,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Result<Self, UnsupportedRatio> {
        let unsupported = UnsupportedRatio { from, to };
        if from == 0 || to == 0 {
            return Err(unsupported);
        }
        let common = gcd(from, to);
        let (up, down) = (to / common, from / common);
        if up > MAX_PHASES || down > MAX_DOWNSAMPLING * up {
            return Err(unsupported);
        }
        let half_taps = HALF_TAPS * down.div_ceil(up).max(1) as usize;
        // Cycles per input sample: half the lower of the two rates, a little less.
        let cutoff = 0.5 * CUTOFF * (f64::from(up) / f64::from(down)).min(1.0);
        let taps = 2 * half_taps;
        let mut coefficients = Vec::with_capacity(up as usize * taps);
        for phase in 0..up {
            let start = coefficients.len();
            for tap in 0..taps {
                // How far the output lies after this tap's input sample, in input samples.
                let distance = (half_taps - 1) as f64 - tap as f64 + f64::from(phase) / f64::from(up);
                coefficients.push((lowpass(distance, cutoff) * blackman(distance / half_taps as f64)) as f32);
            }
            // Each phase passes a constant signal unchanged.
            let sum: f32 = coefficients[start..].iter().sum();
            coefficients[start..].iter_mut().for_each(|c| *c /= sum);
        }
        Ok(Self {
            up: u64::from(up),
            down: u64::from(down),
            half_taps,
            coefficients,
            input: vec![0.0; half_taps - 1],
            position: (half_taps as u64 - 1) * u64::from(up),
        })
    }

    /// Takes `input` and appends every output sample it completes to `output`. The first
    /// output sample lies at the first input sample; each output needs `half_taps` input
    /// samples after it, so output lags input by that much.
    pub fn process(&mut self, input: &[f32], output: &mut Vec<f32>) {
        self.input.extend_from_slice(input);
        let taps = 2 * self.half_taps;
        loop {
            let centre = (self.position / self.up) as usize;
            if centre + self.half_taps >= self.input.len() {
                break;
            }
            let phase = (self.position % self.up) as usize;
            let coefficients = &self.coefficients[phase * taps..(phase + 1) * taps];
            let window = &self.input[centre + 1 - self.half_taps..=centre + self.half_taps];
            output.push(window.iter().zip(coefficients).map(|(x, c)| x * c).sum());
            self.position += self.down;
        }
        // Keep only what the next output's filter reaches back to.
        let centre = (self.position / self.up) as usize;
        let used = centre.saturating_sub(self.half_taps - 1).min(self.input.len());
        self.input.drain(..used);
        self.position -= used as u64 * self.up;
    }
}

/// The ideal low-pass filter's impulse response at `t` input samples, for `cutoff` cycles per
/// sample.
fn lowpass(t: f64, cutoff: f64) -> f64 {
    let x = 2.0 * cutoff * t;
    2.0 * cutoff * if x == 0.0 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) }
}

/// The Blackman window over -1..1.
fn blackman(x: f64) -> f64 {
    if x.abs() >= 1.0 {
        return 0.0;
    }
    let angle = std::f64::consts::PI * x;
    0.42 + 0.5 * angle.cos() + 0.08 * (2.0 * angle).cos()
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn sine(rate: u32, hz: f64, samples: usize) -> Vec<f32> {
        (0..samples).map(|n| (0.5 * (2.0 * PI * hz * n as f64 / f64::from(rate)).sin()) as f32).collect()
    }

    /// Runs `input` through in chunks of `chunk` samples, as AAC frames come.
    fn resample(from: u32, to: u32, input: &[f32], chunk: usize) -> Vec<f32> {
        let mut resampler = Resampler::new(from, to).expect("supported");
        let mut output = Vec::new();
        for piece in input.chunks(chunk) {
            resampler.process(piece, &mut output);
        }
        output
    }

    #[test]
    fn output_count_follows_the_ratio_whatever_the_chunks() {
        for (from, to) in [(44_100, 48_000), (22_050, 24_000), (32_000, 48_000), (96_000, 48_000), (7_350, 8_000)] {
            let input = sine(from, 440.0, from as usize);
            let output = resample(from, to, &input, 1024);
            // One second in: one second out, less the filter's look-ahead.
            let lag = to as usize * Resampler::new(from, to).expect("supported").half_taps / from as usize;
            assert!(output.len().abs_diff(to as usize - lag) <= 1, "{from} -> {to}: {} samples", output.len());
            assert_eq!(output, resample(from, to, &input, 333), "{from} -> {to}: chunking changes nothing");
        }
    }

    #[test]
    fn a_tone_keeps_its_frequency_phase_and_level() {
        let (from, to, hz) = (44_100, 48_000, 1_000.0);
        let output = resample(from, to, &sine(from, hz, 44_100), 1024);
        // Sample n of the output is the tone at time n / 48 kHz, past the start-up.
        let expected = sine(to, hz, output.len());
        let worst = output.iter().zip(&expected).skip(100).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-3, "error {worst}");
    }

    #[test]
    fn downsampling_removes_what_the_lower_rate_cannot_carry() {
        // 30 kHz at 96 kHz would fold to 18 kHz at 48 kHz; it must go instead.
        let output = resample(96_000, 48_000, &sine(96_000, 30_000.0, 96_000), 1024);
        let rms = (output[1000..].iter().map(|x| x * x).sum::<f32>() / (output.len() - 1000) as f32).sqrt();
        assert!(rms < 0.5 * 1e-3, "rms {rms}");
    }

    #[test]
    fn odd_ratios_are_refused() {
        assert!(Resampler::new(44_056, 48_000).is_err(), "6000 phases");
        assert!(Resampler::new(0, 48_000).is_err());
        assert!(Resampler::new(768_000, 48_000).is_err());
    }
}
