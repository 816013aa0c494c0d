//! Moments on the client: posting to friends (the pictures uploaded like files, the post
//! sealed under a fresh key that goes to each viewer inside an Olm message), reading the
//! feed, liking, commenting and deleting, and the intake of shared keys and of likes and
//! comments on this user's posts.
//!
//! A post is acknowledged only once the relay has stored it and queued every share; its key
//! is committed locally, with the viewers' Olm state, before the request goes out. There is
//! no outbox for posts: a post that cannot reach the relay fails at once, with nothing
//! shown to anyone.

use std::path::PathBuf;
use uchat_wire::{reply, request};

use uchat_wire::frame::MAX_CONTROL_FRAME_BYTES;
use uchat_wire::msg::moment::MAX_POST_CIPHERTEXT_BYTES;
use uchat_wire::{
    CommentId, FileAccess, KeyShare, MessageId, MomentComment, MomentItem, PostId, Seq, UserName,
};

use super::file::{ProgressFn, file_metadata, new_file_ref};
use super::{Client, ClientError, ClientState, Friend, now_ms, random_id};
use crate::body::Body;
use crate::crypto::moment::{self as cipher, PostKey};
use crate::envelope::{Content, Payload};
use crate::event::ClientEvent;
use crate::moment::{
    CommentBody, Moment, PostBody, check_comment, check_post, encode, open_moment,
};
use crate::store::{FileRef, MomentImageRecord, MomentKeyRecord};
use crate::transfer::TransferError;

/// A posted moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostedMoment {
    /// The post's id, chosen at random by this peer.
    pub id: PostId,
    /// When the relay stored it, ms since the Unix epoch.
    pub posted_ms: u64,
    /// The friends it was shared with.
    pub shared_with: Vec<UserName>,
    /// Friends it could not be shared with, and why.
    pub not_shared: Vec<(UserName, String)>,
}

/// One page of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MomentPage {
    /// The posts, newest first.
    pub posts: Vec<Moment>,
    /// Pass this as `before` for the next page; `None` at the end.
    pub next: Option<u64>,
}

/// The id a post's key share is recorded under, so a redelivery is recognized.
fn share_id(post: PostId) -> MessageId {
    MessageId(post.0)
}

/// Refuses a post whose `ciphertext` and key `shares` together would not fit in one
/// request to the relay.
fn check_post_request_size(ciphertext: &[u8], shares: &[KeyShare]) -> Result<(), ClientError> {
    let request_bytes = ciphertext.len()
        + shares
            .iter()
            .map(|s| s.ciphertext.len() + 48)
            .sum::<usize>();
    if request_bytes > MAX_CONTROL_FRAME_BYTES - 16 * 1024 {
        return Err(ClientError::InvalidInput(format!(
            "the post and its keys for {} friends take {request_bytes} bytes, over what one request carries; use fewer pictures or share it with fewer friends (--to)",
            shares.len()
        )));
    }
    Ok(())
}

/// Moments: posting, reading, liking and commenting (`client.moments()`).
#[derive(Clone, Copy)]
pub struct Moments<'a> {
    client: &'a Client,
}

impl Client {
    /// Moments: posting, reading, liking and commenting.
    pub fn moments(&self) -> Moments<'_> {
        Moments { client: self }
    }
}

