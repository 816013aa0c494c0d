//! Bursty loss: the Gilbert–Elliott model, a two-state Markov chain (good, bad) with a loss
//! probability per state.
//!
//! Real paths lose datagrams in bursts (a fading radio, a full router queue, a handover)
//! rather than independently; a burst hurts voice and FEC far more than the same average
//! loss spread out. [`GilbertElliott`] is the configuration, [`BurstLoss`] the running
//! chain. With the defaults (no loss in the good state, all lost in the bad state) a burst
//! is exactly one stay in the bad state, so its length is geometric with mean
//! `1 / p_bad_to_good`.
//!
//! The chain steps once per datagram that reaches it, not per unit of time: an idle link
//! does not change state.

use rand::{Rng, RngExt};

/// Configuration of a Gilbert–Elliott loss process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GilbertElliott {
    /// Probability of moving from the good to the bad state at each datagram.
    pub p_good_to_bad: f64,
    /// Probability of moving from the bad to the good state at each datagram.
    pub p_bad_to_good: f64,
    /// Loss probability in the good state (default 0).
    pub loss_in_good: f64,
    /// Loss probability in the bad state (default 1).
    pub loss_in_bad: f64,
}

impl GilbertElliott {
    /// The classic Gilbert model: transitions as given, no loss when good, all lost when bad.
    pub fn new(p_good_to_bad: f64, p_bad_to_good: f64) -> Self {
        Self {
            p_good_to_bad,
            p_bad_to_good,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        }
    }

    /// Long-run fraction of time in the bad state: `p_good_to_bad / (p_good_to_bad +
    /// p_bad_to_good)`. A chain that never moves stays in its starting (good) state: 0.
    pub fn stationary_bad(&self) -> f64 {
        let sum = self.p_good_to_bad + self.p_bad_to_good;
        if sum > 0.0 {
            self.p_good_to_bad / sum
        } else {
            0.0
        }
    }

    /// Stationary loss probability: `pi_bad * loss_in_bad + pi_good * loss_in_good`.
    pub fn mean_loss(&self) -> f64 {
        let bad = self.stationary_bad();
        bad * self.loss_in_bad + (1.0 - bad) * self.loss_in_good
    }

    /// Mean number of consecutive datagrams spent in the bad state (`1 / p_bad_to_good`,
    /// infinite if the chain never leaves it). With the default per-state losses this is
    /// the mean burst length.
    pub fn mean_bad_run(&self) -> f64 {
        1.0 / self.p_bad_to_good
    }

    /// The four probabilities with their field names, for validation.
    pub(crate) fn probabilities(&self) -> [(&'static str, f64); 4] {
        [
            ("burst_loss.p_good_to_bad", self.p_good_to_bad),
            ("burst_loss.p_bad_to_good", self.p_bad_to_good),
            ("burst_loss.loss_in_good", self.loss_in_good),
            ("burst_loss.loss_in_bad", self.loss_in_bad),
        ]
    }
}

/// A running Gilbert–Elliott chain. It starts in the good state.
#[derive(Clone, Debug)]
pub struct BurstLoss {
    model: GilbertElliott,
    bad: bool,
}

impl BurstLoss {
    /// A chain for `model`, in the good state.
    pub fn new(model: GilbertElliott) -> Self {
        Self { model, bad: false }
    }

    /// Whether the chain is in the bad state now.
    pub fn is_bad(&self) -> bool {
        self.bad
    }

    /// The Gilbert–Elliott parameters the chain was made with.
    pub fn model(&self) -> &GilbertElliott {
        &self.model
    }

    /// One datagram: steps the chain, then draws whether the datagram is lost in the new
    /// state.
    pub fn lose(&mut self, rng: &mut impl Rng) -> bool {
        let leave = if self.bad {
            self.model.p_bad_to_good
        } else {
            self.model.p_good_to_bad
        };
        if chance(rng, leave) {
            self.bad = !self.bad;
        }
        let loss = if self.bad {
            self.model.loss_in_bad
        } else {
            self.model.loss_in_good
        };
        chance(rng, loss)
    }
}

/// True with probability `p`. Probabilities of 0 and 1 (and anything outside, or NaN) take
/// no draw from `rng`: below 0 and NaN are never, above 1 always. Never panics.
pub(crate) fn chance(rng: &mut impl Rng, p: f64) -> bool {
    if p >= 1.0 {
        true
    } else if p > 0.0 {
        rng.random::<f64>() < p
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn mean_loss_follows_the_stationary_distribution() {
        let ge = GilbertElliott::new(0.01, 0.24);
        assert!((ge.mean_loss() - 0.04).abs() < 1e-12);
        let mixed = GilbertElliott {
            loss_in_good: 0.01,
            loss_in_bad: 0.5,
            ..GilbertElliott::new(0.1, 0.3)
        };
        assert!((mixed.mean_loss() - (0.25 * 0.5 + 0.75 * 0.01)).abs() < 1e-12);
        assert_eq!(GilbertElliott::new(0.0, 0.0).mean_loss(), 0.0);
        assert_eq!(GilbertElliott::new(0.01, 0.25).mean_bad_run(), 4.0);
    }

    #[test]
    fn chain_starts_good_and_never_loses_while_good_by_default() {
        let mut chain = BurstLoss::new(GilbertElliott::new(0.0, 0.5));
        let mut rng = StdRng::seed_from_u64(1);
        assert!(!chain.is_bad());
        assert!((0..1000).all(|_| !chain.lose(&mut rng)));
    }

    #[test]
    fn chain_loss_rate_matches_mean_loss() {
        let ge = GilbertElliott::new(0.02, 0.2);
        let mut chain = BurstLoss::new(ge);
        let mut rng = StdRng::seed_from_u64(7);
        let n = 100_000;
        let lost = (0..n).filter(|_| chain.lose(&mut rng)).count();
        let measured = lost as f64 / n as f64;
        assert!(
            (measured - ge.mean_loss()).abs() < 0.01,
            "measured {measured}, expected {}",
            ge.mean_loss()
        );
    }
}
