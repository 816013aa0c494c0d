//! The many-to-many shape `throughput` and `rate` share: half the connections send,
//! half receive, every sender is friends with every receiver and addresses them round
//! robin. [`Mesh::start`] sets it up and starts one task per receiver, which checks
//! every arrival ([`PairCheck`]), gives its sender's window a place back, and records
//! send-to-receive latency inside the measured window; [`Mesh::finish`] waits for every
//! acknowledged message and checks that each arrived exactly once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hdrhistogram::Histogram;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use uchat_wire::UserName;

use crate::body::{Anomaly, PairCheck, PairSend};
use crate::clock_us;
use crate::fleet::{Fleet, Inbox, User};
use crate::report::histogram;

/// How often an idle receiver looks whether the run is over.
const POLL: Duration = Duration::from_millis(100);

/// How long, after the senders stopped, every acknowledged message has to arrive.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// One loadgen run over a mesh of senders and receivers: who they are, the windows of
/// messages in flight, and the measured window's bounds.
pub(crate) struct MeshRun {
    /// Receivers' names, in index order.
    pub(crate) receivers: Vec<UserName>,
    /// Senders' names, in index order.
    senders: Vec<UserName>,
    /// One per sender: places for messages in flight (sent, not yet received); a
    /// receiver gives one back for every arrival.
    pub(crate) windows: Vec<Arc<Semaphore>>,
    /// The measured window, µs on loadgen's clock (`u64::MAX` until set).
    window_start_us: AtomicU64,
    window_end_us: AtomicU64,
    /// Messages the relay acknowledged, over all senders.
    pub(crate) acked: AtomicU64,
    /// Messages received, over all receivers.
    received: AtomicU64,
    /// The senders stopped; every send has its answer.
    senders_done: AtomicBool,
}

/// One receiver's findings.
struct Findings {
    checks: Vec<PairCheck>,
    anomalies: Vec<(UserName, Anomaly)>,
    counted: u64,
    latency: Histogram<u64>,
}

/// The set-up mesh with its receivers running.
pub(crate) struct Mesh {
    /// The fleet (its socket and filler).
    pub(crate) fleet: Arc<Fleet>,
    /// The senders, in index order.
    pub(crate) senders: Vec<Arc<User>>,
    /// What everyone shares.
    pub(crate) shared: Arc<MeshRun>,
    receivers: JoinSet<Result<(usize, Findings, User)>>,
}

/// What the measured window saw.
pub(crate) struct Outcome {
    /// Messages received inside the window.
    pub(crate) counted: u64,
    /// Their send-to-receive latency, µs.
    pub(crate) latency: Histogram<u64>,
}

impl Mesh {
    /// Registers `clients` users (half senders), makes every sender friends with every
    /// receiver, and starts the receivers. `window` is each sender's limit of messages
    /// in flight.
    pub(crate) async fn start(
        fleet: Fleet,
        clients: usize,
        window: usize,
        parallel: usize,
    ) -> Result<Self> {
        ensure!(clients >= 2, "the mesh needs at least 2 clients");
        let fleet = Arc::new(fleet);
        let n_senders = clients / 2;
        let senders = register(&fleet, "s", n_senders, parallel).await?;
        let receivers = register(&fleet, "r", clients - n_senders, parallel).await?;
        let senders: Vec<Arc<User>> = senders.into_iter().map(Arc::new).collect();
        let receivers: Vec<Arc<User>> = receivers.into_iter().map(Arc::new).collect();
        let mut friending = JoinSet::new();
        for sender in &senders {
            let (sender, receivers) = (sender.clone(), receivers.clone());
            friending.spawn(async move {
                for receiver in &receivers {
                    sender.befriend(receiver).await?;
                }
                Ok::<_, anyhow::Error>(())
            });
        }
        while let Some(done) = friending.join_next().await {
            done.context("a befriending task")??;
        }
        let shared = Arc::new(MeshRun {
            receivers: receivers.iter().map(|r| r.name().clone()).collect(),
            senders: senders.iter().map(|s| s.name().clone()).collect(),
            windows: (0..senders.len())
                .map(|_| Arc::new(Semaphore::new(window)))
                .collect(),
            window_start_us: AtomicU64::new(u64::MAX),
            window_end_us: AtomicU64::new(u64::MAX),
            acked: AtomicU64::new(0),
            received: AtomicU64::new(0),
            senders_done: AtomicBool::new(false),
        });
        let mut tasks = JoinSet::new();
        for (index, receiver) in receivers.into_iter().enumerate() {
            let receiver = Arc::try_unwrap(receiver)
                .map_err(|_| anyhow::anyhow!("a receiver is still shared"))?;
            let inbox = receiver.inbox().await?;
            let shared = shared.clone();
            tasks.spawn(async move {
                let findings = receive(inbox, &shared).await?;
                Ok((index, findings, receiver))
            });
        }
        Ok(Self {
            fleet,
            senders,
            shared,
            receivers: tasks,
        })
    }

