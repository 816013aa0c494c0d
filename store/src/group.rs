//! The relay's groups, a third `impl` block of [`RelayStore`]: groups and their members,
//! membership changes, and the fan-out of group messages.
//!
//! Every method is one transaction, like the rest of [`RelayStore`]. A membership change
//! and the [`PushEvent::GroupChanged`] that tells every member (and the one who left or was
//! removed) commit together, and raise the group's epoch.
//!
//! A group message is stored once (`GROUP_MESSAGES`) and each other member's queue gets a
//! row that refers to it, so a message to 200 members costs one copy of its ciphertext and
//! 199 small rows. The key shares that travel with it are queued before it, in the same
//! transaction, so every member's queue holds the key before the message that needs it.
//! A membership event carries the whole member list only to whoever had none before (at
//! creation, and to a new member); the others get the change alone.
//!
//! Queue quotas: a member whose queue is full ([`QueueLimit`]) does not hold up the
//! group: they are skipped for that message ([`GroupSent::skipped`]). Membership events
//! (one small row each) always go through, since a member's view of the group is built
//! from all of them. Key shares go past the quota, so a member holds the keys to what they
//! do get, up to a hard ceiling of [`CEILING_FACTOR`] times the quota; past it a share is
//! not queued and the sender is told ([`GroupSent::unshared`]), so it goes again later.
//!
//! Blocks: the owner cannot add someone they blocked, and someone who blocked the owner is
//! left out without a word (as a blocked friend request is dropped). Group messages are not
//! filtered by blocks, as in WeChat: a block is between two people, a group is everyone's.

use std::collections::HashSet;

use redb::ReadableTable;
use uchat_wire::{GroupChange, GroupId, GroupInfo, GroupMember, MessageId, PushEvent, UserName};

use crate::error::StoreError;
use crate::reach::{Reach, reach_in};
use crate::records::{GroupMessageRecord, GroupMessageRef, GroupRecord, QueueBody};
use crate::relay::{
    QueueLimit, QueueWriter, RelayStore, Rows, earlier_send_in, remember_send_in, require_account,
};
use crate::tables::{
    GROUP_MEMBERS, GROUP_MESSAGES, GROUPS, USER_GROUPS, decode, encode, read, stored_name, write,
};

/// How many times its [`QueueLimit`] a queue may grow to with key shares, which go past
/// the quota (see the module docs).
pub const CEILING_FACTOR: u64 = 2;

/// Limits of the group layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupLimits {
    /// Most members a group may have, the owner included.
    pub max_members: usize,
    /// Most groups one user may be in.
    pub max_groups_per_user: u64,
    /// What a user's queue may hold, as for [`RelayStore::enqueue`]; group messages to a
    /// member whose queue is full are refused ([`StoreError::QueueFull`]).
    pub queue: QueueLimit,
}

/// What [`RelayStore::send_group_message`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSent {
    /// When the message was (first) stored, by the relay's clock.
    pub relay_ts_ms: u64,
    /// True if this sender sent this id to this group before: nothing new was queued.
    pub duplicate: bool,
    /// The members whose queues grew (to wake their pushers).
    pub recipients: Vec<UserName>,
    /// The members skipped because their queues are full.
    pub skipped: Vec<UserName>,
    /// The members whose key share was not queued (their queues are past the ceiling).
    pub unshared: Vec<UserName>,
}

/// What [`RelayStore::leave_group`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaveOutcome {
    /// The user left; the group goes on like this.
    Left(GroupInfo),
    /// The user was the last member: the group is gone.
    Deleted,
}

/// One member as stored: (name, join order, joined_ms).
type MemberRow = (UserName, u64, u64);

/// The key a group's sends are de-duplicated under in the `DEDUP` table, where user names
/// are the other keys: `#` cannot start a user name, so the two never meet.
fn dedup_key(group: GroupId) -> String {
    format!("#{group}")
}

/// A group id as a table key holds it.
fn stored_group_id(id: &[u8]) -> Result<GroupId, StoreError> {
    Ok(GroupId(id.try_into().map_err(|_| StoreError::Corrupt {
        what: "group id",
        reason: format!("{} bytes instead of 16", id.len()),
    })?))
}

pub(crate) fn group_record(
    groups: &impl ReadableTable<&'static [u8], &'static [u8]>,
    group: GroupId,
) -> Result<Option<GroupRecord>, StoreError> {
    groups
        .get(group.0.as_slice())?
        .map(|v| decode(v.value(), "group"))
        .transpose()
}

/// The group's members, longest-standing first.
pub(crate) fn members_of(
    members: &impl ReadableTable<(&'static [u8], &'static str), (u64, u64)>,
    group: GroupId,
) -> Result<Vec<MemberRow>, StoreError> {
    let key = group.0.as_slice();
    let mut out = Vec::new();
    // The empty name sorts first, so this range starts at the group's first member; it runs
    // on into later groups, hence the check on the id.
    for item in members.range((key, "")..)? {
        let (k, v) = item?;
        let (id, user) = k.value();
        if id != key {
            break;
        }
        let (order, joined_ms) = v.value();
        out.push((stored_name(user)?, order, joined_ms));
    }
    out.sort_by_key(|(_, order, _)| *order);
    Ok(out)
}

fn info_of(group: GroupId, record: &GroupRecord, members: &[MemberRow]) -> GroupInfo {
    GroupInfo {
        id: group,
        name: record.name.clone(),
        owner: record.owner.clone(),
        epoch: record.epoch,
        created_ms: record.created_ms,
        members: members
            .iter()
            .map(|(user, _, joined_ms)| GroupMember {
                user: user.clone(),
                joined_ms: *joined_ms,
            })
            .collect(),
    }
}

