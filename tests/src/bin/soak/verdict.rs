//! The verdict, decided from the samples alone: the run is split in thirds, the first is
//! the warm-up, and the last third is compared with the middle one. Pure functions of
//! the samples, tested on made-up series.

use anyhow::{Result, bail};

use crate::ledger::Delivery;
use crate::samples::Sample;

/// RSS counts as flat when the last third's mean is at most this much above the middle
/// third's. With the relay near 240 MiB and ~28 operations a second, a leak of about
/// 750 bytes per operation fails it over the 10 minutes between the thirds; smaller
/// growth shows in the reported slope. Allocator noise stays well below it.
pub(crate) const FLAT_RSS_PCT: f64 = 5.0;
/// Descriptors count as flat when the last third's highest count is at most this many
/// above the middle third's (a transfer in flight holds a file open for a moment).
pub(crate) const FLAT_FD_SLACK: u64 = 4;
/// The traffic counts as stopped when no operation finished for this long.
pub(crate) const STALL_LIMIT_S: f64 = 60.0;

/// What the samples say, with the flatness verdicts.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Figures {
    /// Length of the warm-up, the first third of the traffic.
    pub(crate) warmup_minutes: f64,
    /// RSS at the first sample, when the traffic started.
    pub(crate) rss_start_mib: f64,
    /// RSS at the first sample after the warm-up.
    pub(crate) rss_after_warmup_mib: f64,
    /// RSS at the last sample.
    pub(crate) rss_end_mib: f64,
    /// The highest RSS sampled.
    pub(crate) rss_peak_mib: f64,
    /// Mean RSS of the middle third.
    pub(crate) rss_middle_mean_mib: f64,
    /// Mean RSS of the last third.
    pub(crate) rss_last_mean_mib: f64,
    /// Last third's mean minus the middle third's.
    pub(crate) rss_growth_mib: f64,
    /// The same, in percent of the middle third's mean.
    pub(crate) rss_growth_pct: f64,
    /// Least-squares slope of RSS after the warm-up (for the report; not judged).
    pub(crate) rss_slope_mib_per_hour: f64,
    /// `rss_growth_pct` at most `FLAT_RSS_PCT`.
    pub(crate) rss_flat: bool,
    /// Lowest and highest descriptor count during the warm-up.
    pub(crate) fd_warmup_range: (u64, u64),
    /// Lowest and highest descriptor count after it.
    pub(crate) fd_after_warmup_range: (u64, u64),
    /// Highest descriptor count of the middle third.
    pub(crate) fd_middle_max: u64,
    /// Highest descriptor count of the last third.
    pub(crate) fd_last_max: u64,
    /// `fd_last_max` at most `fd_middle_max + FLAT_FD_SLACK`.
    pub(crate) fds_flat: bool,
    /// The relay's database file at the start, MiB.
    pub(crate) db_start_mib: f64,
    /// The relay's database file at the end, MiB.
    pub(crate) db_end_mib: f64,
    /// The database file's growth over the same thirds as `rss_growth_mib`.
    pub(crate) db_growth_mib: f64,
    /// Mean relay CPU, percent of one core.
    pub(crate) relay_cpu_mean_pct: f64,
    /// Highest relay CPU of one second.
    pub(crate) relay_cpu_max_pct: f64,
    /// The machine's mean one-minute load average.
    pub(crate) load1_mean: f64,
    /// Operations done.
    pub(crate) ops: u64,
    /// Operations done per second of traffic.
    pub(crate) ops_per_s: f64,
    /// Operations failed.
    pub(crate) errors: u64,
    /// The longest time in which no operation finished, seconds.
    pub(crate) longest_stall_s: f64,
}

/// Converts KiB to MiB.
pub(crate) fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Least-squares slope of RSS (MiB) over time (hours).
fn slope_mib_per_hour(samples: &[&Sample]) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let mx = mean(samples.iter().map(|s| s.t_s / 3600.0));
    let my = mean(samples.iter().map(|s| mib(s.rss_kib as f64)));
    let (mut num, mut den) = (0.0, 0.0);
    for s in samples {
        let dx = s.t_s / 3600.0 - mx;
        num += dx * (mib(s.rss_kib as f64) - my);
        den += dx * dx;
    }
    if den == 0.0 { 0.0 } else { num / den }
}

/// Lowest and highest descriptor count (`(u64::MAX, 0)` for no samples).
fn fd_range<'a>(samples: impl Iterator<Item = &'a Sample>) -> (u64, u64) {
    samples.fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s.fds), hi.max(s.fds)))
}

