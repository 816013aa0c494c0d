//! The rate limiter: a serializing queue in front of a link of fixed bit rate, with a
//! bounded queue and tail drop.
//!
//! The link sends one datagram at a time, taking `len * 8 / rate` seconds for each: a
//! datagram offered at `now` departs (its last bit leaves) at
//! `max(now, link_free_at) + len * 8 / rate`, and the link is then busy until that moment.
//! The bytes still waiting at `now` (the backlog) are what the link has yet to send:
//! `(link_free_at - now) * rate / 8`, counting the datagram on the wire by its unsent part.
//! A datagram that would push the backlog above the queue size is dropped (tail drop), as
//! a router's FIFO does when its buffer is full.
//!
//! With no rate every datagram departs the moment it is offered and nothing queues.
//!
//! Pure: time comes in as `now` (virtual, since the start of the simulation).

use std::time::Duration;

/// Nanoseconds per second, for the integer arithmetic below.
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A datagram did not fit in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("queue full: {backlog_bytes} B waiting + {len_bytes} B offered > {queue_bytes} B queue")]
pub struct QueueFull {
    /// Bytes waiting when the datagram came.
    pub backlog_bytes: usize,
    /// The datagram's size.
    pub len_bytes: usize,
    /// The queue's size.
    pub queue_bytes: usize,
}

/// A serializing queue with a bit rate and a bounded buffer.
///
/// Calling order: [`offer`](Self::offer) each datagram with a non-decreasing `now`; an
/// earlier `now` than a previous call is treated as that call's `now`.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    rate_bits_per_sec: Option<u64>,
    queue_bytes: usize,
    /// When the link finishes sending everything accepted so far.
    free_at: Duration,
    /// The latest `now` seen.
    last_now: Duration,
    peak_bytes: usize,
}

impl RateLimiter {
    /// A limiter sending at `rate_bits_per_sec` (no limit if `None`; a rate of 0 passes
    /// nothing) with room for `queue_bytes` waiting bytes.
    pub fn new(rate_bits_per_sec: Option<u64>, queue_bytes: usize) -> Self {
        Self {
            rate_bits_per_sec,
            queue_bytes,
            free_at: Duration::ZERO,
            last_now: Duration::ZERO,
            peak_bytes: 0,
        }
    }

    /// The configured rate, if any.
    pub fn rate_bits_per_sec(&self) -> Option<u64> {
        self.rate_bits_per_sec
    }

    /// The queue's size in bytes.
    pub fn queue_bytes(&self) -> usize {
        self.queue_bytes
    }