/// The group `asker` is a member of, with its members; [`StoreError::NoSuchGroup`] if it
/// does not exist or `asker` is not in it (the two are not told apart, so non-members learn
/// nothing about groups).
fn group_of_member_in(
    tx: &redb::WriteTransaction,
    asker: &UserName,
    group: GroupId,
) -> Result<(GroupRecord, Vec<MemberRow>), StoreError> {
    let record = group_record(&tx.open_table(GROUPS)?, group)?;
    let members = members_of(&tx.open_table(GROUP_MEMBERS)?, group)?;
    match record {
        Some(record) if members.iter().any(|(user, _, _)| user == asker) => Ok((record, members)),
        _ => Err(StoreError::NoSuchGroup { group }),
    }
}

/// [`StoreError::NotGroupOwner`] unless `asker` owns the group.
fn require_owner(record: &GroupRecord, asker: &UserName, group: GroupId) -> Result<(), StoreError> {
    if &record.owner != asker {
        return Err(StoreError::NotGroupOwner {
            group,
            owner: record.owner.clone(),
        });
    }
    Ok(())
}

/// Whether `owner` may add `user`: `Ok(true)` if so, `Ok(false)` if `user` blocked the
/// owner (left out silently); an error if they are not friends or the owner blocked them.
fn may_add_in(
    tx: &redb::WriteTransaction,
    owner: &UserName,
    user: &UserName,
) -> Result<bool, StoreError> {
    require_account(tx, user)?;
    Ok(reach_in(tx, owner, user)? == Reach::Delivered)
}

/// How many groups `user` is in.
fn group_count_in(tx: &redb::WriteTransaction, user: &UserName) -> Result<u64, StoreError> {
    let index = tx.open_table(USER_GROUPS)?;
    let name = user.as_str();
    let mut count = 0;
    for item in index.range((name, &[][..])..)? {
        let (key, _) = item?;
        if key.value().0 != name {
            break;
        }
        count += 1;
    }
    Ok(count)
}

/// Adds `user` to the group with join order `order`.
fn add_member_in(
    tx: &redb::WriteTransaction,
    group: GroupId,
    user: &UserName,
    order: u64,
    now_ms: u64,
    limits: &GroupLimits,
) -> Result<(), StoreError> {
    if group_count_in(tx, user)? >= limits.max_groups_per_user {
        return Err(StoreError::TooManyGroups {
            user: user.clone(),
            limit: limits.max_groups_per_user,
        });
    }
    tx.open_table(GROUP_MEMBERS)?
        .insert((group.0.as_slice(), user.as_str()), (order, now_ms))?;
    tx.open_table(USER_GROUPS)?
        .insert((user.as_str(), group.0.as_slice()), ())?;
    Ok(())
}

fn remove_member_in(
    tx: &redb::WriteTransaction,
    group: GroupId,
    user: &UserName,
) -> Result<(), StoreError> {
    tx.open_table(GROUP_MEMBERS)?
        .remove((group.0.as_slice(), user.as_str()))?;
    tx.open_table(USER_GROUPS)?
        .remove((user.as_str(), group.0.as_slice()))?;
    Ok(())
}

fn put_group_in(
    tx: &redb::WriteTransaction,
    group: GroupId,
    record: &GroupRecord,
) -> Result<(), StoreError> {
    tx.open_table(GROUPS)?
        .insert(group.0.as_slice(), encode(record, "group")?.as_slice())?;
    Ok(())
}

/// Queues `change` for every member of `info` and for `also` (who left or was removed):
/// the whole member list to `newcomers`, the change alone to the others. Never refused or
/// skipped for a full queue (see the module docs).
fn announce_in(
    tx: &redb::WriteTransaction,
    info: &GroupInfo,
    change: GroupChange,
    newcomers: &[&UserName],
    also: Option<&UserName>,
    now_ms: u64,
) -> Result<Vec<UserName>, StoreError> {
    let recipients: Vec<UserName> = info
        .members
        .iter()
        .map(|m| m.user.clone())
        .chain(also.cloned())
        .collect();
    let mut queues = QueueWriter::open(tx)?;
    let mut told = Vec::with_capacity(recipients.len());
    for user in recipients {
        let members = newcomers.contains(&&user).then(|| info.members.clone());
        let event = PushEvent::GroupChanged {
            group: info.summary(),
            change: change.clone(),
            members,
        };
        queues.append(&user, QueueBody::Event(event), now_ms)?;
        told.push(user);
    }
    Ok(told)
}

/// Ends a membership change: raises the epoch, saves the group and tells everyone (see
/// [`announce_in`]); returns the group's state after the change.
fn commit_change_in(
    tx: &redb::WriteTransaction,
    group: GroupId,
    record: &mut GroupRecord,
    change: Announcement<'_>,
    now_ms: u64,
) -> Result<GroupInfo, StoreError> {
    record.epoch += 1;
    put_group_in(tx, group, record)?;
    let members = members_of(&tx.open_table(GROUP_MEMBERS)?, group)?;
    let info = info_of(group, record, &members);
    let newcomers: Vec<&UserName> = change.newcomer.into_iter().collect();
    announce_in(tx, &info, change.change, &newcomers, change.also, now_ms)?;
    Ok(info)
}

/// A membership change to announce: the change, the new member (who gets the whole list)
/// and whoever left (who is told too).
struct Announcement<'a> {
    change: GroupChange,
    newcomer: Option<&'a UserName>,
    also: Option<&'a UserName>,
}

