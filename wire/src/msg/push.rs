//! Events the relay pushes on its unidirectional stream.

use serde::{Deserialize, Serialize};

use crate::ids::{CallId, GroupId, MessageId, PostId, Seq, UserName};
use crate::msg::call::CallEndReason;
use crate::msg::group::{GroupChange, GroupMember, GroupSummary};
use crate::msg::moment::MomentComment;
use crate::msg::social::ProfileSummary;

/// One pushed event. Durable events carry `seq` and stay queued until acknowledged;
/// ephemeral ones (presence, profile and identity changes) have none and need no
/// acknowledgement: a peer that was offline learns those from `Request::Friends`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// Position in the user's durable queue, or `None` for an ephemeral event.
    #[serde(default)]
    pub seq: Option<Seq>,
    /// The relay's clock when the event was queued, in ms since the Unix epoch.
    pub relay_ts_ms: u64,
    /// What happened.
    pub event: PushEvent,
}

/// What a pushed event says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum PushEvent {
    /// An end-to-end encrypted 1:1 message.
    Message {
        /// The authenticated sender.
        from: UserName,
        /// The sender's message id.
        id: MessageId,
        /// Opaque to the relay.
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
    },
    /// A friend came online or went offline (ephemeral).
    Presence {
        /// The friend whose presence changed.
        user: UserName,
        /// Whether they are online now.
        online: bool,
        /// When they went offline, ms since the Unix epoch (offline events only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_seen_ms: Option<u64>,
    },
    /// Someone asks to become friends (durable).
    FriendRequest {
        /// Who asks.
        from: UserName,
        /// Their note.
        note: String,
    },
    /// A friend request of this user's was accepted, or two requests met (durable).
    FriendAccepted {
        /// The new friend.
        by: UserName,
    },
    /// A friend ended the friendship (durable).
    FriendRemoved {
        /// The former friend.
        by: UserName,
    },
    /// A friend changed their profile (ephemeral).
    Profile {
        /// The friend whose profile changed.
        user: UserName,
        /// Their profile now.
        profile: ProfileSummary,
    },
    /// A friend published new identity keys (a new device); compare safety numbers
    /// (ephemeral).
    IdentityChanged {
        /// The friend who published the new identity keys.
        user: UserName,
    },
    /// An end-to-end encrypted group message (durable): one Megolm ciphertext, the same
    /// for every member.
    GroupMessage {
        /// The group the message was sent to, as the sender's `GroupSend` named it.
        group: GroupId,
        /// The authenticated sender, a member when it was sent.
        from: UserName,
        /// The sender's message id.
        id: MessageId,
        /// Opaque to the relay.
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
    },
    /// A member's Megolm session key for this user, inside an Olm message (durable);
    /// always queued before the first group message that needs it.
    GroupKey {
        /// The group whose messages from `from` the shared session decrypts.
        group: GroupId,
        /// The member who shares their session.
        from: UserName,
        /// Opaque to the relay (an Olm envelope).
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
    },
    /// A group's membership changed (durable): what changed and the group's state after
    /// it. A removed member gets this too, as their last event about the group.
    GroupChanged {
        /// The group after the change, without its members.
        group: GroupSummary,
        /// What changed.
        change: GroupChange,
        /// The whole member list after the change, for a member who had none before (at
        /// the group's creation, and for a new member); `None` for the others, who apply
        /// `change` to the list they have, so that a change costs the relay one small row
        /// per member rather than the whole list each.
        #[serde(default)]
        members: Option<Vec<GroupMember>>,
    },
    /// A friend calls (ephemeral; pushed again to a connection that comes up while it
    /// still rings).
    CallIncoming {
        /// The call's id, chosen by the caller; a `CallAnswer` or `CallReject` names it.
        call: CallId,
        /// The caller (authenticated by the relay).
        from: UserName,
        /// The caller's Olm envelope with its ephemeral call key.
        #[serde(with = "crate::bytes")]
        offer: Vec<u8>,
        /// How long the ringing has left, in ms.
        ring_left_ms: u64,
    },
    /// The callee took the call (ephemeral, to the caller's connection).
    CallAccepted {
        /// The call that was taken, as the caller's `CallInvite` named it.
        call: CallId,
        /// The callee's Olm envelope with its ephemeral call key.
        #[serde(with = "crate::bytes")]
        answer: Vec<u8>,
    },
    /// The call ended or will not happen (ephemeral, to whoever was in or rung by it).
    CallEnded {
        /// The call that ended, as the caller's `CallInvite` named it.
        call: CallId,
        /// Why: `Rejected`, `Cancelled`, `HungUp`, `Timeout` or `ConnectionLost` (`Busy`
        /// and `Offline` come back in the answer to `CallInvite` instead).
        reason: CallEndReason,
    },
    /// A call rang while this user could not or did not take it (durable).
    MissedCall {
        /// The missed call, as the caller's `CallInvite` named it.
        call: CallId,
        /// Who called (authenticated by the relay).
        from: UserName,
        /// Why it was missed (`Offline`, `Busy`, `Timeout`, `Cancelled`, `ConnectionLost`).
        reason: CallEndReason,
    },
    /// A friend posted a moment for this user: its key inside an Olm message (durable).
    MomentShared {
        /// The shared post's id; `Request::MomentGet` fetches it.
        post: PostId,
        /// Who posted it (authenticated by the relay).
        author: UserName,
        /// Opaque to the relay (an Olm envelope with the post's key).
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
    },
    /// Someone liked this user's post (durable).
    MomentLiked {
        /// The liked post, one of this user's own.
        post: PostId,
        /// Who liked it.
        by: UserName,
        /// The like sealed under the post's key.
        #[serde(with = "crate::bytes")]
        ciphertext: Vec<u8>,
    },
    /// Someone commented on this user's post, or replied to this user there (durable).
    MomentCommented {
        /// The new comment, naming its post and whom it replies to, if anyone.
        comment: MomentComment,
    },
    /// The place of a durable event withdrawn before it was delivered (a friend request
    /// that ended first); there is nothing to take in, only the seq to acknowledge.
    Withdrawn,
    /// An event this peer does not know (from a newer relay); skipped and acknowledged.
    #[serde(other, deserialize_with = "crate::msg::skip_unknown_body")]
    Unknown,
}
