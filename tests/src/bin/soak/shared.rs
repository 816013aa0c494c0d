//! The state the traffic's tasks share: each client's slot, the delivery ledger, the
//! posts and files the traffic knows of, and the counters the sampler reads; with the
//! limits that keep every queue and wait bounded.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use uchat_peer::{Client, ClientError, ClientOptions};
use uchat_wire::{FileId, GroupId, MessageId, PostId, UserName};

use crate::clients::start_listener;
use crate::ledger::Ledger;
use crate::mix::Op;
use crate::report::Summary;

/// Every client's password (the profiles live in a temporary directory).
pub(crate) const PASSWORD: &str = "soak password";

/// How long one operation may take before it counts as failed. An offline spell takes
/// up to `OFFLINE_MAX` plus opening the profile again (argon2 and a handshake through the
/// lossy path), well within this.
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(90);
/// Operations in flight at most; a tick that finds this many running is skipped and
/// counted, so a stalled relay cannot pile up unbounded work here.
pub(crate) const MAX_IN_FLIGHT: usize = 64;
/// A client that goes offline stays away between these (uniformly).
pub(crate) const OFFLINE_MIN: Duration = Duration::from_secs(5);
/// See `OFFLINE_MIN`.
pub(crate) const OFFLINE_MAX: Duration = Duration::from_secs(40);
/// How long `reconnect` may try when a client finds itself offline.
pub(crate) const RECONNECT_WITHIN: Duration = Duration::from_secs(30);
/// Live posts an author keeps; a new post beyond this deletes the oldest, so the relay's
/// moment tables reach a steady size instead of growing for the whole run.
pub(crate) const LIVE_POSTS_PER_AUTHOR: usize = 4;
/// Posts remembered for likes and comments (oldest forgotten first).
pub(crate) const LIKEABLE_MAX: usize = 300;
/// Files waiting to be downloaded, at most (oldest dropped first and counted).
pub(crate) const DOWNLOADS_MAX: usize = 200;
/// After the traffic, how long every message acknowledged may take to arrive.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(180);

/// The moments the traffic knows of.
#[derive(Default)]
pub(crate) struct Posts {
    /// Each author's live posts, oldest first.
    pub(crate) live: HashMap<usize, VecDeque<PostId>>,
    /// (viewer, post) pairs whose key reached the viewer.
    pub(crate) likeable: VecDeque<(usize, PostId)>,
}

