//! Who may hold a connection: at most so many in all and so many per address, counted
//! from the end of the handshake until the connection task ends; and how many handshakes
//! are under way (above a threshold the accept loop asks for a QUIC Retry first).
//!
//! [`Admission::admit`] hands out an [`AdmissionSlot`] that gives its place back when it is
//! dropped, so every way a connection task can end (close, error, abort at shutdown) frees
//! it exactly once. Addresses are counted by [`AddressKey`] (IPv6 by its /64), as the
//! rate limits are.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::throttle::AddressKey;

/// Why a connection is turned away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refusal {
    /// The relay holds as many connections as it may.
    #[error("the relay is full ({limit} connections); try again later")]
    RelayFull {
        /// The relay-wide limit.
        limit: usize,
    },
    /// The address holds as many connections as one may.
    #[error("too many connections from your address ({limit}); close some and try again")]
    AddressFull {
        /// The per-address limit.
        limit: usize,
    },
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_address: HashMap<AddressKey, usize>,
}

/// The counts of open connections, shared by the accept loop's tasks.
pub(super) struct Admission {
    max_total: usize,
    max_per_address: usize,
    counts: Arc<Mutex<Counts>>,
    handshakes: Arc<AtomicUsize>,
}

/// One handshake under way; dropping it (when the handshake ends) counts it out.
pub(super) struct Handshake {
    handshakes: Arc<AtomicUsize>,
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.handshakes.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One admitted connection's place; dropping it gives the place back.
pub(super) struct AdmissionSlot {
    address: AddressKey,
    counts: Arc<Mutex<Counts>>,
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Admission {
    /// Counts for at most `max_total` connections, `max_per_address` from one address.
    pub(super) fn new(max_total: usize, max_per_address: usize) -> Self {
        Self {
            max_total,
            max_per_address,
            counts: Arc::default(),
            handshakes: Arc::default(),
        }
    }

    /// Counts one handshake in until the returned guard is dropped.
    pub(super) fn handshake(&self) -> Handshake {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        Handshake {
            handshakes: self.handshakes.clone(),
        }
    }

    /// How many handshakes are under way.
    pub(super) fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// Admits one more connection from `ip`, or says why not.
    pub(super) fn admit(&self, ip: IpAddr) -> Result<AdmissionSlot, Refusal> {
        let address = AddressKey::of(ip);
        let mut counts = lock(&self.counts);
        if counts.total >= self.max_total {
            return Err(Refusal::RelayFull {
                limit: self.max_total,
            });
        }
        let held = counts.per_address.entry(address).or_default();
        if *held >= self.max_per_address {
            return Err(Refusal::AddressFull {
                limit: self.max_per_address,
            });
        }
        *held += 1;
        counts.total += 1;
        Ok(AdmissionSlot {
            address,
            counts: self.counts.clone(),
        })
    }

    /// How many connections are admitted now.
    #[cfg(test)]
    fn open(&self) -> usize {
        lock(&self.counts).total
    }
}

impl Drop for AdmissionSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.per_address.get_mut(&self.address) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.per_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn an_address_holds_its_share_and_gets_a_place_back_when_one_closes() {
        let admission = Admission::new(100, 3);
        let slots: Vec<_> = (0..3)
            .map(|_| admission.admit(ip(1)).expect("admitted"))
            .collect();
        assert_eq!(
            admission.admit(ip(1)).err(),
            Some(Refusal::AddressFull { limit: 3 })
        );
        let other = admission
            .admit(ip(2))
            .expect("another address is not held up");
        drop(slots);
        assert_eq!(admission.open(), 1);
        let again = admission.admit(ip(1)).expect("room again");
        drop((other, again));
        assert_eq!(admission.open(), 0);
    }

    #[test]
    fn the_relay_wide_limit_holds_over_every_address() {
        let admission = Admission::new(4, 3);
        let _slots: Vec<_> = (0..4)
            .map(|i| admission.admit(ip(i)).expect("admitted"))
            .collect();
        let refusal = admission.admit(ip(9)).err().expect("full");
        assert_eq!(refusal, Refusal::RelayFull { limit: 4 });
        assert_eq!(
            refusal.to_string(),
            "the relay is full (4 connections); try again later"
        );
    }

    #[test]
    fn ipv6_hosts_of_one_network_share_a_count() {
        let admission = Admission::new(100, 1);
        let _one = admission
            .admit("2001:db8::1".parse().expect("ip"))
            .expect("admitted");
        assert!(admission.admit("2001:db8::2".parse().expect("ip")).is_err());
        assert!(
            admission
                .admit("2001:db8:0:1::2".parse().expect("ip"))
                .is_ok()
        );
    }
}
