//! The outbox's rules, with no I/O: the order entries go in ([`OutboxRun`]), what the
//! relay's answer to one means for it ([`judge`]), and which key shares an answer proves
//! given ([`shares_given`]). The courier's `run_outbox` and `deliver_group` ask these
//! and carry the answers out against the relay and the store.

use std::collections::VecDeque;
use uchat_wire::reply;

use crate::store::OutboxEntry;
use uchat_wire::{ErrorCode, ErrorReply, KeyShare, MessageId, UserName};

use crate::connection::ConnectionError;

/// What became of one outbox entry.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// The relay queued it at `relay_ts_ms` (its clock): the entry leaves the outbox and
    /// its history entry is marked sent.
    Sent {
        /// When the relay queued it.
        relay_ts_ms: u64,
    },
    /// The relay will never take it: the entry leaves the outbox and its history entry
    /// is marked failed, with the relay's words.
    Refused(ErrorReply),
    /// It stays in the outbox for the next attempt.
    Later(ConnectionError),
}

/// Refusals that retrying cannot fix. Everything else (a full queue, rate limiting, an
/// expired session, a relay error) leaves the message in the outbox.
pub(crate) fn is_permanent(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::UnknownUser
            | ErrorCode::NotFriends
            | ErrorCode::BlockedByYou
            | ErrorCode::InvalidUsername
            | ErrorCode::TooLarge
            | ErrorCode::FrameTooLarge
            | ErrorCode::Malformed
            | ErrorCode::BadKeys
            | ErrorCode::ProtocolViolation
            | ErrorCode::NoSuchGroup
            | ErrorCode::NotGroupMember
            // A code this build does not know: retrying would meet it again forever.
            | ErrorCode::Unknown
    )
}

/// What the relay's answer to a `Send` or `GroupSend` (or the failure to get one) means
/// for the entry. Another kind of answer than `Sent` proves nothing: the entry waits.
pub(crate) fn judge(answer: Result<reply::Sent, ConnectionError>) -> Delivery {
    match answer {
        Ok(sent) => Delivery::Sent {
            relay_ts_ms: sent.relay_ts_ms,
        },
        Err(ConnectionError::Refused(error)) if is_permanent(error.code) => {
            Delivery::Refused(error)
        }
        Err(other) => Delivery::Later(other),
    }
}

