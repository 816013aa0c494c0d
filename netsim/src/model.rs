//! The pure simulation models: no sockets, no clock; time is a `Duration` since the start
//! of the simulation and randomness comes from a seed.

pub mod link;
pub mod loss;
pub mod nat;
pub mod profile;
pub mod rate;
pub mod stats;
