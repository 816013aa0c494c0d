//! Who is online: each user's logged-in connections, the wake-up handle their pushers wait
//! on for durable events, and the channel that carries their ephemeral events (presence,
//! profile changes).
//!
//! The registry is generic over the connection handle it keeps (`quinn::Connection` in the
//! relay) so its bookkeeping can be tested without a network. It never closes anything
//! itself: [`Online::others`] hands the caller the handles to close.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, broadcast};
use uchat_wire::frame::{self, MAX_CONTROL_FRAME_BYTES};
use uchat_wire::{Push, UserName};

/// Ephemeral events buffered per user for pushers that are busy writing. A pusher that
/// falls further behind loses the oldest (presence is a state: the next event or a
/// `Friends` request brings it up to date). A slot holds a shared frame, not an event, and
/// there are few: slots of whole `Push`es (184 bytes), 256 of them, were 55 KiB of every
/// online user, most of what an idle connection cost; 32 shared frames are 1.5 KiB.
const EPHEMERAL_BUFFER: usize = 32;

/// An ephemeral event encoded once as its `Push` frame and shared by every pusher it goes
/// to (an announcement to 5,000 friends is encoded once, not 5,000 times).
pub(super) type EphemeralFrame = Arc<[u8]>;

/// `push` as an [`EphemeralFrame`]; `None` (logged) if it does not fit in a frame.
pub(super) fn ephemeral_frame(push: &Push) -> Option<EphemeralFrame> {
    match frame::encode(push, MAX_CONTROL_FRAME_BYTES) {
        Ok(bytes) => Some(bytes.into()),
        Err(e) => {
            tracing::error!(error = %e, "ephemeral event does not fit in a frame; skipped");
            None
        }
    }
}

/// What a connection gets when it joins: its pusher's inputs.
pub(super) struct Joined {
    /// Wakes the pusher when the user's durable queue grows.
    pub(super) wake: Arc<Notify>,
    /// The user's ephemeral events from now on.
    pub(super) ephemeral: broadcast::Receiver<EphemeralFrame>,
    /// True if this is the user's only connection: they just came online.
    pub(super) came_online: bool,
}

/// Identifies one connection among the relay's live ones (quinn's `stable_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct ConnectionId(pub(super) usize);

/// The registry of online users. A user with several connections is online until the last
/// one leaves.
pub(super) struct Online<H = quinn::Connection> {
    users: Mutex<HashMap<UserName, Entry<H>>>,
    /// Every logged-in connection by id, for forwarding voice datagrams.
    by_id: Mutex<HashMap<ConnectionId, H>>,
}

struct Entry<H> {
    connections: HashMap<ConnectionId, H>,
    wake: Arc<Notify>,
    ephemeral: broadcast::Sender<EphemeralFrame>,
}

impl<H> Default for Online<H> {
    fn default() -> Self {
        Self {
            users: Mutex::new(HashMap::new()),
            by_id: Mutex::new(HashMap::new()),
        }
    }
}