/// Releases one reference to each of `released` (queue rows acknowledged or dropped); a
/// group message whose last reference goes is deleted.
pub(crate) fn release_group_messages_in(
    tx: &redb::WriteTransaction,
    released: &[GroupMessageRef],
) -> Result<(), StoreError> {
    if released.is_empty() {
        return Ok(());
    }
    let mut messages = tx.open_table(GROUP_MESSAGES)?;
    for reference in released {
        let key = (reference.group.0.as_slice(), reference.index);
        let record: Option<GroupMessageRecord> = messages
            .get(key)?
            .map(|v| decode(v.value(), "group message"))
            .transpose()?;
        let Some(mut record) = record else {
            continue;
        };
        record.refs = record.refs.saturating_sub(1);
        if record.refs == 0 {
            messages.remove(key)?;
        } else {
            messages.insert(key, encode(&record, "group message")?.as_slice())?;
        }
    }
    Ok(())
}

/// The [`PushEvent::GroupMessage`] a queue row refers to.
pub(crate) fn group_message_event(
    messages: &impl ReadableTable<(&'static [u8], u64), &'static [u8]>,
    reference: &GroupMessageRef,
) -> Result<PushEvent, StoreError> {
    let stored = messages
        .get((reference.group.0.as_slice(), reference.index))?
        .ok_or_else(|| StoreError::Corrupt {
            what: "group message",
            reason: format!(
                "message {} of group {} is referred to but not stored",
                reference.index, reference.group
            ),
        })?;
    let record: GroupMessageRecord = decode(stored.value(), "group message")?;
    Ok(PushEvent::GroupMessage {
        group: reference.group,
        from: record.from,
        id: record.id,
        ciphertext: record.ciphertext,
    })
}

/// One key share as [`RelayStore::send_group_message`] takes it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShareRow<'a> {
    /// The member it is for.
    pub to: &'a UserName,
    /// The Olm envelope, opaque.
    pub ciphertext: &'a [u8],
}

impl std::fmt::Debug for KeyShareRow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeyShare(to {}, <{} bytes>)",
            self.to,
            self.ciphertext.len()
        )
    }
}

impl RelayStore {
    /// Makes group `group` named `name`, owned by `owner`, with `members` (each a friend of
    /// the owner; duplicates and the owner themselves are ignored), and tells everyone
    /// ([`GroupChange::Created`]). In one transaction:
    ///
    /// [`StoreError::UnknownUser`], [`StoreError::NotFriends`] or
    /// [`StoreError::BlockedByYou`] for a member who cannot be added;
    /// [`StoreError::LimitReached`] if the group would exceed `max_members` or someone
    /// would exceed `max_groups_per_user`. A member who blocked the owner is left out.
    pub fn create_group(
        &self,
        owner: &UserName,
        group: GroupId,
        name: &str,
        members: &[UserName],
        now_ms: u64,
        limits: &GroupLimits,
    ) -> Result<GroupInfo, StoreError> {
        write(&self.db, |tx| {
            require_account(tx, owner)?;
            if group_record(&tx.open_table(GROUPS)?, group)?.is_some() {
                return Err(StoreError::Corrupt {
                    what: "group",
                    reason: format!("group id {group} is taken"),
                });
            }
            let mut seen = HashSet::from([owner.clone()]);
            let mut chosen = Vec::new();
            for user in members {
                if seen.insert(user.clone()) && may_add_in(tx, owner, user)? {
                    chosen.push(user.clone());
                }
            }
            if chosen.len() + 1 > limits.max_members {
                return Err(StoreError::LimitReached {
                    what: "group members",
                    limit: limits.max_members as u64,
                });
            }
            add_member_in(tx, group, owner, 0, now_ms, limits)?;
            for (order, user) in chosen.iter().enumerate() {
                add_member_in(tx, group, user, order as u64 + 1, now_ms, limits)?;
            }
            let record = GroupRecord {
                name: name.to_string(),
                owner: owner.clone(),
                epoch: 1,
                created_ms: now_ms,
                next_join: chosen.len() as u64 + 1,
                next_message: 0,
            };
            put_group_in(tx, group, &record)?;
            let info = info_of(
                group,
                &record,
                &members_of(&tx.open_table(GROUP_MEMBERS)?, group)?,
            );
            let change = GroupChange::Created { by: owner.clone() };
            let everyone: Vec<&UserName> = info.members.iter().map(|m| &m.user).collect();
            announce_in(tx, &info, change, &everyone, None, now_ms)?;
            Ok(info)
        })
    }

    /// The owner `asker` adds `user` (a friend of theirs) to the group; everyone, `user`
    /// included, is told ([`GroupChange::Joined`]) and the epoch rises.
    ///
    /// [`StoreError::NoSuchGroup`] unless `asker` is a member; [`StoreError::NotGroupOwner`]
    /// unless they own it; [`StoreError::AlreadyMember`]; the refusals of
    /// [`RelayStore::create_group`] for `user`. If `user` blocked the owner nothing changes
    /// and the group comes back as it was.
    pub fn invite_to_group(
        &self,
        asker: &UserName,
        group: GroupId,
        user: &UserName,
        now_ms: u64,
        limits: &GroupLimits,
    ) -> Result<GroupInfo, StoreError> {
        write(&self.db, |tx| {
            let (mut record, members) = group_of_member_in(tx, asker, group)?;
            require_owner(&record, asker, group)?;
            if members.iter().any(|(m, _, _)| m == user) {
                return Err(StoreError::AlreadyMember {
                    user: user.clone(),
                    group,
                });
            }
            if !may_add_in(tx, asker, user)? {
                return Ok(info_of(group, &record, &members));
            }
            if members.len() + 1 > limits.max_members {
                return Err(StoreError::LimitReached {
                    what: "group members",
                    limit: limits.max_members as u64,
                });
            }
            add_member_in(tx, group, user, record.next_join, now_ms, limits)?;
            record.next_join += 1;
            let change = Announcement {
                change: GroupChange::Joined {
                    user: user.clone(),
                    by: asker.clone(),
                },
                newcomer: Some(user),
                also: None,
            };
            commit_change_in(tx, group, &mut record, change, now_ms)
        })
    }

