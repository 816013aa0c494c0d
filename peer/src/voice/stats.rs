//! Call statistics, pure: loss and jitter of the frames received (RFC 3550's interarrival
//! jitter), round-trip time and clock offset from probes, the mouth-to-ear delay of
//! played frames, and what the decoder had to do. Interval figures reset every report;
//! totals make the summary at hang-up.

use super::codec::{FRAME_MS, OPUS_LOOKAHEAD_MS};

/// Which way the voice goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallPath {
    /// Through the relay.
    Relay,
    /// Straight between the peers.
    Direct,
}

impl CallPath {
    /// The name the CLI prints.
    pub fn as_str(self) -> &'static str {
        match self {
            CallPath::Relay => "relay",
            CallPath::Direct => "direct",
        }
    }
}

/// One second's figures, as the UI and `call_stats` show them.
#[derive(Clone, Debug, PartialEq)]
pub struct CallStats {
    /// Which way the voice goes.
    pub path: CallPath,
    /// Frames lost over the interval, as a fraction (0 to 1).
    pub loss: f64,
    /// Interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Round-trip time to the other peer, ms, once measured.
    pub rtt_ms: Option<f64>,
    /// Audio waiting in the jitter buffer, ms.
    pub buffer_ms: u32,
    /// The jitter buffer's target delay, ms.
    pub target_ms: u32,
    /// The encoder's target bitrate, bit/s.
    pub bitrate: i32,
    /// Mean mouth-to-ear delay of the frames played over the interval, ms: from a
    /// sound's capture to its playout (the frame's own 20 ms, Opus's lookahead, the
    /// network and the jitter buffer; sound-card buffers excluded).
    pub mouth_to_ear_ms: Option<f64>,
    /// Lost frames rebuilt from FEC data, since the call started.
    pub fec_recovered: u64,
    /// Frames concealed, since the call started.
    pub concealed: u64,
    /// Frames sent and received since the call started.
    pub frames_sent: u64,
    /// Frames received since the call started.
    pub frames_received: u64,
}

/// The whole call, at hang-up.
#[derive(Clone, Debug, PartialEq)]
pub struct CallSummary {
    /// Seconds from connection to hang-up.
    pub duration_s: f64,
    /// Which way the voice went at the end.
    pub path: CallPath,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Frames the other side sent that never arrived in time, as a fraction.
    pub loss: f64,
    /// Lost frames rebuilt from FEC data.
    pub fec_recovered: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Mean mouth-to-ear delay over the call, ms.
    pub mouth_to_ear_ms: Option<f64>,
    /// Mean round-trip time, ms.
    pub rtt_ms: Option<f64>,
    /// Highest interarrival jitter seen in a report, ms.
    pub max_jitter_ms: f64,
}

/// Tracks what arrives and what is played. Times are ms on this side's call clock
/// (`local`) or the sender's (`remote`).
#[derive(Debug, Default)]
pub struct Receiver {
    /// Highest frame index received, and the first.
    first_frame: Option<u32>,
    highest_frame: u32,
    received: u64,
    /// At the last report.
    expected_at_report: u64,
    received_at_report: u64,
    /// RFC 3550 jitter state.
    jitter: f64,
    last_transit: Option<i64>,
    max_jitter: f64,
    /// Decoder outcomes.
    fec_recovered: u64,
    concealed: u64,
    /// Mouth-to-ear sums.
    delay_sum: f64,
    delay_count: u64,
    interval_delay_sum: f64,
    interval_delay_count: u64,
    /// Clock offset (remote minus local) and RTT from the best probe so far.
    best_rtt: Option<f64>,
    offset_ms: Option<f64>,
    rtt_sum: f64,
    rtt_count: u64,
    last_rtt: Option<f64>,
}

