//! The relay's moments, a fifth `impl` block of [`RelayStore`]: posts, who each is shared
//! with, every user's feed, likes and comments, and the rules of who sees what.
//!
//! A post is for its author and the viewers the author named, each a friend when it was
//! posted; a viewer keeps it only while the two stay friends and neither blocked the other
//! ([`can_see_post`]); removing a friend also removes, for good, each one's access to the
//! other's past posts ([`revoke_moments_in`], called in the removal's transaction). Of a
//! post's likes and comments a viewer gets those of themselves, the author and their own
//! friends, and a reply only if the one it answers is such a person too ([`sees_actor`]):
//! WeChat's rule, so a viewer never learns of people they do not know through a post.
//!
//! The sharing of a post (its key for each viewer, as [`PushEvent::MomentShared`]) and
//! the notices of likes and comments ([`PushEvent::MomentLiked`],
//! [`PushEvent::MomentCommented`]) are queued in the transaction of the change itself.
//!
//! Storage is bounded: what a user writes (posts, comments on anyone's posts, likes) counts
//! against their quota ([`MomentLimits::quota_bytes`], kept in `MOMENT_USAGE` and given
//! back when the item goes), and posts older than the relay's retention are deleted
//! ([`RelayStore::expired_moments`]).

use redb::{ReadOnlyTable, ReadableTable, ReadableTableMetadata};
use uchat_wire::frame::encoded_len;
use uchat_wire::msg::moment::MAX_MOMENT_ITEM_BYTES;
use uchat_wire::{
    CommentId, KeyShare, MomentComment, MomentItem, MomentLike, PostId, PushEvent, UserName,
};

use crate::error::StoreError;
use crate::reach::{Reach, ReadRelations, Relations, relations_in, relations_read};
use crate::records::{MomentCommentRecord, MomentLikeRecord, MomentPostRecord};
use crate::relay::{QueueLimit, QueueWriter, RelayStore, enqueue_in, require_account};
use crate::tables::{
    COUNTERS, MOMENT_COMMENT_IDS, MOMENT_COMMENTS, MOMENT_FEED, MOMENT_LIKES, MOMENT_POSTS,
    MOMENT_POSTS_BY_TIME, MOMENT_USAGE, MOMENT_VIEWERS, Pair, decode, encode, next_counter, read,
    stored_name, write,
};

/// The counter that orders posts (a post's cursor).
const POST_CURSOR_COUNTER: &str = "moment_post_cursor";
/// Feed rows one page reads at most, shown or hidden, so that a long run of posts the
/// viewer may no longer see costs a bounded read; the page then ends early.
const MAX_FEED_ROWS_SCANNED: usize = 1000;
/// Likes of one post a viewer is shown at most (the oldest); fewer if they would take the
/// post past [`MAX_MOMENT_ITEM_BYTES`].
const MAX_LIKES_SHOWN: usize = 1000;
/// The counter that orders comments.
const COMMENT_ORDER_COUNTER: &str = "moment_comment_order";

/// Limits of the moments layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MomentLimits {
    /// What a user's queue may hold, as for [`RelayStore::enqueue`].
    pub queue: QueueLimit,
    /// Most comments one post may have.
    pub max_comments_per_post: usize,
    /// Most bytes one user's posts, comments and likes may take ([`item_cost`] each).
    pub quota_bytes: u64,
}

/// What one stored post, comment or like counts against its writer's quota: its sealed
/// bytes and a fixed share for the rows that index it.
pub(crate) fn item_cost(ciphertext_bytes: usize) -> u64 {
    ciphertext_bytes as u64 + ITEM_OVERHEAD_BYTES
}

/// What the rows indexing one item take, about: its record's other fields, its feed, viewer
/// or id rows.
const ITEM_OVERHEAD_BYTES: u64 = 256;

/// Charges `cost` to `user`'s quota: [`StoreError::MomentQuotaExceeded`] past
/// `quota_bytes`, and then nothing is charged.
fn charge_in(
    tx: &redb::WriteTransaction,
    user: &UserName,
    cost: u64,
    quota_bytes: u64,
) -> Result<(), StoreError> {
    let mut usage = tx.open_table(MOMENT_USAGE)?;
    let used = usage.get(user.as_str())?.map(|v| v.value()).unwrap_or(0);
    if used.saturating_add(cost) > quota_bytes {
        return Err(StoreError::MomentQuotaExceeded {
            used,
            size: cost,
            quota: quota_bytes,
        });
    }
    usage.insert(user.as_str(), used + cost)?;
    Ok(())
}

/// Gives `cost` back to `user`'s quota (the item went).
fn refund_in(tx: &redb::WriteTransaction, user: &str, cost: u64) -> Result<(), StoreError> {
    let mut usage = tx.open_table(MOMENT_USAGE)?;
    let used = usage.get(user)?.map(|v| v.value()).unwrap_or(0);
    match used.saturating_sub(cost) {
        0 => usage.remove(user)?,
        left => usage.insert(user, left)?,
    };
    Ok(())
}

/// The [`COUNTERS`] entry that says the usage and age index were built.
const MOMENT_USAGE_BUILT: &str = "moment_usage_built";

/// Builds [`MOMENT_USAGE`] and [`MOMENT_POSTS_BY_TIME`] from the stored moments, once,
/// for a store written before they existed.
pub(crate) fn build_moment_usage_once(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut counters = tx.open_table(COUNTERS)?;
    if counters.get(MOMENT_USAGE_BUILT)?.is_some() {
        return Ok(());
    }
    let mut totals: std::collections::BTreeMap<String, u64> = Default::default();
    let mut by_time = tx.open_table(MOMENT_POSTS_BY_TIME)?;
    for item in tx.open_table(MOMENT_POSTS)?.iter()? {
        let (id, value) = item?;
        let post: MomentPostRecord = decode(value.value(), "moment post")?;
        *totals.entry(post.author.as_str().into()).or_default() += item_cost(post.ciphertext.len());
        by_time.insert((post.posted_ms, id.value()), ())?;
    }
    for item in tx.open_table(MOMENT_LIKES)?.iter()? {
        let (key, value) = item?;
        let like: MomentLikeRecord = decode(value.value(), "moment like")?;
        *totals.entry(key.value().1.into()).or_default() += item_cost(like.ciphertext.len());
    }
    for item in tx.open_table(MOMENT_COMMENTS)?.iter()? {
        let (_, value) = item?;
        let comment: MomentCommentRecord = decode(value.value(), "moment comment")?;
        *totals.entry(comment.author.as_str().into()).or_default() +=
            item_cost(comment.ciphertext.len());
    }
    let mut usage = tx.open_table(MOMENT_USAGE)?;
    for (user, used) in &totals {
        usage.insert(user.as_str(), *used)?;
    }
    counters.insert(MOMENT_USAGE_BUILT, 1)?;
    Ok(())
}

/// What [`RelayStore::post_moment`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    /// When the post was stored, ms since the Unix epoch.
    pub posted_ms: u64,
    /// True if the author had posted this id already: nothing new was stored.
    pub duplicate: bool,
    /// The viewers it was shared with (whose queues grew).
    pub shared: Vec<UserName>,
    /// Viewers it was not shared with because their queue is full.
    pub unshared: Vec<UserName>,
}

