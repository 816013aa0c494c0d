//! Friends: requests, accepting, rejecting, removing, blocking, the friend list and
//! presence queries.
//!
//! The store checks and changes the friend graph and queues the durable notification
//! (`FriendRequest`, `FriendAccepted`, `FriendRemoved`) in one transaction; this module
//! validates input, wakes the recipient's pushers and shapes the answers.

use std::sync::Arc;

use uchat_store::{FriendRequestOutcome, SocialLimits};
use uchat_wire::msg::social::check_note;
use uchat_wire::{ErrorCode, FriendEntry, FriendRequestEntry, PresenceEntry, Reply, UserName};

use super::{Handled, fail, throttled};
use crate::server::{Shared, blocking, now_ms};

/// Most users one `Presence` request may ask about.
const MAX_PRESENCE_QUERY: usize = 1000;

fn social_limits(shared: &Shared) -> SocialLimits {
    SocialLimits {
        max_friends: shared.limits.max_friends,
        max_pending_incoming: shared.limits.max_pending_friend_requests,
        queue: shared.limits.queue(),
    }
}

/// Asks `to` to be `me`'s friend (or accepts their standing request to `me`).
pub(super) async fn request(
    shared: &Arc<Shared>,
    me: UserName,
    to: UserName,
    note: String,
) -> Handled {
    check_note(&note).map_err(|e| fail(ErrorCode::InvalidInput, e.to_string()))?;
    shared
        .throttles
        .friend_request(&me, &to)
        .map_err(throttled)?;
    let store = shared.store.clone();
    let limits = social_limits(shared);
    let (from, recipient) = (me.clone(), to.clone());
    let outcome =
        blocking(move || store.request_friend(&from, &recipient, &note, now_ms(), &limits)).await?;
    let became_friends = match outcome {
        FriendRequestOutcome::Sent(_) => {
            shared.online.wake(&to);
            false
        }
        FriendRequestOutcome::BecameFriends(_) => {
            shared.online.wake(&to);
            true
        }
        // `to` blocked `me`: answered like a sent request, so `me` cannot tell.
        FriendRequestOutcome::Dropped => false,
    };
    tracing::debug!(from = %me, %to, became_friends, "friend request");
    Ok(Reply::FriendRequestSent { became_friends })
}

/// Accepts `from`'s pending request to `me`.
pub(super) async fn accept(shared: &Arc<Shared>, me: UserName, from: UserName) -> Handled {
    let store = shared.store.clone();
    let limits = social_limits(shared);
    let (acceptor, requester) = (me.clone(), from.clone());
    blocking(move || store.accept_friend(&acceptor, &requester, now_ms(), &limits)).await?;
    shared.online.wake(&from);
    tracing::debug!(%me, %from, "friend request accepted");
    Ok(Reply::Done)
}

/// Declines `from`'s pending request to `me`, without telling them.
pub(super) async fn reject(shared: &Arc<Shared>, me: UserName, from: UserName) -> Handled {
    let store = shared.store.clone();
    blocking(move || store.reject_friend(&me, &from)).await?;
    Ok(Reply::Done)
}

/// Ends the friendship of `me` and `other` on both sides.
pub(super) async fn remove(shared: &Arc<Shared>, me: UserName, other: UserName) -> Handled {
    let store = shared.store.clone();
    let queue_limit = shared.limits.queue();
    let (remover, removed) = (me.clone(), other.clone());
    let notified =
        blocking(move || store.remove_friend(&remover, &removed, now_ms(), queue_limit)).await?;
    if notified.is_some() {
        shared.online.wake(&other);
    }
    tracing::debug!(%me, %other, "friend removed");
    Ok(Reply::Done)
}

/// Blocks (`block = true`) or unblocks `other` for `me`.
pub(super) async fn set_blocked(
    shared: &Arc<Shared>,
    me: UserName,
    other: UserName,
    block: bool,
) -> Handled {
    let store = shared.store.clone();
    blocking(move || {
        if block {
            store.block(&me, &other, now_ms())
        } else {
            store.unblock(&me, &other)
        }
    })
    .await?;
    Ok(Reply::Done)
}

/// `me`'s friends with presence, identity keys and profiles. A friend who blocked `me`
/// shows as offline with no last-seen time.
pub(super) async fn list(shared: &Arc<Shared>, me: UserName) -> Handled {
    let store = shared.store.clone();
    let online = shared.online.clone();
    let friends = blocking(move || {
        let mut friends = Vec::new();
        for row in store.friends(&me)? {
            // The friendship may have ended a moment ago; skip rather than fail.
            let Some(account) = store.account(&row.user)? else {
                continue;
            };
            let profile = store.profile(&row.user)?.unwrap_or_default();
            let hidden = store.has_blocked(&row.user, &me)?;
            let is_online = !hidden && online.is_online(&row.user);
            let last_seen_ms = if hidden || is_online {
                None
            } else {
                store.last_seen(&row.user)?
            };
            friends.push(FriendEntry {
                user: row.user,
                since_ms: row.since_ms,
                online: is_online,
                last_seen_ms,
                blocked: row.blocked,
                identity: account.identity,
                profile,
            });
        }
        Ok(friends)
    })
    .await?;
    Ok(Reply::Friends { friends })
}

/// `me`'s pending requests, both directions.
pub(super) async fn requests(shared: &Arc<Shared>, me: UserName) -> Handled {
    let store = shared.store.clone();
    let pending = blocking(move || store.friend_requests(&me)).await?;
    let entries = |list: Vec<uchat_store::PendingRequest>| {
        list.into_iter()
            .map(|r| FriendRequestEntry {
                user: r.user,
                note: r.note,
                created_ms: r.created_ms,
            })
            .collect()
    };
    Ok(Reply::FriendRequests {
        incoming: entries(pending.incoming),
        outgoing: entries(pending.outgoing),
    })
}

/// Which of `users` are online, for `me`'s friends (and `me`) only: anyone else is left
/// out, as if unknown, and a friend who blocked `me` shows as offline.
pub(super) async fn presence(shared: &Arc<Shared>, me: UserName, users: Vec<UserName>) -> Handled {
    if users.len() > MAX_PRESENCE_QUERY {
        return Err(fail(
            ErrorCode::TooLarge,
            format!("ask about at most {MAX_PRESENCE_QUERY} users at once"),
        ));
    }
    let store = shared.store.clone();
    let online = shared.online.clone();
    let entries = blocking(move || {
        let mut entries = Vec::with_capacity(users.len());
        for user in users {
            if user != me && !store.are_friends(&me, &user)? {
                continue;
            }
            let hidden = user != me && store.has_blocked(&user, &me)?;
            let is_online = !hidden && online.is_online(&user);
            let last_seen_ms = if hidden || is_online {
                None
            } else {
                store.last_seen(&user)?
            };
            entries.push(PresenceEntry {
                user,
                online: is_online,
                last_seen_ms,
            });
        }
        Ok(entries)
    })
    .await?;
    Ok(Reply::Presence { users: entries })
}
