//! [`RelayStore`]: what the relay keeps, in domain terms: accounts, session token hashes,
//! one-time and fallback keys, each user's durable event queue (with send de-duplication)
//! and last-seen times.
//!
//! Everything end-to-end encrypted is opaque bytes here; the relay never sees plaintext.
//! Each method is one redb transaction, committed durably before it returns, so a SIGKILL
//! after a method returns loses nothing and one in the middle of it changes nothing.
//!
//! Methods that add data for a user ([`RelayStore::add_session`], the key methods,
//! [`RelayStore::enqueue`], [`RelayStore::set_last_seen`]) refuse unknown users with
//! [`StoreError::UnknownUser`]; reads about an unknown user answer "nothing".
//!
//! The social layer (friends, friend requests, blocks, profiles) is a second
//! `impl RelayStore` block in `social.rs`; it shares `enqueue_in` so that a state change
//! and the event announcing it commit in one transaction.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use redb::ReadableTable;
use uchat_wire::{IdentityKeys, MessageId, PushEvent, Seq, SignedKey, UserName};

use crate::error::StoreError;
use crate::records::{AccountRecord, QueueBody, QueueRow, QueuedEvent};
use crate::tables::{
    ACCOUNTS, AVATARS, BLOCKS, COUNTERS, DEDUP, DEDUP_BY_TIME, FALLBACK_KEYS, FILE_USAGE, FILES,
    FILES_BY_EXPIRY, FRIEND_REQUESTS, FRIEND_REQUESTS_SENT, FRIENDS, GROUP_MEMBERS, GROUP_MESSAGES,
    GROUPS, LAST_SEEN, MOMENT_COMMENT_IDS, MOMENT_COMMENTS, MOMENT_FEED, MOMENT_LIKES,
    MOMENT_POSTS, MOMENT_VIEWERS, ONE_TIME_KEYS, PROFILES, QUEUE, QUEUE_HEADS, QUEUE_STATS,
    SESSIONS, USER_GROUPS, decode, encode, next_counter, open_database, read, write,
};

/// The counter that orders one-time keys (shared by all users; only the order matters).
const ONE_TIME_KEY_COUNTER: &str = "one_time_keys";

/// A key handed out by [`RelayStore::claim_key`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedKey {
    /// The signed key.
    pub key: SignedKey,
    /// True if the one-time stock was empty and this is the (reusable) fallback key.
    pub fallback: bool,
}

/// What [`RelayStore::enqueue`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The event's position in the recipient's queue.
    pub seq: Seq,
    /// When it was (first) queued, by the relay's clock, in ms since the Unix epoch.
    pub relay_ts_ms: u64,
    /// True if this (sender, message id) was queued for this recipient before: nothing new
    /// was queued and `seq` and `relay_ts_ms` are the original ones.
    pub duplicate: bool,
}

/// The relay's durable state, in one redb file. `Send + Sync`: share it with an `Arc` and
/// call it from blocking threads.
pub struct RelayStore {
    pub(crate) db: redb::Database,
    path: PathBuf,
}

impl fmt::Debug for RelayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// [`StoreError::UnknownUser`] unless `username` has an account.
pub(crate) fn require_account(
    tx: &redb::WriteTransaction,
    username: &UserName,
) -> Result<(), StoreError> {
    if tx.open_table(ACCOUNTS)?.get(username.as_str())?.is_none() {
        return Err(StoreError::UnknownUser {
            username: username.clone(),
        });
    }
    Ok(())
}

/// Adds one-time keys to `username`'s stock inside a write transaction, up to
/// `max_stock`, skipping keys already held; returns the stock size.
fn add_keys_in(
    tx: &redb::WriteTransaction,
    username: &UserName,
    keys: &[SignedKey],
    max_stock: usize,
) -> Result<u64, StoreError> {
    let name = username.as_str();
    let mut stock = tx.open_table(ONE_TIME_KEYS)?;
    let mut counters = tx.open_table(COUNTERS)?;
    let mut held = HashSet::new();
    for item in stock.range((name, 0)..=(name, u64::MAX))? {
        let key: SignedKey = decode(item?.1.value(), "one-time key")?;
        held.insert(key.key);
    }
    for key in keys {
        if held.len() >= max_stock {
            break;
        }
        if held.contains(&key.key) {
            continue;
        }
        let index = next_counter(&mut counters, ONE_TIME_KEY_COUNTER)?;
        stock.insert((name, index), encode(key, "one-time key")?.as_slice())?;
        held.insert(key.key.clone());
    }
    Ok(held.len() as u64)
}

/// Revokes every session of `username` except `keep_token_hash`, inside a write
/// transaction; returns how many were revoked.
fn revoke_sessions_except_in(
    tx: &redb::WriteTransaction,
    username: &UserName,
    keep_token_hash: [u8; 32],
) -> Result<u64, StoreError> {
    let name = username.as_str();
    let mut sessions = tx.open_table(SESSIONS)?;
    // The empty hash sorts first, so this range starts at the user's first session; it
    // runs on into later users, hence the check on the name.
    let mut revoke = Vec::new();
    for item in sessions.range((name, &[][..])..)? {
        let (key, _) = item?;
        let (owner, hash) = key.value();
        if owner != name {
            break;
        }
        if hash != keep_token_hash.as_slice() {
            revoke.push(hash.to_vec());
        }
    }
    for hash in &revoke {
        sessions.remove((name, hash.as_slice()))?;
    }
    Ok(revoke.len() as u64)
}

/// A slice of one of a user's lists (friends, requests, groups), as the methods that read
/// a list a page at a time return it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rows<T> {
    /// The rows, in the list's order.
    pub rows: Vec<T>,
    /// Whether the list has rows after these.
    pub more: bool,
}

impl<T> Default for Rows<T> {
    /// No rows, and none after them.
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            more: false,
        }
    }
}

/// How much one user's queue may hold before senders are told it is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueLimit {
    /// Events waiting (withdrawn ones do not count).
    pub max_events: u64,
    /// Bytes those events take as stored (a group message stored once counts in full for
    /// each recipient, since each must fetch it).
    pub max_bytes: u64,
}

impl QueueLimit {
    /// This limit times `factor` in both dimensions (for key shares, which may go past a
    /// full queue by a bounded amount).
    pub fn times(self, factor: u64) -> Self {
        Self {
            max_events: self.max_events.saturating_mul(factor),
            max_bytes: self.max_bytes.saturating_mul(factor),
        }
    }
}