/// What [`RelayStore::comment_moment`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commented {
    /// When the comment was stored, ms since the Unix epoch.
    pub commented_ms: u64,
    /// Who was told (whose queues grew).
    pub notified: Vec<UserName>,
}

/// A page of a feed, from [`RelayStore::moment_feed`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedPage {
    /// The posts, newest first.
    pub posts: Vec<MomentItem>,
    /// Where the next page starts (ask for posts before it); `None` at the end.
    pub next: Option<u64>,
}

/// The moments' visibility rules, on top of [`crate::reach`]'s tables.
impl<F, B> Relations<F, B>
where
    F: ReadableTable<Pair, u64>,
    B: ReadableTable<Pair, u64>,
{
    /// Whether `viewer` may see a post by `author` that was shared with them
    /// (`shared`): always their own, else only while they are friends and neither blocked
    /// the other.
    fn can_see_post(&self, viewer: &str, author: &str, shared: bool) -> Result<bool, StoreError> {
        if viewer == author {
            return Ok(true);
        }
        Ok(shared && self.friends(viewer, author)? && !self.blocked_either_way(viewer, author)?)
    }

    /// Whether `viewer` sees what `actor` did on a post by `author`: their own, the
    /// author's, or a friend's they did not block.
    fn sees_actor(&self, viewer: &str, author: &str, actor: &str) -> Result<bool, StoreError> {
        if actor == viewer || actor == author {
            return Ok(true);
        }
        Ok(self.friends(viewer, actor)? && !self.blocked(viewer, actor)?)
    }
}

/// A post id read back from a row; stored ids are 16 bytes, so another length is
/// corruption.
fn stored_post_id(bytes: &[u8], what: &'static str) -> Result<PostId, StoreError> {
    <[u8; 16]>::try_from(bytes)
        .map(PostId)
        .map_err(|_| StoreError::Corrupt {
            what,
            reason: format!("a post id of {} bytes", bytes.len()),
        })
}

/// [`Relations::can_see_post`] for a post, looking up whether it was shared with `viewer`.
fn can_see_post<F, B>(
    relations: &Relations<F, B>,
    viewers: &impl ReadableTable<(&'static [u8], &'static str), ()>,
    viewer: &UserName,
    post: PostId,
    author: &UserName,
) -> Result<bool, StoreError>
where
    F: ReadableTable<Pair, u64>,
    B: ReadableTable<Pair, u64>,
{
    let shared = viewers.get((post.0.as_slice(), viewer.as_str()))?.is_some();
    relations.can_see_post(viewer.as_str(), author.as_str(), shared)
}

fn post_record(
    posts: &impl ReadableTable<&'static [u8], &'static [u8]>,
    post: PostId,
) -> Result<Option<MomentPostRecord>, StoreError> {
    posts
        .get(post.0.as_slice())?
        .map(|v| decode(v.value(), "moment post"))
        .transpose()
}

