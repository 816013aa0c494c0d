//! [`PeerStore`]: a peer's local data in its own redb file: the profile (session token and
//! sealed account), pinned contact identities, sealed Olm sessions, history, outbox, the
//! event cursor and the contacts cache (each contact's last seen profile and avatar).
//!
//! Private keys arrive here already sealed by the caller, as opaque strings; this module
//! does no cryptography. One process uses a profile at a time: a second gets
//! [`StoreError::InUse`]. Each method is one redb transaction, committed durably before it
//! returns; what one message changes is committed at once by [`PeerStore::commit_inbound`]
//! or [`PeerStore::commit_outbound`], so a crash never leaves a ratchet advanced without
//! its message stored, or the other way round.

use std::fmt;
use std::path::{Path, PathBuf};

use redb::ReadableTable;
use uchat_wire::{MessageId, Seq, UserName};

use crate::store::error::StoreError;
use crate::store::records::{
    ContactRecord, ConversationId, EntryStatus, HistoryEntry, InboundGroupRecord, LocalGroup,
    OutboxEntry, PinnedIdentity, ProfileRecord, SessionRecord,
};
use crate::store::tables::{
    CALL_OFFERS, CONTACTS, COUNTERS, FILE_MESSAGES, HISTORY, INBOUND_GROUP_SESSIONS, MESSAGES,
    MOMENT_IMAGES, MOMENT_KEYS, OLM_SESSIONS, OUTBOUND_GROUP_SESSIONS, OUTBOX, OUTBOX_IDS,
    PEER_GROUPS, PENDING_DOWNLOADS, PENDING_UPLOADS, PINS, PROFILE, PROFILE_KEY, SETTINGS, decode,
    decode_entry, encode, entry_at, entry_location, next_counter, open_database, read, write,
};

/// [`COUNTERS`] key of the event cursor.
const CURSOR_KEY: &str = "last_acked_seq";

/// Pages of a profile's file kept in memory: a person's history and sessions are small,
/// and redb's default (1 GiB) is meant for servers, not one app among many on a laptop.
const PEER_CACHE_BYTES: usize = 32 << 20;
/// [`COUNTERS`] key of the history order (one counter for all conversations).
const HISTORY_COUNTER: &str = "history";
/// [`COUNTERS`] key of the outbox order.
const OUTBOX_COUNTER: &str = "outbox";

/// Everything one received message changes, for [`PeerStore::commit_inbound`].
#[derive(Clone, Debug)]
pub struct InboundCommit {
    /// The full new set of Olm sessions with the sender (`from`); empty leaves them as
    /// they are.
    pub sessions: Vec<SessionRecord>,
    /// The sender's identity to pin, on first contact.
    pub pin: Option<PinnedIdentity>,
    /// The history entry to append, if any.
    pub entry: Option<HistoryEntry>,
    /// The sender as the relay named them: whose `sessions` and `pin` these are; with `id`,
    /// the pair that marks the message as taken in.
    pub from: UserName,
    /// The sender's message id.
    pub id: MessageId,
    /// The event's position in this user's relay queue (`Seq(0)` if it had none).
    pub seq: Seq,
    /// A group session to save (a new one shared by `from`, or one that opened a message).
    pub group_session: Option<InboundGroupRecord>,
    /// A group's new state, after a membership event.
    pub group: Option<LocalGroup>,
}

/// What became of an outbox entry the relay answered, for [`PeerStore::settle_all`].
#[derive(Clone, Debug)]
pub enum Settled {
    /// The relay durably queued it at `relay_ts_ms`.
    Sent {
        /// The relay's clock when it took the message.
        relay_ts_ms: u64,
    },
    /// The relay refused it for good, saying `reason`.
    Failed {
        /// The relay's words, kept as the history entry's note.
        reason: String,
    },
}

/// What a receipt taken in with [`PeerStore::commit_inbound_all`] says.
#[derive(Clone, Debug)]
pub struct InboundReceipt {
    /// The status it raises messages to: delivered or read.
    pub status: EntryStatus,
    /// The messages it speaks for (only this user's own to its sender are moved).
    pub ids: Vec<MessageId>,
}

/// Everything one message about to be sent changes, for [`PeerStore::commit_outbound`].
#[derive(Clone, Debug)]
pub struct OutboundCommit {
    /// The full new set of Olm sessions with the recipient (`outbox.to`); empty leaves
    /// them as they are.
    pub sessions: Vec<SessionRecord>,
    /// The recipient's identity to pin, on first contact.
    pub pin: Option<PinnedIdentity>,
    /// This user, the sender.
    pub from: UserName,
    /// The history entry (normally [`EntryStatus::Pending`]); `None` for a message that
    /// is not shown, such as a receipt.
    pub entry: Option<HistoryEntry>,
    /// The encrypted message for the relay; same id as `entry`.
    pub outbox: OutboxEntry,
    /// The pending upload this message carries (its file is on the relay now), if any: it
    /// is marked sent as this message (and forgotten a while later, see
    /// [`PeerStore::forget_sent_uploads_before`]).
    pub done_upload: Option<String>,
}

/// [`PeerStore::commit_inbound`] inside a write transaction, for commits that save more
/// alongside.
pub(crate) fn commit_inbound_in(
    tx: &redb::WriteTransaction,
    c: &InboundCommit,
) -> Result<(), StoreError> {
    put_sessions(tx, &c.from, &c.sessions)?;
    put_pin(tx, &c.from, c.pin.as_ref())?;
    if let Some(entry) = &c.entry {
        append_history(tx, entry)?;
    }
    if let Some(session) = &c.group_session {
        crate::store::group::put_inbound_group_session_in(tx, session)?;
    }
    if let Some(group) = &c.group {
        crate::store::group::put_group_in(tx, group)?;
    }
    mark_seen(tx, &c.from, c.id)?;
    raise_cursor(tx, c.seq)
}

/// A peer's local store, in one redb file. `Send + Sync`: share it with an `Arc`.
pub struct PeerStore {
    db: redb::Database,
    path: PathBuf,
}