/// The members a group message's key shares (`shares`) count as given to after the
/// relay's `answer`: the ones it carried less those the relay says it did not queue, and
/// only when the relay took the message for the first time (a duplicate carried nothing).
pub(crate) fn shares_given(
    shares: &[KeyShare],
    answer: &Result<reply::Sent, ConnectionError>,
) -> Vec<UserName> {
    match answer {
        Ok(reply::Sent {
            duplicate: false,
            unshared,
            ..
        }) => shares
            .iter()
            .map(|share| &share.to)
            .filter(|to| !unshared.contains(to))
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

/// One run through the outbox, oldest entry first. It ends at the first entry that must
/// wait: sending a later one before it would reorder the conversation. A refused entry
/// does not hold up the ones after it.
#[derive(Debug)]
pub(crate) struct OutboxRun {
    waiting: VecDeque<OutboxEntry>,
    /// The entries someone waits for, with what became of each once the run reached it.
    watched: Vec<(MessageId, Option<Delivery>)>,
    stopped: bool,
}

impl OutboxRun {
    /// A run over `entries` (the outbox, oldest first) that reports what became of each
    /// of `watches` the run reaches.
    pub(crate) fn new(
        entries: Vec<OutboxEntry>,
        watches: impl IntoIterator<Item = MessageId>,
    ) -> Self {
        Self {
            waiting: entries.into(),
            watched: watches.into_iter().map(|id| (id, None)).collect(),
            stopped: false,
        }
    }

    /// The entry to hand to the relay next; `None` once the run is over.
    pub(crate) fn next_entry(&mut self) -> Option<OutboxEntry> {
        if self.stopped {
            return None;
        }
        self.waiting.pop_front()
    }

    /// Records what became of entry `id`, the one last handed out.
    pub(crate) fn settled(&mut self, id: MessageId, delivery: Delivery) {
        if matches!(delivery, Delivery::Later(_)) {
            self.stopped = true;
        }
        if let Some((_, outcome)) = self.watched.iter_mut().find(|(watch, _)| *watch == id) {
            *outcome = Some(delivery);
        }
    }

    /// What became of watched entry `id`, if the run reached it (told once).
    pub(crate) fn outcome_of(&mut self, id: MessageId) -> Option<Delivery> {
        self.watched
            .iter_mut()
            .find(|(watch, _)| *watch == id)
            .and_then(|(_, outcome)| outcome.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> OutboxEntry {
        OutboxEntry {
            id: MessageId([n; 16]),
            to: UserName::parse("bob").expect("a valid name"),
            ciphertext: vec![n],
            created_ms: u64::from(n),
            group: None,
        }
    }

    fn refused(code: ErrorCode) -> ConnectionError {
        ConnectionError::Refused(ErrorReply {
            code,
            message: format!("{code:?}"),
        })
    }

    fn sent(duplicate: bool, unshared: &[&str]) -> Result<reply::Sent, ConnectionError> {
        Ok(reply::Sent {
            relay_ts_ms: 7,
            duplicate,
            unshared: unshared
                .iter()
                .map(|u| UserName::parse(u).expect("a valid name"))
                .collect(),
        })
    }

    fn offline() -> ConnectionError {
        ConnectionError::Unreachable {
            relay: "relay".into(),
            reason: "offline".into(),
        }
    }

    /// Runs the outbox of `entries` with the answers of `answer` (by entry number);
    /// returns the entries handed out, in order, and the outcome for `watch`.
    fn run(
        entries: &[u8],
        watch: u8,
        answer: impl Fn(u8) -> Result<reply::Sent, ConnectionError>,
    ) -> (Vec<u8>, Option<Delivery>) {
        let mut run = OutboxRun::new(
            entries.iter().map(|&n| entry(n)).collect(),
            [MessageId([watch; 16])],
        );
        let mut handed = Vec::new();
        while let Some(next) = run.next_entry() {
            let n = next.id.0[0];
            handed.push(n);
            run.settled(next.id, judge(answer(n)));
        }
        (handed, run.outcome_of(MessageId([watch; 16])))
    }

    #[test]
    fn one_run_tells_each_waiting_sender_about_its_own_message_once() {
        let mut run = OutboxRun::new(
            [1, 2, 3].iter().map(|&n| entry(n)).collect(),
            [MessageId([1; 16]), MessageId([3; 16]), MessageId([2; 16])],
        );
        while let Some(next) = run.next_entry() {
            let answer = match next.id.0[0] {
                2 => Err(refused(ErrorCode::NotFriends)),
                3 => Err(offline()),
                _ => sent(false, &[]),
            };
            run.settled(next.id, judge(answer));
        }
        assert!(matches!(
            run.outcome_of(MessageId([1; 16])),
            Some(Delivery::Sent { .. })
        ));
        assert!(matches!(
            run.outcome_of(MessageId([2; 16])),
            Some(Delivery::Refused(_))
        ));
        assert!(matches!(
            run.outcome_of(MessageId([3; 16])),
            Some(Delivery::Later(_))
        ));
        assert!(run.outcome_of(MessageId([3; 16])).is_none(), "told once");
        assert!(run.outcome_of(MessageId([9; 16])).is_none(), "not watched");
    }

    #[test]
    fn entries_go_oldest_first_and_the_first_that_must_wait_stops_the_run() {
        let (handed, outcome) = run(&[1, 2, 3, 4], 3, |n| match n {
            3 => Err(offline()),
            _ => sent(false, &[]),
        });
        assert_eq!(handed, [1, 2, 3], "4 must not overtake 3");
        assert!(matches!(outcome, Some(Delivery::Later(_))), "{outcome:?}");
        // A passing refusal (a full queue) waits as well.
        let (handed, _) = run(&[1, 2, 3], 0, |n| match n {
            2 => Err(refused(ErrorCode::QueueFull)),
            _ => sent(false, &[]),
        });
        assert_eq!(handed, [1, 2]);
    }

    #[test]
    fn a_refused_entry_fails_alone_and_the_ones_after_it_go() {
        let (handed, outcome) = run(&[1, 2, 3], 2, |n| match n {
            2 => Err(refused(ErrorCode::NotFriends)),
            _ => sent(false, &[]),
        });
        assert_eq!(handed, [1, 2, 3]);
        assert!(
            matches!(&outcome, Some(Delivery::Refused(e)) if e.code == ErrorCode::NotFriends),
            "{outcome:?}"
        );
    }

    #[test]
    fn an_entry_the_run_does_not_reach_has_no_outcome() {
        let (handed, outcome) = run(&[1, 2, 3], 3, |n| match n {
            1 => Err(offline()),
            _ => sent(false, &[]),
        });
        assert_eq!(handed, [1]);
        assert!(outcome.is_none());
        let (_, outcome) = run(&[1, 2], 2, |_| sent(false, &[]));
        assert!(matches!(outcome, Some(Delivery::Sent { relay_ts_ms: 7 })));
    }

    #[test]
    fn only_lasting_refusals_fail_a_message() {
        for code in [
            ErrorCode::UnknownUser,
            ErrorCode::NotFriends,
            ErrorCode::BlockedByYou,
            ErrorCode::TooLarge,
            ErrorCode::NotGroupMember,
            ErrorCode::Unknown,
        ] {
            assert!(
                matches!(judge(Err(refused(code))), Delivery::Refused(_)),
                "{code:?}"
            );
        }
        for code in [
            ErrorCode::QueueFull,
            ErrorCode::RateLimited,
            ErrorCode::Internal,
            ErrorCode::GroupChanged,
        ] {
            assert!(
                matches!(judge(Err(refused(code))), Delivery::Later(_)),
                "{code:?}"
            );
        }
        // An answer that is not to a send proves nothing: the message waits.
        let odd = ConnectionError::UnexpectedReply { request: "send" };
        assert!(matches!(judge(Err(odd)), Delivery::Later(_)));
    }

    #[test]
    fn key_shares_count_as_given_only_when_the_relay_first_takes_the_message() {
        let shares: Vec<KeyShare> = ["ann", "bo", "cy"]
            .iter()
            .map(|to| KeyShare {
                to: UserName::parse(to).expect("a valid name"),
                ciphertext: vec![1],
            })
            .collect();
        let names = |given: Vec<UserName>| -> Vec<String> {
            given.iter().map(ToString::to_string).collect()
        };
        assert_eq!(
            names(shares_given(&shares, &sent(false, &[]))),
            ["ann", "bo", "cy"]
        );
        // The relay did not queue bo's share (bo left meanwhile): it counts for nobody.
        assert_eq!(
            names(shares_given(&shares, &sent(false, &["bo"]))),
            ["ann", "cy"]
        );
        // A duplicate carried nothing; nor did a refusal or a lost answer.
        assert!(shares_given(&shares, &sent(true, &[])).is_empty());
        assert!(shares_given(&shares, &Err(refused(ErrorCode::GroupChanged))).is_empty());
        assert!(shares_given(&shares, &Err(offline())).is_empty());
    }
}
