//! The redb tables (private to the crate), value encoding and the small helpers every
//! transaction uses.
//!
//! Keys are tuples of names, numbers and id bytes, so that one user's or one
//! conversation's rows are one contiguous, ordered range. Values are MessagePack records
//! (see [`crate::records`]) or plain numbers. A table whose key or value type changes gets
//! a new name; redb refuses to open a table with a different type.

use std::path::Path;

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

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

// Peer tables.

/// [`PROFILE_KEY`] → [`crate::ProfileRecord`].
pub(crate) const PROFILE: TableDefinition<&str, &[u8]> = TableDefinition::new("profile");
/// The only key of [`PROFILE`].
pub(crate) const PROFILE_KEY: &str = "profile";
/// contact → [`crate::PinnedIdentity`].
pub(crate) const PINS: TableDefinition<&str, &[u8]> = TableDefinition::new("pins");
/// contact → `Vec<SessionRecord>`, always replaced as a whole.
pub(crate) const OLM_SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("olm_sessions");
/// (conversation, global insertion counter) → [`crate::HistoryEntry`].
pub(crate) const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
/// Where a history entry is: its [`HISTORY`] key.
pub(crate) type HistoryKey = (&'static str, u64);
/// (from, message id) → where its history entry is, or `None` if the message was seen
/// without one. Answers `has_message` and finds entries for `mark_sent`.
pub(crate) const MESSAGES: TableDefinition<(&str, &[u8]), Option<HistoryKey>> =
    TableDefinition::new("messages");

/// Where the history entry of message (`from`, `id`) is, from an open [`MESSAGES`] table:
/// its conversation and index, or `None` if it has none (or was never taken in).
pub(crate) fn entry_location(
    messages: &impl redb::ReadableTable<(&'static str, &'static [u8]), Option<HistoryKey>>,
    from: &str,
    id: &[u8],
) -> Result<Option<(String, u64)>, redb::StorageError> {
    Ok(messages
        .get((from, id))?
        .and_then(|v| v.value().map(|(c, index)| (c.to_string(), index))))
}

/// The history entry at `key` of an open [`HISTORY`] table, if there is one.
pub(crate) fn entry_at(
    history: &impl redb::ReadableTable<(&'static str, u64), &'static [u8]>,
    key: (&str, u64),
) -> Result<Option<crate::HistoryEntry>, StoreError> {
    history
        .get(key)?
        .map(|v| decode_entry(key.1, v.value()))
        .transpose()
}

/// Decodes the history entry stored at index `index` of [`HISTORY`], with its position.
pub(crate) fn decode_entry(index: u64, bytes: &[u8]) -> Result<crate::HistoryEntry, StoreError> {
    let mut entry: crate::HistoryEntry = decode(bytes, "history entry")?;
    entry.position = index;
    Ok(entry)
}

/// global insertion counter → [`crate::OutboxEntry`]; iteration order is oldest first.
pub(crate) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// message id → (its [`OUTBOX`] key, the `from` of its history entry).
pub(crate) const OUTBOX_IDS: TableDefinition<&[u8], (u64, &str)> =
    TableDefinition::new("outbox_ids");

/// contact → [`crate::ContactRecord`]: the last profile and avatar seen of each contact.
pub(crate) const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");

/// group id → [`crate::LocalGroup`]: the groups this peer is or was in.
pub(crate) const PEER_GROUPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peer_groups");
/// group id → [`crate::OutboundGroupRecord`]: this peer's current Megolm session per group.
pub(crate) const OUTBOUND_GROUP_SESSIONS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("outbound_group_sessions");
/// (group id, sender, session id) → [`crate::InboundGroupRecord`].
pub(crate) const INBOUND_GROUP_SESSIONS: TableDefinition<(&[u8], &str, &str), &[u8]> =
    TableDefinition::new("inbound_group_sessions");

/// file id → (from, message id): the history entry of the message that carries a file.
pub(crate) const FILE_MESSAGES: TableDefinition<&[u8], (&str, &[u8])> =
    TableDefinition::new("file_messages");
/// upload key (conversation, path, size and modification time) → [`crate::PendingUpload`].
pub(crate) const PENDING_UPLOADS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("pending_uploads");
/// file id → [`crate::PendingDownload`].
pub(crate) const PENDING_DOWNLOADS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("pending_downloads");

/// call id → [`crate::CallOfferRecord`].
pub(crate) const CALL_OFFERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("call_offers");

/// post id → [`crate::MomentKeyRecord`]: the key of each post this peer wrote or was
/// shared.
pub(crate) const MOMENT_KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("moment_keys");
/// file id → [`crate::MomentImageRecord`]: the pictures of the posts this peer has opened.
pub(crate) const MOMENT_IMAGES: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("moment_images");

// Both.

/// Named counters: see the `*_COUNTER` and `*_KEY` constants of each store.
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// The user's choices that stay on this device, by name: 1 for on, 0 for off.
pub(crate) const SETTINGS: TableDefinition<&str, u64> = TableDefinition::new("settings");

/// Encodes a record for storage.
pub(crate) fn encode<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(value).map_err(|e| StoreError::Encode {
        what,
        reason: e.to_string(),
    })
}

/// Decodes a stored record.
pub(crate) fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, StoreError> {
    rmp_serde::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what,
        reason: e.to_string(),
    })
}

/// A user name read back from a key; stored names were valid, so a bad one is corruption.
pub(crate) fn stored_name(name: &str) -> Result<uchat_wire::UserName, StoreError> {
    uchat_wire::UserName::parse(name).map_err(|e| StoreError::Corrupt {
        what: "user name",
        reason: e.to_string(),
    })
}

/// Takes the next value (starting at 1) of a named counter inside a write transaction.
pub(crate) fn next_counter(
    counters: &mut redb::Table<'_, &str, u64>,
    name: &str,
) -> Result<u64, StoreError> {
    let current = counters.get(name)?.map(|v| v.value()).unwrap_or(0);
    let next = current.checked_add(1).ok_or_else(|| StoreError::Corrupt {
        what: "counter",
        reason: format!("{name} is exhausted"),
    })?;
    counters.insert(name, next)?;
    Ok(next)
}

/// Opens (creating if needed) the database at `path` and creates `tables` in it, so that
/// read transactions can open every table.
pub(crate) fn open_database(
    path: &Path,
    cache_bytes: usize,
    create_tables: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::TableError>,
) -> Result<redb::Database, StoreError> {
    let db = redb::Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(|e| match e {
            // Both mean another handle holds the file's lock.
            redb::DatabaseError::DatabaseAlreadyOpen
            | redb::DatabaseError::LockProtocolMismatch => StoreError::InUse {
                path: path.to_path_buf(),
            },
            other => StoreError::Open {
                path: path.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
    let tx = db.begin_write()?;
    create_tables(&tx)?;
    tx.commit()?;
    Ok(db)
}

/// Runs `f` in one write transaction and commits it durably; if `f` fails, nothing it
/// wrote is kept.
pub(crate) fn write<T>(
    db: &redb::Database,
    f: impl FnOnce(&redb::WriteTransaction) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = db.begin_write()?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

/// Runs `f` in one read transaction (a consistent snapshot).
pub(crate) fn read<T>(
    db: &redb::Database,
    f: impl FnOnce(&redb::ReadTransaction) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    use redb::ReadableDatabase;
    let tx = db.begin_read()?;
    f(&tx)
}
