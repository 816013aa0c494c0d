//! Moments (朋友圈): posts to one's friends, with likes and comments, as the relay stores
//! and serves them.
//!
//! The relay sees who posted, who may see a post, who liked and who commented on whom,
//! and when; the post's text and pictures, and every like's and comment's content, are
//! ciphertext under a per-post key that travels to each viewer inside an Olm message
//! ([`crate::PushEvent::MomentShared`]). The relay enforces who may fetch what:
//!
//! - a post is for its author and the viewers its author named, each a friend at posting
//!   time, and only while they stay friends;
//! - of a post's likes and comments a viewer gets only those by themselves, by the author
//!   and by their own friends (WeChat's rule), and a reply only if the one replied to is
//!   such a person too.

use serde::{Deserialize, Serialize};

use crate::ids::{CommentId, PostId, UserName};

/// Most pictures one post carries.
pub const MAX_POST_IMAGES: usize = 9;
/// Most characters of a post's text (checked by the peer: the relay cannot read it).
pub const MAX_POST_CHARS: usize = 2_000;
/// Most characters of a comment's text (checked by the peer).
pub const MAX_COMMENT_CHARS: usize = 500;
/// Largest post ciphertext the relay accepts: the text and up to nine inline thumbnails.
pub const MAX_POST_CIPHERTEXT_BYTES: usize = 600 * 1024;
/// Largest comment ciphertext the relay accepts.
pub const MAX_COMMENT_CIPHERTEXT_BYTES: usize = 2 * 1024;
/// Largest like ciphertext the relay accepts.
pub const MAX_LIKE_CIPHERTEXT_BYTES: usize = 256;
/// Most comments one post may have.
pub const MAX_COMMENTS_PER_POST: usize = 100;
/// Most posts one feed page holds.
pub const MAX_FEED_PAGE: u32 = 50;
/// Bytes of encoded posts a feed page stops growing at (it always holds at least one post),
/// keeping the answer under the control frame limit.
pub const FEED_PAGE_BYTE_BUDGET: usize = 768 * 1024;
/// Most bytes one post takes encoded as a viewer is shown it, with its likes and comments:
/// a frame less room for the answer around it. The likes shown are cut (the newest left
/// out) to stay within it: a post of the largest ciphertext with 100 comments of the
/// largest ciphertext leaves room for about 600 likes of the largest ciphertext; likes as
/// peers make them are far smaller.
pub const MAX_MOMENT_ITEM_BYTES: usize = 1024 * 1024 - 16 * 1024;

/// One post as a viewer may see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentItem {
    /// The post's id, chosen by its author when posting.
    pub id: PostId,
    /// Who posted it.
    pub author: UserName,
    /// The relay's clock when it was posted, ms since the Unix epoch.
    pub posted_ms: u64,
    /// Its place in the relay's order of posts: a feed page asked for `before` this
    /// continues after it.
    pub cursor: u64,
    /// The post's text and pictures, sealed under its key.
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
    /// The likes this viewer may see, oldest first.
    #[serde(default)]
    pub likes: Vec<MomentLike>,
    /// The comments this viewer may see, oldest first.
    #[serde(default)]
    pub comments: Vec<MomentComment>,
}

/// One like of a post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentLike {
    /// Who liked it.
    pub user: UserName,
    /// When, by the relay's clock, ms since the Unix epoch.
    pub liked_ms: u64,
    /// The like sealed under the post's key (it names the liker, so a viewer can check it).
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
}

/// One comment on a post.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MomentComment {
    /// The comment's id, chosen by its author; `MomentDeleteComment` names a comment by it
    /// alone.
    pub id: CommentId,
    /// The post it is on.
    pub post: PostId,
    /// Who wrote it.
    pub author: UserName,
    /// Whom it answers, if it is a reply.
    #[serde(default)]
    pub reply_to: Option<UserName>,
    /// When, by the relay's clock, ms since the Unix epoch.
    pub commented_ms: u64,
    /// The text sealed under the post's key.
    #[serde(with = "crate::bytes")]
    pub ciphertext: Vec<u8>,
}
