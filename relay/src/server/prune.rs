//! The pruner: a task that keeps the send de-duplication table from growing forever by
//! forgetting entries older than [`DEDUP_RETENTION`], deletes files and moments whose
//! retention ended (a file's record and ciphertext; a post with its likes and comments)
//! and forgets idle rate-limit buckets, once at start and then every [`PRUNE_INTERVAL`].
//!
//! It does not touch queues: a queued message stays until it is acknowledged, however old.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use uchat_store::RelayStore;

use super::now_ms;

/// How long the relay remembers a (sender, message id) to drop re-sends: 7 days. A peer
/// re-sends from its outbox after a lost reply, which happens within minutes or at its next
/// start; a re-send after a week is queued again, and the recipient's peer still drops it,
/// since peers de-duplicate by message id themselves.
pub(super) const DEDUP_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// How often old entries are pruned: hourly, so the table holds at most an hour's worth
/// beyond the retention, and each pass deletes a small batch in one short transaction.
pub(super) const PRUNE_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Entries queued before this time (ms since the Unix epoch) are forgotten when pruning at
/// `now_ms`.
pub(super) fn dedup_cutoff_ms(now_ms: u64) -> u64 {
    let retention_ms = u64::try_from(DEDUP_RETENTION.as_millis()).unwrap_or(u64::MAX);
    now_ms.saturating_sub(retention_ms)
}

/// Prunes at once, then every [`PRUNE_INTERVAL`], until `stop` turns true or its sender
/// goes away.
pub(super) async fn run(
    store: Arc<RelayStore>,
    files: Arc<super::files::FileDir>,
    throttles: Arc<super::throttle::Throttles>,
    retention: Option<Duration>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        prune_once(&store).await;
        remove_expired_files(&store, &files).await;
        if let Some(retention) = retention {
            remove_expired_moments(&store, retention).await;
        }
        throttles.forget_idle();
        tokio::select! {
            // Priority: stopping over the next pass.
            biased;
            _ = stop.wait_for(|stopped| *stopped) => return,
            () = tokio::time::sleep(PRUNE_INTERVAL) => {}
        }
    }
}

/// One pass on a blocking thread; returns how many entries it forgot (`None` on failure,
/// which is logged: the next pass tries again).
async fn prune_once(store: &Arc<RelayStore>) -> Option<u64> {
    let store = store.clone();
    let cutoff_ms = dedup_cutoff_ms(now_ms());
    match tokio::task::spawn_blocking(move || store.prune_dedup_before(cutoff_ms)).await {
        Ok(Ok(pruned)) => {
            tracing::debug!(pruned, cutoff_ms, "pruned old dedup entries");
            Some(pruned)
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot prune dedup entries");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "dedup pruning task failed");
            None
        }
    }
}

/// Deletes every post older than `retention`, with its likes and comments, in batches of
/// one short transaction each; returns how many.
async fn remove_expired_moments(store: &Arc<RelayStore>, retention: Duration) -> usize {
    let store = store.clone();
    let cutoff_ms =
        now_ms().saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
    let removed = tokio::task::spawn_blocking(move || {
        let mut removed = 0;
        loop {
            let expired = store.expired_moments(cutoff_ms, EXPIRED_FILES_PER_BATCH)?;
            if expired.is_empty() {
                return Ok::<_, uchat_store::StoreError>(removed);
            }
            for post in expired {
                if store.delete_expired_moment(post)? {
                    removed += 1;
                }
            }
        }
    })
    .await;
    logged_count(removed, "moments")
}

/// Files expired looked up at a time; a pass takes batch after batch until none is left.
const EXPIRED_FILES_PER_BATCH: usize = 1000;

