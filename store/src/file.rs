//! The relay's files, a fourth `impl` block of [`RelayStore`]: what is known about each
//! uploaded file (its uploader, size, who may fetch it, how far its upload got, when it
//! expires) and each uploader's storage used. The ciphertext lives in files beside the
//! database, which the relay writes; this module never sees a byte of it.
//!
//! An upload reserves its whole size against the uploader's quota when it starts, so
//! uploads under way cannot add up past it; the reservation goes when the file is deleted:
//! at the end of its retention, or [`STALLED_UPLOAD_MS`] after an incomplete upload last
//! made progress.

use redb::ReadableTable;
use uchat_wire::{FileAccess, FileId, GroupId, UserName};

use crate::error::StoreError;
use crate::group::{group_record, members_of};
use crate::records::FileRecord;
use crate::relay::{RelayStore, require_account};
use crate::tables::{
    COUNTERS, FILE_COUNTS, FILE_USAGE, FILES, FILES_BY_EXPIRY, FRIENDS, GROUP_MEMBERS, GROUPS,
    USER_GROUPS, decode, encode, read, write,
};

/// Limits of the file layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimits {
    /// Largest file, in bytes of ciphertext.
    pub max_file_bytes: u64,
    /// Most bytes of ciphertext one uploader's files may take.
    pub quota_bytes: u64,
    /// How long a file is kept after its upload starts, in ms.
    pub retention_ms: u64,
    /// Most files one uploader's may be on the relay at once (empty ones reserve no bytes,
    /// so without this their records would be unbounded).
    pub max_files: u64,
}

/// How long an upload may go without progress before it is given up and its quota
/// reservation returned: a day, in ms.
pub const STALLED_UPLOAD_MS: u64 = 24 * 60 * 60 * 1000;

/// Moves `record`'s place in the expiry index to `expires_ms`.
fn reschedule_in(
    tx: &redb::WriteTransaction,
    record: &mut FileRecord,
    expires_ms: u64,
) -> Result<(), StoreError> {
    let mut by_expiry = tx.open_table(FILES_BY_EXPIRY)?;
    by_expiry.remove((record.expires_ms, record.id.0.as_slice()))?;
    by_expiry.insert((expires_ms, record.id.0.as_slice()), ())?;
    record.expires_ms = expires_ms;
    Ok(())
}

fn file_record(
    files: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: FileId,
) -> Result<Option<FileRecord>, StoreError> {
    files
        .get(id.0.as_slice())?
        .map(|v| decode(v.value(), "file"))
        .transpose()
}

fn put_file_in(tx: &redb::WriteTransaction, record: &FileRecord) -> Result<(), StoreError> {
    tx.open_table(FILES)?
        .insert(record.id.0.as_slice(), encode(record, "file")?.as_slice())?;
    Ok(())
}

