//! Moments as people see them: what a post and a comment say inside their encryption,
//! the rules a new one must keep, and the opening of a post the relay served into a
//! [`Moment`]. Pure: the client fetches, this module checks and decrypts.

use crate::store::FileRef;
use serde::{Deserialize, Serialize};
use uchat_wire::msg::moment::{MAX_COMMENT_CHARS, MAX_POST_CHARS, MAX_POST_IMAGES};
use uchat_wire::{CommentId, MomentItem, PostId, UserName};

use crate::body::Body;
use crate::crypto::moment::{self as cipher, PostKey};
use crate::envelope::FileContent;

/// What a post says, sealed under its key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostBody {
    /// The author, so that a post cannot be passed off as someone else's.
    pub author: UserName,
    /// The text (may be empty when there are pictures).
    pub text: String,
    /// The pictures, each a file on the relay with its key and an inline thumbnail.
    #[serde(default)]
    pub images: Vec<FileContent>,
    /// The author's clock when they wrote it, ms since the Unix epoch.
    pub written_ms: u64,
}

/// What a comment says, sealed under its post's key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentBody {
    /// Who wrote it, so that the relay cannot re-attribute it.
    pub author: UserName,
    /// Whom it answers.
    #[serde(default)]
    pub reply_to: Option<UserName>,
    /// What the comment says: 1 to [`MAX_COMMENT_CHARS`] characters, not only spaces.
    pub text: String,
}

/// Why a new post or comment is refused before anything is sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MomentRuleError {
    /// Neither text nor pictures.
    #[error("an empty post: give some text or at least one picture")]
    EmptyPost,
    /// Text over the limit.
    #[error("a post's text is at most {max} characters; this one has {chars}")]
    PostTooLong {
        /// Characters given.
        chars: usize,
        /// The most characters a post's text may have ([`MAX_POST_CHARS`]).
        max: usize,
    },
    /// Too many pictures.
    #[error("a post carries at most {max} pictures; {count} were given")]
    TooManyImages {
        /// Pictures given.
        count: usize,
        /// The most pictures a post may carry ([`MAX_POST_IMAGES`]).
        max: usize,
    },
    /// An empty comment.
    #[error("an empty comment: write something")]
    EmptyComment,
    /// A comment over the limit.
    #[error("a comment is at most {max} characters; this one has {chars}")]
    CommentTooLong {
        /// Characters given.
        chars: usize,
        /// The most characters a comment may have ([`MAX_COMMENT_CHARS`]).
        max: usize,
    },
}

/// Checks a new post's text and number of pictures.
pub fn check_post(text: &str, images: usize) -> Result<(), MomentRuleError> {
    let chars = text.chars().count();
    if text.trim().is_empty() && images == 0 {
        return Err(MomentRuleError::EmptyPost);
    }
    if chars > MAX_POST_CHARS {
        return Err(MomentRuleError::PostTooLong {
            chars,
            max: MAX_POST_CHARS,
        });
    }
    if images > MAX_POST_IMAGES {
        return Err(MomentRuleError::TooManyImages {
            count: images,
            max: MAX_POST_IMAGES,
        });
    }
    Ok(())
}

/// Checks a new comment's text.
pub fn check_comment(text: &str) -> Result<(), MomentRuleError> {
    let chars = text.chars().count();
    if text.trim().is_empty() {
        return Err(MomentRuleError::EmptyComment);
    }
    if chars > MAX_COMMENT_CHARS {
        return Err(MomentRuleError::CommentTooLong {
            chars,
            max: MAX_COMMENT_CHARS,
        });
    }
    Ok(())
}

/// A like as people see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MomentLikeView {
    /// Who liked it.
    pub user: UserName,
    /// When, ms since the Unix epoch.
    pub liked_ms: u64,
}

/// A comment as people see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MomentCommentView {
    /// The comment's id, which `Moments::delete_comment` takes.
    pub id: CommentId,
    /// Who wrote it.
    pub author: UserName,
    /// Whom it answers.
    pub reply_to: Option<UserName>,
    /// What the comment says, decrypted under the post's key.
    pub text: String,
    /// When, ms since the Unix epoch.
    pub commented_ms: u64,
}

/// A post as people see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moment {
    /// The post's id, chosen by its author.
    pub id: PostId,
    /// Who posted it.
    pub author: UserName,
    /// When, by the relay's clock, ms since the Unix epoch.
    pub posted_ms: u64,
    /// Its place in the feed (see `Moments::feed`).
    pub cursor: u64,
    /// Its text, if it opened.
    pub text: Option<String>,
    /// Its pictures, if it opened.
    pub images: Vec<FileRef>,
    /// The likes this user may see that check out, oldest first.
    pub likes: Vec<MomentLikeView>,
    /// The comments this user may see that open, oldest first.
    pub comments: Vec<MomentCommentView>,
    /// Why the post did not open (its key has not arrived, or it fails its check), if so.
    pub problem: Option<String>,
}

/// Encodes `value` for sealing.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).expect("moment bodies always encode")
}

/// Opens one comment of `post`, or says why it is not shown.
pub fn open_comment(
    key: &PostKey,
    post: PostId,
    c: &uchat_wire::MomentComment,
) -> Result<MomentCommentView, String> {
    let plain = cipher::open_comment(key, post, c.id, &c.ciphertext).map_err(|e| e.to_string())?;
    let body: CommentBody = uchat_wire::frame::decode_msgpack(&plain).map_err(|e| e.to_string())?;
    if body.author != c.author || body.reply_to != c.reply_to {
        return Err("its author or addressee differs from what the relay says".into());
    }
    Ok(MomentCommentView {
        id: c.id,
        author: c.author.clone(),
        reply_to: c.reply_to.clone(),
        text: body.text,
        commented_ms: c.commented_ms,
    })
}

