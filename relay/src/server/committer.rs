//! Group commit: one thread commits the relay's messages, group messages,
//! acknowledgements and last-seen times, many to a durable transaction.
//!
//! A request handler hands its write to [`Committer::commit`] and waits. The thread takes
//! the first write waiting and every other one already queued behind it (up to
//! [`MAX_BATCH_WRITES`] and [`MAX_BATCH_BYTES`]), commits them in one
//! [`RelayStore::commit_batch`], and only then answers each handler with its own outcome.
//! While one commit's `fsync` runs, the next batch gathers: under load one `fsync` serves
//! hundreds of senders, and alone a write waits for nobody. Nothing is answered before
//! the commit holding it is durable (the delivery rule).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use uchat_store::{BatchOutcome, BatchWrite, RelayStore};
use uchat_wire::{ErrorCode, ErrorReply};

use super::metrics::Metrics;
use super::requests::store_failure;

/// Most writes in one transaction: a commit stays short, so the next batch is not kept
/// waiting long behind it.
pub(super) const MAX_BATCH_WRITES: usize = 512;
/// Most bytes (as [`BatchWrite::weight`] counts them) in one transaction.
pub(super) const MAX_BATCH_BYTES: usize = 8 << 20;
/// Writes that may wait for the thread; a handler beyond it waits for room (the request
/// bytes it holds are already bounded by `budget.rs`).
const QUEUE_CAPACITY: usize = 4096;

/// One write and where its outcome goes.
struct Job {
    write: BatchWrite,
    reply: oneshot::Sender<Result<BatchOutcome, ErrorReply>>,
}

/// The handle request handlers commit through; the thread ends when every handle is gone.
#[derive(Clone)]
pub(super) struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the committing thread over `store`.
    pub(super) fn start(store: Arc<RelayStore>, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        let (jobs, waiting) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new()
            .name("uchat-committer".into())
            .spawn(move || run(&store, &metrics, waiting))?;
        Ok(Self { jobs })
    }

    /// Commits `write` with whatever else is waiting, and returns its own outcome once the
    /// transaction holding it is durable.
    pub(super) async fn commit(&self, write: BatchWrite) -> Result<BatchOutcome, ErrorReply> {
        let (reply, outcome) = oneshot::channel();
        if self.jobs.send(Job { write, reply }).await.is_err() {
            return Err(stopped());
        }
        outcome.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> ErrorReply {
    ErrorReply {
        code: ErrorCode::Internal,
        message: "the relay is stopping; try again".into(),
    }
}

/// The thread: gather, commit, answer, until every [`Committer`] is dropped.
fn run(store: &RelayStore, metrics: &Metrics, mut waiting: mpsc::Receiver<Job>) {
    while let Some(first) = waiting.blocking_recv() {
        let batch = gather(first, &mut waiting);
        let (writes, replies): (Vec<BatchWrite>, Vec<_>) =
            batch.into_iter().map(|job| (job.write, job.reply)).unzip();
        let count = writes.len();
        let outcomes: Vec<Result<BatchOutcome, ErrorReply>> = match store.commit_batch(writes) {
            Ok(outcomes) => {
                metrics.store_commits.inc();
                metrics.store_batched_writes.inc_by(count as u64);
                outcomes
                    .into_iter()
                    .map(|o| o.map_err(store_failure))
                    .collect()
            }
            Err(e) => {
                tracing::error!(error = %e, writes = count, "a batch of writes failed to commit");
                let reply = store_failure(e);
                vec![Err(reply); count]
            }
        };
        for (reply, outcome) in replies.into_iter().zip(outcomes) {
            // A handler whose connection went away no longer listens; its write stands.
            let _ = reply.send(outcome);
        }
    }
}

/// `first` and the jobs queued behind it, within the batch's bounds.
fn gather(first: Job, waiting: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut bytes = first.write.weight();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_WRITES && bytes < MAX_BATCH_BYTES {
        match waiting.try_recv() {
            Ok(job) => {
                bytes += job.write.weight();
                batch.push(job);
            }
            Err(_) => break,
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use uchat_wire::{Seq, UserName};

    fn ack(through: u64) -> (Job, oneshot::Receiver<Result<BatchOutcome, ErrorReply>>) {
        let (reply, outcome) = oneshot::channel();
        let write = BatchWrite::Ack {
            user: UserName::parse("alice").expect("valid"),
            through: Seq(through),
        };
        (Job { write, reply }, outcome)
    }

    #[tokio::test]
    async fn a_batch_takes_what_waits_up_to_its_bound_and_leaves_the_rest() {
        let (jobs, mut waiting) = mpsc::channel(QUEUE_CAPACITY);
        let mut receivers = Vec::new();
        for i in 0..MAX_BATCH_WRITES + 10 {
            let (job, rx) = ack(i as u64);
            jobs.send(job).await.expect("queued");
            receivers.push(rx);
        }
        let first = waiting.recv().await.expect("one waits");
        let batch = gather(first, &mut waiting);
        assert_eq!(batch.len(), MAX_BATCH_WRITES);
        let next = waiting.recv().await.expect("the rest wait");
        assert_eq!(gather(next, &mut waiting).len(), 10);
    }

    #[tokio::test]
    async fn every_handler_hears_its_own_outcome_after_the_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(RelayStore::open(&dir.path().join("relay.redb")).expect("opens"));
        let committer = Committer::start(store, Arc::new(Metrics::new())).expect("starts");
        let mut acks = tokio::task::JoinSet::new();
        for i in 0..50u64 {
            let committer = committer.clone();
            acks.spawn(async move {
                committer
                    .commit(BatchWrite::Ack {
                        user: UserName::parse("alice").expect("valid"),
                        through: Seq(i),
                    })
                    .await
            });
        }
        while let Some(outcome) = acks.join_next().await {
            assert_eq!(outcome.expect("joins"), Ok(BatchOutcome::Acked(0)));
        }
    }
}
