//! uchat-netsim: a network simulator for testing Uchat (and anything else over UDP) under
//! real-world conditions, on loopback, without root or kernel features.
//!
//! - [`model`] is pure: a [`model::link::Link`] decides, for each datagram and a moment in
//!   virtual time, whether it is dropped (and why) or when it arrives (latency, jitter,
//!   random and bursty loss, reordering, duplication, a rate limit with a bounded queue, an
//!   MTU); a [`model::nat::Nat`] maps and filters like a NAT box. Every random choice comes
//!   from a seed, so a run can be replayed. Profiles of typical networks are in
//!   [`model::profile`].
//! - [`Proxy`] runs one such path between UDP clients and an upstream address on tokio.
//! - [`Topology`] builds a few paths for a test and hands out the addresses to use.
//! - [`bench`] measures the simulator's own overhead.
//!
//! netsim depends on no other Uchat crate.

pub mod bench;
pub mod model;
pub mod proxy;
pub mod topology;

pub use proxy::{PathConfig, PathStats, Proxy};
pub use topology::Topology;