    /// Starts the measured window now.
    pub(crate) fn open_window(&self) {
        self.shared
            .window_start_us
            .store(clock_us(), Ordering::Relaxed);
    }

    /// Ends the measured window now.
    pub(crate) fn close_window(&self) {
        self.shared
            .window_end_us
            .store(clock_us(), Ordering::Relaxed);
    }

    /// After the senders stopped (every send answered, `acked` per sender and receiver
    /// in `sent`), waits for every acknowledged message and checks that each arrived
    /// once and in order; returns what the window saw.
    pub(crate) async fn finish(mut self, sent: Vec<Vec<PairSend>>) -> Result<Outcome> {
        self.shared.senders_done.store(true, Ordering::Release);
        let mut counted = 0;
        let mut latency = histogram();
        let mut checks: Vec<Option<Vec<PairCheck>>> = vec![None; self.shared.receivers.len()];
        let mut anomalies = Vec::new();
        let mut users = Vec::new();
        while let Some(done) = self.receivers.join_next().await {
            let (index, findings, user) = done.context("a receiver task")??;
            counted += findings.counted;
            latency.add(&findings.latency)?;
            anomalies.extend(findings.anomalies);
            checks[index] = Some(findings.checks);
            users.push(user);
        }
        for user in users {
            user.close().await;
        }
        for sender in self.senders {
            if let Ok(sender) = Arc::try_unwrap(sender) {
                sender.close().await;
            }
        }
        self.fleet.dialer().wait_idle(Duration::from_secs(1)).await;
        if let Some((from, anomaly)) = anomalies.first() {
            bail!(
                "{} messages arrived twice or out of order, the first from {from}: {anomaly:?}",
                anomalies.len()
            );
        }
        let mut lost = 0;
        for (s, pairs) in sent.iter().enumerate() {
            for (r, pair) in pairs.iter().enumerate() {
                let received = checks[r].as_ref().map_or(0, |c| c[s].received());
                lost += pair.acked_count().saturating_sub(received);
            }
        }
        ensure!(
            lost == 0,
            "{lost} messages the relay acknowledged never arrived (of {})",
            self.shared.acked.load(Ordering::Relaxed)
        );
        Ok(Outcome { counted, latency })
    }
}

/// Registers `count` users with `role` in their names, `parallel` at a time.
async fn register(
    fleet: &Arc<Fleet>,
    role: &'static str,
    count: usize,
    parallel: usize,
) -> Result<Vec<User>> {
    let mut users = Vec::with_capacity(count);
    let mut running = JoinSet::new();
    for i in 0..count {
        if running.len() >= parallel.max(1) {
            let (index, user) = running.join_next().await.context("a registration")???;
            users.push((index, user));
        }
        let fleet = fleet.clone();
        running.spawn(async move { Ok::<_, anyhow::Error>((i, fleet.register(role).await?.0)) });
    }
    while let Some(done) = running.join_next().await {
        users.push(done.context("a registration task")??);
    }
    users.sort_by_key(|(i, _)| *i);
    Ok(users.into_iter().map(|(_, user)| user).collect())
}

/// One receiver's loop: ends once the senders are done and every acknowledged message
/// arrived, or [`DRAIN_LIMIT`] after the senders are done.
async fn receive(mut inbox: Inbox, shared: &MeshRun) -> Result<Findings> {
    let mut findings = Findings {
        checks: vec![PairCheck::default(); shared.senders.len()],
        anomalies: Vec::new(),
        counted: 0,
        latency: histogram(),
    };
    let mut drain_deadline = None;
    loop {
        if shared.senders_done.load(Ordering::Acquire) {
            if shared.received.load(Ordering::Acquire) >= shared.acked.load(Ordering::Acquire) {
                break;
            }
            let deadline =
                *drain_deadline.get_or_insert_with(|| tokio::time::Instant::now() + DRAIN_LIMIT);
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        let Some(arrival) = inbox.next(POLL).await? else {
            continue;
        };
        let now_us = clock_us();
        let sender = arrival.header.sender as usize;
        let Some(name) = shared.senders.get(sender) else {
            bail!("a message names sender {sender}, which does not exist");
        };
        ensure!(
            *name == arrival.from,
            "a message from {} claims to be from {name}",
            arrival.from
        );
        match findings.checks[sender].take(&arrival.header) {
            Ok(()) => {
                shared.windows[sender].add_permits(1);
                shared.received.fetch_add(1, Ordering::AcqRel);
            }
            Err(anomaly) => findings.anomalies.push((arrival.from, anomaly)),
        }
        let start = shared.window_start_us.load(Ordering::Relaxed);
        let end = shared.window_end_us.load(Ordering::Relaxed);
        if now_us >= start && now_us < end {
            findings.counted += 1;
            findings
                .latency
                .record(now_us.saturating_sub(arrival.header.sent_us).max(1))?;
        }
    }
    inbox.flush().await?;
    Ok(findings)
}