impl fmt::Debug for PeerStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Replaces `contact`'s sessions, unless `sessions` is empty.
pub(crate) fn put_sessions(
    tx: &redb::WriteTransaction,
    contact: &UserName,
    sessions: &[SessionRecord],
) -> Result<(), StoreError> {
    if !sessions.is_empty() {
        tx.open_table(OLM_SESSIONS)?.insert(
            contact.as_str(),
            encode(&sessions, "olm sessions")?.as_slice(),
        )?;
    }
    Ok(())
}

/// Pins `contact`'s identity, if given.
pub(crate) fn put_pin(
    tx: &redb::WriteTransaction,
    contact: &UserName,
    pin: Option<&PinnedIdentity>,
) -> Result<(), StoreError> {
    if let Some(pin) = pin {
        tx.open_table(PINS)?
            .insert(contact.as_str(), encode(pin, "pinned identity")?.as_slice())?;
    }
    Ok(())
}

/// Appends `entry` to its conversation, unless an entry with the same (from, id) exists.
pub(crate) fn append_history(
    tx: &redb::WriteTransaction,
    entry: &HistoryEntry,
) -> Result<(), StoreError> {
    let mut messages = tx.open_table(MESSAGES)?;
    let key = (entry.from.as_str(), entry.id.0.as_slice());
    let stored = messages.get(key)?.is_some_and(|v| v.value().is_some());
    if stored {
        return Ok(());
    }
    let index = next_counter(&mut tx.open_table(COUNTERS)?, HISTORY_COUNTER)?;
    let conversation = entry.conversation.as_str();
    tx.open_table(HISTORY)?.insert(
        (conversation, index),
        encode(entry, "history entry")?.as_slice(),
    )?;
    messages.insert(key, Some((conversation, index)))?;
    // The first message naming a file keeps it: a later one (someone who learned the id)
    // cannot take its place.
    if let Some(file) = &entry.file {
        let mut files = tx.open_table(FILE_MESSAGES)?;
        if files.get(file.file.0.as_slice())?.is_none() {
            files.insert(
                file.file.0.as_slice(),
                (entry.from.as_str(), entry.id.0.as_slice()),
            )?;
        }
    }
    Ok(())
}

/// Puts `outbox` in the outbox, replacing an entry with the same id in its place; `from`
/// is the sender of its history entry.
pub(crate) fn put_outbox_in(
    tx: &redb::WriteTransaction,
    outbox: &OutboxEntry,
    from: &UserName,
) -> Result<(), StoreError> {
    let mut ids = tx.open_table(OUTBOX_IDS)?;
    let id = outbox.id.0.as_slice();
    let existing = ids.get(id)?.map(|v| v.value().0);
    let slot = match existing {
        Some(slot) => slot,
        None => next_counter(&mut tx.open_table(COUNTERS)?, OUTBOX_COUNTER)?,
    };
    tx.open_table(OUTBOX)?
        .insert(slot, encode(outbox, "outbox entry")?.as_slice())?;
    ids.insert(id, (slot, from.as_str()))?;
    Ok(())
}

/// Moves an outgoing entry's status forward to `status`; never back. Returns whether it
/// moved.
fn raise_status(entry: &mut HistoryEntry, status: EntryStatus) -> bool {
    match (entry.status.progress(), status.progress()) {
        (Some(now), Some(next)) if next > now => {
            entry.status = status;
            true
        }
        _ => false,
    }
}

/// An incoming message not yet seen, as [`PeerStore::unread`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadMessage {
    /// Its place in the conversation's history.
    pub index: u64,
    /// Its sender.
    pub from: UserName,
    /// Its id.
    pub id: MessageId,
}

/// Remembers that (from, id) was taken in, even without a history entry.
fn mark_seen(
    tx: &redb::WriteTransaction,
    from: &UserName,
    id: MessageId,
) -> Result<(), StoreError> {
    let mut messages = tx.open_table(MESSAGES)?;
    let key = (from.as_str(), id.0.as_slice());
    if messages.get(key)?.is_none() {
        messages.insert(key, None)?;
    }
    Ok(())
}

/// Raises the event cursor to `seq`; never lowers it.
fn raise_cursor(tx: &redb::WriteTransaction, seq: Seq) -> Result<(), StoreError> {
    let mut counters = tx.open_table(COUNTERS)?;
    let current = counters.get(CURSOR_KEY)?.map(|v| v.value()).unwrap_or(0);
    if seq.0 > current {
        counters.insert(CURSOR_KEY, seq.0)?;
    }
    Ok(())
}

impl PeerStore {
    /// The database, for the second `impl` block in `peer_group.rs`.
    pub(crate) fn db(&self) -> &redb::Database {
        &self.db
    }

