//! The relay's social layer, a second `impl` block of [`RelayStore`]: friend requests,
//! friendships, blocks and public profiles with avatars.
//!
//! Every method is one transaction, like the rest of [`RelayStore`]. A state change and the
//! durable event that tells the other side about it ([`PushEvent::FriendRequest`],
//! [`PushEvent::FriendAccepted`], [`PushEvent::FriendRemoved`]) commit together, so a
//! crash can neither lose the notice of a change nor announce one that did not happen.
//!
//! Blocks are one-way and silent: a request or message to someone who blocked the sender
//! answers [`FriendRequestOutcome::Dropped`] or [`MessageOutcome::Dropped`] and writes
//! nothing, so the relay's answer need not tell the sender. A block ends pending requests
//! in both directions but keeps a friendship; the blocked friend's messages are dropped.
//!
//! This module checks no text rules (note and signature length, avatar format): the relay
//! does that with `uchat_wire`'s checks before calling here.

use std::fmt;

use redb::ReadableTable;
use sha2::{Digest, Sha256};
use uchat_wire::{MessageId, ProfileSummary, PushEvent, UserName};

use crate::error::StoreError;
use crate::reach::{Reach, reach_in};
use crate::records::{FriendRequestRecord, PublicProfileRecord};
use crate::relay::{
    Enqueued, QueueLimit, QueueWriter, RelayStore, Rows, enqueue_in, require_account,
};
use crate::tables::{
    ACCOUNTS, AVATARS, BLOCKS, FRIEND_REQUESTS, FRIEND_REQUESTS_SENT, FRIENDS, PROFILES, Pair,
    decode, encode, read, stored_name, write,
};

/// Per-user limits for the social layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocialLimits {
    /// Most friends a user may have; making friends beyond it, on either side, is refused.
    pub max_friends: u64,
    /// Most pending friend requests a user may have received and not answered yet.
    pub max_pending_incoming: u64,
    /// Most friend requests a user may have sent that wait for an answer.
    pub max_pending_outgoing: u64,
    /// What a user's queue may hold, as for [`RelayStore::enqueue`].
    pub queue: QueueLimit,
}

/// One friend in [`RelayStore::friends`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FriendRow {
    /// The friend's username; [`RelayStore::friends`] lists the rows in order of it.
    pub user: UserName,
    /// When the friendship began, ms since the Unix epoch.
    pub since_ms: u64,
    /// True if the owner of the list blocked this friend.
    pub blocked: bool,
}

/// One pending friend request in [`PendingRequests`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRequest {
    /// The other side: who sent it (incoming) or who it is for (outgoing).
    pub user: UserName,
    /// The note the sender wrote.
    pub note: String,
    /// When it was sent, by the relay's clock, ms since the Unix epoch.
    pub created_ms: u64,
}

/// A user's pending friend requests, from [`RelayStore::friend_requests`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingRequests {
    /// Requests the user received, oldest first.
    pub incoming: Vec<PendingRequest>,
    /// Requests the user sent, oldest first.
    pub outgoing: Vec<PendingRequest>,
}

/// Which of a user's pending friend requests: those others sent them, or their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestDirection {
    /// Requests the user received.
    Incoming,
    /// Requests the user sent.
    Outgoing,
}

/// What [`RelayStore::request_friend`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FriendRequestOutcome {
    /// The request is pending and a [`PushEvent::FriendRequest`] is queued for the
    /// recipient.
    Sent(Enqueued),
    /// The recipient had asked the sender already, so the two are friends now and a
    /// [`PushEvent::FriendAccepted`] is queued for the recipient.
    BecameFriends(Enqueued),
    /// The recipient blocked the sender: nothing was written. Answer the sender as if the
    /// request was sent, so they cannot tell.
    Dropped,
}

/// What [`RelayStore::enqueue_message`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageOutcome {
    /// The message is in the recipient's queue (or was already: see
    /// [`Enqueued::duplicate`]).
    Queued(Enqueued),
    /// The recipient blocked the sender: nothing was written. Answer the sender as if the
    /// message was queued at `relay_ts_ms`, so they cannot tell.
    Dropped {
        /// The relay's clock, ms since the Unix epoch.
        relay_ts_ms: u64,
    },
}

/// The avatar part of [`RelayStore::set_profile`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum AvatarUpdate<'a> {
    /// Leave the avatar as it is.
    Keep,
    /// Delete the avatar.
    Remove,
    /// Replace the avatar with these bytes (checked by the caller).
    Set(&'a [u8]),
}

impl fmt::Debug for AvatarUpdate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AvatarUpdate::Keep => f.write_str("Keep"),
            AvatarUpdate::Remove => f.write_str("Remove"),
            AvatarUpdate::Set(bytes) => write!(f, "Set(<{} bytes>)", bytes.len()),
        }
    }
}

/// The version tag of an avatar: the first 16 hex digits of the SHA-256 of its bytes.
/// 64 bits tell one user's avatars apart with room to spare, and the same image always gets
/// the same tag, so a peer holding it need not download it again.
fn avatar_version(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// Whether the row (a, b) exists.
fn has_pair<V: redb::Value + 'static>(
    table: &impl ReadableTable<Pair, V>,
    a: &UserName,
    b: &UserName,
) -> Result<bool, StoreError> {
    Ok(table.get((a.as_str(), b.as_str()))?.is_some())
}

/// `owner`'s rows of a pair-keyed table, in order of the other name, each mapped by `f`
/// (which gets the other name and the value).
fn rows_of<V: redb::Value + 'static, T>(
    table: &impl ReadableTable<Pair, V>,
    owner: &UserName,
    mut f: impl FnMut(&str, V::SelfType<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let owner = owner.as_str();
    let mut out = Vec::new();
    // The empty name sorts first, so this range starts at the owner's first row; it runs
    // on into later owners, hence the check on the name.
    for item in table.range((owner, "")..)? {
        let (key, value) = item?;
        let (first, other) = key.value();
        if first != owner {
            break;
        }
        out.push(f(other, value.value())?);
    }
    Ok(out)
}

/// `owner`'s rows of a pair-keyed table after the other name `after` (from the first if
/// `None`), in order of the other name, at most `limit` of them, each mapped by `f`; and
/// whether `owner` has rows after those.
fn rows_after<V: redb::Value + 'static, T>(
    table: &impl ReadableTable<Pair, V>,
    owner: &UserName,
    after: Option<&UserName>,
    limit: usize,
    mut f: impl FnMut(&str, V::SelfType<'_>) -> Result<T, StoreError>,
) -> Result<Rows<T>, StoreError> {
    use std::ops::Bound;
    let owner = owner.as_str();
    let start = match after {
        Some(after) => Bound::Excluded((owner, after.as_str())),
        None => Bound::Included((owner, "")),
    };
    let mut rows = Vec::new();
    for item in table.range::<(&str, &str)>((start, Bound::Unbounded))? {
        let (key, value) = item?;
        let (first, other) = key.value();
        if first != owner {
            break;
        }
        if rows.len() >= limit {
            return Ok(Rows { rows, more: true });
        }
        rows.push(f(other, value.value())?);
    }
    Ok(Rows { rows, more: false })
}

/// How many rows `owner` has in a pair-keyed table.
fn count_of<V: redb::Value + 'static>(
    table: &impl ReadableTable<Pair, V>,
    owner: &UserName,
) -> Result<u64, StoreError> {
    Ok(rows_of(table, owner, |_, _| Ok(()))?.len() as u64)
}

/// Removes the pending request `from` → `to` from both indexes, and withdraws the
/// [`PushEvent::FriendRequest`] that announced it if `to` has not taken it in yet (so a
/// request that ended leaves nothing behind in `to`'s queue); returns whether there was
/// one.
fn remove_request_in(
    tx: &redb::WriteTransaction,
    from: &UserName,
    to: &UserName,
) -> Result<bool, StoreError> {
    let removed = tx
        .open_table(FRIEND_REQUESTS)?
        .remove((to.as_str(), from.as_str()))?
        .map(|v| decode::<FriendRequestRecord>(v.value(), "friend request"))
        .transpose()?;
    tx.open_table(FRIEND_REQUESTS_SENT)?
        .remove((from.as_str(), to.as_str()))?;
    let Some(record) = removed else {
        return Ok(false);
    };
    if let Some(seq) = record.event_seq {
        QueueWriter::open(tx)?.withdraw(
            to,
            seq,
            |event| matches!(event, PushEvent::FriendRequest { from: asker, .. } if asker == from),
        )?;
    }
    Ok(true)
}

