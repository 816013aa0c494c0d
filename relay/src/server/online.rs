//! Who is online: connection counts per user and the wake-up handle their pushers wait on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use uchat_wire::UserName;

/// The registry of online users. A user with several connections is online until the last
/// one leaves.
#[derive(Default)]
pub(super) struct Online {
    users: Mutex<HashMap<UserName, Entry>>,
}

struct Entry {
    connections: usize,
    wake: Arc<Notify>,
}

impl Online {
    /// Registers one more connection of `user`; returns the handle that wakes its pusher
    /// and whether the user just came online (this is their only connection).
    pub(super) fn join(&self, user: &UserName) -> (Arc<Notify>, bool) {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = users.entry(user.clone()).or_insert_with(|| Entry {
            connections: 0,
            wake: Arc::new(Notify::new()),
        });
        entry.connections += 1;
        (entry.wake.clone(), entry.connections == 1)
    }

    /// Unregisters one connection of `user`; returns true if that was the last one.
    pub(super) fn leave(&self, user: &UserName) -> bool {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = users.get_mut(user) else {
            return false;
        };
        entry.connections = entry.connections.saturating_sub(1);
        if entry.connections == 0 {
            users.remove(user);
            true
        } else {
            false
        }
    }

    /// Whether `user` has at least one connection.
    pub(super) fn is_online(&self, user: &UserName) -> bool {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.contains_key(user)
    }

    /// Wakes every pusher of `user` (no-op if offline): new events are in their queue.
    pub(super) fn wake(&self, user: &UserName) {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = users.get(user) {
            entry.wake.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_stays_online_until_the_last_connection_leaves() {
        let online = Online::default();
        let alice = UserName::parse("alice").expect("valid");
        online.join(&alice);
        online.join(&alice);
        assert!(online.is_online(&alice));
        assert!(!online.leave(&alice));
        assert!(online.is_online(&alice));
        assert!(online.leave(&alice));
        assert!(!online.is_online(&alice));
    }
}
