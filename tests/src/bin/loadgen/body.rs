//! What a load message carries and how its arrival is checked: a small header (sender,
//! its number on the sender→receiver pair, how many of the pair's earlier messages the
//! relay had acknowledged when it was sent, and the send time) padded to
//! [`BODY_BYTES`], and the [`PairCheck`] that finds lost, duplicated and reordered ones.
//!
//! Order is checked where the relay promises it: a message sent after the relay
//! acknowledged an earlier one of the same pair must arrive after it. Two sends on the
//! pair that were in flight together may be queued in either order. This module is pure.

use std::collections::BTreeSet;

/// Bytes of every message's ciphertext (wire mode) or text (real mode), as the peers'
/// tests use.
pub(crate) const BODY_BYTES: usize = 256;

/// Bytes of the header at the start of a wire body.
const HEADER_BYTES: usize = 28;

/// The header of one load message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The sender's index in its scenario.
    pub(crate) sender: u32,
    /// Its number on the sender→receiver pair, from 1.
    pub(crate) seq: u64,
    /// Every message of the pair up to this number had been acknowledged by the relay
    /// when this one was sent.
    pub(crate) acked_before: u64,
    /// When it was sent, µs since loadgen's clock started ([`crate::clock`]).
    pub(crate) sent_us: u64,
}

impl Header {
    fn bytes(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[..4].copy_from_slice(&self.sender.to_le_bytes());
        out[4..12].copy_from_slice(&self.seq.to_le_bytes());
        out[12..20].copy_from_slice(&self.acked_before.to_le_bytes());
        out[20..28].copy_from_slice(&self.sent_us.to_le_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let field = |range: std::ops::Range<usize>| -> Option<u64> {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(bytes.get(range)?);
            Some(u64::from_le_bytes(eight))
        };
        let mut four = [0u8; 4];
        four.copy_from_slice(bytes.get(..4)?);
        Some(Self {
            sender: u32::from_le_bytes(four),
            seq: field(4..12)?,
            acked_before: field(12..20)?,
            sent_us: field(20..28)?,
        })
    }

    /// A wire-mode ciphertext: the header, then `filler` (random bytes), [`BODY_BYTES`]
    /// in all.
    pub(crate) fn to_ciphertext(self, filler: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(BODY_BYTES);
        out.extend_from_slice(&self.bytes());
        out.extend(
            filler
                .iter()
                .copied()
                .cycle()
                .take(BODY_BYTES - HEADER_BYTES),
        );
        out
    }

    /// The header of a wire-mode ciphertext.
    pub(crate) fn from_ciphertext(ciphertext: &[u8]) -> Option<Self> {
        (ciphertext.len() == BODY_BYTES)
            .then(|| Self::from_bytes(ciphertext))
            .flatten()
    }

    /// A real-mode text: the header in hex, then padding, [`BODY_BYTES`] bytes in all.
    pub(crate) fn to_text(self) -> String {
        let mut text = hex::encode(self.bytes());
        text.push(' ');
        while text.len() < BODY_BYTES {
            text.push('x');
        }
        text
    }

    /// The header of a real-mode text.
    pub(crate) fn from_text(text: &str) -> Option<Self> {
        let hex_part = text.get(..HEADER_BYTES * 2)?;
        Self::from_bytes(&hex::decode(hex_part).ok()?)
    }
}

/// A set of message numbers from 1 that knows its longest run without a gap.
#[derive(Debug, Default, Clone)]
pub(crate) struct Prefix {
    /// Every number up to here is in.
    through: u64,
    /// Numbers in beyond a gap.
    ahead: BTreeSet<u64>,
}

impl Prefix {
    /// Adds `n`; false if it was in already.
    pub(crate) fn insert(&mut self, n: u64) -> bool {
        if n <= self.through || !self.ahead.insert(n) {
            return false;
        }
        while self.ahead.remove(&(self.through + 1)) {
            self.through += 1;
        }
        true
    }

    /// The longest run 1..=through that is all in.
    pub(crate) fn through(&self) -> u64 {
        self.through
    }

    /// How many numbers are in.
    pub(crate) fn len(&self) -> u64 {
        self.through + self.ahead.len() as u64
    }
}

/// What went wrong with one arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anomaly {
    /// This message arrived before.
    Duplicate {
        /// Its number on the pair.
        seq: u64,
    },
    /// It overtook an earlier message the relay had acknowledged before it was sent.
    Reordered {
        /// Its number on the pair.
        seq: u64,
        /// The earlier message that had not arrived yet.
        missing: u64,
    },
}

