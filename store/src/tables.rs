//! The redb tables (private to the crate), value encoding and the small helpers every
//! transaction uses.
//!
//! Keys are tuples of names, numbers and id bytes, so that one user's or one
//! conversation's rows are one contiguous, ordered range. Values are MessagePack records
//! (see [`crate::records`]) or plain numbers. A table whose key or value type changes gets
//! a new name; redb refuses to open a table with a different type.

use redb::TableDefinition;

use crate::error::StoreError;

// Relay tables.

/// username → [`crate::AccountRecord`].
pub(crate) const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
/// (username, SHA-256 of the session token) → created_ms.
pub(crate) const SESSIONS: TableDefinition<(&str, &[u8]), u64> = TableDefinition::new("sessions");
/// (username, insertion counter) → `SignedKey`; the lowest counter is the oldest key.
pub(crate) const ONE_TIME_KEYS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("one_time_keys");
/// username → `SignedKey`.
pub(crate) const FALLBACK_KEYS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("fallback_keys");
/// (recipient, seq) → a queue row (`records::QueueRow`): a [`crate::QueuedEvent`], or a
/// reference to a group message in [`GROUP_MESSAGES`].
///
/// Architecture invariant: rows leave a queue only through `ack_through`, which removes
/// a prefix, so a user's queued seqs are always the contiguous run `first..=head`; an
/// event withdrawn before delivery leaves an empty row in its place.
pub(crate) const QUEUE: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("queue");
/// recipient → (events, bytes) their [`QUEUE`] rows hold, withdrawn rows left out: what
/// the queue quotas are checked against. Kept in step by every write to [`QUEUE`]; built
/// from the rows once for a store written before it existed.
pub(crate) const QUEUE_STATS: TableDefinition<&str, (u64, u64)> =
    TableDefinition::new("queue_stats");
/// recipient → the highest seq ever assigned (never lowered, so seqs are never reused).
pub(crate) const QUEUE_HEADS: TableDefinition<&str, u64> = TableDefinition::new("queue_heads");
/// (recipient, sender, message id) → (seq, relay_ts_ms) of the first enqueue. For a group
/// message the recipient is the group's key (`#` and its id in hex) and the seq its index
/// in [`GROUP_MESSAGES`].
pub(crate) const DEDUP: TableDefinition<(&str, &str, &[u8]), (u64, u64)> =
    TableDefinition::new("dedup");
/// (relay_ts_ms, recipient, sender, message id) → (): [`DEDUP`] ordered by age, for pruning.
pub(crate) const DEDUP_BY_TIME: TableDefinition<(u64, &str, &str, &[u8]), ()> =
    TableDefinition::new("dedup_by_time");
/// username → ms since the Unix epoch.
pub(crate) const LAST_SEEN: TableDefinition<&str, u64> = TableDefinition::new("last_seen");

// Relay tables of the social layer (see `social.rs`). A pair of users is keyed
// (owner, other), so one user's friends, requests or blocks are one ordered range.

/// The key of the tables about a pair of users: (owner, other).
pub(crate) type Pair = (&'static str, &'static str);

/// (user, friend) → since_ms. Always stored in both directions, in one transaction.
pub(crate) const FRIENDS: TableDefinition<(&str, &str), u64> = TableDefinition::new("friends");
/// (to, from) → [`crate::records::FriendRequestRecord`]: the pending requests a user
/// received.
///
/// Architecture invariant: a row here exists exactly when the matching
/// [`FRIEND_REQUESTS_SENT`] row does; both are written and removed in the same transactions.
pub(crate) const FRIEND_REQUESTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("friend_requests");
/// (from, to) → created_ms: the pending requests a user sent, an index of
/// [`FRIEND_REQUESTS`] (which holds the note).
pub(crate) const FRIEND_REQUESTS_SENT: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("friend_requests_sent");
/// (blocker, blocked) → since_ms. One direction only: a block is not mutual.
pub(crate) const BLOCKS: TableDefinition<(&str, &str), u64> = TableDefinition::new("blocks");
/// username → [`crate::records::PublicProfileRecord`]; no row until the user sets one.
pub(crate) const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("profiles");
/// username → the avatar image's bytes, whose version is in the user's [`PROFILES`] row.
pub(crate) const AVATARS: TableDefinition<&str, &[u8]> = TableDefinition::new("avatars");

// Relay tables of groups (see `group.rs`). Group ids are their 16 bytes.

