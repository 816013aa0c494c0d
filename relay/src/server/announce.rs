//! Fans ephemeral events about one user (presence, profile and identity changes) out to
//! their online friends.
//!
//! Announcements go through one queue and one task, so friends see a user's changes in the
//! order they happened: a quick online-then-offline never arrives as offline-then-online.
//! Friends the user has blocked get nothing. Friends who are offline get nothing either:
//! they learn the current state from `Request::Friends` when they come back.
//!
//! The queue is bounded: a newer event of the same kind about the same user replaces the
//! one still waiting (friends need the latest presence, not every flap), so a user who
//! logs in and out in a loop holds at most one entry per kind; and above
//! [`MAX_PENDING_ANNOUNCEMENTS`] waiting users new events are dropped and counted.

use std::collections::{HashMap, VecDeque};
use std::mem::Discriminant;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use uchat_store::RelayStore;
use uchat_wire::{Push, PushEvent, UserName};

use super::metrics::Metrics;
use super::now_ms;
use super::online::Online;

/// Most announcements waiting at once (each about a distinct user and kind): far above
/// what a relay's online users make between two deliveries, small in memory (a few MiB).
pub(super) const MAX_PENDING_ANNOUNCEMENTS: usize = 65_536;

/// One event about `about`, for their friends.
#[derive(Debug)]
struct Announcement {
    about: UserName,
    event: PushEvent,
    at_ms: u64,
}

/// What a waiting announcement is keyed by: whom it is about and what kind of event.
type Key = (UserName, Discriminant<PushEvent>);

/// What became of an announcement handed to [`Pending::push`].
#[derive(Debug, PartialEq, Eq)]
enum Queued {
    /// It waits at the end of the queue.
    Added,
    /// It took the place of a waiting one of the same kind about the same user.
    Replaced,
    /// The queue was full; it was dropped.
    Dropped,
}

/// The waiting announcements, in order, at most one per [`Key`] (no I/O, no clock).
struct Pending {
    order: VecDeque<Key>,
    latest: HashMap<Key, Announcement>,
    capacity: usize,
    closed: bool,
}

impl Pending {
    fn new(capacity: usize) -> Self {
        Self {
            order: VecDeque::new(),
            latest: HashMap::new(),
            capacity,
            closed: false,
        }
    }

    /// Queues `announcement`, or lets it replace the waiting one of its key in place.
    fn push(&mut self, announcement: Announcement) -> Queued {
        let key = (
            announcement.about.clone(),
            std::mem::discriminant(&announcement.event),
        );
        if let Some(waiting) = self.latest.get_mut(&key) {
            *waiting = announcement;
            return Queued::Replaced;
        }
        if self.latest.len() >= self.capacity {
            return Queued::Dropped;
        }
        self.order.push_back(key.clone());
        self.latest.insert(key, announcement);
        Queued::Added
    }

    /// The oldest waiting announcement.
    fn pop(&mut self) -> Option<Announcement> {
        let key = self.order.pop_front()?;
        self.latest.remove(&key)
    }

    /// How many announcements wait.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.latest.len()
    }
}

/// The queue shared by the [`Announcer`] and its task.
struct Queue {
    pending: Mutex<Pending>,
    wake: Notify,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending side of the announcement queue, kept in the relay's shared state. Dropping
/// it lets the task deliver what waits and end.
pub(super) struct Announcer {
    queue: Arc<Queue>,
    metrics: Arc<Metrics>,
}

impl Announcer {
    /// Queues `event` about `about` for their online friends. Never blocks; an event over
    /// the queue's bound is dropped and counted (`announcements_dropped`).
    pub(super) fn announce(&self, about: &UserName, event: PushEvent) {
        let announcement = Announcement {
            about: about.clone(),
            event,
            at_ms: now_ms(),
        };
        let queued = self.queue.lock().push(announcement);
        match queued {
            Queued::Added | Queued::Replaced => self.queue.wake.notify_one(),
            Queued::Dropped => {
                self.metrics.announcements_dropped.inc();
            }
        }
    }

    /// How many announcements wait to be delivered.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.queue.lock().len()
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.wake.notify_one();
    }
}

