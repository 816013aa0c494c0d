//! The delivery ledger: which messages were sent to whom and whether the relay
//! acknowledged them, and which arrived where, so the run can tell losses and
//! duplicates apart from messages that are merely late.

use std::collections::HashMap;

use uchat_wire::MessageId;

/// What the run expects to arrive, and what did.
#[derive(Default)]
pub(crate) struct Ledger {
    /// Messages sent: who should get each, and whether the relay acknowledged it (else
    /// it waited in the sender's outbox, to go out on a later flush).
    expected: HashMap<MessageId, Expected>,
    /// How often each client took in each message.
    arrived: HashMap<(usize, MessageId), u32>,
    /// Messages taken in that could not be decrypted.
    undecryptable: u64,
}

/// One sent message's recipients and whether the relay acknowledged it.
struct Expected {
    to: Vec<usize>,
    acked: bool,
}

impl Ledger {
    /// Notes a message sent to `to`: `acked` if the relay acknowledged it, else it was
    /// left queued in the sender's outbox.
    pub(crate) fn expect(&mut self, id: MessageId, to: Vec<usize>, acked: bool) {
        self.expected.insert(id, Expected { to, acked });
    }

    /// Notes that client `who` took in message `id` (`readable`: it decrypted).
    pub(crate) fn arrive(&mut self, who: usize, id: MessageId, readable: bool) {
        *self.arrived.entry((who, id)).or_default() += 1;
        if !readable {
            self.undecryptable += 1;
        }
    }

    /// Deliveries still missing: (of acknowledged messages, of ones that were queued).
    pub(crate) fn missing(&self) -> (u64, u64) {
        let mut missing = (0, 0);
        for (id, expected) in &self.expected {
            for &to in &expected.to {
                if !self.arrived.contains_key(&(to, *id)) {
                    if expected.acked {
                        missing.0 += 1;
                    } else {
                        missing.1 += 1;
                    }
                }
            }
        }
        missing
    }

    /// The figures of the delivery check as things stand.
    pub(crate) fn check(&self) -> Delivery {
        let (missing_acked, missing_queued) = self.missing();
        let mut delivery = Delivery {
            sent: self.expected.len() as u64,
            acked: self.expected.values().filter(|e| e.acked).count() as u64,
            missing_acked,
            missing_queued,
            undecryptable: self.undecryptable,
            ..Delivery::default()
        };
        for (id, expected) in &self.expected {
            for &to in &expected.to {
                delivery.expected += 1;
                match self.arrived.get(&(to, *id)) {
                    Some(1) => delivery.once += 1,
                    Some(_) => delivery.duplicated += 1,
                    None => {}
                }
            }
        }
        delivery.unexpected = self
            .arrived
            .keys()
            .filter(|(_, id)| !self.expected.contains_key(id))
            .count() as u64;
        delivery
    }
}

/// The delivery check's figures.
#[derive(Default, Debug, Clone, serde::Serialize)]
pub(crate) struct Delivery {
    /// Messages sent (1:1, group and file messages), acknowledged or queued.
    pub(crate) sent: u64,
    /// Of those, acknowledged by the relay.
    pub(crate) acked: u64,
    /// Deliveries expected (a group message counts once per other member).
    pub(crate) expected: u64,
    /// Arrived exactly once.
    pub(crate) once: u64,
    /// Arrived more than once.
    pub(crate) duplicated: u64,
    /// Acknowledged by the relay, never arrived.
    pub(crate) missing_acked: u64,
    /// Left waiting in an outbox when sent, never arrived.
    pub(crate) missing_queued: u64,
    /// Arrived though its send had failed (it went out on a later flush).
    pub(crate) unexpected: u64,
    /// Arrived but could not be decrypted.
    pub(crate) undecryptable: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MessageId {
        MessageId([n; 16])
    }

    #[test]
    fn a_message_arriving_everywhere_once_is_delivered() {
        let mut ledger = Ledger::default();
        ledger.expect(id(1), vec![2, 3], true);
        ledger.arrive(2, id(1), true);
        assert_eq!(ledger.missing(), (1, 0));
        ledger.arrive(3, id(1), true);
        let d = ledger.check();
        assert_eq!((d.sent, d.acked, d.expected, d.once), (1, 1, 2, 2));
        assert_eq!((d.missing_acked, d.duplicated, d.unexpected), (0, 0, 0));
    }

    #[test]
    fn losses_duplicates_and_strays_are_told_apart() {
        let mut ledger = Ledger::default();
        ledger.expect(id(1), vec![2], true);
        ledger.expect(id(2), vec![3], false);
        ledger.expect(id(3), vec![4], true);
        ledger.arrive(4, id(3), true);
        ledger.arrive(4, id(3), true);
        ledger.arrive(5, id(9), false);
        // An arrival before its send returned counts as well.
        ledger.arrive(6, id(4), true);
        ledger.expect(id(4), vec![6], true);
        let d = ledger.check();
        assert_eq!((d.sent, d.acked, d.expected), (4, 3, 4));
        assert_eq!((d.missing_acked, d.missing_queued), (1, 1));
        assert_eq!(
            (d.once, d.duplicated, d.unexpected, d.undecryptable),
            (1, 1, 1, 1)
        );
    }
}
