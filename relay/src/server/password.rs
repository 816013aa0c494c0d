//! The threads that hash and verify passwords (argon2id, 19 MiB each run), and the permits
//! that queue requests for them.
//!
//! A fixed set of threads, one per CPU, runs every argon2 job. On tokio's blocking pool
//! each job could land on any of hundreds of threads, and glibc gives threads their own
//! heaps and keeps a freed 19 MiB block in each: a burst of logins left the relay at
//! 1.9 GiB. Here the same few threads reuse their blocks, so the memory stays a few
//! blocks whatever the burst. Requests wait for a permit before their job is handed over,
//! so a flood of logins waits in order instead of piling jobs up.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// One argon2 run, boxed to cross to a worker.
type Job = Box<dyn FnOnce() + Send>;

/// Why a job did not run to its end.
#[derive(Debug, thiserror::Error)]
pub(super) enum PasswordWorkError {
    /// The relay is stopping: no permit will be handed out again.
    #[error("the password workers are stopping")]
    Stopped,
    /// The job panicked on its worker.
    #[error("a password job failed")]
    Failed,
}

/// The workers and their permits.
pub(super) struct PasswordWorkers {
    permits: Arc<Semaphore>,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl PasswordWorkers {
    /// Starts `threads` workers (at least one), with as many permits.
    pub(super) fn start(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, waiting) = mpsc::channel::<Job>();
        let waiting = Arc::new(Mutex::new(waiting));
        for i in 0..threads {
            let waiting = waiting.clone();
            std::thread::Builder::new()
                .name(format!("uchat-argon2-{i}"))
                .spawn(move || work(&waiting))?;
        }
        Ok(Self {
            permits: Arc::new(Semaphore::new(threads)),
            jobs: Mutex::new(jobs),
        })
    }

    /// The permits, for tests that hold them to show that work waits.
    #[cfg(test)]
    pub(super) fn permits(&self) -> Arc<Semaphore> {
        self.permits.clone()
    }

    /// Runs `job` on a worker once a permit is free and returns what it returned. The
    /// permit stays with the job: work whose requester went away still holds it until it
    /// ends.
    pub(super) async fn run<T, F>(&self, job: F) -> Result<T, PasswordWorkError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit: OwnedSemaphorePermit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PasswordWorkError::Stopped)?;
        let (done, outcome) = oneshot::channel();
        let boxed: Job = Box::new(move || {
            let out = job();
            // Free for the next job before this one's requester hears back.
            drop(permit);
            let _ = done.send(out);
        });
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(boxed)
            .map_err(|_| PasswordWorkError::Stopped)?;
        outcome.await.map_err(|_| PasswordWorkError::Failed)
    }
}

/// A worker: runs jobs until the sender is dropped. A panicking job ends only itself.
fn work(waiting: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let next = waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        let Ok(job) = next else {
            return;
        };
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_workers_and_a_panic_costs_only_its_job() {
        let workers = PasswordWorkers::start(2).expect("starts");
        let name = workers
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .expect("runs");
        assert!(name.is_some_and(|n| n.starts_with("uchat-argon2-")));
        let failed = workers.run(|| -> u8 { panic!("a bad job") }).await;
        assert!(matches!(failed, Err(PasswordWorkError::Failed)));
        assert_eq!(workers.run(|| 7).await.expect("still runs"), 7);
        assert_eq!(workers.permits().available_permits(), 2);
    }
}
