//! Who may reach whom: the one rule behind every 1:1 message, group invitation, moment
//! share and call.
//!
//! `from` may reach `to` only as a friend: a stranger is refused
//! ([`StoreError::NotFriends`]), and so is someone `from` blocked
//! ([`StoreError::BlockedByYou`]: unblock first). If `to` blocked `from`, the attempt is
//! accepted and goes nowhere ([`Reach::Silenced`]), so that `from` cannot tell.

use redb::{ReadOnlyTable, ReadableTable};
use uchat_wire::UserName;

use crate::error::StoreError;
use crate::relay::RelayStore;
use crate::tables::{ACCOUNTS, BLOCKS, FRIENDS, Pair, read};

/// Where an attempt of one user to reach another goes, when the rule allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// To the other user.
    Delivered,
    /// Nowhere: the other user blocked the sender. Answer as if it was delivered.
    Silenced,
}

/// The friendship and block tables, as one transaction holds them (read or write).
pub(crate) struct Relations<F, B> {
    /// (user, friend) → since when, ms.
    pub(crate) friends: F,
    /// (blocker, blocked) → since when, ms.
    pub(crate) blocks: B,
}

impl<F, B> Relations<F, B>
where
    F: ReadableTable<Pair, u64>,
    B: ReadableTable<Pair, u64>,
{
    /// Whether `a` counts `b` among their friends.
    pub(crate) fn friends(&self, a: &str, b: &str) -> Result<bool, StoreError> {
        Ok(self.friends.get((a, b))?.is_some())
    }

    /// Whether `blocker` blocked `blocked`.
    pub(crate) fn blocked(&self, blocker: &str, blocked: &str) -> Result<bool, StoreError> {
        Ok(self.blocks.get((blocker, blocked))?.is_some())
    }

    /// Whether either of `a` and `b` blocked the other.
    pub(crate) fn blocked_either_way(&self, a: &str, b: &str) -> Result<bool, StoreError> {
        Ok(self.blocked(a, b)? || self.blocked(b, a)?)
    }

    /// The rule: where an attempt of `from` to reach `to` goes, or why it is refused.
    pub(crate) fn reach(&self, from: &UserName, to: &UserName) -> Result<Reach, StoreError> {
        let (a, b) = (from.as_str(), to.as_str());
        if !self.friends(a, b)? {
            return Err(StoreError::NotFriends {
                user: from.clone(),
                other: to.clone(),
            });
        }
        if self.blocked(a, b)? {
            return Err(StoreError::BlockedByYou { other: to.clone() });
        }
        Ok(if self.blocked(b, a)? {
            Reach::Silenced
        } else {
            Reach::Delivered
        })
    }
}

/// The friendship and block tables as a write transaction holds them.
pub(crate) type WriteRelations<'t> =
    Relations<redb::Table<'t, Pair, u64>, redb::Table<'t, Pair, u64>>;

/// The friendship and block tables opened in write transaction `tx`.
pub(crate) fn relations_in(tx: &redb::WriteTransaction) -> Result<WriteRelations<'_>, StoreError> {
    Ok(Relations {
        friends: tx.open_table(FRIENDS)?,
        blocks: tx.open_table(BLOCKS)?,
    })
}

/// The friendship and block tables as a read transaction holds them.
pub(crate) type ReadRelations = Relations<ReadOnlyTable<Pair, u64>, ReadOnlyTable<Pair, u64>>;

/// The friendship and block tables opened in read transaction `tx`.
pub(crate) fn relations_read(tx: &redb::ReadTransaction) -> Result<ReadRelations, StoreError> {
    Ok(Relations {
        friends: tx.open_table(FRIENDS)?,
        blocks: tx.open_table(BLOCKS)?,
    })
}

/// [`Relations::reach`] inside write transaction `tx`, for one pair.
pub(crate) fn reach_in(
    tx: &redb::WriteTransaction,
    from: &UserName,
    to: &UserName,
) -> Result<Reach, StoreError> {
    relations_in(tx)?.reach(from, to)
}