impl<H: Clone> Online<H> {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<UserName, Entry<H>>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers connection `id` (reachable through `handle`) as logged in as `user`;
    /// `None` if the user holds `max` connections already.
    pub(super) fn join(
        &self,
        user: &UserName,
        id: ConnectionId,
        handle: H,
        max: usize,
    ) -> Option<Joined> {
        let mut users = self.users();
        if users.get(user).is_some_and(|e| e.connections.len() >= max) {
            return None;
        }
        let entry = users.entry(user.clone()).or_insert_with(|| Entry {
            connections: HashMap::new(),
            wake: Arc::new(Notify::new()),
            ephemeral: broadcast::channel(EPHEMERAL_BUFFER).0,
        });
        entry.connections.insert(id, handle.clone());
        self.by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, handle);
        Some(Joined {
            wake: entry.wake.clone(),
            ephemeral: entry.ephemeral.subscribe(),
            came_online: entry.connections.len() == 1,
        })
    }

    /// How many connections `user` holds.
    pub(super) fn connections_of(&self, user: &UserName) -> usize {
        self.users().get(user).map_or(0, |e| e.connections.len())
    }

    /// Unregisters connection `id` of `user`; returns true if it was registered and was
    /// the user's last one. Leaving twice is harmless: the second call returns false, so
    /// the "went offline" bookkeeping cannot run twice for one connection.
    pub(super) fn leave(&self, user: &UserName, id: ConnectionId) -> bool {
        let mut users = self.users();
        let Some(entry) = users.get_mut(user) else {
            return false;
        };
        if entry.connections.remove(&id).is_none() {
            return false;
        }
        self.by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if entry.connections.is_empty() {
            users.remove(user);
            true
        } else {
            false
        }
    }

    /// The handles of `user`'s connections other than `keep`.
    pub(super) fn others(&self, user: &UserName, keep: ConnectionId) -> Vec<H> {
        let users = self.users();
        users.get(user).map_or_else(Vec::new, |entry| {
            entry
                .connections
                .iter()
                .filter(|(id, _)| **id != keep)
                .map(|(_, handle)| handle.clone())
                .collect()
        })
    }

    /// The logged-in connection `id`, if it still is.
    pub(super) fn connection_by_id(&self, id: ConnectionId) -> Option<H> {
        self.by_id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Whether `user` has at least one connection.
    pub(super) fn is_online(&self, user: &UserName) -> bool {
        self.users().contains_key(user)
    }

    /// Wakes every pusher of `user` (no-op if offline): new events are in their queue.
    pub(super) fn wake(&self, user: &UserName) {
        if let Some(entry) = self.users().get(user) {
            entry.wake.notify_waiters();
        }
    }

    /// Hands an ephemeral event to every pusher of `user`; returns false if they are
    /// offline (the event is then simply not sent).
    pub(super) fn push_ephemeral(&self, user: &UserName, frame: &EphemeralFrame) -> bool {
        match self.users().get(user) {
            Some(entry) => entry.ephemeral.send(frame.clone()).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> UserName {
        UserName::parse("alice").expect("valid")
    }

    #[test]
    fn a_user_stays_online_until_the_last_connection_leaves() {
        let online = Online::<&str>::default();
        let alice = alice();
        assert!(
            online
                .join(&alice, ConnectionId(1), "one", 9)
                .expect("room")
                .came_online
        );
        assert!(
            !online
                .join(&alice, ConnectionId(2), "two", 9)
                .expect("room")
                .came_online
        );
        assert!(online.is_online(&alice));
        assert!(!online.leave(&alice, ConnectionId(1)));
        assert!(online.is_online(&alice));
        assert!(online.leave(&alice, ConnectionId(2)));
        assert!(!online.is_online(&alice));
        assert_eq!(online.connection_by_id(ConnectionId(2)), None);
    }

    #[test]
    fn ephemeral_events_reach_every_connection_of_an_online_user_only() {
        let online = Online::<&str>::default();
        let alice = alice();
        let bob = UserName::parse("bob").expect("valid");
        let mut first = online
            .join(&alice, ConnectionId(1), "one", 9)
            .expect("room")
            .ephemeral;
        let mut second = online
            .join(&alice, ConnectionId(2), "two", 9)
            .expect("room")
            .ephemeral;
        let push = Push {
            seq: None,
            relay_ts_ms: 1,
            event: uchat_wire::PushEvent::Presence {
                user: bob.clone(),
                online: true,
                last_seen_ms: None,
            },
        };
        let frame = ephemeral_frame(&push).expect("fits");
        assert!(online.push_ephemeral(&alice, &frame));
        assert_eq!(first.try_recv().expect("delivered"), frame);
        assert_eq!(second.try_recv().expect("delivered"), frame);
        assert!(!online.push_ephemeral(&bob, &frame), "bob is offline");
    }

    #[test]
    fn a_user_holds_at_most_max_connections() {
        let online = Online::<&str>::default();
        let alice = alice();
        assert!(online.join(&alice, ConnectionId(1), "one", 2).is_some());
        assert!(online.join(&alice, ConnectionId(2), "two", 2).is_some());
        assert!(online.join(&alice, ConnectionId(3), "three", 2).is_none());
        assert_eq!(online.connections_of(&alice), 2);
        online.leave(&alice, ConnectionId(1));
        assert!(online.join(&alice, ConnectionId(3), "three", 2).is_some());
    }

    #[test]
    fn leaving_twice_counts_once() {
        let online = Online::<&str>::default();
        let alice = alice();
        online
            .join(&alice, ConnectionId(1), "one", 9)
            .expect("room");
        online
            .join(&alice, ConnectionId(2), "two", 9)
            .expect("room");
        assert!(!online.leave(&alice, ConnectionId(1)));
        assert!(!online.leave(&alice, ConnectionId(1)), "already gone");
        assert!(
            online.is_online(&alice),
            "the other connection is still there"
        );
        assert!(online.leave(&alice, ConnectionId(2)));
        assert!(!online.leave(&alice, ConnectionId(2)));
    }

    #[test]
    fn others_lists_every_connection_of_the_user_but_the_kept_one() {
        let online = Online::<&str>::default();
        let alice = alice();
        let bob = UserName::parse("bob").expect("valid");
        online
            .join(&alice, ConnectionId(1), "one", 9)
            .expect("room");
        online
            .join(&alice, ConnectionId(2), "two", 9)
            .expect("room");
        online
            .join(&alice, ConnectionId(3), "three", 9)
            .expect("room");
        online
            .join(&bob, ConnectionId(4), "bob's", 9)
            .expect("room");
        assert_eq!(online.connection_by_id(ConnectionId(4)), Some("bob's"));
        let mut others = online.others(&alice, ConnectionId(2));
        others.sort_unstable();
        assert_eq!(others, ["one", "three"]);
        assert!(online.others(&bob, ConnectionId(4)).is_empty());
        assert!(
            online
                .others(&UserName::parse("carol").expect("valid"), ConnectionId(1))
                .is_empty()
        );
    }
}
