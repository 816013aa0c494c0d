//! The Uchat peer: the client library the CLI and the desktop app use, and the end-to-end
//! cryptography.
//!
//! A tour:
//! - [`Client`] (in `client.rs`, friends and profiles in `client/social.rs`, groups in
//!   `client/group.rs`): register, log in, friends, profiles, groups, send, receive,
//!   history. It keeps local
//!   data in its own redb file ([`store::PeerStore`]) in a profile directory, and
//!   reports what happens as [`ClientEvent`]s.
//! - [`store`]: the local store ([`store::PeerStore`], one redb file per profile) and the
//!   records the app and the CLI show ([`store::HistoryEntry`] and the rest).
//! - [`connection`]: the QUIC connection to the relay, with the relay's certificate
//!   fingerprint pinned on first use ([`trust::KnownRelays`]).
//! - [`crypto`]: Olm and Megolm sessions (vodozemac), the file chunk cipher, the password-derived
//!   local key, safety numbers. Pure and tested on its own.
//! - [`envelope`]: the peer-to-peer format inside the relay's opaque bytes.
//! - [`moment`]: what posts and comments say inside their encryption, and their rules.
//! - [`avatar`]: turns a picture into the small square PNG a profile carries.
//! - `core`: the protocol's rules without I/O (outbox, intake, group sending, inbox,
//!   reconnecting), which `Client` and its tasks drive.
//! - [`backoff`], [`trust`]: small pure pieces.
//!
//! Architecture invariant: plaintext, passwords and keys never reach logs or `Debug`
//! output, and private keys are on disk only sealed under the password-derived key.

// No lock guard lives across an `.await`, so none across a relay round trip (and the
// peer has no async locks at all: see tests/e2e/tidy.rs).
#![deny(clippy::await_holding_lock)]

pub mod avatar;
pub mod backoff;
pub mod body;
pub mod client;
pub mod connection;
mod core;
pub mod envelope;
pub mod event;
pub mod filename;
pub mod moment;
pub mod store;
pub mod thumbnail;
pub mod transfer;
pub mod trust;
pub mod voice;

/// The end-to-end cryptography, from its own crate (`uchat-crypto`), under the name the
/// peer's modules and the fuzz targets use.
pub use uchat_crypto as crypto;

pub use client::{
    CallEnd, CallProgress, Calls, Client, ClientError, ClientOptions, ConnectedCall, FileTarget,
    Files, Friend, FriendRequests, Group, Groups, IncomingCall, MomentPage, Moments, NewAvatar,
    Placed, PlacedCall, PostedMoment, Profile, Repeat, SafetyNumbers, SavedFile, SentFile, Social,
    TalkOptions,
};
pub use envelope::ReceiptKind;
pub use event::{ClientEvent, ReceivedMessage};
