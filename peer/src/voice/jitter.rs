//! The adaptive jitter buffer: holds received frames until their turn, and says each 20 ms
//! what to play. Pure and clocked by the caller (ms on a monotonic clock), so its
//! behaviour under jitter, loss and calm is tested in virtual time.
//!
//! - It starts playing once the first frame has waited the target delay.
//! - Each frame is due the target delay after its fastest possible arrival (its nominal
//!   time plus the quickest recent transit). A frame missing at its turn before it is due
//!   is late: the turn is concealed without moving on, which adds a frame of delay (the
//!   buffer grows under jitter). One missing once due is lost: it is recovered from the
//!   next frame's FEC data if that frame is here, otherwise concealed.
//! - When frames have waited over two frames beyond the target for a while, one frame is
//!   skipped, which removes a frame of delay (the buffer shrinks back when calm).
//! - The target is the 95th percentile of recent frames' queuing delay (their transit
//!   beyond the fastest one seen lately), plus a frame of margin.

use std::collections::{BTreeMap, VecDeque};

use super::codec::FRAME_MS;

/// Frames whose delay the target is computed over (4 s).
const DELAY_HISTORY: usize = 200;
/// The smallest and largest target delay, ms.
const MIN_TARGET_MS: u32 = 20;
const MAX_TARGET_MS: u32 = 400;
/// Frames held at most; more (a sender far ahead) are dropped, oldest first.
const MAX_FRAMES: usize = 50;
/// Consecutive turns with frames waiting over two frames beyond the target before one frame
/// is skipped.
const SHRINK_AFTER_TURNS: u32 = 25;

/// What to play for one 20 ms turn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Playout {
    /// Nothing received yet: play silence.
    Silence,
    /// Decode this frame.
    Frame {
        /// Its index.
        frame: u32,
        /// The Opus packet.
        opus: Vec<u8>,
        /// The sender's clock when it was sent (for the mouth-to-ear delay).
        sent_ms: u32,
    },
    /// The frame was lost; rebuild it from the FEC data of the next one (given).
    Recover {
        /// The lost frame's index.
        frame: u32,
        /// The next frame's Opus packet.
        next_opus: Vec<u8>,
    },
    /// The frame was lost (or is late): conceal it.
    Conceal,
}

/// What happened to a frame handed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// Kept for its turn.
    Buffered,
    /// Its turn had passed.
    Late,
    /// Held already.
    Duplicate,
}

#[derive(Debug)]
struct Held {
    opus: Vec<u8>,
    sent_ms: u32,
}

/// The buffer. See the module documentation.
#[derive(Debug, Default)]
pub struct JitterBuffer {
    frames: BTreeMap<u32, Held>,
    /// Arrival of the first frame, until playing starts.
    first_arrival_ms: Option<u64>,
    /// The next frame to play, once playing.
    next: Option<u32>,
    /// Recent (transit) samples: arrival minus the frame's nominal time.
    transits: VecDeque<i64>,
    target_ms: u32,
    above_target_turns: u32,
    /// Counters, for the statistics.
    late: u64,
    skipped: u64,
    underruns: u64,
}

impl JitterBuffer {
    /// An empty buffer with the smallest target (plus a frame).
    pub fn new() -> Self {
        Self {
            target_ms: MIN_TARGET_MS + FRAME_MS,
            ..Self::default()
        }
    }

    /// Hands in frame `frame` (sent at `sent_ms` on the sender's clock) that arrived at
    /// `now_ms`.
    pub fn push(&mut self, frame: u32, opus: Vec<u8>, sent_ms: u32, now_ms: u64) -> Arrival {
        if self.next.is_some_and(|next| frame < next) {
            self.late += 1;
            return Arrival::Late;
        }
        if self.frames.contains_key(&frame) {
            return Arrival::Duplicate;
        }
        self.note_transit(frame, now_ms);
        self.first_arrival_ms.get_or_insert(now_ms);
        self.frames.insert(frame, Held { opus, sent_ms });
        while self.frames.len() > MAX_FRAMES {
            self.frames.pop_first();
            self.skipped += 1;
        }
        Arrival::Buffered
    }

    fn note_transit(&mut self, frame: u32, now_ms: u64) {
        let nominal = i64::from(frame) * i64::from(FRAME_MS);
        let transit = i64::try_from(now_ms).unwrap_or(i64::MAX) - nominal;
        self.transits.push_back(transit);
        if self.transits.len() > DELAY_HISTORY {
            self.transits.pop_front();
        }
        let Some(fastest) = self.transits.iter().min().copied() else {
            return;
        };
        let mut delays: Vec<i64> = self.transits.iter().map(|t| t - fastest).collect();
        delays.sort_unstable();
        let p95 = delays[(delays.len() * 95 / 100).min(delays.len() - 1)];
        let p95 = u32::try_from(p95).unwrap_or(MAX_TARGET_MS);
        self.target_ms = (p95 + FRAME_MS).clamp(MIN_TARGET_MS, MAX_TARGET_MS);
    }