impl Receiver {
    /// A frame arrived at `local_ms`, sent at `remote_ms`.
    pub fn frame_arrived(&mut self, frame: u32, remote_ms: u32, local_ms: u64) {
        match self.first_frame {
            None => {
                self.first_frame = Some(frame);
                self.highest_frame = frame;
            }
            Some(_) => self.highest_frame = self.highest_frame.max(frame),
        }
        self.received += 1;
        let transit = i64::try_from(local_ms).unwrap_or(i64::MAX) - i64::from(remote_ms);
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs() as f64;
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// A frame was rebuilt from FEC data.
    pub fn recovered(&mut self) {
        self.fec_recovered += 1;
    }

    /// A frame was concealed.
    pub fn concealed(&mut self) {
        self.concealed += 1;
    }

    /// A frame sent at `remote_ms` started playing at `local_ms`.
    pub fn played(&mut self, remote_ms: u32, local_ms: u64) {
        let Some(offset) = self.offset_ms else {
            return;
        };
        let captured_local = f64::from(remote_ms) - offset;
        // The frame's first sample was captured a frame before it was complete, and the
        // decoder's output lags by the encoder's lookahead.
        let delay = local_ms as f64 - captured_local + f64::from(FRAME_MS) + OPUS_LOOKAHEAD_MS;
        self.delay_sum += delay;
        self.delay_count += 1;
        self.interval_delay_sum += delay;
        self.interval_delay_count += 1;
    }

    /// A probe sent at `sent_local` was answered at `remote_at` and the answer arrived at
    /// `now_local`: RTT, and the clock offset from the quickest probe (NTP's estimate).
    pub fn probe_answered(&mut self, sent_local: u32, remote_at: u32, now_local: u64) {
        let now = now_local as f64;
        let rtt = now - f64::from(sent_local);
        if rtt < 0.0 {
            return;
        }
        self.last_rtt = Some(rtt);
        self.rtt_sum += rtt;
        self.rtt_count += 1;
        if self.best_rtt.is_none_or(|best| rtt <= best) {
            self.best_rtt = Some(rtt);
            self.offset_ms = Some(f64::from(remote_at) - (f64::from(sent_local) + now) / 2.0);
        }
    }

    /// Frames the sender sent up to the highest received (lost ones included).
    fn expected(&self) -> u64 {
        self.first_frame
            .map_or(0, |first| u64::from(self.highest_frame - first) + 1)
    }

    /// The interval's loss fraction and jitter, for the report to the sender; starts the
    /// next interval.
    pub fn take_interval(&mut self) -> (f64, f64, Option<f64>) {
        let expected = self.expected() - self.expected_at_report;
        let received = self.received - self.received_at_report;
        let loss = if expected == 0 {
            0.0
        } else {
            (expected.saturating_sub(received)) as f64 / expected as f64
        };
        self.expected_at_report = self.expected();
        self.received_at_report = self.received;
        self.max_jitter = self.max_jitter.max(self.jitter);
        let delay = (self.interval_delay_count > 0)
            .then(|| self.interval_delay_sum / self.interval_delay_count as f64);
        self.interval_delay_sum = 0.0;
        self.interval_delay_count = 0;
        (loss, self.jitter, delay)
    }

    /// The last RTT measured, ms.
    pub fn rtt_ms(&self) -> Option<f64> {
        self.last_rtt
    }

    /// Lost frames rebuilt so far.
    pub fn fec_recovered(&self) -> u64 {
        self.fec_recovered
    }

    /// Frames concealed so far.
    pub fn concealed_count(&self) -> u64 {
        self.concealed
    }

    /// Frames received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The summary's receiving figures: loss over the call, mean delay, mean RTT, max
    /// jitter.
    pub fn totals(&self) -> (f64, Option<f64>, Option<f64>, f64) {
        let expected = self.expected();
        let loss = if expected == 0 {
            0.0
        } else {
            expected.saturating_sub(self.received) as f64 / expected as f64
        };
        let delay = (self.delay_count > 0).then(|| self.delay_sum / self.delay_count as f64);
        let rtt = (self.rtt_count > 0).then(|| self.rtt_sum / self.rtt_count as f64);
        (loss, delay, rtt, self.max_jitter.max(self.jitter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_counts_the_gaps_up_to_the_newest_frame_per_interval() {
        let mut rx = Receiver::default();
        for f in (0..100).filter(|f| f % 10 != 3) {
            rx.frame_arrived(f, f * 20, u64::from(f) * 20 + 50);
        }
        let (loss, jitter, _) = rx.take_interval();
        assert!((loss - 0.10).abs() < 1e-9, "{loss}");
        assert!(jitter < 0.01, "steady arrivals: {jitter}");
        for f in 100..150 {
            rx.frame_arrived(f, f * 20, u64::from(f) * 20 + 50);
        }
        assert_eq!(rx.take_interval().0, 0.0);
        assert!((rx.totals().0 - 10.0 / 150.0).abs() < 1e-9);
    }

    #[test]
    fn jitter_follows_rfc_3550() {
        let mut rx = Receiver::default();
        // Alternating 0 and 20 ms extra delay: |D| = 20 each time, J converges to 20.
        for f in 0..500u32 {
            let extra = if f % 2 == 0 { 0 } else { 20 };
            rx.frame_arrived(f, f * 20, u64::from(f) * 20 + extra);
        }
        let (_, jitter, _) = rx.take_interval();
        assert!((jitter - 20.0).abs() < 0.5, "{jitter}");
    }

    #[test]
    fn the_clock_offset_from_probes_gives_the_mouth_to_ear_delay() {
        let mut rx = Receiver::default();
        // The remote clock runs 1,000 ms ahead; the path takes 30 ms each way.
        rx.probe_answered(100, 1_130, 160);
        assert_eq!(rx.rtt_ms(), Some(60.0));
        // Sent at remote 2,000 (local 1,000), played at local 1,080: 80 ms, plus the
        // frame and the codec's lookahead.
        rx.played(2_000, 1_080);
        let (_, _, delay) = rx.take_interval();
        assert_eq!(delay, Some(100.0 + OPUS_LOOKAHEAD_MS));
    }
}
