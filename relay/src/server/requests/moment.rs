//! Moments: posting, the feed, likes, comments and deletions.
//!
//! The store decides who may see and do what (the visibility rules are in
//! `uchat_store`'s moments) and queues the shares and notices in the change's own
//! transaction; this module checks sizes, wakes the pushers of everyone whose queue grew
//! and shapes the answers. Posts, likes and comments are opaque bytes here.

use std::sync::Arc;
use uchat_wire::{ErrorReply, reply, request};

use uchat_store::MomentLimits;
use uchat_wire::msg::group::MAX_KEY_SHARE_BYTES;
use uchat_wire::msg::moment::{
    FEED_PAGE_BYTE_BUDGET, MAX_COMMENT_CIPHERTEXT_BYTES, MAX_COMMENTS_PER_POST, MAX_FEED_PAGE,
    MAX_LIKE_CIPHERTEXT_BYTES, MAX_POST_CIPHERTEXT_BYTES,
};
use uchat_wire::{CommentId, ErrorCode, KeyShare, PostId, UserName};

use super::fail;
use crate::server::{RelayState, blocking, now_ms};

fn moment_limits(shared: &RelayState) -> MomentLimits {
    MomentLimits {
        queue: shared.limits.queue(),
        quota_bytes: shared.limits.moment_quota_bytes,
        max_comments_per_post: MAX_COMMENTS_PER_POST,
    }
}

/// [`ErrorCode::TooLarge`] if `bytes` is over `max`, naming `what`.
fn check_size(what: &str, bytes: &[u8], max: usize) -> Result<(), uchat_wire::ErrorReply> {
    if bytes.len() > max {
        return Err(fail(
            ErrorCode::TooLarge,
            format!(
                "{what} of {} bytes is over the limit of {max} bytes",
                bytes.len()
            ),
        ));
    }
    if bytes.is_empty() {
        return Err(fail(ErrorCode::InvalidInput, format!("{what} is empty")));
    }
    Ok(())
}

/// Stores `me`'s post `id` and shares it with the viewers `shares` name.
pub(super) async fn post(
    shared: &Arc<RelayState>,
    me: UserName,
    id: PostId,
    ciphertext: Vec<u8>,
    shares: Vec<KeyShare>,
) -> Result<reply::MomentPosted, ErrorReply> {
    check_size("a post", &ciphertext, MAX_POST_CIPHERTEXT_BYTES)?;
    let most = shared.limits.max_friends as usize;
    if shares.len() > most {
        return Err(fail(
            ErrorCode::LimitReached,
            format!("a post is shared with at most {most} friends"),
        ));
    }
    for share in &shares {
        check_size("a key share", &share.ciphertext, MAX_KEY_SHARE_BYTES)?;
    }
    let store = shared.store.clone();
    let limits = moment_limits(shared);
    let author = me.clone();
    let posted =
        blocking(move || store.post_moment(&author, id, &ciphertext, &shares, now_ms(), &limits))
            .await?;
    for viewer in &posted.shared {
        shared.online.wake(viewer);
    }
    tracing::debug!(%me, post = %id, viewers = posted.shared.len(), "moment posted");
    Ok(reply::MomentPosted {
        posted_ms: posted.posted_ms,
        duplicate: posted.duplicate,
        unshared: posted.unshared,
    })
}

/// A page of `me`'s feed.
pub(super) async fn feed(
    shared: &Arc<RelayState>,
    me: UserName,
    before: Option<u64>,
    limit: u32,
) -> Result<reply::MomentFeed, ErrorReply> {
    let limit = limit.clamp(1, MAX_FEED_PAGE) as usize;
    let store = shared.store.clone();
    let page =
        blocking(move || store.moment_feed(&me, before, limit, FEED_PAGE_BYTE_BUDGET)).await?;
    Ok(reply::MomentFeed {
        posts: page.posts,
        next: page.next,
    })
}

/// One post, if `me` may see it.
pub(super) async fn get(
    shared: &Arc<RelayState>,
    me: UserName,
    post: PostId,
) -> Result<reply::Moment, ErrorReply> {
    let store = shared.store.clone();
    let item = blocking(move || store.moment(&me, post)).await?;
    Ok(reply::Moment { post: item })
}

/// `me` likes `post`.
pub(super) async fn like(
    shared: &Arc<RelayState>,
    me: UserName,
    post: PostId,
    ciphertext: Vec<u8>,
) -> Result<(), ErrorReply> {
    check_size("a like", &ciphertext, MAX_LIKE_CIPHERTEXT_BYTES)?;
    let store = shared.store.clone();
    let limits = moment_limits(shared);
    let told =
        blocking(move || store.like_moment(&me, post, &ciphertext, now_ms(), &limits)).await?;
    if let Some(author) = told {
        shared.online.wake(&author);
    }
    Ok(())
}

/// `me` takes back their like of `post`.
pub(super) async fn unlike(
    shared: &Arc<RelayState>,
    me: UserName,
    post: PostId,
) -> Result<(), ErrorReply> {
    let store = shared.store.clone();
    blocking(move || store.unlike_moment(&me, post)).await?;
    Ok(())
}

/// `me` comments on a post.
pub(super) async fn comment(
    shared: &Arc<RelayState>,
    me: UserName,
    new: request::MomentComment,
) -> Result<reply::MomentCommented, ErrorReply> {
    check_size("a comment", &new.ciphertext, MAX_COMMENT_CIPHERTEXT_BYTES)?;
    let store = shared.store.clone();
    let limits = moment_limits(shared);
    let commented = blocking(move || {
        store.comment_moment(
            &me,
            new.post,
            new.id,
            new.reply_to.as_ref(),
            &new.ciphertext,
            now_ms(),
            &limits,
        )
    })
    .await?;
    for user in &commented.notified {
        shared.online.wake(user);
    }
    Ok(reply::MomentCommented {
        commented_ms: commented.commented_ms,
    })
}

/// `me` deletes their post.
pub(super) async fn delete(
    shared: &Arc<RelayState>,
    me: UserName,
    post: PostId,
) -> Result<(), ErrorReply> {
    let store = shared.store.clone();
    blocking(move || store.delete_moment(&me, post)).await?;
    Ok(())
}

/// `me` deletes a comment.
pub(super) async fn delete_comment(
    shared: &Arc<RelayState>,
    me: UserName,
    comment: CommentId,
) -> Result<(), ErrorReply> {
    let store = shared.store.clone();
    blocking(move || store.delete_moment_comment(&me, comment)).await?;
    Ok(())
}