/// An announcer and the task that delivers its announcements until the announcer is gone.
pub(super) fn start(
    store: Arc<RelayStore>,
    online: Arc<Online>,
    metrics: Arc<Metrics>,
) -> (Announcer, tokio::task::JoinHandle<()>) {
    let queue = Arc::new(Queue {
        pending: Mutex::new(Pending::new(MAX_PENDING_ANNOUNCEMENTS)),
        wake: Notify::new(),
    });
    let task = tokio::spawn(run(store, online, metrics.clone(), queue.clone()));
    (Announcer { queue, metrics }, task)
}

async fn run(
    store: Arc<RelayStore>,
    online: Arc<Online>,
    metrics: Arc<Metrics>,
    queue: Arc<Queue>,
) {
    loop {
        let next = {
            let mut pending = queue.lock();
            match pending.pop() {
                Some(announcement) => Some(announcement),
                None if pending.closed => return,
                None => None,
            }
        };
        let Some(announcement) = next else {
            // A notify_one before this await leaves a permit, so no wake-up is lost.
            queue.wake.notified().await;
            continue;
        };
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
        let Some(frame) = super::online::ephemeral_frame(&push) else {
            continue;
        };
        for friend in friends.into_iter().filter(|f| !f.blocked) {
            if online.push_ephemeral(&friend.user, &frame) {
                metrics.ephemeral_events_pushed.inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> UserName {
        UserName::parse(s).expect("valid")
    }

    fn presence(user: &str, online: bool) -> Announcement {
        Announcement {
            about: name(user),
            event: PushEvent::Presence {
                user: name(user),
                online,
                last_seen_ms: (!online).then_some(1),
            },
            at_ms: 1,
        }
    }

    fn is_online(announcement: &Announcement) -> Option<bool> {
        match announcement.event {
            PushEvent::Presence { online, .. } => Some(online),
            _ => None,
        }
    }

    #[test]
    fn a_newer_event_of_a_kind_replaces_the_waiting_one_in_its_place() {
        let mut pending = Pending::new(10);
        assert_eq!(pending.push(presence("alice", true)), Queued::Added);
        assert_eq!(pending.push(presence("bob", true)), Queued::Added);
        assert_eq!(pending.push(presence("alice", false)), Queued::Replaced);
        let identity = Announcement {
            about: name("alice"),
            event: PushEvent::IdentityChanged {
                user: name("alice"),
            },
            at_ms: 2,
        };
        assert_eq!(pending.push(identity), Queued::Added);
        let first = pending.pop().expect("alice first");
        assert_eq!(
            (first.about.as_str(), is_online(&first)),
            ("alice", Some(false))
        );
        assert_eq!(pending.pop().expect("bob").about.as_str(), "bob");
        assert_eq!(is_online(&pending.pop().expect("identity")), None);
        assert!(pending.pop().is_none());
    }

    #[test]
    fn a_full_queue_drops_new_keys_but_still_takes_newer_states() {
        let mut pending = Pending::new(2);
        assert_eq!(pending.push(presence("a", true)), Queued::Added);
        assert_eq!(pending.push(presence("b", true)), Queued::Added);
        assert_eq!(pending.push(presence("c", true)), Queued::Dropped);
        assert_eq!(pending.push(presence("a", false)), Queued::Replaced);
        assert_eq!(pending.len(), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_flood_of_logins_and_logouts_waits_as_one_entry_per_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(RelayStore::open(&dir.path().join("relay.redb")).expect("opens"));
        let metrics = Arc::new(Metrics::new());
        let (announcer, task) = start(store, Arc::new(Online::default()), metrics.clone());
        // The task cannot run until this test awaits: everything below waits in the queue.
        // Before, each call added an entry to an unbounded channel: 200,000 here.
        for round in 0..100 {
            for user in 0..1_000 {
                let user = name(&format!("user{user}"));
                let event = PushEvent::Presence {
                    user: user.clone(),
                    online: round % 2 == 0,
                    last_seen_ms: None,
                };
                announcer.announce(&user, event.clone());
                announcer.announce(&user, event);
            }
        }
        assert_eq!(announcer.waiting(), 1_000);
        assert_eq!(metrics.announcements_dropped.get(), 0);
        drop(announcer);
        tokio::time::timeout(std::time::Duration::from_secs(30), task)
            .await
            .expect("the task delivers what waits and ends")
            .expect("does not panic");
    }
}
