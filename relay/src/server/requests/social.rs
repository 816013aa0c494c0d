//! Friends: requests, accepting, rejecting, removing, blocking, the friend list and the
//! pending requests (whole, or a page at a time), and presence queries.
//!
//! The store checks and changes the friend graph and queues the durable notification
//! (`FriendRequest`, `FriendAccepted`, `FriendRemoved`) in one transaction; this module
//! validates input, wakes the recipient's pushers and shapes the answers.

use std::sync::Arc;
use uchat_wire::reply;

use uchat_store::{
    FriendRequestOutcome, FriendRow, PendingRequest, RelayStore, RequestDirection, SocialLimits,
    StoreError,
};
use uchat_wire::msg::social::check_note;
use uchat_wire::{ErrorCode, ErrorReply, FriendEntry, FriendRequestEntry, PresenceEntry, UserName};

use super::{fail, page_limits, throttled, too_long_for_one_answer};
use crate::server::online::Online;
use crate::server::page;
use crate::server::{RelayState, blocking, now_ms};

/// Most users one `Presence` request may ask about.
const MAX_PRESENCE_QUERY: usize = 1000;

fn social_limits(shared: &RelayState) -> SocialLimits {
    shared.limits.social()
}

/// Asks `to` to be `me`'s friend (or accepts their standing request to `me`).
pub(super) async fn request(
    shared: &Arc<RelayState>,
    me: UserName,
    to: UserName,
    note: String,
) -> Result<reply::FriendRequestSent, ErrorReply> {
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
    Ok(reply::FriendRequestSent { became_friends })
}

/// Accepts `from`'s pending request to `me`.
pub(super) async fn accept(
    shared: &Arc<RelayState>,
    me: UserName,
    from: UserName,
) -> Result<(), ErrorReply> {
    let store = shared.store.clone();
    let limits = social_limits(shared);
    let (acceptor, requester) = (me.clone(), from.clone());
    blocking(move || store.accept_friend(&acceptor, &requester, now_ms(), &limits)).await?;
    shared.online.wake(&from);
    tracing::debug!(%me, %from, "friend request accepted");
    Ok(())
}

/// Declines `from`'s pending request to `me`, without telling them.
pub(super) async fn reject(
    shared: &Arc<RelayState>,
    me: UserName,
    from: UserName,
) -> Result<(), ErrorReply> {
    let store = shared.store.clone();
    blocking(move || store.reject_friend(&me, &from)).await?;
    Ok(())
}

/// Ends the friendship of `me` and `other` on both sides.
pub(super) async fn remove(
    shared: &Arc<RelayState>,
    me: UserName,
    other: UserName,
) -> Result<(), ErrorReply> {
    let store = shared.store.clone();
    let queue_limit = shared.limits.queue();
    let (remover, removed) = (me.clone(), other.clone());
    let notified =
        blocking(move || store.remove_friend(&remover, &removed, now_ms(), queue_limit)).await?;
    if notified.is_some() {
        shared.online.wake(&other);
    }
    tracing::debug!(%me, %other, "friend removed");
    Ok(())
}

/// Blocks (`block = true`) or unblocks `other` for `me`.
pub(super) async fn set_blocked(
    shared: &Arc<RelayState>,
    me: UserName,
    other: UserName,
    block: bool,
) -> Result<(), ErrorReply> {
    let store = shared.store.clone();
    blocking(move || {
        if block {
            store.block(&me, &other, now_ms())
        } else {
            store.unblock(&me, &other)
        }
    })
    .await?;
    Ok(())
}

/// `me`'s friends with presence, identity keys and profiles, all in one answer: refused
/// with `TooLarge` once they outgrow a frame (for older peers; newer ones ask for pages).
pub(super) async fn list(
    shared: &Arc<RelayState>,
    me: UserName,
) -> Result<reply::Friends, ErrorReply> {
    let store = shared.store.clone();
    let online = shared.online.clone();
    let friends = blocking(move || {
        let rows = store.friends(&me)?;
        page::whole(rows, |row| friend_entry(&store, &online, &me, row))
    })
    .await?;
    match friends {
        Some(friends) => Ok(reply::Friends { friends }),
        None => Err(too_long_for_one_answer("your friend list is")),
    }
}