    /// Opens the store at `path`, creating the file if needed.
    ///
    /// [`StoreError::InUse`] if another process (or another handle) has it open.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = open_database(path, PEER_CACHE_BYTES, |tx| {
            tx.open_table(PROFILE)?;
            tx.open_table(PINS)?;
            tx.open_table(OLM_SESSIONS)?;
            tx.open_table(HISTORY)?;
            tx.open_table(MESSAGES)?;
            tx.open_table(OUTBOX)?;
            tx.open_table(OUTBOX_IDS)?;
            tx.open_table(CONTACTS)?;
            tx.open_table(PEER_GROUPS)?;
            tx.open_table(OUTBOUND_GROUP_SESSIONS)?;
            tx.open_table(INBOUND_GROUP_SESSIONS)?;
            tx.open_table(FILE_MESSAGES)?;
            tx.open_table(PENDING_UPLOADS)?;
            tx.open_table(PENDING_DOWNLOADS)?;
            tx.open_table(CALL_OFFERS)?;
            tx.open_table(MOMENT_KEYS)?;
            tx.open_table(MOMENT_IMAGES)?;
            tx.open_table(COUNTERS)?;
            tx.open_table(SETTINGS)?;
            Ok(())
        })?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
    }

    /// Saves (or replaces) the profile.
    pub fn put_profile(&self, profile: &ProfileRecord) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            tx.open_table(PROFILE)?
                .insert(PROFILE_KEY, encode(profile, "profile")?.as_slice())?;
            Ok(())
        })
    }

    /// The profile, if an account was registered or logged in here.
    pub fn profile(&self) -> Result<Option<ProfileRecord>, StoreError> {
        read(&self.db, |tx| {
            tx.open_table(PROFILE)?
                .get(PROFILE_KEY)?
                .map(|v| decode(v.value(), "profile"))
                .transpose()
        })
    }

    /// Logs out: forgets the session token and keeps everything else (the sealed keys
    /// above all). Without a profile, does nothing.
    pub fn clear_token(&self) -> Result<(), StoreError> {
        self.update_profile(|profile| profile.token.clear())
            .or_else(|e| match e {
                StoreError::NoProfile => Ok(()),
                other => Err(other),
            })
    }

    /// Forgets the profile (account, keys and token), for undoing a registration or a
    /// new-device login that the relay did not complete. History and contacts stay.
    pub fn delete_profile(&self) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            tx.open_table(PROFILE)?.remove(PROFILE_KEY)?;
            Ok(())
        })
    }

    /// Replaces the sealed Olm account in the profile; [`StoreError::NoProfile`] without one.
    pub fn put_account_pickle(&self, pickle: &str) -> Result<(), StoreError> {
        self.update_profile(|profile| profile.account_pickle = pickle.to_string())
    }

    /// Reads, changes and writes the profile in one transaction, so that concurrent
    /// updates of different fields never undo each other.
    fn update_profile(&self, change: impl FnOnce(&mut ProfileRecord)) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            let mut table = tx.open_table(PROFILE)?;
            let mut profile: ProfileRecord = match table.get(PROFILE_KEY)? {
                Some(v) => decode(v.value(), "profile")?,
                None => return Err(StoreError::NoProfile),
            };
            change(&mut profile);
            table.insert(PROFILE_KEY, encode(&profile, "profile")?.as_slice())?;
            Ok(())
        })
    }

    /// `contact`'s pinned identity, if any.
    pub fn pinned_identity(
        &self,
        contact: &UserName,
    ) -> Result<Option<PinnedIdentity>, StoreError> {
        read(&self.db, |tx| {
            tx.open_table(PINS)?
                .get(contact.as_str())?
                .map(|v| decode(v.value(), "pinned identity"))
                .transpose()
        })
    }

    /// Pins (or re-pins) `contact`'s identity.
    pub fn pin_identity(
        &self,
        contact: &UserName,
        pinned: &PinnedIdentity,
    ) -> Result<(), StoreError> {
        write(&self.db, |tx| put_pin(tx, contact, Some(pinned)))
    }

    /// The sealed Olm sessions with `contact` (empty if none).
    pub fn olm_sessions(&self, contact: &UserName) -> Result<Vec<SessionRecord>, StoreError> {
        read(&self.db, |tx| {
            Ok(tx
                .open_table(OLM_SESSIONS)?
                .get(contact.as_str())?
                .map(|v| decode(v.value(), "olm sessions"))
                .transpose()?
                .unwrap_or_default())
        })
    }

    /// The last `limit` entries of `conversation`, oldest first, in the order they were
    /// stored.
    pub fn history(
        &self,
        conversation: &ConversationId,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        read(&self.db, |tx| {
            let table = tx.open_table(HISTORY)?;
            let name = conversation.as_str();
            let mut out = Vec::new();
            for item in table.range((name, 0)..=(name, u64::MAX))?.rev().take(limit) {
                let (key, value) = item?;
                out.push(decode_entry(key.value().1, value.value())?);
            }
            out.reverse();
            Ok(out)
        })
    }

    /// The history entry of message (from, id), if it has one.
    pub fn history_entry(
        &self,
        from: &UserName,
        id: MessageId,
    ) -> Result<Option<HistoryEntry>, StoreError> {
        read(&self.db, |tx| {
            let location = entry_location(&tx.open_table(MESSAGES)?, from.as_str(), &id.0)?;
            let Some((conversation, index)) = location else {
                return Ok(None);
            };
            entry_at(&tx.open_table(HISTORY)?, (conversation.as_str(), index))
        })
    }

    /// Whether the message (from, id) was already taken in (stored in history, or marked
    /// seen by [`PeerStore::commit_inbound`]).
    pub fn has_message(&self, from: &UserName, id: MessageId) -> Result<bool, StoreError> {
        read(&self.db, |tx| {
            Ok(tx
                .open_table(MESSAGES)?
                .get((from.as_str(), id.0.as_slice()))?
                .is_some())
        })
    }

    /// The messages waiting for the relay, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        read(&self.db, |tx| {
            let table = tx.open_table(OUTBOX)?;
            let mut out = Vec::new();
            for item in table.range(0..)? {
                out.push(decode(item?.1.value(), "outbox entry")?);
            }
            Ok(out)
        })
    }

    /// The on/off setting `name`, or `default` if it was never set.
    pub fn setting(&self, name: &str, default: bool) -> Result<bool, StoreError> {
        read(&self.db, |tx| {
            Ok(tx
                .open_table(SETTINGS)?
                .get(name)?
                .map_or(default, |v| v.value() != 0))
        })
    }

    /// Sets the on/off setting `name`.
    pub fn set_setting(&self, name: &str, on: bool) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            tx.open_table(SETTINGS)?.insert(name, u64::from(on))?;
            Ok(())
        })
    }

    /// Whether message `id` still waits in the outbox.
    pub fn in_outbox(&self, id: MessageId) -> Result<bool, StoreError> {
        read(&self.db, |tx| {
            Ok(tx.open_table(OUTBOX_IDS)?.get(id.0.as_slice())?.is_some())
        })
    }

    /// The highest relay queue seq whose event is stored (`Seq(0)` if none).
    pub fn last_acked_seq(&self) -> Result<Seq, StoreError> {
        read(&self.db, |tx| {
            let counters = tx.open_table(COUNTERS)?;
            Ok(Seq(counters
                .get(CURSOR_KEY)?
                .map(|v| v.value())
                .unwrap_or(0)))
        })
    }

    /// Raises the event cursor to `seq`. It never goes down, so a late or repeated call
    /// cannot make events count as unprocessed again.
    pub fn set_last_acked_seq(&self, seq: Seq) -> Result<(), StoreError> {
        write(&self.db, |tx| raise_cursor(tx, seq))
    }

    /// Atomic commit of everything one received message changes. In one transaction:
    /// replaces the sender's sessions (if `sessions` is non-empty), pins the sender (if
    /// `pin`), appends `entry` (unless an entry with the same (from, id) exists), marks
    /// (from, id) as seen, saves the group session and group state (if given), and raises
    /// the event cursor to `seq`. Committing the same message twice stores it once.
    pub fn commit_inbound(&self, c: &InboundCommit) -> Result<(), StoreError> {
        write(&self.db, |tx| commit_inbound_in(tx, c))
    }

    /// Atomic commit of a message about to be sent: in one transaction, replaces the
    /// recipient's sessions (if `sessions` is non-empty), pins the recipient (if `pin`),
    /// appends the history entry if any (unless its (from, id) exists) and puts the message in the
    /// outbox (replacing an outbox entry with the same id, which keeps its place).
    pub fn commit_outbound(&self, c: &OutboundCommit) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            put_sessions(tx, &c.outbox.to, &c.sessions)?;
            put_pin(tx, &c.outbox.to, c.pin.as_ref())?;
            if let Some(entry) = &c.entry {
                append_history(tx, entry)?;
            }
            if let Some(upload) = &c.done_upload {
                crate::store::file::upload_sent_as_in(tx, upload, c.outbox.id)?;
            }
            put_outbox_in(tx, &c.outbox, &c.from)
        })
    }

    /// Takes in a run of pushed 1:1 events in one transaction, in order: each as
    /// [`PeerStore::commit_inbound`] would, and a receipt (whose commit's `from` is its
    /// reader) also raises to its status each of its ids that is this user's (`me`) own
    /// 1:1 message to the reader; ids of anything else (someone else's message, a group
    /// message, an unknown id) are ignored, so a receipt can only speak for messages sent
    /// to its sender, and a status never goes back. Returns, per event, the ids whose
    /// status its receipt changed (none for a message).
    pub fn commit_inbound_all(
        &self,
        events: &[(InboundCommit, Option<InboundReceipt>)],
        me: &UserName,
    ) -> Result<Vec<Vec<MessageId>>, StoreError> {
        write(&self.db, |tx| {
            let mut changed = Vec::with_capacity(events.len());
            for (commit, receipt) in events {
                commit_inbound_in(tx, commit)?;
                changed.push(match receipt {
                    Some(r) => raise_statuses_in(tx, &commit.from, me, r.status, &r.ids)?,
                    None => Vec::new(),
                });
            }
            Ok(changed)
        })
    }

    /// The incoming messages of `conversation` this user (`me`) has not seen yet, oldest
    /// first: those after the last one seen (received and decrypted ones only).
    pub fn unread(
        &self,
        conversation: &ConversationId,
        me: &UserName,
    ) -> Result<Vec<UnreadMessage>, StoreError> {
        read(&self.db, |tx| {
            let table = tx.open_table(HISTORY)?;
            let name = conversation.as_str();
            let mut out = Vec::new();
            for item in table.range((name, 0)..=(name, u64::MAX))?.rev() {
                let (key, value) = item?;
                let entry: HistoryEntry = decode(value.value(), "history entry")?;
                if &entry.from == me {
                    continue;
                }
                if entry.flags.read {
                    break;
                }
                if entry.status == EntryStatus::Received {
                    out.push(UnreadMessage {
                        index: key.value().1,
                        from: entry.from,
                        id: entry.id,
                    });
                }
            }
            out.reverse();
            Ok(out)
        })
    }

    /// Marks `messages` of `conversation` (from [`PeerStore::unread`]) as seen.
    pub fn mark_read(
        &self,
        conversation: &ConversationId,
        messages: &[UnreadMessage],
    ) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            let mut history = tx.open_table(HISTORY)?;
            for message in messages {
                let key = (conversation.as_str(), message.index);
                let Some(mut entry) = entry_at(&history, key)? else {
                    continue;
                };
                if entry.id == message.id && !entry.flags.read {
                    entry.flags.read = true;
                    history.insert(key, encode(&entry, "history entry")?.as_slice())?;
                }
            }
            Ok(())
        })
    }

    /// Saves (or replaces) what this peer remembers about `contact.user`.
    pub fn put_contact(&self, contact: &ContactRecord) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            tx.open_table(CONTACTS)?.insert(
                contact.user.as_str(),
                encode(contact, "contact")?.as_slice(),
            )?;
            Ok(())
        })
    }

    /// What this peer remembers about `user`, if anything.
    pub fn contact(&self, user: &UserName) -> Result<Option<ContactRecord>, StoreError> {
        read(&self.db, |tx| {
            tx.open_table(CONTACTS)?
                .get(user.as_str())?
                .map(|v| decode(v.value(), "contact"))
                .transpose()
        })
    }

    /// Every remembered contact, in name order.
    pub fn contacts(&self) -> Result<Vec<ContactRecord>, StoreError> {
        read(&self.db, |tx| {
            let table = tx.open_table(CONTACTS)?;
            let mut out = Vec::new();
            for item in table.iter()? {
                out.push(decode(item?.1.value(), "contact")?);
            }
            Ok(out)
        })
    }

    /// Writes what one sync of the friend list changed, in one transaction (one commit
    /// however many friends there are): the identity pins of friends seen for the first
    /// time, the contact records that changed, and forgetting `ended`, the contacts whose
    /// friendship ended (their pins, sessions and history stay).
    pub fn sync_contacts(
        &self,
        pins: &[(UserName, PinnedIdentity)],
        contacts: &[ContactRecord],
        ended: &[UserName],
    ) -> Result<(), StoreError> {
        if pins.is_empty() && contacts.is_empty() && ended.is_empty() {
            return Ok(());
        }
        write(&self.db, |tx| {
            for (user, pin) in pins {
                put_pin(tx, user, Some(pin))?;
            }
            let mut table = tx.open_table(CONTACTS)?;
            for contact in contacts {
                table.insert(
                    contact.user.as_str(),
                    encode(contact, "contact")?.as_slice(),
                )?;
            }
            for user in ended {
                table.remove(user.as_str())?;
            }
            Ok(())
        })
    }

    /// Forgets what this peer remembers about `user` (pins, sessions and history stay);
    /// returns whether there was anything to forget.
    pub fn remove_contact(&self, user: &UserName) -> Result<bool, StoreError> {
        write(&self.db, |tx| {
            Ok(tx.open_table(CONTACTS)?.remove(user.as_str())?.is_some())
        })
    }

    /// Settles outbox entries the relay answered, in one transaction: each leaves the
    /// outbox, and its history entry becomes [`EntryStatus::Sent`] (unless a receipt
    /// already took it further) with the relay's time as its `received_ms`, or
    /// [`EntryStatus::Failed`] with the relay's reason as its note. An id not in the
    /// outbox (settled already) is passed over.
    pub fn settle_all(&self, settled: &[(MessageId, Settled)]) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            let mut ids = tx.open_table(OUTBOX_IDS)?;
            let mut outbox = tx.open_table(OUTBOX)?;
            let messages = tx.open_table(MESSAGES)?;
            let mut history = tx.open_table(HISTORY)?;
            for (id, how) in settled {
                let removed = ids.remove(id.0.as_slice())?.map(|v| {
                    let (slot, from) = v.value();
                    (slot, from.to_string())
                });
                let Some((slot, from)) = removed else {
                    continue;
                };
                outbox.remove(slot)?;
                let location = entry_location(&messages, from.as_str(), &id.0)?;
                let Some((conversation, index)) = location else {
                    continue;
                };
                let key = (conversation.as_str(), index);
                if let Some(mut entry) = entry_at(&history, key)? {
                    match how {
                        Settled::Sent { relay_ts_ms } => {
                            raise_status(&mut entry, EntryStatus::Sent);
                            entry.received_ms = *relay_ts_ms;
                        }
                        Settled::Failed { reason } => {
                            entry.status = EntryStatus::Failed;
                            entry.flags.note = Some(reason.clone());
                        }
                    }
                    history.insert(key, encode(&entry, "history entry")?.as_slice())?;
                }
            }
            Ok(())
        })
    }
}

