//! What the traffic is made of: the kinds of operation, their proportions, and the
//! seeded dice that pick them, so a run replays from its `--seed`.

use std::time::Duration;

/// What the traffic does, in proportions: mostly chat, some groups, a little of the rest.
pub(crate) const MIX: &[(Op, u32)] = &[
    (Op::Text, 40),
    (Op::GroupText, 12),
    (Op::File, 4),
    (Op::Download, 5),
    (Op::Post, 3),
    (Op::Like, 6),
    (Op::Comment, 4),
    (Op::Feed, 4),
    (Op::Presence, 6),
    (Op::Profile, 2),
    (Op::Offline, 1),
];

/// One kind of operation a client does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    /// A 1:1 text message to a friend.
    Text,
    /// A text message to one of the client's groups.
    GroupText,
    /// A small file to a friend (upload, then the file message).
    File,
    /// The recipient downloads a file it was sent (MD5 checked), then deletes its copy.
    Download,
    /// A text moment to every friend.
    Post,
    /// A like of a friend's post.
    Like,
    /// A comment on a friend's post.
    Comment,
    /// The first page of the moments feed.
    Feed,
    /// Who of the client's friends is online.
    Presence,
    /// A new signature (friends online hear of it).
    Profile,
    /// The client closes, stays away a while, opens its profile again and reconnects.
    Offline,
    /// Deleting the author's oldest post (follows a post beyond `LIVE_POSTS_PER_AUTHOR`).
    Delete,
    /// `Client::reconnect` after finding the connection down.
    Reconnect,
}

impl Op {
    /// Every kind, in the order of `index`.
    pub(crate) const ALL: [Op; 13] = [
        Op::Text,
        Op::GroupText,
        Op::File,
        Op::Download,
        Op::Post,
        Op::Like,
        Op::Comment,
        Op::Feed,
        Op::Presence,
        Op::Profile,
        Op::Offline,
        Op::Delete,
        Op::Reconnect,
    ];

    /// The kind's name in reports and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Text => "text",
            Op::GroupText => "group_text",
            Op::File => "file",
            Op::Download => "download",
            Op::Post => "post",
            Op::Like => "like",
            Op::Comment => "comment",
            Op::Feed => "feed",
            Op::Presence => "presence",
            Op::Profile => "profile",
            Op::Offline => "offline",
            Op::Delete => "delete",
            Op::Reconnect => "reconnect",
        }
    }

    /// The kind's place in `ALL` (for per-kind counters).
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// SplitMix64: a small seeded generator, so a run's choices replay from `--seed`.
pub(crate) struct Dice(pub(crate) u64);

impl Dice {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A duration between `low` and `high`.
    pub(crate) fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_millis().max(1) as u64;
        low + Duration::from_millis(self.next() % span)
    }

    /// A kind of operation, drawn in the proportions of `MIX`.
    pub(crate) fn op(&mut self) -> Op {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut roll = (self.next() % u64::from(total)) as u32;
        for &(op, weight) in MIX {
            if roll < weight {
                return op;
            }
            roll -= weight;
        }
        Op::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_sits_at_its_index() {
        for (i, op) in Op::ALL.iter().enumerate() {
            assert_eq!(op.index(), i, "{}", op.name());
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_operations() {
        let (mut a, mut b) = (Dice(19), Dice(19));
        let first: Vec<Op> = (0..50).map(|_| a.op()).collect();
        let second: Vec<Op> = (0..50).map(|_| b.op()).collect();
        assert_eq!(first, second);
        assert_ne!(first, (0..50).map(|_| Dice(20).op()).collect::<Vec<_>>());
    }

    #[test]
    fn operations_come_in_the_mix_proportions() {
        let mut dice = Dice(7);
        let draws = 100_000;
        let mut counts = [0u32; Op::ALL.len()];
        for _ in 0..draws {
            counts[dice.op().index()] += 1;
        }
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        for &(op, weight) in MIX {
            let expected = f64::from(weight) / f64::from(total);
            let seen = f64::from(counts[op.index()]) / f64::from(draws);
            assert!(
                (seen - expected).abs() < 0.01,
                "{}: {seen} vs {expected}",
                op.name()
            );
        }
        // Delete and Reconnect are never drawn: they follow from other operations.
        assert_eq!(
            counts[Op::Delete.index()] + counts[Op::Reconnect.index()],
            0
        );
    }

    #[test]
    fn ranges_are_kept() {
        let mut dice = Dice(1);
        for _ in 0..1000 {
            assert!(dice.below(7) < 7);
            let d = dice.between(Duration::from_secs(5), Duration::from_secs(40));
            assert!(d >= Duration::from_secs(5) && d < Duration::from_secs(40));
        }
    }
}