    /// The owner `asker` removes `user`; the remaining members and `user` are told
    /// ([`GroupChange::Removed`]) and the epoch rises.
    ///
    /// [`StoreError::NoSuchGroup`], [`StoreError::NotGroupOwner`] as for
    /// [`RelayStore::invite_to_group`]; [`StoreError::NotGroupMember`] if `user` is not in
    /// the group; [`StoreError::OwnerCannotBeRemoved`] for the owner themselves.
    pub fn kick_from_group(
        &self,
        asker: &UserName,
        group: GroupId,
        user: &UserName,
        now_ms: u64,
    ) -> Result<GroupInfo, StoreError> {
        write(&self.db, |tx| {
            let (mut record, members) = group_of_member_in(tx, asker, group)?;
            require_owner(&record, asker, group)?;
            if user == asker {
                return Err(StoreError::OwnerCannotBeRemoved { group });
            }
            if !members.iter().any(|(m, _, _)| m == user) {
                return Err(StoreError::NotGroupMember {
                    user: user.clone(),
                    group,
                });
            }
            remove_member_in(tx, group, user)?;
            let change = Announcement {
                change: GroupChange::Removed {
                    user: user.clone(),
                    by: asker.clone(),
                },
                newcomer: None,
                also: Some(user),
            };
            commit_change_in(tx, group, &mut record, change, now_ms)
        })
    }

    /// `user` leaves the group. If they owned it, the longest-standing member becomes the
    /// owner; if they were the last member, the group is deleted. Everyone left, and `user`,
    /// is told ([`GroupChange::Left`]).
    ///
    /// [`StoreError::NoSuchGroup`] unless `user` is a member.
    pub fn leave_group(
        &self,
        user: &UserName,
        group: GroupId,
        now_ms: u64,
    ) -> Result<LeaveOutcome, StoreError> {
        write(&self.db, |tx| {
            let (mut record, members) = group_of_member_in(tx, user, group)?;
            remove_member_in(tx, group, user)?;
            let remaining: Vec<MemberRow> =
                members.into_iter().filter(|(m, _, _)| m != user).collect();
            let Some((longest_standing, _, _)) = remaining.first() else {
                tx.open_table(GROUPS)?.remove(group.0.as_slice())?;
                return Ok(LeaveOutcome::Deleted);
            };
            let new_owner = (&record.owner == user).then(|| longest_standing.clone());
            if let Some(owner) = &new_owner {
                record.owner = owner.clone();
            }
            let change = Announcement {
                change: GroupChange::Left {
                    user: user.clone(),
                    new_owner,
                },
                newcomer: None,
                also: Some(user),
            };
            let info = commit_change_in(tx, group, &mut record, change, now_ms)?;
            Ok(LeaveOutcome::Left(info))
        })
    }