/// Raises to `status` each of `ids` that is `me`'s own 1:1 message to `reader` (see
/// [`PeerStore::commit_inbound_all`]); returns the ids whose status changed.
fn raise_statuses_in(
    tx: &redb::WriteTransaction,
    reader: &UserName,
    me: &UserName,
    status: EntryStatus,
    ids: &[MessageId],
) -> Result<Vec<MessageId>, StoreError> {
    let conversation = ConversationId::direct(reader);
    let messages = tx.open_table(MESSAGES)?;
    let mut history = tx.open_table(HISTORY)?;
    let mut changed = Vec::new();
    for &id in ids {
        let location = entry_location(&messages, me.as_str(), &id.0)?;
        let Some((stored_in, index)) = location else {
            continue;
        };
        if stored_in != conversation.as_str() {
            continue;
        }
        let key = (stored_in.as_str(), index);
        let Some(mut entry) = entry_at(&history, key)? else {
            continue;
        };
        if &entry.from != me || &entry.to != reader || entry.group.is_some() {
            continue;
        }
        if raise_status(&mut entry, status) {
            history.insert(key, encode(&entry, "history entry")?.as_slice())?;
            changed.push(id);
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relay took message `id` at `relay_ts_ms`: settled on its own.
    fn sent(store: &PeerStore, id: MessageId, relay_ts_ms: u64) -> Result<(), StoreError> {
        store.settle_all(&[(id, Settled::Sent { relay_ts_ms })])
    }

    /// The relay refused message `id` for good, saying `reason`: settled on its own.
    fn failed(store: &PeerStore, id: MessageId, reason: &str) -> Result<(), StoreError> {
        let reason = reason.to_string();
        store.settle_all(&[(id, Settled::Failed { reason })])
    }
    use crate::store::records::{EntryFlags, IdentityFlag};
    use uchat_wire::IdentityKeys;

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("valid")
    }

    fn open(dir: &tempfile::TempDir) -> PeerStore {
        PeerStore::open(&dir.path().join("peer.redb")).expect("opens")
    }

    fn entry(from: &str, to: &str, id: u8, text: &str) -> HistoryEntry {
        HistoryEntry {
            id: MessageId([id; 16]),
            conversation: ConversationId::direct(&user(if from == "bob" { to } else { from })),
            from: user(from),
            to: user(to),
            sent_ms: u64::from(id),
            received_ms: u64::from(id),
            text: Some(text.into()),
            status: EntryStatus::Received,
            flags: EntryFlags {
                identity: IdentityFlag::Known,
                ..EntryFlags::default()
            },
            group: None,
            group_change: None,
            file: None,
            position: 0,
        }
    }

    fn inbound(e: HistoryEntry, seq: u64) -> InboundCommit {
        InboundCommit {
            sessions: vec![],
            pin: None,
            from: e.from.clone(),
            id: e.id,
            entry: Some(e),
            seq: Seq(seq),
            group_session: None,
            group: None,
        }
    }

    fn session(id: &str, last_used_ms: u64) -> SessionRecord {
        SessionRecord {
            session_id: id.into(),
            pickle: format!("sealed-{id}"),
            last_used_ms,
            peer_key: vec![1; 32],
        }
    }

    /// Bob's outgoing message `id` to alice.
    fn outbound(id: u8, text: &str) -> OutboundCommit {
        let mut e = entry("bob", "alice", id, text);
        e.status = EntryStatus::Pending;
        OutboundCommit {
            sessions: vec![session("s", u64::from(id))],
            pin: None,
            from: user("bob"),
            entry: Some(e),
            outbox: OutboxEntry {
                id: MessageId([id; 16]),
                to: user("alice"),
                ciphertext: vec![id; 8],
                created_ms: u64::from(id),
                group: None,
            },
            done_upload: None,
        }
    }

    fn profile() -> ProfileRecord {
        ProfileRecord {
            username: user("bob"),
            relay: "relay.example:4433".into(),
            token: vec![1; 32],
            account_pickle: "sealed-account".into(),
            kdf_salt: vec![0; 16],
        }
    }

    fn texts(entries: &[HistoryEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| e.text.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn stores_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<PeerStore>();
    }

    #[test]
    fn opening_a_profile_held_open_elsewhere_is_a_clear_in_use_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("peer.redb");
        let first = PeerStore::open(&path).expect("opens");
        let err = PeerStore::open(&path).expect_err("held");
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("profile in use by another uchat process: "),
            "{err}"
        );
        drop(first);
        PeerStore::open(&path).expect("free again once the first is closed");
    }

    #[test]
    fn commit_inbound_is_idempotent_for_the_same_message() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let alice = user("alice");
        store
            .commit_inbound(&inbound(entry("alice", "bob", 1, "hi"), 1))
            .expect("commits");
        // A redelivery (after a lost acknowledgement) with a later seq.
        store
            .commit_inbound(&inbound(entry("alice", "bob", 1, "hi again"), 2))
            .expect("commits");
        assert_eq!(
            texts(
                &store
                    .history(&ConversationId::direct(&alice), 10)
                    .expect("reads")
            ),
            ["hi"]
        );
        assert!(
            store
                .has_message(&alice, MessageId([1; 16]))
                .expect("reads")
        );
        assert!(
            !store
                .has_message(&user("carol"), MessageId([1; 16]))
                .expect("reads")
        );
        assert_eq!(store.last_acked_seq().expect("reads"), Seq(2));
    }

    #[test]
    fn a_message_without_an_entry_is_still_marked_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let alice = user("alice");
        let mut c = inbound(entry("alice", "bob", 7, "x"), 4);
        c.entry = None;
        store.commit_inbound(&c).expect("commits");
        assert!(
            store
                .has_message(&alice, MessageId([7; 16]))
                .expect("reads")
        );
        assert!(
            store
                .history(&ConversationId::direct(&alice), 10)
                .expect("reads")
                .is_empty()
        );
        assert_eq!(store.last_acked_seq().expect("reads"), Seq(4));
        // The entry can still be stored later (for example, once it decrypts).
        store
            .commit_inbound(&inbound(entry("alice", "bob", 7, "late"), 4))
            .expect("commits");
        assert_eq!(
            texts(
                &store
                    .history(&ConversationId::direct(&alice), 10)
                    .expect("reads")
            ),
            ["late"]
        );
    }

    #[test]
    fn history_returns_the_last_n_entries_oldest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        for i in 1..=5u8 {
            store
                .commit_inbound(&inbound(
                    entry("alice", "bob", i, &format!("a{i}")),
                    u64::from(i),
                ))
                .expect("commits");
            store
                .commit_inbound(&inbound(
                    entry("carol", "bob", i, &format!("c{i}")),
                    u64::from(i) + 5,
                ))
                .expect("commits");
        }
        store.commit_outbound(&outbound(6, "b6")).expect("commits");
        let alice = user("alice");
        assert_eq!(
            texts(
                &store
                    .history(&ConversationId::direct(&alice), 100)
                    .expect("reads")
            ),
            ["a1", "a2", "a3", "a4", "a5", "b6"]
        );
        assert_eq!(
            texts(
                &store
                    .history(&ConversationId::direct(&alice), 2)
                    .expect("reads")
            ),
            ["a5", "b6"]
        );
        assert!(
            store
                .history(&ConversationId::direct(&alice), 0)
                .expect("reads")
                .is_empty()
        );
        assert_eq!(
            store
                .history(&ConversationId::direct(&user("carol")), 100)
                .expect("reads")
                .len(),
            5
        );
        assert!(
            store
                .history(&ConversationId::direct(&user("dave")), 100)
                .expect("reads")
                .is_empty()
        );
        // Positions follow the order of storing, across conversations, and an entry read
        // alone has the same one.
        let all = store
            .history(&ConversationId::direct(&alice), 100)
            .expect("reads");
        let positions: Vec<u64> = all.iter().map(|e| e.position).collect();
        assert!(
            positions.windows(2).all(|w| w[0] + 2 <= w[1]),
            "{positions:?}"
        );
        let one = store
            .history_entry(&alice, all[2].id)
            .expect("reads")
            .expect("stored");
        assert_eq!(one.position, all[2].position);
    }

    #[test]
    fn the_event_cursor_never_goes_down() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        assert_eq!(store.last_acked_seq().expect("reads"), Seq(0));
        store.set_last_acked_seq(Seq(5)).expect("sets");
        store.set_last_acked_seq(Seq(2)).expect("sets");
        store
            .commit_inbound(&inbound(entry("alice", "bob", 1, "x"), 3))
            .expect("commits");
        assert_eq!(store.last_acked_seq().expect("reads"), Seq(5));
    }

    #[test]
    fn sessions_are_replaced_as_a_set_and_kept_when_none_are_given() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let alice = user("alice");
        let mut c = inbound(entry("alice", "bob", 1, "x"), 1);
        c.sessions = vec![session("a", 1), session("b", 2)];
        store.commit_inbound(&c).expect("commits");
        assert_eq!(store.olm_sessions(&alice).expect("reads"), c.sessions);
        store
            .commit_inbound(&inbound(entry("alice", "bob", 2, "y"), 2))
            .expect("commits");
        assert_eq!(
            store.olm_sessions(&alice).expect("reads").len(),
            2,
            "empty set: unchanged"
        );
        store.commit_outbound(&outbound(3, "z")).expect("commits");
        assert_eq!(
            store.olm_sessions(&alice).expect("reads"),
            [session("s", 3)]
        );
        assert!(
            store
                .olm_sessions(&user("carol"))
                .expect("reads")
                .is_empty()
        );
    }

    #[test]
    fn identities_are_pinned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let alice = user("alice");
        assert_eq!(store.pinned_identity(&alice).expect("reads"), None);
        let pinned = PinnedIdentity {
            identity: IdentityKeys {
                curve25519: vec![1; 32],
                ed25519: vec![2; 32],
            },
            pinned_ms: 10,
        };
        let mut c = inbound(entry("alice", "bob", 1, "x"), 1);
        c.pin = Some(pinned.clone());
        store.commit_inbound(&c).expect("commits");
        assert_eq!(
            store.pinned_identity(&alice).expect("reads"),
            Some(pinned.clone())
        );
        let carol = user("carol");
        store.pin_identity(&carol, &pinned).expect("pins");
        assert_eq!(store.pinned_identity(&carol).expect("reads"), Some(pinned));
    }

    #[test]
    fn an_upload_stays_known_as_its_message_until_its_record_is_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let upload = crate::store::records::PendingUpload {
            file: crate::store::records::FileRef {
                file: uchat_wire::FileId([4; 16]),
                name: "a.bin".into(),
                size: 1,
                mime: "application/octet-stream".into(),
                md5: vec![0; 16],
                key: vec![1; 64],
                thumbnail: None,
                dimensions: None,
                saved_to: None,
            },
            path: "/tmp/a.bin".into(),
            modified_ms: 1,
            conversation: ConversationId::direct(&user("alice")),
            created_ms: 1,
            sent_as: None,
        };
        store.put_pending_upload("k", &upload).expect("saves");
        let mut commit = outbound(3, "file");
        commit.done_upload = Some("k".into());
        store.commit_outbound(&commit).expect("commits");
        // A run killed now finds the message that carries the file, not a fresh upload;
        // also once it is sent, until the record is old.
        let pending = store.pending_upload("k").expect("reads").expect("kept");
        assert_eq!(pending.sent_as, Some(MessageId([3; 16])));
        sent(&store, MessageId([3; 16]), 9).expect("marks");
        assert!(store.pending_upload("k").expect("reads").is_some());
        store.forget_sent_uploads_before(1).expect("forgets");
        assert!(
            store.pending_upload("k").expect("reads").is_some(),
            "not old"
        );
        store.forget_sent_uploads_before(2).expect("forgets");
        assert_eq!(store.pending_upload("k").expect("reads"), None);
    }

    #[test]
    fn settling_updates_the_status_and_empties_the_outbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("peer.redb");
        {
            let store = PeerStore::open(&path).expect("opens");
            store.commit_outbound(&outbound(1, "one")).expect("commits");
            store.commit_outbound(&outbound(2, "two")).expect("commits");
            store
                .commit_outbound(&outbound(3, "three"))
                .expect("commits");
        }
        // The outbox survives a restart, oldest first.
        let store = PeerStore::open(&path).expect("reopens");
        let ids: Vec<_> = store
            .outbox()
            .expect("reads")
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(
            ids,
            [MessageId([1; 16]), MessageId([2; 16]), MessageId([3; 16])]
        );

        // One run's answers settle in one commit, each its own way.
        store
            .settle_all(&[
                (MessageId([1; 16]), Settled::Sent { relay_ts_ms: 1234 }),
                (
                    MessageId([2; 16]),
                    Settled::Failed {
                        reason: "no user named 'alice'".into(),
                    },
                ),
            ])
            .expect("settles");
        sent(&store, MessageId([1; 16]), 9999).expect("marking twice does nothing");
        sent(&store, MessageId([9; 16]), 1).expect("an unknown id does nothing");
        let left: Vec<_> = store
            .outbox()
            .expect("reads")
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(left, [MessageId([3; 16])]);

        let h = store
            .history(&ConversationId::direct(&user("alice")), 10)
            .expect("reads");
        assert_eq!((h[0].status, h[0].received_ms), (EntryStatus::Sent, 1234));
        assert_eq!(h[1].status, EntryStatus::Failed);
        assert_eq!(h[1].flags.note.as_deref(), Some("no user named 'alice'"));
        assert_eq!(h[2].status, EntryStatus::Pending);

        sent(&store, MessageId([3; 16]), 5).expect("marks");
        assert!(store.outbox().expect("reads").is_empty());
    }

    /// Bob's outgoing message `id` to `to`.
    fn outbound_to(id: u8, to: &str, text: &str) -> OutboundCommit {
        let mut c = outbound(id, text);
        if let Some(e) = c.entry.as_mut() {
            e.to = user(to);
            e.conversation = ConversationId::direct(&user(to));
        }
        c.outbox.to = user(to);
        c
    }

    fn status_of(store: &PeerStore, with: &str, id: u8) -> Option<EntryStatus> {
        store
            .history(&ConversationId::direct(&user(with)), 100)
            .expect("reads")
            .into_iter()
            .find(|e| e.id == MessageId([id; 16]))
            .map(|e| e.status)
    }

    /// An entry-less commit of message `id` from `from`, as a receipt arrives.
    fn receipt_from(from: &str, id: u8) -> InboundCommit {
        InboundCommit {
            sessions: vec![],
            pin: None,
            entry: None,
            from: user(from),
            id: MessageId([id; 16]),
            seq: Seq(u64::from(id)),
            group_session: None,
            group: None,
        }
    }

    #[test]
    fn receipts_raise_only_the_senders_own_messages_to_the_reader_and_never_go_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let bob = user("bob");
        for id in 1..=3 {
            store
                .commit_outbound(&outbound(id, "to alice"))
                .expect("commits");
        }
        store
            .commit_outbound(&outbound_to(8, "carol", "to carol"))
            .expect("commits");
        store
            .commit_inbound(&inbound(entry("carol", "bob", 7, "from carol"), 1))
            .expect("commits");
        sent(&store, MessageId([1; 16]), 10).expect("marks");
        failed(&store, MessageId([3; 16]), "refused").expect("marks");

        let ids = |list: &[u8]| list.iter().map(|&i| MessageId([i; 16])).collect::<Vec<_>>();
        // A receipt (message `id` from `from`) saying `status` of `list`.
        let receipt = |from: &str, id: u8, status: EntryStatus, list: &[u8]| {
            let receipt = InboundReceipt {
                status,
                ids: ids(list),
            };
            let mut changed = store
                .commit_inbound_all(&[(receipt_from(from, id), Some(receipt))], &bob)
                .expect("commits");
            changed.pop().expect("one answer per event")
        };
        let changed = receipt("alice", 50, EntryStatus::Delivered, &[1, 2, 3, 7, 8, 99]);
        assert_eq!(changed, ids(&[1, 2]), "only bob's live messages to alice");
        assert!(
            store
                .has_message(&user("alice"), MessageId([50; 16]))
                .expect("reads")
        );
        assert_eq!(status_of(&store, "alice", 1), Some(EntryStatus::Delivered));
        assert_eq!(status_of(&store, "alice", 2), Some(EntryStatus::Delivered));
        assert_eq!(status_of(&store, "alice", 3), Some(EntryStatus::Failed));
        assert_eq!(status_of(&store, "carol", 8), Some(EntryStatus::Pending));
        assert_eq!(status_of(&store, "carol", 7), Some(EntryStatus::Received));

        // The relay's late reply to the send of 2 leaves it delivered (and the outbox).
        sent(&store, MessageId([2; 16]), 11).expect("marks");
        assert_eq!(status_of(&store, "alice", 2), Some(EntryStatus::Delivered));
        assert_eq!(
            store.outbox().expect("reads").len(),
            1,
            "only carol's is left"
        );

        assert_eq!(receipt("alice", 51, EntryStatus::Read, &[1]), ids(&[1]));
        assert!(
            receipt("alice", 52, EntryStatus::Delivered, &[1]).is_empty(),
            "a read message does not go back to delivered"
        );
        assert_eq!(status_of(&store, "alice", 1), Some(EntryStatus::Read));
        // Carol cannot speak for bob's message to alice.
        assert!(receipt("carol", 53, EntryStatus::Read, &[2]).is_empty());
        assert_eq!(status_of(&store, "alice", 2), Some(EntryStatus::Delivered));
    }

    #[test]
    fn unread_lists_what_came_after_the_last_message_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        let bob = user("bob");
        let alice = ConversationId::direct(&user("alice"));
        store
            .commit_inbound(&inbound(entry("alice", "bob", 1, "one"), 1))
            .expect("commits");
        store
            .commit_inbound(&inbound(entry("alice", "bob", 2, "two"), 2))
            .expect("commits");
        store
            .commit_outbound(&outbound(3, "bob's own"))
            .expect("commits");
        let mut broken = entry("alice", "bob", 4, "x");
        broken.status = EntryStatus::Undecryptable;
        store.commit_inbound(&inbound(broken, 3)).expect("commits");
        store
            .commit_inbound(&inbound(entry("alice", "bob", 5, "five"), 4))
            .expect("commits");
        let ids = |list: &[UnreadMessage]| list.iter().map(|m| m.id.0[0]).collect::<Vec<_>>();
        let unread = store.unread(&alice, &bob).expect("reads");
        assert_eq!(ids(&unread), [1, 2, 5], "received ones only, oldest first");
        store.mark_read(&alice, &unread).expect("marks");
        assert!(store.unread(&alice, &bob).expect("reads").is_empty());
        store
            .commit_inbound(&inbound(entry("alice", "bob", 6, "six"), 5))
            .expect("commits");
        assert_eq!(ids(&store.unread(&alice, &bob).expect("reads")), [6]);
    }

    #[test]
    fn recommitting_an_outbound_message_keeps_one_entry_and_its_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        store.commit_outbound(&outbound(1, "one")).expect("commits");
        store.commit_outbound(&outbound(2, "two")).expect("commits");
        let mut again = outbound(1, "one");
        again.outbox.ciphertext = vec![42];
        store.commit_outbound(&again).expect("commits");
        let outbox = store.outbox().expect("reads");
        assert_eq!(outbox.len(), 2);
        assert_eq!(
            (outbox[0].id, outbox[0].ciphertext.as_slice()),
            (MessageId([1; 16]), &[42][..])
        );
        assert_eq!(
            store
                .history(&ConversationId::direct(&user("alice")), 10)
                .expect("reads")
                .len(),
            2
        );
    }

    #[test]
    fn logout_forgets_the_token_and_keeps_the_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir);
        assert_eq!(store.profile().expect("reads"), None);
        store.clear_token().expect("nothing to clear is fine");
        assert!(matches!(
            store.put_account_pickle("sealed-2"),
            Err(StoreError::NoProfile)
        ));
        store.put_profile(&profile()).expect("saves");
        store.put_account_pickle("sealed-2").expect("saves");
        store.clear_token().expect("clears");
        let kept = store.profile().expect("reads").expect("kept");
        assert!(kept.token.is_empty());
        assert_eq!(kept.account_pickle, "sealed-2");
        assert_eq!(kept.kdf_salt, profile().kdf_salt);
    }

    fn contact(name: &str, signature: &str, avatar: Option<&[u8]>) -> ContactRecord {
        ContactRecord {
            user: user(name),
            friend: true,
            since_ms: 7,
            profile: uchat_wire::ProfileSummary {
                signature: signature.into(),
                avatar_version: avatar.map(|_| "0123456789abcdef".into()),
                updated_ms: 9,
            },
            avatar: avatar.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn a_friend_list_sync_writes_pins_contacts_and_ends_friendships_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = PeerStore::open(&dir.path().join("peer.redb")).expect("opens");
        store
            .put_contact(&contact("carol", "gone soon", None))
            .expect("puts");
        let pin = PinnedIdentity {
            identity: IdentityKeys {
                curve25519: vec![1; 32],
                ed25519: vec![2; 32],
            },
            pinned_ms: 10,
        };
        store
            .sync_contacts(
                &[(user("alice"), pin.clone())],
                &[contact("alice", "hi", None), contact("bob", "yo", None)],
                &[user("carol")],
            )
            .expect("syncs");
        assert_eq!(
            store.pinned_identity(&user("alice")).expect("reads"),
            Some(pin)
        );
        assert_eq!(store.pinned_identity(&user("bob")).expect("reads"), None);
        let names: Vec<String> = store
            .contacts()
            .expect("reads")
            .iter()
            .map(|c| c.user.to_string())
            .collect();
        assert_eq!(names, ["alice", "bob"]);
        // Nothing to write is no transaction at all, and no error.
        store.sync_contacts(&[], &[], &[]).expect("nothing to do");
    }

    #[test]
    fn contacts_are_cached_replaced_listed_in_name_order_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("peer.redb");
        {
            let store = PeerStore::open(&path).expect("opens");
            assert_eq!(store.contact(&user("alice")).expect("reads"), None);
            assert!(store.contacts().expect("reads").is_empty());
            store
                .put_contact(&contact("carol", "c", None))
                .expect("puts");
            store
                .put_contact(&contact("alice", "old", None))
                .expect("puts");
            store
                .put_contact(&contact("alice", "new", Some(b"png")))
                .expect("replaces");
        }
        let store = PeerStore::open(&path).expect("reopens");
        assert_eq!(
            store.contact(&user("alice")).expect("reads"),
            Some(contact("alice", "new", Some(b"png")))
        );
        let all = store.contacts().expect("reads");
        let names: Vec<_> = all.iter().map(|c| c.user.as_str()).collect();
        assert_eq!(names, ["alice", "carol"]);
        assert_eq!(all[1].avatar, None);

        assert!(store.remove_contact(&user("alice")).expect("removes"));
        assert!(
            !store
                .remove_contact(&user("alice"))
                .expect("removing twice")
        );
        assert_eq!(store.contact(&user("alice")).expect("reads"), None);
        assert_eq!(store.contacts().expect("reads").len(), 1);
    }
}
