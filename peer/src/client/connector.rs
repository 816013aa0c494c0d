//! The connector: the connection's single owner. One task per client starts the tasks
//! that live with a connection (event intake, acknowledgements), and when a caller of
//! [`Client::reconnect`] asks, dials with backoff, resumes the session and starts them
//! again. Callers wait for their answer; concurrent callers share one series of dials
//! (`core::redial` decides whom a dial's outcome answers), and no lock is held across a
//! dial.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::{
    Client, ClientError, ClientOptions, ClientState, dial, resume, run_acks, run_inbox, tell_all,
};
use crate::backoff::Backoff;
use crate::connection::ConnectionError;
use crate::core::redial::Redial;
use crate::event::ClientEvent;
use uchat_wire::Seq;

/// One caller of [`Client::reconnect`]: how long it waits, and where its answer goes.
pub(super) struct Ask {
    /// When the caller gives up (`None`: never).
    pub(super) until: Option<std::time::Instant>,
    /// Where the answer goes: online, or why not.
    pub(super) answer: oneshot::Sender<Result<(), ClientError>>,
}

/// The callers waiting for a connection, each under the number the connector gave it,
/// and the channel more arrive on.
struct Callers {
    asks: mpsc::UnboundedReceiver<Ask>,
    redial: Redial<u64>,
    answers: Vec<(u64, oneshot::Sender<Result<(), ClientError>>)>,
    next: u64,
}

impl Callers {
    fn new(asks: mpsc::UnboundedReceiver<Ask>) -> Self {
        Self {
            asks,
            redial: Redial::new(Backoff::default()),
            answers: Vec::new(),
            next: 0,
        }
    }

    fn add(&mut self, ask: Ask) {
        self.next += 1;
        self.redial.wait(self.next, ask.until);
        self.answers.push((self.next, ask.answer));
    }

    /// Waits until someone waits for a connection (taking every ask that came meanwhile);
    /// `false` once the client is gone.
    async fn someone_waits(&mut self) -> bool {
        loop {
            if self.redial.is_idle() {
                let Some(ask) = self.asks.recv().await else {
                    return false;
                };
                self.add(ask);
            }
            while let Ok(ask) = self.asks.try_recv() {
                self.add(ask);
            }
            // Callers that went away (their reconnect was cancelled) keep no dial going.
            let redial = &mut self.redial;
            self.answers.retain(|(who, answer)| {
                let gone = answer.is_closed();
                if gone {
                    redial.forget(who);
                }
                !gone
            });
            if !self.redial.is_idle() {
                return true;
            }
        }
    }

    /// The client is online: every caller is told so.
    fn connected(&mut self) {
        let whom = self.redial.connected();
        for answer in self.take(&whom) {
            let _ = answer.send(Ok(()));
        }
    }

    /// A dial failed with `error`: tells the callers whose time is up (or everyone, if
    /// the failure lasts) and returns how long to wait before dialing again, if anyone
    /// still waits.
    fn failed(&mut self, error: ClientError) -> Option<Duration> {
        let lasting = matches!(
            error,
            ClientError::Connection(
                ConnectionError::Refused(_) | ConnectionError::FingerprintMismatch { .. }
            )
        );
        let mut jitter = [0u8; 1];
        let _ = getrandom::fill(&mut jitter);
        let now = tokio::time::Instant::now().into_std();
        let after = self
            .redial
            .failed(now, f64::from(jitter[0]) / 256.0, lasting);
        if let Some(delay) = after.retry_in {
            tracing::info!(error = %error, ?delay, "reconnecting");
        }
        tell_all(error, self.take(&after.give_up));
        after.retry_in
    }

    /// Waits `delay` before the next dial, taking in the asks that come meanwhile;
    /// `false` once the client is gone.
    async fn pause(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            // The pause first: an ask that comes as it ends waits for the dial that follows.
            tokio::select! {
                biased;
                () = &mut sleep => return true,
                ask = self.asks.recv() => match ask {
                    Some(ask) => self.add(ask),
                    None => return false,
                },
            }
        }
    }

    /// Takes the answers of `whom` out of the waiting list.
    fn take(&mut self, whom: &[u64]) -> Vec<oneshot::Sender<Result<(), ClientError>>> {
        let (taken, kept) = std::mem::take(&mut self.answers)
            .into_iter()
            .partition(|(who, _)| whom.contains(who));
        self.answers = kept;
        taken.into_iter().map(|(_, answer)| answer).collect()
    }
}