/// [`StoreError::LimitReached`] if either user has `max_friends` friends already.
fn check_friend_limit_in(
    tx: &redb::WriteTransaction,
    users: [&UserName; 2],
    max_friends: u64,
) -> Result<(), StoreError> {
    let friends = tx.open_table(FRIENDS)?;
    for user in users {
        if count_of(&friends, user)? >= max_friends {
            return Err(StoreError::LimitReached {
                what: "friends",
                limit: max_friends,
            });
        }
    }
    Ok(())
}

/// Makes `a` and `b` friends since `now_ms`, in both directions.
fn befriend_in(
    tx: &redb::WriteTransaction,
    a: &UserName,
    b: &UserName,
    now_ms: u64,
) -> Result<(), StoreError> {
    let mut friends = tx.open_table(FRIENDS)?;
    friends.insert((a.as_str(), b.as_str()), now_ms)?;
    friends.insert((b.as_str(), a.as_str()), now_ms)?;
    Ok(())
}

/// `user`'s request to `to`, sent at `created_ms`, with its note from [`FRIEND_REQUESTS`].
fn outgoing_request(
    requests: &impl ReadableTable<Pair, &'static [u8]>,
    user: &UserName,
    to: &str,
    created_ms: u64,
) -> Result<PendingRequest, StoreError> {
    let Some(bytes) = requests.get((to, user.as_str()))? else {
        return Err(StoreError::Corrupt {
            what: "friend request",
            reason: format!("the request from {user} to {to} is only half stored"),
        });
    };
    let record: FriendRequestRecord = decode(bytes.value(), "friend request")?;
    Ok(PendingRequest {
        user: stored_name(to)?,
        note: record.note,
        created_ms,
    })
}

/// Sorts requests oldest first, by name among equals.
fn oldest_first(requests: &mut [PendingRequest]) {
    requests.sort_by(|a, b| (a.created_ms, &a.user).cmp(&(b.created_ms, &b.user)));
}

impl RelayStore {
    /// `from` asks `to` to become friends, with a note. In one transaction, checked in this
    /// order:
    ///
    /// 1. [`StoreError::SelfRelation`] if `from == to`; [`StoreError::UnknownUser`] if
    ///    either has no account; [`StoreError::AlreadyFriends`] if they are friends;
    ///    [`StoreError::BlockedByYou`] if `from` blocked `to`.
    /// 2. If `to` blocked `from`: [`FriendRequestOutcome::Dropped`], and nothing is written.
    /// 3. [`StoreError::DuplicateRequest`] if `from`'s request to `to` is pending.
    /// 4. If `to`'s request to `from` is pending, the two requests meet: it is removed, they
    ///    become friends and `to` gets [`PushEvent::FriendAccepted`] `{ by: from }`
    ///    ([`FriendRequestOutcome::BecameFriends`]); [`StoreError::LimitReached`] if
    ///    either has `max_friends` friends.
    /// 5. Otherwise the request is stored and `to` gets [`PushEvent::FriendRequest`]
    ///    ([`FriendRequestOutcome::Sent`]); [`StoreError::LimitReached`] if `to` has
    ///    `max_pending_incoming` requests pending, or `from` has sent
    ///    `max_pending_outgoing` that wait for an answer.
    ///
    /// [`StoreError::QueueFull`] if `to`'s queue is full; then nothing is written.
    pub fn request_friend(
        &self,
        from: &UserName,
        to: &UserName,
        note: &str,
        now_ms: u64,
        limits: &SocialLimits,
    ) -> Result<FriendRequestOutcome, StoreError> {
        if from == to {
            return Err(StoreError::SelfRelation);
        }
        write(&self.db, |tx| {
            require_account(tx, to)?;
            require_account(tx, from)?;
            if has_pair(&tx.open_table(FRIENDS)?, from, to)? {
                return Err(StoreError::AlreadyFriends { other: to.clone() });
            }
            let blocks = tx.open_table(BLOCKS)?;
            if has_pair(&blocks, from, to)? {
                return Err(StoreError::BlockedByYou { other: to.clone() });
            }
            if has_pair(&blocks, to, from)? {
                return Ok(FriendRequestOutcome::Dropped);
            }
            drop(blocks);
            let requests = tx.open_table(FRIEND_REQUESTS)?;
            if has_pair(&requests, to, from)? {
                return Err(StoreError::DuplicateRequest { to: to.clone() });
            }
            let crossing = has_pair(&requests, from, to)?;
            let pending_for_to = count_of(&requests, to)?;
            drop(requests);
            if crossing {
                check_friend_limit_in(tx, [from, to], limits.max_friends)?;
                remove_request_in(tx, to, from)?;
                befriend_in(tx, from, to, now_ms)?;
                let event = PushEvent::FriendAccepted { by: from.clone() };
                return enqueue_in(tx, to, event, None, now_ms, limits.queue)
                    .map(FriendRequestOutcome::BecameFriends);
            }
            if pending_for_to >= limits.max_pending_incoming {
                return Err(StoreError::LimitReached {
                    what: "pending friend requests",
                    limit: limits.max_pending_incoming,
                });
            }
            if count_of(&tx.open_table(FRIEND_REQUESTS_SENT)?, from)? >= limits.max_pending_outgoing
            {
                return Err(StoreError::LimitReached {
                    what: "friend requests of yours waiting for an answer",
                    limit: limits.max_pending_outgoing,
                });
            }
            let event = PushEvent::FriendRequest {
                from: from.clone(),
                note: note.to_string(),
            };
            let enqueued = enqueue_in(tx, to, event, None, now_ms, limits.queue)?;
            let record = FriendRequestRecord {
                note: note.to_string(),
                created_ms: now_ms,
                event_seq: Some(enqueued.seq),
            };
            tx.open_table(FRIEND_REQUESTS)?.insert(
                (to.as_str(), from.as_str()),
                encode(&record, "friend request")?.as_slice(),
            )?;
            tx.open_table(FRIEND_REQUESTS_SENT)?
                .insert((from.as_str(), to.as_str()), now_ms)?;
            Ok(FriendRequestOutcome::Sent(enqueued))
        })
    }

    /// `me` accepts `from`'s pending request: in one transaction the request (and one from
    /// `me` to `from`, if any) is removed, they become friends since `now_ms`, and `from`
    /// gets [`PushEvent::FriendAccepted`] `{ by: me }`.
    ///
    /// [`StoreError::NoSuchRequest`] without a pending request from `from`;
    /// [`StoreError::LimitReached`] if either has `max_friends` friends;
    /// [`StoreError::QueueFull`] if `from`'s queue is full. Then nothing changes.
    pub fn accept_friend(
        &self,
        me: &UserName,
        from: &UserName,
        now_ms: u64,
        limits: &SocialLimits,
    ) -> Result<Enqueued, StoreError> {
        write(&self.db, |tx| {
            if !has_pair(&tx.open_table(FRIEND_REQUESTS)?, me, from)? {
                return Err(StoreError::NoSuchRequest { from: from.clone() });
            }
            check_friend_limit_in(tx, [me, from], limits.max_friends)?;
            remove_request_in(tx, from, me)?;
            remove_request_in(tx, me, from)?;
            befriend_in(tx, me, from, now_ms)?;
            let event = PushEvent::FriendAccepted { by: me.clone() };
            enqueue_in(tx, from, event, None, now_ms, limits.queue)
        })
    }

