//! The Uchat relay: a QUIC server that keeps accounts and public keys, and routes and durably
//! queues end-to-end encrypted messages it cannot read.
//!
//! A tour:
//! - [`RelayConfig`] says where to listen, where the data lives and which limits apply;
//!   it is built from flags, environment and an optional TOML file by the binary.
//! - [`Server::spawn`] opens the redb store ([`uchat_store::RelayStore`]), loads or makes the
//!   TLS certificate ([`tls`]), binds the QUIC endpoint and returns a handle that owns every
//!   task; [`Server::shutdown`] stops them and closes connections cleanly.
//! - Each connection is served by one task (`server/connection.rs`); each request on it runs
//!   on its own bidirectional stream (`server/requests.rs`); durable events are pushed on
//!   one relay-opened unidirectional stream (`server/push.rs`); a pruner task
//!   (`server/prune.rs`) forgets week-old send de-duplication entries every hour.
//!
//! Architecture invariant: the relay never links the end-to-end crypto; message bodies and
//! keys are opaque bytes to it, and it never logs them.

pub mod config;
pub mod server;
pub mod tls;

pub use config::{Limits, RelayConfig};
pub use server::{Server, ServerError};