/// The connection's owner: see the module docs.
pub(super) struct Connector {
    inner: Arc<ClientState>,
    options: ClientOptions,
    /// The tasks of the current connection.
    tasks: JoinSet<()>,
}

impl Connector {
    /// A connector for `inner`'s connection, dialing with `options`.
    pub(super) fn new(inner: Arc<ClientState>, options: ClientOptions) -> Self {
        Self {
            inner,
            options,
            tasks: JoinSet::new(),
        }
    }

    /// Starts the current connection's tasks (if the client is online), tells `started`
    /// how that went, then serves reconnect asks until the client goes (its handle aborts
    /// this task, and with it the connection's tasks).
    pub(super) async fn run(
        mut self,
        started: oneshot::Sender<Result<(), ClientError>>,
        asks: mpsc::UnboundedReceiver<Ask>,
    ) {
        let first = match self.inner.is_online() {
            true => self.after_connect().await,
            false => Ok(()),
        };
        let _ = started.send(first);
        let mut callers = Callers::new(asks);
        while callers.someone_waits().await {
            if self.inner.is_online() {
                callers.connected();
                continue;
            }
            match self.redial().await {
                Ok(()) => {
                    let _ = self.inner.events.send(ClientEvent::Reconnected);
                    callers.connected();
                }
                Err(e) => {
                    if let Some(delay) = callers.failed(e)
                        && !callers.pause(delay).await
                    {
                        return;
                    }
                }
            }
        }
    }

    /// Dials the relay, resumes the session and starts the connection's tasks.
    async fn redial(&mut self) -> Result<(), ClientError> {
        let profile = self
            .inner
            .store
            .profile()?
            .ok_or_else(|| ClientError::NotLoggedIn {
                home: self.inner.home.clone(),
            })?;
        let relay = self
            .options
            .relay
            .clone()
            .unwrap_or_else(|| profile.relay.clone());
        let link = dial(&self.options, &relay).await?;
        let backlog = resume(&link, &profile).await?;
        *self
            .inner
            .backlog
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = backlog;
        *self
            .inner
            .link
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(link);
        self.after_connect().await
    }

    /// Starts the event tasks, tops up one-time keys and sends the outbox.
    async fn after_connect(&mut self) -> Result<(), ClientError> {
        self.tasks.abort_all();
        // Acknowledgements name only sequence numbers taken in on this connection: a
        // relay restored from a backup may number events below what we saw before.
        self.inner.processed.send_replace(Seq(0));
        self.tasks.spawn(run_inbox(self.inner.clone()));
        self.tasks.spawn(run_acks(self.inner.clone()));
        self.inner.top_up_keys().await?;
        if let Err(e) = self.inner.send_outbox(None).await {
            tracing::warn!(error = %e, "cannot send the outbox");
        }
        // Profile and identity changes of friends while this peer was away.
        self.inner.sync_friends_or_report().await;
        Ok(())
    }
}

impl Client {
    /// Dials again with backoff until it works (or `give_up_after` passes), resumes the
    /// session and restarts event intake. Other methods keep working meanwhile (a message
    /// sent while offline waits in the outbox); callers at the same time share the dials,
    /// and each gives up on its own time.
    pub async fn reconnect(&self, give_up_after: Duration) -> Result<(), ClientError> {
        // An unrepresentable deadline (Duration::MAX) means never give up.
        let until = tokio::time::Instant::now()
            .into_std()
            .checked_add(give_up_after);
        let (answer, answered) = oneshot::channel();
        self.connector
            .send(Ask { until, answer })
            .map_err(|_| ClientError::Closing)?;
        // A dial under way is not cut short for this caller, but this caller does not wait
        // past its time for it (dropping the answer tells the connector it left).
        match tokio::time::timeout(give_up_after, answered).await {
            Ok(answer) => answer.map_err(|_| ClientError::Closing)?,
            Err(_) => Err(ConnectionError::Unreachable {
                relay: self.inner.relay.clone(),
                reason: format!("still not connected after {give_up_after:?}"),
            }
            .into()),
        }
    }
}