    /// `from` sends a Megolm message to the group: in one transaction each key share is
    /// queued for its member ([`PushEvent::GroupKey`]), then the message is stored once and
    /// queued for every other member ([`PushEvent::GroupMessage`]).
    ///
    /// Checked in this order, and nothing is written on a refusal:
    /// 1. If `from` sent `id` to this group before, nothing is queued and the original time
    ///    comes back with `duplicate: true`.
    /// 2. [`StoreError::NoSuchGroup`] unless `from` is a member.
    /// 3. [`StoreError::GroupChanged`] unless `epoch` is the group's epoch: the sender's
    ///    keys were shared for other members.
    /// 4. [`StoreError::NotGroupMember`] for a key share to a non-member (or to `from`, or a
    ///    second share to one member).
    ///
    /// A member whose queue is full is skipped (see the module docs) and named in
    /// [`GroupSent::skipped`].
    #[allow(clippy::too_many_arguments)]
    pub fn send_group_message(
        &self,
        from: &UserName,
        group: GroupId,
        epoch: u64,
        id: MessageId,
        ciphertext: &[u8],
        key_shares: &[KeyShareRow<'_>],
        now_ms: u64,
        limit: QueueLimit,
    ) -> Result<GroupSent, StoreError> {
        write(&self.db, |tx| {
            send_group_message_in(
                tx, from, group, epoch, id, ciphertext, key_shares, now_ms, limit,
            )
        })
    }

    /// Queues for `asker` alone the group's whole member list ([`GroupChange::Synced`]),
    /// for a device without a view of the group; nothing changes.
    /// [`StoreError::NoSuchGroup`] unless `asker` is a member, [`StoreError::QueueFull`] if
    /// their queue is at `limit` (a sync is asked for, so it counts like any event).
    pub fn sync_group(
        &self,
        asker: &UserName,
        group: GroupId,
        now_ms: u64,
        limit: QueueLimit,
    ) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            let (record, members) = group_of_member_in(tx, asker, group)?;
            let mut queues = QueueWriter::open(tx)?;
            queues.check_room(asker, limit)?;
            let info = info_of(group, &record, &members);
            let event = PushEvent::GroupChanged {
                group: info.summary(),
                change: GroupChange::Synced,
                members: Some(info.members),
            };
            queues.append(asker, QueueBody::Event(event), now_ms)?;
            Ok(())
        })
    }

    /// Every group `user` is in, oldest first.
    pub fn groups_of(&self, user: &UserName) -> Result<Vec<GroupInfo>, StoreError> {
        read(&self.db, |tx| {
            let index = tx.open_table(USER_GROUPS)?;
            let groups = tx.open_table(GROUPS)?;
            let members = tx.open_table(GROUP_MEMBERS)?;
            let name = user.as_str();
            let mut out = Vec::new();
            for item in index.range((name, &[][..])..)? {
                let (key, _) = item?;
                let (member, id) = key.value();
                if member != name {
                    break;
                }
                let group = stored_group_id(id)?;
                if let Some(record) = group_record(&groups, group)? {
                    out.push(info_of(group, &record, &members_of(&members, group)?));
                }
            }
            out.sort_by_key(|g| (g.created_ms, g.id));
            Ok(out)
        })
    }

    /// A page of the groups `user` is in, in id order: the ids after `after` (from the
    /// first if `None`), at most `limit`, and whether more follow.
    pub fn group_ids_after(
        &self,
        user: &UserName,
        after: Option<GroupId>,
        limit: usize,
    ) -> Result<Rows<GroupId>, StoreError> {
        use std::ops::Bound;
        read(&self.db, |tx| {
            let index = tx.open_table(USER_GROUPS)?;
            let name = user.as_str();
            let start = match &after {
                Some(after) => Bound::Excluded((name, after.0.as_slice())),
                None => Bound::Included((name, &[][..])),
            };
            let mut rows = Vec::new();
            for item in index.range::<(&str, &[u8])>((start, Bound::Unbounded))? {
                let (key, _) = item?;
                let (member, id) = key.value();
                if member != name {
                    break;
                }
                if rows.len() >= limit {
                    return Ok(Rows { rows, more: true });
                }
                rows.push(stored_group_id(id)?);
            }
            Ok(Rows { rows, more: false })
        })
    }

    /// The group, for one of its members; [`StoreError::NoSuchGroup`] for anyone else.
    pub fn group(&self, asker: &UserName, group: GroupId) -> Result<GroupInfo, StoreError> {
        read(&self.db, |tx| {
            let record = group_record(&tx.open_table(GROUPS)?, group)?;
            let members = members_of(&tx.open_table(GROUP_MEMBERS)?, group)?;
            match record {
                Some(record) if members.iter().any(|(m, _, _)| m == asker) => {
                    Ok(info_of(group, &record, &members))
                }
                _ => Err(StoreError::NoSuchGroup { group }),
            }
        })
    }

    /// Whether `a` and `b` are in a group together (so they may open an Olm session to
    /// share group keys, friends or not).
    pub fn share_a_group(&self, a: &UserName, b: &UserName) -> Result<bool, StoreError> {
        read(&self.db, |tx| {
            let index = tx.open_table(USER_GROUPS)?;
            let members = tx.open_table(GROUP_MEMBERS)?;
            let name = a.as_str();
            for item in index.range((name, &[][..])..)? {
                let (key, _) = item?;
                let (member, id) = key.value();
                if member != name {
                    break;
                }
                if members.get((id, b.as_str()))?.is_some() {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    /// How many group messages are stored (each once, however many queues refer to it).
    pub fn stored_group_messages(&self) -> Result<u64, StoreError> {
        read(&self.db, |tx| {
            use redb::ReadableTableMetadata;
            Ok(tx.open_table(GROUP_MESSAGES)?.len()?)
        })
    }
}

/// [`RelayStore::send_group_message`] inside `tx`. Every refusal (membership, epoch, a bad
/// share) comes before the first write, so a refused message leaves `tx` as it was (the
/// batch in `batch.rs` relies on it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn send_group_message_in(
    tx: &redb::WriteTransaction,
    from: &UserName,
    group: GroupId,
    epoch: u64,
    id: MessageId,
    ciphertext: &[u8],
    key_shares: &[KeyShareRow<'_>],
    now_ms: u64,
    limit: QueueLimit,
) -> Result<GroupSent, StoreError> {
    let dedup = dedup_key(group);
    if let Some((_, relay_ts_ms)) = earlier_send_in(tx, &dedup, from, id)? {
        return Ok(GroupSent {
            relay_ts_ms,
            duplicate: true,
            recipients: Vec::new(),
            skipped: Vec::new(),
            unshared: Vec::new(),
        });
    }
    let (mut record, members) = group_of_member_in(tx, from, group)?;
    if record.epoch != epoch {
        return Err(StoreError::GroupChanged {
            group,
            epoch: record.epoch,
        });
    }
    let others: Vec<UserName> = members
        .into_iter()
        .map(|(user, _, _)| user)
        .filter(|user| user != from)
        .collect();
    let mut shared = HashSet::new();
    for share in key_shares {
        if !others.contains(share.to) || !shared.insert(share.to) {
            return Err(StoreError::NotGroupMember {
                user: share.to.clone(),
                group,
            });
        }
    }
    let mut queues = QueueWriter::open(tx)?;
    // Who gets the message is judged before the shares are queued, so a share
    // never pushes its own message out.
    let mut recipients = Vec::with_capacity(others.len());
    let mut skipped = Vec::new();
    for user in others {
        if queues.has_room(&user, limit)? {
            recipients.push(user);
        } else {
            skipped.push(user);
        }
    }
    let ceiling = limit.times(CEILING_FACTOR);
    let mut unshared = Vec::new();
    for share in key_shares {
        if !queues.has_room(share.to, ceiling)? {
            unshared.push(share.to.clone());
            continue;
        }
        let event = PushEvent::GroupKey {
            group,
            from: from.clone(),
            ciphertext: share.ciphertext.to_vec(),
        };
        queues.append(share.to, QueueBody::Event(event), now_ms)?;
    }
    let index = record.next_message;
    if !recipients.is_empty() {
        let stored = GroupMessageRecord {
            from: from.clone(),
            id,
            ciphertext: ciphertext.to_vec(),
            refs: recipients.len() as u64,
        };
        let stored = encode(&stored, "group message")?;
        tx.open_table(GROUP_MESSAGES)?
            .insert((group.0.as_slice(), index), stored.as_slice())?;
        let reference = GroupMessageRef {
            group,
            index,
            bytes: stored.len() as u64,
        };
        for user in &recipients {
            queues.append(user, QueueBody::GroupMessage(reference), now_ms)?;
        }
    }
    drop(queues);
    record.next_message += 1;
    put_group_in(tx, group, &record)?;
    remember_send_in(tx, &dedup, from, id, uchat_wire::Seq(index), now_ms)?;
    Ok(GroupSent {
        relay_ts_ms: now_ms,
        duplicate: false,
        recipients,
        skipped,
        unshared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::tests::{account, limit, user};
    use crate::social::SocialLimits;
    use uchat_wire::Seq;

    const LIMITS: GroupLimits = GroupLimits {
        max_members: 5,
        max_groups_per_user: 3,
        queue: QueueLimit {
            max_events: 100,
            max_bytes: u64::MAX,
        },
    };
    const SOCIAL: SocialLimits = SocialLimits {
        max_friends: 1000,
        max_pending_incoming: 100,
        max_pending_outgoing: 100,
        queue: QueueLimit {
            max_events: 100,
            max_bytes: u64::MAX,
        },
    };

    fn store_with(names: &[&str]) -> (tempfile::TempDir, RelayStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RelayStore::open(&dir.path().join("relay.redb")).expect("opens");
        for name in names {
            store.create_account(&account(name)).expect("creates");
        }
        (dir, store)
    }

    fn befriend(store: &RelayStore, a: &str, b: &str) {
        store
            .request_friend(&user(a), &user(b), "", 1, &SOCIAL)
            .expect("requests");
        store
            .accept_friend(&user(b), &user(a), 2, &SOCIAL)
            .expect("accepts");
    }

    /// Every event in `name`'s queue after the friendship events, acknowledged afterwards.
    fn drain(store: &RelayStore, name: &str) -> Vec<PushEvent> {
        let events: Vec<PushEvent> = store
            .pending(&user(name), Seq(0), 10_000)
            .expect("reads")
            .into_iter()
            .map(|q| q.event)
            .filter(|e| {
                !matches!(
                    e,
                    PushEvent::FriendRequest { .. }
                        | PushEvent::FriendAccepted { .. }
                        | PushEvent::Withdrawn
                )
            })
            .collect();
        let head = store.queue_head(&user(name)).expect("head");
        store.ack_through(&user(name), head).expect("acks");
        events
    }

    fn names(info: &GroupInfo) -> Vec<&str> {
        info.members.iter().map(|m| m.user.as_str()).collect()
    }

    const G: GroupId = GroupId([7; 16]);

    #[test]
    fn a_members_groups_are_read_a_page_at_a_time_in_id_order() {
        let (_dir, store) = store_with(&["alice", "bob", "carol"]);
        befriend(&store, "alice", "bob");
        befriend(&store, "bob", "carol");
        // Made in another order than their ids sort in; carol's group is no business of
        // alice's.
        for (id, owner, other) in [
            (9, "alice", "bob"),
            (3, "alice", "bob"),
            (5, "bob", "carol"),
        ] {
            store
                .create_group(
                    &user(owner),
                    GroupId([id; 16]),
                    "g",
                    &[user(other)],
                    1,
                    &LIMITS,
                )
                .expect("makes");
        }
        store
            .create_group(&user("alice"), GroupId([6; 16]), "solo", &[], 1, &LIMITS)
            .expect("makes");
        let alice = user("alice");
        let first = store.group_ids_after(&alice, None, 2).expect("reads");
        assert_eq!(first.rows, [GroupId([3; 16]), GroupId([6; 16])]);
        assert!(first.more);
        let rest = store
            .group_ids_after(&alice, Some(GroupId([6; 16])), 2)
            .expect("reads");
        assert_eq!((rest.rows, rest.more), (vec![GroupId([9; 16])], false));
        let bobs = store
            .group_ids_after(&user("bob"), None, 10)
            .expect("reads");
        assert_eq!(
            bobs.rows,
            [GroupId([3; 16]), GroupId([5; 16]), GroupId([9; 16])]
        );
        assert!(!bobs.more);
        let past_the_end = store
            .group_ids_after(&alice, Some(GroupId([0xff; 16])), 2)
            .expect("reads");
        assert_eq!(past_the_end, Rows::default());
        // The cursor at the last group: strictly after it is nothing.
        let after_last = store
            .group_ids_after(&alice, Some(GroupId([9; 16])), 2)
            .expect("reads");
        assert_eq!(after_last, Rows::default());
        // A page exactly as long as the list says nothing follows.
        let exact = store.group_ids_after(&alice, None, 3).expect("reads");
        assert_eq!((exact.rows.len(), exact.more), (3, false));
        let none = store
            .group_ids_after(&user("carol"), Some(GroupId([5; 16])), 2)
            .expect("reads");
        assert_eq!(none, Rows::default(), "carol's only group is at the cursor");
    }

    fn family(store: &RelayStore) -> GroupInfo {
        for friend in ["bob", "carol", "dave"] {
            befriend(store, "alice", friend);
        }
        store
            .create_group(
                &user("alice"),
                G,
                "家人",
                &[user("bob"), user("carol")],
                10,
                &LIMITS,
            )
            .expect("creates")
    }

    #[test]
    fn creating_a_group_tells_every_member_and_lists_it_for_them_only() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        let info = family(&store);
        assert_eq!(names(&info), ["alice", "bob", "carol"]);
        assert_eq!((info.owner.as_str(), info.epoch), ("alice", 1));
        for member in ["alice", "bob", "carol"] {
            let events = drain(&store, member);
            assert_eq!(
                events,
                [PushEvent::GroupChanged {
                    group: info.summary(),
                    change: GroupChange::Created { by: user("alice") },
                    members: Some(info.members.clone()),
                }]
            );
            assert_eq!(
                store.groups_of(&user(member)).expect("lists"),
                std::slice::from_ref(&info)
            );
        }
        assert!(drain(&store, "dave").is_empty());
        assert!(store.groups_of(&user("dave")).expect("lists").is_empty());
        assert!(matches!(
            store.group(&user("dave"), G),
            Err(StoreError::NoSuchGroup { .. })
        ));
        assert!(
            store
                .share_a_group(&user("bob"), &user("carol"))
                .expect("reads")
        );
        assert!(
            !store
                .share_a_group(&user("bob"), &user("dave"))
                .expect("reads")
        );
    }

    #[test]
    fn a_sync_queues_the_whole_list_for_the_asker_alone() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        let info = family(&store);
        for member in ["alice", "bob", "carol"] {
            drain(&store, member);
        }
        store
            .sync_group(&user("bob"), G, 5, LIMITS.queue)
            .expect("syncs");
        assert_eq!(
            drain(&store, "bob"),
            [PushEvent::GroupChanged {
                group: info.summary(),
                change: GroupChange::Synced,
                members: Some(info.members.clone()),
            }]
        );
        assert!(drain(&store, "carol").is_empty());
        assert!(matches!(
            store.sync_group(&user("dave"), G, 5, LIMITS.queue),
            Err(StoreError::NoSuchGroup { .. })
        ));
    }

    #[test]
    fn members_must_be_the_owners_friends_and_groups_are_bounded() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "mallory"]);
        befriend(&store, "alice", "bob");
        let err = store
            .create_group(
                &user("alice"),
                G,
                "x",
                &[user("bob"), user("mallory")],
                1,
                &LIMITS,
            )
            .expect_err("mallory is no friend");
        assert!(matches!(err, StoreError::NotFriends { .. }), "{err:?}");
        assert!(
            store.groups_of(&user("bob")).expect("lists").is_empty(),
            "nothing written"
        );
        // carol blocked alice: she is left out without a word.
        befriend(&store, "alice", "carol");
        store
            .block(&user("carol"), &user("alice"), 3)
            .expect("blocks");
        let info = store
            .create_group(
                &user("alice"),
                G,
                "x",
                &[user("bob"), user("carol")],
                4,
                &LIMITS,
            )
            .expect("creates");
        assert_eq!(names(&info), ["alice", "bob"]);
        let many: Vec<UserName> = (0..5).map(|i| user(&format!("u{i}"))).collect();
        for u in &many {
            store.create_account(&account(u.as_str())).expect("creates");
            befriend(&store, "alice", u.as_str());
        }
        let err = store
            .create_group(&user("alice"), GroupId([8; 16]), "big", &many, 5, &LIMITS)
            .expect_err("six members");
        assert!(matches!(
            err,
            StoreError::LimitReached {
                what: "group members",
                ..
            }
        ));
    }

    #[test]
    fn only_the_owner_invites_and_kicks_and_each_change_raises_the_epoch() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        family(&store);
        befriend(&store, "bob", "dave");
        for refused in [
            store.invite_to_group(&user("bob"), G, &user("dave"), 20, &LIMITS),
            store.kick_from_group(&user("bob"), G, &user("carol"), 20),
        ] {
            assert!(
                matches!(refused, Err(StoreError::NotGroupOwner { ref owner, .. }) if owner.as_str() == "alice"),
                "{refused:?}"
            );
        }
        let invited = store
            .invite_to_group(&user("alice"), G, &user("dave"), 20, &LIMITS)
            .expect("invites");
        assert_eq!(
            (invited.epoch, names(&invited)),
            (2, vec!["alice", "bob", "carol", "dave"])
        );
        assert!(matches!(
            store.invite_to_group(&user("alice"), G, &user("dave"), 21, &LIMITS),
            Err(StoreError::AlreadyMember { .. })
        ));
        let joined = |name: &str| {
            drain(&store, name).into_iter().find_map(|e| match e {
                PushEvent::GroupChanged {
                    change: GroupChange::Joined { .. },
                    members,
                    ..
                } => Some(members),
                _ => None,
            })
        };
        assert_eq!(
            joined("dave"),
            Some(Some(invited.members.clone())),
            "the newcomer gets the list"
        );
        assert_eq!(joined("bob"), Some(None), "the others the change alone");
        drain(&store, "carol");
        let kicked = store
            .kick_from_group(&user("alice"), G, &user("carol"), 30)
            .expect("kicks");
        assert_eq!(
            (kicked.epoch, names(&kicked)),
            (3, vec!["alice", "bob", "dave"])
        );
        // carol hears of her removal, as her last word about the group.
        assert_eq!(
            drain(&store, "carol"),
            [PushEvent::GroupChanged {
                group: kicked.summary(),
                change: GroupChange::Removed {
                    user: user("carol"),
                    by: user("alice")
                },
                members: None,
            }]
        );
        assert!(matches!(
            store.kick_from_group(&user("alice"), G, &user("carol"), 31),
            Err(StoreError::NotGroupMember { .. })
        ));
        assert!(matches!(
            store.kick_from_group(&user("alice"), G, &user("alice"), 31),
            Err(StoreError::OwnerCannotBeRemoved { .. })
        ));
        assert!(matches!(
            store.group(&user("carol"), G),
            Err(StoreError::NoSuchGroup { .. })
        ));
    }

    #[test]
    fn the_owner_leaving_hands_the_group_to_the_longest_standing_member() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        family(&store);
        store
            .invite_to_group(&user("alice"), G, &user("dave"), 20, &LIMITS)
            .expect("invites");
        let LeaveOutcome::Left(after) = store.leave_group(&user("alice"), G, 30).expect("leaves")
        else {
            panic!("the group goes on");
        };
        assert_eq!(after.owner.as_str(), "bob", "bob joined first after alice");
        let events = drain(&store, "dave");
        assert_eq!(
            events.last(),
            Some(&PushEvent::GroupChanged {
                group: after.summary(),
                change: GroupChange::Left {
                    user: user("alice"),
                    new_owner: Some(user("bob"))
                },
                members: None,
            })
        );
        for member in ["bob", "carol"] {
            store.leave_group(&user(member), G, 40).expect("leaves");
        }
        assert_eq!(
            store.leave_group(&user("dave"), G, 50).expect("leaves"),
            LeaveOutcome::Deleted
        );
        assert!(matches!(
            store.leave_group(&user("dave"), G, 51),
            Err(StoreError::NoSuchGroup { .. })
        ));
    }

    #[test]
    fn a_group_message_is_stored_once_and_queued_after_its_keys_for_every_other_member() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        let info = family(&store);
        for member in ["alice", "bob", "carol"] {
            drain(&store, member);
        }
        let (bob, carol) = (user("bob"), user("carol"));
        let shares = [
            KeyShareRow {
                to: &bob,
                ciphertext: b"key for bob",
            },
            KeyShareRow {
                to: &carol,
                ciphertext: b"key for carol",
            },
        ];
        let id = MessageId([1; 16]);
        let sent = store
            .send_group_message(
                &user("alice"),
                G,
                info.epoch,
                id,
                b"megolm",
                &shares,
                50,
                limit(100),
            )
            .expect("sends");
        assert_eq!(sent.recipients, [bob.clone(), carol.clone()]);
        assert_eq!(store.stored_group_messages().expect("counts"), 1);
        let message = PushEvent::GroupMessage {
            group: G,
            from: user("alice"),
            id,
            ciphertext: b"megolm".to_vec(),
        };
        let again = store
            .send_group_message(
                &user("alice"),
                G,
                info.epoch,
                id,
                b"megolm",
                &shares,
                60,
                limit(100),
            )
            .expect("idempotent");
        assert_eq!((again.duplicate, again.relay_ts_ms), (true, 50));
        assert_eq!(
            drain(&store, "bob"),
            [
                PushEvent::GroupKey {
                    group: G,
                    from: user("alice"),
                    ciphertext: b"key for bob".to_vec()
                },
                message.clone()
            ]
        );
        assert_eq!(
            store.stored_group_messages().expect("counts"),
            1,
            "carol has not acked"
        );
        assert_eq!(drain(&store, "carol").last(), Some(&message));
        assert_eq!(
            store.stored_group_messages().expect("counts"),
            0,
            "gone with the last ack"
        );
        assert!(drain(&store, "alice").is_empty(), "not to the sender");
    }

    #[test]
    fn sends_for_another_epoch_from_outsiders_or_with_stray_keys_are_refused() {
        let (_dir, store) = store_with(&["alice", "bob", "carol", "dave"]);
        let info = family(&store);
        let id = MessageId([2; 16]);
        let send = |from: &str, epoch: u64, to: &UserName| {
            store.send_group_message(
                &user(from),
                G,
                epoch,
                id,
                b"m",
                &[KeyShareRow {
                    to,
                    ciphertext: b"k",
                }],
                70,
                limit(100),
            )
        };
        assert!(matches!(
            send("dave", info.epoch, &user("bob")),
            Err(StoreError::NoSuchGroup { .. })
        ));
        assert!(matches!(
            send("alice", info.epoch + 1, &user("bob")),
            Err(StoreError::GroupChanged { epoch: 1, .. })
        ));
        for stray in ["dave", "alice"] {
            assert!(matches!(
                send("alice", info.epoch, &user(stray)),
                Err(StoreError::NotGroupMember { .. })
            ));
        }
        assert_eq!(store.stored_group_messages().expect("counts"), 0);
        // A member whose queue is full is skipped; the others get the message, and the
        // full member still gets key shares (past the quota, up to the ceiling).
        drain(&store, "carol");
        for i in 0..5u8 {
            store
                .send_group_message(
                    &user("alice"),
                    G,
                    1,
                    MessageId([10 + i; 16]),
                    b"m",
                    &[],
                    80,
                    limit(7),
                )
                .expect("room");
        }
        drain(&store, "carol");
        let (bob, carol) = (user("bob"), user("carol"));
        let shares = [
            KeyShareRow {
                to: &bob,
                ciphertext: b"key",
            },
            KeyShareRow {
                to: &carol,
                ciphertext: b"key",
            },
        ];
        let sent = store
            .send_group_message(
                &user("alice"),
                G,
                1,
                MessageId([99; 16]),
                b"m",
                &shares,
                90,
                limit(6),
            )
            .expect("not refused");
        assert_eq!(sent.skipped, std::slice::from_ref(&bob));
        assert!(sent.unshared.is_empty(), "under the ceiling, shares go");
        assert_eq!(sent.recipients, std::slice::from_ref(&carol));
        let bobs = store.pending(&bob, Seq(0), 100).expect("reads");
        assert!(matches!(
            bobs.last().map(|q| &q.event),
            Some(PushEvent::GroupKey { .. })
        ));
        assert_eq!(drain(&store, "carol").len(), 2, "key and message");
    }
}