/// What one stored queue row counts against its user's [`QueueLimit`]: (events, bytes).
/// A function of the stored row alone, so adding and removing it always balance.
pub(crate) fn row_cost(stored: &[u8], row: &QueueRow) -> (u64, u64) {
    if row.withdrawn {
        return (0, 0);
    }
    let referenced = row.group_message.map_or(0, |reference| reference.bytes);
    (1, stored.len() as u64 + referenced)
}

/// `name`'s (events, bytes) in [`QUEUE_STATS`].
fn stats_in(
    stats: &impl ReadableTable<&'static str, (u64, u64)>,
    name: &str,
) -> Result<(u64, u64), StoreError> {
    Ok(stats.get(name)?.map(|v| v.value()).unwrap_or((0, 0)))
}

/// Adds `cost` to (or with `add = false` takes it from) `name`'s [`QUEUE_STATS`] row.
fn adjust_stats_in(
    stats: &mut redb::Table<'_, &'static str, (u64, u64)>,
    name: &str,
    cost: (u64, u64),
    add: bool,
) -> Result<(), StoreError> {
    let (events, bytes) = stats_in(stats, name)?;
    let next = if add {
        (events.saturating_add(cost.0), bytes.saturating_add(cost.1))
    } else {
        (events.saturating_sub(cost.0), bytes.saturating_sub(cost.1))
    };
    if next == (0, 0) {
        stats.remove(name)?;
    } else {
        stats.insert(name, next)?;
    }
    Ok(())
}

/// Builds [`QUEUE_STATS`] from the queue rows, once, for a store written before it
/// existed (marked done in [`COUNTERS`]).
fn build_queue_stats_once(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut counters = tx.open_table(COUNTERS)?;
    if counters.get(QUEUE_STATS_BUILT)?.is_some() {
        return Ok(());
    }
    let queue = tx.open_table(QUEUE)?;
    let mut stats = tx.open_table(QUEUE_STATS)?;
    let mut totals: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for item in queue.iter()? {
        let (key, value) = item?;
        let row: QueueRow = decode(value.value(), "queued event")?;
        let cost = row_cost(value.value(), &row);
        let entry = totals.entry(key.value().0.to_string()).or_default();
        *entry = (entry.0 + cost.0, entry.1 + cost.1);
    }
    for (name, total) in &totals {
        stats.insert(name.as_str(), *total)?;
    }
    counters.insert(QUEUE_STATS_BUILT, 1)?;
    Ok(())
}

/// The [`COUNTERS`] entry that says [`QUEUE_STATS`] was built.
const QUEUE_STATS_BUILT: &str = "queue_stats_built";

/// A write transaction's view of the queues: the tables opened once, so that a fan-out to
/// many recipients does not reopen them per recipient.
pub(crate) struct QueueWriter<'t> {
    queue: redb::Table<'t, (&'static str, u64), &'static [u8]>,
    heads: redb::Table<'t, &'static str, u64>,
    stats: redb::Table<'t, &'static str, (u64, u64)>,
}

impl<'t> QueueWriter<'t> {
    /// Opens the queue tables in `tx`.
    pub(crate) fn open(tx: &'t redb::WriteTransaction) -> Result<Self, StoreError> {
        Ok(Self {
            queue: tx.open_table(QUEUE)?,
            heads: tx.open_table(QUEUE_HEADS)?,
            stats: tx.open_table(QUEUE_STATS)?,
        })
    }

    /// Whether `recipient`'s queue is below `limit` in events and in bytes.
    pub(crate) fn has_room(
        &self,
        recipient: &UserName,
        limit: QueueLimit,
    ) -> Result<bool, StoreError> {
        let (events, bytes) = stats_in(&self.stats, recipient.as_str())?;
        Ok(events < limit.max_events && bytes < limit.max_bytes)
    }

    /// [`StoreError::QueueFull`] unless `recipient`'s queue is below `limit`.
    pub(crate) fn check_room(
        &self,
        recipient: &UserName,
        limit: QueueLimit,
    ) -> Result<(), StoreError> {
        if !self.has_room(recipient, limit)? {
            let (len, _) = stats_in(&self.stats, recipient.as_str())?;
            return Err(StoreError::QueueFull {
                recipient: recipient.clone(),
                len,
            });
        }
        Ok(())
    }

    /// Appends one row to `recipient`'s queue with the next seq; the caller has checked
    /// the account and the room.
    pub(crate) fn append(
        &mut self,
        recipient: &UserName,
        body: QueueBody,
        now_ms: u64,
    ) -> Result<Seq, StoreError> {
        let name = recipient.as_str();
        let head = self.heads.get(name)?.map(|v| v.value()).unwrap_or(0);
        let seq = head.checked_add(1).ok_or_else(|| StoreError::Corrupt {
            what: "queue head",
            reason: format!("the sequence numbers of {recipient} are exhausted"),
        })?;
        let row = QueueRow::new(Seq(seq), now_ms, body);
        let stored = encode(&row, "queued event")?;
        self.queue.insert((name, seq), stored.as_slice())?;
        self.heads.insert(name, seq)?;
        adjust_stats_in(&mut self.stats, name, row_cost(&stored, &row), true)?;
        Ok(Seq(seq))
    }

    /// Empties the row at `seq` in `recipient`'s queue if it is still there, undelivered,
    /// and holds an event `is_it` accepts; returns whether it did. The row keeps its seq
    /// (so the peer acknowledges past it as usual) and stops counting against the quota.
    pub(crate) fn withdraw(
        &mut self,
        recipient: &UserName,
        seq: Seq,
        is_it: impl FnOnce(&PushEvent) -> bool,
    ) -> Result<bool, StoreError> {
        let name = recipient.as_str();
        let Some(stored) = self.queue.get((name, seq.0))?.map(|v| v.value().to_vec()) else {
            return Ok(false);
        };
        let row: QueueRow = decode(&stored, "queued event")?;
        if !row.event.as_ref().is_some_and(is_it) {
            return Ok(false);
        }
        let cost = row_cost(&stored, &row);
        let emptied = QueueRow::new(row.seq, row.relay_ts_ms, QueueBody::Withdrawn);
        self.queue
            .insert((name, seq.0), encode(&emptied, "queued event")?.as_slice())?;
        adjust_stats_in(&mut self.stats, name, cost, false)?;
        Ok(true)
    }
}

