//! The peer's redb tables (private to the store module), value encoding and the small
//! helpers every transaction uses.
//!
//! Keys are tuples of names, numbers and id bytes, so that one conversation's rows are one
//! contiguous, ordered range. Values are MessagePack records (see [`super::records`]) or
//! plain numbers. A table whose key or value type changes gets a new name; redb refuses to
//! open a table with a different type.

use redb::TableDefinition;

use super::error::StoreError;

/// [`PROFILE_KEY`] → [`super::ProfileRecord`].
pub(crate) const PROFILE: TableDefinition<&str, &[u8]> = TableDefinition::new("profile");
/// The only key of [`PROFILE`].
pub(crate) const PROFILE_KEY: &str = "profile";
/// contact → [`super::PinnedIdentity`].
pub(crate) const PINS: TableDefinition<&str, &[u8]> = TableDefinition::new("pins");
/// contact → `Vec<SessionRecord>`, always replaced as a whole.
pub(crate) const OLM_SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("olm_sessions");
/// (conversation, global insertion counter) → [`super::HistoryEntry`].
pub(crate) const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
/// Where a history entry is: its [`HISTORY`] key.
pub(crate) type HistoryKey = (&'static str, u64);
/// (from, message id) → where its history entry is, or `None` if the message was seen
/// without one. Answers `has_message` and finds entries for `settle_all`.
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
) -> Result<Option<super::HistoryEntry>, StoreError> {
    history
        .get(key)?
        .map(|v| decode_entry(key.1, v.value()))
        .transpose()
}

/// Decodes the history entry stored at index `index` of [`HISTORY`], with its position.
pub(crate) fn decode_entry(index: u64, bytes: &[u8]) -> Result<super::HistoryEntry, StoreError> {
    let mut entry: super::HistoryEntry = decode(bytes, "history entry")?;
    entry.position = index;
    Ok(entry)
}

/// global insertion counter → [`super::OutboxEntry`]; iteration order is oldest first.
pub(crate) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// message id → (its [`OUTBOX`] key, the `from` of its history entry).
pub(crate) const OUTBOX_IDS: TableDefinition<&[u8], (u64, &str)> =
    TableDefinition::new("outbox_ids");

/// contact → [`super::ContactRecord`]: the last profile and avatar seen of each contact.
pub(crate) const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");

/// group id → [`super::LocalGroup`]: the groups this peer is or was in.
pub(crate) const PEER_GROUPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("peer_groups");
/// group id → [`super::OutboundGroupRecord`]: this peer's current Megolm session per group.
pub(crate) const OUTBOUND_GROUP_SESSIONS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("outbound_group_sessions");
/// (group id, sender, session id) → [`super::InboundGroupRecord`].
pub(crate) const INBOUND_GROUP_SESSIONS: TableDefinition<(&[u8], &str, &str), &[u8]> =
    TableDefinition::new("inbound_group_sessions");

/// file id → (from, message id): the history entry of the message that carries a file.
pub(crate) const FILE_MESSAGES: TableDefinition<&[u8], (&str, &[u8])> =
    TableDefinition::new("file_messages");
/// upload key (conversation, path, size and modification time) → [`super::PendingUpload`].
pub(crate) const PENDING_UPLOADS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("pending_uploads");
/// file id → [`super::PendingDownload`].
pub(crate) const PENDING_DOWNLOADS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("pending_downloads");

/// call id → [`super::CallOfferRecord`].
pub(crate) const CALL_OFFERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("call_offers");

/// post id → [`super::MomentKeyRecord`]: the key of each post this peer wrote or was
/// shared.
pub(crate) const MOMENT_KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("moment_keys");
/// file id → [`super::MomentImageRecord`]: the pictures of the posts this peer has opened.
pub(crate) const MOMENT_IMAGES: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("moment_images");

/// Named counters: see the `*_COUNTER` and `*_KEY` constants of the store.
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// The user's choices that stay on this device, by name: 1 for on, 0 for off.
pub(crate) const SETTINGS: TableDefinition<&str, u64> = TableDefinition::new("settings");

uchat_db::store_helpers!(StoreError, commit_on = on_disk);

/// Runs a write transaction, whose durable commit waits on the disk, without stalling the
/// async tasks that share the thread: on a multi-threaded runtime (the CLI's, the app's)
/// `block_in_place` hands them to other workers first; elsewhere (a blocking thread, a
/// single-threaded test runtime, no runtime) it simply runs.
pub(crate) fn on_disk<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(test)]
mod on_disk_tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::on_disk;

    #[test]
    fn a_commit_waiting_on_the_disk_leaves_the_other_tasks_running() {
        // One worker thread: if `on_disk` held it, the task below could never run.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let (tx, rx) = mpsc::channel();
        let answered = runtime.block_on(async move {
            let committing = tokio::spawn(async move {
                // Stands for a durable commit: blocks until the other task has run.
                on_disk(|| rx.recv_timeout(Duration::from_secs(10)))
            });
            tokio::task::yield_now().await;
            let other = tokio::spawn(async move { tx.send("took in an event") });
            let _ = other.await;
            committing.await.expect("the commit task")
        });
        assert_eq!(answered, Ok("took in an event"));
    }

    #[test]
    fn outside_a_multi_threaded_runtime_the_work_simply_runs() {
        assert_eq!(on_disk(|| 7), 7);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        assert_eq!(runtime.block_on(async { on_disk(|| 8) }), 8);
    }
}
