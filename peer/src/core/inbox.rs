//! The inbox's bookkeeping, with no I/O: how far this connection has taken in the user's
//! relay queue ([`raise_taken`]), what an acknowledgement may name ([`ack_due`]) and when
//! the backlog that waited at login is taken in ([`Backlog::caught_up`]). `run_inbox`,
//! `mark_processed`, `run_acks` and `Client::catch_up` carry these out.
//!
//! The delivery rule on this side: an event is acknowledged (and so deleted by the relay)
//! only after it was taken in and committed here, and an acknowledgement names only
//! sequence numbers taken in on this connection, never a number the relay did not send it
//! (a relay restored from a backup may number events below what was seen before).

use uchat_wire::Seq;

/// Where the user's relay queue stood when this connection logged in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Backlog {
    /// The highest sequence number assigned so far.
    pub(crate) head: Seq,
    /// Everything up to here was acknowledged already and will not be pushed.
    pub(crate) acked_through: Seq,
}

impl Backlog {
    /// Whether taking in events up to `taken` (on this connection) means caught up.
    pub(crate) fn caught_up(&self, taken: Seq) -> bool {
        taken.max(self.acked_through) >= self.head
    }
}

/// The new high mark after taking in the event numbered `seq`, if it raises `taken`: a
/// durable event above the mark. An ephemeral event (numbered 0) and one redelivered below
/// the mark leave it as it is.
pub(crate) fn raise_taken(taken: Seq, seq: Seq) -> Option<Seq> {
    (seq.0 > 0 && seq > taken).then_some(seq)
}

/// What an acknowledgement round names: everything taken in (`taken`) if that is past
/// what was acknowledged already (`acked`); nothing otherwise, so it never goes back.
pub(crate) fn ack_due(acked: Seq, taken: Seq) -> Option<Seq> {
    (taken > acked).then_some(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caught_up_once_everything_waiting_at_login_is_taken_in() {
        let backlog = Backlog {
            head: Seq(10),
            acked_through: Seq(4),
        };
        assert!(!backlog.caught_up(Seq(0)));
        assert!(!backlog.caught_up(Seq(9)));
        assert!(backlog.caught_up(Seq(10)));
        assert!(backlog.caught_up(Seq(11)));
        // Nothing was waiting: caught up before anything arrives.
        let empty = Backlog {
            head: Seq(4),
            acked_through: Seq(4),
        };
        assert!(empty.caught_up(Seq(0)));
    }

    #[test]
    fn the_mark_rises_only_with_durable_events_above_it() {
        assert_eq!(raise_taken(Seq(0), Seq(1)), Some(Seq(1)));
        assert_eq!(raise_taken(Seq(5), Seq(7)), Some(Seq(7)));
        // Redelivered after a reconnect, or out of the relay's order: no step back.
        assert_eq!(raise_taken(Seq(7), Seq(6)), None);
        assert_eq!(raise_taken(Seq(7), Seq(7)), None);
        // Ephemeral events (presence, typing) carry no number and are never acknowledged.
        assert_eq!(raise_taken(Seq(7), Seq(0)), None);
    }

    #[test]
    fn an_acknowledgement_names_only_what_was_taken_in_and_never_goes_back() {
        assert_eq!(ack_due(Seq(0), Seq(0)), None);
        assert_eq!(ack_due(Seq(0), Seq(3)), Some(Seq(3)));
        assert_eq!(ack_due(Seq(3), Seq(3)), None);
        assert_eq!(ack_due(Seq(9), Seq(3)), None);
        // Each round names the mark as it stands; a run of events goes in one round.
        let mut acked = Seq(0);
        let mut taken = Seq(0);
        let mut sent = Vec::new();
        for (seq, round_ends) in [(1, false), (2, false), (3, true), (0, true), (5, true)] {
            if let Some(raised) = raise_taken(taken, Seq(seq)) {
                taken = raised;
            }
            if round_ends && let Some(through) = ack_due(acked, taken) {
                sent.push(through);
                acked = through;
            }
        }
        assert_eq!(sent, [Seq(3), Seq(5)]);
    }
}