/// The longest stretch, in seconds, in which the count of operations done did not move
/// (from the start of the traffic, and up to the last sample).
fn longest_stall_s(samples: &[Sample]) -> f64 {
    let (mut since, mut ops, mut longest) = (0.0, 0, 0.0f64);
    for s in samples {
        if s.ops > ops {
            (since, ops) = (s.t_s, s.ops);
        }
        longest = longest.max(s.t_s - since);
    }
    longest
}

/// Splits the run in thirds (warm-up, middle, last) and works out the figures.
pub(crate) fn figures(samples: &[Sample]) -> Result<Figures> {
    let (first, last) = match (samples.first(), samples.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => bail!("no samples were taken"),
    };
    let total_s = last.t_s;
    let warmup_s = total_s / 3.0;
    let middle: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t_s >= warmup_s && s.t_s < 2.0 * warmup_s)
        .collect();
    let last_third: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= 2.0 * warmup_s).collect();
    if middle.is_empty() || last_third.is_empty() {
        bail!("too few samples ({}) to judge", samples.len());
    }
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= warmup_s).collect();
    let rss_mean = |v: &[&Sample]| mean(v.iter().map(|s| mib(s.rss_kib as f64)));
    let (middle_mean, last_mean) = (rss_mean(&middle), rss_mean(&last_third));
    let growth = last_mean - middle_mean;
    let growth_pct = growth / middle_mean.max(f64::MIN_POSITIVE) * 100.0;
    let fd_middle_max = fd_range(middle.iter().copied()).1;
    let fd_last_max = fd_range(last_third.iter().copied()).1;
    let db_mean = |v: &[&Sample]| mean(v.iter().map(|s| s.db_bytes as f64)) / 1048576.0;
    Ok(Figures {
        warmup_minutes: warmup_s / 60.0,
        rss_start_mib: mib(first.rss_kib as f64),
        rss_after_warmup_mib: mib(after[0].rss_kib as f64),
        rss_end_mib: mib(last.rss_kib as f64),
        rss_peak_mib: samples
            .iter()
            .map(|s| mib(s.rss_kib as f64))
            .fold(0.0, f64::max),
        rss_middle_mean_mib: middle_mean,
        rss_last_mean_mib: last_mean,
        rss_growth_mib: growth,
        rss_growth_pct: growth_pct,
        rss_slope_mib_per_hour: slope_mib_per_hour(&after),
        rss_flat: growth_pct <= FLAT_RSS_PCT,
        fd_warmup_range: fd_range(samples.iter().filter(|s| s.t_s < warmup_s)),
        fd_after_warmup_range: fd_range(after.iter().copied()),
        fd_middle_max,
        fd_last_max,
        fds_flat: fd_last_max <= fd_middle_max + FLAT_FD_SLACK,
        db_start_mib: first.db_bytes as f64 / 1048576.0,
        db_end_mib: last.db_bytes as f64 / 1048576.0,
        db_growth_mib: db_mean(&last_third) - db_mean(&middle),
        relay_cpu_mean_pct: mean(samples.iter().map(|s| s.cpu_pct)),
        relay_cpu_max_pct: samples.iter().map(|s| s.cpu_pct).fold(0.0, f64::max),
        load1_mean: mean(samples.iter().map(|s| s.load1)),
        ops: last.ops,
        ops_per_s: last.ops as f64 / total_s.max(1.0),
        errors: last.errors,
        longest_stall_s: longest_stall_s(samples),
    })
}

