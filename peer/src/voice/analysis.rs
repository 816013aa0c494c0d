//! Measuring what a call did to sound: a deterministic speech-like test signal, and the
//! normalized cross-correlation of what came out with what went in, after finding the
//! delay between them. Used by the tests and the call benchmark.

use super::codec::SAMPLE_RATE;

/// A speech-like test signal of `seconds`: syllables of 120 to 280 ms, each a gliding
/// pitch of 90 to 260 Hz with a dozen harmonics shaped by two formants and a smooth
/// envelope, separated by pauses of 40 to 160 ms. The same `seed` gives the same signal.
pub fn speech_like(seconds: f64, seed: u64) -> Vec<i16> {
    let total = (seconds * f64::from(SAMPLE_RATE)) as usize;
    let mut out = Vec::with_capacity(total);
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut random = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let rate = f64::from(SAMPLE_RATE);
    let mut phase = 0.0f64;
    while out.len() < total {
        let syllable = ((0.12 + 0.16 * random()) * rate) as usize;
        let pitch_start = 90.0 + 170.0 * random();
        let pitch_end = 90.0 + 170.0 * random();
        let formant1 = 300.0 + 600.0 * random();
        let formant2 = 900.0 + 1600.0 * random();
        let loudness = 0.25 + 0.35 * random();
        for i in 0..syllable {
            let t = i as f64 / syllable as f64;
            let pitch = pitch_start + (pitch_end - pitch_start) * t;
            phase += std::f64::consts::TAU * pitch / rate;
            let envelope = (std::f64::consts::PI * t).sin().powf(0.6);
            let mut sample = 0.0;
            for h in 1..=12 {
                let f = pitch * f64::from(h);
                let weight = 1.0 / (1.0 + ((f - formant1) / 150.0).powi(2))
                    + 0.6 / (1.0 + ((f - formant2) / 250.0).powi(2))
                    + 0.05;
                sample += weight * (phase * f64::from(h)).sin();
            }
            out.push((sample * envelope * loudness * 6000.0).clamp(-32000.0, 32000.0) as i16);
        }
        let pause = ((0.04 + 0.12 * random()) * rate) as usize;
        out.extend(std::iter::repeat_n(0, pause));
    }
    out.truncate(total);
    out
}

/// How `output` lines up with `reference`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Alignment {
    /// Samples by which `output` lags `reference` (output[i + lag] matches reference[i]).
    pub lag: i64,
    /// Normalized cross-correlation at that lag (1 is identical up to a gain).
    pub correlation: f64,
}

/// Normalized correlation of `reference` with `output` shifted by `lag`, over the
/// reference's samples that have a counterpart.
pub fn correlation_at(reference: &[i16], output: &[i16], lag: i64) -> f64 {
    let (mut xy, mut xx, mut yy) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &x) in reference.iter().enumerate() {
        let j = i as i64 + lag;
        if j < 0 || j as usize >= output.len() {
            continue;
        }
        let (x, y) = (f64::from(x), f64::from(output[j as usize]));
        xy += x * y;
        xx += x * x;
        yy += y * y;
    }
    if xx == 0.0 || yy == 0.0 {
        0.0
    } else {
        xy / (xx * yy).sqrt()
    }
}

fn decimate(samples: &[i16], factor: usize) -> Vec<i16> {
    samples
        .chunks(factor)
        .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16)
        .collect()
}

/// Finds the lag (0 to `max_lag` samples, output behind reference) with the highest
/// correlation: coarsely at a sixth of the rate, then sample by sample around the best.
pub fn align(reference: &[i16], output: &[i16], max_lag: usize) -> Alignment {
    const FACTOR: usize = 6;
    let (coarse_ref, coarse_out) = (decimate(reference, FACTOR), decimate(output, FACTOR));
    let mut best = (0i64, f64::MIN);
    for lag in 0..=(max_lag / FACTOR) as i64 {
        let c = correlation_at(&coarse_ref, &coarse_out, lag);
        if c > best.1 {
            best = (lag, c);
        }
    }
    let centre = best.0 * FACTOR as i64;
    let mut fine = Alignment {
        lag: centre,
        correlation: f64::MIN,
    };
    for lag in (centre - 2 * FACTOR as i64)..=(centre + 2 * FACTOR as i64) {
        let c = correlation_at(reference, output, lag);
        if c > fine.correlation {
            fine = Alignment {
                lag,
                correlation: c,
            };
        }
    }
    fine
}

/// The energy-weighted mean of the correlation of each `window`-sample stretch of the
/// reference, each aligned on its own within `search` samples of `lag`: what a listener
/// hears as intact when a jitter buffer shifts the delay during the call.
pub fn windowed_correlation(
    reference: &[i16],
    output: &[i16],
    lag: i64,
    window: usize,
    search: i64,
) -> f64 {
    let (mut weighted, mut energy_sum) = (0.0, 0.0);
    for (n, piece) in reference.chunks(window).enumerate() {
        let energy: f64 = piece.iter().map(|&s| f64::from(s).powi(2)).sum();
        if energy == 0.0 {
            continue;
        }
        let start = (n * window) as i64;
        let best = (-search..=search)
            .step_by(4)
            .map(|d| {
                let at = start + lag + d;
                if at < 0 || at as usize >= output.len() {
                    return 0.0;
                }
                correlation_at(piece, &output[at as usize..], 0)
            })
            .fold(f64::MIN, f64::max);
        weighted += best * energy;
        energy_sum += energy;
    }
    if energy_sum == 0.0 {
        0.0
    } else {
        weighted / energy_sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delayed_copy_is_found_at_its_lag_and_noise_is_not_correlated() {
        let reference = speech_like(2.0, 1);
        let mut delayed = vec![0i16; 3_333];
        delayed.extend_from_slice(&reference);
        let found = align(&reference, &delayed, 10_000);
        assert_eq!(found.lag, 3_333);
        assert!(found.correlation > 0.999, "{found:?}");
        let other = speech_like(2.0, 2);
        assert!(align(&reference, &other, 10_000).correlation < 0.5);
        assert!(windowed_correlation(&reference, &delayed, 3_333, 48_000, 960) > 0.999);
    }
}
