//! The records the relay's store keeps: plain structs that are the on-disk values, encoded as
//! MessagePack with named fields (`rmp_serde::to_vec_named`).
//!
//! Compatibility rules, as for the wire: enum variants are stored by name, so never rename,
//! remove or reuse one; fields added later get `#[serde(default)]`.
//!
//! Secrets (session tokens, sealed pickles, password hashes) and message plaintext never
//! reach `Debug`: those impls are written by hand and print lengths only.

use std::fmt;

use serde::{Deserialize, Serialize};
use uchat_wire::{
    FileId, GroupId, IdentityKeys, MessageId, ProfileSummary, PushEvent, Seq, UserName,
};

/// A relay account: its name, password hash and public identity.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The account's canonical name.
    pub username: UserName,
    /// The argon2id hash of the password, as a PHC string.
    pub password_hash: String,
    /// The account's public identity keys (opaque to the relay).
    pub identity: IdentityKeys,
    /// Registration time, in ms since the Unix epoch.
    pub created_ms: u64,
}

impl fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountRecord")
            .field("username", &self.username)
            .field(
                "password_hash",
                &format_args!("<{} bytes>", self.password_hash.len()),
            )
            .field("identity", &self.identity)
            .field("created_ms", &self.created_ms)
            .finish()
    }
}

/// One event in a user's durable queue on the relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEvent {
    /// Its position in the user's queue.
    pub seq: Seq,
    /// The relay's clock when it was queued, in ms since the Unix epoch.
    pub relay_ts_ms: u64,
    /// The event, pushed as is.
    pub event: PushEvent,
}

/// One row of a user's queue on the relay, as stored: an event, a reference to a group
/// message stored once for all its recipients, or the place of an event withdrawn before
/// it was delivered. Rows written before groups existed are [`QueuedEvent`]s, which
/// decode as rows with `event` set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueueRow {
    /// Its position in the user's queue.
    pub(crate) seq: Seq,
    /// The relay's clock when it was queued, in ms since the Unix epoch.
    pub(crate) relay_ts_ms: u64,
    /// The event itself, unless it is a stored group message.
    #[serde(default)]
    pub(crate) event: Option<PushEvent>,
    /// The group message this row stands for, if it is one.
    #[serde(default)]
    pub(crate) group_message: Option<GroupMessageRef>,
    /// True once the event was withdrawn (a friend request that ended before it was
    /// delivered): the row keeps its seq, so the queue stays one contiguous run, but holds
    /// nothing and counts against no quota.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) withdrawn: bool,
}

/// What a [`QueueRow`] holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QueueBody {
    /// An event kept in the row.
    Event(PushEvent),
    /// A group message kept once in `GROUP_MESSAGES`.
    GroupMessage(GroupMessageRef),
    /// Nothing: the event was withdrawn before it was delivered.
    Withdrawn,
}

impl QueueRow {
    /// A row holding `body`.
    pub(crate) fn new(seq: Seq, relay_ts_ms: u64, body: QueueBody) -> Self {
        let (event, group_message) = match &body {
            QueueBody::Event(event) => (Some(event.clone()), None),
            QueueBody::GroupMessage(reference) => (None, Some(*reference)),
            QueueBody::Withdrawn => (None, None),
        };
        Self {
            seq,
            relay_ts_ms,
            event,
            group_message,
            withdrawn: body == QueueBody::Withdrawn,
        }
    }

    /// What the row holds; a row with neither part (or both) is corrupt.
    pub(crate) fn body(self) -> Result<QueueBody, crate::StoreError> {
        match (self.event, self.group_message, self.withdrawn) {
            (Some(event), None, false) => Ok(QueueBody::Event(event)),
            (None, Some(reference), false) => Ok(QueueBody::GroupMessage(reference)),
            (None, None, true) => Ok(QueueBody::Withdrawn),
            _ => Err(crate::StoreError::Corrupt {
                what: "queued event",
                reason: "a row must hold exactly one of an event, a group message and a withdrawal"
                    .into(),
            }),
        }
    }
}

/// Where a group message is stored: `GROUP_MESSAGES` row (group, index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupMessageRef {
    /// The group whose `GROUP_MESSAGES` rows hold the message; with `index`, the row's key.
    pub(crate) group: GroupId,
    /// Its position among the group's stored messages.
    pub(crate) index: u64,
    /// The stored message's size in bytes, which counts against each recipient's queue
    /// quota (0 in rows written before queues had a byte quota).
    #[serde(default)]
    pub(crate) bytes: u64,
}

/// A group message stored once on the relay, however many queues refer to it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupMessageRecord {
    /// The sender, a member of the group when the relay stored the message.
    pub(crate) from: UserName,
    /// The sender's message id.
    pub(crate) id: MessageId,
    /// Opaque Megolm ciphertext.
    #[serde(with = "serde_bytes")]
    pub(crate) ciphertext: Vec<u8>,
    /// How many queue rows still refer to it; the record goes with the last one.
    pub(crate) refs: u64,
}

