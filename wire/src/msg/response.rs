//! The relay's answer to one request.

use serde::{Deserialize, Serialize};

use crate::ProtocolVersion;
use crate::error::ErrorCode;
use crate::ids::{GroupId, Seq, UserName};
use crate::msg::call::CallEndReason;
use crate::msg::group::GroupInfo;
use crate::msg::moment::MomentItem;
use crate::msg::request::{IdentityKeys, SessionToken, SignedKey};
use crate::msg::social::{FriendEntry, FriendRequestEntry, ProfileSummary};

/// The answer to a request: a [`Reply`] or an [`ErrorReply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum Response {
    /// The request succeeded.
    Ok(Reply),
    /// The request failed.
    Error(ErrorReply),
}

impl Response {
    /// Shorthand for an error response.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Response::Error(ErrorReply {
            code,
            message: message.into(),
        })
    }
}

/// A failure with a code to act on and a message to show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ErrorReply {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong and what to do, for people.
    pub message: String,
}

/// What a successful request returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "body")]
pub enum Reply {
    /// Answer to `Hello`.
    Welcome {
        /// The relay's protocol version.
        protocol: ProtocolVersion,
        /// Relay software name and version.
        relay: String,
    },
    /// Answer to `Register`, `Login` and `Resume`: the session is logged in.
    Session {
        /// The canonical username.
        username: UserName,
        /// Token for later `Resume` requests.
        token: SessionToken,
        /// Highest sequence number in the user's queue right now: once the peer has taken
        /// in events up to here, it has caught up.
        queue_head: Seq,
        /// Every event up to here was already acknowledged and deleted, so none of them
        /// will be pushed: a peer has caught up once it has taken in everything after this
        /// and up to `queue_head` (nothing, if they are equal).
        #[serde(default)]
        acked_through: Seq,
    },
    /// The request was carried out; nothing to return.
    Done,
    /// Answer to `KeyCount` and `UploadKeys`.
    KeyCount {
        /// One-time keys left in the relay's stock.
        one_time_keys: u64,
    },
    /// Answer to `ClaimKey`.
    ClaimedKey {
        /// The user whose key was claimed, as the request named them.
        user: UserName,
        /// Their identity keys.
        identity: IdentityKeys,
        /// The claimed key.
        key: SignedKey,
        /// True if the stock was empty and this is the (reusable) fallback key.
        fallback: bool,
    },
    /// Answer to `Identity`.
    Identity {
        /// The user whose keys these are, as the request named them.
        user: UserName,
        /// Their identity keys.
        identity: IdentityKeys,
    },
    /// Answer to `Send` and `GroupSend`: the message is durably queued for its recipients.
    Sent {
        /// The relay's clock when it committed the message, in ms since the Unix epoch.
        relay_ts_ms: u64,
        /// True if this id was queued before (a retry after a lost answer): nothing new was
        /// queued, so nothing this request carried (key shares above all) reached anyone.
        #[serde(default)]
        duplicate: bool,
        /// Members a `GroupSend` carried a key share for that the relay did not queue
        /// (their queue is far over its quota): they still need one.
        #[serde(default)]
        unshared: Vec<UserName>,
    },
    /// Answer to `Presence`.
    Presence {
        /// One entry per asked user who is the asker or one of their friends; anyone else
        /// asked about is left out.
        users: Vec<PresenceEntry>,
    },
    /// Answer to `FriendRequest`.
    FriendRequestSent {
        /// True if the other side had asked first, so the two are friends now.
        became_friends: bool,
    },
    /// Answer to `Friends`.
    Friends {
        /// Every friend, in name order.
        friends: Vec<FriendEntry>,
    },
    /// Answer to `FriendRequests`.
    FriendRequests {
        /// Requests others sent to the asker, oldest first.
        incoming: Vec<FriendRequestEntry>,
        /// Requests the asker sent that are still pending, oldest first.
        outgoing: Vec<FriendRequestEntry>,
    },
    /// Answer to `GetProfile` and `SetProfile`.
    Profile {
        /// The user the profile belongs to: the asker or one of their friends.
        user: UserName,
        /// Their profile as the relay keeps it now (the image itself is in `avatar`).
        profile: ProfileSummary,
        /// The avatar PNG, if the user has one and the asker's known version differs.
        #[serde(default, with = "crate::bytes")]
        avatar: Option<Vec<u8>>,
    },
    /// Answer to `CreateGroup`, `GroupInfo`, `InviteToGroup` and `KickFromGroup`: the
    /// group's state now.
    Group {
        /// The group's state after the request, with its whole member list.
        group: GroupInfo,
    },
    /// Answer to `Groups`.
    Groups {
        /// Every group the asker is in, oldest first.
        groups: Vec<GroupInfo>,
    },
    /// First answer to `UploadFile`: send the ciphertext from `offset` on.
    UploadReady {
        /// Bytes the relay holds already (a chunk boundary; the whole size if complete).
        offset: u64,
    },
    /// Second answer to `UploadFile`: every byte is on the relay's disk.
    Uploaded {
        /// The file's ciphertext length.
        size: u64,
    },
    /// Answer to `DownloadFile`: the ciphertext from the asked offset follows.
    DownloadReady {
        /// The file's whole ciphertext length.
        size: u64,
        /// Who uploaded it, so a downloader can check it is the sender of the message
        /// that named it.
        #[serde(default)]
        owner: Option<UserName>,
    },
    /// Answer to `CallInvite`: the call rings.
    CallRinging {
        /// The caller's voice leg: the handle its datagrams start with.
        leg: u32,
        /// How long the relay lets it ring, in ms.
        ring_timeout_ms: u64,
    },
    /// Answer to `CallInvite` when the call cannot ring.
    CallEnded {
        /// Why (`Busy`, `Offline`).
        reason: CallEndReason,
    },
    /// Answer to `CallAnswer`: the call is connected.
    CallConnected {
        /// The callee's voice leg: the handle its datagrams start with.
        leg: u32,
    },
    /// Answer to `MomentPost`: the post and its shares are stored.
    MomentPosted {
        /// The relay's clock when the post was stored, ms since the Unix epoch.
        posted_ms: u64,
        /// True if this id was posted before (a retry after a lost answer).
        #[serde(default)]
        duplicate: bool,
        /// Viewers the post was not shared with (their queue is far over its quota).
        #[serde(default)]
        unshared: Vec<UserName>,
    },
    /// Answer to `MomentFeed`.
    MomentFeed {
        /// The page, newest first.
        posts: Vec<MomentItem>,
        /// The cursor to ask `before` for the next page; `None` at the end.
        #[serde(default)]
        next: Option<u64>,
    },
    /// Answer to `MomentGet`.
    Moment {
        /// The post as the asker may see it: only the likes and comments shown to them.
        post: MomentItem,
    },
    /// Answer to `MomentComment`.
    MomentCommented {
        /// The relay's clock when the comment was stored, ms since the Unix epoch.
        commented_ms: u64,
    },
    /// Answer to `FriendsPage`.
    FriendsPage {
        /// The page, in name order.
        friends: Vec<FriendEntry>,
        /// The cursor to ask `after` for the next page; `None` at the end.
        #[serde(default)]
        next: Option<UserName>,
    },
    /// Answer to `GroupsPage`.
    GroupsPage {
        /// The page, in id order.
        groups: Vec<GroupInfo>,
        /// The cursor to ask `after` for the next page; `None` at the end.
        #[serde(default)]
        next: Option<GroupId>,
    },
    /// Answer to `IncomingFriendRequestsPage` and `OutgoingFriendRequestsPage`.
    FriendRequestsPage {
        /// The page, in name order of the other side.
        requests: Vec<FriendRequestEntry>,
        /// The cursor to ask `after` for the next page; `None` at the end.
        #[serde(default)]
        next: Option<UserName>,
    },
    /// A reply this peer does not know (from a newer relay).
    #[serde(other, deserialize_with = "crate::msg::skip_unknown_body")]
    Unknown,
}

/// Whether one user is online.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresenceEntry {
    /// One of the asked users: the asker or a friend (the relay leaves anyone else out).
    pub user: UserName,
    /// True while at least one of their peers is connected.
    pub online: bool,
    /// When they were last connected, ms since the Unix epoch (None if never, or online).
    #[serde(default)]
    pub last_seen_ms: Option<u64>,
}
