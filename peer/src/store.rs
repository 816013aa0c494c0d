//! The peer's local data in its own redb file, one per profile directory: [`PeerStore`].
//! Its profile ([`ProfileRecord`]), pinned contact identities ([`PinnedIdentity`]), sealed
//! Olm sessions ([`SessionRecord`]), history ([`HistoryEntry`], per [`ConversationId`]),
//! outbox ([`OutboxEntry`]), event cursor and the contacts cache ([`ContactRecord`]);
//! groups and their Megolm sessions (`group.rs`: [`LocalGroup`], [`OutboundGroupRecord`],
//! [`InboundGroupRecord`]), file messages with pending uploads and downloads (`file.rs`),
//! call offers (`call.rs`) and post keys with the pictures of opened posts (`moment.rs`).
//!
//! What one message changes is committed at once ([`InboundCommit`], [`OutboundCommit`],
//! [`GroupOutboundCommit`]). This module does no cryptography: secrets arrive sealed. It
//! lives in the peer, not in `uchat-store` (the relay's storage), so that the app and the
//! CLI depend on the peer's types only.
//!
//! Invariants, as for the relay's store: no redb type in a public signature; every public
//! method is one transaction, committed durably before it returns; values are MessagePack
//! records with named fields and enum variants stored by name (`records.rs`).

mod call;
mod error;
mod file;
mod group;
mod local;
mod moment;
mod records;
mod tables;

pub use error::StoreError;
pub use group::{ContactSessions, GroupOutboundCommit};
pub use local::{InboundCommit, InboundReceipt, OutboundCommit, PeerStore, Settled, UnreadMessage};
pub use records::{
    CallOfferRecord, ContactRecord, ConversationId, EntryFlags, EntryStatus, FileRef, GroupOutbox,
    HistoryEntry, IdentityFlag, InboundGroupRecord, LocalGroup, MomentImageRecord, MomentKeyRecord,
    OutboundGroupRecord, OutboxEntry, PendingDownload, PendingUpload, PinnedIdentity,
    ProfileRecord, SessionRecord,
};