impl fmt::Debug for GroupMessageRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupMessageRecord")
            .field("from", &self.from)
            .field("id", &self.id)
            .field(
                "ciphertext",
                &format_args!("<{} bytes>", self.ciphertext.len()),
            )
            .field("refs", &self.refs)
            .finish()
    }
}

/// A group on the relay (its members are rows of `GROUP_MEMBERS`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    /// Its name.
    pub(crate) name: String,
    /// Who may invite and remove members.
    pub(crate) owner: UserName,
    /// The membership version, raised by every change.
    pub(crate) epoch: u64,
    /// When it was made, ms since the Unix epoch.
    pub(crate) created_ms: u64,
    /// The join order the next member gets (lower joined earlier).
    pub(crate) next_join: u64,
    /// The next free index in `GROUP_MESSAGES`.
    pub(crate) next_message: u64,
}

/// A file on the relay: its uploader, size, who may fetch it and how far its upload got.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// The file's id, chosen by the uploader; the record's key in `FILES`.
    pub id: FileId,
    /// Who uploaded it.
    pub owner: UserName,
    /// Its ciphertext length.
    pub size: u64,
    /// Bytes of ciphertext durably on the relay's disk so far.
    pub committed: u64,
    /// True once every byte is there and the file may be downloaded.
    pub complete: bool,
    /// Who may download it besides the owner.
    pub allowed: Vec<UserName>,
    /// When the upload started, ms since the Unix epoch.
    pub created_ms: u64,
    /// When the relay deletes it, ms since the Unix epoch.
    pub expires_ms: u64,
}

/// A pending friend request on the relay, keyed (to, from).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FriendRequestRecord {
    /// The note the sender wrote (may be empty).
    pub(crate) note: String,
    /// When it was sent, by the relay's clock, in ms since the Unix epoch.
    pub(crate) created_ms: u64,
    /// Where the [`PushEvent::FriendRequest`] announcing it sits in the recipient's queue,
    /// so that it can be withdrawn with the request (none in records written before).
    #[serde(default)]
    pub(crate) event_seq: Option<Seq>,
}

/// A user's public profile on the relay. Its own record rather than the wire's
/// [`ProfileSummary`], so the wire type can change without changing stored bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PublicProfileRecord {
    /// Short text shown to friends; empty if none.
    pub(crate) signature: String,
    /// The version tag of the avatar in the `AVATARS` table, `None` without one.
    #[serde(default)]
    pub(crate) avatar_version: Option<String>,
    /// When the profile last changed, ms since the Unix epoch.
    pub(crate) updated_ms: u64,
}

impl From<PublicProfileRecord> for ProfileSummary {
    fn from(r: PublicProfileRecord) -> Self {
        ProfileSummary {
            signature: r.signature,
            avatar_version: r.avatar_version,
            updated_ms: r.updated_ms,
        }
    }
}

/// A post as the relay stores it (its viewers, likes and comments are rows of their own).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct MomentPostRecord {
    /// Who posted it.
    pub author: UserName,
    /// Its place in the relay's order of posts.
    pub cursor: u64,
    /// When it was stored, ms since the Unix epoch.
    pub posted_ms: u64,
    /// The sealed post, opaque to the relay.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// One like as the relay stores it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct MomentLikeRecord {
    /// When, ms since the Unix epoch.
    pub liked_ms: u64,
    /// The sealed like, opaque to the relay.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// One comment as the relay stores it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct MomentCommentRecord {
    /// The comment's id, chosen by its author; `MOMENT_COMMENT_IDS` maps it to its post.
    pub id: uchat_wire::CommentId,
    /// Who wrote it.
    pub author: UserName,
    /// Whom it answers.
    pub reply_to: Option<UserName>,
    /// When, ms since the Unix epoch.
    pub commented_ms: u64,
    /// The sealed comment, opaque to the relay.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_rows_written_before_groups_decode_as_events() {
        let old = QueuedEvent {
            seq: Seq(4),
            relay_ts_ms: 9,
            event: PushEvent::FriendAccepted {
                by: UserName::parse("bob").expect("valid"),
            },
        };
        let bytes = rmp_serde::to_vec_named(&old).expect("encodes");
        let row: QueueRow = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(row.seq, Seq(4));
        assert_eq!(row.body().expect("whole"), QueueBody::Event(old.event));
        let empty = QueueRow {
            seq: Seq(1),
            relay_ts_ms: 0,
            event: None,
            group_message: None,
            withdrawn: false,
        };
        assert!(empty.body().is_err());
    }
}
