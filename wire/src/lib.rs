//! The Uchat wire protocol: what peers and the relay say to each other, and how it is framed.
//!
//! This crate is pure: it has no sockets, no clock and no async runtime, so both ends and
//! every test can use it directly.
//!
//! A tour of the main types:
//! - [`frame`]: a frame is a big-endian `u32` length and a MessagePack body with named
//!   fields ([`frame::encode`], [`frame::FrameDecoder`]). Control frames are limited to
//!   [`frame::MAX_CONTROL_FRAME_BYTES`].
//! - [`Request`] / [`Response`]: one pair per bidirectional QUIC stream. The first request
//!   on a connection is [`Request::Hello`] carrying [`PROTOCOL_VERSION`].
//! - [`Push`]: events the relay pushes on its unidirectional stream; durable ones carry a
//!   per-user [`Seq`] that the peer acknowledges with [`Request::Ack`].
//! - [`msg::group`]: groups ([`GroupInfo`], [`GroupChange`]) and the Megolm key shares
//!   ([`KeyShare`]) a group message may carry.
//! - [`msg::file`]: who may download a file ([`FileAccess`]) and the chunk layout every
//!   upload and download stream agrees on.
//! - [`msg::call`]: voice calls ([`CallId`], [`CallEndReason`]) and the voice datagram's
//!   routing header.
//! - [`msg::moment`]: moments ([`MomentItem`], [`PostId`], [`CommentId`]), their limits and
//!   the visibility rules the relay enforces.
//! - [`msg::page`]: how the lists that can grow long (friends, groups, friend requests)
//!   are asked for a page at a time, and the limits a page keeps to.
//! - [`ErrorCode`]: the small set of failures a peer can act on, each with a message.
//! - Identifiers and validated names live in [`ids`].
//!
//! Compatibility: enums are serialized adjacently tagged by variant name, never by index,
//! and growing enums have an `Unknown` catch-all, so an older peer skips what a newer relay
//! adds instead of failing. New fields get `#[serde(default)]`.

mod bytes;
pub mod error;
pub mod frame;
pub mod ids;
pub mod msg;

pub use error::{ErrorCode, FrameError, describe_error_chain};
pub use ids::{
    CallId, CertFingerprint, CommentId, FileId, GroupId, MessageId, NameError, PostId, Seq,
    UserName,
};
pub use msg::call::CallEndReason;
pub use msg::file::FileAccess;
pub use msg::group::{GroupChange, GroupInfo, GroupMember, GroupSummary, KeyShare};
pub use msg::moment::{MomentComment, MomentItem, MomentLike};
pub use msg::push::{Push, PushEvent};
/// The body of each [`Request`] kind, by the variant's name (`request::ClaimKey`).
pub use msg::request;
pub use msg::request::{IdentityKeys, Password, Request, SessionToken, SignedKey};
/// The body of each [`Reply`] kind, by the variant's name (`reply::ClaimedKey`).
pub use msg::response as reply;
pub use msg::response::{ErrorReply, PresenceEntry, Reply, Response};
pub use msg::social::{AvatarChange, FriendEntry, FriendRequestEntry, ProfileSummary};
pub use msg::typed::{Call, FromReply, InviteAnswer};

/// A protocol version: peers and relays with the same `major` interoperate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProtocolVersion {
    /// Incompatible changes bump this.
    pub major: u16,
    /// Compatible additions bump this.
    pub minor: u16,
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The protocol version this build speaks.
///
/// 1.1 added friends, presence pushes and profiles; 1.2 added groups; 1.3 added files;
/// 1.4 added voice calls; 1.5 added moments; 1.6 added paged friend, group and friend
/// request lists (new variants only).
pub const PROTOCOL_VERSION: ProtocolVersion = ProtocolVersion { major: 1, minor: 6 };

/// The ALPN protocol id negotiated in the QUIC/TLS handshake.
pub const ALPN: &[u8] = b"uchat/1";

/// Largest text a single message may carry, in bytes of UTF-8.
///
/// 256 KiB is far beyond any typed message (64 KiB of Chinese text is ~21,800 characters)
/// while keeping the encrypted frame well under [`frame::MAX_CONTROL_FRAME_BYTES`].
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

/// Largest opaque ciphertext the relay accepts in one [`Request::Send`].
///
/// Olm adds a small constant overhead to the plaintext; the rest of the control frame limit
/// is headroom for the envelope's fields.
pub const MAX_CIPHERTEXT_BYTES: usize = 512 * 1024;
