//! Group commit: many senders' writes in one durable redb transaction.
//!
//! A durable commit costs an `fsync`, which dwarfs the work of queueing one message. The
//! relay gathers the sends, group sends, acknowledgements and last-seen times that arrive
//! while a commit is under way and hands them here together: [`RelayStore::commit_batch`]
//! runs each in turn inside one write transaction and commits once. Each write keeps its
//! own outcome, as if it had been the store's single method (`enqueue_message`,
//! `send_group_message`, `ack_through`, `set_last_seen`), because every refusal of those
//! comes before their first write: a refused write leaves the transaction as it found it
//! and the others go on. A storage failure is different: the transaction is dropped,
//! nothing of the batch is written, and every write in it gets the failure.

use uchat_wire::{GroupId, KeyShare, MessageId, PushEvent, Seq, UserName};

use crate::group::{GroupSent, KeyShareRow, send_group_message_in};
use crate::relay::{QueueLimit, RelayStore, ack_through_in, set_last_seen_in};
use crate::social::{MessageOutcome, enqueue_message_in};
use crate::{StoreError, tables::write};

/// One write a batch carries, with what it needs owned (it crosses a channel to the
/// thread that commits).
#[derive(Clone, Debug)]
pub enum BatchWrite {
    /// A 1:1 message, as [`RelayStore::enqueue_message`] queues it.
    Message {
        /// The sender, as the relay authenticated them; the reach rule with `to` is checked
        /// in the transaction.
        from: UserName,
        /// The recipient, whose durable queue gets the message.
        to: UserName,
        /// The sender's message id (de-duplication key).
        id: MessageId,
        /// The end-to-end encrypted message, opaque (queued as a [`PushEvent::Message`]).
        ciphertext: Vec<u8>,
        /// The relay's clock.
        now_ms: u64,
        /// The recipient's queue quota.
        limit: QueueLimit,
    },
    /// A group message with its key shares, as [`RelayStore::send_group_message`] fans it out.
    GroupMessage {
        /// The sender, who must be a member of `group`.
        from: UserName,
        /// The group whose other members' queues get the message.
        group: GroupId,
        /// The epoch the sender encrypted for.
        epoch: u64,
        /// The sender's message id.
        id: MessageId,
        /// The Megolm message, opaque.
        ciphertext: Vec<u8>,
        /// Olm-sealed session keys for members who lack this session.
        key_shares: Vec<KeyShare>,
        /// The relay's clock.
        now_ms: u64,
        /// Each member's queue quota.
        limit: QueueLimit,
    },
    /// An acknowledgement, as [`RelayStore::ack_through`] takes it.
    Ack {
        /// Whose queue.
        user: UserName,
        /// The highest seq stored by the user's device.
        through: Seq,
    },
    /// When a user went offline, as [`RelayStore::set_last_seen`] records it (a burst of
    /// disconnects then costs one commit, not one each).
    LastSeen {
        /// The user whose last connection to the relay just closed.
        user: UserName,
        /// The relay's clock, ms since the Unix epoch.
        ms: u64,
    },
}

impl BatchWrite {
    /// Roughly the bytes this write adds to a transaction, to bound a batch's size.
    pub fn weight(&self) -> usize {
        const ROW: usize = 128;
        match self {
            BatchWrite::Message { ciphertext, .. } => ROW + ciphertext.len(),
            BatchWrite::GroupMessage {
                ciphertext,
                key_shares,
                ..
            } => {
                ROW + ciphertext.len()
                    + key_shares
                        .iter()
                        .map(|s| ROW + s.ciphertext.len())
                        .sum::<usize>()
            }
            BatchWrite::Ack { .. } | BatchWrite::LastSeen { .. } => ROW,
        }
    }
}

/// What one write of a batch did, matching its [`BatchWrite`] variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The message's outcome.
    Message(MessageOutcome),
    /// The group message's outcome.
    GroupMessage(GroupSent),
    /// How many events the acknowledgement deleted.
    Acked(u64),
    /// The last-seen time is recorded.
    Recorded,
}

impl RelayStore {
    /// Runs `writes` in order in one write transaction and commits it durably once.
    ///
    /// The answer has one result per write, in order: what the write did, or why it was
    /// refused (a refused write changed nothing; the others are committed). `Err` means
    /// the whole batch failed on storage and nothing of it was committed.
    pub fn commit_batch(
        &self,
        writes: Vec<BatchWrite>,
    ) -> Result<Vec<Result<BatchOutcome, StoreError>>, StoreError> {
        write(&self.db, |tx| {
            let mut outcomes = Vec::with_capacity(writes.len());
            for one in writes {
                match apply(tx, one) {
                    Err(e) if e.aborts_transaction() => return Err(e),
                    outcome => outcomes.push(outcome),
                }
            }
            Ok(outcomes)
        })
    }
}