    /// What to play for the turn at `now_ms` (call once per 20 ms).
    pub fn pop(&mut self, now_ms: u64) -> Playout {
        let Some(next) = self.next else {
            let Some(first) = self.first_arrival_ms else {
                return Playout::Silence;
            };
            if now_ms.saturating_sub(first) < u64::from(self.target_ms) {
                return Playout::Silence;
            }
            let Some((&start, _)) = self.frames.first_key_value() else {
                return Playout::Silence;
            };
            self.next = Some(start);
            return self.pop(now_ms);
        };
        let waited = self.waited_ms(next, now_ms);
        let next = self.maybe_shrink(next, waited);
        if let Some(held) = self.frames.remove(&next) {
            self.next = Some(next.wrapping_add(1));
            return Playout::Frame {
                frame: next,
                opus: held.opus,
                sent_ms: held.sent_ms,
            };
        }
        if waited < i64::from(self.target_ms) {
            // Not due yet by the target: late rather than lost. Waiting a turn adds a
            // frame of delay.
            self.underruns += 1;
            return Playout::Conceal;
        }
        self.next = Some(next.wrapping_add(1));
        match self.frames.get(&next.wrapping_add(1)) {
            Some(following) => Playout::Recover {
                frame: next,
                next_opus: following.opus.clone(),
            },
            None => Playout::Conceal,
        }
    }

    /// How long after its fastest possible arrival frame `frame` is due now, ms: its
    /// nominal time plus the quickest recent transit, against `now_ms`.
    fn waited_ms(&self, frame: u32, now_ms: u64) -> i64 {
        let fastest = self.transits.iter().min().copied().unwrap_or(0);
        let due = i64::from(frame) * i64::from(FRAME_MS) + fastest;
        i64::try_from(now_ms).unwrap_or(i64::MAX) - due
    }

    /// Skips frame `next` (returning the one to play instead) once frames have waited over
    /// two frames beyond the target for [`SHRINK_AFTER_TURNS`] turns in a row.
    fn maybe_shrink(&mut self, next: u32, waited: i64) -> u32 {
        if waited > i64::from(self.target_ms + 2 * FRAME_MS) {
            self.above_target_turns += 1;
        } else {
            self.above_target_turns = 0;
        }
        if self.above_target_turns < SHRINK_AFTER_TURNS {
            return next;
        }
        self.above_target_turns = 0;
        self.skipped += 1;
        self.frames.remove(&next);
        let skip_to = next.wrapping_add(1);
        self.next = Some(skip_to);
        skip_to
    }

    /// Audio buffered ahead of the next turn, ms: from the next frame to the newest held.
    fn level_ms(&self, next: u32) -> u32 {
        match self.frames.last_key_value() {
            Some((&newest, _)) if newest >= next => (newest - next + 1) * FRAME_MS,
            _ => 0,
        }
    }

    /// Audio buffered now, ms.
    pub fn depth_ms(&self) -> u32 {
        match (self.next, self.frames.first_key_value()) {
            (Some(next), _) => self.level_ms(next),
            (None, Some((&first, _))) => self.level_ms(first),
            _ => 0,
        }
    }

    /// The delay the buffer aims for now, ms.
    pub fn target_ms(&self) -> u32 {
        self.target_ms
    }