/// The receiving end of one sender→receiver pair.
#[derive(Debug, Default, Clone)]
pub(crate) struct PairCheck {
    received: Prefix,
}

impl PairCheck {
    /// Takes in one arrival; an anomaly if it is a duplicate or out of order.
    pub(crate) fn take(&mut self, header: &Header) -> Result<(), Anomaly> {
        if header.acked_before > self.received.through() {
            // Count it in anyway, so that one reordering is reported once.
            self.received.insert(header.seq);
            return Err(Anomaly::Reordered {
                seq: header.seq,
                missing: self.received.through() + 1,
            });
        }
        if self.received.insert(header.seq) {
            Ok(())
        } else {
            Err(Anomaly::Duplicate { seq: header.seq })
        }
    }

    /// Messages received (each counted once).
    pub(crate) fn received(&self) -> u64 {
        self.received.len()
    }
}

/// The sending end of one sender→receiver pair: numbers messages and remembers which
/// ones the relay acknowledged.
#[derive(Debug, Default, Clone)]
pub(crate) struct PairSend {
    issued: u64,
    acked: Prefix,
}

impl PairSend {
    /// The header of the pair's next message.
    pub(crate) fn next(&mut self, sender: u32, sent_us: u64) -> Header {
        self.issued += 1;
        Header {
            sender,
            seq: self.issued,
            acked_before: self.acked.through(),
            sent_us,
        }
    }

    /// The relay acknowledged message `seq`.
    pub(crate) fn acked(&mut self, seq: u64) {
        self.acked.insert(seq);
    }

    /// Messages the relay acknowledged.
    pub(crate) fn acked_count(&self) -> u64 {
        self.acked.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u64, acked_before: u64) -> Header {
        Header {
            sender: 3,
            seq,
            acked_before,
            sent_us: 99,
        }
    }

    #[test]
    fn headers_round_trip_in_both_forms() {
        let h = Header {
            sender: 49,
            seq: 1 << 40,
            acked_before: 7,
            sent_us: 123_456_789,
        };
        let ciphertext = h.to_ciphertext(&[0xab; 5]);
        assert_eq!(ciphertext.len(), BODY_BYTES);
        assert_eq!(Header::from_ciphertext(&ciphertext), Some(h));
        let text = h.to_text();
        assert_eq!(text.len(), BODY_BYTES);
        assert_eq!(Header::from_text(&text), Some(h));
        assert_eq!(Header::from_ciphertext(&ciphertext[..100]), None);
        assert_eq!(Header::from_text("not hex at all"), None);
    }

    #[test]
    fn in_flight_messages_may_swap_but_acknowledged_ones_may_not() {
        let mut check = PairCheck::default();
        // 1 and 2 were in flight together: either order is fine.
        assert_eq!(check.take(&header(2, 0)), Ok(()));
        assert_eq!(check.take(&header(1, 0)), Ok(()));
        // 4 was sent after 3 was acknowledged, so it must not come first.
        assert_eq!(
            check.take(&header(4, 3)),
            Err(Anomaly::Reordered { seq: 4, missing: 3 })
        );
        assert_eq!(check.take(&header(3, 2)), Ok(()));
        assert_eq!(check.received(), 4);
    }

    #[test]
    fn a_message_taken_twice_is_a_duplicate() {
        let mut check = PairCheck::default();
        assert_eq!(check.take(&header(1, 0)), Ok(()));
        assert_eq!(check.take(&header(3, 1)), Ok(()));
        assert_eq!(
            check.take(&header(1, 0)),
            Err(Anomaly::Duplicate { seq: 1 })
        );
        assert_eq!(
            check.take(&header(3, 1)),
            Err(Anomaly::Duplicate { seq: 3 })
        );
        assert_eq!(check.received(), 2);
    }

    #[test]
    fn the_sender_numbers_and_counts_acknowledgements() {
        let mut pair = PairSend::default();
        let first = pair.next(0, 1);
        let second = pair.next(0, 2);
        assert_eq!((first.seq, first.acked_before), (1, 0));
        assert_eq!((second.seq, second.acked_before), (2, 0));
        pair.acked(2);
        assert_eq!(pair.next(0, 3).acked_before, 0, "1 is not acknowledged yet");
        pair.acked(1);
        assert_eq!(pair.next(0, 4).acked_before, 2);
        assert_eq!(pair.acked_count(), 2);
    }
}