    /// How long the link takes to send `len_bytes` (zero without a limit, rounded up to
    /// the nanosecond, `Duration::MAX` at a rate of 0).
    pub fn serialization_time(&self, len_bytes: usize) -> Duration {
        match self.rate_bits_per_sec {
            None => Duration::ZERO,
            Some(0) => Duration::MAX,
            Some(rate) => {
                let bits = len_bytes as u128 * 8;
                let nanos = (bits * NANOS_PER_SEC).div_ceil(u128::from(rate));
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
        }
    }

    /// Bytes accepted but not yet sent at `now` (always 0 without a limit).
    pub fn backlog_bytes(&self, now: Duration) -> usize {
        let Some(rate) = self.rate_bits_per_sec else {
            return 0;
        };
        let now = now.max(self.last_now);
        let remaining = self.free_at.saturating_sub(now).as_nanos();
        // Rounded down: each datagram's serialization time was rounded up, so rounding
        // up here would count a phantom byte per datagram.
        let bytes = remaining.saturating_mul(u128::from(rate)) / (8 * NANOS_PER_SEC);
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    /// Offers a datagram of `len_bytes` at `now`: its departure time (when its last bit
    /// has left), or [`QueueFull`] if it does not fit behind the backlog.
    pub fn offer(&mut self, now: Duration, len_bytes: usize) -> Result<Duration, QueueFull> {
        let now = now.max(self.last_now);
        self.last_now = now;
        match self.rate_bits_per_sec {
            None => Ok(now),
            Some(_) => {
                let backlog_bytes = self.backlog_bytes(now);
                let full = QueueFull {
                    backlog_bytes,
                    len_bytes,
                    queue_bytes: self.queue_bytes,
                };
                if backlog_bytes.saturating_add(len_bytes) > self.queue_bytes
                    || self.rate_bits_per_sec == Some(0)
                {
                    return Err(full);
                }
                let departure = self
                    .free_at
                    .max(now)
                    .saturating_add(self.serialization_time(len_bytes));
                self.free_at = departure;
                self.peak_bytes = self.peak_bytes.max(self.backlog_bytes(now));
                Ok(departure)
            }
        }
    }

    /// The most bytes ever waiting (right after accepting a datagram).
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    /// When the link will have sent everything accepted so far.
    pub fn free_at(&self) -> Duration {
        self.free_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn unlimited_departs_at_once_and_never_queues() {
        let mut rate = RateLimiter::new(None, 0);
        for i in 0..100 {
            assert_eq!(rate.offer(MS * i, 65_000), Ok(MS * i));
        }
        assert_eq!(rate.backlog_bytes(MS * 100), 0);
        assert_eq!(rate.peak_bytes(), 0);
    }

    #[test]
    fn idle_link_departs_after_serialization_time() {
        // 1000 bytes at 1 Mbit/s: 8 ms.
        let mut rate = RateLimiter::new(Some(1_000_000), 10_000);
        assert_eq!(rate.serialization_time(1000), MS * 8);
        assert_eq!(rate.offer(MS * 100, 1000), Ok(MS * 108));
        // The link is idle again by 200 ms.
        assert_eq!(rate.offer(MS * 200, 1000), Ok(MS * 208));
    }

    #[test]
    fn back_to_back_datagrams_serialize_one_after_another() {
        let mut rate = RateLimiter::new(Some(1_000_000), 10_000);
        assert_eq!(rate.offer(Duration::ZERO, 1000), Ok(MS * 8));
        assert_eq!(rate.offer(Duration::ZERO, 1000), Ok(MS * 16));
        assert_eq!(rate.offer(MS, 1000), Ok(MS * 24));
        assert_eq!(rate.backlog_bytes(MS * 2), 2750);
        assert_eq!(rate.backlog_bytes(MS * 24), 0);
        assert_eq!(rate.peak_bytes(), 2875);
    }

    #[test]
    fn tail_drops_when_backlog_plus_datagram_exceeds_queue() {
        let mut rate = RateLimiter::new(Some(1_000_000), 2500);
        assert!(rate.offer(Duration::ZERO, 1000).is_ok());
        assert!(rate.offer(Duration::ZERO, 1000).is_ok());
        assert_eq!(
            rate.offer(Duration::ZERO, 1000),
            Err(QueueFull {
                backlog_bytes: 2000,
                len_bytes: 1000,
                queue_bytes: 2500
            })
        );
        // A dropped datagram does not occupy the link.
        assert_eq!(rate.free_at(), MS * 16);
        // Once 500 bytes have gone (4 ms), another 1000-byte datagram fits.
        assert_eq!(rate.offer(MS * 4, 1000), Ok(MS * 24));
    }

    #[test]
    fn zero_rate_passes_nothing() {
        let mut rate = RateLimiter::new(Some(0), 10_000);
        assert!(rate.offer(Duration::ZERO, 1).is_err());
    }

    #[test]
    fn earlier_now_is_treated_as_the_latest_now() {
        let mut rate = RateLimiter::new(Some(8_000_000), 100_000);
        assert_eq!(rate.offer(MS * 10, 1000), Ok(MS * 11));
        // A caller whose clock read went backwards does not get a departure in the past.
        assert_eq!(rate.offer(MS * 5, 1000), Ok(MS * 12));
    }

    #[test]
    fn saturated_limiter_sends_at_its_rate() {
        let mut rate = RateLimiter::new(Some(1_000_000), 64 * 1024);
        let mut accepted_bytes = 0u64;
        let mut last = Duration::ZERO;
        // 1200 bytes every 5 ms is 1.92 Mbit/s offered for 20 s.
        for i in 0..4000 {
            if let Ok(departure) = rate.offer(MS * 5 * i, 1200) {
                accepted_bytes += 1200;
                last = departure;
            }
        }
        let bits_per_sec = accepted_bytes as f64 * 8.0 / last.as_secs_f64();
        assert!((bits_per_sec - 1e6).abs() < 1e4, "{bits_per_sec}");
    }
}