/// [`RelayStore::enqueue`] inside a write transaction, so that a state change and the
/// event telling someone about it commit together. On an error nothing is written (the
/// checks come before the first insert), so a caller may go on with the transaction.
pub(crate) fn enqueue_in(
    tx: &redb::WriteTransaction,
    recipient: &UserName,
    event: PushEvent,
    dedup: Option<(&UserName, MessageId)>,
    now_ms: u64,
    limit: QueueLimit,
) -> Result<Enqueued, StoreError> {
    require_account(tx, recipient)?;
    let name = recipient.as_str();
    if let Some((sender, id)) = dedup
        && let Some((seq, relay_ts_ms)) = earlier_send_in(tx, name, sender, id)?
    {
        return Ok(Enqueued {
            seq: Seq(seq),
            relay_ts_ms,
            duplicate: true,
        });
    }
    let mut queues = QueueWriter::open(tx)?;
    queues.check_room(recipient, limit)?;
    let seq = queues.append(recipient, QueueBody::Event(event), now_ms)?;
    drop(queues);
    if let Some((sender, id)) = dedup {
        remember_send_in(tx, name, sender, id, seq, now_ms)?;
    }
    Ok(Enqueued {
        seq,
        relay_ts_ms: now_ms,
        duplicate: false,
    })
}

/// Records that `sender` queued message `id` for `recipient` (a user name, or a group's
/// de-duplication key) at `seq`, so that a re-send is recognized until
/// [`RelayStore::prune_dedup_before`] forgets it.
pub(crate) fn remember_send_in(
    tx: &redb::WriteTransaction,
    recipient: &str,
    sender: &UserName,
    id: MessageId,
    seq: Seq,
    now_ms: u64,
) -> Result<(), StoreError> {
    tx.open_table(DEDUP)?.insert(
        (recipient, sender.as_str(), id.0.as_slice()),
        (seq.0, now_ms),
    )?;
    tx.open_table(DEDUP_BY_TIME)?
        .insert((now_ms, recipient, sender.as_str(), id.0.as_slice()), ())?;
    Ok(())
}

/// The earlier send of message `id` by `sender` to `recipient` (see [`remember_send_in`]),
/// as (seq, relay_ts_ms).
pub(crate) fn earlier_send_in(
    tx: &redb::WriteTransaction,
    recipient: &str,
    sender: &UserName,
    id: MessageId,
) -> Result<Option<(u64, u64)>, StoreError> {
    Ok(tx
        .open_table(DEDUP)?
        .get((recipient, sender.as_str(), id.0.as_slice()))?
        .map(|v| v.value()))
}

