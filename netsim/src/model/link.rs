//! One direction of an impaired path: for each datagram offered at a moment of virtual
//! time, [`Link::send`] decides whether it is dropped (and why) or when it arrives.
//!
//! # What happens to a datagram, in order
//!
//! 1. **MTU.** Larger than [`LinkConfig::mtu`]: dropped ([`DropCause::Mtu`]).
//! 2. **Random loss.** Lost with probability [`LinkConfig::loss`], independently of every
//!    other datagram ([`DropCause::RandomLoss`]).
//! 3. **Burst loss.** The Gilbert–Elliott chain ([`LinkConfig::burst_loss`]) steps and
//!    draws ([`DropCause::BurstLoss`]). The chain steps for every datagram that passed the
//!    MTU check, even one random loss already took, so the two processes are independent
//!    and the combined loss is `1 - (1 - loss) * (1 - burst mean loss)`; random loss is
//!    reported when both hit.
//! 4. **Rate limit.** The datagram joins the serializing queue of [`super::rate`]; if the
//!    bytes still waiting plus this datagram exceed [`LinkConfig::queue_bytes`] it is
//!    dropped ([`DropCause::QueueFull`], tail drop). Otherwise it departs when its last
//!    bit is sent (at once without a rate limit).
//! 5. **Delay.** `arrival = departure + latency + uniform(-jitter, +jitter)`, the delay
//!    clamped at zero.
//! 6. **Order.** Each datagram's delay is drawn on its own, as Linux netem does, so the
//!    configured latency is the median delay whatever the sending pattern, and datagrams
//!    sent closer together than the jitter can arrive out of order. Without jitter (and
//!    without reordering) order is kept, the rate limiter being first in, first out. A
//!    datagram chosen for reordering (probability [`LinkConfig::reorder`]) gets an extra
//!    `uniform(0, latency)` delay, so later datagrams overtake it; with zero latency the
//!    extra delay is zero.
//! 7. **Duplication.** With probability [`LinkConfig::duplicate`] a second copy arrives
//!    `uniform(0, 1 ms)` after the first. The copy is made after the bottleneck: it takes
//!    no room in the queue.
//!
//! # Determinism
//!
//! Every random choice comes from one [`StdRng`] seeded in [`Link::new`]: the same seed and
//! the same sequence of `(now, len)` give the same verdicts. Draws with probability 0 or
//! 1, and a jitter of 0, take nothing from the generator.
//!
//! Time is virtual: `now` is the time since the start of the simulation and must not go
//! backwards; an earlier `now` than a previous call is treated as that call's `now`.

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::loss::{BurstLoss, GilbertElliott, chance};
use super::rate::RateLimiter;
use super::stats::LinkStats;

/// Queue in front of the rate limiter unless configured otherwise: 64 KiB, about 50 full
/// Ethernet frames, a common order of magnitude for a home router's buffer.
pub const DEFAULT_QUEUE_BYTES: usize = 64 * 1024;

/// Largest duplicate spacing: a duplicate arrives up to 1 ms after the original, as when
/// a link-layer retransmission repeats a frame whose acknowledgement was lost.
const DUPLICATE_SPREAD: Duration = Duration::from_millis(1);

/// How one direction of a path behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way base delay.
    pub latency: Duration,
    /// Each datagram's delay is `latency + uniform(-jitter, +jitter)`, clamped at zero.
    /// Jitter larger than the latency is allowed.
    pub jitter: Duration,
    /// Probability (0..=1) that a datagram is lost, independently of the others.
    pub loss: f64,
    /// Bursty loss, in addition to `loss`.
    pub burst_loss: Option<GilbertElliott>,
    /// Probability (0..=1) that a datagram gets an extra delay that lets later datagrams
    /// overtake it (see the module documentation).
    pub reorder: f64,
    /// Probability (0..=1) that a datagram is delivered twice.
    pub duplicate: f64,
    /// Serialization rate limit; `None` for no limit.
    pub rate_bits_per_sec: Option<u64>,
    /// Bytes the queue in front of the rate limiter holds (tail drop beyond); unused
    /// without a rate limit.
    pub queue_bytes: usize,
    /// Datagrams larger than this many bytes are dropped; `None` for no limit.
    pub mtu: Option<usize>,
}

