//! A peer's files, a third `impl` block of [`PeerStore`]: the message each received or sent
//! file came in, uploads that have not become messages yet, and downloads under way, so
//! that a transfer cut off by a lost connection or a killed process resumes on the next
//! run.

use redb::ReadableTable;
use uchat_wire::{FileId, MessageId, UserName};

use crate::store::error::StoreError;
use crate::store::local::PeerStore;
use crate::store::records::{HistoryEntry, PendingDownload, PendingUpload};
use crate::store::tables::{
    FILE_MESSAGES, HISTORY, MESSAGES, PENDING_DOWNLOADS, PENDING_UPLOADS, decode, encode, entry_at,
    entry_location, read, write,
};

/// Where a message's history entry is, inside a transaction.
fn entry_key_in(
    tx: &redb::ReadTransaction,
    file: FileId,
) -> Result<Option<(String, u64)>, StoreError> {
    let Some(message) = tx.open_table(FILE_MESSAGES)?.get(file.0.as_slice())? else {
        return Ok(None);
    };
    let (from, id) = message.value();
    Ok(entry_location(&tx.open_table(MESSAGES)?, from, id)?)
}

/// Marks the pending upload under `key` as carried by message `id`, in a transaction that
/// puts that message in the outbox.
pub(crate) fn upload_sent_as_in(
    tx: &redb::WriteTransaction,
    key: &str,
    id: MessageId,
) -> Result<(), StoreError> {
    let mut uploads = tx.open_table(PENDING_UPLOADS)?;
    let upload: Option<PendingUpload> = uploads
        .get(key)?
        .map(|v| decode(v.value(), "pending upload"))
        .transpose()?;
    if let Some(mut upload) = upload {
        upload.sent_as = Some(id);
        uploads.insert(key, encode(&upload, "pending upload")?.as_slice())?;
    }
    Ok(())
}

impl PeerStore {
    /// The history entry of the message that carries file `file`, if this peer has one.
    pub fn file_message(&self, file: FileId) -> Result<Option<HistoryEntry>, StoreError> {
        read(self.db(), |tx| {
            let Some((conversation, index)) = entry_key_in(tx, file)? else {
                return Ok(None);
            };
            entry_at(&tx.open_table(HISTORY)?, (conversation.as_str(), index))
        })
    }

