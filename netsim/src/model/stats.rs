//! Counters of one direction of a link: what was sent, delivered, dropped (and why),
//! duplicated and reordered, and how full the queue got.
//!
//! [`Link`](super::link::Link) updates them on every `send`; they only count, they never
//! influence a verdict.

use std::collections::BTreeMap;
use std::fmt;

use super::link::DropCause;

/// Counters of one link direction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkStats {
    /// Datagrams offered to the link (every call to `send`, dropped or not).
    pub sent: u64,
    /// Arrivals, duplicates included: a duplicated datagram counts twice.
    pub delivered: u64,
    /// Datagrams delivered twice.
    pub duplicated: u64,
    /// Datagrams chosen for reordering (exempt from FIFO order and given extra delay); one
    /// may still arrive in order if nothing overtakes it.
    pub reordered: u64,
    /// Bytes offered to the link.
    pub bytes_sent: u64,
    /// Bytes of all arrivals, duplicates included.
    pub bytes_delivered: u64,
    /// Dropped datagrams by cause; causes that never happened are absent.
    pub dropped: BTreeMap<DropCause, u64>,
    /// The most bytes ever waiting in the rate limiter's queue (0 without a rate limit).
    pub queue_peak_bytes: usize,
}

impl LinkStats {
    /// All dropped datagrams, whatever the cause.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Datagrams dropped for `cause`.
    pub fn dropped_by(&self, cause: DropCause) -> u64 {
        self.dropped.get(&cause).copied().unwrap_or(0)
    }

    /// Dropped datagrams as a fraction of those sent (0 when nothing was sent).
    pub fn loss_ratio(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.dropped_total() as f64 / self.sent as f64
        }
    }

    /// Counts one drop for `cause`.
    pub(crate) fn record_drop(&mut self, cause: DropCause) {
        *self.dropped.entry(cause).or_insert(0) += 1;
    }
}

impl fmt::Display for LinkStats {
    /// One line, e.g. `sent 100, delivered 95, dropped 5 (random loss 5), duplicated 0,
    /// reordered 0, 12.3 KB sent, queue peak 0 B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, delivered {}, dropped {}",
            self.sent,
            self.delivered,
            self.dropped_total()
        )?;
        if !self.dropped.is_empty() {
            let causes: Vec<String> = self
                .dropped
                .iter()
                .map(|(cause, n)| format!("{cause} {n}"))
                .collect();
            write!(f, " ({})", causes.join(", "))?;
        }
        write!(
            f,
            ", duplicated {}, reordered {}, {} sent, queue peak {}",
            self.duplicated,
            self.reordered,
            Bytes(self.bytes_sent),
            Bytes(self.queue_peak_bytes as u64)
        )
    }
}

/// A byte count in decimal units (B, KB, MB, GB), one decimal above bytes.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, f64); 3] = [("GB", 1e9), ("MB", 1e6), ("KB", 1e3)];
        let n = self.0 as f64;
        for (unit, size) in UNITS {
            if n >= size {
                return write!(f, "{:.1} {unit}", n / size);
            }
        }
        write!(f, "{} B", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_readable_line() {
        let mut stats = LinkStats {
            sent: 100,
            delivered: 95,
            bytes_sent: 12_345,
            ..LinkStats::default()
        };
        for _ in 0..5 {
            stats.record_drop(DropCause::RandomLoss);
        }
        assert_eq!(
            stats.to_string(),
            "sent 100, delivered 95, dropped 5 (random loss 5), duplicated 0, reordered 0, \
             12.3 KB sent, queue peak 0 B"
        );
    }

    #[test]
    fn display_lists_every_drop_cause() {
        let mut stats = LinkStats::default();
        stats.record_drop(DropCause::QueueFull);
        stats.record_drop(DropCause::Mtu);
        stats.record_drop(DropCause::Mtu);
        let line = stats.to_string();
        assert!(line.contains("dropped 3 (queue full 1, mtu 2)"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn loss_ratio_counts_drops_over_sent_and_is_zero_when_idle() {
        assert_eq!(LinkStats::default().loss_ratio(), 0.0);
        let mut stats = LinkStats {
            sent: 4,
            ..LinkStats::default()
        };
        stats.record_drop(DropCause::BurstLoss);
        assert_eq!(stats.loss_ratio(), 0.25);
        assert_eq!(stats.dropped_by(DropCause::BurstLoss), 1);
        assert_eq!(stats.dropped_by(DropCause::RandomLoss), 0);
    }
}