/// Opens `item` with its post key (`None`: the key has not arrived). Likes and comments
/// that do not check out are left out (and logged), since only someone with the key, or a
/// relay forging them, could have made them; a post that does not open is kept, with its
/// problem.
pub fn open_moment(item: &MomentItem, key: Option<&PostKey>) -> Moment {
    let mut moment = Moment {
        id: item.id,
        author: item.author.clone(),
        posted_ms: item.posted_ms,
        cursor: item.cursor,
        text: None,
        images: Vec::new(),
        likes: Vec::new(),
        comments: Vec::new(),
        problem: None,
    };
    let Some(key) = key else {
        moment.problem = Some("its key has not arrived yet".into());
        return moment;
    };
    let body = cipher::open_post(key, item.id, &item.ciphertext)
        .map_err(|e| e.to_string())
        .and_then(|plain| {
            uchat_wire::frame::decode_msgpack::<PostBody>(&plain).map_err(|e| e.to_string())
        });
    match body {
        Err(problem) => {
            moment.problem = Some(format!("the post does not open: {problem}"));
            return moment;
        }
        Ok(body) if body.author != item.author => {
            moment.problem = Some("the post names another author than the relay says".into());
            return moment;
        }
        Ok(body) => {
            moment.text = Some(body.text);
            for image in body.images {
                match Body::from_content(crate::envelope::Content::File(image)) {
                    Ok(Some(Body::File(file))) => moment.images.push(file),
                    Ok(_) => {}
                    Err(problem) => tracing::warn!(post = %item.id, problem, "picture left out"),
                }
            }
        }
    }
    for like in &item.likes {
        if cipher::is_like(key, item.id, &like.user, &like.ciphertext) {
            moment.likes.push(MomentLikeView {
                user: like.user.clone(),
                liked_ms: like.liked_ms,
            });
        } else {
            tracing::warn!(post = %item.id, user = %like.user, "a like that does not check out was left out");
        }
    }
    moment.comments = open_comments(item, key);
    moment
}

/// The comments of `item` that open under `key`; the others are left out (and logged).
pub fn open_comments(item: &MomentItem, key: &PostKey) -> Vec<MomentCommentView> {
    let mut out = Vec::new();
    for comment in &item.comments {
        match open_comment(key, item.id, comment) {
            Ok(view) => out.push(view),
            Err(problem) => {
                tracing::warn!(post = %item.id, comment = %comment.id, problem, "comment left out")
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use uchat_wire::MomentLike;

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("valid")
    }

    #[test]
    fn the_rules_of_a_new_post_and_comment() {
        assert_eq!(check_post("", 0), Err(MomentRuleError::EmptyPost));
        assert_eq!(check_post("  \n", 0), Err(MomentRuleError::EmptyPost));
        assert_eq!(check_post("", 1), Ok(()));
        assert_eq!(check_post(&"好".repeat(MAX_POST_CHARS), 9), Ok(()));
        assert!(matches!(
            check_post(&"a".repeat(10_000), 0),
            Err(MomentRuleError::PostTooLong { chars: 10_000, .. })
        ));
        assert!(matches!(
            check_post("hi", 10),
            Err(MomentRuleError::TooManyImages { count: 10, .. })
        ));
        assert_eq!(check_comment(" "), Err(MomentRuleError::EmptyComment));
        assert!(check_comment(&"字".repeat(MAX_COMMENT_CHARS + 1)).is_err());
    }

    #[test]
    fn a_served_post_opens_and_forged_parts_are_left_out() {
        let key = PostKey::generate().expect("random");
        let post = PostId([5; 16]);
        let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
        let body = PostBody {
            author: alice.clone(),
            text: "春天来了".into(),
            images: Vec::new(),
            written_ms: 1,
        };
        let comment = |id: u8, author: &UserName, said: &UserName| uchat_wire::MomentComment {
            id: CommentId([id; 16]),
            post,
            author: author.clone(),
            reply_to: None,
            commented_ms: 3,
            ciphertext: cipher::seal_comment(
                &key,
                post,
                CommentId([id; 16]),
                &encode(&CommentBody {
                    author: said.clone(),
                    reply_to: None,
                    text: "赞".into(),
                }),
            )
            .expect("seals"),
        };
        let item = MomentItem {
            id: post,
            author: alice.clone(),
            posted_ms: 2,
            cursor: 1,
            ciphertext: cipher::seal_post(&key, post, &encode(&body)).expect("seals"),
            likes: vec![
                MomentLike {
                    user: bob.clone(),
                    liked_ms: 3,
                    ciphertext: cipher::seal_like(&key, post, &bob).expect("seals"),
                },
                // bob's like passed off as carol's.
                MomentLike {
                    user: carol.clone(),
                    liked_ms: 3,
                    ciphertext: cipher::seal_like(&key, post, &bob).expect("seals"),
                },
            ],
            comments: vec![comment(1, &bob, &bob), comment(2, &carol, &bob)],
        };
        let moment = open_moment(&item, Some(&key));
        assert_eq!(moment.problem, None);
        assert_eq!(moment.text.as_deref(), Some("春天来了"));
        assert_eq!(
            moment.likes.iter().map(|l| &l.user).collect::<Vec<_>>(),
            vec![&bob]
        );
        assert_eq!(
            moment.comments.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![CommentId([1; 16])]
        );
        let keyless = open_moment(&item, None);
        assert!(keyless.problem.is_some() && keyless.text.is_none());
        let mut impostor = item.clone();
        impostor.author = carol;
        assert!(open_moment(&impostor, Some(&key)).problem.is_some());
    }
}