/// One client's place: the client while it is open (`None` while offline), behind a
/// lock an operation holds from start to end, so each client does one thing at a time.
pub(crate) struct Slot {
    /// The open client, `None` while offline; an operation holds the lock throughout.
    pub(crate) client: Arc<tokio::sync::Mutex<Option<Arc<Client>>>>,
    /// The task taking in the open client's events.
    pub(crate) listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Counters the operations and listeners share with the sampler.
#[derive(Default)]
pub(crate) struct Counters {
    /// Operations done, by `Op::index`.
    pub(crate) done: [AtomicU64; Op::ALL.len()],
    /// Operations failed, by `Op::index`.
    pub(crate) failed: [AtomicU64; Op::ALL.len()],
    /// Ticks whose chosen client (or every client tried) was busy or offline.
    pub(crate) skipped: AtomicU64,
    /// Ticks skipped because `MAX_IN_FLIGHT` operations were running.
    pub(crate) saturated: AtomicU64,
    /// Connections that dropped under a client (not by going offline on purpose).
    pub(crate) disconnects: AtomicU64,
    /// Events a listener missed because it fell behind.
    pub(crate) lagged: AtomicU64,
    /// Files waiting for download that were dropped because too many waited.
    pub(crate) downloads_dropped: AtomicU64,
    /// Clients closed right now.
    pub(crate) offline: AtomicUsize,
    /// Operations running right now.
    pub(crate) in_flight: AtomicUsize,
}

impl Counters {
    /// Operations done, all kinds.
    pub(crate) fn done_total(&self) -> u64 {
        self.done.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Operations failed, all kinds.
    pub(crate) fn failed_total(&self) -> u64 {
        self.failed.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// The soak's world: every client slot, its profile and partners, the groups and the ledger
/// of messages sent and arrived, shared by the traffic's tasks.
pub(crate) struct SoakWorld {
    /// One per client, by index.
    pub(crate) slots: Vec<Slot>,
    /// How to open each client's profile again (its home and its netsim path).
    pub(crate) options: Vec<ClientOptions>,
    /// Each client's user name.
    pub(crate) names: Vec<UserName>,
    /// Each client's 1:1 partners.
    pub(crate) partners: Vec<Vec<usize>>,
    /// The groups and their members.
    pub(crate) groups: Vec<(GroupId, Vec<usize>)>,
    /// Messages sent and arrived.
    pub(crate) ledger: Mutex<Ledger>,
    /// Moments to like, comment on and delete.
    pub(crate) posts: Mutex<Posts>,
    /// Files sent and not yet downloaded: (recipient, file).
    pub(crate) downloads: Mutex<VecDeque<(usize, FileId)>>,
    /// What the sampler and the report read.
    pub(crate) counters: Counters,
    /// Failures by operation and error, for the report.
    pub(crate) errors: Mutex<BTreeMap<String, u64>>,
    /// Where files are written before sending and saved after downloading.
    pub(crate) scratch: PathBuf,
    /// Listeners stop by this time at the latest.
    pub(crate) hard_stop: Instant,
}

impl SoakWorld {
    /// The shared state of a run whose clients are set up: each client goes in its
    /// slot with a listener started.
    pub(crate) async fn new(
        clients: Vec<Client>,
        options: Vec<ClientOptions>,
        partners: Vec<Vec<usize>>,
        groups: Vec<(GroupId, Vec<usize>)>,
        scratch: PathBuf,
        hard_stop: Instant,
    ) -> Arc<SoakWorld> {
        let shared = Arc::new(SoakWorld {
            slots: (0..clients.len())
                .map(|_| Slot {
                    client: Arc::new(tokio::sync::Mutex::new(None)),
                    listener: Mutex::new(None),
                })
                .collect(),
            names: clients.iter().map(|c| c.me().clone()).collect(),
            options,
            partners,
            groups,
            ledger: Mutex::new(Ledger::default()),
            posts: Mutex::new(Posts::default()),
            downloads: Mutex::new(VecDeque::new()),
            counters: Counters::default(),
            errors: Mutex::new(BTreeMap::new()),
            scratch,
            hard_stop,
        });
        for (who, client) in clients.into_iter().enumerate() {
            start_listener(&shared, who, &client);
            *shared.slots[who].client.lock().await = Some(Arc::new(client));
        }
        shared
    }
}

/// Locks a std mutex, taking over from a task that panicked holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SoakWorld {
    /// Counts a failed operation under its kind and the start of its error.
    pub(crate) fn fail(&self, op: Op, error: &str) {
        self.counters.failed[op.index()].fetch_add(1, Ordering::Relaxed);
        // Ids and addresses vary; the first words say what kind of failure it was.
        let kind: String = error.chars().take(90).collect();
        *lock(&self.errors)
            .entry(format!("{}: {kind}", op.name()))
            .or_default() += 1;
    }

    /// Counts an operation done.
    pub(crate) fn done(&self, op: Op) {
        self.counters.done[op.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Records a send's outcome: acknowledged, queued in the outbox, or failed.
    pub(crate) fn sent(&self, op: Op, result: Result<MessageId, ClientError>, to: Vec<usize>) {
        match result {
            Ok(id) => {
                lock(&self.ledger).expect(id, to, true);
                self.done(op);
            }
            Err(ClientError::Queued { id, source }) => {
                lock(&self.ledger).expect(id, to, false);
                self.fail(op, &format!("queued in the outbox: {source}"));
            }
            Err(e) => self.fail(op, &e.to_string()),
        }
    }
}

/// Adds what the traffic's counters say to a summary of the samples.
pub(crate) fn add_counters(summary: &mut Summary, shared: &SoakWorld) {
    let c = &shared.counters;
    summary.ops_by_kind = Op::ALL
        .iter()
        .map(|op| {
            (
                op.name(),
                (
                    c.done[op.index()].load(Ordering::Relaxed),
                    c.failed[op.index()].load(Ordering::Relaxed),
                ),
            )
        })
        .collect();
    let mut top_errors: Vec<(String, u64)> = lock(&shared.errors)
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    top_errors.sort_by_key(|e| std::cmp::Reverse(e.1));
    top_errors.truncate(12);
    summary.top_errors = top_errors;
    summary.skipped_busy = c.skipped.load(Ordering::Relaxed);
    summary.skipped_saturated = c.saturated.load(Ordering::Relaxed);
    summary.disconnects = c.disconnects.load(Ordering::Relaxed);
    summary.lagged_events = c.lagged.load(Ordering::Relaxed);
    summary.downloads_dropped = c.downloads_dropped.load(Ordering::Relaxed);
}
