//! Fans ephemeral events about one user (presence, profile and identity changes) out to
//! their online friends.
//!
//! Announcements go through one queue and one task, so friends see a user's changes in the
//! order they happened: a quick online-then-offline never arrives as offline-then-online.
//! Friends the user has blocked get nothing. Friends who are offline get nothing either:
//! they learn the current state from `Request::Friends` when they come back.

use std::sync::Arc;

use tokio::sync::mpsc;
use uchat_store::RelayStore;
use uchat_wire::{Push, PushEvent, UserName};

use super::metrics::Metrics;
use super::now_ms;
use super::online::Online;

/// One event about `about`, for their friends.
struct Announcement {
    about: UserName,
    event: PushEvent,
    at_ms: u64,
}

/// The sending side of the announcement queue, kept in the relay's shared state.
pub(super) struct Announcer {
    queue: mpsc::UnboundedSender<Announcement>,
}

impl Announcer {
    /// Queues `event` about `about` for their online friends. Never blocks; after shutdown
    /// the event is dropped.
    pub(super) fn announce(&self, about: &UserName, event: PushEvent) {
        let announcement = Announcement {
            about: about.clone(),
            event,
            at_ms: now_ms(),
        };
        if self.queue.send(announcement).is_err() {
            tracing::debug!(user = %about, "announcement after shutdown dropped");
        }
    }
}

/// An announcer and the task that delivers its announcements until every sender is gone.
pub(super) fn start(
    store: Arc<RelayStore>,
    online: Arc<Online>,
    metrics: Arc<Metrics>,
) -> (Announcer, tokio::task::JoinHandle<()>) {
    let (queue, announcements) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(store, online, metrics, announcements));
    (Announcer { queue }, task)
}

async fn run(
    store: Arc<RelayStore>,
    online: Arc<Online>,
    metrics: Arc<Metrics>,
    mut announcements: mpsc::UnboundedReceiver<Announcement>,
) {
    while let Some(announcement) = announcements.recv().await {
        let store = store.clone();
        let about = announcement.about.clone();
        let friends = match tokio::task::spawn_blocking(move || store.friends(&about)).await {
            Ok(Ok(friends)) => friends,
            Ok(Err(e)) => {
                tracing::warn!(user = %announcement.about, error = %e, "cannot read friends; announcement dropped");
                continue;
            }
            Err(e) => {
                tracing::error!(error = %e, "friends lookup task failed");
                continue;
            }
        };
        let push = Push {
            seq: None,
            relay_ts_ms: announcement.at_ms,
            event: announcement.event,
        };
        for friend in friends.into_iter().filter(|f| !f.blocked) {
            if online.push_ephemeral(&friend.user, push.clone()) {
                metrics.ephemeral_events_pushed.inc();
            }
        }
    }
}