    /// Records where file `file` was saved, in the history entry that carries it.
    pub fn mark_file_saved(&self, file: FileId, path: &str) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            let location = {
                let messages = tx.open_table(FILE_MESSAGES)?;
                let Some(message) = messages.get(file.0.as_slice())? else {
                    return Ok(());
                };
                let (from, id) = message.value();
                let (from, id) = (from.to_string(), id.to_vec());
                entry_location(&tx.open_table(MESSAGES)?, &from, &id)?
            };
            let Some((conversation, index)) = location else {
                return Ok(());
            };
            let mut history = tx.open_table(HISTORY)?;
            let key = (conversation.as_str(), index);
            if let Some(mut entry) = entry_at(&history, key)?
                && let Some(file) = entry.file.as_mut()
            {
                file.saved_to = Some(path.to_string());
                history.insert(key, encode(&entry, "history entry")?.as_slice())?;
            }
            Ok(())
        })
    }

    /// The upload under `key`, if one started and its message has not left the outbox
    /// ([`PendingUpload::sent_as`] says whether there is one).
    pub fn pending_upload(&self, key: &str) -> Result<Option<PendingUpload>, StoreError> {
        read(self.db(), |tx| {
            tx.open_table(PENDING_UPLOADS)?
                .get(key)?
                .map(|v| decode(v.value(), "pending upload"))
                .transpose()
        })
    }

    /// Records an upload that is starting, under `key`.
    pub fn put_pending_upload(&self, key: &str, upload: &PendingUpload) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            tx.open_table(PENDING_UPLOADS)?
                .insert(key, encode(upload, "pending upload")?.as_slice())?;
            Ok(())
        })
    }

    /// Forgets the upload under `key` (its file changed, or it was given up, or its message
    /// is gone from the outbox).
    pub fn remove_pending_upload(&self, key: &str) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            tx.open_table(PENDING_UPLOADS)?.remove(key)?;
            Ok(())
        })
    }

    /// Forgets the uploads sent as a message (see [`PendingUpload::sent_as`]) that started
    /// before `cutoff_ms`; uploads still under way stay, whatever their age.
    pub fn forget_sent_uploads_before(&self, cutoff_ms: u64) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            let mut uploads = tx.open_table(PENDING_UPLOADS)?;
            let mut old = Vec::new();
            for item in uploads.iter()? {
                let (key, value) = item?;
                let upload: PendingUpload = decode(value.value(), "pending upload")?;
                if upload.sent_as.is_some() && upload.created_ms < cutoff_ms {
                    old.push(key.value().to_string());
                }
            }
            for key in old {
                uploads.remove(key.as_str())?;
            }
            Ok(())
        })
    }

    /// The download of `file` under way, if any.
    pub fn pending_download(&self, file: FileId) -> Result<Option<PendingDownload>, StoreError> {
        read(self.db(), |tx| {
            tx.open_table(PENDING_DOWNLOADS)?
                .get(file.0.as_slice())?
                .map(|v| decode(v.value(), "pending download"))
                .transpose()
        })
    }

    /// Records (or updates) a download under way.
    pub fn put_pending_download(&self, download: &PendingDownload) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            tx.open_table(PENDING_DOWNLOADS)?.insert(
                download.file.0.as_slice(),
                encode(download, "pending download")?.as_slice(),
            )?;
            Ok(())
        })
    }

    /// Forgets the download of `file` (done, or given up).
    pub fn remove_pending_download(&self, file: FileId) -> Result<(), StoreError> {
        write(self.db(), |tx| {
            tx.open_table(PENDING_DOWNLOADS)?
                .remove(file.0.as_slice())?;
            Ok(())
        })
    }

    /// The message id and sender of the message carrying `file`, if any.
    pub fn file_sender(&self, file: FileId) -> Result<Option<(UserName, MessageId)>, StoreError> {
        read(self.db(), |tx| {
            let Some(message) = tx.open_table(FILE_MESSAGES)?.get(file.0.as_slice())? else {
                return Ok(None);
            };
            let (from, id) = message.value();
            let from = UserName::parse(from).map_err(|e| StoreError::Corrupt {
                what: "user name",
                reason: e.to_string(),
            })?;
            let id: [u8; 16] = id.try_into().map_err(|_| StoreError::Corrupt {
                what: "message id",
                reason: "not 16 bytes".into(),
            })?;
            Ok(Some((from, MessageId(id))))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::InboundCommit;
    use crate::store::records::{ConversationId, EntryFlags, EntryStatus, FileRef};
    use uchat_wire::Seq;

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("valid")
    }

    fn file_ref(file: FileId) -> FileRef {
        FileRef {
            file,
            name: "报告.pdf".into(),
            size: 10,
            mime: "application/pdf".into(),
            md5: vec![1; 16],
            key: vec![2; 64],
            thumbnail: None,
            dimensions: None,
            saved_to: None,
        }
    }

    #[test]
    fn a_file_message_is_found_by_its_file_and_records_where_it_was_saved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = PeerStore::open(&dir.path().join("peer.redb")).expect("opens");
        let file = FileId([7; 16]);
        let id = MessageId([1; 16]);
        let entry = HistoryEntry {
            id,
            conversation: ConversationId::direct(&user("alice")),
            from: user("alice"),
            to: user("bob"),
            sent_ms: 1,
            received_ms: 2,
            text: None,
            status: EntryStatus::Received,
            flags: EntryFlags::default(),
            group: None,
            group_change: None,
            file: Some(file_ref(file)),
            position: 0,
        };
        store
            .commit_inbound(&InboundCommit {
                sessions: vec![],
                pin: None,
                entry: Some(entry),
                from: user("alice"),
                id,
                seq: Seq(1),
                group_session: None,
                group: None,
            })
            .expect("commits");
        assert_eq!(
            store.file_sender(file).expect("reads"),
            Some((user("alice"), id))
        );
        store.mark_file_saved(file, "/tmp/报告.pdf").expect("marks");
        let found = store.file_message(file).expect("reads").expect("found");
        assert_eq!(
            found.file.and_then(|f| f.saved_to).as_deref(),
            Some("/tmp/报告.pdf")
        );
        assert!(
            store
                .file_message(FileId([8; 16]))
                .expect("reads")
                .is_none()
        );

        let download = PendingDownload {
            file,
            part_path: "/tmp/.part".into(),
            final_path: "/tmp/x".into(),
            chunks: 3,
        };
        store.put_pending_download(&download).expect("saves");
        assert_eq!(store.pending_download(file).expect("reads"), Some(download));
        store.remove_pending_download(file).expect("removes");
        assert_eq!(store.pending_download(file).expect("reads"), None);
        let upload = PendingUpload {
            file: file_ref(file),
            path: "/home/alice/报告.pdf".into(),
            modified_ms: 5,
            conversation: ConversationId::direct(&user("bob")),
            created_ms: 6,
            sent_as: None,
        };
        store.put_pending_upload("k", &upload).expect("saves");
        assert_eq!(store.pending_upload("k").expect("reads"), Some(upload));
        store.remove_pending_upload("k").expect("removes");
        assert_eq!(store.pending_upload("k").expect("reads"), None);
    }
}