/// group id → [`crate::records::GroupRecord`].
pub(crate) const GROUPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("groups");
/// (group id, member) → (join order, joined_ms). The lowest join order is the
/// longest-standing member.
///
/// Architecture invariant: a row here exists exactly when the matching [`USER_GROUPS`] row
/// does; both are written and removed in the same transactions.
pub(crate) const GROUP_MEMBERS: TableDefinition<(&[u8], &str), (u64, u64)> =
    TableDefinition::new("group_members");
/// (member, group id) → (): the groups a user is in, an index of [`GROUP_MEMBERS`].
pub(crate) const USER_GROUPS: TableDefinition<(&str, &[u8]), ()> =
    TableDefinition::new("user_groups");
/// (group id, index) → [`crate::records::GroupMessageRecord`]: each group message once,
/// however many queues refer to it; deleted when its last reference is acknowledged.
pub(crate) const GROUP_MESSAGES: TableDefinition<(&[u8], u64), &[u8]> =
    TableDefinition::new("group_messages");

// Relay tables of files (see `file.rs`). The ciphertext itself is in files next to the
// database, written by the relay; these hold what is known about each.

/// file id → [`crate::records::FileRecord`].
pub(crate) const FILES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("files");
/// uploader → bytes of ciphertext their files take (or will, for uploads under way).
pub(crate) const FILE_USAGE: TableDefinition<&str, u64> = TableDefinition::new("file_usage");
/// uploader → how many files of theirs the relay holds (uploads under way included); built
/// from [`FILES`] once for a store written before it existed.
pub(crate) const FILE_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("file_counts");
/// (expires_ms, file id) → (): [`FILES`] ordered by when they expire, for pruning.
pub(crate) const FILES_BY_EXPIRY: TableDefinition<(u64, &[u8]), ()> =
    TableDefinition::new("files_by_expiry");

// Relay tables of moments (see `moment.rs`). Post and comment ids are their 16 bytes.

/// post id → [`crate::records::MomentPostRecord`].
pub(crate) const MOMENT_POSTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("moment_posts");
/// (post id, viewer) → (): whom a post is shared with (its author is not listed).
pub(crate) const MOMENT_VIEWERS: TableDefinition<(&[u8], &str), ()> =
    TableDefinition::new("moment_viewers");
/// (user, post cursor) → (post id, author): each user's feed, their own posts included,
/// in the relay's order of posts.
///
/// Architecture invariant: a row here for a viewer other than the author exists exactly
/// when the matching [`MOMENT_VIEWERS`] row does; both are written and removed together.
pub(crate) const MOMENT_FEED: TableDefinition<(&str, u64), (&[u8], &str)> =
    TableDefinition::new("moment_feed");
/// user → bytes their posts, comments and likes take (see `moment.rs`'s quota); built from
/// the moment tables once for a store written before it existed.
pub(crate) const MOMENT_USAGE: TableDefinition<&str, u64> = TableDefinition::new("moment_usage");
/// (posted_ms, post id) → (): [`MOMENT_POSTS`] ordered by age, for the retention pruner.
pub(crate) const MOMENT_POSTS_BY_TIME: TableDefinition<(u64, &[u8]), ()> =
    TableDefinition::new("moment_posts_by_time");
/// (post id, liker) → [`crate::records::MomentLikeRecord`].
pub(crate) const MOMENT_LIKES: TableDefinition<(&[u8], &str), &[u8]> =
    TableDefinition::new("moment_likes");
/// (post id, comment order) → [`crate::records::MomentCommentRecord`]; oldest first.
pub(crate) const MOMENT_COMMENTS: TableDefinition<(&[u8], u64), &[u8]> =
    TableDefinition::new("moment_comments");
/// comment id → (post id, comment order): where a comment is in [`MOMENT_COMMENTS`].
pub(crate) const MOMENT_COMMENT_IDS: TableDefinition<&[u8], (&[u8], u64)> =
    TableDefinition::new("moment_comment_ids");

/// Named counters: see the `*_COUNTER` and `*_KEY` constants of each store.
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

/// A user name read back from a key; stored names were valid, so a bad one is corruption.
pub(crate) fn stored_name(name: &str) -> Result<uchat_wire::UserName, StoreError> {
    uchat_wire::UserName::parse(name).map_err(|e| StoreError::Corrupt {
        what: "user name",
        reason: e.to_string(),
    })
}

uchat_db::store_helpers!(StoreError);