/// The rows of one post in a table keyed (post id, K), in key order.
fn rows_of_post<'a, K, V, T>(
    table: &impl ReadableTable<(&'static [u8], K), V>,
    post: &'a PostId,
    low: K::SelfType<'a>,
    mut f: impl FnMut(K::SelfType<'_>, V::SelfType<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    let mut out = Vec::new();
    for item in table.range((post.0.as_slice(), low)..)? {
        let (key, value) = item?;
        let (id, rest) = key.value();
        if id != post.0.as_slice() {
            break;
        }
        out.push(f(rest, value.value())?);
    }
    Ok(out)
}

/// The read side of everything one post's view needs.
struct PostTables<P, V, L, C> {
    posts: P,
    viewers: V,
    likes: L,
    comments: C,
}

impl<P, V, L, C> PostTables<P, V, L, C>
where
    P: ReadableTable<&'static [u8], &'static [u8]>,
    V: ReadableTable<(&'static [u8], &'static str), ()>,
    L: ReadableTable<(&'static [u8], &'static str), &'static [u8]>,
    C: ReadableTable<(&'static [u8], u64), &'static [u8]>,
{
    /// The post as `viewer` may see it, or `None` if they may not (or it is gone).
    fn item_for<F, B>(
        &self,
        relations: &Relations<F, B>,
        viewer: &UserName,
        post: PostId,
    ) -> Result<Option<MomentItem>, StoreError>
    where
        F: ReadableTable<Pair, u64>,
        B: ReadableTable<Pair, u64>,
    {
        let Some(record) = post_record(&self.posts, post)? else {
            return Ok(None);
        };
        if !can_see_post(relations, &self.viewers, viewer, post, &record.author)? {
            return Ok(None);
        }
        let author = record.author.as_str();
        let mut likes = Vec::new();
        for (user, like) in rows_of_post(&self.likes, &post, "", |user, bytes| {
            Ok((
                user.to_string(),
                decode::<MomentLikeRecord>(bytes, "moment like")?,
            ))
        })? {
            if relations.sees_actor(viewer.as_str(), author, &user)? {
                likes.push(MomentLike {
                    user: stored_name(&user)?,
                    liked_ms: like.liked_ms,
                    ciphertext: like.ciphertext,
                });
            }
        }
        likes.sort_by_key(|l| l.liked_ms);
        let mut comments = Vec::new();
        for comment in rows_of_post(&self.comments, &post, 0, |_, bytes| {
            decode::<MomentCommentRecord>(bytes, "moment comment")
        })? {
            let visible = relations.sees_actor(viewer.as_str(), author, comment.author.as_str())?
                && match &comment.reply_to {
                    Some(to) => relations.sees_actor(viewer.as_str(), author, to.as_str())?,
                    None => true,
                };
            if visible {
                comments.push(comment_view(post, comment));
            }
        }
        let mut item = MomentItem {
            id: post,
            author: record.author,
            posted_ms: record.posted_ms,
            cursor: record.cursor,
            ciphertext: record.ciphertext,
            likes: Vec::new(),
            comments,
        };
        item.likes = likes_that_fit(&item, likes);
        Ok(Some(item))
    }
}

/// The oldest of `likes` (sorted oldest first) that `item` (without likes) can show: at
/// most [`MAX_LIKES_SHOWN`], and no more than keep it within [`MAX_MOMENT_ITEM_BYTES`],
/// so that any post's view fits in a frame.
fn likes_that_fit(item: &MomentItem, mut likes: Vec<MomentLike>) -> Vec<MomentLike> {
    // The likes' array header grows from 1 to at most 5 bytes as the list lengthens.
    let mut bytes = encoded_len(item).saturating_add(4);
    let mut shown = 0;
    for like in likes.iter().take(MAX_LIKES_SHOWN) {
        bytes = bytes.saturating_add(encoded_len(like));
        if bytes > MAX_MOMENT_ITEM_BYTES {
            break;
        }
        shown += 1;
    }
    likes.truncate(shown);
    likes
}

/// The post tables as read in one read transaction.
type ReadPosts = PostTables<
    ReadOnlyTable<&'static [u8], &'static [u8]>,
    ReadOnlyTable<(&'static [u8], &'static str), ()>,
    ReadOnlyTable<(&'static [u8], &'static str), &'static [u8]>,
    ReadOnlyTable<(&'static [u8], u64), &'static [u8]>,
>;

/// Opens what deciding and building a viewer's view of posts reads.
fn read_views(tx: &redb::ReadTransaction) -> Result<(ReadRelations, ReadPosts), StoreError> {
    let relations = relations_read(tx)?;
    let tables = PostTables {
        posts: tx.open_table(MOMENT_POSTS)?,
        viewers: tx.open_table(MOMENT_VIEWERS)?,
        likes: tx.open_table(MOMENT_LIKES)?,
        comments: tx.open_table(MOMENT_COMMENTS)?,
    };
    Ok((relations, tables))
}

fn comment_view(post: PostId, c: MomentCommentRecord) -> MomentComment {
    MomentComment {
        id: c.id,
        post,
        author: c.author,
        reply_to: c.reply_to,
        commented_ms: c.commented_ms,
        ciphertext: c.ciphertext,
    }
}

/// The post `post` for `user` to act on, inside a write transaction:
/// [`StoreError::NoSuchPost`] unless it exists and they may see it.
fn visible_post_in(
    tx: &redb::WriteTransaction,
    user: &UserName,
    post: PostId,
) -> Result<MomentPostRecord, StoreError> {
    let relations = relations_in(tx)?;
    let record = post_record(&tx.open_table(MOMENT_POSTS)?, post)?;
    match record {
        Some(record)
            if can_see_post(
                &relations,
                &tx.open_table(MOMENT_VIEWERS)?,
                user,
                post,
                &record.author,
            )? =>
        {
            Ok(record)
        }
        _ => Err(StoreError::NoSuchPost { post }),
    }
}

/// Queues `event` for `to`, unless their queue is full (the change stands without the
/// notice: they see it in their feed). Returns whether it was queued.
fn notify_in(
    tx: &redb::WriteTransaction,
    to: &UserName,
    event: &PushEvent,
    now_ms: u64,
    queue_limit: QueueLimit,
) -> Result<bool, StoreError> {
    match enqueue_in(tx, to, event.clone(), None, now_ms, queue_limit) {
        Ok(_) => Ok(true),
        Err(StoreError::QueueFull { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes post `record` (`post`) and everything hanging off it, giving each writer back
/// what their post, likes and comments took of their quota.
fn delete_post_in(
    tx: &redb::WriteTransaction,
    post: PostId,
    record: &MomentPostRecord,
) -> Result<(), StoreError> {
    let (author, cursor) = (&record.author, record.cursor);
    let id = post.0.as_slice();
    tx.open_table(MOMENT_POSTS)?.remove(id)?;
    tx.open_table(MOMENT_POSTS_BY_TIME)?
        .remove((record.posted_ms, id))?;
    refund_in(tx, author.as_str(), item_cost(record.ciphertext.len()))?;
    let mut viewers = tx.open_table(MOMENT_VIEWERS)?;
    let names = rows_of_post(&viewers, &post, "", |viewer, ()| Ok(viewer.to_string()))?;
    let mut feed = tx.open_table(MOMENT_FEED)?;
    feed.remove((author.as_str(), cursor))?;
    for name in &names {
        viewers.remove((id, name.as_str()))?;
        feed.remove((name.as_str(), cursor))?;
    }
    drop((viewers, feed));
    let mut likes = tx.open_table(MOMENT_LIKES)?;
    let likers = rows_of_post(&likes, &post, "", |user, bytes| {
        let like: MomentLikeRecord = decode(bytes, "moment like")?;
        Ok((user.to_string(), item_cost(like.ciphertext.len())))
    })?;
    for (liker, _) in &likers {
        likes.remove((id, liker.as_str()))?;
    }
    drop(likes);
    let mut comments = tx.open_table(MOMENT_COMMENTS)?;
    let mut ids = tx.open_table(MOMENT_COMMENT_IDS)?;
    let written = rows_of_post(&comments, &post, 0, |order, bytes| {
        Ok((
            order,
            decode::<MomentCommentRecord>(bytes, "moment comment")?,
        ))
    })?;
    for (order, comment) in &written {
        comments.remove((id, *order))?;
        ids.remove(comment.id.0.as_slice())?;
    }
    drop((comments, ids));
    for (liker, cost) in likers {
        refund_in(tx, &liker, cost)?;
    }
    for (_, comment) in written {
        refund_in(
            tx,
            comment.author.as_str(),
            item_cost(comment.ciphertext.len()),
        )?;
    }
    Ok(())
}

/// Ends, for good, `a`'s access to `b`'s posts and `b`'s to `a`'s: inside the transaction
/// that ends their friendship.
pub(crate) fn revoke_moments_in(
    tx: &redb::WriteTransaction,
    a: &UserName,
    b: &UserName,
) -> Result<(), StoreError> {
    let mut feed = tx.open_table(MOMENT_FEED)?;
    let mut viewers = tx.open_table(MOMENT_VIEWERS)?;
    for (viewer, author) in [(a, b), (b, a)] {
        let mut revoked = Vec::new();
        for item in feed.range((viewer.as_str(), 0)..=(viewer.as_str(), u64::MAX))? {
            let (key, value) = item?;
            let (post, by) = value.value();
            if by == author.as_str() {
                revoked.push((key.value().1, post.to_vec()));
            }
        }
        for (cursor, post) in revoked {
            feed.remove((viewer.as_str(), cursor))?;
            viewers.remove((post.as_slice(), viewer.as_str()))?;
        }
    }
    Ok(())
}

impl RelayStore {
    /// `author` posts `id` (sealed as `ciphertext`) and shares it with the viewers
    /// `shares` name, each getting their key share as [`PushEvent::MomentShared`], all in
    /// one transaction.
    ///
    /// Every viewer must be a friend of the author's ([`StoreError::NotFriends`]) whom the
    /// author did not block ([`StoreError::BlockedByYou`]); one who blocked the author is
    /// left out silently, and one whose queue is full is left out and reported
    /// ([`Posted::unshared`]). A re-post of the same id by the same author stores nothing
    /// ([`Posted::duplicate`]); an id another author took is [`StoreError::MomentIdTaken`].
    pub fn post_moment(
        &self,
        author: &UserName,
        id: PostId,
        ciphertext: &[u8],
        shares: &[KeyShare],
        now_ms: u64,
        limits: &MomentLimits,
    ) -> Result<Posted, StoreError> {
        write(&self.db, |tx| {
            if let Some(existing) = post_record(&tx.open_table(MOMENT_POSTS)?, id)? {
                if &existing.author != author {
                    return Err(StoreError::MomentIdTaken { what: "post" });
                }
                return Ok(Posted {
                    posted_ms: existing.posted_ms,
                    duplicate: true,
                    shared: Vec::new(),
                    unshared: Vec::new(),
                });
            }
            require_account(tx, author)?;
            let mut shares: Vec<&KeyShare> = shares.iter().collect();
            shares.sort_by(|a, b| a.to.cmp(&b.to));
            shares.dedup_by(|a, b| a.to == b.to);
            let relations = relations_in(tx)?;
            let mut receiving = Vec::new();
            for share in shares {
                let to = &share.to;
                if to == author {
                    return Err(StoreError::SelfRelation);
                }
                if relations.reach(author, to)? == Reach::Delivered {
                    receiving.push(share);
                }
            }
            drop(relations);
            charge_in(tx, author, item_cost(ciphertext.len()), limits.quota_bytes)?;
            let cursor = next_counter(&mut tx.open_table(COUNTERS)?, POST_CURSOR_COUNTER)?;
            let record = MomentPostRecord {
                author: author.clone(),
                cursor,
                posted_ms: now_ms,
                ciphertext: ciphertext.to_vec(),
            };
            tx.open_table(MOMENT_POSTS)?
                .insert(id.0.as_slice(), encode(&record, "moment post")?.as_slice())?;
            tx.open_table(MOMENT_POSTS_BY_TIME)?
                .insert((now_ms, id.0.as_slice()), ())?;
            let mut feed = tx.open_table(MOMENT_FEED)?;
            let mut viewers = tx.open_table(MOMENT_VIEWERS)?;
            let mut queues = QueueWriter::open(tx)?;
            feed.insert(
                (author.as_str(), cursor),
                (id.0.as_slice(), author.as_str()),
            )?;
            let (mut shared, mut unshared) = (Vec::new(), Vec::new());
            for share in receiving {
                if !queues.has_room(&share.to, limits.queue)? {
                    unshared.push(share.to.clone());
                    continue;
                }
                let event = PushEvent::MomentShared {
                    post: id,
                    author: author.clone(),
                    ciphertext: share.ciphertext.clone(),
                };
                queues.append(&share.to, crate::records::QueueBody::Event(event), now_ms)?;
                viewers.insert((id.0.as_slice(), share.to.as_str()), ())?;
                feed.insert(
                    (share.to.as_str(), cursor),
                    (id.0.as_slice(), author.as_str()),
                )?;
                shared.push(share.to.clone());
            }
            Ok(Posted {
                posted_ms: now_ms,
                duplicate: false,
                shared,
                unshared,
            })
        })
    }

    /// A page of `viewer`'s feed, newest first: the posts before `before` (from the
    /// newest if `None`) they may see, at most `limit` of them and no more than about
    /// `byte_budget` bytes (but always one, if there is one), each with the likes and
    /// comments the viewer may see.
    pub fn moment_feed(
        &self,
        viewer: &UserName,
        before: Option<u64>,
        limit: usize,
        byte_budget: usize,
    ) -> Result<FeedPage, StoreError> {
        read(&self.db, |tx| {
            let (relations, tables) = read_views(tx)?;
            let feed = tx.open_table(MOMENT_FEED)?;
            let name = viewer.as_str();
            let end = before.unwrap_or(u64::MAX);
            let mut page = FeedPage::default();
            let (mut bytes, mut scanned, mut last_scanned) = (0, 0, None);
            for row in feed.range((name, 0)..(name, end))?.rev() {
                let (key, value) = row?;
                let cursor = key.value().1;
                if page.posts.len() >= limit.max(1) {
                    // There is more: the next page continues before the last one shown.
                    page.next = page.posts.last().map(|p| p.cursor);
                    break;
                }
                if scanned >= MAX_FEED_ROWS_SCANNED {
                    // Many hidden posts in a row: stop, and go on from here next time.
                    page.next = last_scanned;
                    break;
                }
                scanned += 1;
                let post = stored_post_id(value.value().0, "moment feed")?;
                if let Some(item) = tables.item_for(&relations, viewer, post)? {
                    let size = encoded_len(&item);
                    if !page.posts.is_empty() && bytes + size > byte_budget {
                        page.next = page.posts.last().map(|p| p.cursor);
                        break;
                    }
                    bytes += size;
                    page.posts.push(item);
                }
                last_scanned = Some(cursor);
            }
            Ok(page)
        })
    }

    /// Post `post` as `viewer` may see it; [`StoreError::NoSuchPost`] if it does not
    /// exist or they may not.
    pub fn moment(&self, viewer: &UserName, post: PostId) -> Result<MomentItem, StoreError> {
        read(&self.db, |tx| {
            let (relations, tables) = read_views(tx)?;
            tables
                .item_for(&relations, viewer, post)?
                .ok_or(StoreError::NoSuchPost { post })
        })
    }

    /// `user` likes `post` (one they may see, else [`StoreError::NoSuchPost`]); the author
    /// gets [`PushEvent::MomentLiked`] unless it is their own post. Liking again keeps the
    /// first like and tells nobody. Returns whom it told.
    pub fn like_moment(
        &self,
        user: &UserName,
        post: PostId,
        ciphertext: &[u8],
        now_ms: u64,
        limits: &MomentLimits,
    ) -> Result<Option<UserName>, StoreError> {
        write(&self.db, |tx| {
            let record = visible_post_in(tx, user, post)?;
            if tx
                .open_table(MOMENT_LIKES)?
                .get((post.0.as_slice(), user.as_str()))?
                .is_some()
            {
                return Ok(None);
            }
            charge_in(tx, user, item_cost(ciphertext.len()), limits.quota_bytes)?;
            let mut likes = tx.open_table(MOMENT_LIKES)?;
            let like = MomentLikeRecord {
                liked_ms: now_ms,
                ciphertext: ciphertext.to_vec(),
            };
            likes.insert(
                (post.0.as_slice(), user.as_str()),
                encode(&like, "moment like")?.as_slice(),
            )?;
            drop(likes);
            if &record.author == user {
                return Ok(None);
            }
            let event = PushEvent::MomentLiked {
                post,
                by: user.clone(),
                ciphertext: ciphertext.to_vec(),
            };
            let told = notify_in(tx, &record.author, &event, now_ms, limits.queue)?;
            Ok(told.then(|| record.author.clone()))
        })
    }

    /// `user` takes back their like of `post` (even on a post they can no longer see);
    /// without a like nothing changes, and a post they cannot see is
    /// [`StoreError::NoSuchPost`].
    pub fn unlike_moment(&self, user: &UserName, post: PostId) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            // One's own like can always be taken back, even from a post one can no longer see.
            let removed = tx
                .open_table(MOMENT_LIKES)?
                .remove((post.0.as_slice(), user.as_str()))?
                .map(|v| decode::<MomentLikeRecord>(v.value(), "moment like"))
                .transpose()?;
            match removed {
                Some(like) => refund_in(tx, user.as_str(), item_cost(like.ciphertext.len())),
                None => visible_post_in(tx, user, post).map(|_| ()),
            }
        })
    }

    /// `user` comments on `post` (one they may see, else [`StoreError::NoSuchPost`]),
    /// answering `reply_to` if given: the author or someone whose comment there `user`
    /// sees ([`StoreError::InvalidReply`] otherwise). The author and the one answered get
    /// [`PushEvent::MomentCommented`] (nobody is told of their own comment). A re-sent id
    /// stores nothing more; an id taken by another comment is
    /// [`StoreError::MomentIdTaken`]; past `max_comments_per_post`,
    /// [`StoreError::LimitReached`].
    #[allow(clippy::too_many_arguments)]
    pub fn comment_moment(
        &self,
        user: &UserName,
        post: PostId,
        id: CommentId,
        reply_to: Option<&UserName>,
        ciphertext: &[u8],
        now_ms: u64,
        limits: &MomentLimits,
    ) -> Result<Commented, StoreError> {
        write(&self.db, |tx| {
            let record = visible_post_in(tx, user, post)?;
            let ids = tx.open_table(MOMENT_COMMENT_IDS)?;
            let comments = tx.open_table(MOMENT_COMMENTS)?;
            if let Some(place) = ids.get(id.0.as_slice())? {
                let (on, order) = place.value();
                let existing = comments
                    .get((on, order))?
                    .map(|v| decode::<MomentCommentRecord>(v.value(), "moment comment"))
                    .transpose()?;
                return match existing {
                    Some(c) if on == post.0.as_slice() && &c.author == user => Ok(Commented {
                        commented_ms: c.commented_ms,
                        notified: Vec::new(),
                    }),
                    _ => Err(StoreError::MomentIdTaken { what: "comment" }),
                };
            }
            let existing = rows_of_post(&comments, &post, 0, |_, bytes| {
                decode::<MomentCommentRecord>(bytes, "moment comment")
            })?;
            if existing.len() >= limits.max_comments_per_post {
                return Err(StoreError::LimitReached {
                    what: "comments on one post",
                    limit: limits.max_comments_per_post as u64,
                });
            }
            if let Some(to) = reply_to {
                let relations = relations_in(tx)?;
                let author = record.author.as_str();
                let commented = existing.iter().any(|c| &c.author == to);
                if to == user {
                    return Err(StoreError::InvalidReply {
                        reason: "a reply answers someone else, not oneself".into(),
                    });
                }
                if !(to == &record.author
                    || commented && relations.sees_actor(user.as_str(), author, to.as_str())?)
                {
                    return Err(StoreError::InvalidReply {
                        reason: format!(
                            "you can reply to the post's author or to someone whose comment on it you see; {to} is neither"
                        ),
                    });
                }
                // Nobody hears of a post they may no longer see, or from someone they blocked.
                let viewers = tx.open_table(MOMENT_VIEWERS)?;
                if !can_see_post(&relations, &viewers, to, post, &record.author)?
                    || !relations.sees_actor(to.as_str(), author, user.as_str())?
                {
                    return Err(StoreError::InvalidReply {
                        reason: format!(
                            "{to} can no longer see this post; comment without --reply-to"
                        ),
                    });
                }
            }
            drop((comments, ids));
            charge_in(tx, user, item_cost(ciphertext.len()), limits.quota_bytes)?;
            let mut ids = tx.open_table(MOMENT_COMMENT_IDS)?;
            let mut comments = tx.open_table(MOMENT_COMMENTS)?;
            let order = next_counter(&mut tx.open_table(COUNTERS)?, COMMENT_ORDER_COUNTER)?;
            let comment = MomentCommentRecord {
                id,
                author: user.clone(),
                reply_to: reply_to.cloned(),
                commented_ms: now_ms,
                ciphertext: ciphertext.to_vec(),
            };
            comments.insert(
                (post.0.as_slice(), order),
                encode(&comment, "moment comment")?.as_slice(),
            )?;
            ids.insert(id.0.as_slice(), (post.0.as_slice(), order))?;
            drop((comments, ids));
            let event = PushEvent::MomentCommented {
                comment: comment_view(post, comment),
            };
            let mut notified = Vec::new();
            for to in std::iter::once(&record.author).chain(reply_to) {
                if to != user
                    && !notified.contains(to)
                    && notify_in(tx, to, &event, now_ms, limits.queue)?
                {
                    notified.push(to.clone());
                }
            }
            Ok(Commented {
                commented_ms: now_ms,
                notified,
            })
        })
    }

    /// `user` deletes their post `post` with its likes and comments:
    /// [`StoreError::NoSuchPost`] if they cannot see it, [`StoreError::NotYours`] if it is
    /// someone else's.
    pub fn delete_moment(&self, user: &UserName, post: PostId) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            let record = visible_post_in(tx, user, post)?;
            if &record.author != user {
                return Err(StoreError::NotYours {
                    action: "delete this post",
                });
            }
            delete_post_in(tx, post, &record)
        })
    }

    /// `user` deletes comment `comment`, one they wrote or one on their post (even one
    /// they can no longer see); for anyone else [`StoreError::NotYours`] if they see it,
    /// [`StoreError::NoSuchComment`] if not.
    pub fn delete_moment_comment(
        &self,
        user: &UserName,
        comment: CommentId,
    ) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            let Some(place) = tx
                .open_table(MOMENT_COMMENT_IDS)?
                .get(comment.0.as_slice())?
                .map(|v| {
                    let (post, order) = v.value();
                    (post.to_vec(), order)
                })
            else {
                return Err(StoreError::NoSuchComment { comment });
            };
            let (post_bytes, order) = place;
            let post = stored_post_id(&post_bytes, "moment comment index")?;
            let Some(record) = post_record(&tx.open_table(MOMENT_POSTS)?, post)? else {
                return Err(StoreError::NoSuchComment { comment });
            };
            let mut comments = tx.open_table(MOMENT_COMMENTS)?;
            let Some(found) = comments
                .get((post.0.as_slice(), order))?
                .map(|v| decode::<MomentCommentRecord>(v.value(), "moment comment"))
                .transpose()?
            else {
                return Err(StoreError::NoSuchComment { comment });
            };
            // The post's author may delete any comment on it, and a writer their own, even
            // on a post they can no longer see; anyone else learns only whether they see it.
            if &found.author != user && &record.author != user {
                let relations = relations_in(tx)?;
                let viewers = tx.open_table(MOMENT_VIEWERS)?;
                let visible = can_see_post(&relations, &viewers, user, post, &record.author)?
                    && relations.sees_actor(
                        user.as_str(),
                        record.author.as_str(),
                        found.author.as_str(),
                    )?;
                return Err(if visible {
                    StoreError::NotYours {
                        action: "delete this comment (or the post's author)",
                    }
                } else {
                    StoreError::NoSuchComment { comment }
                });
            }
            comments.remove((post.0.as_slice(), order))?;
            drop(comments);
            tx.open_table(MOMENT_COMMENT_IDS)?
                .remove(comment.0.as_slice())?;
            refund_in(tx, found.author.as_str(), item_cost(found.ciphertext.len()))
        })
    }

    /// Up to `limit` posts made before `cutoff_ms`, oldest first (for the retention pruner).
    pub fn expired_moments(&self, cutoff_ms: u64, limit: usize) -> Result<Vec<PostId>, StoreError> {
        read(&self.db, |tx| {
            let by_time = tx.open_table(MOMENT_POSTS_BY_TIME)?;
            let mut out = Vec::new();
            for item in by_time.range(..(cutoff_ms, &[][..]))?.take(limit) {
                let (key, _) = item?;
                out.push(stored_post_id(key.value().1, "moment age index")?);
            }
            Ok(out)
        })
    }

    /// Deletes post `post`, whoever wrote it, with its likes and comments (its retention
    /// ended); returns whether there was one.
    pub fn delete_expired_moment(&self, post: PostId) -> Result<bool, StoreError> {
        write(&self.db, |tx| {
            let Some(record) = post_record(&tx.open_table(MOMENT_POSTS)?, post)? else {
                return Ok(false);
            };
            delete_post_in(tx, post, &record)?;
            Ok(true)
        })
    }

    /// What `user`'s posts, comments and likes take of their quota, in bytes.
    pub fn moment_usage(&self, user: &UserName) -> Result<u64, StoreError> {
        read(&self.db, |tx| {
            Ok(tx
                .open_table(MOMENT_USAGE)?
                .get(user.as_str())?
                .map(|v| v.value())
                .unwrap_or(0))
        })
    }

    /// How many posts the relay holds (for tests and metrics).
    pub fn stored_moments(&self) -> Result<u64, StoreError> {
        read(&self.db, |tx| Ok(tx.open_table(MOMENT_POSTS)?.len()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::tests::{limit, store_with, user};
    use crate::social::SocialLimits;
    use uchat_wire::Seq;
    use uchat_wire::reply;

    const LIMITS: MomentLimits = MomentLimits {
        queue: QueueLimit {
            max_events: 100,
            max_bytes: u64::MAX,
        },
        max_comments_per_post: 3,
        quota_bytes: 100_000,
    };
    const SOCIAL: SocialLimits = SocialLimits {
        max_friends: 100,
        max_pending_incoming: 100,
        max_pending_outgoing: 100,
        queue: QueueLimit {
            max_events: 1000,
            max_bytes: u64::MAX,
        },
    };

    /// A post as large as the relay lets one get: the largest ciphertext, the most
    /// comments of the largest ciphertext, and `likes` likes of `like_bytes` each, every
    /// name 32 characters long.
    fn largest_post(likes: usize, like_bytes: usize) -> (MomentItem, Vec<MomentLike>) {
        use uchat_wire::msg::moment::{
            MAX_COMMENT_CIPHERTEXT_BYTES, MAX_COMMENTS_PER_POST, MAX_POST_CIPHERTEXT_BYTES,
        };
        let name = |i: usize| user(&format!("{i:04}-a-name-as-long-as-names-get"));
        let post = PostId([1; 16]);
        let comments = (0..MAX_COMMENTS_PER_POST)
            .map(|i| MomentComment {
                id: CommentId([i as u8; 16]),
                post,
                author: name(i),
                reply_to: Some(name(i + 1)),
                commented_ms: u64::MAX,
                ciphertext: vec![0xcc; MAX_COMMENT_CIPHERTEXT_BYTES],
            })
            .collect();
        let item = MomentItem {
            id: post,
            author: name(9999),
            posted_ms: u64::MAX,
            cursor: u64::MAX,
            ciphertext: vec![0xaa; MAX_POST_CIPHERTEXT_BYTES],
            likes: Vec::new(),
            comments,
        };
        let likes = (0..likes)
            .map(|i| MomentLike {
                user: name(i),
                liked_ms: 1_767_225_600_000 + i as u64,
                ciphertext: vec![0x11; like_bytes],
            })
            .collect();
        (item, likes)
    }

    #[test]
    fn the_largest_post_is_shown_with_the_oldest_likes_that_fit_in_a_frame() {
        use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
        use uchat_wire::msg::moment::MAX_LIKE_CIPHERTEXT_BYTES;
        use uchat_wire::{Reply, Response};
        let (mut item, likes) = largest_post(MAX_LIKES_SHOWN, MAX_LIKE_CIPHERTEXT_BYTES);
        // All of them would not fit: this is the case the cut is for.
        let mut whole = item.clone();
        whole.likes = likes.clone();
        assert!(
            encoded_len(&Response::Ok(Reply::Moment(reply::Moment { post: whole })))
                > MAX_CONTROL_FRAME_BYTES
        );

        item.likes = likes_that_fit(&item, likes.clone());
        let shown = item.likes.len();
        assert!(
            (500..MAX_LIKES_SHOWN).contains(&shown),
            "{shown} likes shown"
        );
        assert_eq!(item.likes, likes[..shown], "the oldest are shown");
        assert!(encoded_len(&item) <= MAX_MOMENT_ITEM_BYTES);
        let alone = Response::Ok(Reply::Moment(reply::Moment { post: item.clone() }));
        assert!(frame::encode(&alone, MAX_CONTROL_FRAME_BYTES).is_ok());
        let page = Response::Ok(Reply::MomentFeed(reply::MomentFeed {
            posts: vec![item],
            next: Some(u64::MAX),
        }));
        assert!(frame::encode(&page, MAX_CONTROL_FRAME_BYTES).is_ok());
    }

    #[test]
    fn likes_as_peers_make_them_are_shown_up_to_a_thousand() {
        // A like as a peer seals it is well under 100 bytes.
        let (item, likes) = largest_post(MAX_LIKES_SHOWN + 5, 96);
        assert_eq!(
            likes_that_fit(&item, likes.clone()),
            likes[..MAX_LIKES_SHOWN]
        );
    }

    fn befriend(store: &RelayStore, a: &str, b: &str) {
        store
            .request_friend(&user(a), &user(b), "", 1, &SOCIAL)
            .expect("asks");
        store
            .accept_friend(&user(b), &user(a), 2, &SOCIAL)
            .expect("accepts");
    }

    fn share(to: &str) -> KeyShare {
        KeyShare {
            to: user(to),
            ciphertext: format!("key for {to}").into_bytes(),
        }
    }

    fn post(store: &RelayStore, author: &str, n: u8, viewers: &[&str]) -> PostId {
        let shares: Vec<KeyShare> = viewers.iter().map(|v| share(v)).collect();
        store
            .post_moment(
                &user(author),
                PostId([n; 16]),
                b"sealed",
                &shares,
                10 + n as u64,
                &LIMITS,
            )
            .expect("posts");
        PostId([n; 16])
    }

    fn comment(store: &RelayStore, by: &str, post: PostId, n: u8, reply_to: Option<&str>) {
        let reply_to = reply_to.map(user);
        store
            .comment_moment(
                &user(by),
                post,
                CommentId([n; 16]),
                reply_to.as_ref(),
                b"sealed comment",
                100 + n as u64,
                &LIMITS,
            )
            .expect("comments");
    }

    /// Who `viewer` sees liking and commenting on `post` (comment authors in order).
    fn seen(store: &RelayStore, viewer: &str, post: PostId) -> Option<(Vec<String>, Vec<String>)> {
        let item = match store.moment(&user(viewer), post) {
            Ok(item) => item,
            Err(StoreError::NoSuchPost { .. }) => return None,
            Err(e) => panic!("reading the post failed: {e}"),
        };
        Some((
            item.likes.iter().map(|l| l.user.to_string()).collect(),
            item.comments
                .iter()
                .map(|c| match &c.reply_to {
                    Some(to) => format!("{}>{to}", c.author),
                    None => c.author.to_string(),
                })
                .collect(),
        ))
    }

    /// What one viewer sees: likers and comments ("who" or "who>whom"), or `None`
    /// when the post is hidden from them.
    type Seen = Option<(&'static [&'static str], &'static [&'static str])>;
    /// A viewer and what they see.
    type Expected = (&'static str, Seen);

    struct Case {
        name: &'static str,
        friends: &'static [(&'static str, &'static str)],
        viewers: &'static [&'static str],
        likes: &'static [&'static str],
        /// (who, replying to whom)
        comments: &'static [(&'static str, Option<&'static str>)],
        /// (viewer, likers seen, comments seen as "who" or "who>whom"); `None`: cannot see
        /// the post at all.
        expect: &'static [Expected],
    }

    const CASES: &[Case] = &[
        Case {
            name: "a star: the author's friends do not know each other",
            friends: &[("a", "b"), ("a", "c")],
            viewers: &["b", "c"],
            likes: &["b", "c"],
            comments: &[(("b"), None)],
            expect: &[
                ("a", Some((&["b", "c"], &["b"]))),
                ("b", Some((&["b"], &["b"]))),
                ("c", Some((&["c"], &[]))),
            ],
        },
        Case {
            name: "a triangle: everyone sees everyone",
            friends: &[("a", "b"), ("a", "c"), ("b", "c")],
            viewers: &["b", "c"],
            likes: &["b", "c"],
            comments: &[("b", None), ("c", Some("b"))],
            expect: &[
                ("a", Some((&["b", "c"], &["b", "c>b"]))),
                ("b", Some((&["b", "c"], &["b", "c>b"]))),
                ("c", Some((&["b", "c"], &["b", "c>b"]))),
            ],
        },
        Case {
            name: "the author's own like and comments are seen by every viewer",
            friends: &[("a", "b"), ("a", "c")],
            viewers: &["b", "c"],
            likes: &["a"],
            comments: &[("b", None), ("a", Some("b"))],
            expect: &[
                ("b", Some((&["a"], &["b", "a>b"]))),
                // c does not know b: neither b's comment nor the reply to b.
                ("c", Some((&["a"], &[]))),
            ],
        },
        Case {
            name: "a reply shows only where both ends are known",
            friends: &[("a", "b"), ("a", "c"), ("a", "d"), ("b", "d"), ("c", "d")],
            viewers: &["b", "c", "d"],
            likes: &[],
            comments: &[("b", None), ("d", Some("b")), ("c", Some("a"))],
            expect: &[
                ("a", Some((&[], &["b", "d>b", "c>a"]))),
                ("b", Some((&[], &["b", "d>b"]))),
                // c knows d but not b: d's reply to b stays hidden.
                ("c", Some((&[], &["c>a"]))),
                ("d", Some((&[], &["b", "d>b", "c>a"]))),
            ],
        },
        Case {
            name: "a post for a chosen few: a friend left out cannot see it",
            friends: &[("a", "b"), ("a", "c"), ("b", "c")],
            viewers: &["b"],
            likes: &["b"],
            comments: &[],
            expect: &[("b", Some((&["b"], &[]))), ("c", None), ("e", None)],
        },
    ];

    #[test]
    fn the_mutual_friend_rule_holds_over_several_friend_graphs() {
        for case in CASES {
            let (_dir, store) = store_with(&["a", "b", "c", "d", "e"]);
            for (x, y) in case.friends {
                befriend(&store, x, y);
            }
            let id = post(&store, "a", 1, case.viewers);
            for liker in case.likes {
                store
                    .like_moment(&user(liker), id, b"sealed like", 50, &LIMITS)
                    .unwrap_or_else(|e| panic!("{}: {liker} likes: {e}", case.name));
            }
            for (n, (by, to)) in case.comments.iter().enumerate() {
                comment(&store, by, id, n as u8 + 1, *to);
            }
            for (viewer, expected) in case.expect {
                let expected = expected.map(|(likes, comments)| {
                    (
                        likes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                        comments.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                    )
                });
                assert_eq!(
                    seen(&store, viewer, id),
                    expected,
                    "{}: what {viewer} sees",
                    case.name
                );
                // The feed shows the same as fetching the post by id.
                let page = store
                    .moment_feed(&user(viewer), None, 10, usize::MAX)
                    .expect("reads the feed");
                assert_eq!(
                    page.posts.iter().any(|p| p.id == id),
                    expected.is_some(),
                    "{}: {viewer}'s feed",
                    case.name
                );
            }
        }
    }

    #[test]
    fn a_post_shares_its_key_with_each_viewer_and_likes_and_comments_tell_the_author() {
        let (_dir, store) = store_with(&["a", "b", "c"]);
        befriend(&store, "a", "b");
        befriend(&store, "a", "c");
        let head = |name: &str| store.queue_head(&user(name)).expect("reads");
        let (a0, b0) = (head("a"), head("b"));
        let id = post(&store, "a", 1, &["b"]);
        let shared = store.pending(&user("b"), b0, 10).expect("reads");
        assert_eq!(
            shared.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
            vec![PushEvent::MomentShared {
                post: id,
                author: user("a"),
                ciphertext: b"key for b".to_vec()
            }]
        );
        store
            .like_moment(&user("b"), id, b"like", 20, &LIMITS)
            .expect("likes");
        // Liking again tells nobody again.
        assert_eq!(
            store
                .like_moment(&user("b"), id, b"like", 21, &LIMITS)
                .expect("likes"),
            None
        );
        comment(&store, "b", id, 1, None);
        comment(&store, "a", id, 2, Some("b"));
        let told_a: Vec<_> = store
            .pending(&user("a"), a0, 10)
            .expect("reads")
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert!(
            matches!(&told_a[..], [PushEvent::MomentLiked { by, .. }, PushEvent::MomentCommented { comment }] if by == &user("b") && comment.author == user("b")),
            "{told_a:?}"
        );
        let told_b = store.pending(&user("b"), Seq(b0.0 + 1), 10).expect("reads");
        assert!(
            matches!(&told_b[..], [e] if matches!(&e.event, PushEvent::MomentCommented { comment } if comment.reply_to == Some(user("b")))),
            "b is told of the reply to them: {told_b:?}"
        );
        // A stranger to the post gets nothing and can do nothing.
        assert!(matches!(
            store.like_moment(&user("c"), id, b"like", 30, &LIMITS),
            Err(StoreError::NoSuchPost { .. })
        ));
        assert!(matches!(
            store.comment_moment(&user("c"), id, CommentId([9; 16]), None, b"x", 30, &LIMITS),
            Err(StoreError::NoSuchPost { .. })
        ));
    }

    #[test]
    fn bad_requests_are_refused_and_store_nothing() {
        let (_dir, store) = store_with(&["a", "b", "c"]);
        befriend(&store, "a", "b");
        let shares = [share("c")];
        assert!(matches!(
            store.post_moment(&user("a"), PostId([1; 16]), b"x", &shares, 1, &LIMITS),
            Err(StoreError::NotFriends { .. })
        ));
        assert_eq!(store.stored_moments().expect("counts"), 0);
        let id = post(&store, "a", 2, &["b"]);
        // Someone else's id.
        assert!(matches!(
            store.post_moment(&user("b"), id, b"x", &[], 1, &LIMITS),
            Err(StoreError::MomentIdTaken { .. })
        ));
        // A retry of one's own is a duplicate.
        assert!(
            store
                .post_moment(&user("a"), id, b"sealed", &[share("b")], 99, &LIMITS)
                .expect("retries")
                .duplicate
        );
        assert!(matches!(
            store.delete_moment(&user("b"), id),
            Err(StoreError::NotYours { .. })
        ));
        assert!(matches!(
            store.comment_moment(
                &user("b"),
                id,
                CommentId([1; 16]),
                Some(&user("c")),
                b"x",
                1,
                &LIMITS
            ),
            Err(StoreError::InvalidReply { .. })
        ));
        for n in 1..=3 {
            comment(&store, "b", id, n, None);
        }
        assert!(matches!(
            store.comment_moment(&user("b"), id, CommentId([7; 16]), None, b"x", 1, &LIMITS),
            Err(StoreError::LimitReached { .. })
        ));
        assert!(matches!(
            store.delete_moment_comment(&user("c"), CommentId([1; 16])),
            Err(StoreError::NoSuchComment { .. })
        ));
        store
            .delete_moment_comment(&user("a"), CommentId([1; 16]))
            .expect("the author may delete a comment on their post");
        store.delete_moment(&user("a"), id).expect("deletes");
        assert!(matches!(
            store.like_moment(&user("b"), id, b"like", 1, &LIMITS),
            Err(StoreError::NoSuchPost { .. })
        ));
        assert_eq!(store.stored_moments().expect("counts"), 0);
        assert_eq!(
            store
                .moment_feed(&user("b"), None, 10, usize::MAX)
                .expect("reads"),
            FeedPage::default()
        );
    }

    #[test]
    fn removing_a_friend_ends_access_to_past_posts_for_good() {
        let (_dir, store) = store_with(&["a", "b"]);
        befriend(&store, "a", "b");
        let by_a = post(&store, "a", 1, &["b"]);
        let by_b = post(&store, "b", 2, &["a"]);
        store
            .remove_friend(&user("a"), &user("b"), 5, limit(100))
            .expect("removes");
        assert_eq!(seen(&store, "b", by_a), None);
        assert_eq!(seen(&store, "a", by_b), None);
        befriend(&store, "a", "b");
        assert_eq!(
            seen(&store, "b", by_a),
            None,
            "becoming friends again does not bring old posts back"
        );
        assert!(
            seen(&store, "a", by_a).is_some(),
            "the author keeps their post"
        );
    }

    #[test]
    fn after_a_removal_the_ex_friend_hears_nothing_but_may_take_back_what_they_did() {
        let (_dir, store) = store_with(&["a", "b", "c"]);
        for (x, y) in [("a", "b"), ("a", "c"), ("b", "c")] {
            befriend(&store, x, y);
        }
        let id = post(&store, "a", 1, &["b", "c"]);
        store
            .like_moment(&user("b"), id, b"like", 20, &LIMITS)
            .expect("likes");
        comment(&store, "b", id, 1, None);
        store
            .remove_friend(&user("a"), &user("b"), 30, limit(100))
            .expect("removes");
        // c still sees b's comment, but cannot tell b of a reply to a post b lost.
        assert_eq!(
            seen(&store, "c", id),
            Some((vec!["b".into()], vec!["b".into()]))
        );
        assert!(matches!(
            store.comment_moment(
                &user("c"),
                id,
                CommentId([2; 16]),
                Some(&user("b")),
                b"x",
                40,
                &LIMITS
            ),
            Err(StoreError::InvalidReply { .. })
        ));
        // b may still take back the like and the comment.
        store
            .unlike_moment(&user("b"), id)
            .expect("b takes the like back");
        store
            .delete_moment_comment(&user("b"), CommentId([1; 16]))
            .expect("b deletes their comment");
        assert_eq!(seen(&store, "c", id), Some((vec![], vec![])));
        assert!(matches!(
            store.unlike_moment(&user("b"), id),
            Err(StoreError::NoSuchPost { .. })
        ));
    }

    #[test]
    fn the_feed_pages_newest_first_without_gaps_or_repeats() {
        let (_dir, store) = store_with(&["v", "f1", "f2", "f3"]);
        for f in ["f1", "f2", "f3"] {
            befriend(&store, "v", f);
        }
        let mut posted = Vec::new();
        for n in 0..30u8 {
            let author = ["f1", "f2", "f3"][n as usize % 3];
            posted.push(post(&store, author, n, &["v"]));
        }
        posted.reverse();
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .moment_feed(&user("v"), before, 7, usize::MAX)
                .expect("reads");
            assert!(page.posts.len() <= 7);
            seen.extend(page.posts.iter().map(|p| p.id));
            match page.next {
                Some(next) => before = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, posted);
        // A byte budget makes pages shorter, never empty.
        let page = store.moment_feed(&user("v"), None, 10, 1).expect("reads");
        assert_eq!(page.posts.len(), 1);
        assert!(page.next.is_some());
    }

    #[test]
    fn what_one_writes_counts_against_ones_quota_until_it_goes() {
        let (_dir, store) = store_with(&["a", "b"]);
        befriend(&store, "a", "b");
        let (a, b) = (user("a"), user("b"));
        let small = MomentLimits {
            quota_bytes: 2 * item_cost(1000),
            ..LIMITS
        };
        let big = vec![7u8; 1000];
        store
            .post_moment(&a, PostId([1; 16]), &big, &[share("b")], 1, &small)
            .expect("fits");
        store
            .post_moment(&a, PostId([2; 16]), &big, &[share("b")], 2, &small)
            .expect("fits");
        let err = store
            .post_moment(&a, PostId([3; 16]), &big, &[share("b")], 3, &small)
            .expect_err("over the quota");
        assert!(
            matches!(err, StoreError::MomentQuotaExceeded { .. }),
            "{err:?}"
        );
        assert!(store.moment(&b, PostId([3; 16])).is_err(), "nothing stored");
        // b's comment and like on a's post count against b, and go with the post.
        store
            .comment_moment(
                &b,
                PostId([1; 16]),
                CommentId([9; 16]),
                None,
                &big,
                4,
                &small,
            )
            .expect("b's own quota");
        store
            .like_moment(&b, PostId([1; 16]), b"like", 5, &small)
            .expect("likes");
        assert_eq!(
            store.moment_usage(&b).expect("reads"),
            item_cost(1000) + item_cost(4)
        );
        store.delete_moment(&a, PostId([1; 16])).expect("deletes");
        assert_eq!(store.moment_usage(&b).expect("reads"), 0);
        assert_eq!(store.moment_usage(&a).expect("reads"), item_cost(1000));
        store
            .post_moment(&a, PostId([3; 16]), &big, &[share("b")], 6, &small)
            .expect("room again");
    }

    #[test]
    fn posts_past_the_retention_are_found_oldest_first_and_deleted_with_what_hangs_off_them() {
        let (dir, store) = store_with(&["a", "b"]);
        befriend(&store, "a", "b");
        let old = post(&store, "a", 1, &["b"]);
        comment(&store, "b", old, 1, None);
        let new = post(&store, "a", 5, &["b"]);
        assert_eq!(store.expired_moments(12, 10).expect("lists"), [old]);
        // The usage and the age index are rebuilt the same for a store written before them.
        let before = (
            store.moment_usage(&user("a")).expect("reads"),
            store.moment_usage(&user("b")).expect("reads"),
        );
        write(&store.db, |tx| {
            tx.open_table(MOMENT_USAGE)?.retain(|_, _| false)?;
            tx.open_table(MOMENT_POSTS_BY_TIME)?.retain(|_, _| false)?;
            tx.open_table(COUNTERS)?.remove(MOMENT_USAGE_BUILT)?;
            Ok(())
        })
        .expect("forgets");
        drop(store);
        let store = RelayStore::open(&dir.path().join("relay.redb")).expect("reopens");
        let after = (
            store.moment_usage(&user("a")).expect("reads"),
            store.moment_usage(&user("b")).expect("reads"),
        );
        assert_eq!(before, after);
        assert_eq!(store.expired_moments(12, 10).expect("lists"), [old]);
        assert!(store.delete_expired_moment(old).expect("deletes"));
        assert!(!store.delete_expired_moment(old).expect("gone"));
        assert_eq!(store.moment_usage(&user("b")).expect("reads"), 0);
        assert!(seen(&store, "b", new).is_some());
        assert!(store.expired_moments(u64::MAX, 10).expect("lists") == [new]);
    }
}
