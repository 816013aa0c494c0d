//! Groups: making them, listing them (whole, or a page at a time), inviting, removing,
//! leaving, and fanning out group messages.
//!
//! The store checks membership and ownership and queues the membership events and the
//! fan-out in one transaction each; this module validates input (names, sizes), picks new
//! group ids, wakes the pushers of everyone whose queue grew and shapes the answers. The
//! relay never sees what a group says: messages and key shares are opaque bytes.

use std::sync::Arc;
use uchat_wire::{reply, request};

use uchat_store::{BatchOutcome, BatchWrite, GroupLimits, LeaveOutcome, StoreError};
use uchat_wire::msg::group::{MAX_KEY_SHARE_BYTES, check_group_name};
use uchat_wire::{ErrorCode, ErrorReply, GroupId, GroupInfo, MAX_CIPHERTEXT_BYTES, UserName};

use super::{fail, page_limits, throttled, too_long_for_one_answer};
use crate::server::page;
use crate::server::{RelayState, blocking, now_ms};

fn group_limits(shared: &RelayState) -> GroupLimits {
    shared.limits.groups()
}

/// Wakes the pushers of every member of `info` (and `also`): their queues grew.
fn wake_members(shared: &RelayState, info: &GroupInfo, also: Option<&UserName>) {
    for member in info.members.iter().map(|m| &m.user).chain(also) {
        shared.online.wake(member);
    }
}

fn new_group_id() -> Result<GroupId, uchat_wire::ErrorReply> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(|_| fail(ErrorCode::Internal, "no randomness available"))?;
    Ok(GroupId(id))
}

/// Makes a group owned by `me` with `members`.
pub(super) async fn create(
    shared: &Arc<RelayState>,
    me: UserName,
    name: String,
    members: Vec<UserName>,
) -> Result<reply::Group, ErrorReply> {
    check_group_name(&name).map_err(|e| fail(ErrorCode::InvalidInput, e.to_string()))?;
    let most = shared.limits.max_group_members;
    if members.len() >= most {
        return Err(fail(
            ErrorCode::LimitReached,
            format!("a group has at most {most} members, the owner included"),
        ));
    }
    for member in &members {
        shared
            .throttles
            .group_change(&me, member)
            .map_err(throttled)?;
    }
    let group = new_group_id()?;
    let store = shared.store.clone();
    let limits = group_limits(shared);
    let owner = me.clone();
    let info =
        blocking(move || store.create_group(&owner, group, &name, &members, now_ms(), &limits))
            .await?;
    wake_members(shared, &info, None);
    tracing::debug!(%me, %group, members = info.members.len(), "group created");
    Ok(reply::Group { group: info })
}

/// The groups `me` is in, oldest first, all in one answer: refused with `TooLarge` once
/// they outgrow a frame (for older peers; newer ones ask for pages).
pub(super) async fn list(
    shared: &Arc<RelayState>,
    me: UserName,
) -> Result<reply::Groups, ErrorReply> {
    let store = shared.store.clone();
    let groups = blocking(move || store.groups_of(&me)).await?;
    match page::whole(groups, |g| Ok::<_, ErrorReply>(Some(g)))? {
        Some(groups) => Ok(reply::Groups { groups }),
        None => Err(too_long_for_one_answer("the list of your groups is")),
    }
}