/// Why the run failed, one line a reason; empty when it passed: memory and descriptors
/// flat after the warm-up, the traffic never stopped and moved messages, nothing the
/// relay acknowledged was lost or came twice, and the relay did not stop.
pub(crate) fn failures(
    figures: &Figures,
    delivery: &Delivery,
    relay_crashed: Option<&str>,
) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(crash) = relay_crashed {
        why.push(format!("the relay stopped during the soak: {crash}"));
    }
    if !figures.rss_flat {
        why.push(format!(
            "relay RSS not flat: last third's mean {:.2} MiB is {:+.1} % on the middle third's {:.2} MiB (limit +{FLAT_RSS_PCT} %)",
            figures.rss_last_mean_mib, figures.rss_growth_pct, figures.rss_middle_mean_mib
        ));
    }
    if !figures.fds_flat {
        why.push(format!(
            "relay descriptors not flat: last third's highest {} against the middle third's {} (limit +{FLAT_FD_SLACK})",
            figures.fd_last_max, figures.fd_middle_max
        ));
    }
    if figures.longest_stall_s > STALL_LIMIT_S {
        why.push(format!(
            "the traffic stopped: no operation finished for {:.0} s (limit {STALL_LIMIT_S} s)",
            figures.longest_stall_s
        ));
    }
    if delivery.acked == 0 || delivery.once == 0 {
        why.push(format!(
            "no messages moved: {} acknowledged, {} delivered",
            delivery.acked, delivery.once
        ));
    }
    if delivery.missing_acked > 0 {
        why.push(format!(
            "{} deliveries of acknowledged messages never arrived",
            delivery.missing_acked
        ));
    }
    if delivery.duplicated > 0 {
        why.push(format!(
            "{} deliveries arrived more than once",
            delivery.duplicated
        ));
    }
    if delivery.undecryptable > 0 {
        why.push(format!(
            "{} messages arrived that could not be decrypted",
            delivery.undecryptable
        ));
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `minutes` of one sample a second, RSS and descriptors from the given functions of
    /// the second, 30 operations a second.
    fn run(minutes: u64, rss_kib: impl Fn(u64) -> u64, fds: impl Fn(u64) -> u64) -> Vec<Sample> {
        (0..=minutes * 60)
            .map(|t| Sample {
                t_s: t as f64,
                rss_kib: rss_kib(t),
                fds: fds(t),
                cpu_pct: 10.0,
                db_bytes: 1 << 20,
                ops: 30 * t,
                errors: 0,
                in_flight: 4,
                offline: 1,
                load1: 1.0,
            })
            .collect()
    }

    fn delivered() -> Delivery {
        Delivery {
            sent: 100,
            acked: 100,
            expected: 150,
            once: 150,
            ..Delivery::default()
        }
    }

    #[test]
    fn growth_during_warm_up_then_a_plateau_is_flat() {
        // 20 MiB rising to 40 MiB over the first 8 minutes, then level with noise.
        let rss = |t: u64| 20_480 + 20_480 * t.min(480) / 480 + (t * 7919) % 300;
        let samples = run(30, rss, |t| 30 + (t % 3));
        let f = figures(&samples).expect("figures");
        assert!((f.warmup_minutes - 10.0).abs() < 1e-9);
        assert!(f.rss_flat && f.fds_flat, "{f:?}");
        assert!(f.rss_growth_pct.abs() < 1.0);
        assert_eq!(f.longest_stall_s, 0.0);
        assert!(failures(&f, &delivered(), None).is_empty());
    }

    #[test]
    fn a_steady_leak_is_not_flat() {
        // 40 MiB growing 0.5 MiB a minute: +5 MiB between the thirds' means, 12 %.
        let samples = run(30, |t| 40_960 + 512 * t / 60, |_| 30);
        let f = figures(&samples).expect("figures");
        assert!(!f.rss_flat);
        assert!((f.rss_growth_mib - 5.0).abs() < 0.1, "{}", f.rss_growth_mib);
        assert!((f.rss_slope_mib_per_hour - 30.0).abs() < 0.5);
        let why = failures(&f, &delivered(), None);
        assert_eq!(why.len(), 1);
        assert!(why[0].starts_with("relay RSS not flat"), "{why:?}");
    }

    #[test]
    fn leaking_descriptors_are_not_flat() {
        // One descriptor more every minute.
        let f = figures(&run(30, |_| 40_960, |t| 30 + t / 60)).expect("figures");
        assert!(f.rss_flat && !f.fds_flat);
        assert_eq!((f.fd_middle_max, f.fd_last_max), (49, 60));
    }

    #[test]
    fn stopped_traffic_and_lost_messages_fail() {
        let mut samples = run(30, |_| 40_960, |_| 30);
        // Nothing finishes between minutes 12 and 14.
        let stuck = samples[720].ops;
        for s in &mut samples[720..840] {
            s.ops = stuck;
        }
        let f = figures(&samples).expect("figures");
        assert_eq!(f.longest_stall_s, 119.0);
        let lost = Delivery {
            missing_acked: 2,
            duplicated: 1,
            ..delivered()
        };
        let why = failures(&f, &lost, Some("the relay process exited"));
        assert_eq!(why.len(), 4, "{why:?}");
        assert!(why[1].starts_with("the traffic stopped"));
        let silent = failures(
            &figures(&run(3, |_| 1, |_| 1)).expect("figures"),
            &Delivery::default(),
            None,
        );
        assert_eq!(silent.len(), 1);
        assert!(silent[0].starts_with("no messages moved"));
    }

    #[test]
    fn too_few_samples_are_refused() {
        assert!(figures(&[]).is_err());
        assert!(figures(&run(0, |_| 1, |_| 1)).is_err());
    }
}