    /// `me` rejects `from`'s pending request: it is removed, and `from` is not told.
    ///
    /// [`StoreError::NoSuchRequest`] without a pending request from `from`.
    pub fn reject_friend(&self, me: &UserName, from: &UserName) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            if !remove_request_in(tx, from, me)? {
                return Err(StoreError::NoSuchRequest { from: from.clone() });
            }
            Ok(())
        })
    }

    /// `me` ends the friendship with `other`: both directions are removed, each loses for
    /// good the access to the other's past moments, and `other` gets
    /// [`PushEvent::FriendRemoved`] `{ by: me }`, in one transaction.
    ///
    /// If `other`'s queue is full the friendship still ends, without the event, and this
    /// returns `None`: a removal never fails for that, and `other` sees it in their friend
    /// list. [`StoreError::NotFriends`] if they are not friends.
    pub fn remove_friend(
        &self,
        me: &UserName,
        other: &UserName,
        now_ms: u64,
        queue_limit: QueueLimit,
    ) -> Result<Option<Enqueued>, StoreError> {
        write(&self.db, |tx| {
            let mut friends = tx.open_table(FRIENDS)?;
            if friends.remove((me.as_str(), other.as_str()))?.is_none() {
                return Err(StoreError::NotFriends {
                    user: me.clone(),
                    other: other.clone(),
                });
            }
            friends.remove((other.as_str(), me.as_str()))?;
            drop(friends);
            crate::moment::revoke_moments_in(tx, me, other)?;
            let event = PushEvent::FriendRemoved { by: me.clone() };
            match enqueue_in(tx, other, event, None, now_ms, queue_limit) {
                Ok(enqueued) => Ok(Some(enqueued)),
                // `enqueue_in` writes nothing when it refuses, so the removal can commit.
                Err(StoreError::QueueFull { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// `me` blocks `other` (since `now_ms`; blocking again keeps the first time). Pending
    /// requests in both directions are removed; a friendship stays, marked blocked in
    /// `me`'s [`RelayStore::friends`], and `other`'s requests and messages to `me` are
    /// dropped from now on.
    ///
    /// [`StoreError::SelfRelation`] if `me == other`; [`StoreError::UnknownUser`] if either
    /// has no account.
    pub fn block(&self, me: &UserName, other: &UserName, now_ms: u64) -> Result<(), StoreError> {
        if me == other {
            return Err(StoreError::SelfRelation);
        }
        write(&self.db, |tx| {
            require_account(tx, other)?;
            require_account(tx, me)?;
            let mut blocks = tx.open_table(BLOCKS)?;
            if blocks.get((me.as_str(), other.as_str()))?.is_none() {
                blocks.insert((me.as_str(), other.as_str()), now_ms)?;
            }
            drop(blocks);
            remove_request_in(tx, me, other)?;
            remove_request_in(tx, other, me)?;
            Ok(())
        })
    }

    /// `me` unblocks `other`; unblocking someone not blocked does nothing.
    ///
    /// [`StoreError::UnknownUser`] if `other` has no account.
    pub fn unblock(&self, me: &UserName, other: &UserName) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            require_account(tx, other)?;
            tx.open_table(BLOCKS)?
                .remove((me.as_str(), other.as_str()))?;
            Ok(())
        })
    }

    /// Whether `from`'s friend request to `to` is pending.
    pub fn has_pending_request(&self, from: &UserName, to: &UserName) -> Result<bool, StoreError> {
        read(&self.db, |tx| {
            has_pair(&tx.open_table(FRIEND_REQUESTS)?, to, from)
        })
    }

    /// `user`'s friends in name order (empty for an unknown user).
    pub fn friends(&self, user: &UserName) -> Result<Vec<FriendRow>, StoreError> {
        read(&self.db, |tx| {
            let friends = tx.open_table(FRIENDS)?;
            let blocks = tx.open_table(BLOCKS)?;
            rows_of(&friends, user, |friend, since_ms| {
                Ok(FriendRow {
                    user: stored_name(friend)?,
                    since_ms,
                    blocked: blocks.get((user.as_str(), friend))?.is_some(),
                })
            })
        })
    }

    /// `user`'s pending friend requests, received and sent, each oldest first (by name
    /// among requests of the same millisecond).
    pub fn friend_requests(&self, user: &UserName) -> Result<PendingRequests, StoreError> {
        read(&self.db, |tx| {
            let requests = tx.open_table(FRIEND_REQUESTS)?;
            let sent = tx.open_table(FRIEND_REQUESTS_SENT)?;
            let mut incoming = rows_of(&requests, user, |from, bytes| {
                let record: FriendRequestRecord = decode(bytes, "friend request")?;
                Ok(PendingRequest {
                    user: stored_name(from)?,
                    note: record.note,
                    created_ms: record.created_ms,
                })
            })?;
            let mut outgoing = rows_of(&sent, user, |to, created_ms| {
                outgoing_request(&requests, user, to, created_ms)
            })?;
            oldest_first(&mut incoming);
            oldest_first(&mut outgoing);
            Ok(PendingRequests { incoming, outgoing })
        })
    }

    /// A page of `user`'s friends in name order: those after `after` (from the first if
    /// `None`), at most `limit`, and whether more follow.
    pub fn friends_after(
        &self,
        user: &UserName,
        after: Option<&UserName>,
        limit: usize,
    ) -> Result<Rows<FriendRow>, StoreError> {
        read(&self.db, |tx| {
            let friends = tx.open_table(FRIENDS)?;
            let blocks = tx.open_table(BLOCKS)?;
            rows_after(&friends, user, after, limit, |friend, since_ms| {
                Ok(FriendRow {
                    user: stored_name(friend)?,
                    since_ms,
                    blocked: blocks.get((user.as_str(), friend))?.is_some(),
                })
            })
        })
    }

    /// A page of `user`'s pending friend requests in one direction, in name order of the
    /// other side: those after `after` (from the first if `None`), at most `limit`, and
    /// whether more follow.
    pub fn friend_requests_after(
        &self,
        user: &UserName,
        direction: RequestDirection,
        after: Option<&UserName>,
        limit: usize,
    ) -> Result<Rows<PendingRequest>, StoreError> {
        read(&self.db, |tx| {
            let requests = tx.open_table(FRIEND_REQUESTS)?;
            match direction {
                RequestDirection::Incoming => {
                    rows_after(&requests, user, after, limit, |from, bytes| {
                        let record: FriendRequestRecord = decode(bytes, "friend request")?;
                        Ok(PendingRequest {
                            user: stored_name(from)?,
                            note: record.note,
                            created_ms: record.created_ms,
                        })
                    })
                }
                RequestDirection::Outgoing => {
                    let sent = tx.open_table(FRIEND_REQUESTS_SENT)?;
                    rows_after(&sent, user, after, limit, |to, created_ms| {
                        outgoing_request(&requests, user, to, created_ms)
                    })
                }
            }
        })
    }

    /// Whether `a` and `b` are friends.
    pub fn are_friends(&self, a: &UserName, b: &UserName) -> Result<bool, StoreError> {
        read(&self.db, |tx| has_pair(&tx.open_table(FRIENDS)?, a, b))
    }

    /// Whether `blocker` blocked `blocked`.
    pub fn has_blocked(&self, blocker: &UserName, blocked: &UserName) -> Result<bool, StoreError> {
        read(&self.db, |tx| {
            has_pair(&tx.open_table(BLOCKS)?, blocker, blocked)
        })
    }

    /// Queues a 1:1 message `event` (with id `id`) from `from` for `to`, in one transaction:
    ///
    /// 1. [`StoreError::UnknownUser`] if `to` has no account; [`StoreError::NotFriends`]
    ///    unless they are friends; [`StoreError::BlockedByYou`] if `from` blocked `to`.
    /// 2. If `to` blocked `from`: [`MessageOutcome::Dropped`] with `now_ms`, and nothing is
    ///    written.
    /// 3. Otherwise exactly [`RelayStore::enqueue`] with `dedup = Some((from, id))`:
    ///    [`MessageOutcome::Queued`], or [`StoreError::QueueFull`].
    pub fn enqueue_message(
        &self,
        from: &UserName,
        to: &UserName,
        id: MessageId,
        event: &PushEvent,
        now_ms: u64,
        queue_limit: QueueLimit,
    ) -> Result<MessageOutcome, StoreError> {
        write(&self.db, |tx| {
            enqueue_message_in(tx, from, to, id, event.clone(), now_ms, queue_limit)
        })
    }

    /// Changes `user`'s public profile and returns it: `signature` replaces the signature
    /// if given, `avatar` sets, removes or keeps the avatar (whose version becomes the
    /// first 16 hex digits of its SHA-256), and `updated_ms` becomes `now_ms`.
    ///
    /// [`StoreError::UnknownUser`] if `user` has no account.
    pub fn set_profile(
        &self,
        user: &UserName,
        signature: Option<&str>,
        avatar: AvatarUpdate<'_>,
        now_ms: u64,
    ) -> Result<ProfileSummary, StoreError> {
        write(&self.db, |tx| {
            require_account(tx, user)?;
            let name = user.as_str();
            let mut profiles = tx.open_table(PROFILES)?;
            let mut record: PublicProfileRecord = match profiles.get(name)? {
                Some(v) => decode(v.value(), "profile")?,
                None => PublicProfileRecord::default(),
            };
            if let Some(signature) = signature {
                record.signature = signature.to_string();
            }
            match avatar {
                AvatarUpdate::Keep => {}
                AvatarUpdate::Remove => {
                    tx.open_table(AVATARS)?.remove(name)?;
                    record.avatar_version = None;
                }
                AvatarUpdate::Set(bytes) => {
                    tx.open_table(AVATARS)?.insert(name, bytes)?;
                    record.avatar_version = Some(avatar_version(bytes));
                }
            }
            record.updated_ms = now_ms;
            profiles.insert(name, encode(&record, "profile")?.as_slice())?;
            Ok(record.into())
        })
    }

    /// `user`'s public profile: `None` if there is no such account, the default (empty)
    /// profile if the user never set one.
    pub fn profile(&self, user: &UserName) -> Result<Option<ProfileSummary>, StoreError> {
        read(&self.db, |tx| {
            let name = user.as_str();
            if tx.open_table(ACCOUNTS)?.get(name)?.is_none() {
                return Ok(None);
            }
            let record: PublicProfileRecord = tx
                .open_table(PROFILES)?
                .get(name)?
                .map(|v| decode(v.value(), "profile"))
                .transpose()?
                .unwrap_or_default();
            Ok(Some(record.into()))
        })
    }

    /// `user`'s avatar as (version, bytes), if they have one.
    pub fn avatar(&self, user: &UserName) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        read(&self.db, |tx| {
            let name = user.as_str();
            let record: Option<PublicProfileRecord> = tx
                .open_table(PROFILES)?
                .get(name)?
                .map(|v| decode(v.value(), "profile"))
                .transpose()?;
            let Some(version) = record.and_then(|r| r.avatar_version) else {
                return Ok(None);
            };
            match tx.open_table(AVATARS)?.get(name)? {
                Some(bytes) => Ok(Some((version, bytes.value().to_vec()))),
                None => Err(StoreError::Corrupt {
                    what: "avatar",
                    reason: format!(
                        "the profile of {user} names avatar {version}, which is missing"
                    ),
                }),
            }
        })
    }
}

/// [`RelayStore::enqueue_message`] inside `tx`. Every refusal comes before the first
/// write, so a refused message leaves `tx` as it was (the batch in `batch.rs` relies on it).
pub(crate) fn enqueue_message_in(
    tx: &redb::WriteTransaction,
    from: &UserName,
    to: &UserName,
    id: MessageId,
    event: PushEvent,
    now_ms: u64,
    queue_limit: QueueLimit,
) -> Result<MessageOutcome, StoreError> {
    require_account(tx, to)?;
    if reach_in(tx, from, to)? == Reach::Silenced {
        return Ok(MessageOutcome::Dropped {
            relay_ts_ms: now_ms,
        });
    }
    enqueue_in(tx, to, event, Some((from, id)), now_ms, queue_limit).map(MessageOutcome::Queued)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::relay::tests::{account, limit, store_with, user};
    use uchat_wire::Seq;

    /// Social limits for tests: ten of everything, which no test here reaches by accident.
    pub(crate) const LIMITS: SocialLimits = SocialLimits {
        max_friends: 10,
        max_pending_incoming: 10,
        max_pending_outgoing: 10,
        queue: QueueLimit {
            max_events: 10,
            max_bytes: u64::MAX,
        },
    };

    /// The events waiting in `name`'s queue.
    fn events(store: &RelayStore, name: &str) -> Vec<PushEvent> {
        store
            .pending(&user(name), Seq(0), 100)
            .expect("reads")
            .into_iter()
            .map(|e| e.event)
            .collect()
    }

    /// Everything the social methods can change about `names`, to show that a call wrote
    /// nothing.
    fn snapshot(store: &RelayStore, names: &[&str]) -> Vec<(Seq, PendingRequests, Vec<FriendRow>)> {
        names
            .iter()
            .map(|name| {
                let u = user(name);
                (
                    store.queue_head(&u).expect("reads"),
                    store.friend_requests(&u).expect("reads"),
                    store.friends(&u).expect("reads"),
                )
            })
            .collect()
    }

    fn message(from: &str, id: u8) -> PushEvent {
        PushEvent::Message {
            from: user(from),
            id: MessageId([id; 16]),
            ciphertext: vec![id; 4],
        }
    }

    /// Makes `a` and `b` friends through a request and an acceptance.
    fn befriend(store: &RelayStore, a: &str, b: &str) {
        store
            .request_friend(&user(a), &user(b), "", 1, &LIMITS)
            .expect("requests");
        store
            .accept_friend(&user(b), &user(a), 2, &LIMITS)
            .expect("accepts");
    }

    fn names(rows: &[PendingRequest]) -> Vec<&str> {
        rows.iter().map(|r| r.user.as_str()).collect()
    }

    #[test]
    fn a_request_then_an_acceptance_makes_friends_both_ways_and_tells_each_side() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        let outcome = store
            .request_friend(&alice, &bob, "你好, it's alice", 100, &LIMITS)
            .expect("requests");
        assert!(matches!(outcome, FriendRequestOutcome::Sent(e) if e.seq == Seq(1)));
        assert_eq!(
            events(&store, "bob"),
            [PushEvent::FriendRequest {
                from: alice.clone(),
                note: "你好, it's alice".into()
            }]
        );
        let bobs = store.friend_requests(&bob).expect("reads");
        assert_eq!(
            bobs.incoming,
            [PendingRequest {
                user: alice.clone(),
                note: "你好, it's alice".into(),
                created_ms: 100
            }]
        );
        assert!(bobs.outgoing.is_empty());
        let alices = store.friend_requests(&alice).expect("reads");
        assert_eq!(
            alices.outgoing,
            [PendingRequest {
                user: bob.clone(),
                note: "你好, it's alice".into(),
                created_ms: 100
            }]
        );
        assert!(!store.are_friends(&alice, &bob).expect("reads"));

        let accepted = store
            .accept_friend(&bob, &alice, 200, &LIMITS)
            .expect("accepts");
        assert_eq!((accepted.seq, accepted.relay_ts_ms), (Seq(1), 200));
        assert_eq!(
            events(&store, "alice"),
            [PushEvent::FriendAccepted { by: bob.clone() }]
        );
        assert!(store.are_friends(&alice, &bob).expect("reads"));
        assert!(store.are_friends(&bob, &alice).expect("reads"));
        let row = |name: &str| FriendRow {
            user: user(name),
            since_ms: 200,
            blocked: false,
        };
        assert_eq!(store.friends(&alice).expect("reads"), [row("bob")]);
        assert_eq!(store.friends(&bob).expect("reads"), [row("alice")]);
        assert_eq!(
            store.friend_requests(&alice).expect("reads"),
            PendingRequests::default()
        );
        assert_eq!(
            store.friend_requests(&bob).expect("reads"),
            PendingRequests::default()
        );
    }

    #[test]
    fn mutual_requests_become_friends_with_a_friend_accepted_event() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        store
            .request_friend(&alice, &bob, "hi", 100, &LIMITS)
            .expect("requests");
        let outcome = store
            .request_friend(&bob, &alice, "hi too", 150, &LIMITS)
            .expect("requests");
        let FriendRequestOutcome::BecameFriends(enqueued) = outcome else {
            panic!("expected friends, got {outcome:?}");
        };
        assert_eq!((enqueued.seq, enqueued.relay_ts_ms), (Seq(1), 150));
        assert_eq!(
            events(&store, "alice"),
            [PushEvent::FriendAccepted { by: bob.clone() }]
        );
        assert_eq!(events(&store, "bob").len(), 1, "only alice's request");
        assert!(store.are_friends(&alice, &bob).expect("reads"));
        assert_eq!(store.friends(&bob).expect("reads")[0].since_ms, 150);
        for name in [&alice, &bob] {
            assert_eq!(
                store.friend_requests(name).expect("reads"),
                PendingRequests::default()
            );
        }
    }

    #[test]
    fn requests_to_oneself_strangers_friends_and_twice_are_refused() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob, ghost) = (user("alice"), user("bob"), user("ghost"));
        let err = store
            .request_friend(&alice, &alice, "", 1, &LIMITS)
            .expect_err("self");
        assert!(matches!(err, StoreError::SelfRelation), "{err:?}");
        let err = store
            .request_friend(&alice, &ghost, "", 1, &LIMITS)
            .expect_err("unknown");
        assert!(
            matches!(err, StoreError::UnknownUser { ref username } if username == &ghost),
            "{err:?}"
        );
        let err = store
            .request_friend(&ghost, &alice, "", 1, &LIMITS)
            .expect_err("unknown sender");
        assert!(
            matches!(err, StoreError::UnknownUser { ref username } if username == &ghost),
            "{err:?}"
        );

        store
            .request_friend(&alice, &bob, "", 1, &LIMITS)
            .expect("requests");
        let before = snapshot(&store, &["alice", "bob"]);
        let err = store
            .request_friend(&alice, &bob, "again", 2, &LIMITS)
            .expect_err("duplicate");
        assert!(
            matches!(err, StoreError::DuplicateRequest { ref to } if to == &bob),
            "{err:?}"
        );
        assert_eq!(snapshot(&store, &["alice", "bob"]), before);

        store
            .accept_friend(&bob, &alice, 3, &LIMITS)
            .expect("accepts");
        for (from, to) in [(&alice, &bob), (&bob, &alice)] {
            let err = store
                .request_friend(from, to, "", 4, &LIMITS)
                .expect_err("friends");
            assert!(
                matches!(err, StoreError::AlreadyFriends { ref other } if other == to),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_request_to_someone_who_blocked_you_is_dropped_and_writes_nothing() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        store.block(&bob, &alice, 10).expect("blocks");
        let before = snapshot(&store, &["alice", "bob"]);
        for _ in 0..2 {
            let outcome = store
                .request_friend(&alice, &bob, "please", 20, &LIMITS)
                .expect("answers");
            assert_eq!(outcome, FriendRequestOutcome::Dropped);
        }
        assert_eq!(snapshot(&store, &["alice", "bob"]), before);
        assert_eq!(store.queue_len(&bob).expect("len"), 0);
        assert!(events(&store, "bob").is_empty());
    }

    #[test]
    fn a_request_to_someone_you_blocked_asks_you_to_unblock_first() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        store.block(&alice, &bob, 10).expect("blocks");
        let err = store
            .request_friend(&alice, &bob, "", 20, &LIMITS)
            .expect_err("blocked");
        assert!(
            matches!(err, StoreError::BlockedByYou { ref other } if other == &bob),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "you blocked 'bob'; unblock them first");
        store.unblock(&alice, &bob).expect("unblocks");
        assert!(matches!(
            store.request_friend(&alice, &bob, "", 30, &LIMITS),
            Ok(FriendRequestOutcome::Sent(_))
        ));
    }

    #[test]
    fn a_request_to_a_full_queue_writes_nothing() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        let limits = SocialLimits {
            queue: QueueLimit {
                max_events: 1,
                max_bytes: u64::MAX,
            },
            ..LIMITS
        };
        store
            .enqueue(&bob, &message("carol", 1), None, 1, limit(1))
            .expect("fills the queue");
        let before = snapshot(&store, &["alice", "bob"]);
        let err = store
            .request_friend(&alice, &bob, "hi", 2, &limits)
            .expect_err("full");
        assert!(
            matches!(err, StoreError::QueueFull { ref recipient, len: 1 } if recipient == &bob),
            "{err:?}"
        );
        assert_eq!(snapshot(&store, &["alice", "bob"]), before);
    }

    #[test]
    fn accepting_into_a_full_queue_changes_nothing() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        store
            .request_friend(&alice, &bob, "", 1, &LIMITS)
            .expect("requests");
        store
            .enqueue(&alice, &message("carol", 1), None, 1, limit(1))
            .expect("fills alice's queue");
        let limits = SocialLimits {
            queue: QueueLimit {
                max_events: 1,
                max_bytes: u64::MAX,
            },
            ..LIMITS
        };
        let before = snapshot(&store, &["alice", "bob"]);
        let err = store
            .accept_friend(&bob, &alice, 2, &limits)
            .expect_err("full");
        assert!(matches!(err, StoreError::QueueFull { .. }), "{err:?}");
        assert_eq!(snapshot(&store, &["alice", "bob"]), before);
        assert!(!store.are_friends(&alice, &bob).expect("reads"));
    }

    #[test]
    fn accepting_or_rejecting_a_missing_request_is_no_such_request() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        let err = store
            .accept_friend(&bob, &alice, 1, &LIMITS)
            .expect_err("none");
        assert!(
            matches!(err, StoreError::NoSuchRequest { ref from } if from == &alice),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "there is no pending friend request from 'alice'"
        );
        let err = store.reject_friend(&bob, &alice).expect_err("none");
        assert!(matches!(err, StoreError::NoSuchRequest { .. }), "{err:?}");
        // A request goes one way: the sender cannot accept their own.
        store
            .request_friend(&alice, &bob, "", 1, &LIMITS)
            .expect("requests");
        let err = store
            .accept_friend(&alice, &bob, 2, &LIMITS)
            .expect_err("wrong side");
        assert!(matches!(err, StoreError::NoSuchRequest { .. }), "{err:?}");
        assert!(!store.are_friends(&alice, &bob).expect("reads"));
    }

    #[test]
    fn rejecting_removes_the_request_without_telling_the_sender() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        store
            .request_friend(&alice, &bob, "", 1, &LIMITS)
            .expect("requests");
        store.reject_friend(&bob, &alice).expect("rejects");
        assert_eq!(store.queue_len(&alice).expect("len"), 0);
        for name in [&alice, &bob] {
            assert_eq!(
                store.friend_requests(name).expect("reads"),
                PendingRequests::default()
            );
        }
        assert!(!store.are_friends(&alice, &bob).expect("reads"));
        let err = store.reject_friend(&bob, &alice).expect_err("gone");
        assert!(matches!(err, StoreError::NoSuchRequest { .. }), "{err:?}");
        // The sender may ask again.
        assert!(matches!(
            store.request_friend(&alice, &bob, "", 2, &LIMITS),
            Ok(FriendRequestOutcome::Sent(_))
        ));
    }

    #[test]
    fn removing_a_friend_ends_it_both_ways_and_tells_the_other_side() {
        let (_dir, store) = store_with(&["alice", "bob", "carol"]);
        let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
        befriend(&store, "alice", "bob");
        store.ack_through(&alice, Seq(10)).expect("acks");
        let removed = store
            .remove_friend(&bob, &alice, 50, limit(10))
            .expect("removes")
            .expect("told");
        assert_eq!(removed.relay_ts_ms, 50);
        assert_eq!(
            events(&store, "alice"),
            [PushEvent::FriendRemoved { by: bob.clone() }]
        );
        assert!(!store.are_friends(&alice, &bob).expect("reads"));
        assert!(!store.are_friends(&bob, &alice).expect("reads"));
        assert!(store.friends(&alice).expect("reads").is_empty());

        let err = store
            .remove_friend(&bob, &alice, 60, limit(10))
            .expect_err("not friends");
        assert!(
            matches!(err, StoreError::NotFriends { ref user, ref other } if user == &bob && other == &alice),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "'bob' and 'alice' are not friends; send a friend request first"
        );
        let err = store
            .remove_friend(&bob, &carol, 60, limit(10))
            .expect_err("not friends");
        assert!(matches!(err, StoreError::NotFriends { .. }), "{err:?}");
    }

    #[test]
    fn removing_a_friend_with_a_full_queue_still_removes() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        befriend(&store, "alice", "bob");
        // alice's queue holds the FriendAccepted event: a limit of 1 makes it full.
        let head = store.queue_head(&alice).expect("reads");
        assert_eq!(
            store
                .remove_friend(&bob, &alice, 50, limit(1))
                .expect("removes"),
            None
        );
        assert_eq!(store.queue_head(&alice).expect("reads"), head);
        assert!(!store.are_friends(&alice, &bob).expect("reads"));
        assert!(!store.are_friends(&bob, &alice).expect("reads"));
    }

    #[test]
    fn blocking_removes_requests_keeps_friendships_and_is_idempotent() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        let (alice, bob, carol, dave) = (user("alice"), user("bob"), user("carol"), user("dave"));
        store
            .request_friend(&alice, &bob, "", 1, &LIMITS)
            .expect("requests");
        store
            .request_friend(&carol, &alice, "", 1, &LIMITS)
            .expect("requests");
        befriend(&store, "alice", "dave");

        store.block(&alice, &bob, 10).expect("blocks");
        store.block(&alice, &carol, 10).expect("blocks");
        store.block(&alice, &dave, 10).expect("blocks");
        store
            .block(&alice, &dave, 20)
            .expect("blocking again is fine");
        for name in [&alice, &bob, &carol] {
            assert_eq!(
                store.friend_requests(name).expect("reads"),
                PendingRequests::default(),
                "{name}"
            );
        }
        assert!(store.has_blocked(&alice, &bob).expect("reads"));
        assert!(!store.has_blocked(&bob, &alice).expect("one way"));
        assert_eq!(
            store.friends(&alice).expect("reads"),
            [FriendRow {
                user: dave.clone(),
                since_ms: 2,
                blocked: true
            }]
        );
        assert_eq!(
            store.friends(&dave).expect("reads"),
            [FriendRow {
                user: alice.clone(),
                since_ms: 2,
                blocked: false
            }],
            "the flag is the list owner's block"
        );

        store.unblock(&alice, &dave).expect("unblocks");
        store
            .unblock(&alice, &dave)
            .expect("unblocking again is fine");
        assert!(!store.has_blocked(&alice, &dave).expect("reads"));
        assert!(!store.friends(&alice).expect("reads")[0].blocked);
    }

    #[test]
    fn a_request_that_ends_before_delivery_leaves_nothing_in_the_recipients_queue() {
        let (_dir, store) = store_with(&["mallory", "alice"]);
        let (mallory, alice) = (user("mallory"), user("alice"));
        // Request, block, unblock: each round ended the request; none may pile up.
        for round in 0..60 {
            let note = format!("round {round}");
            store
                .request_friend(&mallory, &alice, &note, round, &LIMITS)
                .expect("requests");
            store.block(&mallory, &alice, round).expect("blocks");
            store.unblock(&mallory, &alice).expect("unblocks");
        }
        assert_eq!(store.queue_len(&alice).expect("len"), 0);
        assert_eq!(store.queue_usage(&alice).expect("usage"), (0, 0));
        assert!(
            events(&store, "alice")
                .iter()
                .all(|e| *e == PushEvent::Withdrawn),
            "only empty places are left"
        );
        // The places keep their seqs, so the queue stays one run the peer acknowledges.
        let (acked, head) = store.queue_span(&alice).expect("span");
        assert_eq!((acked, head), (Seq(0), Seq(60)));

        // A request the recipient rejects or the sender is blocked for goes the same way;
        // one still pending stays, and one taken in already is not touched.
        store
            .request_friend(&mallory, &alice, "pending", 100, &LIMITS)
            .expect("requests");
        assert_eq!(store.queue_len(&alice).expect("len"), 1);
        store.ack_through(&alice, Seq(61)).expect("acks");
        store.reject_friend(&alice, &mallory).expect("rejects");
        assert_eq!(store.queue_usage(&alice).expect("usage"), (0, 0));
        store
            .request_friend(&mallory, &alice, "again", 101, &LIMITS)
            .expect("requests");
        store.block(&alice, &mallory, 102).expect("blocks");
        assert_eq!(store.queue_len(&alice).expect("len"), 0);
    }

    #[test]
    fn a_queue_is_full_by_bytes_as_well_as_by_events() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        befriend(&store, "alice", "bob");
        let limit = QueueLimit {
            max_events: 1000,
            max_bytes: 3000,
        };
        let big = |id: u8| PushEvent::Message {
            from: alice.clone(),
            id: MessageId([id; 16]),
            ciphertext: vec![id; 1000],
        };
        for id in 1..=3 {
            store
                .enqueue_message(&alice, &bob, MessageId([id; 16]), &big(id), 1, limit)
                .expect("room");
        }
        let (events, bytes) = store.queue_usage(&bob).expect("usage");
        assert_eq!(events, 3);
        assert!(bytes > 3000, "{bytes}");
        let err = store
            .enqueue_message(&alice, &bob, MessageId([4; 16]), &big(4), 1, limit)
            .expect_err("full by bytes");
        assert!(
            matches!(err, StoreError::QueueFull { len: 3, .. }),
            "{err:?}"
        );
        // Taking events in frees their bytes.
        store.ack_through(&bob, Seq(3)).expect("acks");
        let (events, bytes) = store.queue_usage(&bob).expect("usage");
        assert_eq!(events, 1);
        assert!(bytes < 3000 / 2, "{bytes}");
        store
            .enqueue_message(&alice, &bob, MessageId([4; 16]), &big(4), 1, limit)
            .expect("room again");
    }

    #[test]
    fn blocking_oneself_or_a_stranger_is_refused() {
        let (_dir, store) = store_with(&["alice"]);
        let (alice, ghost) = (user("alice"), user("ghost"));
        let err = store.block(&alice, &alice, 1).expect_err("self");
        assert!(matches!(err, StoreError::SelfRelation), "{err:?}");
        assert_eq!(
            err.to_string(),
            "you cannot befriend or block yourself; name another user"
        );
        let err = store.block(&alice, &ghost, 1).expect_err("unknown");
        assert!(matches!(err, StoreError::UnknownUser { .. }), "{err:?}");
        let err = store.unblock(&alice, &ghost).expect_err("unknown");
        assert!(matches!(err, StoreError::UnknownUser { .. }), "{err:?}");
        assert!(!store.has_blocked(&alice, &ghost).expect("reads"));
    }

    #[test]
    fn lists_come_in_name_order_and_requests_oldest_first() {
        let (_dir, store) = store_with(&["alice", "alicea", "bob", "carol", "dave", "erin"]);
        let alice = user("alice");
        // "alicea" sorts right after "alice": its rows must not leak into alice's lists.
        befriend(&store, "alicea", "erin");
        store
            .request_friend(&user("alicea"), &user("bob"), "", 1, &LIMITS)
            .expect("requests");
        for name in ["dave", "bob"] {
            befriend(&store, "alice", name);
        }
        store
            .request_friend(&user("carol"), &alice, "c", 30, &LIMITS)
            .expect("requests");
        store
            .request_friend(&user("alicea"), &alice, "a", 30, &LIMITS)
            .expect("requests");
        store
            .request_friend(&user("erin"), &alice, "e", 20, &LIMITS)
            .expect("requests");
        let friends: Vec<_> = store
            .friends(&alice)
            .expect("reads")
            .into_iter()
            .map(|r| r.user)
            .collect();
        assert_eq!(friends, [user("bob"), user("dave")]);
        let requests = store.friend_requests(&alice).expect("reads");
        assert_eq!(names(&requests.incoming), ["erin", "alicea", "carol"]);
        assert!(requests.outgoing.is_empty());
        let sent = store.friend_requests(&user("alicea")).expect("reads");
        assert_eq!(
            names(&sent.outgoing),
            ["bob", "alice"],
            "sent at 1 and 30: oldest first, not by name"
        );
        assert_eq!(sent.outgoing[1].note, "a");
        assert!(store.friends(&user("ghost")).expect("reads").is_empty());
    }

    #[test]
    fn the_friend_limit_is_enforced_on_both_sides() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        let (alice, bob, carol, dave) = (user("alice"), user("bob"), user("carol"), user("dave"));
        let limits = SocialLimits {
            max_friends: 1,
            ..LIMITS
        };
        befriend(&store, "alice", "bob");
        // An acceptance by the side at its limit.
        store
            .request_friend(&carol, &alice, "", 3, &limits)
            .expect("requests are not limited by friends");
        let err = store
            .accept_friend(&alice, &carol, 4, &limits)
            .expect_err("alice is at her limit");
        assert!(
            matches!(
                err,
                StoreError::LimitReached {
                    what: "friends",
                    limit: 1
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "the limit on friends (1) is reached");
        assert_eq!(
            names(&store.friend_requests(&alice).expect("reads").incoming),
            ["carol"],
            "the request stays"
        );
        // An acceptance of a requester at the limit.
        store
            .request_friend(&bob, &dave, "", 5, &limits)
            .expect("requests");
        let err = store
            .accept_friend(&dave, &bob, 6, &limits)
            .expect_err("bob is at his limit");
        assert!(matches!(err, StoreError::LimitReached { .. }), "{err:?}");
        // Crossing requests where one side is at the limit.
        let err = store
            .request_friend(&alice, &carol, "", 7, &limits)
            .expect_err("alice is at her limit");
        assert!(matches!(err, StoreError::LimitReached { .. }), "{err:?}");
        assert!(!store.are_friends(&alice, &carol).expect("reads"));
        assert_eq!(store.friends(&alice).expect("reads").len(), 1);
    }

    #[test]
    fn the_pending_request_limit_is_enforced_for_the_recipient() {
        let (_dir, store) = store_with(&["alice", "bob", "carol"]);
        let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
        let limits = SocialLimits {
            max_pending_incoming: 1,
            ..LIMITS
        };
        store
            .request_friend(&bob, &alice, "", 1, &limits)
            .expect("requests");
        let before = snapshot(&store, &["alice", "carol"]);
        let err = store
            .request_friend(&carol, &alice, "", 2, &limits)
            .expect_err("alice has too many");
        assert!(
            matches!(
                err,
                StoreError::LimitReached {
                    what: "pending friend requests",
                    limit: 1
                }
            ),
            "{err:?}"
        );
        assert_eq!(snapshot(&store, &["alice", "carol"]), before);
        // Answering a crossing request is still possible at the limit.
        assert!(matches!(
            store.request_friend(&alice, &bob, "", 3, &limits),
            Ok(FriendRequestOutcome::BecameFriends(_))
        ));
    }

    #[test]
    fn the_pending_request_limit_is_enforced_for_the_sender() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        let (alice, bob, carol, dave) = (user("alice"), user("bob"), user("carol"), user("dave"));
        let limits = SocialLimits {
            max_pending_outgoing: 2,
            ..LIMITS
        };
        for to in [&bob, &carol] {
            store
                .request_friend(&alice, to, "", 1, &limits)
                .expect("requests");
        }
        let before = snapshot(&store, &["alice", "dave"]);
        let err = store
            .request_friend(&alice, &dave, "", 2, &limits)
            .expect_err("alice has asked too many");
        assert!(
            matches!(
                err,
                StoreError::LimitReached {
                    what: "friend requests of yours waiting for an answer",
                    limit: 2
                }
            ),
            "{err:?}"
        );
        assert_eq!(snapshot(&store, &["alice", "dave"]), before);
        // Answering someone's request still works at the limit, and an answered request
        // frees its place.
        store
            .request_friend(&dave, &alice, "", 3, &limits)
            .expect("dave asks");
        store
            .accept_friend(&alice, &dave, 4, &limits)
            .expect("alice accepts at her limit");
        store.reject_friend(&bob, &alice).expect("bob says no");
        store
            .request_friend(&alice, &user("bob"), "again", 5, &limits)
            .expect("room again");
    }

    /// Every page of a list, read `limit` rows at a time from the start.
    fn pages<T: Clone>(mut read: impl FnMut(Option<&T>) -> Rows<T>, limit: usize) -> Vec<Vec<T>> {
        let mut out: Vec<Vec<T>> = Vec::new();
        loop {
            let rows = read(out.last().and_then(|page| page.last()));
            assert!(rows.rows.len() <= limit, "a page of {}", rows.rows.len());
            let more = rows.more;
            out.push(rows.rows);
            if !more {
                return out;
            }
        }
    }

    #[test]
    fn friends_and_requests_are_read_a_page_at_a_time_in_name_order() {
        let (_dir, store) =
            store_with(&["alice", "alicea", "bob", "carol", "dave", "erin", "frank"]);
        let alice = user("alice");
        // "alicea" sorts right after "alice": its rows must not leak into alice's pages.
        befriend(&store, "alicea", "erin");
        store
            .request_friend(&user("alicea"), &user("bob"), "", 1, &LIMITS)
            .expect("requests");
        for name in ["frank", "bob", "dave"] {
            befriend(&store, "alice", name);
        }
        store.block(&alice, &user("dave"), 5).expect("blocks");
        for (i, name) in ["erin", "carol", "alicea"].into_iter().enumerate() {
            store
                .request_friend(&user(name), &alice, name, 10 - i as u64, &LIMITS)
                .expect("requests");
        }

        let friend_pages = pages(
            |after: Option<&FriendRow>| {
                store
                    .friends_after(&alice, after.map(|f| &f.user), 2)
                    .expect("reads")
            },
            2,
        );
        let listed: Vec<Vec<&str>> = friend_pages
            .iter()
            .map(|page| page.iter().map(|f| f.user.as_str()).collect())
            .collect();
        assert_eq!(listed, [vec!["bob", "dave"], vec!["frank"]]);
        assert!(friend_pages[0][1].blocked, "dave is blocked");
        assert_eq!(
            friend_pages.concat(),
            store.friends(&alice).expect("reads"),
            "the pages hold what the whole list does"
        );
        // A page that ends exactly at the list's end says so.
        let whole = store.friends_after(&alice, None, 3).expect("reads");
        assert_eq!((whole.rows.len(), whole.more), (3, false));

        let incoming = pages(
            |after: Option<&PendingRequest>| {
                store
                    .friend_requests_after(
                        &alice,
                        RequestDirection::Incoming,
                        after.map(|r| &r.user),
                        1,
                    )
                    .expect("reads")
            },
            1,
        );
        let listed: Vec<&str> = incoming.iter().flatten().map(|r| r.user.as_str()).collect();
        assert_eq!(listed, ["alicea", "carol", "erin"], "by name, not by age");
        assert_eq!(incoming.len(), 3);
        assert_eq!(incoming[0][0].note, "alicea");
        let outgoing = store
            .friend_requests_after(&user("alicea"), RequestDirection::Outgoing, None, 10)
            .expect("reads");
        assert_eq!(names(&outgoing.rows), ["alice", "bob"]);
        assert_eq!(outgoing.rows[0].note, "alicea");
        let after_alice = store
            .friend_requests_after(
                &user("alicea"),
                RequestDirection::Outgoing,
                Some(&alice),
                10,
            )
            .expect("reads");
        assert_eq!(names(&after_alice.rows), ["bob"]);
        // A cursor that names nobody in the list still continues after it.
        let after_c = store
            .friends_after(&alice, Some(&user("c")), 10)
            .expect("reads");
        let listed: Vec<&str> = after_c.rows.iter().map(|f| f.user.as_str()).collect();
        assert_eq!(listed, ["dave", "frank"]);
        let nobody = store
            .friends_after(&user("ghost"), None, 10)
            .expect("reads");
        assert_eq!(nobody, Rows::default());
    }

    #[test]
    fn a_page_read_at_the_edges_of_a_list_says_truly_whether_more_follow() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        let alice = user("alice");
        let no_requests = store
            .friend_requests_after(&alice, RequestDirection::Outgoing, None, 10)
            .expect("reads");
        assert_eq!(
            no_requests,
            Rows::default(),
            "an empty list: no rows, no more"
        );
        for name in ["bob", "carol"] {
            befriend(&store, "alice", name);
        }
        let names_of = |rows: &Rows<FriendRow>| -> Vec<String> {
            rows.rows.iter().map(|f| f.user.to_string()).collect()
        };
        // A page exactly as long as the list: everything, and nothing after it.
        let exact = store.friends_after(&alice, None, 2).expect("reads");
        assert_eq!(
            (names_of(&exact), exact.more),
            (vec!["bob".into(), "carol".into()], false)
        );
        // One short of the list: more follow, and the next page holds only the last.
        let short = store.friends_after(&alice, None, 1).expect("reads");
        assert_eq!((names_of(&short), short.more), (vec!["bob".into()], true));
        let rest = store
            .friends_after(&alice, Some(&user("bob")), 1)
            .expect("reads");
        assert_eq!((names_of(&rest), rest.more), (vec!["carol".into()], false));
        // The cursor at the last entry: strictly after it is nothing.
        let after_last = store
            .friends_after(&alice, Some(&user("carol")), 10)
            .expect("reads");
        assert_eq!(after_last, Rows::default());
        // The cursor names a friend of a friend, not alice's: her list is not left.
        let bobs = store
            .friends_after(&user("bob"), Some(&alice), 10)
            .expect("reads");
        assert_eq!(bobs, Rows::default());
    }

    #[test]
    fn messages_go_to_friends_only_and_once_per_id() {
        let (_dir, store) = store_with(&["alice", "bob", "carol"]);
        let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
        let id = MessageId([7; 16]);
        let before = snapshot(&store, &["alice", "carol"]);
        let err = store
            .enqueue_message(&alice, &carol, id, &message("alice", 7), 10, limit(10))
            .expect_err("not friends");
        assert!(
            matches!(err, StoreError::NotFriends { ref user, ref other } if user == &alice && other == &carol),
            "{err:?}"
        );
        assert_eq!(snapshot(&store, &["alice", "carol"]), before);
        let err = store
            .enqueue_message(
                &alice,
                &user("ghost"),
                id,
                &message("alice", 7),
                10,
                limit(10),
            )
            .expect_err("unknown");
        assert!(matches!(err, StoreError::UnknownUser { .. }), "{err:?}");

        befriend(&store, "alice", "bob");
        let head = store.queue_head(&bob).expect("reads");
        let first = store
            .enqueue_message(&alice, &bob, id, &message("alice", 7), 100, limit(10))
            .expect("queues");
        let MessageOutcome::Queued(first) = first else {
            panic!("expected queued, got {first:?}");
        };
        assert_eq!(
            (first.seq, first.relay_ts_ms, first.duplicate),
            (Seq(head.0 + 1), 100, false)
        );
        let again = store
            .enqueue_message(&alice, &bob, id, &message("alice", 7), 200, limit(10))
            .expect("queues");
        assert_eq!(
            again,
            MessageOutcome::Queued(Enqueued {
                seq: first.seq,
                relay_ts_ms: 100,
                duplicate: true
            })
        );
        assert_eq!(store.queue_head(&bob).expect("reads"), first.seq);

        let err = store
            .enqueue_message(
                &alice,
                &bob,
                MessageId([8; 16]),
                &message("alice", 8),
                300,
                limit(1),
            )
            .expect_err("full");
        assert!(matches!(err, StoreError::QueueFull { .. }), "{err:?}");
    }

    #[test]
    fn messages_to_a_blocker_are_dropped_and_to_the_blocked_refused() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        befriend(&store, "alice", "bob");
        store.block(&bob, &alice, 5).expect("blocks");
        let before = snapshot(&store, &["alice", "bob"]);
        let outcome = store
            .enqueue_message(
                &alice,
                &bob,
                MessageId([1; 16]),
                &message("alice", 1),
                100,
                limit(10),
            )
            .expect("answers");
        assert_eq!(outcome, MessageOutcome::Dropped { relay_ts_ms: 100 });
        assert_eq!(snapshot(&store, &["alice", "bob"]), before);

        let err = store
            .enqueue_message(
                &bob,
                &alice,
                MessageId([2; 16]),
                &message("bob", 2),
                100,
                limit(10),
            )
            .expect_err("blocked by the sender");
        assert!(
            matches!(err, StoreError::BlockedByYou { ref other } if other == &alice),
            "{err:?}"
        );
        assert_eq!(snapshot(&store, &["alice", "bob"]), before);

        // Unblocked, the same id is a new message: the dropped one left no dedup entry.
        store.unblock(&bob, &alice).expect("unblocks");
        let outcome = store
            .enqueue_message(
                &alice,
                &bob,
                MessageId([1; 16]),
                &message("alice", 1),
                200,
                limit(10),
            )
            .expect("queues");
        assert!(matches!(outcome, MessageOutcome::Queued(e) if !e.duplicate));
    }

    #[test]
    fn profile_fields_keep_their_values_when_not_given() {
        let (_dir, store) = store_with(&["alice"]);
        let alice = user("alice");
        assert_eq!(
            store.profile(&alice).expect("reads"),
            Some(ProfileSummary::default())
        );
        assert_eq!(store.profile(&user("ghost")).expect("reads"), None);

        let set = store
            .set_profile(&alice, Some("在路上"), AvatarUpdate::Set(b"png-1"), 10)
            .expect("sets");
        assert_eq!(set.signature, "在路上");
        assert_eq!(set.updated_ms, 10);
        let version = set.avatar_version.clone().expect("has an avatar");
        assert_eq!(version.len(), 16);
        assert!(version.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
        assert_eq!(store.profile(&alice).expect("reads"), Some(set.clone()));

        let kept = store
            .set_profile(&alice, None, AvatarUpdate::Keep, 20)
            .expect("sets");
        assert_eq!(
            kept,
            ProfileSummary {
                updated_ms: 20,
                ..set.clone()
            }
        );
        let new_signature = store
            .set_profile(&alice, Some(""), AvatarUpdate::Keep, 30)
            .expect("sets");
        assert_eq!(new_signature.signature, "");
        assert_eq!(new_signature.avatar_version, Some(version.clone()));
        assert_eq!(
            store.avatar(&alice).expect("reads"),
            Some((version, b"png-1".to_vec()))
        );

        let err = store
            .set_profile(&user("ghost"), Some("x"), AvatarUpdate::Keep, 1)
            .expect_err("unknown");
        assert!(matches!(err, StoreError::UnknownUser { .. }), "{err:?}");
    }

    #[test]
    fn the_avatar_version_follows_the_bytes() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        assert_eq!(store.avatar(&alice).expect("reads"), None);
        let version = |store: &RelayStore, who: &UserName, bytes: &[u8]| {
            store
                .set_profile(who, None, AvatarUpdate::Set(bytes), 1)
                .expect("sets")
                .avatar_version
                .expect("has one")
        };
        let one = version(&store, &alice, b"one");
        assert_eq!(version(&store, &alice, b"one"), one, "same bytes, same tag");
        assert_eq!(version(&store, &bob, b"one"), one, "the tag is the image's");
        let two = version(&store, &alice, b"two");
        assert_ne!(one, two);
        assert_eq!(
            store.avatar(&alice).expect("reads"),
            Some((two, b"two".to_vec()))
        );
        // The well-known SHA-256 of "abc" starts ba7816bf8f01cfea.
        assert_eq!(version(&store, &alice, b"abc"), "ba7816bf8f01cfea");

        let removed = store
            .set_profile(&alice, Some("no face"), AvatarUpdate::Remove, 2)
            .expect("removes");
        assert_eq!(removed.avatar_version, None);
        assert_eq!(store.avatar(&alice).expect("reads"), None);
        assert_eq!(
            store.avatar(&bob).expect("reads"),
            Some((one, b"one".to_vec())),
            "others keep theirs"
        );
        store
            .set_profile(&alice, None, AvatarUpdate::Remove, 3)
            .expect("removing none is fine");
        assert_eq!(store.avatar(&user("ghost")).expect("reads"), None);
    }

    #[test]
    fn social_state_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.redb");
        {
            let store = RelayStore::open(&path).expect("opens");
            for name in ["alice", "bob", "carol"] {
                store.create_account(&account(name)).expect("creates");
            }
            befriend(&store, "alice", "bob");
            store
                .request_friend(&user("carol"), &user("alice"), "hey", 5, &LIMITS)
                .expect("requests");
            store
                .block(&user("bob"), &user("carol"), 6)
                .expect("blocks");
            store
                .set_profile(&user("alice"), Some("sig"), AvatarUpdate::Set(b"img"), 7)
                .expect("sets");
        }
        let store = RelayStore::open(&path).expect("reopens");
        assert!(
            store
                .are_friends(&user("bob"), &user("alice"))
                .expect("reads")
        );
        assert_eq!(
            names(
                &store
                    .friend_requests(&user("alice"))
                    .expect("reads")
                    .incoming
            ),
            ["carol"]
        );
        assert!(
            store
                .has_blocked(&user("bob"), &user("carol"))
                .expect("reads")
        );
        assert_eq!(
            store.avatar(&user("alice")).expect("reads").map(|a| a.1),
            Some(b"img".to_vec())
        );
    }

    #[test]
    fn avatar_update_debug_shows_the_length_only() {
        assert_eq!(
            format!("{:?}", AvatarUpdate::Set(&[1, 2, 3])),
            "Set(<3 bytes>)"
        );
        assert_eq!(format!("{:?}", AvatarUpdate::Keep), "Keep");
    }

    #[test]
    fn error_messages_name_the_users() {
        let cases = [
            (
                StoreError::AlreadyFriends { other: user("bob") },
                "you and 'bob' are friends already",
            ),
            (
                StoreError::DuplicateRequest { to: user("bob") },
                "a friend request to 'bob' is pending already; wait for them to answer",
            ),
            (
                StoreError::LimitReached {
                    what: "pending friend requests",
                    limit: 50,
                },
                "the limit on pending friend requests (50) is reached",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }
}
