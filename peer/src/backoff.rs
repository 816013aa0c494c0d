//! Reconnect delays: exponential backoff with jitter, as a pure state machine.

use std::time::Duration;

/// Delays between reconnect attempts: 250 ms doubling to at most 30 s, each scaled by a
/// random factor in [0.5, 1.0) so that many peers dropped at once do not return in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(250), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Backoff from `base` up to `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            attempt: 0,
            base,
            max,
        }
    }

    /// The delay before the next attempt; `jitter` in [0, 1) comes from the caller's RNG.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let exp = self.base.saturating_mul(1u32 << self.attempt.min(16));
        let capped = exp.min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// Call after a successful connection.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_to_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<_> = (0..6)
            .map(|_| b.next_delay(0.999_999).as_millis())
            .collect();
        assert_eq!(d, vec![99, 199, 399, 799, 999, 999]);
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(50));
    }
}