/// The event a queue row stands for, with a group message read from where it is stored.
fn resolve_row(
    row: QueueRow,
    messages: &impl ReadableTable<(&'static [u8], u64), &'static [u8]>,
) -> Result<QueuedEvent, StoreError> {
    let (seq, relay_ts_ms) = (row.seq, row.relay_ts_ms);
    let event = match row.body()? {
        QueueBody::Event(event) => event,
        QueueBody::GroupMessage(reference) => {
            crate::group::group_message_event(messages, &reference)?
        }
        QueueBody::Withdrawn => PushEvent::Withdrawn,
    };
    Ok(QueuedEvent {
        seq,
        relay_ts_ms,
        event,
    })
}

/// [`RelayStore::ack_through`] inside `tx`.
pub(crate) fn ack_through_in(
    tx: &redb::WriteTransaction,
    user: &UserName,
    through: Seq,
) -> Result<u64, StoreError> {
    let name = user.as_str();
    let mut queue = tx.open_table(QUEUE)?;
    let mut released = Vec::new();
    let mut deleted = 0;
    let mut cost = (0, 0);
    for item in queue.extract_from_if((name, 0)..=(name, through.0), |_, _| true)? {
        let (_, value) = item?;
        let row: QueueRow = decode(value.value(), "queued event")?;
        let (events, bytes) = row_cost(value.value(), &row);
        cost = (cost.0 + events, cost.1 + bytes);
        if let QueueBody::GroupMessage(reference) = row.body()? {
            released.push(reference);
        }
        deleted += 1;
    }
    drop(queue);
    adjust_stats_in(&mut tx.open_table(QUEUE_STATS)?, name, cost, false)?;
    crate::group::release_group_messages_in(tx, &released)?;
    Ok(deleted)
}

/// [`RelayStore::set_last_seen`] inside `tx`.
pub(crate) fn set_last_seen_in(
    tx: &redb::WriteTransaction,
    user: &UserName,
    ms: u64,
) -> Result<(), StoreError> {
    require_account(tx, user)?;
    tx.open_table(LAST_SEEN)?.insert(user.as_str(), ms)?;
    Ok(())
}

impl RelayStore {
    /// Opens the store at `path`, creating the file if needed, with a page cache of
    /// [`RelayStore::DEFAULT_CACHE_BYTES`].
    ///
    /// [`StoreError::InUse`] if another process (or another handle) has it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, Self::DEFAULT_CACHE_BYTES)
    }

    /// Pages of the file the relay keeps in memory unless told otherwise: 128 MiB holds
    /// the hot part of a community relay's queues and friend graph, where redb's own
    /// default (1 GiB) would let the cache alone outgrow a small box.
    pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

    /// [`RelayStore::open`] with a page cache of at most `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let db = open_database(path, cache_bytes, |tx| {
            tx.open_table(ACCOUNTS)?;
            tx.open_table(SESSIONS)?;
            tx.open_table(ONE_TIME_KEYS)?;
            tx.open_table(FALLBACK_KEYS)?;
            tx.open_table(QUEUE)?;
            tx.open_table(QUEUE_HEADS)?;
            tx.open_table(QUEUE_STATS)?;
            tx.open_table(DEDUP)?;
            tx.open_table(DEDUP_BY_TIME)?;
            tx.open_table(LAST_SEEN)?;
            tx.open_table(FRIENDS)?;
            tx.open_table(FRIEND_REQUESTS)?;
            tx.open_table(FRIEND_REQUESTS_SENT)?;
            tx.open_table(BLOCKS)?;
            tx.open_table(PROFILES)?;
            tx.open_table(AVATARS)?;
            tx.open_table(GROUPS)?;
            tx.open_table(GROUP_MEMBERS)?;
            tx.open_table(USER_GROUPS)?;
            tx.open_table(GROUP_MESSAGES)?;
            tx.open_table(FILES)?;
            tx.open_table(FILE_USAGE)?;
            tx.open_table(crate::tables::FILE_COUNTS)?;
            tx.open_table(FILES_BY_EXPIRY)?;
            tx.open_table(MOMENT_POSTS)?;
            tx.open_table(MOMENT_VIEWERS)?;
            tx.open_table(MOMENT_FEED)?;
            tx.open_table(MOMENT_LIKES)?;
            tx.open_table(MOMENT_COMMENTS)?;
            tx.open_table(MOMENT_COMMENT_IDS)?;
            tx.open_table(crate::tables::MOMENT_USAGE)?;
            tx.open_table(crate::tables::MOMENT_POSTS_BY_TIME)?;
            tx.open_table(COUNTERS)?;
            Ok(())
        })?;
        write(&db, |tx| {
            build_queue_stats_once(tx)?;
            crate::file::build_file_counts_once(tx)?;
            crate::moment::build_moment_usage_once(tx)
        })?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Creates an account; [`StoreError::UsernameTaken`] if the name exists (checked and
    /// inserted in one transaction, so two concurrent registrations cannot both win).
    pub fn create_account(&self, account: &AccountRecord) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            let mut accounts = tx.open_table(ACCOUNTS)?;
            let name = account.username.as_str();
            if accounts.get(name)?.is_some() {
                return Err(StoreError::UsernameTaken {
                    username: account.username.clone(),
                });
            }
            accounts.insert(name, encode(account, "account")?.as_slice())?;
            Ok(())
        })
    }

    /// Registers a new account with its first one-time keys (up to `max_stock`) and its
    /// fallback key, all in one transaction, and returns the one-time key count.
    ///
    /// [`StoreError::UsernameTaken`] if the name exists; then nothing changes (the existing
    /// account's keys are untouched). A crash or a lost reply can therefore never leave an
    /// account without its keys.
    pub fn register_account(
        &self,
        account: &AccountRecord,
        one_time_keys: &[SignedKey],
        fallback_key: Option<&SignedKey>,
        max_stock: usize,
    ) -> Result<u64, StoreError> {
        write(&self.db, |tx| {
            let name = account.username.as_str();
            let mut accounts = tx.open_table(ACCOUNTS)?;
            if accounts.get(name)?.is_some() {
                return Err(StoreError::UsernameTaken {
                    username: account.username.clone(),
                });
            }
            accounts.insert(name, encode(account, "account")?.as_slice())?;
            drop(accounts);
            if let Some(key) = fallback_key {
                tx.open_table(FALLBACK_KEYS)?
                    .insert(name, encode(key, "fallback key")?.as_slice())?;
            }
            add_keys_in(tx, &account.username, one_time_keys, max_stock)
        })
    }

    /// The account named `username`, if any.
    pub fn account(&self, username: &UserName) -> Result<Option<AccountRecord>, StoreError> {
        read(&self.db, |tx| {
            tx.open_table(ACCOUNTS)?
                .get(username.as_str())?
                .map(|v| decode(v.value(), "account"))
                .transpose()
        })
    }

    /// Records a live session: the SHA-256 hash of its token (the token itself is never
    /// stored).
    pub fn add_session(
        &self,
        username: &UserName,
        token_hash: [u8; 32],
        created_ms: u64,
    ) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            require_account(tx, username)?;
            tx.open_table(SESSIONS)?
                .insert((username.as_str(), token_hash.as_slice()), created_ms)?;
            Ok(())
        })
    }

    /// Whether `token_hash` is a live session of `username`.
    pub fn has_session(
        &self,
        username: &UserName,
        token_hash: [u8; 32],
    ) -> Result<bool, StoreError> {
        read(&self.db, |tx| {
            Ok(tx
                .open_table(SESSIONS)?
                .get((username.as_str(), token_hash.as_slice()))?
                .is_some())
        })
    }

    /// Revokes one session; revoking an unknown one is not an error.
    pub fn remove_session(
        &self,
        username: &UserName,
        token_hash: [u8; 32],
    ) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            tx.open_table(SESSIONS)?
                .remove((username.as_str(), token_hash.as_slice()))?;
            Ok(())
        })
    }

    /// Adds one-time keys to `username`'s stock, oldest first, and returns the new stock.
    ///
    /// Keys beyond `max_stock` are ignored, and so are keys already in the stock (same key
    /// bytes), so a re-upload after a lost reply does nothing.
    pub fn add_one_time_keys(
        &self,
        username: &UserName,
        keys: &[SignedKey],
        max_stock: usize,
    ) -> Result<u64, StoreError> {
        write(&self.db, |tx| {
            require_account(tx, username)?;
            add_keys_in(tx, username, keys, max_stock)
        })
    }

    /// Replaces `username`'s identity keys (a move to a new device): the old one-time
    /// keys and fallback key are discarded, since nobody can use them any more, and the new
    /// ones are stocked; every session except `keep_token_hash` (the new device's own) is
    /// revoked, so devices holding the old keys must log in again. All in one transaction.
    /// Returns the new one-time key count.
    pub fn replace_identity(
        &self,
        username: &UserName,
        identity: &IdentityKeys,
        one_time_keys: &[SignedKey],
        fallback_key: Option<&SignedKey>,
        max_stock: usize,
        keep_token_hash: [u8; 32],
    ) -> Result<u64, StoreError> {
        write(&self.db, |tx| {
            let name = username.as_str();
            let mut accounts = tx.open_table(ACCOUNTS)?;
            let mut account: AccountRecord = match accounts.get(name)? {
                Some(v) => decode(v.value(), "account")?,
                None => {
                    return Err(StoreError::UnknownUser {
                        username: username.clone(),
                    });
                }
            };
            account.identity = identity.clone();
            accounts.insert(name, encode(&account, "account")?.as_slice())?;
            drop(accounts);
            let mut stock = tx.open_table(ONE_TIME_KEYS)?;
            let old: Vec<u64> = stock
                .range((name, 0)..=(name, u64::MAX))?
                .map(|item| item.map(|(k, _)| k.value().1))
                .collect::<Result<_, _>>()?;
            for index in old {
                stock.remove((name, index))?;
            }
            drop(stock);
            let mut fallbacks = tx.open_table(FALLBACK_KEYS)?;
            match fallback_key {
                Some(key) => {
                    fallbacks.insert(name, encode(key, "fallback key")?.as_slice())?;
                }
                None => {
                    fallbacks.remove(name)?;
                }
            }
            drop(fallbacks);
            revoke_sessions_except_in(tx, username, keep_token_hash)?;
            add_keys_in(tx, username, one_time_keys, max_stock)
        })
    }

    /// Sets (or replaces) `username`'s fallback key.
    pub fn set_fallback_key(&self, username: &UserName, key: &SignedKey) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            require_account(tx, username)?;
            tx.open_table(FALLBACK_KEYS)?
                .insert(username.as_str(), encode(key, "fallback key")?.as_slice())?;
            Ok(())
        })
    }

    /// Hands out `username`'s oldest one-time key, removing it in the same transaction, so
    /// each one-time key is handed out exactly once. With an empty stock, hands out the
    /// fallback key (which stays) with `fallback: true`; `None` if there is neither.
    pub fn claim_key(&self, username: &UserName) -> Result<Option<ClaimedKey>, StoreError> {
        write(&self.db, |tx| {
            let name = username.as_str();
            let mut stock = tx.open_table(ONE_TIME_KEYS)?;
            let oldest = match stock.range((name, 0)..=(name, u64::MAX))?.next() {
                Some(item) => {
                    let (k, v) = item?;
                    Some((k.value().1, v.value().to_vec()))
                }
                None => None,
            };
            if let Some((index, bytes)) = oldest {
                stock.remove((name, index))?;
                return Ok(Some(ClaimedKey {
                    key: decode(&bytes, "one-time key")?,
                    fallback: false,
                }));
            }
            tx.open_table(FALLBACK_KEYS)?
                .get(name)?
                .map(|v| decode(v.value(), "fallback key"))
                .transpose()
                .map(|key| {
                    key.map(|key| ClaimedKey {
                        key,
                        fallback: true,
                    })
                })
        })
    }

    /// `username`'s fallback key, without touching the one-time stock (for someone who
    /// must not drain it).
    pub fn fallback_key(&self, username: &UserName) -> Result<Option<ClaimedKey>, StoreError> {
        read(&self.db, |tx| {
            tx.open_table(FALLBACK_KEYS)?
                .get(username.as_str())?
                .map(|v| decode(v.value(), "fallback key"))
                .transpose()
                .map(|key| {
                    key.map(|key| ClaimedKey {
                        key,
                        fallback: true,
                    })
                })
        })
    }

    /// How many one-time keys of `username` are left.
    pub fn one_time_key_count(&self, username: &UserName) -> Result<u64, StoreError> {
        read(&self.db, |tx| {
            let name = username.as_str();
            let stock = tx.open_table(ONE_TIME_KEYS)?;
            let mut count = 0;
            for item in stock.range((name, 0)..=(name, u64::MAX))? {
                item?;
                count += 1;
            }
            Ok(count)
        })
    }

    /// Appends `event` to `recipient`'s durable queue, in one transaction:
    ///
    /// 1. With `dedup = Some((sender, id))`, if that sender already queued that id for this
    ///    recipient (even if it was delivered and acknowledged since), nothing is queued
    ///    and the original seq and time come back with `duplicate: true`.
    /// 2. If the queue is at `limit` (in events or in bytes): [`StoreError::QueueFull`].
    /// 3. Otherwise the event gets the next seq of this recipient (strictly increasing from
    ///    1, never reused, across acknowledgements and restarts) and `now_ms` as its time.
    ///
    /// [`StoreError::UnknownUser`] if `recipient` has no account.
    pub fn enqueue(
        &self,
        recipient: &UserName,
        event: &PushEvent,
        dedup: Option<(&UserName, MessageId)>,
        now_ms: u64,
        limit: QueueLimit,
    ) -> Result<Enqueued, StoreError> {
        write(&self.db, |tx| {
            enqueue_in(tx, recipient, event.clone(), dedup, now_ms, limit)
        })
    }

    /// The highest seq ever assigned to `user` (`Seq(0)` if none).
    pub fn queue_head(&self, user: &UserName) -> Result<Seq, StoreError> {
        read(&self.db, |tx| {
            let heads = tx.open_table(QUEUE_HEADS)?;
            Ok(Seq(heads
                .get(user.as_str())?
                .map(|v| v.value())
                .unwrap_or(0)))
        })
    }

    /// `user`'s queued events with seq greater than `after`, ascending, at most `limit`.
    /// A group message stored once for all its recipients comes back whole.
    pub fn pending(
        &self,
        user: &UserName,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        self.pending_batch(user, after, limit, u64::MAX)
    }

    /// Like [`RelayStore::pending`], but stops once the events taken hold `max_bytes` (as
    /// the queue quota counts them), so a batch of large events stays small in memory;
    /// the first event is always taken, whatever its size.
    pub fn pending_batch(
        &self,
        user: &UserName,
        after: Seq,
        limit: usize,
        max_bytes: u64,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let Some(start) = after.0.checked_add(1) else {
            return Ok(Vec::new());
        };
        read(&self.db, |tx| {
            let name = user.as_str();
            let queue = tx.open_table(QUEUE)?;
            let messages = tx.open_table(GROUP_MESSAGES)?;
            let mut out = Vec::new();
            let mut bytes = 0u64;
            for item in queue.range((name, start)..=(name, u64::MAX))?.take(limit) {
                if bytes >= max_bytes {
                    break;
                }
                let item = item?;
                let row: QueueRow = decode(item.1.value(), "queued event")?;
                bytes = bytes.saturating_add(row_cost(item.1.value(), &row).1);
                out.push(resolve_row(row, &messages)?);
            }
            Ok(out)
        })
    }

    /// Deletes `user`'s events with seq up to and including `through`; returns how many
    /// were deleted. A group message stored once is deleted with its last reference.
    /// Acknowledging again, or beyond the head, is harmless.
    pub fn ack_through(&self, user: &UserName, through: Seq) -> Result<u64, StoreError> {
        write(&self.db, |tx| ack_through_in(tx, user, through))
    }

    /// How many events wait in `user`'s queue (withdrawn ones left out).
    pub fn queue_len(&self, user: &UserName) -> Result<u64, StoreError> {
        Ok(self.queue_usage(user)?.0)
    }

    /// What `user`'s queue holds, as its quota counts it: (events, bytes).
    pub fn queue_usage(&self, user: &UserName) -> Result<(u64, u64), StoreError> {
        read(&self.db, |tx| {
            stats_in(&tx.open_table(QUEUE_STATS)?, user.as_str())
        })
    }

    /// The span of `user`'s queue: (everything up to here was acknowledged, the highest
    /// seq ever assigned). The queue is the contiguous run between them.
    pub fn queue_span(&self, user: &UserName) -> Result<(Seq, Seq), StoreError> {
        read(&self.db, |tx| {
            let name = user.as_str();
            let head = tx
                .open_table(QUEUE_HEADS)?
                .get(name)?
                .map(|v| v.value())
                .unwrap_or(0);
            let first = match tx
                .open_table(QUEUE)?
                .range((name, 0)..=(name, u64::MAX))?
                .next()
            {
                Some(item) => item?.0.value().1,
                None => head.saturating_add(1),
            };
            Ok((Seq(first.saturating_sub(1)), Seq(head)))
        })
    }

    /// Forgets the de-duplication entries of messages queued before `cutoff_ms`; returns
    /// how many. A sender re-sending such an old message afterwards queues it again.
    pub fn prune_dedup_before(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        write(&self.db, |tx| {
            let mut by_time = tx.open_table(DEDUP_BY_TIME)?;
            let mut dedup = tx.open_table(DEDUP)?;
            let mut pruned = 0;
            // The empty name and id sort first, so this is every entry older than the cutoff.
            let older = ..(cutoff_ms, "", "", &[][..]);
            for item in by_time.extract_from_if(older, |_, _| true)? {
                let (key, _) = item?;
                let (_, recipient, sender, id) = key.value();
                dedup.remove((recipient, sender, id))?;
                pruned += 1;
            }
            Ok(pruned)
        })
    }

    /// Records when `user` was last online, in ms since the Unix epoch.
    pub fn set_last_seen(&self, user: &UserName, ms: u64) -> Result<(), StoreError> {
        write(&self.db, |tx| set_last_seen_in(tx, user, ms))
    }

    /// When `user` was last online, if ever recorded.
    pub fn last_seen(&self, user: &UserName) -> Result<Option<u64>, StoreError> {
        read(&self.db, |tx| {
            Ok(tx
                .open_table(LAST_SEEN)?
                .get(user.as_str())?
                .map(|v| v.value()))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use uchat_wire::IdentityKeys;

    pub(crate) fn user(name: &str) -> UserName {
        UserName::parse(name).expect("valid")
    }

    /// A queue limit of `events` events and no byte limit to speak of.
    pub(crate) fn limit(events: u64) -> QueueLimit {
        QueueLimit {
            max_events: events,
            max_bytes: u64::MAX,
        }
    }

    pub(crate) fn account(name: &str) -> AccountRecord {
        AccountRecord {
            username: user(name),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            identity: IdentityKeys {
                curve25519: vec![1; 32],
                ed25519: vec![2; 32],
            },
            created_ms: 1,
        }
    }

    fn key(b: u8) -> SignedKey {
        SignedKey {
            key: vec![b; 32],
            signature: vec![b; 64],
        }
    }

    fn message(i: u8) -> PushEvent {
        PushEvent::Message {
            from: user("alice"),
            id: MessageId([i; 16]),
            ciphertext: vec![i; 10],
        }
    }

    /// A store in a fresh directory with accounts for `names`.
    pub(crate) fn store_with(names: &[&str]) -> (tempfile::TempDir, RelayStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RelayStore::open(&dir.path().join("relay.redb")).expect("opens");
        for name in names {
            store.create_account(&account(name)).expect("creates");
        }
        (dir, store)
    }

    #[test]
    fn stores_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<RelayStore>();
    }

    #[test]
    fn replacing_the_identity_discards_the_old_keys_in_one_step() {
        let (_dir, store) = store_with(&["alice"]);
        let alice = user("alice");
        store
            .add_one_time_keys(&alice, &[key(1), key(2)], 10)
            .expect("adds");
        store.set_fallback_key(&alice, &key(3)).expect("sets");
        let new_identity = IdentityKeys {
            curve25519: vec![40; 32],
            ed25519: vec![41; 32],
        };
        let count = store
            .replace_identity(&alice, &new_identity, &[key(5)], Some(&key(6)), 10, [0; 32])
            .expect("replaces");
        assert_eq!(count, 1);
        let account = store.account(&alice).expect("reads").expect("exists");
        assert_eq!(account.identity, new_identity);
        let first = store.claim_key(&alice).expect("claims").expect("some");
        assert_eq!((first.key, first.fallback), (key(5), false));
        let next = store.claim_key(&alice).expect("claims").expect("some");
        assert_eq!((next.key, next.fallback), (key(6), true));
        assert!(matches!(
            store.replace_identity(&user("nobody"), &new_identity, &[], None, 10, [0; 32]),
            Err(StoreError::UnknownUser { .. })
        ));
    }

    #[test]
    fn replacing_the_identity_revokes_every_other_session_of_the_user() {
        let (_dir, store) = store_with(&["alice", "alicea", "bob"]);
        let (alice, alicea, bob) = (user("alice"), user("alicea"), user("bob"));
        for hash in [[1; 32], [2; 32], [3; 32]] {
            store.add_session(&alice, hash, 1).expect("adds");
        }
        // Neighbours in key order must survive: "alicea" sorts right after "alice".
        store.add_session(&alicea, [1; 32], 1).expect("adds");
        store.add_session(&bob, [1; 32], 1).expect("adds");
        let new_identity = IdentityKeys {
            curve25519: vec![40; 32],
            ed25519: vec![41; 32],
        };
        store
            .replace_identity(&alice, &new_identity, &[], None, 10, [2; 32])
            .expect("replaces");
        assert!(store.has_session(&alice, [2; 32]).expect("reads"), "kept");
        assert!(!store.has_session(&alice, [1; 32]).expect("reads"));
        assert!(!store.has_session(&alice, [3; 32]).expect("reads"));
        assert!(store.has_session(&alicea, [1; 32]).expect("reads"));
        assert!(store.has_session(&bob, [1; 32]).expect("reads"));
    }

    #[test]
    fn registering_stores_the_account_and_its_keys_in_one_step() {
        let (_dir, store) = store_with(&[]);
        let alice = user("alice");
        let count = store
            .register_account(&account("alice"), &[key(1), key(2)], Some(&key(3)), 10)
            .expect("registers");
        assert_eq!(count, 2);
        assert_eq!(
            store.account(&alice).expect("reads"),
            Some(account("alice"))
        );
        assert_eq!(store.one_time_key_count(&alice).expect("counts"), 2);
        store.claim_key(&alice).expect("claims");
        store.claim_key(&alice).expect("claims");
        let fallback = store.claim_key(&alice).expect("claims").expect("some");
        assert_eq!((fallback.key, fallback.fallback), (key(3), true));

        // A second registration of the name changes nothing, keys included.
        let mut twin = account("alice");
        twin.identity.curve25519 = vec![9; 32];
        let err = store
            .register_account(&twin, &[key(7)], Some(&key(8)), 10)
            .expect_err("taken");
        assert!(matches!(err, StoreError::UsernameTaken { .. }), "{err:?}");
        assert_eq!(
            store.account(&alice).expect("reads"),
            Some(account("alice"))
        );
        assert_eq!(store.one_time_key_count(&alice).expect("counts"), 0);
        let fallback = store.claim_key(&alice).expect("claims").expect("some");
        assert_eq!(fallback.key, key(3));
    }

    #[test]
    fn a_username_can_be_registered_once() {
        let (_dir, store) = store_with(&["alice"]);
        let err = store.create_account(&account("alice")).expect_err("taken");
        assert!(
            matches!(err, StoreError::UsernameTaken { ref username } if username.as_str() == "alice")
        );
        assert_eq!(err.to_string(), "username 'alice' is taken");
        assert_eq!(
            store.account(&user("alice")).expect("reads"),
            Some(account("alice"))
        );
        assert_eq!(store.account(&user("bob")).expect("reads"), None);
    }

    #[test]
    fn each_one_time_key_is_claimed_once_then_the_fallback_is_reused() {
        let (_dir, store) = store_with(&["alice"]);
        let alice = user("alice");
        let added = store
            .add_one_time_keys(&alice, &[key(1), key(2), key(2)], 10)
            .expect("adds");
        assert_eq!(added, 2, "the duplicate is ignored");
        assert_eq!(
            store
                .add_one_time_keys(&alice, &[key(1)], 10)
                .expect("adds"),
            2,
            "a re-upload is ignored"
        );
        assert_eq!(
            store.claim_key(&alice).expect("claims"),
            Some(ClaimedKey {
                key: key(1),
                fallback: false
            })
        );
        store.set_fallback_key(&alice, &key(9)).expect("sets");
        let second = store.claim_key(&alice).expect("claims").expect("a key");
        assert_eq!((second.key, second.fallback), (key(2), false));
        assert_eq!(store.one_time_key_count(&alice).expect("counts"), 0);
        for _ in 0..2 {
            let fallback = store.claim_key(&alice).expect("claims").expect("fallback");
            assert_eq!((fallback.key, fallback.fallback), (key(9), true));
        }
        assert_eq!(store.claim_key(&user("bob")).expect("claims"), None);
    }

    #[test]
    fn one_time_keys_beyond_the_stock_limit_are_ignored() {
        let (_dir, store) = store_with(&["alice"]);
        let alice = user("alice");
        let keys: Vec<_> = (1..=5).map(key).collect();
        assert_eq!(store.add_one_time_keys(&alice, &keys, 3).expect("adds"), 3);
        assert_eq!(store.add_one_time_keys(&alice, &keys, 3).expect("adds"), 3);
        assert_eq!(store.one_time_key_count(&alice).expect("counts"), 3);
        let first = store.claim_key(&alice).expect("claims").expect("a key");
        assert_eq!(first.key, key(1), "the oldest key goes first");
    }

    #[test]
    fn writes_for_unknown_users_are_refused() {
        let (_dir, store) = store_with(&[]);
        let ghost = user("ghost");
        let unknown = |r: Result<_, StoreError>| matches!(r, Err(StoreError::UnknownUser { .. }));
        assert!(unknown(
            store.add_one_time_keys(&ghost, &[key(1)], 10).map(|_| ())
        ));
        assert!(unknown(store.set_fallback_key(&ghost, &key(1))));
        assert!(unknown(store.add_session(&ghost, [1; 32], 1)));
        assert!(unknown(
            store
                .enqueue(&ghost, &message(1), None, 1, limit(10))
                .map(|_| ())
        ));
        assert!(unknown(store.set_last_seen(&ghost, 1)));
    }

    #[test]
    fn seqs_grow_strictly_across_acks_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.redb");
        let bob = user("bob");
        {
            let store = RelayStore::open(&path).expect("opens");
            store.create_account(&account("bob")).expect("creates");
            assert_eq!(store.queue_head(&bob).expect("head"), Seq(0));
            for i in 1..=3 {
                let e = store
                    .enqueue(&bob, &message(i), None, 100, limit(10))
                    .expect("enqueues");
                assert_eq!(e.seq, Seq(u64::from(i)));
            }
            // Acknowledging everything must not let seqs restart.
            assert_eq!(store.ack_through(&bob, Seq(3)).expect("acks"), 3);
            assert_eq!(store.queue_len(&bob).expect("len"), 0);
        }
        let store = RelayStore::open(&path).expect("reopens");
        assert_eq!(store.queue_head(&bob).expect("head"), Seq(3));
        let e = store
            .enqueue(&bob, &message(4), None, 100, limit(10))
            .expect("enqueues");
        assert_eq!(e.seq, Seq(4));
    }

    #[test]
    fn ack_through_deletes_only_up_to_its_seq_and_pending_starts_after_the_cursor() {
        let (_dir, store) = store_with(&["bob", "carol"]);
        let (bob, carol) = (user("bob"), user("carol"));
        for i in 1..=5 {
            store
                .enqueue(&bob, &message(i), None, u64::from(i), limit(10))
                .expect("enqueues");
        }
        store
            .enqueue(&carol, &message(9), None, 9, limit(10))
            .expect("enqueues");
        assert_eq!(store.ack_through(&bob, Seq(2)).expect("acks"), 2);
        assert_eq!(store.ack_through(&bob, Seq(2)).expect("acks"), 0);
        assert_eq!(store.queue_len(&bob).expect("len"), 3);
        assert_eq!(
            store.queue_len(&carol).expect("len"),
            1,
            "other queues untouched"
        );

        let seqs = |after, limit| -> Vec<u64> {
            store
                .pending(&bob, Seq(after), limit)
                .expect("reads")
                .iter()
                .map(|e| e.seq.0)
                .collect()
        };
        assert_eq!(seqs(0, 10), [3, 4, 5]);
        assert_eq!(seqs(3, 10), [4, 5]);
        assert_eq!(seqs(0, 2), [3, 4]);
        assert_eq!(seqs(5, 10), Vec::<u64>::new());
        assert_eq!(seqs(u64::MAX, 10), Vec::<u64>::new());

        let first = &store.pending(&bob, Seq(3), 1).expect("reads")[0];
        assert_eq!((first.relay_ts_ms, &first.event), (4, &message(4)));

        assert_eq!(store.ack_through(&bob, Seq(100)).expect("acks"), 3);
        assert_eq!(store.queue_len(&bob).expect("len"), 0);
        assert_eq!(store.queue_head(&bob).expect("head"), Seq(5));
    }

    #[test]
    fn a_resent_message_is_queued_once() {
        let (_dir, store) = store_with(&["alice", "bob", "carol"]);
        let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
        let id = MessageId([1; 16]);
        let first = store
            .enqueue(&bob, &message(1), Some((&alice, id)), 100, limit(10))
            .expect("enqueues");
        let again = store
            .enqueue(&bob, &message(1), Some((&alice, id)), 200, limit(10))
            .expect("enqueues");
        assert!(!first.duplicate && again.duplicate);
        assert_eq!((again.seq, again.relay_ts_ms), (first.seq, 100));
        assert_eq!(store.pending(&bob, Seq(0), 10).expect("reads").len(), 1);

        // Still a duplicate after delivery and acknowledgement.
        store.ack_through(&bob, first.seq).expect("acks");
        let late = store
            .enqueue(&bob, &message(1), Some((&alice, id)), 300, limit(10))
            .expect("enqueues");
        assert!(late.duplicate);
        assert_eq!(store.queue_len(&bob).expect("len"), 0);

        // The same id to another recipient is another message.
        let other = store
            .enqueue(&carol, &message(1), Some((&alice, id)), 100, limit(10))
            .expect("enqueues");
        assert!(!other.duplicate);
    }

    #[test]
    fn pruned_dedup_entries_are_forgotten() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        let (old, new) = (MessageId([1; 16]), MessageId([2; 16]));
        store
            .enqueue(&bob, &message(1), Some((&alice, old)), 100, limit(10))
            .expect("enqueues");
        store
            .enqueue(&bob, &message(2), Some((&alice, new)), 200, limit(10))
            .expect("enqueues");
        assert_eq!(store.prune_dedup_before(150).expect("prunes"), 1);
        assert_eq!(store.prune_dedup_before(150).expect("prunes"), 0);
        let resent_old = store
            .enqueue(&bob, &message(1), Some((&alice, old)), 300, limit(10))
            .expect("enqueues");
        let resent_new = store
            .enqueue(&bob, &message(2), Some((&alice, new)), 300, limit(10))
            .expect("enqueues");
        assert!(!resent_old.duplicate && resent_new.duplicate);
    }

    #[test]
    fn a_full_queue_refuses_until_acknowledged() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let (alice, bob) = (user("alice"), user("bob"));
        store
            .enqueue(&bob, &message(1), None, 100, limit(2))
            .expect("enqueues");
        store
            .enqueue(&bob, &message(2), None, 100, limit(2))
            .expect("enqueues");
        let err = store
            .enqueue(
                &bob,
                &message(3),
                Some((&alice, MessageId([3; 16]))),
                100,
                limit(2),
            )
            .expect_err("full");
        assert!(
            matches!(err, StoreError::QueueFull { len: 2, .. }),
            "{err:?}"
        );
        // A refused message leaves no dedup entry, so the sender's retry can succeed later.
        store.ack_through(&bob, Seq(1)).expect("acks");
        let retry = store
            .enqueue(
                &bob,
                &message(3),
                Some((&alice, MessageId([3; 16]))),
                100,
                limit(2),
            )
            .expect("enqueues");
        assert_eq!((retry.seq, retry.duplicate), (Seq(3), false));
    }

    #[test]
    fn sessions_can_be_added_checked_and_revoked() {
        let (_dir, store) = store_with(&["alice"]);
        let alice = user("alice");
        store.add_session(&alice, [1; 32], 5).expect("adds");
        assert!(store.has_session(&alice, [1; 32]).expect("reads"));
        assert!(!store.has_session(&alice, [2; 32]).expect("reads"));
        assert!(!store.has_session(&user("bob"), [1; 32]).expect("reads"));
        store.remove_session(&alice, [1; 32]).expect("removes");
        store
            .remove_session(&alice, [1; 32])
            .expect("removing twice is fine");
        assert!(!store.has_session(&alice, [1; 32]).expect("reads"));
    }

    #[test]
    fn last_seen_is_recorded() {
        let (_dir, store) = store_with(&["alice"]);
        let alice = user("alice");
        assert_eq!(store.last_seen(&alice).expect("reads"), None);
        store.set_last_seen(&alice, 77).expect("sets");
        assert_eq!(store.last_seen(&alice).expect("reads"), Some(77));
    }

    #[test]
    fn a_batch_of_large_events_stops_at_its_byte_budget() {
        let (_dir, store) = store_with(&["alice", "bob"]);
        let bob = user("bob");
        let big = |i: u8| PushEvent::Message {
            from: user("alice"),
            id: MessageId([i; 16]),
            ciphertext: vec![i; 100_000],
        };
        for i in 1..=10 {
            store
                .enqueue(&bob, &big(i), None, 1, limit(100))
                .expect("queues");
        }
        let batch = store
            .pending_batch(&bob, Seq(0), 256, 250_000)
            .expect("reads");
        assert_eq!(batch.len(), 3, "stops once 250 kB are taken");
        let one = store.pending_batch(&bob, Seq(0), 256, 1).expect("reads");
        assert_eq!(one.len(), 1, "the first event always comes");
        let rest = store
            .pending_batch(&bob, Seq(3), 256, u64::MAX)
            .expect("reads");
        assert_eq!(rest.first().map(|e| e.seq), Some(Seq(4)));
        assert_eq!(rest.len(), 7);
    }

    #[test]
    fn queue_usage_is_rebuilt_for_a_store_written_before_it_was_kept() {
        let (dir, store) = store_with(&["alice", "bob"]);
        let bob = user("bob");
        for i in 1..=5 {
            store
                .enqueue(&bob, &message(i), None, 1, limit(100))
                .expect("queues");
        }
        store.ack_through(&bob, Seq(2)).expect("acks");
        let kept = store.queue_usage(&bob).expect("usage");
        assert_eq!(kept.0, 3);
        // What an older relay left: rows, but no usage and no mark that it was built.
        write(&store.db, |tx| {
            tx.open_table(QUEUE_STATS)?.remove(bob.as_str())?;
            tx.open_table(COUNTERS)?.remove(QUEUE_STATS_BUILT)?;
            Ok(())
        })
        .expect("forgets");
        drop(store);
        let store = RelayStore::open(&dir.path().join("relay.redb")).expect("reopens");
        assert_eq!(store.queue_usage(&bob).expect("usage"), kept);
        store.ack_through(&bob, Seq(5)).expect("acks");
        assert_eq!(store.queue_usage(&bob).expect("usage"), (0, 0));
    }

    #[test]
    fn opening_a_held_relay_file_reports_in_use() {
        let (dir, _store) = store_with(&[]);
        let err = RelayStore::open(&dir.path().join("relay.redb")).expect_err("held");
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
    }
}