/// A page of the groups `me` is in after `after`, in id order.
pub(super) async fn list_page(
    shared: &Arc<RelayState>,
    me: UserName,
    after: Option<GroupId>,
    limit: u32,
) -> Result<reply::GroupsPage, ErrorReply> {
    let store = shared.store.clone();
    let limits = page_limits(limit);
    let page = blocking(move || {
        let rows = store.group_ids_after(&me, after, limits.max_entries)?;
        page::cut(
            rows.rows,
            rows.more,
            |id| *id,
            // A group `me` left since the ids were read is left out.
            |id| match store.group(&me, id) {
                Ok(info) => Ok(Some(info)),
                Err(StoreError::NoSuchGroup { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            limits,
        )
    })
    .await?;
    Ok(reply::GroupsPage {
        groups: page.entries,
        next: page.next,
    })
}

/// One group, for its members.
pub(super) async fn info(
    shared: &Arc<RelayState>,
    me: UserName,
    group: GroupId,
) -> Result<reply::Group, ErrorReply> {
    let store = shared.store.clone();
    let info = blocking(move || store.group(&me, group)).await?;
    Ok(reply::Group { group: info })
}

/// The owner `me` adds `user`.
pub(super) async fn invite(
    shared: &Arc<RelayState>,
    me: UserName,
    group: GroupId,
    user: UserName,
) -> Result<reply::Group, ErrorReply> {
    shared
        .throttles
        .group_change(&me, &user)
        .map_err(throttled)?;
    let store = shared.store.clone();
    let limits = group_limits(shared);
    let (owner, invitee) = (me.clone(), user.clone());
    let info =
        blocking(move || store.invite_to_group(&owner, group, &invitee, now_ms(), &limits)).await?;
    wake_members(shared, &info, None);
    tracing::debug!(%me, %group, %user, "group invite");
    Ok(reply::Group { group: info })
}

/// The owner `me` removes `user`.
pub(super) async fn kick(
    shared: &Arc<RelayState>,
    me: UserName,
    group: GroupId,
    user: UserName,
) -> Result<reply::Group, ErrorReply> {
    shared
        .throttles
        .group_change(&me, &user)
        .map_err(throttled)?;
    let store = shared.store.clone();
    let (owner, removed) = (me.clone(), user.clone());
    let info = blocking(move || store.kick_from_group(&owner, group, &removed, now_ms())).await?;
    wake_members(shared, &info, Some(&user));
    tracing::debug!(%me, %group, %user, "group kick");
    Ok(reply::Group { group: info })
}

/// `me` leaves.
pub(super) async fn leave(
    shared: &Arc<RelayState>,
    me: UserName,
    group: GroupId,
) -> Result<(), ErrorReply> {
    let store = shared.store.clone();
    let leaver = me.clone();
    match blocking(move || store.leave_group(&leaver, group, now_ms())).await? {
        LeaveOutcome::Left(info) => wake_members(shared, &info, Some(&me)),
        LeaveOutcome::Deleted => tracing::debug!(%group, "last member left; group deleted"),
    }
    Ok(())
}

/// Queues the group's whole member list for `me` alone (a device without a view of it),
/// within the rate a new device needs and the room in `me`'s queue.
pub(super) async fn sync(
    shared: &Arc<RelayState>,
    me: UserName,
    group: GroupId,
) -> Result<(), ErrorReply> {
    shared.throttles.group_sync(&me).map_err(throttled)?;
    let store = shared.store.clone();
    let asker = me.clone();
    let queue_limit = shared.limits.queue();
    blocking(move || store.sync_group(&asker, group, now_ms(), queue_limit)).await?;
    shared.online.wake(&me);
    Ok(())
}

/// Fans `me`'s message out to the group, after its key shares.
pub(super) async fn send(
    shared: &Arc<RelayState>,
    me: UserName,
    message: request::GroupSend,
) -> Result<reply::Sent, ErrorReply> {
    let request::GroupSend {
        group,
        epoch,
        id,
        ciphertext,
        key_shares,
    } = message;
    if ciphertext.len() > MAX_CIPHERTEXT_BYTES {
        return Err(fail(
            ErrorCode::TooLarge,
            format!(
                "group message of {} bytes exceeds the limit of {MAX_CIPHERTEXT_BYTES} bytes; send it as a file",
                ciphertext.len()
            ),
        ));
    }
    let most_shares = shared.limits.max_group_members.saturating_sub(1);
    if key_shares.len() > most_shares {
        return Err(fail(
            ErrorCode::TooLarge,
            format!("at most {most_shares} key shares per message (one per other member)"),
        ));
    }
    if let Some(share) = key_shares
        .iter()
        .find(|s| s.ciphertext.len() > MAX_KEY_SHARE_BYTES)
    {
        return Err(fail(
            ErrorCode::TooLarge,
            format!(
                "a key share of {} bytes exceeds the limit of {MAX_KEY_SHARE_BYTES} bytes",
                share.ciphertext.len()
            ),
        ));
    }
    let size = ciphertext.len();
    let outcome = shared
        .committer
        .commit(BatchWrite::GroupMessage {
            from: me.clone(),
            group,
            epoch,
            id,
            ciphertext,
            key_shares,
            now_ms: now_ms(),
            limit: shared.limits.queue(),
        })
        .await?;
    let BatchOutcome::GroupMessage(sent) = outcome else {
        return Err(super::mismatched_outcome());
    };
    if !sent.skipped.is_empty() {
        shared
            .metrics
            .group_deliveries_skipped
            .inc_by(sent.skipped.len() as u64);
        tracing::info!(%group, skipped = sent.skipped.len(), "group message skipped members with full queues");
    }
    if !sent.duplicate {
        shared.metrics.group_messages_queued.inc();
        shared
            .metrics
            .group_deliveries_queued
            .inc_by(sent.recipients.len() as u64);
        shared.metrics.message_bytes_queued.inc_by(size as u64);
        for member in &sent.recipients {
            shared.online.wake(member);
        }
    }
    tracing::debug!(from = %me, %group, bytes = size, recipients = sent.recipients.len(), duplicate = sent.duplicate, "group message queued");
    Ok(reply::Sent {
        relay_ts_ms: sent.relay_ts_ms,
        duplicate: sent.duplicate,
        unshared: sent.unshared,
    })
}