impl Moments<'_> {
    /// Posts `text` with the pictures at `images` to `audience` (default: every friend not
    /// blocked, as the relay lists them now). Each picture is uploaded for the audience
    /// with a thumbnail inline in the post.
    pub async fn post(
        self,
        text: &str,
        images: &[PathBuf],
        audience: Option<&[UserName]>,
        progress: ProgressFn<'_>,
    ) -> Result<PostedMoment, ClientError> {
        check_post(text, images.len()).map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let friends = self.client.social().friends().await?;
        let viewers = self.viewers(&friends, audience)?;
        let mut pictures = Vec::new();
        for path in images {
            pictures.push(self.upload_picture(path, &viewers, progress).await?);
        }
        let id = PostId(random_id()?.0);
        let key = PostKey::generate().map_err(TransferError::Chunk)?;
        let ciphertext = self.seal_post(id, &key, text, &pictures)?;
        let (shares, not_shared) = self.client.inner.share_post_key(id, &key, &viewers).await?;
        check_post_request_size(&ciphertext, &shares)?;
        let link = self.client.inner.link()?;
        let request = request::MomentPost {
            id,
            ciphertext,
            shares,
        };
        let reply::MomentPosted {
            posted_ms,
            unshared,
            ..
        } = link.call(request).await?;
        let mut not_shared = not_shared;
        not_shared.extend(
            unshared
                .into_iter()
                .map(|u| (u, "their queue on the relay is full".to_string())),
        );
        let shared_with = viewers
            .into_iter()
            .filter(|v| !not_shared.iter().any(|(u, _)| u == v))
            .collect();
        Ok(PostedMoment {
            id,
            posted_ms,
            shared_with,
            not_shared,
        })
    }

    /// Who a post for `audience` is shared with: the `friends` not blocked by default, or
    /// the chosen users (each once), all of whom must be friends and none this user.
    fn viewers(
        self,
        friends: &[Friend],
        audience: Option<&[UserName]>,
    ) -> Result<Vec<UserName>, ClientError> {
        let Some(chosen) = audience else {
            return Ok(friends
                .iter()
                .filter(|f| !f.blocked)
                .map(|f| f.user.clone())
                .collect());
        };
        let mut chosen = chosen.to_vec();
        chosen.sort();
        chosen.dedup();
        for user in &chosen {
            if user == &self.client.inner.me {
                return Err(ClientError::InvalidInput(
                    "your own posts are always yours to see; name friends in --to".into(),
                ));
            }
            if !friends.iter().any(|f| &f.user == user) {
                return Err(ClientError::InvalidInput(format!(
                    "{user} is not your friend: a moment is only for friends"
                )));
            }
        }
        Ok(chosen)
    }

    /// Post `id`'s body (`text`, and the uploaded `pictures` with their thumbnails) sealed
    /// under `key`; refused if it is too big for a post.
    fn seal_post(
        self,
        id: PostId,
        key: &PostKey,
        text: &str,
        pictures: &[FileRef],
    ) -> Result<Vec<u8>, ClientError> {
        let body = PostBody {
            author: self.client.inner.me.clone(),
            text: text.to_string(),
            images: pictures
                .iter()
                .filter_map(|f| match Body::File(f.clone()).content() {
                    Content::File(file) => Some(file),
                    _ => None,
                })
                .collect(),
            written_ms: now_ms(),
        };
        let ciphertext =
            cipher::seal_post(key, id, &encode(&body)).map_err(TransferError::Chunk)?;
        if ciphertext.len() > MAX_POST_CIPHERTEXT_BYTES {
            return Err(ClientError::InvalidInput(format!(
                "the post with its thumbnails is {} bytes, over the limit of {MAX_POST_CIPHERTEXT_BYTES}; use fewer pictures",
                ciphertext.len()
            )));
        }
        Ok(ciphertext)
    }

    /// Uploads the picture at `path` for `viewers`, for a post.
    async fn upload_picture(
        self,
        path: &std::path::Path,
        viewers: &[UserName],
        progress: ProgressFn<'_>,
    ) -> Result<FileRef, ClientError> {
        let meta = file_metadata(path).await?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "picture".into());
        let mut file = new_file_ref(path, name, meta.len()).await?;
        if !file.mime.starts_with("image/") {
            return Err(ClientError::InvalidInput(format!(
                "{} is not a picture (PNG, JPEG, GIF, WebP or BMP): a moment carries pictures only",
                path.display()
            )));
        }
        let access = FileAccess::Users {
            users: viewers.to_vec(),
        };
        self.client
            .files()
            .upload(path, &mut file, access, progress)
            .await?;
        Ok(file)
    }

    /// A page of the feed, newest first: this user's posts and those friends shared with
    /// them, each with the likes and comments this user may see. Take in pending events
    /// first (`catch_up`), so that the keys of new posts are here.
    pub async fn feed(self, before: Option<u64>, limit: u32) -> Result<MomentPage, ClientError> {
        let request = request::MomentFeed { before, limit };
        let reply::MomentFeed { posts, next } = self.client.inner.call(request).await?;
        let posts = posts
            .iter()
            .map(|item| self.client.inner.open_item(item))
            .collect::<Result<_, _>>()?;
        Ok(MomentPage { posts, next })
    }

    /// One post, if this user may see it (`NoSuchPost` otherwise).
    pub async fn get(self, post: PostId) -> Result<Moment, ClientError> {
        let item = self
            .client
            .inner
            .call(request::MomentGet { post })
            .await?
            .post;
        self.client.inner.open_item(&item)
    }

    /// Likes `post`.
    pub async fn like(self, post: PostId) -> Result<(), ClientError> {
        let key = self.client.inner.post_key(post)?;
        let ciphertext =
            cipher::seal_like(&key, post, &self.client.inner.me).map_err(TransferError::Chunk)?;
        Ok(self
            .client
            .inner
            .call(request::MomentLike { post, ciphertext })
            .await?)
    }

    /// Takes back this user's like of `post`.
    pub async fn unlike(self, post: PostId) -> Result<(), ClientError> {
        Ok(self
            .client
            .inner
            .call(request::MomentUnlike { post })
            .await?)
    }

    /// Comments `text` on `post`, answering `reply_to` if given (the author, or someone
    /// whose comment there this user sees).
    pub async fn comment(
        self,
        post: PostId,
        text: &str,
        reply_to: Option<&UserName>,
    ) -> Result<CommentId, ClientError> {
        check_comment(text).map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        let key = self.client.inner.post_key(post)?;
        let id = CommentId(random_id()?.0);
        let body = CommentBody {
            author: self.client.inner.me.clone(),
            reply_to: reply_to.cloned(),
            text: text.to_string(),
        };
        let ciphertext =
            cipher::seal_comment(&key, post, id, &encode(&body)).map_err(TransferError::Chunk)?;
        let request = request::MomentComment {
            post,
            id,
            reply_to: reply_to.cloned(),
            ciphertext,
        };
        self.client.inner.call(request).await?;
        Ok(id)
    }

    /// Deletes this user's post `post`, with its likes and comments.
    pub async fn delete(self, post: PostId) -> Result<(), ClientError> {
        Ok(self
            .client
            .inner
            .call(request::MomentDelete { post })
            .await?)
    }

    /// Deletes comment `comment` (this user's, or one on this user's post).
    pub async fn delete_comment(self, comment: CommentId) -> Result<(), ClientError> {
        Ok(self
            .client
            .inner
            .call(request::MomentDeleteComment { comment })
            .await?)
    }
}