impl RelayStore {
    /// Whether `caller` may ring `callee`, in one read transaction:
    /// [`StoreError::UnknownUser`] if `callee` has no account, else the rule every message
    /// follows: friends only, not someone the caller blocked, and a callee who blocked the
    /// caller is [`Reach::Silenced`] (the call rings nowhere; the callee looks offline to
    /// the caller).
    pub fn may_call(&self, caller: &UserName, callee: &UserName) -> Result<Reach, StoreError> {
        read(&self.db, |tx| {
            if tx.open_table(ACCOUNTS)?.get(callee.as_str())?.is_none() {
                return Err(StoreError::UnknownUser {
                    username: callee.clone(),
                });
            }
            relations_read(tx)?.reach(caller, callee)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::tests::{limit, store_with, user};
    use crate::social::tests::LIMITS as SOCIAL;
    use crate::{GroupLimits, MessageOutcome, MomentLimits};
    use uchat_wire::{GroupId, KeyShare, MessageId, PostId, PushEvent};

    /// How alice stands to bob before she tries to reach him.
    #[derive(Clone, Copy, Debug)]
    enum Standing {
        Strangers,
        Friends,
        AliceBlockedBob,
        BobBlockedAlice,
    }

    /// What one attempt came to: delivered, silenced, or the refusal's kind.
    fn kind(result: Result<Reach, StoreError>) -> String {
        match result {
            Ok(reach) => format!("{reach:?}"),
            Err(StoreError::NotFriends { .. }) => "NotFriends".into(),
            Err(StoreError::BlockedByYou { .. }) => "BlockedByYou".into(),
            Err(other) => format!("unexpected: {other:?}"),
        }
    }

    #[test]
    fn messages_group_invitations_moment_shares_and_calls_follow_one_rule() {
        let expected = [
            (Standing::Strangers, "NotFriends"),
            (Standing::Friends, "Delivered"),
            (Standing::AliceBlockedBob, "BlockedByYou"),
            (Standing::BobBlockedAlice, "Silenced"),
        ];
        for (round, (standing, want)) in expected.into_iter().enumerate() {
            let (_dir, store) = store_with(&["alice", "bob"]);
            let (alice, bob) = (user("alice"), user("bob"));
            if !matches!(standing, Standing::Strangers) {
                store
                    .request_friend(&alice, &bob, "", 1, &SOCIAL)
                    .expect("requests");
                store
                    .accept_friend(&bob, &alice, 2, &SOCIAL)
                    .expect("accepts");
            }
            match standing {
                Standing::AliceBlockedBob => store.block(&alice, &bob, 3).expect("blocks"),
                Standing::BobBlockedAlice => store.block(&bob, &alice, 3).expect("blocks"),
                Standing::Strangers | Standing::Friends => {}
            }
            let id = MessageId([round as u8; 16]);
            let message = store
                .enqueue_message(
                    &alice,
                    &bob,
                    id,
                    &PushEvent::Message {
                        from: alice.clone(),
                        id,
                        ciphertext: vec![1; 8],
                    },
                    10,
                    limit(100),
                )
                .map(|outcome| match outcome {
                    MessageOutcome::Queued(_) => Reach::Delivered,
                    MessageOutcome::Dropped { .. } => Reach::Silenced,
                });
            let group = store
                .create_group(
                    &alice,
                    GroupId([round as u8; 16]),
                    "g",
                    std::slice::from_ref(&bob),
                    10,
                    &GroupLimits {
                        max_members: 10,
                        max_groups_per_user: 10,
                        queue: limit(100),
                    },
                )
                .map(|info| {
                    if info.members.iter().any(|m| m.user == bob) {
                        Reach::Delivered
                    } else {
                        Reach::Silenced
                    }
                });
            let moment = store
                .post_moment(
                    &alice,
                    PostId([round as u8; 16]),
                    &[7; 16],
                    &[KeyShare {
                        to: bob.clone(),
                        ciphertext: vec![8; 16],
                    }],
                    10,
                    &MomentLimits {
                        queue: limit(100),
                        max_comments_per_post: 10,
                        quota_bytes: u64::MAX,
                    },
                )
                .map(|posted| {
                    if posted.shared.contains(&bob) {
                        Reach::Delivered
                    } else {
                        Reach::Silenced
                    }
                });
            let call = store.may_call(&alice, &bob);
            for (what, result) in [
                ("message", message),
                ("group invitation", group),
                ("moment share", moment),
                ("call", call),
            ] {
                assert_eq!(kind(result), want, "{what} when {standing:?}");
            }
        }
    }

    #[test]
    fn a_call_to_no_account_is_an_unknown_user() {
        let (_dir, store) = store_with(&["alice"]);
        let err = store
            .may_call(&user("alice"), &user("ghost"))
            .expect_err("refused");
        assert!(matches!(err, StoreError::UnknownUser { .. }), "{err:?}");
    }
}