/// Whether `a` and `b` are friends or in a group together, inside a transaction.
fn related_in(tx: &redb::WriteTransaction, a: &UserName, b: &UserName) -> Result<bool, StoreError> {
    if tx
        .open_table(FRIENDS)?
        .get((a.as_str(), b.as_str()))?
        .is_some()
    {
        return Ok(true);
    }
    let index = tx.open_table(USER_GROUPS)?;
    let members = tx.open_table(GROUP_MEMBERS)?;
    for item in index.range((a.as_str(), &[][..])..)? {
        let (key, _) = item?;
        let (member, group) = key.value();
        if member != a.as_str() {
            break;
        }
        if members.get((group, b.as_str()))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Who `access` names, checked: friends or co-members of `owner`, or the members of a
/// group `owner` is in (at this moment). The owner is left out (they may always fetch).
fn allowed_in(
    tx: &redb::WriteTransaction,
    owner: &UserName,
    access: &FileAccess,
) -> Result<Vec<UserName>, StoreError> {
    let mut allowed = match access {
        FileAccess::Users { users } => {
            let mut users = users.clone();
            users.sort();
            users.dedup();
            for user in &users {
                require_account(tx, user)?;
                if user != owner && !related_in(tx, owner, user)? {
                    return Err(StoreError::NotFriends {
                        user: owner.clone(),
                        other: user.clone(),
                    });
                }
            }
            users
        }
        FileAccess::Group { group } => group_members_in(tx, owner, *group)?,
    };
    allowed.retain(|u| u != owner);
    allowed.sort();
    allowed.dedup();
    Ok(allowed)
}

fn group_members_in(
    tx: &redb::WriteTransaction,
    asker: &UserName,
    group: GroupId,
) -> Result<Vec<UserName>, StoreError> {
    let exists = group_record(&tx.open_table(GROUPS)?, group)?.is_some();
    let members: Vec<UserName> = members_of(&tx.open_table(GROUP_MEMBERS)?, group)?
        .into_iter()
        .map(|(user, _, _)| user)
        .collect();
    if !exists || !members.contains(asker) {
        return Err(StoreError::NoSuchGroup { group });
    }
    Ok(members)
}

/// The [`COUNTERS`] entry that says [`FILE_COUNTS`] was built.
const FILE_COUNTS_BUILT: &str = "file_counts_built";

/// Builds [`FILE_COUNTS`] from [`FILES`], once, for a store written before it existed.
pub(crate) fn build_file_counts_once(tx: &redb::WriteTransaction) -> Result<(), StoreError> {
    let mut counters = tx.open_table(COUNTERS)?;
    if counters.get(FILE_COUNTS_BUILT)?.is_some() {
        return Ok(());
    }
    let mut totals: std::collections::BTreeMap<String, u64> = Default::default();
    for item in tx.open_table(FILES)?.iter()? {
        let (_, value) = item?;
        let record: FileRecord = decode(value.value(), "file")?;
        *totals.entry(record.owner.as_str().to_string()).or_default() += 1;
    }
    let mut counts = tx.open_table(FILE_COUNTS)?;
    for (owner, count) in &totals {
        counts.insert(owner.as_str(), *count)?;
    }
    counters.insert(FILE_COUNTS_BUILT, 1)?;
    Ok(())
}

impl RelayStore {
    /// Starts `owner`'s upload of file `id` of `size` ciphertext bytes, or resumes it:
    /// returns how many bytes the relay holds already (0 for a new upload).
    ///
    /// A new upload is refused with [`StoreError::FileTooLarge`] over `max_file_bytes`,
    /// [`StoreError::QuotaExceeded`] past the owner's quota, [`StoreError::LimitReached`] past
    /// `max_files` of theirs, or the refusals of its access
    /// ([`StoreError::NotFriends`], [`StoreError::NoSuchGroup`], [`StoreError::UnknownUser`]).
    /// An id taken by another upload (another owner or size) is [`StoreError::FileIdTaken`].
    pub fn begin_upload(
        &self,
        owner: &UserName,
        id: FileId,
        size: u64,
        access: &FileAccess,
        now_ms: u64,
        limits: &FileLimits,
    ) -> Result<u64, StoreError> {
        write(&self.db, |tx| {
            if let Some(existing) = file_record(&tx.open_table(FILES)?, id)? {
                if &existing.owner == owner && existing.size == size {
                    return Ok(existing.committed);
                }
                return Err(StoreError::FileIdTaken { id });
            }
            if size > limits.max_file_bytes {
                return Err(StoreError::FileTooLarge {
                    size,
                    max: limits.max_file_bytes,
                });
            }
            let allowed = allowed_in(tx, owner, access)?;
            let mut counts = tx.open_table(FILE_COUNTS)?;
            let held = counts.get(owner.as_str())?.map(|v| v.value()).unwrap_or(0);
            if held >= limits.max_files {
                return Err(StoreError::LimitReached {
                    what: "files on the relay (old ones expire, or ask the operator)",
                    limit: limits.max_files,
                });
            }
            counts.insert(owner.as_str(), held + 1)?;
            drop(counts);
            let mut usage = tx.open_table(FILE_USAGE)?;
            let used = usage.get(owner.as_str())?.map(|v| v.value()).unwrap_or(0);
            if used.saturating_add(size) > limits.quota_bytes {
                return Err(StoreError::QuotaExceeded {
                    used,
                    size,
                    quota: limits.quota_bytes,
                });
            }
            usage.insert(owner.as_str(), used + size)?;
            drop(usage);
            // Until it completes, an upload lives a day past its last progress.
            let expires_ms = now_ms.saturating_add(STALLED_UPLOAD_MS.min(limits.retention_ms));
            put_file_in(
                tx,
                &FileRecord {
                    id,
                    owner: owner.clone(),
                    size,
                    committed: 0,
                    complete: false,
                    allowed,
                    created_ms: now_ms,
                    expires_ms,
                },
            )?;
            tx.open_table(FILES_BY_EXPIRY)?
                .insert((expires_ms, id.0.as_slice()), ())?;
            Ok(0)
        })
    }

    /// Records that the first `committed` bytes of `id` are durably on disk (never lowers
    /// it, never past the size); an upload under way lives another day from `now_ms`.
    pub fn record_upload_progress(
        &self,
        id: FileId,
        committed: u64,
        now_ms: u64,
        limits: &FileLimits,
    ) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            let Some(mut record) = file_record(&tx.open_table(FILES)?, id)? else {
                return Err(StoreError::NoSuchFile { id });
            };
            record.committed = record.committed.max(committed.min(record.size));
            if !record.complete {
                let retention_end = record.created_ms.saturating_add(limits.retention_ms);
                let stalled = now_ms.saturating_add(STALLED_UPLOAD_MS).min(retention_end);
                reschedule_in(tx, &mut record, stalled)?;
            }
            put_file_in(tx, &record)
        })
    }

    /// Marks `id` complete: all of it is on disk, and those allowed may download it until
    /// its retention ends.
    pub fn complete_upload(&self, id: FileId, limits: &FileLimits) -> Result<(), StoreError> {
        write(&self.db, |tx| {
            let Some(mut record) = file_record(&tx.open_table(FILES)?, id)? else {
                return Err(StoreError::NoSuchFile { id });
            };
            record.committed = record.size;
            record.complete = true;
            let retention_end = record.created_ms.saturating_add(limits.retention_ms);
            reschedule_in(tx, &mut record, retention_end)?;
            put_file_in(tx, &record)
        })
    }

    /// The file `id`, for `user` to download at `now_ms`: [`StoreError::NoSuchFile`] if
    /// there is none or its retention ended (the pruner may not have deleted it yet),
    /// [`StoreError::NotAllowed`] unless `user` uploaded it or is allowed, and
    /// [`StoreError::FileIncomplete`] while its upload is under way.
    pub fn file_for_download(
        &self,
        user: &UserName,
        id: FileId,
        now_ms: u64,
    ) -> Result<FileRecord, StoreError> {
        read(&self.db, |tx| {
            let Some(record) = file_record(&tx.open_table(FILES)?, id)? else {
                return Err(StoreError::NoSuchFile { id });
            };
            if record.complete && record.expires_ms <= now_ms {
                return Err(StoreError::NoSuchFile { id });
            }
            if &record.owner != user && !record.allowed.contains(user) {
                return Err(StoreError::NotAllowed { id });
            }
            if !record.complete {
                return Err(StoreError::FileIncomplete { id });
            }
            Ok(record)
        })
    }

    /// The file `id`, if any (for the relay's own bookkeeping).
    pub fn file(&self, id: FileId) -> Result<Option<FileRecord>, StoreError> {
        read(&self.db, |tx| file_record(&tx.open_table(FILES)?, id))
    }

    /// Up to `limit` files whose retention ended before `now_ms`, oldest first.
    pub fn expired_files(&self, now_ms: u64, limit: usize) -> Result<Vec<FileId>, StoreError> {
        read(&self.db, |tx| {
            let by_expiry = tx.open_table(FILES_BY_EXPIRY)?;
            let mut out = Vec::new();
            for item in by_expiry.range(..(now_ms, &[][..]))?.take(limit) {
                let (key, _) = item?;
                let id: [u8; 16] = key.value().1.try_into().map_err(|_| StoreError::Corrupt {
                    what: "file id",
                    reason: "not 16 bytes".into(),
                })?;
                out.push(FileId(id));
            }
            Ok(out)
        })
    }

    /// Forgets file `id` and gives its bytes back to its owner's quota; returns whether
    /// there was one. The caller deletes the ciphertext on disk.
    pub fn delete_file(&self, id: FileId) -> Result<bool, StoreError> {
        write(&self.db, |tx| {
            let Some(record) = file_record(&tx.open_table(FILES)?, id)? else {
                return Ok(false);
            };
            tx.open_table(FILES)?.remove(id.0.as_slice())?;
            tx.open_table(FILES_BY_EXPIRY)?
                .remove((record.expires_ms, id.0.as_slice()))?;
            let mut usage = tx.open_table(FILE_USAGE)?;
            let used = usage
                .get(record.owner.as_str())?
                .map(|v| v.value())
                .unwrap_or(0);
            usage.insert(record.owner.as_str(), used.saturating_sub(record.size))?;
            let mut counts = tx.open_table(FILE_COUNTS)?;
            let held = counts
                .get(record.owner.as_str())?
                .map(|v| v.value())
                .unwrap_or(0);
            if held <= 1 {
                counts.remove(record.owner.as_str())?;
            } else {
                counts.insert(record.owner.as_str(), held - 1)?;
            }
            Ok(true)
        })
    }

    /// Bytes of ciphertext `owner`'s files take (uploads under way included).
    pub fn file_usage(&self, owner: &UserName) -> Result<u64, StoreError> {
        read(&self.db, |tx| {
            Ok(tx
                .open_table(FILE_USAGE)?
                .get(owner.as_str())?
                .map(|v| v.value())
                .unwrap_or(0))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::GroupLimits;
    use crate::relay::QueueLimit;
    use crate::relay::tests::{account, user};

    const LIMITS: FileLimits = FileLimits {
        max_file_bytes: 1000,
        quota_bytes: 1500,
        retention_ms: 100,
        max_files: 10,
    };

    fn store() -> (tempfile::TempDir, RelayStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RelayStore::open(&dir.path().join("relay.redb")).expect("opens");
        for name in ["alice", "bob", "carol", "dave"] {
            store.create_account(&account(name)).expect("creates");
        }
        let social = crate::social::tests::LIMITS;
        for friend in ["bob", "carol"] {
            store
                .request_friend(&user("alice"), &user(friend), "", 1, &social)
                .expect("asks");
            store
                .accept_friend(&user(friend), &user("alice"), 1, &social)
                .expect("accepts");
        }
        (dir, store)
    }

    fn to(names: &[&str]) -> FileAccess {
        FileAccess::Users {
            users: names.iter().map(|n| user(n)).collect(),
        }
    }

    #[test]
    fn an_upload_resumes_completes_and_is_fetched_only_by_those_allowed() {
        let (_dir, store) = store();
        let id = FileId([1; 16]);
        assert_eq!(
            store
                .begin_upload(&user("alice"), id, 800, &to(&["bob"]), 10, &LIMITS)
                .expect("starts"),
            0
        );
        store
            .record_upload_progress(id, 300, 10, &LIMITS)
            .expect("records");
        store
            .record_upload_progress(id, 200, 10, &LIMITS)
            .expect("never lowers");
        assert!(matches!(
            store.file_for_download(&user("bob"), id, 12),
            Err(StoreError::FileIncomplete { .. })
        ));
        assert_eq!(
            store
                .begin_upload(&user("alice"), id, 800, &to(&["bob"]), 11, &LIMITS)
                .expect("resumes"),
            300
        );
        assert!(matches!(
            store.begin_upload(&user("bob"), id, 800, &to(&[]), 11, &LIMITS),
            Err(StoreError::FileIdTaken { .. })
        ));
        store.complete_upload(id, &LIMITS).expect("completes");
        assert_eq!(
            store
                .file_for_download(&user("bob"), id, 12)
                .expect("allowed")
                .size,
            800
        );
        store
            .file_for_download(&user("alice"), id, 12)
            .expect("the owner");
        assert!(matches!(
            store.file_for_download(&user("carol"), id, 12),
            Err(StoreError::NotAllowed { .. })
        ));
        assert!(matches!(
            store.file_for_download(&user("bob"), FileId([9; 16]), 12),
            Err(StoreError::NoSuchFile { .. })
        ));
    }

    #[test]
    fn empty_uploads_are_bounded_by_count_and_a_deleted_file_frees_its_place() {
        let (_dir, store) = store();
        let alice = user("alice");
        for i in 0..LIMITS.max_files as u8 {
            store
                .begin_upload(&alice, FileId([i; 16]), 0, &to(&["bob"]), 0, &LIMITS)
                .expect("room");
        }
        let err = store
            .begin_upload(&alice, FileId([99; 16]), 0, &to(&["bob"]), 0, &LIMITS)
            .expect_err("full");
        assert!(
            matches!(err, StoreError::LimitReached { limit: 10, .. }),
            "{err:?}"
        );
        assert!(store.delete_file(FileId([3; 16])).expect("deletes"));
        store
            .begin_upload(&alice, FileId([99; 16]), 0, &to(&["bob"]), 0, &LIMITS)
            .expect("a place again");
    }

    #[test]
    fn an_expired_file_is_not_served_even_before_the_pruner_deletes_it() {
        let (_dir, store) = store();
        let id = FileId([5; 16]);
        store
            .begin_upload(&user("alice"), id, 10, &to(&["bob"]), 0, &LIMITS)
            .expect("starts");
        store.complete_upload(id, &LIMITS).expect("completes");
        store
            .file_for_download(&user("bob"), id, LIMITS.retention_ms - 1)
            .expect("still kept");
        assert!(matches!(
            store.file_for_download(&user("bob"), id, LIMITS.retention_ms),
            Err(StoreError::NoSuchFile { .. })
        ));
    }

    #[test]
    fn uploads_are_bounded_by_size_quota_and_relation() {
        let (_dir, store) = store();
        let alice = user("alice");
        assert!(matches!(
            store.begin_upload(&alice, FileId([1; 16]), 1001, &to(&["bob"]), 0, &LIMITS),
            Err(StoreError::FileTooLarge { .. })
        ));
        assert!(matches!(
            store.begin_upload(&alice, FileId([1; 16]), 10, &to(&["dave"]), 0, &LIMITS),
            Err(StoreError::NotFriends { .. })
        ));
        store
            .begin_upload(&alice, FileId([2; 16]), 1000, &to(&["bob"]), 0, &LIMITS)
            .expect("fits");
        assert!(matches!(
            store.begin_upload(&alice, FileId([3; 16]), 600, &to(&["bob"]), 0, &LIMITS),
            Err(StoreError::QuotaExceeded { used: 1000, .. })
        ));
        assert_eq!(store.file_usage(&alice).expect("reads"), 1000);
        // Retention: expired files are listed, and deleting one frees the quota.
        assert!(store.expired_files(50, 10).expect("lists").is_empty());
        assert_eq!(
            store.expired_files(101, 10).expect("lists"),
            [FileId([2; 16])]
        );
        assert!(store.delete_file(FileId([2; 16])).expect("deletes"));
        assert_eq!(store.file_usage(&alice).expect("reads"), 0);
        assert!(store.file(FileId([2; 16])).expect("reads").is_none());
    }

    #[test]
    fn a_stalled_upload_expires_a_day_after_its_last_progress_a_complete_one_with_retention() {
        let (_dir, store) = store();
        let limits = FileLimits {
            max_file_bytes: 1000,
            quota_bytes: 1500,
            retention_ms: 30 * STALLED_UPLOAD_MS,
            max_files: 10,
        };
        let (stalled, done) = (FileId([1; 16]), FileId([2; 16]));
        for id in [stalled, done] {
            store
                .begin_upload(&user("alice"), id, 500, &to(&["bob"]), 0, &limits)
                .expect("starts");
        }
        store
            .record_upload_progress(stalled, 100, 1000, &limits)
            .expect("records");
        store.complete_upload(done, &limits).expect("completes");
        assert!(
            store
                .expired_files(STALLED_UPLOAD_MS, 10)
                .expect("lists")
                .is_empty()
        );
        assert_eq!(
            store
                .expired_files(STALLED_UPLOAD_MS + 1001, 10)
                .expect("lists"),
            [stalled]
        );
        assert_eq!(
            store
                .expired_files(30 * STALLED_UPLOAD_MS + 1, 10)
                .expect("lists"),
            [stalled, done]
        );
    }

    #[test]
    fn a_group_file_is_for_the_members_at_upload_time() {
        let (_dir, store) = store();
        let limits = GroupLimits {
            max_members: 10,
            max_groups_per_user: 10,
            queue: QueueLimit {
                max_events: 100,
                max_bytes: u64::MAX,
            },
        };
        let group = GroupId([5; 16]);
        store
            .create_group(&user("alice"), group, "g", &[user("bob")], 0, &limits)
            .expect("creates");
        let access = FileAccess::Group { group };
        let id = FileId([1; 16]);
        store
            .begin_upload(&user("bob"), id, 10, &access, 0, &LIMITS)
            .expect("a member may");
        assert_eq!(
            store.file(id).expect("reads").expect("some").allowed,
            [user("alice")]
        );
        assert!(matches!(
            store.begin_upload(&user("carol"), FileId([2; 16]), 10, &access, 0, &LIMITS),
            Err(StoreError::NoSuchGroup { .. })
        ));
        // bob and carol are no friends, but bob may name carol once they share a group.
        assert!(matches!(
            store.begin_upload(
                &user("bob"),
                FileId([3; 16]),
                10,
                &to(&["carol"]),
                0,
                &LIMITS
            ),
            Err(StoreError::NotFriends { .. })
        ));
        store
            .invite_to_group(&user("alice"), group, &user("carol"), 1, &limits)
            .expect("invites");
        store
            .begin_upload(
                &user("bob"),
                FileId([3; 16]),
                10,
                &to(&["carol"]),
                0,
                &LIMITS,
            )
            .expect("co-members");
    }
}