impl Default for LinkConfig {
    /// A perfect link: no delay, no loss, no limit, a 64 KiB queue.
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            burst_loss: None,
            reorder: 0.0,
            duplicate: 0.0,
            rate_bits_per_sec: None,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            mtu: None,
        }
    }
}

/// A [`LinkConfig`] that makes no sense.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A probability outside 0..=1 (or NaN).
    #[error("{field} must be a probability between 0 and 1, got {value}")]
    Probability {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A rate limit of zero bits per second.
    #[error("rate_bits_per_sec must be above 0 (leave it unset for no limit)")]
    ZeroRate,
    /// An MTU of zero bytes.
    #[error("mtu must be above 0 (leave it unset for no limit)")]
    ZeroMtu,
    /// A queue that cannot hold one full-size datagram, so the rate limiter would drop
    /// every such datagram.
    #[error(
        "queue_bytes ({queue_bytes}) must hold at least one full-size datagram \
         ({min_bytes} bytes) when the rate is limited"
    )]
    QueueTooSmall {
        /// The configured queue.
        queue_bytes: usize,
        /// The smallest acceptable queue: the MTU, or 1 byte without one.
        min_bytes: usize,
    },
}

impl LinkConfig {
    /// Checks that probabilities are in 0..=1, the rate and MTU are not zero, and a
    /// rate-limited queue holds at least one datagram of MTU size. Jitter may exceed
    /// latency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut probabilities = vec![
            ("loss", self.loss),
            ("reorder", self.reorder),
            ("duplicate", self.duplicate),
        ];
        if let Some(burst) = &self.burst_loss {
            probabilities.extend(burst.probabilities());
        }
        for (field, value) in probabilities {
            if !(0.0..=1.0).contains(&value) {
                return Err(ConfigError::Probability { field, value });
            }
        }
        if self.mtu == Some(0) {
            return Err(ConfigError::ZeroMtu);
        }
        match self.rate_bits_per_sec {
            Some(0) => return Err(ConfigError::ZeroRate),
            Some(_) => {
                let min_bytes = self.mtu.unwrap_or(1);
                if self.queue_bytes < min_bytes {
                    return Err(ConfigError::QueueTooSmall {
                        queue_bytes: self.queue_bytes,
                        min_bytes,
                    });
                }
            }
            None => {}
        }
        Ok(())
    }
}

/// What happens to one datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It arrives at these times (since the start of the simulation): one, or two if it
    /// was duplicated (the copy second).
    Deliver(Vec<Duration>),
    /// It is lost.
    Drop(DropCause),
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropCause {
    /// Independent random loss.
    RandomLoss,
    /// Gilbert–Elliott bursty loss.
    BurstLoss,
    /// The rate limiter's queue was full (tail drop).
    QueueFull,
    /// Larger than the MTU.
    Mtu,
}

impl DropCause {
    /// Every cause, in the order [`LinkStats`] lists them.
    pub const ALL: [DropCause; 4] = [
        DropCause::RandomLoss,
        DropCause::BurstLoss,
        DropCause::QueueFull,
        DropCause::Mtu,
    ];
}

impl fmt::Display for DropCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DropCause::RandomLoss => "random loss",
            DropCause::BurstLoss => "burst loss",
            DropCause::QueueFull => "queue full",
            DropCause::Mtu => "mtu",
        })
    }
}

/// One direction of an impaired path: a pure state machine over virtual time.
#[derive(Debug)]
pub struct Link {
    config: LinkConfig,
    rng: StdRng,
    burst: Option<BurstLoss>,
    rate: RateLimiter,
    /// The latest `now` seen.
    last_now: Duration,
    stats: LinkStats,
}