impl ClientState {
    /// The key of `post`, or the clear error of a post this user cannot see.
    fn post_key(&self, post: PostId) -> Result<PostKey, ClientError> {
        let record = self.store.moment_key(post)?.ok_or_else(|| {
            ClientError::InvalidInput(format!(
                "no post {post} among those you may see (deleted, or not shared with you)"
            ))
        })?;
        PostKey::from_bytes(&record.key).map_err(|e| TransferError::Chunk(e).into())
    }

    /// Opens a post the relay served, and remembers its pictures for `download`.
    fn open_item(&self, item: &MomentItem) -> Result<Moment, ClientError> {
        let key = match self.store.moment_key(item.id)? {
            Some(record) if record.author == item.author => PostKey::from_bytes(&record.key).ok(),
            _ => None,
        };
        let moment = open_moment(item, key.as_ref());
        let images: Vec<MomentImageRecord> = moment
            .images
            .iter()
            .map(|file| MomentImageRecord {
                post: item.id,
                author: item.author.clone(),
                file: file.clone(),
            })
            .collect();
        self.store.put_moment_images(&images)?;
        Ok(moment)
    }

    /// Encrypts `key` of `post` for each viewer and commits the key and their Olm state;
    /// returns the shares and the viewers it could not be encrypted for, with why.
    async fn share_post_key(
        &self,
        post: PostId,
        key: &PostKey,
        viewers: &[UserName],
    ) -> Result<(Vec<KeyShare>, Vec<(UserName, String)>), ClientError> {
        let claims = self.claim_keys(viewers).await?;
        let identity = self.identity();
        let now = now_ms();
        let share = Payload {
            id: share_id(post),
            sent_ms: now,
            content: Content::MomentKey {
                post,
                key: key.to_bytes().to_vec(),
            },
            group: None,
            sender: None,
        }
        .to_bytes();
        let viewers: Vec<&UserName> = viewers.iter().collect();
        let shares = self.seal_key_shares(&identity, &viewers, claims, &share, now)?;
        let skipped = shares
            .missed
            .into_iter()
            .map(|(viewer, missed)| {
                tracing::warn!(%viewer, reason = missed.reason(), "cannot share a post's key");
                (viewer, missed.reason().to_owned())
            })
            .collect();
        let record = MomentKeyRecord {
            author: self.me.clone(),
            key: key.to_bytes().to_vec(),
            received_ms: now,
        };
        self.store
            .commit_moment_outbound(post, &record, &shares.contacts)?;
        Ok((shares.key_shares, skipped))
    }