/// One write inside the batch's transaction; it is consumed, so a message's ciphertext
/// moves into its queue row without a copy.
fn apply(tx: &redb::WriteTransaction, one: BatchWrite) -> Result<BatchOutcome, StoreError> {
    match one {
        BatchWrite::Message {
            from,
            to,
            id,
            ciphertext,
            now_ms,
            limit,
        } => {
            let event = PushEvent::Message {
                from: from.clone(),
                id,
                ciphertext,
            };
            enqueue_message_in(tx, &from, &to, id, event, now_ms, limit).map(BatchOutcome::Message)
        }
        BatchWrite::GroupMessage {
            from,
            group,
            epoch,
            id,
            ciphertext,
            key_shares,
            now_ms,
            limit,
        } => {
            let shares: Vec<KeyShareRow<'_>> = key_shares
                .iter()
                .map(|s| KeyShareRow {
                    to: &s.to,
                    ciphertext: &s.ciphertext,
                })
                .collect();
            send_group_message_in(
                tx,
                &from,
                group,
                epoch,
                id,
                &ciphertext,
                &shares,
                now_ms,
                limit,
            )
            .map(BatchOutcome::GroupMessage)
        }
        BatchWrite::Ack { user, through } => {
            ack_through_in(tx, &user, through).map(BatchOutcome::Acked)
        }
        BatchWrite::LastSeen { user, ms } => {
            set_last_seen_in(tx, &user, ms).map(|()| BatchOutcome::Recorded)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::tests::{limit, store_with, user};
    use crate::{GroupLimits, SocialLimits};

    const SOCIAL: SocialLimits = SocialLimits {
        max_friends: 100,
        max_pending_incoming: 100,
        max_pending_outgoing: 100,
        queue: QueueLimit {
            max_events: 100,
            max_bytes: u64::MAX,
        },
    };
    const GROUPS: GroupLimits = GroupLimits {
        max_members: 5,
        max_groups_per_user: 3,
        queue: QueueLimit {
            max_events: 100,
            max_bytes: u64::MAX,
        },
    };
    const GROUP: GroupId = GroupId([7; 16]);

    /// alice, bob, carol and dave; alice is friends with bob and carol (not dave), and
    /// alice, bob and carol share a group.
    fn setup() -> (tempfile::TempDir, RelayStore) {
        let (dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        for other in ["bob", "carol"] {
            store
                .request_friend(&user("alice"), &user(other), "", 1, &SOCIAL)
                .expect("requests");
            store
                .accept_friend(&user(other), &user("alice"), 2, &SOCIAL)
                .expect("accepts");
        }
        store
            .create_group(
                &user("alice"),
                GROUP,
                "g",
                &[user("bob"), user("carol")],
                3,
                &GROUPS,
            )
            .expect("creates the group");
        (dir, store)
    }

    fn message(from: &str, to: &str, id: u8, queue: u64) -> BatchWrite {
        BatchWrite::Message {
            from: user(from),
            to: user(to),
            id: MessageId([id; 16]),
            ciphertext: vec![id; 40],
            now_ms: 10 + u64::from(id),
            limit: limit(queue),
        }
    }

    /// A batch of every kind: queued, refused (not friends, queue full, a stale epoch),
    /// a duplicate inside the batch, a group message and acknowledgements.
    fn mixed_batch(store: &RelayStore) -> Vec<BatchWrite> {
        let carol_full = store.queue_len(&user("carol")).expect("reads") + 1;
        vec![
            message("alice", "bob", 1, 100),
            message("alice", "dave", 2, 100),
            message("alice", "bob", 1, 100),
            // carol's queue has room for one more.
            message("alice", "carol", 3, carol_full),
            message("alice", "carol", 4, carol_full),
            BatchWrite::GroupMessage {
                from: user("alice"),
                group: GROUP,
                epoch: 1,
                id: MessageId([5; 16]),
                ciphertext: vec![5; 60],
                key_shares: vec![KeyShare {
                    to: user("bob"),
                    ciphertext: vec![6; 30],
                }],
                now_ms: 20,
                limit: limit(100),
            },
            BatchWrite::GroupMessage {
                from: user("alice"),
                group: GROUP,
                epoch: 99,
                id: MessageId([8; 16]),
                ciphertext: vec![8; 60],
                key_shares: Vec::new(),
                now_ms: 21,
                limit: limit(100),
            },
            BatchWrite::Ack {
                user: user("bob"),
                through: Seq(1),
            },
            BatchWrite::LastSeen {
                user: user("dave"),
                ms: 77,
            },
            BatchWrite::LastSeen {
                user: user("nobody"),
                ms: 78,
            },
            message("alice", "bob", 9, 100),
        ]
    }

    /// What `write` does through the store's single method of its kind.
    fn one_at_a_time(store: &RelayStore, write: &BatchWrite) -> Result<BatchOutcome, StoreError> {
        store.commit_batch(vec![write.clone()])?.remove(0)
    }

    fn describe(outcome: &Result<BatchOutcome, StoreError>) -> String {
        match outcome {
            Ok(o) => format!("{o:?}"),
            Err(e) => format!("refused: {e}"),
        }
    }

    fn queues(store: &RelayStore) -> Vec<Vec<(Seq, PushEvent)>> {
        ["alice", "bob", "carol", "dave"]
            .iter()
            .map(|name| {
                store
                    .pending(&user(name), Seq(0), 1000)
                    .expect("reads")
                    .into_iter()
                    .map(|q| (q.seq, q.event))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_batch_does_what_its_writes_do_one_transaction_each() {
        let (_a, batched) = setup();
        let (_b, single) = setup();
        let writes = mixed_batch(&batched);
        let together: Vec<String> = batched
            .commit_batch(writes.clone())
            .expect("commits")
            .iter()
            .map(describe)
            .collect();
        let apart: Vec<String> = writes
            .iter()
            .map(|w| describe(&one_at_a_time(&single, w)))
            .collect();
        assert_eq!(together, apart);
        assert_eq!(queues(&batched), queues(&single));
        // And the single path really is the store's own method for each kind.
        let (_c, methods) = setup();
        let first = methods
            .enqueue_message(
                &user("alice"),
                &user("bob"),
                MessageId([1; 16]),
                &PushEvent::Message {
                    from: user("alice"),
                    id: MessageId([1; 16]),
                    ciphertext: vec![1; 40],
                },
                11,
                limit(100),
            )
            .expect("queues");
        assert_eq!(apart[0], format!("{:?}", BatchOutcome::Message(first)));
    }

    #[test]
    fn refused_writes_leave_nothing_and_the_rest_commit() {
        let (_dir, store) = setup();
        let outcomes = store.commit_batch(mixed_batch(&store)).expect("commits");
        assert!(matches!(outcomes[1], Err(StoreError::NotFriends { .. })));
        assert!(matches!(outcomes[4], Err(StoreError::QueueFull { .. })));
        assert!(matches!(outcomes[6], Err(StoreError::GroupChanged { .. })));
        let Ok(BatchOutcome::Message(MessageOutcome::Queued(again))) = &outcomes[2] else {
            panic!("the repeat is answered: {:?}", outcomes[2]);
        };
        assert!(
            again.duplicate,
            "the same id twice in one batch is queued once"
        );
        assert!(
            store
                .pending(&user("dave"), Seq(0), 10)
                .expect("reads")
                .is_empty()
        );
        let carol: Vec<MessageId> = store
            .pending(&user("carol"), Seq(0), 10)
            .expect("reads")
            .into_iter()
            .filter_map(|q| match q.event {
                PushEvent::Message { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        assert_eq!(carol, vec![MessageId([3; 16])]);
        // bob: the ack took his first event; the message, the key share, the group
        // message and the last message remain, in the batch's order.
        let bob: Vec<String> = store
            .pending(&user("bob"), Seq(0), 10)
            .expect("reads")
            .into_iter()
            .map(|q| match q.event {
                PushEvent::Message { id, .. } => format!("message {}", id.0[0]),
                PushEvent::GroupKey { .. } => "key".into(),
                PushEvent::GroupMessage { .. } => "group message".into(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            bob[bob.len() - 4..],
            ["message 1", "key", "group message", "message 9"]
        );
    }

    #[test]
    fn an_empty_batch_commits_nothing_and_answers_nothing() {
        let (_dir, store) = setup();
        let before = queues(&store);
        assert!(store.commit_batch(Vec::new()).expect("commits").is_empty());
        assert_eq!(queues(&store), before);
    }
}