    /// Frames that arrived after their turn.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Frames skipped to shrink the delay (or dropped from an overfull buffer).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Turns that found the buffer empty.
    pub fn underruns(&self) -> u64 {
        self.underruns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `turns` turns of 20 ms with frames arriving at `arrival(frame)` (None: lost);
    /// returns what was played each turn and the buffer's depth after each.
    fn simulate(
        turns: u32,
        arrival: impl Fn(u32) -> Option<u64>,
    ) -> (JitterBuffer, Vec<Playout>, Vec<u32>) {
        let mut buffer = JitterBuffer::new();
        let mut arrivals: Vec<(u64, u32)> = (0..turns)
            .filter_map(|f| arrival(f).map(|t| (t, f)))
            .collect();
        arrivals.sort_unstable();
        let mut pending = arrivals.into_iter().peekable();
        let mut played = Vec::new();
        let mut depths = Vec::new();
        for turn in 0..turns {
            // Turns run at 5 ms past each 20 ms boundary.
            let now = u64::from(turn) * 20 + 5;
            while let Some(&(at, frame)) = pending.peek() {
                if at > now {
                    break;
                }
                buffer.push(frame, vec![frame as u8], frame * 20, at);
                pending.next();
            }
            played.push(buffer.pop(now));
            depths.push(buffer.depth_ms());
        }
        (buffer, played, depths)
    }

    fn frames_played(played: &[Playout]) -> Vec<u32> {
        played
            .iter()
            .filter_map(|p| match p {
                Playout::Frame { frame, .. } => Some(*frame),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_steady_stream_plays_every_frame_in_order_after_the_target_delay() {
        let (buffer, played, _) = simulate(200, |f| Some(u64::from(f) * 20 + 10));
        assert_eq!(played[0], Playout::Silence);
        let frames = frames_played(&played);
        assert!(frames.windows(2).all(|w| w[1] == w[0] + 1), "in order");
        assert!(frames.len() >= 195, "{}", frames.len());
        assert_eq!(buffer.underruns(), 0);
        assert!(buffer.target_ms() <= 40, "{}", buffer.target_ms());
    }

    #[test]
    fn a_lost_frame_is_recovered_from_the_next_ones_fec() {
        let (_, played, _) = simulate(100, |f| (f != 50).then_some(u64::from(f) * 20 + 10));
        assert!(
            played.contains(&Playout::Recover {
                frame: 50,
                next_opus: vec![51]
            }),
            "{played:?}"
        );
        let frames = frames_played(&played);
        assert!(frames.contains(&49) && frames.contains(&51) && !frames.contains(&50));
    }

    #[test]
    fn two_lost_in_a_row_conceal_the_first_and_recover_the_second() {
        let (_, played, _) = simulate(100, |f| {
            (f != 50 && f != 51).then_some(u64::from(f) * 20 + 10)
        });
        let at = played
            .iter()
            .position(|p| {
                *p == Playout::Recover {
                    frame: 51,
                    next_opus: vec![52],
                }
            })
            .expect("51 recovered");
        assert_eq!(played[at - 1], Playout::Conceal);
    }

    /// A deterministic jitter: 10 to 210 ms of delay, per frame.
    fn jittered(f: u32) -> u64 {
        let wobble = (f.wrapping_mul(2_654_435_761) >> 16) % 201;
        u64::from(f) * 20 + 10 + u64::from(wobble)
    }

    /// Each played frame's delay, in turns, with the turn it played at.
    fn delays(played: &[Playout]) -> Vec<(usize, u32)> {
        played
            .iter()
            .enumerate()
            .filter_map(|(turn, p)| match p {
                Playout::Frame { frame, .. } => Some((turn, turn as u32 - frame)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn jitter_grows_the_buffer_and_calm_shrinks_it_back() {
        let calm_after = 500;
        let (buffer, played, _) = simulate(1500, |f| {
            Some(if f < calm_after {
                jittered(f)
            } else {
                u64::from(f) * 20 + 40
            })
        });
        let delays = delays(&played);
        let during = |range: std::ops::Range<usize>| {
            delays
                .iter()
                .filter(|(turn, _)| range.contains(turn))
                .map(|(_, d)| *d)
                .max()
                .unwrap_or(0)
        };
        let jittery = during(300..500);
        let calm = during(1300..1500);
        assert!(
            jittery >= 9,
            "grew to {jittery} turns under 200 ms of jitter"
        );
        assert!(
            calm <= 4,
            "shrank back to {calm} turns on a calm 40 ms path"
        );
        assert!(buffer.skipped() > 0);
        // Once grown, jitter of this size causes few further gaps.
        let gaps = played[300..500]
            .iter()
            .filter(|p| !matches!(p, Playout::Frame { .. }))
            .count();
        assert!(gaps <= 10, "{gaps} gaps in 200 turns");
        let frames = frames_played(&played);
        assert!(frames.windows(2).all(|w| w[1] > w[0]), "never backwards");
    }

    #[test]
    fn late_and_duplicate_frames_are_refused() {
        let mut buffer = JitterBuffer::new();
        assert_eq!(buffer.push(0, vec![0], 0, 0), Arrival::Buffered);
        assert_eq!(buffer.push(0, vec![0], 0, 1), Arrival::Duplicate);
        assert_eq!(buffer.push(1, vec![1], 20, 20), Arrival::Buffered);
        assert_eq!(
            buffer.pop(100),
            Playout::Frame {
                frame: 0,
                opus: vec![0],
                sent_ms: 0
            }
        );
        assert_eq!(buffer.push(0, vec![0], 0, 101), Arrival::Late);
        assert_eq!(buffer.late(), 1);
    }
}