    /// Takes in a post's key shared by `author`: opened with Olm from their pinned
    /// identity, checked to name this post, kept.
    pub(super) async fn take_in_moment_shared(
        &self,
        post: PostId,
        author: UserName,
        ciphertext: &[u8],
        seq: Seq,
    ) -> Result<(), ClientError> {
        let accepted = self
            .take_in_olm_key(
                &author,
                share_id(post),
                ciphertext,
                seq,
                |payload, flag, now| match payload.content {
                    Content::MomentKey { post: named, key } if named == post => {
                        if flag == crate::store::IdentityFlag::Changed {
                            Err(format!(
                                "{author}'s identity key changed; compare safety numbers"
                            ))
                        } else if PostKey::from_bytes(&key).is_err() {
                            Err("the post key is not 64 bytes".into())
                        } else {
                            Ok(MomentKeyRecord {
                                author: author.clone(),
                                key,
                                received_ms: now,
                            })
                        }
                    }
                    _ => Err("not this post's key".into()),
                },
                |commit, record| {
                    self.store
                        .commit_moment_key(&commit, record.map(|r| (post, r)))
                },
            )
            .await?;
        if accepted.is_some() {
            let _ = self.events.send(ClientEvent::MomentPosted { post, author });
        }
        Ok(())
    }

    /// Someone liked this user's post: reported if the like checks out under its key.
    pub(super) fn take_in_moment_liked(
        &self,
        post: PostId,
        by: UserName,
        ciphertext: &[u8],
        at_ms: u64,
    ) -> Result<(), ClientError> {
        let Ok(key) = self.post_key(post) else {
            return Ok(()); // a post this peer does not have (deleted, or another device's)
        };
        if cipher::is_like(&key, post, &by, ciphertext) {
            let _ = self
                .events
                .send(ClientEvent::MomentLiked { post, by, at_ms });
        } else {
            tracing::warn!(%post, %by, "a like that does not check out was ignored");
        }
        Ok(())
    }

    /// Someone commented on this user's post or replied to them: reported if it opens.
    pub(super) fn take_in_moment_commented(
        &self,
        comment: MomentComment,
    ) -> Result<(), ClientError> {
        let Some(record) = self.store.moment_key(comment.post)? else {
            return Ok(());
        };
        let key = PostKey::from_bytes(&record.key).map_err(TransferError::Chunk)?;
        match crate::moment::open_comment(&key, comment.post, &comment) {
            Ok(view) => {
                let _ = self.events.send(ClientEvent::MomentCommented {
                    post: comment.post,
                    comment: view,
                });
            }
            Err(problem) => {
                tracing::warn!(post = %comment.post, problem, "a comment that does not open was ignored")
            }
        }
        Ok(())
    }
}
