//! Uchat's relay storage: redb tables behind typed, domain-level transactions. (The peer's
//! local store is the peer's own module, `uchat_peer::store`.)
//!
//! A tour of the main types:
//! - [`RelayStore`]: the relay's accounts ([`AccountRecord`]), session token hashes,
//!   one-time and fallback keys ([`RelayStore::claim_key`] hands each one-time key out
//!   once), each user's durable event queue ([`RelayStore::enqueue`] with send
//!   de-duplication, [`RelayStore::pending`], [`RelayStore::ack_through`]; [`QueuedEvent`])
//!   and last-seen times. Everything end-to-end encrypted is opaque bytes to it.
//!   Its social layer (`social.rs`) keeps friendships, pending friend requests, blocks
//!   and public profiles with avatars ([`RelayStore::request_friend`],
//!   [`RelayStore::accept_friend`], [`RelayStore::block`], [`RelayStore::set_profile`],
//!   ...) and queues the event announcing a change in the change's own transaction;
//!   [`RelayStore::enqueue_message`] is [`RelayStore::enqueue`] for friends only, which
//!   silently drops ([`MessageOutcome::Dropped`]) what a blocker should not receive.
//!   Its groups (`group.rs`) keep members and owners, announce every membership change
//!   ([`RelayStore::create_group`], [`RelayStore::invite_to_group`],
//!   [`RelayStore::kick_from_group`], [`RelayStore::leave_group`]) and fan a group
//!   message out ([`RelayStore::send_group_message`]): stored once, queued for every other
//!   member after its key shares. Its files (`file.rs`) know each upload's owner, size,
//!   progress, who may download it and when it expires ([`RelayStore::begin_upload`],
//!   [`RelayStore::file_for_download`], [`RelayStore::expired_files`]); the ciphertext
//!   itself the relay keeps in files beside the database.
//! - [`BatchWrite`]: group commit. [`RelayStore::commit_batch`] runs many senders'
//!   messages, group messages and acknowledgements in one durable transaction, each with
//!   its own outcome ([`BatchOutcome`]), so one `fsync` serves them all.
//! - [`StoreError`]: every failure, in domain terms ([`StoreError::InUse`],
//!   [`StoreError::UsernameTaken`], [`StoreError::QueueFull`],
//!   [`StoreError::NotFriends`], ...).
//!
//! Architecture invariants:
//! - No redb type appears in a method signature: callers speak `UserName`, `Seq`,
//!   `MessageId` and the records here, so another backend can replace redb later.
//! - Every public method is one redb transaction, committed durably (redb's default)
//!   before it returns: a SIGKILL after a method returns loses nothing, and one during a
//!   method changes nothing.
//! - Values are MessagePack records with named fields and enum variants stored by name
//!   (see `records.rs`); keys are tuples, so one user's or conversation's rows form one
//!   ordered range.
//! - A relay queue's seqs are strictly increasing per user, from 1, and never reused.
//!
//! This crate does no cryptography and no async: callers seal secrets before storing them
//! and call the store from blocking threads (`RelayStore` is `Send + Sync`).

mod batch;
mod error;
mod file;
mod group;
mod moment;
mod reach;
mod records;
mod relay;
mod social;
mod tables;

pub use batch::{BatchOutcome, BatchWrite};
pub use error::StoreError;
pub use file::{FileLimits, STALLED_UPLOAD_MS};
pub use group::{CEILING_FACTOR, GroupLimits, GroupSent, KeyShareRow, LeaveOutcome};
pub use moment::{Commented, FeedPage, MomentLimits, Posted};
pub use reach::Reach;
pub use records::{AccountRecord, FileRecord, QueuedEvent};
pub use relay::{ClaimedKey, Enqueued, QueueLimit, RelayStore, Rows};
pub use social::{
    AvatarUpdate, FriendRequestOutcome, FriendRow, MessageOutcome, PendingRequest, PendingRequests,
    RequestDirection, SocialLimits,
};