/// A page of `me`'s friends after `after`, in name order.
pub(super) async fn list_page(
    shared: &Arc<RelayState>,
    me: UserName,
    after: Option<UserName>,
    limit: u32,
) -> Result<reply::FriendsPage, ErrorReply> {
    let store = shared.store.clone();
    let online = shared.online.clone();
    let limits = page_limits(limit);
    let page = blocking(move || {
        let rows = store.friends_after(&me, after.as_ref(), limits.max_entries)?;
        page::cut(
            rows.rows,
            rows.more,
            |row| row.user.clone(),
            |row| friend_entry(&store, &online, &me, row),
            limits,
        )
    })
    .await?;
    Ok(reply::FriendsPage {
        friends: page.entries,
        next: page.next,
    })
}

/// `row`, one of `me`'s friends, with presence, identity keys and profile; `None` if the
/// friend's account is gone. A friend who blocked `me` shows as offline with no last-seen
/// time.
fn friend_entry(
    store: &RelayStore,
    online: &Online,
    me: &UserName,
    row: FriendRow,
) -> Result<Option<FriendEntry>, StoreError> {
    let Some(account) = store.account(&row.user)? else {
        return Ok(None);
    };
    let profile = store.profile(&row.user)?.unwrap_or_default();
    let hidden = store.has_blocked(&row.user, me)?;
    let is_online = !hidden && online.is_online(&row.user);
    let last_seen_ms = if hidden || is_online {
        None
    } else {
        store.last_seen(&row.user)?
    };
    Ok(Some(FriendEntry {
        user: row.user,
        since_ms: row.since_ms,
        online: is_online,
        last_seen_ms,
        blocked: row.blocked,
        identity: account.identity,
        profile,
    }))
}

/// `me`'s pending requests, both directions, all in one answer: refused with `TooLarge`
/// once they outgrow a frame (for older peers; newer ones ask for pages).
pub(super) async fn requests(
    shared: &Arc<RelayState>,
    me: UserName,
) -> Result<reply::FriendRequests, ErrorReply> {
    let store = shared.store.clone();
    let pending = blocking(move || store.friend_requests(&me)).await?;
    // One list for the size check, both directions sharing the answer's bytes.
    let incoming_count = pending.incoming.len();
    let all = pending.incoming.into_iter().chain(pending.outgoing);
    match page::whole(all, |r| Ok::<_, ErrorReply>(Some(request_entry(r))))? {
        Some(mut incoming) => {
            let outgoing = incoming.split_off(incoming_count);
            Ok(reply::FriendRequests { incoming, outgoing })
        }
        None => Err(too_long_for_one_answer("your pending friend requests are")),
    }
}

/// A page of `me`'s pending requests in one direction after `after`, in name order of
/// the other side.
pub(super) async fn requests_page(
    shared: &Arc<RelayState>,
    me: UserName,
    direction: RequestDirection,
    after: Option<UserName>,
    limit: u32,
) -> Result<reply::FriendRequestsPage, ErrorReply> {
    let store = shared.store.clone();
    let limits = page_limits(limit);
    let rows = blocking(move || {
        store.friend_requests_after(&me, direction, after.as_ref(), limits.max_entries)
    })
    .await?;
    let page = page::cut(
        rows.rows,
        rows.more,
        |r| r.user.clone(),
        |r| Ok::<_, ErrorReply>(Some(request_entry(r))),
        limits,
    )?;
    Ok(reply::FriendRequestsPage {
        requests: page.entries,
        next: page.next,
    })
}

/// A pending request as the wire shows it.
fn request_entry(request: PendingRequest) -> FriendRequestEntry {
    FriendRequestEntry {
        user: request.user,
        note: request.note,
        created_ms: request.created_ms,
    }
}

/// Which of `users` are online, for `me`'s friends (and `me`) only: anyone else is left
/// out, as if unknown, and a friend who blocked `me` shows as offline.
pub(super) async fn presence(
    shared: &Arc<RelayState>,
    me: UserName,
    users: Vec<UserName>,
) -> Result<reply::Presence, ErrorReply> {
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
    Ok(reply::Presence { users: entries })
}