/// Deletes every file whose retention ended: the ciphertext first, then the record (a crash
/// in between leaves a record whose file is gone, which the next pass deletes). Before, a
/// pass deleted at most 1,000, so files expiring faster than that piled up.
async fn remove_expired_files(
    store: &Arc<RelayStore>,
    files: &Arc<super::files::FileDir>,
) -> usize {
    let (store, files) = (store.clone(), files.clone());
    let removed = tokio::task::spawn_blocking(move || {
        let now = now_ms();
        let mut removed = 0;
        let mut skipped = std::collections::HashSet::new();
        loop {
            let expired = store.expired_files(now, EXPIRED_FILES_PER_BATCH + skipped.len())?;
            let mut progressed = false;
            for id in expired {
                // An upload streaming now (a stalled one resumed) is left for the next pass.
                if files.is_uploading(id) {
                    skipped.insert(id);
                    continue;
                }
                files.remove(id);
                store.delete_file(id)?;
                removed += 1;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        Ok::<_, uchat_store::StoreError>(removed)
    })
    .await;
    logged_count(removed, "files")
}

/// The number a pruning task deleted, logged; a failure is logged and counts as none.
fn logged_count(
    removed: Result<Result<usize, uchat_store::StoreError>, tokio::task::JoinError>,
    what: &'static str,
) -> usize {
    match removed {
        Ok(Ok(n)) => {
            if n > 0 {
                tracing::info!(count = n, what, "deleted what outlived its retention");
            }
            n
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, what, "cannot delete expired items");
            0
        }
        Err(e) => {
            tracing::warn!(error = %e, what, "pruning task failed");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uchat_store::AccountRecord;
    use uchat_wire::{IdentityKeys, MessageId, PushEvent, UserName};

    const DAY_MS: u64 = 24 * 60 * 60 * 1000;

    fn user(name: &str) -> UserName {
        UserName::parse(name).expect("valid")
    }

    /// A store with alice and bob, and one message from alice to bob queued at `queued_ms`.
    fn store_with_message(queued_ms: u64) -> (tempfile::TempDir, Arc<RelayStore>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RelayStore::open(&dir.path().join("relay.redb")).expect("opens");
        for name in ["alice", "bob"] {
            let account = AccountRecord {
                username: user(name),
                password_hash: String::new(),
                identity: IdentityKeys {
                    curve25519: vec![1; 32],
                    ed25519: vec![2; 32],
                },
                created_ms: 0,
            };
            store.create_account(&account).expect("creates");
        }
        enqueue(&store, queued_ms);
        (dir, Arc::new(store))
    }

    /// Queues alice's message 1 to bob at `at_ms`; true if it was a duplicate.
    fn enqueue(store: &RelayStore, at_ms: u64) -> bool {
        let event = PushEvent::Message {
            from: user("alice"),
            id: MessageId([1; 16]),
            ciphertext: vec![0; 4],
        };
        store
            .enqueue(
                &user("bob"),
                &event,
                Some((&user("alice"), MessageId([1; 16]))),
                at_ms,
                crate::config::Limits::default().queue(),
            )
            .expect("enqueues")
            .duplicate
    }

    #[test]
    fn the_cutoff_is_seven_days_back_and_never_underflows() {
        assert_eq!(dedup_cutoff_ms(10 * DAY_MS), 3 * DAY_MS);
        assert_eq!(dedup_cutoff_ms(DAY_MS), 0);
        assert_eq!(PRUNE_INTERVAL, Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn a_pass_forgets_entries_older_than_a_week_only() {
        let (_dir, store) = store_with_message(now_ms() - 8 * DAY_MS);
        assert_eq!(prune_once(&store).await, Some(1));
        assert!(
            !enqueue(&store, now_ms()),
            "the week-old entry was forgotten"
        );
        assert_eq!(prune_once(&store).await, Some(0), "a fresh entry stays");
        assert!(enqueue(&store, now_ms()));
    }

    #[tokio::test]
    async fn the_pruner_passes_at_start_and_stops_when_told() {
        let (_dir, store) = store_with_message(now_ms() - 8 * DAY_MS);
        let (stop, stop_rx) = watch::channel(false);
        let files = Arc::new(super::super::files::FileDir::open(_dir.path()).expect("dir"));
        let throttles = Arc::new(super::super::throttle::Throttles::new(
            &crate::config::Limits::default(),
        ));
        let task = tokio::spawn(run(store.clone(), files, throttles, None, stop_rx));
        stop.send(true).expect("the pruner listens");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops promptly")
            .expect("does not panic");
        assert!(!enqueue(&store, now_ms()), "pruned before stopping");
    }

    #[tokio::test]
    async fn one_pass_deletes_every_expired_file_not_just_a_thousand() {
        let (dir, store) = store_with_message(now_ms());
        let files = Arc::new(super::super::files::FileDir::open(dir.path()).expect("dir"));
        let limits = uchat_store::FileLimits {
            max_file_bytes: 1 << 20,
            quota_bytes: 1 << 30,
            retention_ms: 1,
            max_files: 10_000,
        };
        let only_the_owner = uchat_wire::FileAccess::Users { users: Vec::new() };
        let count = EXPIRED_FILES_PER_BATCH as u32 + 50;
        for i in 0..count {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_be_bytes());
            store
                .begin_upload(
                    &user("alice"),
                    uchat_wire::FileId(id),
                    0,
                    &only_the_owner,
                    0,
                    &limits,
                )
                .expect("starts");
        }
        assert_eq!(remove_expired_files(&store, &files).await, count as usize);
        assert!(store.expired_files(now_ms(), 10).expect("lists").is_empty());
    }
}