impl Link {
    /// A link behaving as `config`, drawing every random choice from `seed`.
    ///
    /// `config` is not validated (call [`LinkConfig::validate`] first); out-of-range
    /// probabilities act as clamped to 0..=1 and nothing panics.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            burst: config.burst_loss.map(BurstLoss::new),
            rate: RateLimiter::new(config.rate_bits_per_sec, config.queue_bytes),
            last_now: Duration::ZERO,
            stats: LinkStats::default(),
            config,
        }
    }

    /// Offers a datagram of `len_bytes` at `now`: when it arrives, or why it is dropped.
    /// Updates the counters.
    pub fn send(&mut self, now: Duration, len_bytes: usize) -> Verdict {
        let now = now.max(self.last_now);
        self.last_now = now;
        self.stats.sent += 1;
        self.stats.bytes_sent += len_bytes as u64;
        match self.decide(now, len_bytes) {
            Ok(arrivals) => {
                self.stats.delivered += arrivals.len() as u64;
                self.stats.bytes_delivered += len_bytes as u64 * arrivals.len() as u64;
                if arrivals.len() > 1 {
                    self.stats.duplicated += 1;
                }
                Verdict::Deliver(arrivals)
            }
            Err(cause) => {
                self.stats.record_drop(cause);
                Verdict::Drop(cause)
            }
        }
    }

    /// The steps of [`send`](Self::send), without the counting.
    fn decide(&mut self, now: Duration, len_bytes: usize) -> Result<Vec<Duration>, DropCause> {
        if self.config.mtu.is_some_and(|mtu| len_bytes > mtu) {
            return Err(DropCause::Mtu);
        }
        let random_lost = chance(&mut self.rng, self.config.loss);
        let burst_lost = match &mut self.burst {
            Some(burst) => burst.lose(&mut self.rng),
            None => false,
        };
        if random_lost {
            return Err(DropCause::RandomLoss);
        }
        if burst_lost {
            return Err(DropCause::BurstLoss);
        }
        let departure = self
            .rate
            .offer(now, len_bytes)
            .map_err(|_| DropCause::QueueFull)?;
        self.stats.queue_peak_bytes = self.rate.peak_bytes();

        let raw = departure.saturating_add(self.delay());
        let arrival = if chance(&mut self.rng, self.config.reorder) {
            self.stats.reordered += 1;
            let latency_nanos = nanos(self.config.latency);
            let extra = self.rng.random_range(0..=latency_nanos);
            raw.saturating_add(Duration::from_nanos(extra))
        } else {
            raw
        };
        let mut arrivals = vec![arrival];
        if chance(&mut self.rng, self.config.duplicate) {
            let gap = self.rng.random_range(0..=nanos(DUPLICATE_SPREAD));
            arrivals.push(arrival.saturating_add(Duration::from_nanos(gap)));
        }
        Ok(arrivals)
    }

    /// `latency + uniform(-jitter, +jitter)`, clamped at zero.
    fn delay(&mut self) -> Duration {
        let latency = i128::from(nanos(self.config.latency));
        let jitter = i64::try_from(nanos(self.config.jitter)).unwrap_or(i64::MAX);
        let offset = if jitter > 0 {
            i128::from(self.rng.random_range(-jitter..=jitter))
        } else {
            0
        };
        let delay = (latency + offset).max(0);
        Duration::from_nanos(u64::try_from(delay).unwrap_or(u64::MAX))
    }

    /// The counters so far.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// The configuration the link was made with, as given (not validated or clamped).
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Bytes waiting in the rate limiter's queue at `now`.
    pub fn backlog_bytes(&self, now: Duration) -> usize {
        self.rate.backlog_bytes(now)
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX` (584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Sends `n` datagrams of `len` bytes, one every `spacing`, and returns the verdicts.
    fn run(link: &mut Link, n: u32, spacing: Duration, len: usize) -> Vec<Verdict> {
        (0..n).map(|i| link.send(spacing * i, len)).collect()
    }

    /// First arrival of each delivered datagram, in send order.
    fn first_arrivals(verdicts: &[Verdict]) -> Vec<Duration> {
        verdicts
            .iter()
            .filter_map(|v| match v {
                Verdict::Deliver(a) => a.first().copied(),
                Verdict::Drop(_) => None,
            })
            .collect()
    }

    fn out_of_order(arrivals: &[Duration]) -> usize {
        arrivals.windows(2).filter(|w| w[1] < w[0]).count()
    }

    #[test]
    fn perfect_link_delivers_everything_at_once() {
        let mut link = Link::new(LinkConfig::default(), 1);
        assert_eq!(link.send(MS * 5, 1200), Verdict::Deliver(vec![MS * 5]));
        assert_eq!(link.stats().delivered, 1);
        assert_eq!(link.stats().bytes_delivered, 1200);
        assert_eq!(link.stats().dropped_total(), 0);
    }

    #[test]
    fn random_loss_ratio_is_within_one_point_of_configured() {
        for (seed, loss) in [(1, 0.01), (2, 0.05), (3, 0.2)] {
            let config = LinkConfig {
                loss,
                ..LinkConfig::default()
            };
            let mut link = Link::new(config, seed);
            run(&mut link, 20_000, MS, 1200);
            let stats = link.stats();
            assert_eq!(
                stats.dropped_total(),
                stats.dropped_by(DropCause::RandomLoss)
            );
            assert!(
                (stats.loss_ratio() - loss).abs() <= 0.01,
                "seed {seed}: configured {loss}, measured {}",
                stats.loss_ratio()
            );
            assert_eq!(stats.sent, stats.delivered + stats.dropped_total());
        }
    }

    #[test]
    fn median_delay_is_within_two_ms_of_latency_with_jitter() {
        let seed = 4;
        let config = LinkConfig {
            latency: MS * 50,
            jitter: MS * 20,
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, seed);
        // Densely: one datagram a millisecond, far closer than the jitter.
        let spacing = MS;
        let verdicts = run(&mut link, 20_000, spacing, 1200);
        let mut delays: Vec<Duration> = first_arrivals(&verdicts)
            .iter()
            .enumerate()
            .map(|(i, a)| *a - spacing * i as u32)
            .collect();
        assert!(delays.iter().all(|d| (MS * 30..=MS * 70).contains(d)));
        delays.sort();
        let median = delays[delays.len() / 2];
        assert!(
            median.abs_diff(MS * 50) <= MS * 2,
            "seed {seed}: median {median:?}"
        );
    }

    #[test]
    fn jitter_larger_than_latency_clamps_delay_at_zero() {
        let config = LinkConfig {
            latency: MS,
            jitter: MS * 10,
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, 5);
        let spacing = MS * 100;
        let verdicts = run(&mut link, 1000, spacing, 100);
        let arrivals = first_arrivals(&verdicts);
        let zero = arrivals
            .iter()
            .enumerate()
            .filter(|(i, a)| **a == spacing * *i as u32)
            .count();
        assert!(zero > 300, "{zero} datagrams with zero delay");
    }

    #[test]
    fn rate_limit_under_saturation_delivers_its_rate_and_tail_drops_the_rest() {
        let seed = 6;
        let config = LinkConfig {
            latency: MS * 20,
            rate_bits_per_sec: Some(1_000_000),
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, seed);
        // 1200 bytes every 5 ms = 1.92 Mbit/s offered, for 20 s.
        let verdicts = run(&mut link, 4000, MS * 5, 1200);
        let arrivals = first_arrivals(&verdicts);
        let (Some(first), Some(last)) = (arrivals.first(), arrivals.last()) else {
            panic!("nothing delivered");
        };
        // Bytes delivered after the first arrival, over the time they took.
        let bits = (arrivals.len() - 1) as f64 * 1200.0 * 8.0;
        let rate = bits / (*last - *first).as_secs_f64();
        assert!((rate - 1e6).abs() <= 0.05e6, "seed {seed}: {rate} bit/s");
        let stats = link.stats();
        assert!(stats.dropped_by(DropCause::QueueFull) > 1500, "{stats}");
        assert_eq!(
            stats.dropped_total(),
            stats.dropped_by(DropCause::QueueFull)
        );
        assert!(stats.queue_peak_bytes <= DEFAULT_QUEUE_BYTES);
        assert!(stats.queue_peak_bytes > DEFAULT_QUEUE_BYTES - 1200);
    }

    #[test]
    fn datagrams_over_the_mtu_are_dropped() {
        let config = LinkConfig {
            mtu: Some(1500),
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, 7);
        assert_eq!(link.send(MS, 1501), Verdict::Drop(DropCause::Mtu));
        assert!(matches!(link.send(MS, 1500), Verdict::Deliver(_)));
        assert_eq!(link.stats().dropped_by(DropCause::Mtu), 1);
    }

    #[test]
    fn duplicate_rate_is_within_one_point_and_copies_follow_within_a_ms() {
        let config = LinkConfig {
            latency: MS * 10,
            duplicate: 0.05,
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, 8);
        let verdicts = run(&mut link, 20_000, MS, 1200);
        for v in &verdicts {
            if let Verdict::Deliver(a) = v
                && a.len() == 2
            {
                assert!(a[1] >= a[0] && a[1] - a[0] <= MS);
            }
        }
        let stats = link.stats();
        let rate = stats.duplicated as f64 / stats.sent as f64;
        assert!((rate - 0.05).abs() <= 0.01, "{rate}");
        assert_eq!(stats.delivered, stats.sent + stats.duplicated);
        assert_eq!(stats.bytes_delivered, stats.delivered * 1200);
    }

    #[test]
    fn without_jitter_or_reorder_order_is_kept_even_when_rate_limited() {
        let config = LinkConfig {
            latency: MS * 50,
            rate_bits_per_sec: Some(10_000_000),
            queue_bytes: 1 << 20,
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, 9);
        let verdicts = run(&mut link, 20_000, MS / 2, 1200);
        assert_eq!(out_of_order(&first_arrivals(&verdicts)), 0);
        assert_eq!(link.stats().reordered, 0);
    }

    #[test]
    fn jitter_alone_reorders_only_datagrams_closer_than_the_jitter() {
        let config = LinkConfig {
            latency: MS * 50,
            jitter: MS * 20,
            ..LinkConfig::default()
        };
        let mut dense = Link::new(config.clone(), 9);
        let dense_swaps = out_of_order(&first_arrivals(&run(&mut dense, 20_000, MS, 1200)));
        assert!(dense_swaps > 1000, "{dense_swaps}");
        let mut sparse = Link::new(config, 9);
        let sparse_swaps = out_of_order(&first_arrivals(&run(&mut sparse, 2_000, MS * 41, 1200)));
        assert_eq!(sparse_swaps, 0);
    }

    #[test]
    fn reorder_lets_later_datagrams_overtake() {
        let config = LinkConfig {
            latency: MS * 50,
            jitter: MS * 20,
            reorder: 0.05,
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, 10);
        let verdicts = run(&mut link, 20_000, MS, 1200);
        let swaps = out_of_order(&first_arrivals(&verdicts));
        let reordered = link.stats().reordered;
        assert!(swaps > 100, "{swaps} out-of-order arrivals");
        assert!(
            (reordered as f64 / 20_000.0 - 0.05).abs() <= 0.01,
            "{reordered}"
        );
    }

    #[test]
    fn same_seed_gives_same_verdicts_and_different_seed_differs() {
        let config = LinkConfig {
            latency: MS * 30,
            jitter: MS * 10,
            loss: 0.05,
            burst_loss: Some(GilbertElliott::new(0.01, 0.3)),
            reorder: 0.02,
            duplicate: 0.02,
            rate_bits_per_sec: Some(2_000_000),
            ..LinkConfig::default()
        };
        // An irregular pattern of non-decreasing times and of sizes.
        let inputs: Vec<(Duration, usize)> = (0..5000u64)
            .map(|i| {
                let now = Duration::from_micros(i * 3000 + i * 2357 % 3000);
                (now, (i as usize * 7919) % 1400 + 40)
            })
            .collect();
        let verdicts = |seed| {
            let mut link = Link::new(config.clone(), seed);
            inputs
                .iter()
                .map(|&(now, len)| link.send(now, len))
                .collect::<Vec<_>>()
        };
        assert_eq!(verdicts(11), verdicts(11));
        assert_ne!(verdicts(11), verdicts(12));
    }

    #[test]
    fn gilbert_elliott_mean_loss_and_burst_length_match_the_model() {
        let seed = 13;
        let ge = GilbertElliott::new(0.01, 0.25);
        let config = LinkConfig {
            burst_loss: Some(ge),
            ..LinkConfig::default()
        };
        let mut link = Link::new(config, seed);
        let verdicts = run(&mut link, 50_000, MS, 1200);
        let ratio = link.stats().loss_ratio();
        assert!(
            (ratio - ge.mean_loss()).abs() <= 0.01,
            "seed {seed}: measured {ratio}, model {}",
            ge.mean_loss()
        );
        let mut bursts = Vec::new();
        let mut run_len = 0usize;
        for v in &verdicts {
            if *v == Verdict::Drop(DropCause::BurstLoss) {
                run_len += 1;
            } else if run_len > 0 {
                bursts.push(run_len);
                run_len = 0;
            }
        }
        let mean = bursts.iter().sum::<usize>() as f64 / bursts.len() as f64;
        let expected = ge.mean_bad_run();
        assert!(
            (mean - expected).abs() <= 0.15 * expected,
            "seed {seed}: mean burst {mean}, expected {expected}"
        );
    }

    #[test]
    fn validate_rejects_bad_figures_with_clear_messages() {
        assert_eq!(LinkConfig::default().validate(), Ok(()));
        let bad_loss = LinkConfig {
            loss: 1.5,
            ..LinkConfig::default()
        };
        assert_eq!(
            bad_loss.validate().map_err(|e| e.to_string()),
            Err("loss must be a probability between 0 and 1, got 1.5".to_owned())
        );
        let nan = LinkConfig {
            duplicate: f64::NAN,
            ..LinkConfig::default()
        };
        assert!(matches!(
            nan.validate(),
            Err(ConfigError::Probability {
                field: "duplicate",
                ..
            })
        ));
        let bad_burst = LinkConfig {
            burst_loss: Some(GilbertElliott::new(0.1, -0.1)),
            ..LinkConfig::default()
        };
        assert!(matches!(
            bad_burst.validate(),
            Err(ConfigError::Probability {
                field: "burst_loss.p_bad_to_good",
                ..
            })
        ));
        let zero_rate = LinkConfig {
            rate_bits_per_sec: Some(0),
            ..LinkConfig::default()
        };
        assert_eq!(zero_rate.validate(), Err(ConfigError::ZeroRate));
        let tiny_queue = LinkConfig {
            rate_bits_per_sec: Some(1_000_000),
            queue_bytes: 1000,
            mtu: Some(1500),
            ..LinkConfig::default()
        };
        assert_eq!(
            tiny_queue.validate(),
            Err(ConfigError::QueueTooSmall {
                queue_bytes: 1000,
                min_bytes: 1500
            })
        );
        let jittery = LinkConfig {
            latency: MS,
            jitter: MS * 100,
            ..LinkConfig::default()
        };
        assert_eq!(jittery.validate(), Ok(()));
    }

    #[test]
    fn drop_cause_displays_lowercase_words() {
        let words: Vec<String> = DropCause::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(words, ["random loss", "burst loss", "queue full", "mtu"]);
    }
}
